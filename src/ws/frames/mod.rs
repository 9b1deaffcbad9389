//! What a session does with each client frame (`docs/protocol.md` §4): one
//! small handler per frame, grouped by family, each checking the caller's role and handing a
//! hub message (with a [`ReplyTo`](crate::hubs::ReplyTo)) to the hub that owns the answer.
//! [`WsSession::dispatch`] only routes.
//!
//! | family | frames | module |
//! | --- | --- | --- |
//! | connection | `ping`, `auth` (refresh), `get_connection_info` | [`connection`] |
//! | rooms | `join_room`, `leave_room`, `get_room_members`, `publish` | [`rooms`] |
//! | presence | `get_online_users`, `agent_status` | [`presence`] |
//! | calls | `call_request`, `call_accept`, `call_decline`, `call_end`, `webrtc_*`, `ice_candidate` | [`calls`] |
//! | functions | `function_call` | [`functions`] |
//! | chat | `send_message`, `typing`, `mark_read` | [`chat`] |
//! | backend | `rpc` | [`rpc`] |

mod calls;
mod chat;
mod connection;
mod functions;
mod presence;
mod rooms;
mod rpc;

use std::sync::Arc;

use serde_json::Value;

use super::session::{Ctx, WsSession, write_counted};
use crate::auth::Identity;
use crate::error::ErrorCode;
use crate::hubs::calls::Signal;
use crate::metrics::Metrics;
use crate::protocol::{ClientMessage, Request, ServerMessage, encode_reply, error_frame};

/// One client request being handled: who asked (verified), the request's `ref`, and where
/// the answer is counted.
pub(super) struct Asked {
    pub identity: Identity,
    pub reference: Option<Value>,
    metrics: Arc<Metrics>,
}

impl Asked {
    /// Answers on this connection, echoing the `ref`.
    fn answer(&self, ctx: &mut Ctx, message: &ServerMessage<'_>) {
        write_counted(&self.metrics, ctx, encode_reply(message, self.reference.as_ref()));
    }

    fn error(&self, ctx: &mut Ctx, code: ErrorCode, text: &str) {
        let frame = error_frame(code, text, self.reference.as_ref());
        write_counted(&self.metrics, ctx, frame);
    }

    /// Answers `forbidden` with `why` unless `allowed`; true when the request may go on.
    fn permit(&self, ctx: &mut Ctx, allowed: bool, why: &str) -> bool {
        if !allowed {
            self.error(ctx, ErrorCode::Forbidden, why);
        }
        allowed
    }
}

impl WsSession {
    /// Routes an authenticated client's frame to its handler.
    pub(super) fn dispatch(&mut self, ctx: &mut Ctx, request: Request) {
        let Some(identity) = self.identity.clone() else {
            return;
        };
        let metrics = Arc::clone(&self.config.hubs.metrics);
        let asked = Asked { identity, reference: request.reference, metrics };
        match request.message {
            ClientMessage::Ping => Self::pong(ctx, &asked),
            ClientMessage::Auth { token } => self.refresh_token(ctx, asked, token),
            ClientMessage::GetConnectionInfo => self.send_connection_info(ctx, asked),
            ClientMessage::JoinRoom { room } => self.join_room(ctx, asked, &room),
            ClientMessage::LeaveRoom { room } => self.leave_room(ctx, asked, &room),
            ClientMessage::GetRoomMembers { room, cursor } => {
                self.room_members(ctx, asked, &room, cursor)
            }
            ClientMessage::Publish { room, data } => self.publish(ctx, asked, &room, data),
            ClientMessage::GetOnlineUsers => self.get_online_users(ctx, asked),
            ClientMessage::AgentStatus { status } => self.set_agent_status(ctx, asked, status),
            ClientMessage::CallRequest { note } => self.request_call(ctx, asked, note),
            ClientMessage::CallAccept { call_id } => self.accept_call(ctx, asked, call_id),
            ClientMessage::CallDecline { call_id } => self.decline_call(ctx, asked, call_id),
            ClientMessage::CallEnd { call_id, reason } => {
                self.end_call(ctx, asked, call_id, reason)
            }
            ClientMessage::WebrtcOffer { call_id, sdp } => {
                self.relay(ctx, asked, call_id, Signal::Offer(sdp))
            }
            ClientMessage::WebrtcAnswer { call_id, sdp } => {
                self.relay(ctx, asked, call_id, Signal::Answer(sdp))
            }
            ClientMessage::IceCandidate { call_id, candidate } => {
                self.relay(ctx, asked, call_id, Signal::Candidate(candidate))
            }
            ClientMessage::FunctionCall { call_id, name, arguments } => {
                self.run_function(ctx, asked, call_id, name, arguments)
            }
            ClientMessage::SendMessage { conversation, to, text, meta, client_id } => {
                let addressee = chat::Addressee { conversation, to };
                self.send_message(ctx, asked, addressee, &text, meta, client_id)
            }
            ClientMessage::Typing { conversation, active } => {
                self.typing(ctx, asked, &conversation, active)
            }
            ClientMessage::MarkRead { conversation, seq } => {
                self.mark_read(ctx, asked, &conversation, seq)
            }
            ClientMessage::Rpc { method, data } => self.rpc(ctx, asked, method, data),
            // `decode` turns unknown types into an error before they get here.
            ClientMessage::Unknown => {}
        }
    }
}
