//! Presence frames: `get_online_users` and `agent_status`, for agents and admins only.

use actix::prelude::*;
use chrono::Utc;

use super::Asked;
use crate::db::{self, agents};
use crate::error::ErrorCode;
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

    /// The choice is stored first (it outlives reconnects and restarts), then shown. The
    /// connection waits for the write, so two quick choices from one tab land in order.
    pub(super) fn set_agent_status(&mut self, ctx: &mut Ctx, asked: Asked, status: AgentStatus) {
        let staff = asked.identity.role().is_staff();
        if !asked.permit(ctx, staff, "only agents and admins have a status") {
            return;
        }
        let pool = self.config.pool.clone();
        let (company, user) = (asked.identity.company.clone(), asked.identity.user.clone());
        let at = Utc::now().timestamp();
        async move {
            db::run(&pool, move |conn| agents::choose(conn, &company, &user, status, at)).await
        }
        .into_actor(self)
        .map(move |stored, act, ctx| {
            if let Err(e) = stored {
                log::error!("storing an agent status failed: {e}");
                let text = "storage is unavailable, try again";
                return asked.error(ctx, ErrorCode::StorageUnavailable, text);
            }
            let Some(reply_to) = act.reply_to(ctx, asked.reference) else { return };
            let company = asked.identity.company;
            act.config.hubs.presence.do_send(SetAgentStatus { company, status, reply_to });
        })
        .wait(ctx);
    }
}
