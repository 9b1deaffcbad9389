//! A fake Google on loopback, speaking the real wire format our client code uses: the OAuth
//! token endpoint (authorization code with PKCE, refresh) and Calendar v3 (`calendars/primary`,
//! `freeBusy`, events insert/get/patch/delete). It checks client credentials, PKCE verifiers and
//! bearer tokens, keeps each Google account's events apart, counts what it was asked, and can
//! be told to fail.

// The fake's helpers return the HTTP answer to send as their error; its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "test-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "test-client-secret";

#[derive(Default)]
pub struct FakeState {
    /// code → (Google account, PKCE challenge registered by the test).
    codes: HashMap<String, (String, String)>,
    /// refresh token → account; removed tokens are revoked.
    refresh_tokens: HashMap<String, String>,
    /// access token → account.
    access_tokens: HashMap<String, String>,
    /// account → event id → event.
    pub events: HashMap<String, HashMap<String, Value>>,
    /// account → busy periods (start, end) as RFC 3339.
    busy: HashMap<String, Vec<(String, String)>>,
    /// Statuses the next Calendar API requests answer with, before normal service.
    faults: VecDeque<u16>,
    /// `expires_in` of issued access tokens.
    pub token_lifetime: u64,
    pub refreshes: usize,
    pub api_requests: usize,
    /// Request bodies of the Calendar API, in order.
    pub bodies: Vec<Value>,
    /// The next events.insert stores the event, then answers 503 (an answer lost on the way).
    pub lose_next_insert_answer: bool,
    /// Refresh tokens revoked through the revocation endpoint.
    pub revoked: Vec<String>,
    next_id: usize,
}

#[derive(Clone)]
pub struct FakeGoogle {
    pub base: String,
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeGoogle {
    /// Starts the fake on a free loopback port (on the test's own actix system).
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState { token_lifetime: 3600, ..Default::default() }));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/token", web::post().to(token))
                .route("/revoke", web::post().to(revoke))
                .route("/calendar/v3/calendars/primary", web::get().to(primary))
                .route("/calendar/v3/freeBusy", web::post().to(free_busy))
                .route("/calendar/v3/calendars/primary/events", web::post().to(insert))
                .route("/calendar/v3/calendars/primary/events/{id}", web::get().to(get))
                .route("/calendar/v3/calendars/primary/events/{id}", web::patch().to(patch))
                .route("/calendar/v3/calendars/primary/events/{id}", web::delete().to(delete))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the fake");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self { base: format!("http://127.0.0.1:{port}"), state }
    }

    /// The hub flags that point it here.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--google-client-id".into(),
            CLIENT_ID.into(),
            "--google-client-secret".into(),
            CLIENT_SECRET.into(),
            "--google-auth-url".into(),
            format!("{}/auth", self.base),
            "--google-token-url".into(),
            format!("{}/token", self.base),
            "--google-api-url".into(),
            format!("{}/calendar/v3/", self.base),
        ]
    }

    /// Lets `code` be exchanged once for `account`, if the verifier matches `challenge`.
    pub fn expect_code(&self, code: &str, account: &str, challenge: &str) {
        self.lock().codes.insert(code.into(), (account.into(), challenge.into()));
    }

    pub fn add_busy(&self, account: &str, start: &str, end: &str) {
        self.lock().busy.entry(account.into()).or_default().push((start.into(), end.into()));
    }

    pub fn fail_next(&self, statuses: &[u16]) {
        self.lock().faults.extend(statuses);
    }

    /// Makes every access token issued so far invalid (Google answers 401 to them).
    pub fn expire_access_tokens(&self) {
        self.lock().access_tokens.clear();
    }

    /// Revokes every refresh token of an account.
    pub fn revoke(&self, account: &str) {
        self.lock().refresh_tokens.retain(|_, a| a != account);
    }

    pub fn event(&self, account: &str, id: &str) -> Option<Value> {
        self.lock().events.get(account).and_then(|e| e.get(id)).cloned()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }
}

type State = web::Data<Mutex<FakeState>>;

fn google_error(status: u16, reason: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"error": {"code": status, "message": reason, "errors": [{"domain": "global", "reason": reason}]}}))
}

fn issue(state: &mut FakeState, account: &str) -> Value {
    state.next_id += 1;
    let access = format!("ya29.{account}-{}", state.next_id);
    state.access_tokens.insert(access.clone(), account.into());
    json!({"access_token": access, "expires_in": state.token_lifetime, "token_type": "Bearer",
           "scope": "https://www.googleapis.com/auth/calendar"})
}

async fn token(state: State, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    match field("grant_type") {
        "authorization_code" => {
            let Some((account, challenge)) = state.codes.remove(field("code")) else {
                return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
            };
            let digest = Sha256::digest(field("code_verifier").as_bytes());
            if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) != challenge
                || !field("redirect_uri").ends_with("/api/v1/calendar/oauth/callback")
            {
                return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
            }
            let refresh = format!("1//refresh-{account}-{}", state.refresh_tokens.len());
            state.refresh_tokens.insert(refresh.clone(), account.clone());
            let mut answer = issue(&mut state, &account);
            answer["refresh_token"] = json!(refresh);
            HttpResponse::Ok().json(answer)
        }
        "refresh_token" => {
            let Some(account) = state.refresh_tokens.get(field("refresh_token")).cloned() else {
                return HttpResponse::BadRequest()
                    .json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}));
            };
            state.refreshes += 1;
            HttpResponse::Ok().json(issue(&mut state, &account))
        }
        _ => HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"})),
    }
}

