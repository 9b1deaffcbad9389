//! Switchboard: a realtime hub for customer-contact teams. Agents keep a dashboard open,
//! customers call from a landing page, telephony providers post webhooks and voice assistants
//! call calendar functions; this one server connects them over WebSockets and REST, with strict
//! tenant isolation (every map is keyed by company first) and bounded memory per connection.
//!
//! The public contract is `PROTOCOL.md` in the project's shared spec; `docs/protocol.md` is this
//! project's own reference of it as built (every frame, route, setting, error and close code),
//! and the comments point there by section (`docs/protocol.md` §4 and so on).
//!
//! # Layout
//!
//! Modules depend one way, from the leaves up; no module imports one that imports it back.
//!
//! - Leaves: [`ids`] (typed ids parsed at the edge: `CompanyId`, `UserId`, `CallId`,
//!   `RoomName`, `ConnId`), [`user`] (`Role`, `UserRef`, cleaning display text), [`time`] (the
//!   clock and the wire form of time), [`error`] (the error codes and the one error type at the
//!   HTTP/WebSocket boundary), [`calls`] (the call model: statuses that only move forward, the
//!   normalized `CallEvent`), [`chat`] (conversation ids, the one rule of who may see one, what
//!   a message may carry).
//! - [`net`]: what a socket needs from outside its actor (`TCP_USER_TIMEOUT`, a reset handle,
//!   connection caps per IP and user); [`limits`]: rate limiting and the client-IP rule;
//!   [`outbound`]: the one outbound HTTP client (Google, JWKS, the RPC backend); [`metrics`]:
//!   the Prometheus metrics (atomic counters per frame type); [`logging`]: text or JSON logs
//!   and the access log with request ids.
//! - [`config`]: settings (clap flags with env fallbacks, one group per part of the hub) and
//!   sub-commands.
//! - [`protocol`]: the WebSocket wire types; frames are encoded once per fan-out.
//! - [`auth`]: JWT verify/issue, password hashing, the REST `Caller` extractor.
//! - [`db`]: SQLite pool, embedded migrations, `db::run`, queries per table.
//! - [`telephony`]: Twilio and Vapi: signature checks and their wire formats.
//! - [`rpc_proxy`]: `rpc` frames signed and forwarded to the app's backend.
//! - [`calendar`]: the calendar tool: Google OAuth with PKCE, encrypted tokens at rest, the five
//!   functions, and the `CalendarTool` actor (one client per user).
//! - [`hubs`]: the central actors (`PresenceHub`, `RoomHub`, `CallHub`, `ChatHub`), how they
//!   reach connections, and `hubs::calls::record` (store a call event, then push it).
//! - [`ws`]: the WebSocket endpoint, the `WsSession` actor and its per-frame handlers.
//! - [`routes`]: REST handlers by area, and the two pages (embedded from `static/`).
//! - [`state`]: what handlers and sessions share; [`accounts`]: the disabled-accounts watch;
//!   [`startup`]: build the server and run it; [`commands`]: `migrate`, `user add|disable|enable`,
//!   `token`.

pub mod accounts;
pub mod auth;
pub mod calendar;
pub mod calls;
pub mod chat;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod hubs;
pub mod ids;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod protocol;
pub mod routes;
pub mod rpc_proxy;
pub mod startup;
pub mod state;
pub mod telephony;
pub mod time;
pub mod user;
pub mod ws;
