//! `WsSession`: one actor per WebSocket. It owns the socket, the heartbeat, the inbound rate
//! limit, the reassembly of fragmented messages and the caller's verified identity. Frames
//! from the client are decoded here and handed to [`super::frames`], which turns them into hub
//! messages; whatever the hubs deliver ([`ToConnection`]) is written out as it is.
//!
//! Lifecycle, in one place each:
//! - **authenticate**: the identity comes from the handshake, or from a first `auth` frame
//!   within `auth_timeout` (else close 4001);
//! - **register**: with a token in the handshake, [`WsSession::upgrade`] admits the connection
//!   and hands its `Connect` to the PresenceHub (batched per worker turn, see [`outbox`])
//!   before the 101; after an `auth` frame, `register_late` does it with `wait`, so nothing is
//!   handled before the `connected` frame is out;
//! - **deregister**: only in `stopping()`, which every ending reaches: a close frame, a dropped
//!   TCP connection (the stream ends, or the response body is dropped), a heartbeat timeout
//!   (`ctx.stop()`), a token expiry, or an eviction as a slow consumer.
//!
//! The mailbox holds `--session-queue` frames. When the client stops reading, actix-http stops
//! polling this actor (the socket's write buffer is full), the mailbox fills, and the hubs'
//! `try_send` fails: they evict this connection rather than buffer for it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use futures_core::Stream;
use serde_json::Value;

use crate::auth::{Identity, TokenRejected};
use crate::db::{self, agents};
use crate::error::ErrorCode;
use crate::hubs::ReplyTo;
use crate::hubs::connection::{ConnectionHandle, ToConnection};
use crate::hubs::presence::{Connect, Disconnect, PresenceHub, outbox};
use crate::hubs::rooms::JoinRoom;
use crate::ids::{CompanyId, ConnId, RoomName};
use crate::limits::{InboundLimiter, Verdict};
use crate::metrics::Metrics;
use crate::net::{CapGuard, SocketHandle, SocketLife};
use crate::protocol::{
    AgentStatus, ClientMessage, CloseCode, Frame, Request, ServerMessage, UserWithCompany, decode,
    encode_reply, error_frame,
};
use crate::state::SessionConfig;
use crate::user::UserRef;
use crate::ws::guard::{Trip, Tripped};

/// The actor context every handler of a session gets.
pub(super) type Ctx = ws::WebsocketContext<WsSession>;

/// Writes a frame to the client, counting it by type.
pub(super) fn write_counted(metrics: &Metrics, ctx: &mut Ctx, frame: Frame) {
    metrics.frame_out(&frame);
    ctx.text(frame);
}

/// The welcome text of the `connected` frame (kept from the systems this hub replaces).
const WELCOME: &str = "Successfully connected to WebSocket server";

/// How long a client that broke the protocol (1002) or announced too much (1009) has to take
/// its close frame before the socket is reset.
const ABUSE_GRACE: Duration = Duration::from_secs(1);

/// The close reason (4008) of a connection over `--max-connections-per-user`.
const TOO_MANY_FOR_USER: &str = "too many connections for this user";

/// One WebSocket connection. See the module docs.
pub struct WsSession {
    pub(super) id: ConnId,
    pub(super) config: Arc<SessionConfig>,
    pub(super) identity: Option<Identity>,
    /// On the legacy per-user paths, the user id the path named; the token must match it.
    required_user: Option<String>,
    /// Whether the PresenceHub knows this connection. It is set before the `Connect` is sent,
    /// and `stopping()` sends `Disconnect` only when it is set: a connection that never
    /// authenticated was never in any hub, and one that did is removed exactly once, however
    /// it ends (a `Connect` the hub refused is answered by closing, and the hub's `Disconnect`
    /// handler is idempotent for that case).
    registered: bool,
    pub(super) connected_at: DateTime<Utc>,
    last_heard: Instant,
    /// When the next ping is due.
    next_ping: Instant,
    /// The one timer (see `arm_timer`).
    timer: Option<SpawnHandle>,
    limiter: InboundLimiter,
    /// A fragmented message being reassembled: (is text, bytes so far).
    partial: Option<(bool, BytesMut)>,
    /// A fragment of the message being received was dropped by the rate limit: the rest of it
    /// is dropped too, up to its last fragment.
    discarding: bool,
    /// The TCP side: the socket handle, the per-IP count, the transport guard's verdict.
    pub(super) transport: Transport,
    /// This connection's place under `--max-connections-per-user`, taken at registration and
    /// held until the session (and with it the socket) is gone.
    user_slot: Option<CapGuard>,
    /// `rpc` calls waiting on the backend (at most `rpc_proxy::MAX_IN_FLIGHT`).
    pub(super) rpc_in_flight: usize,
}