/// The account behind the request's bearer token, after any injected fault.
fn authorize(
    req: &HttpRequest,
    state: &mut FakeState,
    body: Option<&Value>,
) -> Result<String, HttpResponse> {
    state.api_requests += 1;
    if let Some(body) = body {
        state.bodies.push(body.clone());
    }
    if let Some(status) = state.faults.pop_front() {
        return Err(google_error(
            status,
            if status == 429 { "rateLimitExceeded" } else { "backendError" },
        ));
    }
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    state.access_tokens.get(bearer).cloned().ok_or_else(|| google_error(401, "authError"))
}

async fn primary(req: HttpRequest, state: State) -> HttpResponse {
    let mut state = state.lock().unwrap();
    match authorize(&req, &mut state, None) {
        Ok(account) => HttpResponse::Ok().json(json!({"kind": "calendar#calendar", "id": format!("{account}@example.com"), "timeZone": "Europe/Berlin"})),
        Err(e) => e,
    }
}

async fn free_busy(req: HttpRequest, state: State, body: web::Json<Value>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    let account = match authorize(&req, &mut state, Some(&body)) {
        Ok(account) => account,
        Err(e) => return e,
    };
    let (from, to) =
        (body["timeMin"].as_str().unwrap_or(""), body["timeMax"].as_str().unwrap_or(""));
    let busy: Vec<Value> = state
        .busy
        .get(&account)
        .into_iter()
        .flatten()
        .filter(|(start, end)| start.as_str() < to && end.as_str() > from)
        .map(|(start, end)| json!({"start": start, "end": end}))
        .collect();
    HttpResponse::Ok().json(json!({"kind": "calendar#freeBusy", "timeMin": from, "timeMax": to, "calendars": {"primary": {"busy": busy}}}))
}

/// events.insert: the client's own `id` when it gives one (base32hex, 5-1024 characters; an id
/// in use is 409 `duplicate`, as Google answers), else one of ours.
async fn insert(req: HttpRequest, state: State, body: web::Json<Value>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    let account = match authorize(&req, &mut state, Some(&body)) {
        Ok(account) => account,
        Err(e) => return e,
    };
    let id = match body.get("id").and_then(Value::as_str) {
        Some(id) => {
            let base32hex = |c: char| c.is_ascii_digit() || ('a'..='v').contains(&c);
            if !(5..=1024).contains(&id.len()) || !id.chars().all(base32hex) {
                return google_error(400, "invalidResourceId");
            }
            if state.events.get(&account).is_some_and(|e| e.contains_key(id)) {
                return google_error(409, "duplicate");
            }
            id.to_owned()
        }
        None => {
            state.next_id += 1;
            format!("evt{:06}", state.next_id)
        }
    };
    let mut event = body.into_inner();
    event["id"] = json!(id);
    event["status"] = json!("confirmed");
    event["htmlLink"] = json!(format!("https://calendar.example/event?eid={id}"));
    state.events.entry(account).or_default().insert(id, event.clone());
    if std::mem::take(&mut state.lose_next_insert_answer) {
        return google_error(503, "backendError");
    }
    HttpResponse::Ok().json(event)
}

/// The OAuth revocation endpoint: the refresh token stops working.
async fn revoke(state: State, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    let token = form.get("token").cloned().unwrap_or_default();
    if state.refresh_tokens.remove(&token).is_none() {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_token"}));
    }
    state.revoked.push(token);
    HttpResponse::Ok().finish()
}

fn with_event(
    req: &HttpRequest,
    state: &mut FakeState,
    body: Option<&Value>,
) -> Result<(String, String), HttpResponse> {
    let account = authorize(req, state, body)?;
    let id = req.match_info().get("id").unwrap_or("").to_owned();
    if state.events.get(&account).is_some_and(|e| e.contains_key(&id)) {
        Ok((account, id))
    } else {
        Err(google_error(404, "notFound"))
    }
}

async fn get(req: HttpRequest, state: State) -> HttpResponse {
    let mut state = state.lock().unwrap();
    match with_event(&req, &mut state, None) {
        Ok((account, id)) => HttpResponse::Ok().json(&state.events[&account][&id]),
        Err(e) => e,
    }
}

async fn patch(req: HttpRequest, state: State, body: web::Json<Value>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    match with_event(&req, &mut state, Some(&body)) {
        Ok((account, id)) => {
            let event = state.events.get_mut(&account).unwrap().get_mut(&id).unwrap();
            for (key, value) in body.as_object().unwrap() {
                event[key] = value.clone();
            }
            HttpResponse::Ok().json(event.clone())
        }
        Err(e) => e,
    }
}

async fn delete(req: HttpRequest, state: State) -> HttpResponse {
    let mut state = state.lock().unwrap();
    match with_event(&req, &mut state, None) {
        Ok((account, id)) => {
            state.events.get_mut(&account).unwrap().get_mut(&id).unwrap()["status"] =
                json!("cancelled");
            HttpResponse::NoContent().finish()
        }
        Err(e) => e,
    }
}
