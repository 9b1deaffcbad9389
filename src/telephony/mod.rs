//! Telephony providers: how their webhooks are authenticated and what their messages mean.
//! Pure functions over the wire formats (see the project's research notes on Twilio and Vapi);
//! the HTTP handlers live in `routes::webhooks`.

pub mod twilio;
pub mod vapi;

use subtle::ConstantTimeEq;

/// Compares two secrets without leaking, through timing, how much of them matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `inbound` or `outbound`, from a provider's finer direction names.
pub fn normalize_direction(raw: &str) -> Option<String> {
    let raw = raw.to_ascii_lowercase();
    if raw.starts_with("inbound") {
        Some("inbound".into())
    } else if raw.starts_with("outbound") {
        Some("outbound".into())
    } else if raw.is_empty() {
        None
    } else {
        Some(raw)
    }
}
