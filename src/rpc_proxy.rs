//! The RPC proxy (`docs/protocol.md` §11): an `rpc` frame becomes a signed HTTP POST to the
//! app's backend (`--rpc-proxy-url`) carrying the caller's verified identity, and the backend's
//! answer goes back to the client as `rpc_result` or `rpc_error` — server-side logic (the diary's
//! motivation messages, a CRM lookup) without the hub growing it, as Centrifugo's RPC proxy does.
//!
//! The request: `{"method","data","user":{"id","name","role","company"},"session_id"}` with
//! `X-Switchboard-Timestamp: <unix s>` and `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of
//! "<timestamp>.<body>">`, so the backend can check that the hub sent it, and when (a backend
//! refuses old timestamps to stop replays). It goes through the hub's one outbound HTTP client
//! ([`crate::outbound`], connections reused) within `--rpc-timeout-ms`.

use std::fmt::Write as _;
use std::time::Duration;

use google_calendar3::hyper::{self, StatusCode, Uri, body::Bytes};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::config::BackendSettings;
use crate::ids::{CompanyId, ConnId};
use crate::outbound::{self, HttpClient};
use crate::protocol::RpcMethod;
use crate::user::{UserRef, clean_text};

/// Largest `data` an `rpc` frame may carry (its JSON text).
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Most `rpc` calls one connection may have waiting on the backend.
pub const MAX_IN_FLIGHT: usize = 8;
/// Largest backend answer read; a bigger one is `backend_unavailable`.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Longest error message passed on from the backend.
const MAX_MESSAGE_CHARS: usize = 500;

/// Why a call has no result: the backend's own error, or one of the hub's (`not_configured`,
/// `backend_unavailable`, `rate_limited`). Sent to the client as `rpc_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFailure {
    pub code: String,
    pub message: String,
}

impl RpcFailure {
    fn new(code: &str, message: &str) -> Self {
        Self { code: code.to_owned(), message: message.to_owned() }
    }

    pub fn not_configured() -> Self {
        Self::new("not_configured", "this hub has no backend for rpc")
    }

    pub fn backend_unavailable() -> Self {
        Self::new("backend_unavailable", "the backend did not answer in time or not as agreed")
    }

    pub fn rate_limited() -> Self {
        Self::new("rate_limited", "too many rpc calls waiting on this connection")
    }
}

/// Who calls: the verified identity of the connection the `rpc` frame came on.
pub struct Caller<'a> {
    pub user: &'a UserRef,
    pub company: &'a CompanyId,
    pub session_id: ConnId,
}

#[derive(Serialize)]
struct ProxiedCall<'a> {
    method: &'a str,
    data: &'a Value,
    user: ProxiedUser<'a>,
    session_id: ConnId,
}

#[derive(Serialize)]
struct ProxiedUser<'a> {
    #[serde(flatten)]
    user: &'a UserRef,
    company: &'a CompanyId,
}

/// The configured backend and the client that reaches it.
pub struct RpcProxy {
    url: Uri,
    secret: Vec<u8>,
    timeout: Duration,
    http: HttpClient,
}

impl RpcProxy {
    /// The proxy, when `--rpc-proxy-url` is set (`Settings::validate` made sure the secret is
    /// too and that the URL parses).
    pub fn from_settings(
        settings: &BackendSettings,
        http: &dyn Fn() -> HttpClient,
    ) -> Option<Self> {
        let url = settings.rpc_proxy_url.as_deref()?.parse().ok()?;
        let secret = settings.rpc_proxy_secret.as_ref()?.expose().as_bytes().to_vec();
        Some(Self { url, secret, timeout: settings.rpc_timeout(), http: http() })
    }

