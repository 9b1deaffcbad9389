//! The calendar tool (`docs/protocol.md` §7): each user's own Google Calendar behind five functions
//! that a voice assistant or an agent can call.
//!
//! - [`oauth`]: the connect flow (consent URL with PKCE, code exchange, refresh) and the HTTP
//!   client shared with the Calendar API;
//! - [`crypto`]: refresh tokens encrypted at rest;
//! - [`token`]: our access-token provider for google-calendar3;
//! - [`functions`]: the functions' names, arguments and errors;
//! - [`google`]: running a function on a user's calendar;
//! - [`tool`]: the `CalendarTool` actor, one client per user.

pub mod crypto;
pub mod functions;
pub mod google;
pub mod oauth;
pub mod token;
pub mod tool;

pub use tool::CalendarTool;

use serde_json::Value;

use crate::protocol::{Frame, ServerMessage, encode};
use crate::time::timestamp;

/// `tool_call_executed`: what was run for the acting user, shown on their dashboard.
pub fn executed_frame(
    tool_call_id: &str,
    name: &str,
    arguments: &Value,
    result: &Result<Value, functions::FunctionError>,
    call_id: Option<&str>,
) -> Frame {
    encode(&ServerMessage::ToolCallExecuted {
        tool_call_id,
        name,
        arguments,
        ok: result.is_ok(),
        output: result.as_ref().ok(),
        error: result.as_ref().err().map(|e| e.message.as_str()),
        at: timestamp(chrono::Utc::now()),
        call_id,
    })
}
