use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard::auth::Role;

use crate::helpers::{TEST_SECRET, spawn_app, spawn_app_with};

fn unsigned_token(header: &str, claims: &Value) -> String {
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

fn hs256(claims: &Value) -> String {
    let key = EncodingKey::from_secret(TEST_SECRET.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

#[actix_web::test]
async fn login_returns_a_token_that_works() {
    let app = spawn_app().await;
    let id = app.create_user("ann@acme.test", "correct horse", "agent", "acme");

    let (status, body) = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "Ann@Acme.test ", "password": "correct horse"}),
            None,
        )
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"],
        json!({"id": id, "name": "Test User", "role": "agent", "company": "acme"})
    );
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    let (status, me) = app.get("/api/v1/me", Some(body["token"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    assert_eq!(me["sub"], id.as_str());
    assert_eq!(me["company"], "acme");
    assert_eq!(me["role"], "agent");
}

#[actix_web::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_user("ann@acme.test", "correct horse", "agent", "acme");

    let wrong = app
        .post("/api/v1/auth/login", &json!({"email": "ann@acme.test", "password": "nope"}), None)
        .await;
    let unknown = app
        .post("/api/v1/auth/login", &json!({"email": "bob@acme.test", "password": "nope"}), None)
        .await;

    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.1["error"], "invalid_credentials");
    assert_eq!(wrong, unknown);
}

#[actix_web::test]
async fn login_is_rate_limited_per_ip() {
    let app = spawn_app_with(&["--auth-rate-per-minute", "3"]).await;
    let attempt = json!({"email": "x@acme.test", "password": "whatever"});
    for _ in 0..3 {
        assert_eq!(app.post("/api/v1/auth/login", &attempt, None).await.0, 401);
    }
    let (status, body) = app.post("/api/v1/auth/login", &attempt, None).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "rate_limited");
}

#[actix_web::test]
async fn malformed_login_body_is_invalid_message() {
    let app = spawn_app().await;
    let (status, body) = app.post_raw("/api/v1/auth/login", "{not json", None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_message");
}

#[actix_web::test]
async fn guests_get_customer_tokens_for_known_companies_only() {
    let app = spawn_app_with(&["--default-company", "acme"]).await;
    app.create_user("ann@acme.test", "correct horse", "agent", "acme");

    let (status, body) = app.post_raw("/api/v1/auth/guest", "", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "customer");
    assert_eq!(body["user"]["company"], "acme");
    assert_eq!(body["user"]["name"], "Guest");
    assert!(body["user"]["id"].as_str().unwrap().starts_with("guest-"));

    let (status, named) =
        app.post("/api/v1/auth/guest", &json!({"company": "acme", "name": " Jo "}), None).await;
    assert_eq!(status, 200);
    assert_eq!(named["user"]["name"], "Jo");
    assert_ne!(named["user"]["id"], body["user"]["id"], "every guest is a fresh subject");

    let (status, body) = app.post("/api/v1/auth/guest", &json!({"company": "nobody"}), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "unknown_company");
}

#[actix_web::test]
async fn guest_tokens_are_rate_limited_per_ip() {
    let app = spawn_app_with(&["--auth-rate-per-minute", "2"]).await;
    app.create_user("ann@default.test", "correct horse", "agent", "default");
    assert_eq!(app.post_raw("/api/v1/auth/guest", "", None).await.0, 200);
    assert_eq!(app.post_raw("/api/v1/auth/guest", "", None).await.0, 200);
    let (status, body) = app.post_raw("/api/v1/auth/guest", "", None).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "rate_limited");
}

#[actix_web::test]
async fn refresh_keeps_the_claims_and_the_lifetime() {
    let app = spawn_app().await;
    let token = app.token_for("u1", Role::Agent, "acme", Duration::from_secs(600));

    let (status, body) = app.post_raw("/api/v1/auth/refresh", "", Some(&token)).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"],
        json!({"id": "u1", "name": "u1 name", "role": "agent", "company": "acme"})
    );
    let (_, me) = app.get("/api/v1/me", Some(body["token"].as_str().unwrap())).await;
    let lifetime = me["exp"].as_i64().unwrap() - me["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 600);
}