/// What a session holds of its TCP connection (see [`crate::net`]); all of it is released
/// when the session is dropped, which actix-http does when the socket is really gone.
pub struct Transport {
    pub socket: SocketHandle,
    pub life: SocketLife,
    /// This connection's place under `--max-connections-per-ip`.
    pub ip_slot: Option<CapGuard>,
    /// Set by the transport guard when the client announced too much or broke the framing.
    pub tripped: Tripped,
    pub client_ip: Option<IpAddr>,
}

/// A connection's `Connect`, prepared before the session has an address.
struct Announcement {
    hub: Addr<PresenceHub>,
    company: CompanyId,
    user: UserRef,
    conn: ConnId,
    socket: SocketHandle,
    connected_at: DateTime<Utc>,
}

impl Announcement {
    /// Queues the `Connect` in the worker's [`outbox`]; ready once it is in the hub's mailbox,
    /// ahead of anything a later frame or request of this client can send there.
    fn to(self, address: Addr<WsSession>, chosen: Option<AgentStatus>) -> outbox::HandedOver {
        let handle = ConnectionHandle::new(self.conn, address.recipient(), self.socket);
        let Self { hub, company, user, connected_at, .. } = self;
        outbox::connect(&hub, Connect { company, user, handle, connected_at, chosen })
    }
}

impl WsSession {
    pub fn new(
        config: Arc<SessionConfig>,
        identity: Option<Identity>,
        required_user: Option<String>,
        transport: Transport,
    ) -> Self {
        let limiter = InboundLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        let next_ping = Instant::now() + config.heartbeat_interval;
        Self {
            id: ConnId::random(),
            config,
            identity,
            required_user,
            registered: false,
            connected_at: Utc::now(),
            last_heard: Instant::now(),
            next_ping,
            timer: None,
            limiter,
            partial: None,
            discarding: false,
            transport,
            user_slot: None,
            rpc_in_flight: 0,
        }
    }

    /// How hubs reach this connection.
    pub(super) fn connection_handle(&self, ctx: &mut Ctx) -> ConnectionHandle {
        let address = ctx.address();
        let socket = self.transport.socket.clone();
        ConnectionHandle::new(self.id, address.recipient(), socket)
    }

    /// Where a hub sends its answer to a request of this connection.
    pub(super) fn reply_to(&self, ctx: &mut Ctx, reference: Option<Value>) -> Option<ReplyTo> {
        let user_id = self.identity.as_ref()?.user.id.clone();
        Some(ReplyTo { user_id, conn: self.connection_handle(ctx), reference })
    }

