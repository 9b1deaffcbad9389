//! The central actors, started once at startup and shared as one cloneable [`Hubs`] value.
//! Each WebSocket session registers with them through a [`ConnectionHandle`]; hubs never know
//! the session type (see [`connection`]).
//!
//! | hub | owns | module |
//! | --- | --- | --- |
//! | [`PresenceHub`] | the directory company → user → connections, agent status, delivery to users and to the company's agents | [`presence`] |
//! | [`RoomHub`] | room membership and fan-out inside a room | [`rooms`] |
//! | [`CallHub`] | the push of stored call-status changes; live browser calls | [`calls`] |
//! | [`ChatHub`] | chat messages stored, then delivered in order; typing; read marks | [`chat`] |
//! | [`CalendarTool`] | one Google Calendar client per user | `crate::calendar::tool` |
//!
//! A slow consumer (full mailbox) found by any hub is dropped from that hub's maps at once and
//! reported to the PresenceHub, which removes it from the directory, tells every subscribed hub
//! ([`presence::PresenceEvent`]) and asks the session to close with 4009. A session that ends
//! normally takes the same road from its `stopping()`.

pub mod calls;
pub mod chat;
pub mod connection;
pub mod presence;
pub mod room;
mod room_remote;
pub mod rooms;

use std::sync::Arc;

use actix::prelude::*;
use serde_json::Value;

use crate::calendar::functions::{self, FunctionError};
use crate::calendar::tool::RunFunction;
use crate::calendar::{self, CalendarTool};
use crate::cluster::Bus;
use crate::config::Settings;
use crate::db::DbPool;
use crate::metrics::Metrics;
use crate::net::ConnectionCaps;

pub use calls::CallHub;
pub use chat::ChatHub;
pub use connection::{ConnectionHandle, ReplyTo};
pub use presence::PresenceHub;
pub use rooms::RoomHub;

/// Addresses of every hub, started once at startup and shared through `web::Data`.
#[derive(Clone)]
pub struct Hubs {
    pub presence: Addr<PresenceHub>,
    pub rooms: Addr<RoomHub>,
    pub calls: Addr<CallHub>,
    pub chat: Addr<ChatHub>,
    pub calendar: Addr<CalendarTool>,
    /// What every hub and session counts (`docs/protocol.md` §10).
    pub metrics: Arc<Metrics>,
    /// The cluster bus, with `--redis-url` (`docs/protocol.md` §9).
    pub bus: Option<Bus>,
}

impl Hubs {
    /// Starts every hub on the current arbiter and wires their subscriptions; in a cluster
    /// (`bus`), the hubs tell the other nodes and hear from them.
    pub fn start(
        settings: &Settings,
        pool: DbPool,
        calendar: CalendarTool,
        metrics: Arc<Metrics>,
        caps: Arc<ConnectionCaps>,
        bus: Option<Bus>,
    ) -> Self {
        let ws = &settings.websocket;
        let presence = PresenceHub::new(metrics.clone(), caps, bus.clone()).start();
        let limits = rooms::RoomLimits {
            max_rooms_per_connection: ws.max_rooms_per_connection as usize,
            member_events_max: ws.room_member_events_max as usize,
        };
        let rooms = RoomHub::new(presence.clone(), limits, bus.clone()).start();
        let calls =
            CallHub::new(presence.clone(), pool.clone(), settings.calls.clone(), bus.clone())
                .start();
        let retention = settings.chat.retention();
        let chat = ChatHub::new(presence.clone(), pool, retention, metrics.clone()).start();
        presence.do_send(presence::Subscribe { subscriber: rooms.clone().recipient() });
        presence.do_send(presence::Subscribe { subscriber: calls.clone().recipient() });
        presence.do_send(presence::Subscribe { subscriber: chat.clone().recipient() });
        Self { presence, rooms, calls, chat, calendar: calendar.start(), metrics, bus }
    }

    /// Where the cluster driver hands what the other nodes sent.
    pub fn bus_targets(&self) -> crate::cluster::driver::Targets {
        crate::cluster::driver::Targets {
            presence: self.presence.clone().recipient(),
            resync: self.presence.clone().recipient(),
            rooms: self.rooms.clone().recipient(),
            calls: self.calls.clone().recipient(),
        }
    }

    /// Runs a calendar function for a user and shows `tool_call_executed` on that user's
    /// screens: the one path for every caller — a session's `function_call`, Vapi's
    /// `tool-calls`, a backend's `POST /api/v1/functions/{name}`. `phone_call` is the call the
    /// function was run during, when a voice assistant ran it.
    pub async fn run_function(
        &self,
        run: RunFunction,
        phone_call: Option<&str>,
    ) -> Result<Value, FunctionError> {
        let (company, user_id) = (run.company.clone(), run.user_id.clone());
        let (tool_call_id, name, arguments) =
            (run.tool_call_id.clone(), run.name.clone(), run.arguments.clone());
        let result =
            self.calendar.send(run).await.unwrap_or_else(|_| Err(FunctionError::unavailable()));
        let outcome = result.as_ref().err().map_or("ok", |e| e.code.as_str());
        self.metrics.calendar_call(functions::known_name(&name), outcome);
        let frame = calendar::executed_frame(&tool_call_id, &name, &arguments, &result, phone_call);
        let except_conn = None;
        self.presence.do_send(presence::DeliverToUser { company, user_id, except_conn, frame });
        result
    }
}