#[actix_web::test]
async fn bad_tokens_are_401_invalid_token() {
    let app = spawn_app().await;
    let exp = in_an_hour();
    let past = chrono::Utc::now().timestamp() - 5;
    let cases = [
        ("no token", None),
        ("garbage", Some("not.a.token".to_owned())),
        (
            "alg none",
            Some(unsigned_token(
                r#"{"alg":"none","typ":"JWT"}"#,
                &json!({"sub": "u", "role": "admin", "company": "c", "exp": exp}),
            )),
        ),
        (
            "unknown role",
            Some(hs256(&json!({"sub": "u", "role": "root", "company": "c", "exp": exp}))),
        ),
        ("no exp", Some(hs256(&json!({"sub": "u", "role": "agent", "company": "c"})))),
        (
            "expired",
            Some(hs256(&json!({"sub": "u", "role": "agent", "company": "c", "exp": past}))),
        ),
        (
            "empty company",
            Some(hs256(&json!({"sub": "u", "role": "agent", "company": "", "exp": exp}))),
        ),
        (
            "other secret",
            Some(
                jsonwebtoken::encode(
                    &Header::new(Algorithm::HS256),
                    &json!({"sub": "u", "role": "agent", "company": "c", "exp": exp}),
                    &EncodingKey::from_secret(b"some-other-secret-entirely!!"),
                )
                .unwrap(),
            ),
        ),
    ];
    for (name, token) in cases {
        let (status, body) = app.get("/api/v1/me", token.as_deref()).await;
        assert_eq!(status, 401, "{name}");
        assert_eq!(body["error"], "invalid_token", "{name}");
        let (status, _) = app.post_raw("/api/v1/auth/refresh", "", token.as_deref()).await;
        assert_eq!(status, 401, "refresh with {name}");
    }
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[actix_web::test]
async fn external_rs256_and_es256_tokens_need_issuer_and_audience() {
    for (public, private, alg) in [
        ("rsa_public.pem", "rsa_private.pem", Algorithm::RS256),
        ("ec_public.pem", "ec_private.pem", Algorithm::ES256),
    ] {
        let key_path = fixture(public);
        let app = spawn_app_with(&[
            "--jwt-public-key",
            &key_path,
            "--jwt-issuer",
            "https://idp.test",
            "--jwt-audience",
            "switchboard",
        ])
        .await;
        let pem = std::fs::read(fixture(private)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let sign = |claims: Value| jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
        let base = json!({"sub": "ext-1", "role": "agent", "company": "acme", "exp": in_an_hour()});

        let mut good = base.clone();
        good["iss"] = json!("https://idp.test");
        good["aud"] = json!("switchboard");
        let (status, me) = app.get("/api/v1/me", Some(&sign(good.clone()))).await;
        assert_eq!(status, 200, "{alg:?}: {me}");
        assert_eq!(me["sub"], "ext-1");

        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = json!("someone-else");
        assert_eq!(app.get("/api/v1/me", Some(&sign(wrong_aud))).await.0, 401, "{alg:?} audience");
        assert_eq!(
            app.get("/api/v1/me", Some(&sign(base))).await.0,
            401,
            "{alg:?} without iss/aud"
        );
    }
}

#[actix_web::test]
async fn an_rs256_token_is_refused_without_a_public_key() {
    let app = spawn_app().await;
    let pem = std::fs::read(fixture("rsa_private.pem")).unwrap();
    let claims = json!({"sub": "u", "role": "admin", "company": "c", "exp": in_an_hour()});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap();
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.0, 401);
}

/// A login attempt from `ip` (through a trusted proxy on 127.0.0.1); the HTTP status.
async fn login_from(app: &crate::helpers::TestApp, ip: &str, password: &str) -> u16 {
    let body = json!({"email": "ann@acme.test", "password": password});
    let mut res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .insert_header(("x-forwarded-for", ip))
        .send_json(&body)
        .await
        .expect("login");
    let _ = res.body().await;
    res.status().as_u16()
}

#[actix_web::test]
async fn nobody_can_lock_a_named_user_out_from_elsewhere() {
    let flags = ["--trusted-proxies", "127.0.0.1", "--auth-rate-per-minute", "3"];
    let app = crate::helpers::spawn_app_with(&flags).await;
    app.create_user("ann@acme.test", "correct horse", "agent", "acme");
    // Someone guesses Ann's password from one address until refused …
    for _ in 0..3 {
        assert_eq!(login_from(&app, "203.0.113.9", "guess").await, 401);
    }
    assert_eq!(login_from(&app, "203.0.113.9", "guess").await, 429);
    // … and Ann still signs in from hers.
    assert_eq!(login_from(&app, "198.51.100.7", "correct horse").await, 200);

    // IPv6 addresses count per /64: another address in the same /64 is the same client.
    for _ in 0..3 {
        assert_eq!(login_from(&app, "2001:db8:1:2::1", "guess").await, 401);
    }
    assert_eq!(login_from(&app, "2001:db8:1:2::ffff", "correct horse").await, 429);
    assert_eq!(login_from(&app, "2001:db8:1:3::1", "correct horse").await, 200);
}