    /// Sends a close frame and stops. A peer that has not let the connection go within
    /// `--write-timeout-ms` (within [`ABUSE_GRACE`] after a 1002 or 1009: its input is being
    /// read and dropped meanwhile) has its socket reset.
    pub(super) fn close(&mut self, ctx: &mut Ctx, code: CloseCode, reason: &str) {
        self.config.hubs.metrics.closed(code);
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code.as_u16()),
            description: Some(reason.to_owned()),
        }));
        ctx.stop();
        match code {
            CloseCode::TooBig | CloseCode::ProtocolError => {
                self.transport.socket.reset_after(ABUSE_GRACE.min(self.config.write_timeout))
            }
            _ => self.transport.socket.reset_after_grace(),
        }
    }

    pub(super) fn send_error(
        &self,
        ctx: &mut Ctx,
        code: ErrorCode,
        text: &str,
        reference: Option<&Value>,
    ) {
        self.write(ctx, error_frame(code, text, reference));
    }

    /// Writes a frame to the client, counted by type (`docs/protocol.md` §10).
    pub(super) fn write(&self, ctx: &mut Ctx, frame: Frame) {
        write_counted(&self.config.hubs.metrics, ctx, frame);
    }

    /// Takes this connection's place under `--max-connections-per-user`; false when the user
    /// has none left (the connection is then closed with 4008, never in the directory).
    fn take_user_slot(&mut self, identity: &Identity) -> bool {
        let slot = self.config.caps.admit_user(identity.company.clone(), identity.user.id.clone());
        let Some(slot) = slot else {
            return false;
        };
        self.user_slot = Some(slot);
        self.registered = true;
        log::debug!(
            conn_id:% = self.id, user_id = identity.user.id.as_str(),
            company = identity.company.as_str();
            "connection opened"
        );
        true
    }

    /// What the directory will be told of this admitted connection, once it has an address.
    fn announcement(&self, identity: &Identity) -> Announcement {
        Announcement {
            hub: self.config.hubs.presence.clone(),
            company: identity.company.clone(),
            user: identity.user.clone(),
            conn: self.id,
            socket: self.transport.socket.clone(),
            connected_at: self.connected_at,
        }
    }

    /// Upgrades the handshake and starts the session. With a token in the handshake the
    /// connection is admitted and its `Connect` handed to the presence hub here, before the
    /// 101 goes out, so the client finds itself in the directory from its first frame on, and
    /// the 101 and `connected` (written as the session starts) leave in one write.
    pub async fn upgrade<S>(
        mut self,
        req: &HttpRequest,
        stream: S,
        frame_size: usize,
    ) -> Result<HttpResponse, actix_web::Error>
    where
        S: Stream<Item = Result<Bytes, PayloadError>> + 'static,
    {
        let admitted = self.identity.clone().filter(|identity| self.take_user_slot(identity));
        let announce =
            admitted.map(|identity| (self.announcement(&identity), self.chosen_status(&identity)));
        let (address, response) = ws::WsResponseBuilder::new(self, req, stream)
            .frame_size(frame_size)
            .start_with_addr()?;
        if let Some((announcement, chosen)) = announce {
            announcement.to(address, chosen.await).await;
        }
        Ok(response)
    }

    /// Registers a connection that authenticated with an `auth` frame, then answers it with
    /// `connected`. Runs with `wait`, so nothing else is handled before.
    fn register_late(&mut self, ctx: &mut Ctx, identity: Identity, reference: Option<Value>) {
        if !self.take_user_slot(&identity) {
            return self.close(ctx, CloseCode::RateLimited, TOO_MANY_FOR_USER);
        }
        let (announcement, address) = (self.announcement(&identity), ctx.address());
        let chosen = self.chosen_status(&identity);
        async move { announcement.to(address, chosen.await).await }
            .into_actor(self)
            .map(move |(), act, ctx| act.greet(ctx, &identity, reference))
            .wait(ctx);
    }

    /// The status a staff user chose last time (customers have none); their name is kept for
    /// the calls they own. A failed read is only logged: the agent starts `available`, as if
    /// they never chose.
    fn chosen_status(
        &self,
        identity: &Identity,
    ) -> impl Future<Output = Option<AgentStatus>> + use<> {
        let staff = identity.role().is_staff();
        let pool = self.config.pool.clone();
        let (company, user) = (identity.company.clone(), identity.user.clone());
        let at = Utc::now().timestamp();
        async move {
            if !staff {
                return None;
            }
            let read = db::run(&pool, move |conn| agents::seen(conn, &company, &user, at));
            read.await.unwrap_or_else(|e| {
                log::warn!("reading an agent's chosen status failed: {e}");
                None
            })
        }
    }

    /// The connection is in the directory: `connected`, the automatic `agents` room for staff,
    /// and the expiry watch.
    fn greet(&mut self, ctx: &mut Ctx, identity: &Identity, reference: Option<Value>) {
        let connected = ServerMessage::Connected {
            session_id: self.id,
            user: UserWithCompany { user: &identity.user, company: &identity.company },
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
            message: WELCOME,
        };
        self.write(ctx, encode_reply(&connected, reference.as_ref()));
        if identity.role().is_staff()
            && let Some(reply_to) = self.reply_to(ctx, None)
        {
            self.config.hubs.rooms.do_send(JoinRoom {
                company: identity.company.clone(),
                room: RoomName::agents(),
                user: identity.user.clone(),
                reply_to,
                automatic: true,
            });
        }
        self.arm_timer(ctx);
    }

    /// (Re)arms the session's one timer for the next heartbeat, or for the token's expiry when
    /// that comes first: one timer per connection, not one for each.
    fn arm_timer(&mut self, ctx: &mut Ctx) {
        if let Some(armed) = self.timer.take() {
            ctx.cancel_future(armed);
        }
        let mut delay = self.next_ping.saturating_duration_since(Instant::now());
        if let Some(identity) = &self.identity {
            let left = identity.expires_at.saturating_sub(Utc::now().timestamp());
            delay = delay.min(Duration::from_secs(u64::try_from(left).unwrap_or(0)));
        }
        self.timer = Some(ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.on_timer(ctx);
        }));
    }

    /// Closes with 4001 once the token's `exp` has passed (unless an `auth` frame extended it),
    /// with 1000 once the client has been silent past `--client-timeout-ms`; else pings when a
    /// heartbeat is due.
    fn on_timer(&mut self, ctx: &mut Ctx) {
        if self.identity.as_ref().is_some_and(|i| i.expires_at <= Utc::now().timestamp()) {
            return self.close(ctx, CloseCode::Unauthorized, "token expired");
        }
        let now = Instant::now();
        if now >= self.next_ping {
            if self.last_heard.elapsed() > self.config.client_timeout {
                log::debug!(conn_id:% = self.id; "connection timed out");
                // The peer has stopped answering: send a close frame in case it is only slow,
                // and stop without waiting for its answer. `stopping()` cleans up.
                return self.close(ctx, CloseCode::Normal, "heartbeat timeout");
            }
            ctx.ping(b"");
            self.next_ping = now + self.config.heartbeat_interval;
        }
        self.arm_timer(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx, text: &str) {
        if self.identity.is_none() {
            return self.on_first_frame(ctx, text);
        }
        let metrics = &self.config.hubs.metrics;
        match decode(text) {
            Ok(request) => {
                metrics.frame_in(request.message.kind());
                self.dispatch(ctx, request)
            }
            Err(e) => {
                metrics.frame_in("invalid");
                self.write(ctx, e.to_frame())
            }
        }
    }

    /// Before authentication the only acceptable frame is `auth`. Nothing else is handled
    /// while its token is verified (`wait`).
    fn on_first_frame(&mut self, ctx: &mut Ctx, text: &str) {
        let Ok(Request { message: ClientMessage::Auth { token }, reference }) = decode(text) else {
            self.config.hubs.metrics.frame_in("invalid");
            return self.close(ctx, CloseCode::Unauthorized, "expected an auth frame first");
        };
        self.config.hubs.metrics.frame_in("auth");
        let tokens = Arc::clone(&self.config.tokens);
        async move { tokens.verify_fresh(&token).await }
            .into_actor(self)
            .map(move |verified, act, ctx| act.authenticated(ctx, verified, reference))
            .wait(ctx);
    }

    fn authenticated(
        &mut self,
        ctx: &mut Ctx,
        verified: Result<Identity, TokenRejected>,
        reference: Option<Value>,
    ) {
        let identity = match verified {
            Ok(identity) => identity,
            Err(e) => {
                log::debug!(conn_id:% = self.id; "ws auth frame refused: {e}");
                return self.close(ctx, CloseCode::Unauthorized, "invalid token");
            }
        };
        if self.required_user.as_deref().is_some_and(|u| u != identity.user.id.as_str()) {
            return self.close(ctx, CloseCode::Forbidden, "user_mismatch");
        }
        self.identity = Some(identity.clone());
        self.register_late(ctx, identity, reference);
    }

    /// Counts a complete inbound message against the rate limit; false when it is dropped.
    fn admit(&mut self, ctx: &mut Ctx) -> bool {
        match self.limiter.check(Instant::now()) {
            Verdict::Accept => true,
            Verdict::Reject => {
                self.send_error(ctx, ErrorCode::RateLimited, "too many frames, slow down", None);
                false
            }
            Verdict::Disconnect => {
                self.close(ctx, CloseCode::RateLimited, "rate limit exceeded");
                false
            }
        }
    }

    fn on_complete(&mut self, ctx: &mut Ctx, is_text: bool, bytes: Bytes) {
        if !is_text {
            let text = "frames are JSON text, not binary";
            return self.send_error(ctx, ErrorCode::InvalidMessage, text, None);
        }
        match ByteString::try_from(bytes) {
            Ok(text) => self.on_message(ctx, &text),
            Err(_) => self.close(ctx, CloseCode::ProtocolError, "text is not UTF-8"),
        }
    }

    /// One fragment: added to the message, which is handled when its last fragment is in.
    fn on_continuation(&mut self, ctx: &mut Ctx, item: Item) {
        let is_last = matches!(item, Item::Last(_));
        if self.discarding {
            self.discarding = !is_last;
            return;
        }
        self.on_fragment(ctx, item);
        if is_last && let Some((is_text, buffer)) = self.partial.take() {
            self.on_complete(ctx, is_text, buffer.freeze());
        }
    }

    /// Reassembles fragmented messages, counting the fragments together against the limit.
    fn on_fragment(&mut self, ctx: &mut Ctx, item: Item) {
        let (first, bytes) = match item {
            Item::FirstText(b) => (Some(true), b),
            Item::FirstBinary(b) => (Some(false), b),
            Item::Continue(b) | Item::Last(b) => (None, b),
        };
        match (first, self.partial.as_mut()) {
            (Some(_), Some(_)) => {
                let text = "new message inside a fragmented one";
                return self.close(ctx, CloseCode::ProtocolError, text);
            }
            (Some(is_text), None) => self.partial = Some((is_text, BytesMut::from(&bytes[..]))),
            (None, Some((_, buffer))) => buffer.extend_from_slice(&bytes),
            (None, None) => {
                let text = "continuation without a first frame";
                return self.close(ctx, CloseCode::ProtocolError, text);
            }
        }
        if self.partial.as_ref().is_some_and(|(_, b)| b.len() > self.config.max_message_bytes) {
            self.partial = None;
            self.close(ctx, CloseCode::TooBig, "message too big");
        }
    }
}

