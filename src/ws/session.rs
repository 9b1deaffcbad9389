//! `WsSession`: one actor per WebSocket. It owns the socket, the heartbeat, the inbound rate
//! limit, the reassembly of fragmented messages and the caller's verified identity; it turns
//! client frames into hub messages and writes whatever the hubs [`Deliver`] to it.
//!
//! Lifecycle, in one place each:
//! - **authenticate**: the identity comes from the handshake, or from a first `auth` frame
//!   within `auth_timeout` (else close 4001);
//! - **register**: [`WsSession::register`] tells the PresenceHub, with `wait` so nothing is
//!   handled before the `connected` frame is out;
//! - **deregister**: only in `stopping()`, which every ending reaches: a close frame, a dropped
//!   TCP connection (the stream ends, or the response body is dropped), a heartbeat timeout
//!   (`ctx.stop()`), a token expiry, or an eviction as a slow consumer.
//!
//! The mailbox holds `--session-queue` frames. When the client stops reading, actix-http stops
//! polling this actor (the socket's write buffer is full), the mailbox fills, and the hubs'
//! `try_send` fails: they evict this connection rather than buffer for it.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::web::{Bytes, BytesMut};
use actix_web_actors::ws;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::auth::{Identity, Role};
use crate::calendar::{self, functions::FunctionError, tool::RunFunction};
use crate::error::ErrorCode;
use crate::hubs::calls::{AcceptCall, EndCall, IsParty, RelaySignal, RequestCall, Signal};
use crate::hubs::presence::{Connect, DeliverToUser, Disconnect, SendOnlineUsers, SetAgentStatus};
use crate::hubs::rooms::{JoinRoom, LeaveRoom, Publish, RoomsByConnection};
use crate::hubs::{CloseConnection, ConnectionHandle, Deliver};
use crate::ids::{ConnId, RoomName};
use crate::limits::{InboundLimiter, Verdict};
use crate::protocol::{
    ClientMessage, CloseCode, ConnectionSummary, Request, ServerMessage, UserWithCompany,
    clean_text, decode, encode_reply, error_frame, timestamp, timestamp_from_unix,
};
use crate::state::SessionConfig;

/// The welcome text of the `connected` frame (kept from the systems this hub replaces).
const WELCOME: &str = "Successfully connected to WebSocket server";

/// Why a customer's `join_room` was refused.
const CUSTOMER_ROOMS: &str = "customers may only join the rooms of their own calls";
/// Longest `note` of a `call_request`, and `reason` of a `call_end`, kept.
const MAX_NOTE_CHARS: usize = 500;
const MAX_REASON_CHARS: usize = 64;

/// Longest single timer; a token valid for years is re-checked daily instead.
const MAX_TIMER: Duration = Duration::from_secs(24 * 3600);

/// One WebSocket connection. See the module docs.
pub struct WsSession {
    id: ConnId,
    config: std::sync::Arc<SessionConfig>,
    identity: Option<Identity>,
    /// On the legacy per-user paths, the user id the path named; the token must match it.
    required_user: Option<String>,
    /// Set once the PresenceHub has been told; `stopping()` deregisters only then.
    registered: bool,
    connected_at: DateTime<Utc>,
    last_heard: Instant,
    limiter: InboundLimiter,
    /// A fragmented message being reassembled: (is text, bytes so far).
    partial: Option<(bool, BytesMut)>,
}

impl WsSession {
    pub fn new(
        config: std::sync::Arc<SessionConfig>,
        identity: Option<Identity>,
        required_user: Option<String>,
    ) -> Self {
        let limiter = InboundLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        Self {
            id: ConnId::random(),
            config,
            identity,
            required_user,
            registered: false,
            connected_at: Utc::now(),
            last_heard: Instant::now(),
            limiter,
            partial: None,
        }
    }

