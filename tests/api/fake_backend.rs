//! A fake app backend on loopback for the RPC proxy (`docs/protocol.md` §11), written the way a
//! real one would be: it checks `X-Switchboard-Signature` (HMAC-SHA256 of "<timestamp>.<body>",
//! compared in constant time) and the timestamp's age before reading anything, then answers by
//! method — a result that echoes who called, the backend's own error, a slow answer, a 500, a
//! body that is not JSON. It remembers every call it accepted and counts the ones it refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const SECRET: &str = "backend-shared-secret";
/// Older signatures are refused (replays).
const MAX_AGE_S: i64 = 300;

#[derive(Default)]
pub struct BackendState {
    /// Bodies of the calls that passed the signature check, in arrival order.
    pub calls: Vec<Value>,
    /// Requests refused for a missing, wrong or stale signature.
    pub refused: usize,
    /// The hub's TCP connections the calls came on (their client ports).
    pub connections: std::collections::HashSet<u16>,
    /// Calls being answered right now, and the most at once.
    pub in_flight: usize,
    pub most_in_flight: usize,
}

#[derive(Clone)]
pub struct FakeBackend {
    pub url: String,
    pub state: Arc<Mutex<BackendState>>,
}

impl FakeBackend {
    /// Starts the fake on a free loopback port (on the test's own actix system).
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(BackendState::default()));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route("/rpc", web::post().to(rpc))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the fake backend");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self { url: format!("http://127.0.0.1:{port}/rpc"), state }
    }

    /// The hub flags that point it here, with `secret` as the shared key.
    pub fn flags(&self, secret: &str) -> Vec<String> {
        vec!["--rpc-proxy-url".into(), self.url.clone(), "--rpc-proxy-secret".into(), secret.into()]
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, BackendState> {
        self.state.lock().unwrap()
    }
}

/// Whether the signature headers prove the hub sent `body` recently.
fn signed_by_the_hub(req: &HttpRequest, body: &[u8]) -> bool {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) =
        (header("X-Switchboard-Timestamp"), header("X-Switchboard-Signature"))
    else {
        return false;
    };
    let Ok(sent_at) = timestamp.parse::<i64>() else { return false };
    if (chrono::Utc::now().timestamp() - sent_at).abs() > MAX_AGE_S {
        return false;
    }
    let Some(hex) = signature.strip_prefix("sha256=") else { return false };
    let Some(claimed) = decode_hex(hex) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&claimed).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

async fn rpc(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<BackendState>>,
) -> HttpResponse {
    if !signed_by_the_hub(&req, &body) {
        state.lock().unwrap().refused += 1;
        return HttpResponse::Unauthorized().finish();
    }
    let call: Value = serde_json::from_slice(&body).unwrap();
    {
        let mut s = state.lock().unwrap();
        s.calls.push(call.clone());
        s.connections.extend(req.peer_addr().map(|a| a.port()));
        s.in_flight += 1;
        s.most_in_flight = s.most_in_flight.max(s.in_flight);
    }
    let answer = answer(&call).await;
    state.lock().unwrap().in_flight -= 1;
    answer
}

/// What each method answers. `data.sleep_ms` delays any of them.
async fn answer(call: &Value) -> HttpResponse {
    if let Some(ms) = call["data"]["sleep_ms"].as_u64() {
        actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
    }
    let name = call["user"]["name"].as_str().unwrap_or("you");
    match call["method"].as_str().unwrap_or("") {
        "motivation" => HttpResponse::Ok().json(json!({"result": {
            "text": format!("Keep going, {name}: one entry a day adds up."),
        }})),
        "echo" => HttpResponse::Ok().json(json!({"result": call})),
        "nothing" => HttpResponse::Ok().json(json!({"result": null})),
        "refuse" => HttpResponse::Ok()
            .json(json!({"error": {"code": "no_quote_today", "message": "Come back tomorrow."}})),
        "crash" => HttpResponse::InternalServerError().body("stack trace here"),
        "garbage" => HttpResponse::Ok().content_type("text/html").body("<html>oops</html>"),
        "bad_code" => HttpResponse::Ok().json(json!({"error": {"code": "Not Allowed!"}})),
        _ => HttpResponse::Ok().json(json!({"error": {"code": "unknown_method", "message": ""}})),
    }
}