impl Actor for WsSession {
    type Context = Ctx;

    fn started(&mut self, ctx: &mut Ctx) {
        ctx.set_mailbox_capacity(self.config.mailbox_capacity);
        match self.identity.clone() {
            // Admitted and in the directory since the handshake (`upgrade`); `greet` arms the
            // timer.
            Some(identity) if self.registered => self.greet(ctx, &identity, None),
            Some(_) => self.close(ctx, CloseCode::RateLimited, TOO_MANY_FOR_USER),
            None => {
                self.arm_timer(ctx);
                ctx.run_later(self.config.auth_timeout, |act, ctx| {
                    if act.identity.is_none() {
                        act.close(ctx, CloseCode::Unauthorized, "no auth frame in time");
                    }
                });
            }
        }
    }

    fn stopping(&mut self, _: &mut Ctx) -> Running {
        if self.registered
            && let Some(identity) = &self.identity
        {
            log::debug!(
                conn_id:% = self.id, user_id = identity.user.id.as_str(),
                company = identity.company.as_str();
                "connection closed"
            );
            let gone = Disconnect {
                company: identity.company.clone(),
                user_id: identity.user.id.clone(),
                conn: self.id,
            };
            outbox::disconnect(&self.config.hubs.presence, gone);
            self.registered = false;
        }
        Running::Stop
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Ctx) {
        let message = match item {
            Ok(message) => message,
            Err(ws::ProtocolError::Overflow) => {
                return self.close(ctx, CloseCode::TooBig, "message too big");
            }
            Err(_) if self.transport.tripped.get() == Some(Trip::TooBig) => {
                return self.close(ctx, CloseCode::TooBig, "message too big");
            }
            Err(_) if self.transport.tripped.get() == Some(Trip::Protocol) => {
                return self.close(ctx, CloseCode::ProtocolError, "fragmented control frame");
            }
            Err(e) => {
                log::debug!(conn_id:% = self.id; "protocol error: {e}");
                return self.close(ctx, CloseCode::ProtocolError, "protocol error");
            }
        };
        self.last_heard = Instant::now();
        // Every frame a client chooses to send counts against the rate limit: data frames,
        // each fragment, pings and pongs alike.
        let counted = !matches!(message, ws::Message::Close(_) | ws::Message::Nop);
        if counted && !self.admit(ctx) {
            if let ws::Message::Continuation(item) = &message {
                self.partial = None;
                self.discarding = !matches!(item, Item::Last(_));
            }
            return;
        }
        match message {
            ws::Message::Text(text) => self.on_complete(ctx, true, text.into_bytes()),
            ws::Message::Binary(bytes) => self.on_complete(ctx, false, bytes),
            ws::Message::Continuation(item) => self.on_continuation(ctx, item),
            ws::Message::Ping(payload) => ctx.pong(&payload),
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
                self.transport.socket.reset_after_grace();
            }
        }
    }
}

impl Handler<ToConnection> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: ToConnection, ctx: &mut Ctx) {
        match msg {
            ToConnection::Deliver(frame) => {
                self.config.hubs.metrics.delivered();
                self.write(ctx, frame);
            }
            ToConnection::Close { code, reason } => self.close(ctx, code, reason),
        }
    }
}
