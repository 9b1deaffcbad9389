//! Twilio voice status callbacks.
//!
//! Signature (`X-Twilio-Signature`): base64 of HMAC-SHA1, keyed with the auth token, over the
//! full URL Twilio requested (our `--public-url` + path + the raw query) followed by every form
//! parameter as name + value, sorted by name (and by value within a name). Twilio's own
//! validator also accepts the URL with the default port added or removed, so we try both.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha1::Sha1;

use super::{constant_time_eq, normalize_direction};
use crate::calls::CallStatus;

/// The signature Twilio sends for `url` and these form parameters.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `given` is Twilio's signature for this request, in constant time.
pub fn signature_matches(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    given: &str,
) -> bool {
    // Check every variant so the time taken does not depend on which one matched.
    url_variants(url)
        .iter()
        .map(|variant| {
            constant_time_eq(signature(auth_token, variant, params).as_bytes(), given.as_bytes())
        })
        .fold(false, |any, ok| any | ok)
}

/// The URL as given, plus the same with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        let Some(rest) = url.strip_prefix(scheme) else { continue };
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (host, tail) = rest.split_at(host_end);
        match host.strip_suffix(port) {
            Some(bare) => variants.push(format!("{scheme}{bare}{tail}")),
            None if !host.contains(':') => variants.push(format!("{scheme}{host}{port}{tail}")),
            None => {}
        }
    }
    variants
}

/// What a status callback says, mapped onto our call model.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCallback {
    pub call_sid: String,
    pub status: CallStatus,
    pub ended_reason: Option<String>,
    pub sequence: Option<i64>,
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Every parameter, as a JSON object (event log and `data`).
    pub params: Value,
}

/// Reads a status callback's form parameters.
pub fn parse_callback(params: &[(String, String)]) -> Result<StatusCallback, String> {
    let get = |name: &str| {
        params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    };
    let call_sid = get("CallSid").ok_or("CallSid is missing")?.to_owned();
    let raw_status = get("CallStatus").ok_or("CallStatus is missing")?;
    let (status, ended_reason) = match raw_status {
        "queued" => (CallStatus::Queued, None),
        "initiated" => (CallStatus::Initiated, None),
        "ringing" => (CallStatus::Ringing, None),
        "in-progress" | "answered" => (CallStatus::InProgress, None),
        "completed" | "busy" | "no-answer" | "canceled" => {
            (CallStatus::Ended, Some(raw_status.to_owned()))
        }
        "failed" => (CallStatus::Failed, Some("failed".to_owned())),
        other => return Err(format!("unknown CallStatus '{other}'")),
    };
    let sequence = match get("SequenceNumber") {
        Some(n) => Some(n.parse::<i64>().map_err(|_| "SequenceNumber is not a number")?),
        None => None,
    };
    let params_json: Map<String, Value> =
        params.iter().map(|(n, v)| (n.clone(), Value::String(v.clone()))).collect();
    Ok(StatusCallback {
        call_sid,
        status,
        ended_reason,
        sequence,
        direction: get("Direction").and_then(normalize_direction),
        from: get("From").map(str::to_owned),
        to: get("To").map(str::to_owned),
        params: Value::Object(params_json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    /// Twilio's documented example (the value on Twilio's security page).
    #[test]
    fn twilio_published_test_vector() {
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &p), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(signature_matches("12345", url, &p, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        let mut tampered = p.clone();
        tampered[2].1 = "9999".into();
        assert!(!signature_matches("12345", url, &tampered, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!signature_matches("54321", url, &p, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    /// A status-callback shaped vector, signed with and without the default port.
    #[test]
    fn status_callback_vectors_with_and_without_port() {
        let p = params(&[
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", "CA11111111111111111111111111111111"),
            ("CallStatus", "ringing"),
            ("Called", "+15558675310"),
            ("Caller", "+15017122661"),
            ("CallbackSource", "call-progress-events"),
            ("Direction", "outbound-api"),
            ("From", "+15017122661"),
            ("SequenceNumber", "1"),
            ("Timestamp", "Tue, 03 Mar 2026 10:00:01 +0000"),
            ("To", "+15558675310"),
        ]);
        let url = "https://hub.example.com/webhooks/twilio/status";
        assert_eq!(signature("12345", url, &p), "/xqMVYTBVBZOl2dLGyGzesXECdU=");
        assert_eq!(
            signature("12345", "https://hub.example.com:443/webhooks/twilio/status", &p),
            "xF6G2vs1ma7FU2MnIQJsBFFNiYk="
        );
        assert!(signature_matches("12345", url, &p, "xF6G2vs1ma7FU2MnIQJsBFFNiYk="));
        assert!(signature_matches("12345", url, &p, "/xqMVYTBVBZOl2dLGyGzesXECdU="));
    }

    #[test]
    fn url_variants_add_or_remove_default_ports() {
        assert_eq!(
            url_variants("https://h.example/x?a=1"),
            ["https://h.example/x?a=1", "https://h.example:443/x?a=1"]
        );
        assert_eq!(
            url_variants("http://h.example:80/x"),
            ["http://h.example:80/x", "http://h.example/x"]
        );
        assert_eq!(url_variants("http://127.0.0.1:8080/x"), ["http://127.0.0.1:8080/x"]);
    }

    #[test]
    fn callback_statuses_map_onto_ours() {
        let parse =
            |status: &str| parse_callback(&params(&[("CallSid", "CA1"), ("CallStatus", status)]));
        assert_eq!(parse("ringing").unwrap().status, CallStatus::Ringing);
        assert_eq!(parse("in-progress").unwrap().status, CallStatus::InProgress);
        for ended in ["completed", "busy", "no-answer", "canceled"] {
            let cb = parse(ended).unwrap();
            assert_eq!((cb.status, cb.ended_reason.as_deref()), (CallStatus::Ended, Some(ended)));
        }
        assert_eq!(parse("failed").unwrap().status, CallStatus::Failed);
        assert!(parse("teleported").is_err());
        assert!(parse_callback(&params(&[("CallStatus", "ringing")])).is_err());
    }
}
