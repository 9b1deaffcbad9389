//! The five calendar functions of `docs/protocol.md` §7: their names, their arguments (an object,
//! or a JSON string as OpenAI and Vapi send them), and their errors. Arguments are checked here,
//! before anything is sent to Google; a `user_id` among them is ignored, since the acting user
//! always comes from the token or the call's owner.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use crate::error::FunctionErrorCode;

/// A validated function call.
#[derive(Debug, Clone, PartialEq)]
pub enum Function {
    CheckAvailability { start: DateTime<Utc>, end: DateTime<Utc> },
    CreateEvent(NewAppointment),
    Reschedule { event_id: String, start: DateTime<Utc>, end: DateTime<Utc> },
    Cancel { event_id: String },
    GetDetails { event_id: String },
}

/// What `create_calendar_event` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAppointment {
    pub summary: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub attendee_email: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    /// The Google event id to create it under, derived from who asked and the tool call (see
    /// [`event_id_for`]): a retried call finds the event it already made instead of a second.
    pub event_id: Option<String>,
}

/// The Google event id of `create_calendar_event` for one tool call of one user: lowercase
/// base32hex (Google's alphabet for ids) of a hash of company, user and tool-call id.
pub fn event_id_for(company: &str, user: &str, tool_call_id: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let digest = Sha256::digest(format!("{company}\n{user}\n{tool_call_id}").as_bytes());
    // 160 bits in groups of 40, five bits a character: 32 characters.
    let mut id = String::with_capacity(32);
    for chunk in digest[..20].chunks(5) {
        let group = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        for shift in (0..8).rev() {
            id.push(char::from(ALPHABET[((group >> (shift * 5)) & 31) as usize]));
        }
    }
    id
}

/// A function that could not run, with a single-line message for a person or a model.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    pub code: FunctionErrorCode,
    pub message: String,
}

impl FunctionError {
    pub fn new(code: FunctionErrorCode, message: impl Into<String>) -> Self {
        // Vapi wants single-line strings; so do logs.
        let message = message.into().replace(['\n', '\r'], " ");
        Self { code, message }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(FunctionErrorCode::InvalidArguments, message)
    }

    pub fn not_connected() -> Self {
        Self::new(
            FunctionErrorCode::CalendarNotConnected,
            "this user has not connected a Google Calendar",
        )
    }

    pub fn not_found() -> Self {
        Self::new(FunctionErrorCode::NotFound, "no such appointment in this calendar")
    }

    pub fn unavailable() -> Self {
        Self::new(
            FunctionErrorCode::CalendarUnavailable,
            "Google Calendar is not answering, try again later",
        )
    }
}

/// Every function name, for `unknown_function` messages.
pub const NAMES: [&str; 5] = [
    "check_calendar_availability",
    "create_calendar_event",
    "reschedule_appointment",
    "cancel_appointment",
    "get_appointment_details",
];

/// Longest text argument kept (summary, description).
const MAX_TEXT: usize = 2000;

/// Parses a call by name; `arguments` may be an object or a JSON string holding one.
/// `name` as one of [`NAMES`], or `"unknown"`: a bounded label for the metrics.
pub fn known_name(name: &str) -> &'static str {
    NAMES.iter().find(|known| **known == name).copied().unwrap_or("unknown")
}

pub fn parse(name: &str, arguments: &Value) -> Result<Function, FunctionError> {
    if !NAMES.contains(&name) {
        return Err(FunctionError::new(
            FunctionErrorCode::UnknownFunction,
            format!("unknown function '{name}' (known: {})", NAMES.join(", ")),
        ));
    }
    let parsed;
    let args: &Map<String, Value> = match arguments {
        Value::Object(map) => map,
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| FunctionError::invalid(format!("arguments are not JSON: {e}")))?;
            parsed
                .as_object()
                .ok_or_else(|| FunctionError::invalid("arguments must be a JSON object"))?
        }
        Value::Null => return Err(FunctionError::invalid("arguments are missing")),
        _ => return Err(FunctionError::invalid("arguments must be a JSON object")),
    };
    let args = Args(args);
    Ok(match name {
        "check_calendar_availability" => {
            let (start, end) = args.range("datetime_start", "datetime_end")?;
            Function::CheckAvailability { start, end }
        }
        "create_calendar_event" => {
            let (start, end) = args.range("datetime_start", "datetime_end")?;
            let attendee_email = args.optional_text("attendee_email")?;
            if attendee_email.as_deref().is_some_and(|e| !looks_like_email(e)) {
                return Err(FunctionError::invalid("attendee_email is not an email address"));
            }
            Function::CreateEvent(NewAppointment {
                summary: args.text("summary")?,
                start,
                end,
                attendee_email,
                description: args.optional_text("description")?,
                timezone: args.optional_text("timezone")?,
                event_id: None,
            })
        }
        "reschedule_appointment" => {
            let (start, end) = args.range("new_datetime_start", "new_datetime_end")?;
            Function::Reschedule { event_id: args.event_id()?, start, end }
        }
        "cancel_appointment" => Function::Cancel { event_id: args.event_id()? },
        _ => Function::GetDetails { event_id: args.event_id()? },
    })
}

struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn optional_text(&self, key: &str) -> Result<Option<String>, FunctionError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().chars().take(MAX_TEXT).collect())),
            Some(_) => Err(FunctionError::invalid(format!("{key} must be a string"))),
        }
    }

    fn text(&self, key: &str) -> Result<String, FunctionError> {
        self.optional_text(key)?.ok_or_else(|| FunctionError::invalid(format!("{key} is required")))
    }

    fn time(&self, key: &str) -> Result<DateTime<Utc>, FunctionError> {
        let text = self.text(key)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(|_| {
            FunctionError::invalid(format!(
                "{key} must be an RFC 3339 time such as 2026-03-04T09:00:00-05:00"
            ))
        })
    }

    fn range(
        &self,
        start: &str,
        end: &str,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), FunctionError> {
        let (from, to) = (self.time(start)?, self.time(end)?);
        if to <= from {
            return Err(FunctionError::invalid(format!("{end} must be after {start}")));
        }
        Ok((from, to))
    }

    /// Google event ids are base32hex-ish; anything with a path character would change the URL.
    fn event_id(&self) -> Result<String, FunctionError> {
        let id = self.text("event_id")?;
        let ok = id.len() <= 1024
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then_some(id)
            .ok_or_else(|| FunctionError::invalid("event_id is not a calendar event id"))
    }
}

fn looks_like_email(value: &str) -> bool {
    let mut parts = value.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_may_be_an_object_or_a_json_string() {
        let object = json!({"datetime_start": "2026-03-04T09:00:00-05:00", "datetime_end": "2026-03-04T10:00:00-05:00"});
        let string = Value::String(object.to_string());
        let a = parse("check_calendar_availability", &object).unwrap();
        assert_eq!(a, parse("check_calendar_availability", &string).unwrap());
        let Function::CheckAvailability { start, .. } = a else { panic!() };
        assert_eq!(start.to_rfc3339(), "2026-03-04T14:00:00+00:00");
    }

    #[test]
    fn bad_arguments_never_reach_google() {
        let code = |name: &str, args: Value| parse(name, &args).unwrap_err().code;
        use FunctionErrorCode::*;
        assert_eq!(code("book_flight", json!({})), UnknownFunction);
        assert_eq!(
            code(
                "check_calendar_availability",
                json!({"datetime_start": "tomorrow", "datetime_end": "2026-03-04T10:00:00Z"})
            ),
            InvalidArguments
        );
        assert_eq!(
            code(
                "check_calendar_availability",
                json!({"datetime_start": "2026-03-04T10:00:00Z", "datetime_end": "2026-03-04T09:00:00Z"})
            ),
            InvalidArguments
        );
        assert_eq!(
            code(
                "create_calendar_event",
                json!({"datetime_start": "2026-03-04T09:00:00Z", "datetime_end": "2026-03-04T10:00:00Z"})
            ),
            InvalidArguments
        );
        assert_eq!(
            code(
                "create_calendar_event",
                json!({"summary": "x", "datetime_start": "2026-03-04T09:00:00Z", "datetime_end": "2026-03-04T10:00:00Z", "attendee_email": "nope"})
            ),
            InvalidArguments
        );
        assert_eq!(
            code("cancel_appointment", json!({"event_id": "../../other"})),
            InvalidArguments
        );
        assert_eq!(code("cancel_appointment", Value::String("{not json".into())), InvalidArguments);
        assert_eq!(code("get_appointment_details", Value::Null), InvalidArguments);
    }

    #[test]
    fn a_user_id_among_the_arguments_is_ignored() {
        let args = json!({"event_id": "abc123", "user_id": "someone-else"});
        assert_eq!(
            parse("cancel_appointment", &args).unwrap(),
            Function::Cancel { event_id: "abc123".into() }
        );
    }

    #[test]
    fn messages_are_single_line() {
        assert_eq!(FunctionError::invalid("a\nb").message, "a b");
    }
}
