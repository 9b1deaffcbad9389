//! Room frames: `join_room`, `leave_room`, `get_room_members`, `publish`. Names are parsed here; membership, the
//! answers and the fan-out are the RoomHub's.

use actix::prelude::*;
use serde_json::Value;

use super::Asked;
use crate::error::ErrorCode;
use crate::hubs::calls::IsParty;
use crate::hubs::rooms::{JoinRoom, LeaveRoom, ListMembers, Publish};
use crate::ids::RoomName;
use crate::user::Role;
use crate::ws::session::{Ctx, WsSession};

/// Why a customer's `join_room` was refused.
const CUSTOMER_ROOMS: &str = "customers may only join the rooms of their own calls";

impl WsSession {
    /// Staff may join any room; customers only the `call:<id>` room of a call they are in
    /// (asked of the CallHub).
    pub(super) fn join_room(&mut self, ctx: &mut Ctx, asked: Asked, room: &str) {
        let Some(room) = parse_room(ctx, &asked, room) else { return };
        let Some(reply_to) = self.reply_to(ctx, asked.reference.clone()) else { return };
        let identity = &asked.identity;
        let join = JoinRoom {
            company: identity.company.clone(),
            room,
            user: identity.user.clone(),
            reply_to,
            automatic: false,
        };
        if identity.role() != Role::Customer {
            return self.config.hubs.rooms.do_send(join);
        }
        let Some(call_id) = join.room.call_id() else {
            return asked.error(ctx, ErrorCode::Forbidden, CUSTOMER_ROOMS);
        };
        let company = identity.company.clone();
        let check = IsParty { company, call_id, user_id: identity.user.id.clone() };
        self.config
            .hubs
            .calls
            .send(check)
            .into_actor(self)
            .map(move |is_party, act, ctx| {
                if is_party.unwrap_or(false) {
                    act.config.hubs.rooms.do_send(join);
                } else {
                    asked.error(ctx, ErrorCode::Forbidden, CUSTOMER_ROOMS);
                }
            })
            .spawn(ctx);
    }

    /// Any room but the automatic `agents` room of staff.
    pub(super) fn leave_room(&mut self, ctx: &mut Ctx, asked: Asked, room: &str) {
        let Some(room) = parse_room(ctx, &asked, room) else { return };
        let automatic = room.is_agents() && asked.identity.role().is_staff();
        if !asked.permit(ctx, !automatic, "the agents room is automatic for agents") {
            return;
        }
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let company = asked.identity.company;
        self.config.hubs.rooms.do_send(LeaveRoom { company, room, reply_to });
    }

    /// A page of a room's members (members only).
    pub(super) fn room_members(
        &mut self,
        ctx: &mut Ctx,
        asked: Asked,
        room: &str,
        cursor: Option<String>,
    ) {
        let Some(room) = parse_room(ctx, &asked, room) else { return };
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let company = asked.identity.company;
        self.config.hubs.rooms.do_send(ListMembers { company, room, cursor, reply_to });
    }

    pub(super) fn publish(&mut self, ctx: &mut Ctx, asked: Asked, room: &str, data: Value) {
        let Some(room) = parse_room(ctx, &asked, room) else { return };
        let Some(reply_to) = self.reply_to(ctx, asked.reference) else { return };
        let (company, from) = (asked.identity.company, asked.identity.user);
        self.config.hubs.rooms.do_send(Publish { company, room, from, data, reply_to });
    }
}

/// A room name from a client, or `invalid_message`.
fn parse_room(ctx: &mut Ctx, asked: &Asked, room: &str) -> Option<RoomName> {
    let parsed = RoomName::parse(room);
    if parsed.is_none() {
        let text = "room names are 1-64 characters of A-Z a-z 0-9 _ . : -";
        asked.error(ctx, ErrorCode::InvalidMessage, text);
    }
    parsed
}
