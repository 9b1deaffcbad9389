//! Presence frames: `get_online_users` and `agent_status`, for agents and admins only.

use super::Asked;
use crate::hubs::presence::{SendOnlineUsers, SetAgentStatus};
use crate::protocol::AgentStatus;
use crate::ws::session::{Ctx, WsSession};

impl WsSession {
    pub(super) fn get_online_users(&mut self, ctx: &mut Ctx, asked: Asked) {
        let staff = asked.identity.role().is_staff();
        if !asked.permit(ctx, staff, "only agents and admins may list online users") {
            return;
        }
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let company = asked.identity.company;
        self.config.hubs.presence.do_send(SendOnlineUsers { company, reply_to });
    }

    pub(super) fn set_agent_status(&mut self, ctx: &mut Ctx, asked: Asked, status: AgentStatus) {
        let staff = asked.identity.role().is_staff();
        if !asked.permit(ctx, staff, "only agents and admins have a status") {
            return;
        }
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let company = asked.identity.company;
        self.config.hubs.presence.do_send(SetAgentStatus { company, status, reply_to });
    }
}