    fn connection_handle(&self, ctx: &mut ws::WebsocketContext<Self>) -> ConnectionHandle {
        let address = ctx.address();
        ConnectionHandle::new(self.id, address.clone().recipient(), address.recipient())
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, reason: &str) {
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code.as_u16()),
            description: Some(reason.to_owned()),
        }));
        ctx.stop();
    }

    /// Answers `forbidden` with `why` unless `allowed`; true when the request may go on.
    fn permit(
        ctx: &mut ws::WebsocketContext<Self>,
        allowed: bool,
        why: &str,
        reference: Option<&Value>,
    ) -> bool {
        if !allowed {
            Self::send_error(ctx, ErrorCode::Forbidden, why, reference);
        }
        allowed
    }

    fn send_error(
        ctx: &mut ws::WebsocketContext<Self>,
        code: ErrorCode,
        text: &str,
        reference: Option<&Value>,
    ) {
        ctx.text(error_frame(code, text, reference));
    }

    /// Adds this connection to the directory and greets the client. Runs with `wait`, so
    /// frames from the hubs queue up behind the `connected` frame.
    fn register(&mut self, ctx: &mut ws::WebsocketContext<Self>, reference: Option<Value>) {
        let Some(identity) = self.identity.clone() else {
            return;
        };
        let handle = self.connection_handle(ctx);
        self.registered = true;
        let connect = Connect {
            company: identity.company.clone(),
            user: identity.user.clone(),
            handle: handle.clone(),
            connected_at: self.connected_at,
        };
        self.config
            .hubs
            .presence
            .send(connect)
            .into_actor(self)
            .map(move |result, act, ctx| match result {
                Ok(Ok(())) => {
                    let connected = ServerMessage::Connected {
                        session_id: act.id,
                        user: UserWithCompany { user: &identity.user, company: &identity.company },
                        heartbeat_interval_ms: act.config.heartbeat_interval.as_millis() as u64,
                        message: WELCOME,
                    };
                    ctx.text(encode_reply(&connected, reference.as_ref()));
                    if identity.role().is_staff() {
                        act.config.hubs.rooms.do_send(JoinRoom {
                            company: identity.company.clone(),
                            room: agents_room(),
                            user: identity.user.clone(),
                            requester: handle,
                            reference: None,
                            automatic: true,
                        });
                    }
                    act.watch_expiry(ctx);
                }
                Ok(Err(too_many)) => act.close(ctx, CloseCode::RateLimited, &too_many.to_string()),
                Err(e) => {
                    log::error!("presence hub unavailable: {e}");
                    act.close(ctx, CloseCode::InternalError, "internal error");
                }
            })
            .wait(ctx);
    }

    /// Closes with 4001 when the token's `exp` passes, unless an `auth` frame extended it.
    fn watch_expiry(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(identity) = &self.identity else {
            return;
        };
        let left = identity.expires_at.saturating_sub(Utc::now().timestamp());
        let delay = Duration::from_secs(u64::try_from(left).unwrap_or(0)).min(MAX_TIMER);
        ctx.run_later(delay, |act, ctx| {
            let expired =
                act.identity.as_ref().is_none_or(|i| i.expires_at <= Utc::now().timestamp());
            if expired {
                act.close(ctx, CloseCode::Unauthorized, "token expired");
            } else {
                act.watch_expiry(ctx);
            }
        });
    }

    fn on_message(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        if self.identity.is_none() {
            return self.on_first_frame(ctx, text);
        }
        match decode(text) {
            Ok(request) => self.dispatch(ctx, request),
            Err(e) => ctx.text(e.to_frame()),
        }
    }

    /// Before authentication the only acceptable frame is `auth`.
    fn on_first_frame(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let Ok(Request { message: ClientMessage::Auth { token }, reference }) = decode(text) else {
            return self.close(ctx, CloseCode::Unauthorized, "expected an auth frame first");
        };
        let identity = match self.config.tokens.verify(&token) {
            Ok(identity) => identity,
            Err(e) => {
                log::debug!("ws auth frame: {e}");
                return self.close(ctx, CloseCode::Unauthorized, "invalid token");
            }
        };
        if self.required_user.as_deref().is_some_and(|u| u != identity.user.id.as_str()) {
            return self.close(ctx, CloseCode::Forbidden, "user_mismatch");
        }
        self.identity = Some(identity);
        self.register(ctx, reference);
    }

    fn dispatch(&mut self, ctx: &mut ws::WebsocketContext<Self>, request: Request) {
        let Some(identity) = self.identity.clone() else {
            return;
        };
        let reference = request.reference;
        let role = identity.role();
        match request.message {
            ClientMessage::Ping => {
                let pong = ServerMessage::Pong { ts: Utc::now().timestamp_millis() };
                ctx.text(encode_reply(&pong, reference.as_ref()));
            }
            ClientMessage::Auth { token } => self.refresh_token(ctx, &token, reference),
            ClientMessage::JoinRoom { room } => {
                let Some(room) = parse_room(ctx, &room, reference.as_ref()) else {
                    return;
                };
                let requester = self.connection_handle(ctx);
                let join = JoinRoom {
                    company: identity.company.clone(),
                    room,
                    user: identity.user.clone(),
                    requester,
                    reference,
                    automatic: false,
                };
                if role != Role::Customer {
                    return self.config.hubs.rooms.do_send(join);
                }
                // Customers may join only the rooms of calls they are party to.
                let Some(call_id) = join.room.call_id().map(str::to_owned) else {
                    return Self::send_error(
                        ctx,
                        ErrorCode::Forbidden,
                        CUSTOMER_ROOMS,
                        join.reference.as_ref(),
                    );
                };
                let check =
                    IsParty { company: identity.company, call_id, user_id: identity.user.id };
                self.config
                    .hubs
                    .calls
                    .send(check)
                    .into_actor(self)
                    .map(move |is_party, act, ctx| {
                        if is_party.unwrap_or(false) {
                            act.config.hubs.rooms.do_send(join);
                        } else {
                            Self::send_error(
                                ctx,
                                ErrorCode::Forbidden,
                                CUSTOMER_ROOMS,
                                join.reference.as_ref(),
                            );
                        }
                    })
                    .spawn(ctx);
            }
            ClientMessage::LeaveRoom { room } => {
                let Some(room) = parse_room(ctx, &room, reference.as_ref()) else {
                    return;
                };
                if !Self::permit(
                    ctx,
                    !(room.is_agents() && role.is_staff()),
                    "the agents room is automatic for agents",
                    reference.as_ref(),
                ) {
                    return;
                }
                let requester = self.connection_handle(ctx);
                self.config.hubs.rooms.do_send(LeaveRoom {
                    company: identity.company,
                    room,
                    user_id: identity.user.id,
                    requester,
                    reference,
                });
            }
            ClientMessage::Publish { room, data } => {
                let Some(room) = parse_room(ctx, &room, reference.as_ref()) else {
                    return;
                };
                let requester = self.connection_handle(ctx);
                self.config.hubs.rooms.do_send(Publish {
                    company: identity.company,
                    room,
                    from: identity.user,
                    requester,
                    data,
                    reference,
                });
            }
            ClientMessage::GetOnlineUsers => {
                if !Self::permit(
                    ctx,
                    role.is_staff(),
                    "only agents and admins may list online users",
                    reference.as_ref(),
                ) {
                    return;
                }
                self.config.hubs.presence.do_send(SendOnlineUsers {
                    company: identity.company,
                    user_id: identity.user.id,
                    conn: self.id,
                    reference,
                });
            }
            ClientMessage::AgentStatus { status } => {
                if !Self::permit(
                    ctx,
                    role.is_staff(),
                    "only agents and admins have a status",
                    reference.as_ref(),
                ) {
                    return;
                }
                self.config.hubs.presence.do_send(SetAgentStatus {
                    company: identity.company,
                    user_id: identity.user.id,
                    conn: self.id,
                    status,
                    reference,
                });
            }
            ClientMessage::GetConnectionInfo => self.send_connection_info(ctx, identity, reference),
            ClientMessage::CallRequest { note } => {
                if !Self::permit(
                    ctx,
                    role == Role::Customer,
                    "only customers request calls",
                    reference.as_ref(),
                ) {
                    return;
                }
                let note = note.map(|n| clean_text(&n, MAX_NOTE_CHARS)).filter(|n| !n.is_empty());
                let requester = self.connection_handle(ctx);
                let request = RequestCall {
                    company: identity.company,
                    customer: identity.user,
                    requester,
                    note,
                    reference,
                };
                self.config.hubs.calls.do_send(request);
            }
            ClientMessage::CallAccept { call_id } => {
                if !Self::permit(
                    ctx,
                    role.is_staff(),
                    "only agents accept calls",
                    reference.as_ref(),
                ) {
                    return;
                }
                let requester = self.connection_handle(ctx);
                let accept = AcceptCall {
                    company: identity.company,
                    agent: identity.user,
                    requester,
                    call_id,
                    reference,
                };
                self.config.hubs.calls.do_send(accept);
            }
            ClientMessage::CallEnd { call_id, reason } => {
                let reason =
                    reason.map(|r| clean_text(&r, MAX_REASON_CHARS)).filter(|r| !r.is_empty());
                let requester = self.connection_handle(ctx);
                let end = EndCall {
                    company: identity.company,
                    user: identity.user,
                    requester,
                    call_id,
                    reason,
                    reference,
                };
                self.config.hubs.calls.do_send(end);
            }
            ClientMessage::FunctionCall { call_id, name, arguments } => {
                if !Self::permit(
                    ctx,
                    role != Role::Customer,
                    "customers have no calendar",
                    reference.as_ref(),
                ) {
                    return;
                }
                self.run_function(ctx, identity, call_id, name, arguments, reference);
            }
            ClientMessage::WebrtcOffer { call_id, sdp } => {
                self.relay(ctx, identity, call_id, Signal::Offer(sdp), reference)
            }
            ClientMessage::WebrtcAnswer { call_id, sdp } => {
                self.relay(ctx, identity, call_id, Signal::Answer(sdp), reference)
            }
            ClientMessage::IceCandidate { call_id, candidate } => {
                self.relay(ctx, identity, call_id, Signal::Candidate(candidate), reference)
            }
            // `decode` turns unknown types into an error before they get here.
            ClientMessage::Unknown => {}
        }
    }

    /// Runs a calendar function for this user; answers `function_result` or `function_error`,
    /// and shows `tool_call_executed` on all of the user's connections.
    fn run_function(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        identity: Identity,
        call_id: String,
        name: String,
        arguments: Value,
        reference: Option<Value>,
    ) {
        let run = RunFunction {
            company: identity.company.clone(),
            user_id: identity.user.id.clone(),
            name: name.clone(),
            arguments: arguments.clone(),
        };
        self.config
            .hubs
            .calendar
            .send(run)
            .into_actor(self)
            .map(move |result, act, ctx| {
                let result = result.unwrap_or_else(|_| Err(FunctionError::unavailable()));
                let answer = match &result {
                    Ok(output) => {
                        ServerMessage::FunctionResult { call_id: &call_id, name: &name, output }
                    }
                    Err(e) => ServerMessage::FunctionError {
                        call_id: &call_id,
                        name: &name,
                        code: e.code,
                        message: &e.message,
                    },
                };
                ctx.text(encode_reply(&answer, reference.as_ref()));
                let frame = calendar::executed_frame(&call_id, &name, &arguments, &result, None);
                let (company, user_id) = (identity.company, identity.user.id);
                act.config.hubs.presence.do_send(DeliverToUser { company, user_id, frame });
            })
            .spawn(ctx);
    }

    fn relay(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        identity: Identity,
        call_id: String,
        signal: Signal,
        reference: Option<Value>,
    ) {
        let requester = self.connection_handle(ctx);
        let relay = RelaySignal {
            company: identity.company,
            from: identity.user,
            requester,
            call_id,
            signal,
            reference,
        };
        self.config.hubs.calls.do_send(relay);
    }

    /// A later `auth` frame: a fresh token for the same user and company extends the
    /// connection; another user's token is refused; an invalid token closes it (4001).
    fn refresh_token(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        token: &str,
        reference: Option<Value>,
    ) {
        let fresh = match self.config.tokens.verify(token) {
            Ok(fresh) => fresh,
            Err(e) => {
                log::debug!("ws refresh: {e}");
                return self.close(ctx, CloseCode::Unauthorized, "invalid token");
            }
        };
        let Some(current) = self.identity.as_mut() else {
            return;
        };
        if fresh.user.id != current.user.id || fresh.company != current.company {
            return Self::send_error(
                ctx,
                ErrorCode::UserMismatch,
                "the token is for another user",
                reference.as_ref(),
            );
        }
        current.expires_at = fresh.expires_at;
        let refreshed =
            ServerMessage::AuthRefreshed { expires_at: timestamp_from_unix(fresh.expires_at) };
        ctx.text(encode_reply(&refreshed, reference.as_ref()));
    }

    fn send_connection_info(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        identity: Identity,
        reference: Option<Value>,
    ) {
        let query = RoomsByConnection { company: identity.company, conn: Some(self.id) };
        self.config
            .hubs
            .rooms
            .send(query)
            .into_actor(self)
            .map(move |result, act, ctx| {
                let rooms = result.ok().and_then(|mut m| m.remove(&act.id)).unwrap_or_default();
                let summary = ConnectionSummary {
                    session_id: act.id,
                    user: identity.user,
                    rooms,
                    connected_at: timestamp(act.connected_at),
                };
                ctx.text(encode_reply(
                    &ServerMessage::ConnectionInfo(&summary),
                    reference.as_ref(),
                ));
            })
            .spawn(ctx);
    }

    /// Counts a complete inbound message against the rate limit; false when it is dropped.
    fn admit(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        match self.limiter.check(Instant::now()) {
            Verdict::Accept => true,
            Verdict::Reject => {
                Self::send_error(ctx, ErrorCode::RateLimited, "too many frames, slow down", None);
                false
            }
            Verdict::Disconnect => {
                self.close(ctx, CloseCode::RateLimited, "rate limit exceeded");
                false
            }
        }
    }

    fn on_complete(&mut self, ctx: &mut ws::WebsocketContext<Self>, is_text: bool, bytes: Bytes) {
        if !self.admit(ctx) {
            return;
        }
        if !is_text {
            return Self::send_error(
                ctx,
                ErrorCode::InvalidMessage,
                "frames are JSON text, not binary",
                None,
            );
        }
        match ByteString::try_from(bytes) {
            Ok(text) => self.on_message(ctx, &text),
            Err(_) => self.close(ctx, CloseCode::ProtocolError, "text is not UTF-8"),
        }
    }

    /// Reassembles fragmented messages, counting the fragments together against the limit.
    fn on_fragment(&mut self, ctx: &mut ws::WebsocketContext<Self>, item: Item) {
        let (first, bytes) = match item {
            Item::FirstText(b) => (Some(true), b),
            Item::FirstBinary(b) => (Some(false), b),
            Item::Continue(b) | Item::Last(b) => (None, b),
        };
        match first {
            Some(is_text) => {
                if self.partial.is_some() {
                    return self.close(
                        ctx,
                        CloseCode::ProtocolError,
                        "new message inside a fragmented one",
                    );
                }
                self.partial = Some((is_text, BytesMut::from(&bytes[..])));
            }
            None => {
                let Some((_, buffer)) = self.partial.as_mut() else {
                    return self.close(
                        ctx,
                        CloseCode::ProtocolError,
                        "continuation without a first frame",
                    );
                };
                buffer.extend_from_slice(&bytes);
            }
        }
        if self.partial.as_ref().is_some_and(|(_, b)| b.len() > self.config.max_message_bytes) {
            self.partial = None;
            self.close(ctx, CloseCode::TooBig, "message too big");
        }
    }
}

