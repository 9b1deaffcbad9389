//! Operations (`docs/protocol.md` §10): `/metrics` moves with what happens (connections,
//! frames, deliveries, evictions, closes, webhooks, chat, the database), is served only to
//! loopback peers on the main listener, or on its own listener, or not at all.

use std::time::Duration;

use serde_json::json;
use switchboard::auth::Role;

use crate::calls::{callback, telephony_app, twilio};
use crate::helpers::{Event, TestApp, spawn_app_with};

/// The scrape as text, from the main listener.
async fn scrape(app: &TestApp) -> String {
    scrape_url(app, &app.url("/metrics")).await
}

async fn scrape_url(app: &TestApp, url: &str) -> String {
    let mut res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let kind = res.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    String::from_utf8(res.body().await.unwrap().to_vec()).unwrap()
}

/// The value of one series (`name{labels}` exactly as written), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok()
        })
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn metrics_move_with_connections_frames_chat_and_the_database() {
    let app = telephony_app().await;
    let before = scrape(&app).await;
    assert_eq!(value(&before, "switchboard_ws_connections"), 0.0);
    assert_eq!(value(&before, r#"switchboard_up{store="database"}"#), 1.0);

    let mut ann = app.agent("ann", "acme").await;
    let mut bob = app.agent("bob", "acme").await;
    let ann_phone = app.agent("ann", "acme").await;
    ann.ask(json!({"type": "join_room", "room": "sales"})).await;
    bob.ask(json!({"type": "join_room", "room": "sales"})).await;
    ann.ask(json!({"type": "publish", "room": "sales", "data": "hello"})).await;
    bob.next_of_type("room_message").await;
    ann.send_text("{not json").await;
    ann.next_of_type("error").await;
    ann.ask(json!({"type": "send_message", "to": "bob", "text": "lunch?"})).await;
    bob.next_of_type("message").await;

    let during = scrape(&app).await;
    assert_eq!(value(&during, "switchboard_ws_connections"), 3.0);
    assert_eq!(value(&during, "switchboard_online_users"), 2.0);
    assert_eq!(value(&during, r#"switchboard_frames_in_total{type="join_room"}"#), 2.0);
    assert_eq!(value(&during, r#"switchboard_frames_in_total{type="publish"}"#), 1.0);
    assert_eq!(
        value(&during, r#"switchboard_frames_in_total{type="other"}"#),
        1.0,
        "the bad frame"
    );
    assert!(value(&during, r#"switchboard_frames_out_total{type="room_message"}"#) >= 1.0);
    assert_eq!(value(&during, r#"switchboard_frames_out_total{type="connected"}"#), 3.0);
    assert!(value(&during, "switchboard_deliveries_total") >= 2.0);
    assert_eq!(value(&during, "switchboard_chat_messages_total"), 1.0);
    assert!(
        value(&during, "switchboard_db_query_seconds_count") >= 1.0,
        "the chat message was stored"
    );

    ann_phone.close().await;
    bob.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = scrape(&app).await;
    assert_eq!(value(&after, "switchboard_ws_connections"), 1.0);
    assert_eq!(value(&after, "switchboard_online_users"), 1.0);
    drop(ann);
}

#[actix_web::test]
async fn webhooks_are_counted_by_provider_and_outcome_and_timed_to_the_push() {
    let app = telephony_app().await;
    let mut agent = app.agent("ann", "acme").await;
    let (status, _) = twilio(&app, "company=acme", &callback("CA1", "ringing", "1")).await;
    assert_eq!(status, 204);
    agent.next_of_type("call_status_changed").await;
    let (status, _) = crate::calls::post_twilio(
        &app,
        "company=acme",
        &callback("CA2", "ringing", "1"),
        Some("bad".into()),
    )
    .await;
    assert_eq!(status, 403);

    let text = scrape(&app).await;
    let series = |outcome: &str| {
        format!(r#"switchboard_webhook_requests_total{{provider="twilio",outcome="{outcome}"}}"#)
    };
    assert_eq!(value(&text, &series("ok")), 1.0);
    assert_eq!(value(&text, &series("invalid_signature")), 1.0);
    assert_eq!(value(&text, "switchboard_webhook_to_push_seconds_count"), 1.0);
    assert!(value(&text, "switchboard_webhook_to_push_seconds_sum") > 0.0);
}

#[actix_web::test]
async fn a_slow_consumer_eviction_and_its_close_code_are_counted() {
    let app = spawn_app_with(&["--session-queue", "8", "--client-timeout-ms", "10000"]).await;
    let mut slow = app.agent("slow", "acme").await;
    let service = app.token("crm", Role::Service, "acme");
    let payload = "z".repeat(48 * 1024);
    slow.pause_reading();
    for _ in 0..10_000 {
        let (_, body) = app
            .post("/api/v1/publish", &json!({"user_id": "slow", "data": payload}), Some(&service))
            .await;
        if body["delivered"] == 0 {
            break;
        }
    }
    let text = scrape(&app).await;
    assert_eq!(value(&text, "switchboard_slow_consumer_evictions_total"), 1.0);
    // The close frame is written once the client reads again (it queues behind the frames
    // already waiting): counted when it is sent.
    slow.resume_reading();
    loop {
        match slow.next_event(Duration::from_secs(5)).await {
            Event::Json(_) => continue,
            Event::Closed(Some(reason)) => break assert_eq!(u16::from(reason.code), 4009),
            other => panic!("expected frames then a close, got {other:?}"),
        }
    }
    let text = scrape(&app).await;
    assert_eq!(value(&text, r#"switchboard_ws_closes_total{code="4009"}"#), 1.0);
    assert_eq!(value(&text, r#"switchboard_ws_closes_total{code="1000"}"#), 0.0);

    let refused = app.connect_raw("/ws?token=not-a-token", &[]).await;
    assert!(refused.is_err());
    let text = scrape(&app).await;
    assert_eq!(
        value(&text, r#"switchboard_handshakes_refused_total{reason="invalid_token"}"#),
        1.0
    );
}

#[actix_web::test]
async fn metrics_are_for_loopback_peers_on_the_main_listener_or_on_their_own_listener() {
    let app = spawn_app_with(&[]).await;
    let mut proxied = app
        .http
        .get(app.url("/metrics"))
        .insert_header(("X-Forwarded-For", "203.0.113.9"))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403, "a proxy on this host must not publish them");
    let body: serde_json::Value = serde_json::from_slice(&proxied.body().await.unwrap()).unwrap();
    assert_eq!(body["error"], "forbidden");

    let own = spawn_app_with(&["--metrics-bind", "127.0.0.1:0"]).await;
    let url = own.metrics_url.clone().expect("a metrics listener");
    assert!(!url.contains(&format!(":{}/", own.port)), "another port: {url}");
    assert!(scrape_url(&own, &url).await.contains("switchboard_ws_connections"));
    let (status, _) = own.get("/metrics", None).await;
    assert_eq!(status, 404, "not on the main listener then");

    let off = spawn_app_with(&["--metrics-bind", "off"]).await;
    assert!(off.metrics_url.is_none());
    let (status, _) = off.get("/metrics", None).await;
    assert_eq!(status, 404);
}
