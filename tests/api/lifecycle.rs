//! No connection is left behind in any hub: after a normal close, a dropped TCP connection, a
//! heartbeat timeout, or an eviction as a slow consumer.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use switchboard::auth::Role;

use crate::helpers::{CLIENT_TIMEOUT_MS, Event, spawn_app, spawn_app_with};

/// Asserts the hubs forgot `user`: the status counts, the online list, the room's members.
async fn assert_forgotten(
    app: &crate::helpers::TestApp,
    watcher: &mut crate::helpers::WsClient,
    user: &str,
) {
    let offline = watcher.next_of_type("presence_changed").await;
    assert_eq!(
        (offline["user"]["id"].as_str(), offline["online"].as_bool()),
        (Some(user), Some(false))
    );
    let left = watcher.next_of_type("user_left").await;
    assert_eq!(left["user"]["id"], user);
    app.wait_for_connections(1).await;
    let (_, clients) =
        app.get("/api/v1/ws/clients", Some(&app.token("ops", Role::Admin, "acme"))).await;
    assert_eq!(clients["clients"].as_array().unwrap().len(), 1, "{clients}");
    let joined = watcher.request(json!({"type": "join_room", "room": "lobby"})).await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 1, "{joined}");
}

async fn watched_pair(
    app: &crate::helpers::TestApp,
) -> (crate::helpers::WsClient, crate::helpers::WsClient) {
    let mut watcher = app.agent("watcher", "acme").await;
    watcher.request(json!({"type": "join_room", "room": "lobby"})).await;
    let mut leaver = app.agent("leaver", "acme").await;
    leaver.request(json!({"type": "join_room", "room": "lobby"})).await;
    watcher.next_of_type("user_joined").await;
    (watcher, leaver)
}

#[actix_web::test]
async fn a_normal_close_leaves_nothing_behind() {
    let app = spawn_app().await;
    let (mut watcher, leaver) = watched_pair(&app).await;
    leaver.close().await;
    assert_forgotten(&app, &mut watcher, "leaver").await;
}

#[actix_web::test]
async fn a_dropped_tcp_connection_leaves_nothing_behind() {
    let app = spawn_app().await;
    let (mut watcher, leaver) = watched_pair(&app).await;
    drop(leaver); // no close frame: the socket just goes away
    assert_forgotten(&app, &mut watcher, "leaver").await;
}

#[actix_web::test]
async fn a_silent_client_times_out_and_leaves_nothing_behind() {
    let app = spawn_app().await;
    let (mut watcher, mut leaver) = watched_pair(&app).await;
    leaver.pause_reading(); // answers no pings from now on
    assert_forgotten(&app, &mut watcher, "leaver").await;
    // The server sent a close frame without waiting for the answer.
    leaver.resume_reading();
    let closed = leaver.next_event(Duration::from_millis(CLIENT_TIMEOUT_MS * 3)).await;
    assert!(matches!(&closed, Event::Closed(Some(r)) if u16::from(r.code) == 1000), "{closed:?}");
}

#[actix_web::test]
async fn a_slow_consumer_is_evicted_and_closed_with_4009() {
    // A long client timeout: the paused client answers no pings, and this test is about the
    // eviction, not the heartbeat.
    let app = spawn_app_with(&["--session-queue", "8", "--client-timeout-ms", "10000"]).await;
    let (mut watcher, mut slow) = watched_pair(&app).await;
    let service = app.token("crm", Role::Service, "acme");
    let payload = "z".repeat(48 * 1024); // under the 64 KiB REST body limit

    // The slow client stops reading. Publish to it until the hub gives up on it.
    slow.pause_reading();
    let mut pushed = 0usize;
    loop {
        let (status, body) = app
            .post("/api/v1/publish", &json!({"user_id": "leaver", "data": payload}), Some(&service))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["delivered"] == 0 {
            break;
        }
        pushed += payload.len();
        assert!(pushed < 256 * 1024 * 1024, "never evicted after {pushed} bytes");
    }
    eprintln!("slow consumer evicted after {} KiB were queued for it", pushed / 1024);
    assert_forgotten(&app, &mut watcher, "leaver").await;

    // When it reads again, it finds the frames that were queued, then the close code.
    slow.resume_reading();
    let mut frames = 0;
    let code = loop {
        match slow.next_event(Duration::from_secs(5)).await {
            Event::Json(_) => frames += 1,
            Event::Closed(Some(reason)) => break u16::from(reason.code),
            other => panic!("expected frames then a close, got {other:?}"),
        }
    };
    assert_eq!(code, 4009);
    assert!(frames > 0);
}

/// Connects and closes reach the directory in batches, one per worker turn: none is lost or
/// applied out of order, and a client that heard `connected` is already counted.
#[actix_web::test]
async fn a_storm_of_connects_and_closes_is_counted_exactly() {
    let app = spawn_app().await;
    let tokens: Vec<_> =
        (0..40).map(|i| app.token(&format!("c{i}"), Role::Customer, "acme")).collect();
    let clients = join_all(tokens.iter().map(|token| app.connect(token))).await;
    let (_, status) = app.get("/api/v1/ws/status", None).await;
    assert_eq!(
        status["connections"], 40,
        "every client that heard `connected` is counted: {status}"
    );
    join_all(clients.into_iter().map(|ws| ws.close())).await;
    let status = app.wait_for_connections(0).await;
    assert_eq!(status["connected_users"], 0);
}

#[actix_web::test]
async fn shutdown_is_not_needed_for_a_clean_directory_after_many_connections() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let mut ws = app.agent(&format!("a{}", i % 7), "acme").await;
        ws.request(json!({"type": "join_room", "room": format!("r{}", i % 3)})).await;
        clients.push(ws);
    }
    app.wait_for_connections(20).await;
    for (i, ws) in clients.into_iter().enumerate() {
        if i % 2 == 0 { ws.close().await } else { drop(ws) }
    }
    let status = app.wait_for_connections(0).await;
    assert_eq!(status["connected_users"], 0);
}
