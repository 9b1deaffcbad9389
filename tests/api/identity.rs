//! Bounded sessions and revocation (`docs/protocol.md` §2): refreshes never outlive
//! `--session-max-age-secs`, only our own tokens refresh, a disabled account's tokens and
//! connections stop; external identity providers by JWKS, with keys that rotate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::helpers::{TEST_SECRET, TestApp, spawn_app, spawn_app_with};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hs256(claims: &Value) -> String {
    let key = EncodingKey::from_secret(TEST_SECRET.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

/// The claims of a token (its signature is the server's business).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> (u16, Value) {
    let (status, body) = app.post_raw("/api/v1/auth/refresh", "", Some(token)).await;
    (status.as_u16(), body)
}

#[actix_web::test]
async fn no_chain_of_refreshes_outlives_the_session_max_age() {
    let app = spawn_app_with(&["--session-max-age-secs", "120"]).await;
    let claims = |signed_in: i64| {
        json!({"sub": "ann", "role": "agent", "company": "acme", "iat": now() - 5,
               "exp": now() + 3600, "auth_time": signed_in})
    };
    // Signed in 100 s ago: a refresh keeps the sign-in time and ends with the session.
    let signed_in = now() - 100;
    let (status, body) = refresh(&app, &hs256(&claims(signed_in))).await;
    assert_eq!(status, 200, "{body}");
    let refreshed = claims_of(body["token"].as_str().unwrap());
    assert_eq!(refreshed["auth_time"], signed_in);
    assert!(refreshed["exp"].as_i64().unwrap() <= signed_in + 120, "{refreshed}");
    // … and so does a refresh of the refreshed token.
    let (status, again) = refresh(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(claims_of(again["token"].as_str().unwrap())["auth_time"], signed_in);
    // Signed in longer ago than the maximum: no more refreshes.
    let (status, body) = refresh(&app, &hs256(&claims(now() - 121))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
    // A login starts a new session.
    app.create_user("ann@acme.test", "correct horse", "agent", "acme");
    let body = json!({"email": "ann@acme.test", "password": "correct horse"});
    let (_, login) = app.post("/api/v1/auth/login", &body, None).await;
    let fresh = claims_of(login["token"].as_str().unwrap());
    assert!((fresh["auth_time"].as_i64().unwrap() - now()).abs() < 5);
}

#[actix_web::test]
async fn a_disabled_account_loses_its_tokens_and_its_connections() {
    let app = spawn_app().await;
    let id = app.create_user("ann@acme.test", "correct horse", "agent", "acme");
    let body = json!({"email": "ann@acme.test", "password": "correct horse"});
    let (_, login) = app.post("/api/v1/auth/login", &body, None).await;
    let token = login["token"].as_str().unwrap().to_owned();
    let mut ws = app.connect(&token).await;

    cli(&app, &["user", "disable", "--email", "ann@acme.test"]);
    let disabled_at = Instant::now();
    assert_eq!(ws.expect_close().await, 4001);
    assert!(disabled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.0, 401);
    assert_eq!(refresh(&app, &token).await.0, 401);
    assert_eq!(
        app.connect_raw(&format!("/ws?token={token}"), &[]).await.err().map(|s| s.as_u16()),
        Some(401)
    );
    assert_eq!(app.post("/api/v1/auth/login", &body, None).await.0, 401);
    // Another user of the company is untouched.
    let (status, _) = app.get("/api/v1/me", Some(&app.token("bob", Role::Agent, "acme"))).await;
    assert_eq!(status, 200);

    cli(&app, &["user", "enable", "--email", "ann@acme.test"]);
    let enabled = wait_until(|| async { app.get("/api/v1/me", Some(&token)).await.0 == 200 }).await;
    assert!(enabled, "the token works again after user enable");
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.1["sub"], id.as_str());
    let unknown = cli_output(&app, &["user", "disable", "--email", "nobody@acme.test"]);
    assert!(!unknown.status.success());
}

fn cli_output(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .args(["--database-url", &app.db_url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run switchboard")
}

fn cli(app: &TestApp, args: &[&str]) {
    let output = cli_output(app, args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Polls `check` for up to 3 s.
async fn wait_until<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// An identity provider's JWKS endpoint on loopback: what it serves can change (key rotation,
/// an outage), and it counts the requests.
#[derive(Clone)]
struct FakeJwks {
    url: String,
    state: Arc<Mutex<(Value, u16, usize)>>,
}

impl FakeJwks {
    async fn start(keys: Value) -> Self {
        let state = Arc::new(Mutex::new((keys, 200, 0)));
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/jwks",
                web::get().to(|state: web::Data<Mutex<(Value, u16, usize)>>| async move {
                    let mut state = state.lock().unwrap();
                    state.2 += 1;
                    let status = actix_web::http::StatusCode::from_u16(state.1).unwrap();
                    HttpResponse::build(status).json(&state.0)
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self { url: format!("http://127.0.0.1:{port}/jwks"), state }
    }

    fn serve(&self, keys: Value, status: u16) {
        let mut state = self.state.lock().unwrap();
        (state.0, state.1) = (keys, status);
    }

    fn fetches(&self) -> usize {
        self.state.lock().unwrap().2
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn jwk(name: &str) -> Value {
    let keys: Value = serde_json::from_slice(&fixture("jwks_keys.json")).unwrap();
    keys[name].clone()
}

/// A token of the identity provider: its claims nest the role, and name the company with an
/// Auth0-style namespaced claim.
fn provider_token(alg: Algorithm, kid: &str, extra: Value) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap(),
        _ => EncodingKey::from_ec_pem(&fixture("ec_private.pem")).unwrap(),
    };
    let mut claims = json!({"sub": "auth0|ann", "iss": "https://idp.test/", "aud": "switchboard",
        "exp": now() + 600, "name": "Ann", "app_metadata": {"role": "agent"},
        "https://switchboard.test/company": "acme"});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A hub that takes the fake provider's tokens, with its claims where providers put them.
async fn hub_trusting(jwks: &FakeJwks) -> TestApp {
    spawn_app_with(&[
        "--jwt-jwks-url",
        &jwks.url,
        "--jwt-issuer",
        "https://idp.test/",
        "--jwt-audience",
        "switchboard",
        "--jwt-role-claim",
        "app_metadata.role",
        "--jwt-company-claim",
        "https://switchboard.test/company",
    ])
    .await
}

#[actix_web::test]
async fn an_identity_providers_keys_rotate_without_a_restart() {
    let jwks = FakeJwks::start(json!({"keys": [jwk("rsa")]})).await;
    let app = hub_trusting(&jwks).await;
    assert_eq!(jwks.fetches(), 1, "fetched at start");

    let rsa = provider_token(Algorithm::RS256, "rsa-1", json!({}));
    let (status, me) = app.get("/api/v1/me", Some(&rsa)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["sub"].as_str(), me["role"].as_str(), me["company"].as_str()),
        (Some("auth0|ann"), Some("agent"), Some("acme"))
    );
    // Claims where they are not configured to be, or another issuer: refused.
    let no_role = provider_token(Algorithm::RS256, "rsa-1", json!({"app_metadata": {}}));
    assert_eq!(app.get("/api/v1/me", Some(&no_role)).await.0, 401);
    let elsewhere = provider_token(Algorithm::RS256, "rsa-1", json!({"iss": "https://evil.test/"}));
    assert_eq!(app.get("/api/v1/me", Some(&elsewhere)).await.0, 401);
    // The provider's own tokens are refreshed by the provider.
    assert_eq!(refresh(&app, &rsa).await.0, 403);
    // Its tokens open WebSockets too.
    let mut ws = app.connect(&rsa).await;
    assert_eq!(ws.request(json!({"type": "ping"})).await["type"], "pong");

    // The provider rotates to a new key: a token signed with it makes the hub fetch again.
    jwks.serve(json!({"keys": [jwk("ec")]}), 200);
    let ec = provider_token(Algorithm::ES256, "ec-1", json!({}));
    assert_eq!(app.get("/api/v1/me", Some(&ec)).await.0, 200);
    assert_eq!(jwks.fetches(), 2);
    // The retired key no longer works, and made-up key ids do not make the hub fetch again
    // within 30 s.
    assert_eq!(app.get("/api/v1/me", Some(&rsa)).await.0, 401);
    let made_up = provider_token(Algorithm::ES256, "nope", json!({}));
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/me", Some(&made_up)).await.0, 401);
    }
    assert_eq!(jwks.fetches(), 2);
}

#[actix_web::test]
async fn a_jwks_that_cannot_be_fetched_keeps_the_last_good_keys() {
    let jwks = FakeJwks::start(json!({"keys": [jwk("rsa")]})).await;
    let app = hub_trusting(&jwks).await;
    jwks.serve(json!({"error": "down"}), 500);
    let ec = provider_token(Algorithm::ES256, "ec-1", json!({}));
    assert_eq!(app.get("/api/v1/me", Some(&ec)).await.0, 401);
    assert_eq!(jwks.fetches(), 2, "the unknown key id made the hub try");
    let rsa = provider_token(Algorithm::RS256, "rsa-1", json!({}));
    assert_eq!(app.get("/api/v1/me", Some(&rsa)).await.0, 200, "the last good keys are kept");
}
