//! Switchboard: a realtime hub for customer-contact teams. Agents keep a dashboard open,
//! customers call from a landing page, telephony providers post webhooks and voice assistants
//! call calendar functions; this one server connects them over WebSockets and REST, with strict
//! tenant isolation (every map is keyed by company first) and bounded memory per connection.
//!
//! The public contract is `PROTOCOL.md` (in the project's shared spec); the README shows it in
//! use.
//!
//! # Layout
//!
//! - [`config`]: settings (clap flags with env fallbacks) and sub-commands.
//! - [`startup`]: build the server (database, secret, hubs, routes) and run it.
//! - [`protocol`]: the WebSocket wire types; frames are encoded once per fan-out.
//! - [`ids`]: typed ids (`CompanyId`, `UserId`, `RoomName`, `ConnId`) parsed at the edge.
//! - [`error`]: the error codes and the one error type at the HTTP/WebSocket boundary.
//! - [`auth`]: JWT verify/issue, password hashing, the REST `Caller` extractor.
//! - [`db`]: SQLite pool, embedded migrations, `db::run`, queries per table.
//! - [`calls`]: the call model: statuses that only move forward, the normalized `CallEvent`.
//! - [`telephony`]: Twilio and Vapi webhooks: signature checks and their wire formats.
//! - [`calendar`]: the calendar tool: Google OAuth with PKCE, encrypted tokens at rest, the five
//!   functions, and the `CalendarTool` actor (one client per user).
//! - [`hubs`]: the central actors (`PresenceHub`, `RoomHub`, `CallHub`) and how they reach
//!   connections.
//! - [`ws`]: the WebSocket endpoint and the `WsSession` actor.
//! - [`routes`]: REST handlers by area, and the two pages (embedded from `static/`).
//! - [`state`]: what handlers and sessions share.
//! - [`limits`]: rate limiting and the client-IP rule.
//! - [`commands`]: `migrate`, `user add`, `token`.

pub mod auth;
pub mod calendar;
pub mod calls;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod hubs;
pub mod ids;
pub mod limits;
pub mod protocol;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telephony;
pub mod time;
pub mod user;
pub mod ws;