    /// Builds the signed request for one call; sending it is [`RpcProxy::send`]. Split so the
    /// caller's borrowed identity is not held across the wait.
    pub fn request(
        &self,
        method: &RpcMethod,
        data: &Value,
        caller: &Caller<'_>,
    ) -> hyper::Request<outbound::Body> {
        let user = ProxiedUser { user: caller.user, company: caller.company };
        let call =
            ProxiedCall { method: method.as_str(), data, user, session_id: caller.session_id };
        let body =
            serde_json::to_vec(&call).unwrap_or_else(|e| panic!("a JSON value serializes: {e}"));
        let timestamp = chrono::Utc::now().timestamp();
        let builder = hyper::Request::post(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("X-Switchboard-Timestamp", timestamp.to_string())
            .header("X-Switchboard-Signature", signature(&self.secret, timestamp, &body));
        builder
            .body(outbound::body(body))
            .unwrap_or_else(|e| panic!("a parsed URI and fixed headers make a request: {e}"))
    }

    /// Sends a request made by [`RpcProxy::request`]; the backend's result or error.
    pub async fn send(&self, request: hyper::Request<outbound::Body>) -> Result<Value, RpcFailure> {
        match outbound::send(&self.http, request, self.timeout, MAX_ANSWER_BYTES).await {
            Ok((status, body)) => read_answer(status, &body),
            Err(why) => {
                log::warn!("rpc backend: {why}");
                Err(RpcFailure::backend_unavailable())
            }
        }
    }
}

/// The length of a value's JSON text, counted without writing it anywhere.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the shared secret.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let mut text = String::from("sha256=");
    for byte in mac.finalize().into_bytes() {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<BackendError>,
}

#[derive(Deserialize)]
struct BackendError {
    code: String,
    #[serde(default)]
    message: String,
}

/// What the backend said: 200 with `{"result"}` or `{"error":{"code","message"}}`; anything
/// else (another status, not JSON, neither or both, a code outside `[a-z0-9_]{1,64}`) is
/// `backend_unavailable`.
fn read_answer(status: StatusCode, body: &Bytes) -> Result<Value, RpcFailure> {
    let unavailable = |why: &str| {
        log::warn!("rpc backend answered {status}: {why}");
        RpcFailure::backend_unavailable()
    };
    if status != StatusCode::OK {
        return Err(unavailable("not 200"));
    }
    // `{"result": null}` is a result: tell it apart from a missing one.
    let raw: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| unavailable("not a JSON object"))?;
    let has_result = raw.contains_key("result");
    let answer: Answer = serde_json::from_value(Value::Object(raw))
        .map_err(|_| unavailable("not {result} or {error}"))?;
    match (has_result, answer.error) {
        (true, None) => Ok(answer.result.unwrap_or(Value::Null)),
        (false, Some(error)) if valid_code(&error.code) => Err(RpcFailure {
            code: error.code,
            message: clean_text(&error.message, MAX_MESSAGE_CHARS),
        }),
        (false, Some(_)) => Err(unavailable("an error code outside [a-z0-9_]{1,64}")),
        _ => Err(unavailable("neither or both of result and error")),
    }
}

fn valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_timestamp_dot_body() {
        // Python: hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    fn answer(status: u16, body: &str) -> Result<Value, RpcFailure> {
        read_answer(StatusCode::from_u16(status).unwrap(), &Bytes::from(body.to_owned()))
    }

    #[test]
    fn answers_are_a_result_an_error_or_unavailable() {
        assert_eq!(
            answer(200, r#"{"result":{"text":"hi"}}"#),
            Ok(serde_json::json!({"text":"hi"}))
        );
        assert_eq!(answer(200, r#"{"result":null}"#), Ok(Value::Null));
        let error = answer(200, r#"{"error":{"code":"no_quote","message":"none left"}}"#);
        assert_eq!(error, Err(RpcFailure { code: "no_quote".into(), message: "none left".into() }));
        for (status, body) in [
            (500, r#"{"result":1}"#),
            (200, "not json"),
            (200, "[1]"),
            (200, "{}"),
            (200, r#"{"result":1,"error":{"code":"x"}}"#),
            (200, r#"{"error":{"code":"Bad Code"}}"#),
            (200, r#"{"error":"flat"}"#),
        ] {
            assert_eq!(
                answer(status, body),
                Err(RpcFailure::backend_unavailable()),
                "{status} {body}"
            );
        }
    }
}
