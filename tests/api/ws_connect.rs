//! The handshake: where the token comes from, origins, legacy paths, the `connected` frame,
//! token expiry and refresh.

use std::time::Duration;

use serde_json::json;
use switchboard::auth::Role;

use crate::helpers::{HEARTBEAT_MS, spawn_app, spawn_app_with};

#[actix_web::test]
async fn token_in_the_query_gives_a_connected_frame() {
    let app = spawn_app().await;
    let token = app.token("agent-1", Role::Agent, "acme");
    let mut ws = app.connect_raw(&format!("/ws?token={token}"), &[]).await.unwrap();

    let connected = ws.next_json().await;

    assert_eq!(connected["type"], "connected");
    assert_eq!(
        connected["user"],
        json!({"id": "agent-1", "name": "agent-1 name", "role": "agent", "company": "acme"})
    );
    assert_eq!(connected["heartbeat_interval_ms"], HEARTBEAT_MS);
    assert_eq!(connected["message"], "Successfully connected to WebSocket server");
    assert_eq!(connected["session_id"].as_str().unwrap().len(), 32);
}

#[actix_web::test]
async fn token_in_the_authorization_header_works() {
    let app = spawn_app().await;
    let token = app.token("agent-1", Role::Agent, "acme");
    let bearer = format!("Bearer {token}");
    let mut ws = app.connect_raw("/ws", &[("Authorization", &bearer)]).await.unwrap();
    assert_eq!(ws.next_json().await["type"], "connected");
}

#[actix_web::test]
async fn an_auth_frame_authenticates_and_its_ref_is_echoed() {
    let app = spawn_app().await;
    let mut ws = app.connect_raw("/ws", &[]).await.unwrap();

    ws.send_json(
        json!({"type": "auth", "token": app.token("c-1", Role::Customer, "acme"), "ref": 1}),
    )
    .await;

    let connected = ws.next_json().await;
    assert_eq!(connected["type"], "connected");
    assert_eq!(connected["ref"], 1);
    assert_eq!(connected["user"]["role"], "customer");
}

#[actix_web::test]
async fn a_bad_token_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    assert_eq!(
        app.connect_raw("/ws?token=garbage", &[]).await.err(),
        Some(awc::http::StatusCode::UNAUTHORIZED)
    );
    // The same request as plain HTTP shows the JSON body.
    let (status, body) = app.get("/ws?token=garbage", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
}

#[actix_web::test]
async fn a_bad_auth_frame_closes_with_4001() {
    let app = spawn_app().await;
    let mut ws = app.connect_raw("/ws", &[]).await.unwrap();
    ws.send_json(json!({"type": "auth", "token": "garbage"})).await;
    assert_eq!(ws.expect_close().await, 4001);
}

#[actix_web::test]
async fn a_first_frame_that_is_not_auth_closes_with_4001() {
    let app = spawn_app().await;
    let mut ws = app.connect_raw("/ws", &[]).await.unwrap();
    ws.send_json(json!({"type": "ping"})).await;
    assert_eq!(ws.expect_close().await, 4001);
}

#[actix_web::test]
async fn no_auth_frame_in_time_closes_with_4001() {
    let app = spawn_app().await; // --auth-timeout-ms 500
    let mut ws = app.connect_raw("/ws", &[]).await.unwrap();
    assert_eq!(ws.expect_close().await, 4001);
}

#[actix_web::test]
async fn legacy_paths_must_name_the_tokens_own_user() {
    let app = spawn_app().await;
    let token = app.token("agent-1", Role::Agent, "acme");
    for prefix in ["/ws", "/api/v1/ws"] {
        let mut ws =
            app.connect_raw(&format!("{prefix}/agent-1?token={token}"), &[]).await.unwrap();
        assert_eq!(ws.next_json().await["type"], "connected", "{prefix}");

        let refused = app.connect_raw(&format!("{prefix}/agent-2?token={token}"), &[]).await.err();
        assert_eq!(refused, Some(awc::http::StatusCode::FORBIDDEN), "{prefix}");
        let (status, body) = app.get(&format!("{prefix}/agent-2?token={token}"), None).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (403, Some("user_mismatch")));
    }
    // With an auth frame, the mismatch is found after the upgrade: close 4003.
    let mut ws = app.connect_raw("/ws/agent-2", &[]).await.unwrap();
    ws.send_json(json!({"type": "auth", "token": token})).await;
    assert_eq!(ws.expect_close().await, 4003);
}

