//! Frames on an open connection: ping/pong, the error frames that leave the connection open,
//! the size limit and the rate limit.

use actix_http::ws::Message;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn ping_frames_get_pong_with_ref_and_time() {
    let app = spawn_app().await;
    let mut ws = app.agent("agent-1", "acme").await;
    let before = chrono::Utc::now().timestamp_millis();

    let pong = ws.request(json!({"type": "ping", "ref": "p1"})).await;

    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["ref"], "p1");
    assert!(pong["ts"].as_i64().unwrap() >= before);
}

#[actix_web::test]
async fn the_server_pings_every_heartbeat_interval() {
    let app = spawn_app().await; // pings every 100 ms
    let mut ws = app.agent("agent-1", "acme").await;
    ws.expect_silence(std::time::Duration::from_millis(1050)).await;
    let pings = ws.pings_seen();
    // About ten; a loaded machine may delay a tick, but one-off pings would not get near this.
    assert!((5..=12).contains(&pings), "{pings} pings in about a second");
}

#[actix_web::test]
async fn websocket_pings_are_answered() {
    let app = spawn_app().await;
    let mut ws = app.agent("agent-1", "acme").await;
    ws.send(Message::Ping("hello".into())).await;
    // `next_event` skips pongs; reaching the pong reply of our app-level ping proves order kept.
    assert_eq!(ws.request(json!({"type": "ping"})).await["type"], "pong");
}

#[actix_web::test]
async fn bad_frames_get_errors_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let mut ws = app.agent("agent-1", "acme").await;

    let cases = [
        ("{oops", "invalid_json", None),
        ("[1,2,3]", "invalid_message", None),
        (r#"{"room":"x"}"#, "invalid_message", None),
        (r#"{"type":"teleport","ref":9}"#, "unknown_type", Some(json!(9))),
        (r#"{"type":"join_room","ref":"j"}"#, "invalid_message", Some(json!("j"))),
        (
            r#"{"type":"join_room","room":"bad room","ref":"k"}"#,
            "invalid_message",
            Some(json!("k")),
        ),
        (
            r#"{"type":"agent_status","status":"sleeping","ref":3}"#,
            "invalid_message",
            Some(json!(3)),
        ),
    ];
    for (frame, code, reference) in cases {
        ws.send_text(frame).await;
        let error = ws.next_json().await;
        assert_eq!(error["type"], "error", "{frame}");
        assert_eq!(error["code"], code, "{frame}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(error.get("ref").cloned(), reference, "{frame}");
    }
    ws.send(Message::Binary("binary".into())).await;
    assert_eq!(ws.next_json().await["code"], "invalid_message");

    assert_eq!(ws.request(json!({"type": "ping"})).await["type"], "pong", "still open");
}

#[actix_web::test]
async fn a_message_over_64_kib_closes_with_1009() {
    let app = spawn_app().await;
    let mut ws = app.agent("agent-1", "acme").await;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024));
    ws.send_text(&big).await;
    assert_eq!(ws.expect_close().await, 1009);
}

#[actix_web::test]
async fn fragments_are_counted_together() {
    let app = spawn_app().await;
    let mut ws = app.agent("agent-1", "acme").await;

    // A small fragmented frame is reassembled and handled.
    ws.send_fragmented(&[r#"{"type":"pi"#, r#"ng","ref":"#, "7}"]).await;
    let pong = ws.next_json().await;
    assert_eq!((pong["type"].as_str(), pong["ref"].as_i64()), (Some("pong"), Some(7)));

    // Each fragment is under the limit, together they are over it.
    let part = "y".repeat(40 * 1024);
    ws.send_fragmented(&[r#"{"type":"ping","pad":""#, &part, &part, r#""}"#]).await;
    assert_eq!(ws.expect_close().await, 1009);
}

#[actix_web::test]
async fn flooding_gets_rate_limited_then_closed_with_4008() {
    let app = spawn_app_with(&["--rate-limit-per-sec", "5", "--rate-limit-burst", "5"]).await;
    let mut ws = app.agent("agent-1", "acme").await;

    for _ in 0..6 {
        ws.send_json(json!({"type": "ping"})).await;
    }
    let mut pongs = 0;
    loop {
        let frame = ws.next_json().await;
        if frame["type"] == "pong" {
            pongs += 1;
            continue;
        }
        assert_eq!(frame["code"], "rate_limited", "{frame}");
        break;
    }
    assert_eq!(pongs, 5, "the burst is served before the limit bites");

    for _ in 0..20 {
        ws.send_json(json!({"type": "ping"})).await;
    }
    assert_eq!(ws.expect_close().await, 4008);
}

#[actix_web::test]
async fn get_connection_info_describes_this_connection() {
    let app = spawn_app().await;
    let mut ws = app.agent("agent-1", "acme").await;
    ws.request(json!({"type": "join_room", "room": "sales"})).await;

    let info = ws.request(json!({"type": "get_connection_info", "ref": 5})).await;

    assert_eq!(info["type"], "connection_info");
    assert_eq!(info["ref"], 5);
    assert_eq!(info["user"], json!({"id": "agent-1", "name": "agent-1 name", "role": "agent"}));
    assert_eq!(info["rooms"], json!(["agents", "sales"]));
    assert_eq!(info["session_id"].as_str().unwrap().len(), 32);
    assert!(info["connected_at"].as_str().unwrap().ends_with('Z'));
}

#[actix_web::test]
async fn pongs_and_each_fragment_count_against_the_rate_limit() {
    let flags = ["--rate-limit-per-sec", "5", "--rate-limit-burst", "5"];
    let app = spawn_app_with(&flags).await;
    // Unasked pongs are frames too.
    let mut ws = app.agent("agent-1", "acme").await;
    for _ in 0..30 {
        ws.send(actix_http::ws::Message::Pong(actix_web::web::Bytes::from_static(b"x"))).await;
    }
    assert_eq!(ws.next_json().await["code"], "rate_limited");
    assert_eq!(ws.expect_close().await, 4008);

    // So is every fragment of one message: 30 fragments are not one frame.
    let mut ws = app.agent("agent-2", "acme").await;
    let parts: Vec<String> = std::iter::once("{\"type\":".to_owned())
        .chain((0..28).map(|_| " ".to_owned()))
        .chain(std::iter::once("\"ping\"}".to_owned()))
        .collect();
    ws.send_fragmented(&parts.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(ws.next_json().await["code"], "rate_limited");
    assert_eq!(ws.expect_close().await, 4008);
}
