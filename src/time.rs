//! The hub's clock and the one wire form of time. Stored timestamps are unix milliseconds;
//! every timestamp a client sees is RFC 3339 in UTC with milliseconds (`2026-01-26T18:41:38.130Z`).

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix milliseconds now, the form timestamps are stored in.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// RFC 3339 in UTC with milliseconds, the form every timestamp on the wire takes.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Unix milliseconds as an RFC 3339 timestamp.
pub fn timestamp_from_millis(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis).map(timestamp).unwrap_or_default()
}

/// Unix seconds as an RFC 3339 timestamp.
pub fn timestamp_from_unix(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).map(timestamp).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_millis_and_z() {
        let at = DateTime::from_timestamp_millis(1_769_452_898_130).unwrap();
        assert_eq!(timestamp(at), "2026-01-26T18:41:38.130Z");
        assert_eq!(timestamp_from_millis(1_769_452_898_130), "2026-01-26T18:41:38.130Z");
        assert_eq!(timestamp_from_unix(1_769_452_898), "2026-01-26T18:41:38.000Z");
    }
}