#[actix_web::test]
async fn origins_are_checked_against_the_servers_own_by_default() {
    let app = spawn_app().await;
    let token = app.token("agent-1", Role::Agent, "acme");
    let path = format!("/ws?token={token}");
    let own = app.address.clone();

    assert!(app.connect_raw(&path, &[("Origin", &own)]).await.is_ok());
    assert!(app.connect_raw(&path, &[]).await.is_ok(), "non-browser clients send no Origin");
    let refused = app.connect_raw(&path, &[("Origin", "https://evil.example")]).await.err();
    assert_eq!(refused, Some(awc::http::StatusCode::FORBIDDEN));
    // The same request as plain HTTP shows the JSON body.
    let mut res = app
        .http
        .get(app.url(&path))
        .insert_header(("Origin", "https://evil.example"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&res.body().await.unwrap()).unwrap();
    assert_eq!(body["error"], "origin_not_allowed");
}

#[actix_web::test]
async fn allowed_origins_can_be_listed_or_opened() {
    let listed =
        spawn_app_with(&["--allowed-origins", "https://app.example,https://other.example"]).await;
    let token = listed.token("agent-1", Role::Agent, "acme");
    let path = format!("/ws?token={token}");
    assert!(listed.connect_raw(&path, &[("Origin", "https://app.example")]).await.is_ok());
    assert!(
        listed.connect_raw(&path, &[("Origin", &listed.address)]).await.is_err(),
        "only the list"
    );

    let open = spawn_app_with(&["--allowed-origins", "*"]).await;
    let token = open.token("agent-1", Role::Agent, "acme");
    assert!(
        open.connect_raw(&format!("/ws?token={token}"), &[("Origin", "https://any.example")])
            .await
            .is_ok()
    );
}

#[actix_web::test]
async fn an_expiring_token_closes_with_4001() {
    let app = spawn_app().await;
    let token = app.token_for("agent-1", Role::Agent, "acme", Duration::from_secs(1));
    let mut ws = app.connect(&token).await;
    let started = std::time::Instant::now();
    assert_eq!(ws.expect_close().await, 4001);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[actix_web::test]
async fn a_fresh_token_in_an_auth_frame_extends_the_connection() {
    let app = spawn_app().await;
    let mut ws =
        app.connect(&app.token_for("agent-1", Role::Agent, "acme", Duration::from_secs(2))).await;

    let fresh = app.token_for("agent-1", Role::Agent, "acme", Duration::from_secs(3600));
    let refreshed = ws.request(json!({"type": "auth", "token": fresh, "ref": "r"})).await;
    assert_eq!(refreshed["type"], "auth_refreshed");
    assert_eq!(refreshed["ref"], "r");
    assert!(refreshed["expires_at"].as_str().unwrap().ends_with('Z'));

    // Another user's token is refused without closing.
    let other = app.token("agent-2", Role::Agent, "acme");
    let refused = ws.request(json!({"type": "auth", "token": other, "ref": 2})).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("user_mismatch"))
    );

    // Past the first token's expiry the connection is still alive.
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(ws.request(json!({"type": "ping"})).await["type"], "pong");
}

#[actix_web::test]
async fn a_user_may_hold_a_bounded_number_of_connections() {
    let app = spawn_app_with(&["--max-connections-per-user", "2"]).await;
    let token = app.token("agent-1", Role::Agent, "acme");
    let _first = app.connect(&token).await;
    let _second = app.connect(&token).await;
    let mut third = app.connect_raw(&format!("/ws?token={token}"), &[]).await.unwrap();
    assert_eq!(third.expect_close().await, 4008);
}
