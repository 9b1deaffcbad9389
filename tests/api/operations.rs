//! Operations (`docs/protocol.md` §10): `/metrics` moves with what happens (connections,
//! frames, deliveries, evictions, closes, webhooks, chat, the database), is served only to
//! loopback peers on the main listener, or on its own listener, or not at all.

use std::time::Duration;

use serde_json::json;
use switchboard::auth::Role;

use crate::calls::{callback, telephony_app, twilio};
use crate::helpers::{Event, TestApp, spawn_app_with};
use crate::process::ServerProcess;

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

#[actix_web::test]
async fn json_logs_are_one_object_per_line_with_request_ids_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    let mut server = ServerProcess::start(&db, &["--log-format", "json"]);
    let token = crate::helpers::test_token("ann", Role::Agent, "acme");
    let http = awc::Client::default();
    let url = format!("ws://{}/ws?token={token}", server.address);
    let mut ws = crate::helpers::connect_ws(&http, &url, &[]).await.unwrap();
    assert_eq!(ws.next_json().await["type"], "connected");
    let res = http
        .get(format!("http://{}/api/v1/calls?token={token}", server.address))
        .insert_header(("X-Request-Id", "trace-4711"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "trace-4711", "echoed");
    let res = http.get(format!("http://{}/healthz", server.address)).send().await.unwrap();
    let fresh = res.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    assert_eq!(fresh.len(), 32, "one made up when the client sent none");
    ws.close().await;
    let pid = server.child.id();
    std::process::Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status().unwrap();
    let _ = server.child.wait();

    let lines = server.log.lock().unwrap().clone();
    assert!(lines.len() >= 4, "{lines:?}");
    let mut access = Vec::new();
    for line in &lines {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(record[field].is_string(), "{field} in {line}");
        }
        assert!(!line.contains(&token), "a token was logged: {line}");
        if record["target"] == "switchboard::access" {
            access.push(record);
        }
    }
    let traced = access.iter().find(|r| r["request_id"] == "trace-4711").expect("the access line");
    assert_eq!(
        (traced["path"].as_str(), traced["status"].as_u64()),
        (Some("/api/v1/calls"), Some(200))
    );
    assert!(access.iter().any(|r| r["request_id"] == fresh.as_str()));
}

#[actix_web::test]
async fn a_backup_taken_under_write_load_restores_to_a_hub_with_the_same_calls_and_messages() {
    let app = telephony_app().await;
    if crate::helpers::on_postgres() {
        // `backup` is SQLite's; PostgreSQL is backed up with its own tools.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("backup.db");
        let refused = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["backup", "--to", target.to_str().unwrap(), "--database-url", &app.db_url])
            .args(["--encryption-key", "test-encryption-key-0123456789"])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));
        return;
    }
    let mut bob = app.agent("bob", "acme").await;
    // Writers: webhooks (each a new call) and chat messages, until told to stop.
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut ann = app.agent("ann", "acme").await;
    let writing = async {
        let mut n = 0;
        while !stop.get() {
            let sid = format!("CA{n:032}");
            let (status, _) = twilio(&app, "company=acme", &callback(&sid, "ringing", "1")).await;
            assert_eq!(status, 204);
            let text = format!("message {n}");
            ann.ask(json!({"type": "send_message", "to": "bob", "text": text})).await;
            n += 1;
        }
        n
    };
    let backup = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("backup.db");
        let db = app.db_url.clone();
        let target = file.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .args(["backup", "--to", target.to_str().unwrap(), "--database-url", &db])
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains("backup.db"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.set(true);
        (dir, file)
    };
    let (written, (dir, file)) = tokio::join!(writing, backup);
    assert!(written > 5, "writes went on during the backup ({written})");
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(100), bob.next_json()).await {
        let _ = frame;
    }

    // A second backup to the same file is refused rather than overwriting it.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["backup", "--to", file.to_str().unwrap(), "--database-url", &app.db_url])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--to"));

    // Restore: a hub on the copy serves a consistent prefix of what was written.
    let restored_url = format!("sqlite://{}", file.display());
    let restored = crate::helpers::spawn_app_on_database(
        &restored_url,
        &["--jwt-secret", crate::helpers::TEST_SECRET],
    )
    .await;
    let admin = restored.token("boss", Role::Admin, "acme");
    let mut calls = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/calls?limit=100&before={c}"),
            None => "/api/v1/calls?limit=100".to_owned(),
        };
        let (status, page) = restored.get(&path, Some(&admin)).await;
        assert_eq!(status, 200, "{page}");
        calls.extend(
            page["calls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["provider_call_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    calls.sort();
    let copied = calls.len();
    assert!(copied >= 1 && copied <= written, "{copied} of {written}");
    let expected: Vec<String> = (0..copied).map(|n| format!("CA{n:032}")).collect();
    assert_eq!(calls, expected, "the calls of a prefix of the writes, none missing in between");

    let bob_token = restored.token("bob", Role::Agent, "acme");
    let (status, inbox) = restored.get("/api/v1/conversations", Some(&bob_token)).await;
    assert_eq!(status, 200);
    let conversation = inbox["conversations"][0]["id"].as_str().unwrap().to_owned();
    let (_, history) = restored
        .get(
            &format!("/api/v1/conversations/{conversation}/messages?limit=100&after=0"),
            Some(&bob_token),
        )
        .await;
    let seqs: Vec<i64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert!(!seqs.is_empty());
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "messages without gaps");
    drop(dir);
}
