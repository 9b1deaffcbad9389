//! The central actors. Each WebSocket session registers with them through a
//! [`ConnectionHandle`]; hubs never know the session type, only that it accepts [`Deliver`] (one
//! encoded frame) and [`CloseConnection`].
//!
//! Delivery is bounded: hubs use `try_send`, and a session whose mailbox is full (it holds
//! `--session-queue` frames) is a slow consumer. The hub that notices drops it from its own maps
//! at once and asks the [`PresenceHub`] to evict it; the PresenceHub removes it from the
//! directory, tells every subscribed hub ([`PresenceEvent`]) and asks the session to close
//! with 4009. A session that ends normally takes the same road from its `stopping()`.

pub mod calls;
pub mod presence;
pub mod rooms;

use actix::dev::SendError;
use actix::prelude::*;

use crate::calendar::CalendarTool;
use crate::db::DbPool;
use crate::ids::{CompanyId, ConnId, UserId};
use crate::protocol::{CloseCode, Frame};

pub use calls::CallHub;
pub use presence::PresenceHub;
pub use rooms::RoomHub;

/// Limits the hubs enforce, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    pub max_connections_per_user: usize,
    pub max_rooms_per_connection: usize,
    pub calls: calls::CallSettings,
}

/// Addresses of every hub, started once at startup and shared through `web::Data`.
#[derive(Clone)]
pub struct Hubs {
    pub presence: Addr<PresenceHub>,
    pub rooms: Addr<RoomHub>,
    pub calls: Addr<CallHub>,
    pub calendar: Addr<CalendarTool>,
}

impl Hubs {
    /// Starts every hub on the current arbiter and wires their subscriptions.
    pub fn start(limits: HubLimits, pool: DbPool, calendar: CalendarTool) -> Self {
        let presence = PresenceHub::new(limits.max_connections_per_user).start();
        let rooms = RoomHub::new(presence.clone(), limits.max_rooms_per_connection).start();
        let calls = CallHub::new(presence.clone(), pool, limits.calls).start();
        presence.do_send(presence::Subscribe { subscriber: rooms.clone().recipient() });
        presence.do_send(presence::Subscribe { subscriber: calls.clone().recipient() });
        Self { presence, rooms, calls, calendar: calendar.start() }
    }
}

/// One encoded frame for one connection (the bytes are shared with every other recipient).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    pub frame: Frame,
}

/// Asks a session to close its socket with `code` and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseConnection {
    pub code: CloseCode,
    pub reason: &'static str,
}

/// Told by the PresenceHub to every subscribed hub. Handlers must be idempotent.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum PresenceEvent {
    /// A connection is gone for good (closed, dropped, timed out or evicted). Announced even
    /// when it was already removed, so a hub it talked to after its eviction forgets it too.
    ConnectionClosed { company: CompanyId, conn: ConnId },
    /// A user's last connection is gone.
    UserOffline { company: CompanyId, user_id: UserId },
    /// An agent is available: a connection opened with status `available`, or the status was
    /// set to `available`.
    AgentAvailable { company: CompanyId, user_id: UserId },
}

/// How a hub reaches one connection.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub id: ConnId,
    deliver: Recipient<Deliver>,
    close: Recipient<CloseConnection>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The session's mailbox is full: a slow consumer, to be evicted.
    Slow,
    /// The session is already gone; its own deregistration is on the way.
    Gone,
}

impl ConnectionHandle {
    pub fn new(id: ConnId, deliver: Recipient<Deliver>, close: Recipient<CloseConnection>) -> Self {
        Self { id, deliver, close }
    }

    /// Queues `frame` without waiting; never grows the mailbox past its capacity.
    pub fn deliver(&self, frame: &Frame) -> Delivery {
        match self.deliver.try_send(Deliver { frame: frame.clone() }) {
            Ok(()) => Delivery::Sent,
            Err(SendError::Full(_)) => Delivery::Slow,
            Err(SendError::Closed(_)) => Delivery::Gone,
        }
    }

    /// Asks the session to close. Queued even past a full mailbox, so it lands after the
    /// frames already waiting, if the session ever runs again.
    pub fn close(&self, code: CloseCode, reason: &'static str) {
        self.close.do_send(CloseConnection { code, reason });
    }
}

/// A connection that could not keep up, found during a fan-out.
#[derive(Debug, Clone)]
pub struct SlowConsumer {
    pub user_id: UserId,
    pub conn: ConnId,
}

/// Sends one frame to many connections; returns how many were reached, and records the slow
/// ones in `slow` (which allocates only when there are any).
pub fn fan_out<'a>(
    targets: impl IntoIterator<Item = (&'a UserId, &'a ConnectionHandle)>,
    frame: &Frame,
    slow: &mut Vec<SlowConsumer>,
) -> usize {
    let mut delivered = 0;
    for (user_id, handle) in targets {
        match handle.deliver(frame) {
            Delivery::Sent => delivered += 1,
            Delivery::Slow => slow.push(SlowConsumer { user_id: user_id.clone(), conn: handle.id }),
            Delivery::Gone => {}
        }
    }
    delivered
}
