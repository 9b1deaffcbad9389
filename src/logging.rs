//! Logging (`--log-format`, `docs/protocol.md` §10): env_logger, filtered by `RUST_LOG`
//! (default `info`), as text or as one JSON object per line — `timestamp`, `level`, `target`,
//! `message`, and the fields a log call attached (`request_id`, `conn_id`, `user_id`,
//! `company` where known). No log call anywhere passes a token or a secret.

use std::io::Write;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

use log::kv::{Error as KvError, Key, Value as KvValue, VisitSource};
use serde_json::{Map, Value};

use crate::config::LogFormat;

/// Installs the logger for the process.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|out, record| writeln!(out, "{}", json_line(record)));
    }
    builder.init();
}

/// The access log, one line per request: method, path (never the query string: tokens may
/// travel there), status, time, peer, and a request id — the client's `X-Request-Id` when it
/// sent a sane one, else a fresh one — which the response carries back.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(|| crate::ids::random_uuid().simple().to_string(), str::to_owned);
    // What the line needs is copied only when it will be written (not at `--log-level warn`).
    let line = log::log_enabled!(target: ACCESS, log::Level::Info).then(|| {
        let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
        (req.method().to_string(), req.path().to_owned(), peer)
    });
    let mut res = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), value);
    }
    if let Some((method, path, peer)) = line {
        let status = res.status().as_u16();
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        log::info!(
            target: ACCESS,
            request_id = request_id.as_str(), method = method.as_str(), path = path.as_str(), status = status, peer = peer.as_str();
            "{method} {path} {status} {duration_ms:.1}ms"
        );
    }
    Ok(res)
}

const REQUEST_ID: &str = "x-request-id";

/// The access log's target.
const ACCESS: &str = "switchboard::access";

/// One record as a JSON object.
pub fn json_line(record: &log::Record<'_>) -> Value {
    let mut line = Map::new();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    line.insert("timestamp".into(), now.into());
    line.insert("level".into(), record.level().as_str().into());
    line.insert("target".into(), record.target().into());
    line.insert("message".into(), record.args().to_string().into());
    let mut fields = Fields(&mut line);
    // A field that cannot be visited is left out; the line is still written.
    let _ = record.key_values().visit(&mut fields);
    Value::Object(line)
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: KvValue<'kvs>) -> Result<(), KvError> {
        let value = match (value.to_u64(), value.to_i64(), value.to_bool()) {
            (Some(n), _, _) => Value::from(n),
            (_, Some(n), _) => Value::from(n),
            (_, _, Some(b)) => Value::from(b),
            _ => Value::from(value.to_string()),
        };
        self.0.insert(key.as_str().to_owned(), value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_one_json_object_with_its_fields() {
        let args = format_args!("closing slow consumer");
        let fields: [(&str, KvValue<'_>); 3] = [
            ("conn_id", KvValue::from_display(&"a1b2")),
            ("user_id", KvValue::from("ann")),
            ("queued", KvValue::from(17u64)),
        ];
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Warn)
            .target("switchboard::hubs")
            .key_values(&fields)
            .build();
        let line = json_line(&record);
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], "switchboard::hubs");
        assert_eq!(line["message"], "closing slow consumer");
        assert_eq!(line["conn_id"], "a1b2");
        assert_eq!(line["user_id"], "ann");
        assert_eq!(line["queued"], 17);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
        let text = line.to_string();
        assert!(!text.contains('\n'), "one line");
    }
}