fn agents_room() -> RoomName {
    RoomName::parse(RoomName::AGENTS)
        .unwrap_or_else(|| unreachable!("'agents' is a valid room name"))
}

fn parse_room(
    ctx: &mut ws::WebsocketContext<WsSession>,
    room: &str,
    reference: Option<&Value>,
) -> Option<RoomName> {
    let parsed = RoomName::parse(room);
    if parsed.is_none() {
        WsSession::send_error(
            ctx,
            ErrorCode::InvalidMessage,
            "room names are 1-64 characters of A-Z a-z 0-9 _ . : -",
            reference,
        );
    }
    parsed
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.config.mailbox_capacity);
        ctx.run_interval(self.config.heartbeat_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.config.client_timeout {
                log::debug!("{:?} timed out", act.id);
                // The peer has stopped answering: send a close frame in case it is only slow,
                // and stop without waiting for its answer. `stopping()` cleans up.
                act.close(ctx, CloseCode::Normal, "heartbeat timeout");
                return;
            }
            ctx.ping(b"");
        });
        if self.identity.is_some() {
            self.register(ctx, None);
        } else {
            ctx.run_later(self.config.auth_timeout, |act, ctx| {
                if act.identity.is_none() {
                    act.close(ctx, CloseCode::Unauthorized, "no auth frame in time");
                }
            });
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        if self.registered
            && let Some(identity) = &self.identity
        {
            self.config.hubs.presence.do_send(Disconnect {
                company: identity.company.clone(),
                user_id: identity.user.id.clone(),
                conn: self.id,
            });
            self.registered = false;
        }
        Running::Stop
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let message = match item {
            Ok(message) => message,
            Err(ws::ProtocolError::Overflow) => {
                return self.close(ctx, CloseCode::TooBig, "message too big");
            }
            Err(e) => {
                log::debug!("{:?} protocol error: {e}", self.id);
                return self.close(ctx, CloseCode::ProtocolError, "protocol error");
            }
        };
        self.last_heard = Instant::now();
        match message {
            ws::Message::Text(text) => self.on_complete(ctx, true, text.into_bytes()),
            ws::Message::Binary(bytes) => self.on_complete(ctx, false, bytes),
            ws::Message::Continuation(item) => {
                let is_last = matches!(item, Item::Last(_));
                self.on_fragment(ctx, item);
                if is_last && let Some((is_text, buffer)) = self.partial.take() {
                    self.on_complete(ctx, is_text, buffer.freeze());
                }
            }
            ws::Message::Ping(payload) => {
                if self.admit(ctx) {
                    ctx.pong(&payload);
                }
            }
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
        }
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        ctx.text(msg.frame);
    }
}

impl Handler<CloseConnection> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: CloseConnection, ctx: &mut Self::Context) {
        self.close(ctx, msg.code, msg.reason);
    }
}
