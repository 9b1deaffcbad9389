//! How a hub reaches a connection without knowing the session type: a [`ConnectionHandle`]
//! (one recipient of [`ToConnection`]: an encoded frame, or a close), the
//! bounded [`fan_out`] every hub delivers with, and [`ReplyTo`], where the answer to a client's
//! request goes.
//!
//! Delivery is bounded: `try_send`, never a growing queue. A session whose mailbox is full (it
//! holds `--session-queue` frames) is a slow consumer; the delivering hub collects it in a
//! `Vec<SlowConsumer>` and has it evicted (see `hubs/presence.rs`).

use actix::dev::SendError;
use actix::prelude::*;
use serde_json::Value;

use crate::error::ErrorCode;
use crate::ids::{ConnId, UserId};
use crate::net::SocketHandle;
use crate::protocol::{CloseCode, Frame, ServerMessage, encode_reply, error_frame};

/// What a hub tells a connection: one recipient per handle, not one per kind of message
/// (each recipient is a boxed sender of its own, cloned with every handle).
#[derive(Message)]
#[rtype(result = "()")]
pub enum ToConnection {
    /// One encoded frame (the bytes are shared with every other recipient).
    Deliver(Frame),
    /// Close the socket with `code` and stop.
    Close { code: CloseCode, reason: &'static str },
}

/// How a hub reaches one connection.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub id: ConnId,
    recipient: Recipient<ToConnection>,
    socket: SocketHandle,
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
    pub fn new(id: ConnId, recipient: Recipient<ToConnection>, socket: SocketHandle) -> Self {
        Self { id, recipient, socket }
    }

    /// Queues `frame` without waiting; never grows the mailbox past its capacity.
    pub fn deliver(&self, frame: &Frame) -> Delivery {
        match self.recipient.try_send(ToConnection::Deliver(frame.clone())) {
            Ok(()) => Delivery::Sent,
            Err(SendError::Full(_)) => Delivery::Slow,
            Err(SendError::Closed(_)) => Delivery::Gone,
        }
    }

    /// Asks the session to close. Queued even past a full mailbox, so it lands after the
    /// frames already waiting, if the session ever runs again; and whether it does or not, the
    /// socket is reset once `--write-timeout-ms` has passed (a frozen session cannot close).
    pub fn close(&self, code: CloseCode, reason: &'static str) {
        self.recipient.do_send(ToConnection::Close { code, reason });
        self.socket.reset_after_grace();
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

/// Where the answer to a client's request goes: the connection that asked (and whose it is,
/// so a full mailbox can be reported) and the request's `ref`, echoed in every reply.
#[derive(Clone)]
pub struct ReplyTo {
    pub user_id: UserId,
    pub conn: ConnectionHandle,
    pub reference: Option<Value>,
}

impl ReplyTo {
    /// Sends `message` to the asking connection with the request's `ref`; a full mailbox is
    /// recorded in `slow`, as in [`fan_out`].
    pub fn reply(&self, message: &ServerMessage<'_>, slow: &mut Vec<SlowConsumer>) {
        self.send(&encode_reply(message, self.reference.as_ref()), slow);
    }

    /// Answers the request with an `error` frame.
    pub fn error(&self, code: ErrorCode, text: &str, slow: &mut Vec<SlowConsumer>) {
        self.send(&error_frame(code, text, self.reference.as_ref()), slow);
    }

    fn send(&self, frame: &Frame, slow: &mut Vec<SlowConsumer>) {
        fan_out([(&self.user_id, &self.conn)], frame, slow);
    }
}
