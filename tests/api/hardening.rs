//! Defences, tested the way an attacker would go (raw sockets, against the real binary where
//! the hub's own memory is the thing to watch): `docs/protocol.md` §2, §4, §6, §7.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;

use awc::http::StatusCode;

use crate::helpers::{spawn_app_with, test_token};
use crate::process::ServerProcess;
use crate::raw_ws::RawWs;
use switchboard::auth::Role;

/// After a header announcing 2^40 bytes: the close code the hub answers, then how long the hub
/// keeps taking what follows (it drops it) before the connection is reset.
async fn announce_terabytes(ws: &mut RawWs) -> (Option<u16>, Duration) {
    ws.stream.write_all(&RawWs::header(true, 1, 1 << 40)).await.expect("send header");
    let code = ws.close_code(Duration::from_secs(3)).await;
    let started = Instant::now();
    let chunk = vec![b'x'; 64 * 1024];
    while started.elapsed() < Duration::from_secs(10) {
        let write = tokio::time::timeout(Duration::from_millis(500), ws.stream.write_all(&chunk));
        if !matches!(write.await, Ok(Ok(()))) {
            break; // refused (reset, broken pipe) or no longer taken
        }
    }
    (code, started.elapsed())
}

#[actix_web::test]
async fn a_frame_header_announcing_terabytes_closes_1009_before_and_after_auth() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    let server = ServerProcess::start(&db, &[]);
    let baseline = server.rss_kib();
    let token = test_token("agent-1", Role::Agent, "acme");
    // Before authentication (no token at all), and after it.
    for path in ["/ws".to_owned(), format!("/ws?token={token}")] {
        let (mut ws, handshake) = RawWs::connect(&server.address, &path).await;
        assert_eq!(handshake.status, 101, "{}", handshake.head);
        let (code, taken_for) = announce_terabytes(&mut ws).await;
        assert_eq!(code, Some(1009), "{path}");
        assert!(taken_for < Duration::from_secs(3), "input taken for {taken_for:?} after the 1009");
        let grown = server.rss_kib().saturating_sub(baseline);
        assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
    }
}

/// POSTs JSON to a server started as a process; the status and the JSON answer.
async fn post(
    address: &str,
    path: &str,
    body: &serde_json::Value,
    token: &str,
) -> (u16, serde_json::Value) {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let mut res = client
        .post(format!("http://{address}{path}"))
        .bearer_auth(token)
        .send_json(body)
        .await
        .expect("POST");
    let body = res.body().limit(1 << 20).await.expect("body");
    (res.status().as_u16(), serde_json::from_slice(&body).unwrap_or_default())
}

/// A WebSocket handshake for `token` that completes, answered by the hub's first frame (or its
/// close code when it refuses the connection).
async fn first_frame_or_close(
    address: &str,
    token: &str,
) -> Result<serde_json::Value, Option<u16>> {
    let (mut ws, handshake) = RawWs::connect(address, &format!("/ws?token={token}")).await;
    assert_eq!(handshake.status, 101, "{}", handshake.head);
    ws.first_text(Duration::from_secs(3)).await
}

/// Two sockets of one user complete the handshake and never read again; large frames are
/// pushed at them until the hub evicts them. Checks that they count against the per-user cap
/// until their sockets are really gone, and that this happens within the write timeout (3 s
/// here) whatever the client does.
async fn zombie_round(server: &ServerProcess) {
    let zombie = test_token("zombie", Role::Customer, "acme");
    let service = test_token("crm", Role::Service, "acme");
    let mut zombies = Vec::new();
    for _ in 0..2 {
        let (ws, handshake) = RawWs::connect(&server.address, &format!("/ws?token={zombie}")).await;
        assert_eq!(handshake.status, 101);
        zombies.push(ws);
    }
    let payload = "z".repeat(48 * 1024);
    let started = Instant::now();
    loop {
        let body = serde_json::json!({"user_id": "zombie", "data": payload});
        let (status, answer) = post(&server.address, "/api/v1/publish", &body, &service).await;
        assert_eq!(status, 200, "{answer}");
        if answer["delivered"] == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never evicted");
    }
    let evicted_at = Instant::now();
    // Out of the directory, but their sockets still count: a third connection is refused.
    assert_eq!(first_frame_or_close(&server.address, &zombie).await.err(), Some(Some(4008)));
    // Within the write timeout (plus a little) the sockets are gone, whatever the client does,
    // and the user may connect again.
    let connected = loop {
        if let Ok(frame) = first_frame_or_close(&server.address, &zombie).await {
            break frame;
        }
        assert!(evicted_at.elapsed() < Duration::from_secs(5), "zombies still count");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(connected["type"], "connected");
    eprintln!("zombies torn down {:?} after their eviction", evicted_at.elapsed());
    for ws in &mut zombies {
        // What reached the client's buffer before the reset can still be read; then it ends.
        assert!(ws.ends_within(Duration::from_secs(2)).await, "a zombie's socket is still open");
    }
}

#[actix_web::test]
async fn zombies_that_never_read_are_torn_down_and_count_until_they_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    // A short queue: the eviction comes right after the sockets stop taking data, well inside
    // the write timeout, so the window in which they must still count is wide and certain.
    let flags =
        ["--write-timeout-ms", "3000", "--max-connections-per-user", "2", "--session-queue", "8"];
    let server = ServerProcess::start(&db, &flags);
    let baseline = server.rss_kib();
    // What one round of zombies held is released for reuse: rounds after the first add
    // (almost) nothing, where a leak would add a round's worth each time.
    let mut after = Vec::new();
    for _ in 0..5 {
        zombie_round(&server).await;
        after.push(server.rss_kib());
    }
    eprintln!("RSS: {baseline} KiB before, after each round {after:?} KiB");
    let round = after[0].saturating_sub(baseline);
    assert!(after[4].saturating_sub(after[2]) < round / 2, "memory kept: {after:?}");
}

#[actix_web::test]
async fn connections_and_handshakes_are_capped_per_ip() {
    let app = spawn_app_with(&["--max-connections-per-ip", "3"]).await;
    let mut open = Vec::new();
    for i in 0..3 {
        open.push(app.connect(&app.token(&format!("c{i}"), Role::Customer, "acme")).await);
    }
    let token = app.token("c9", Role::Customer, "acme");
    let refused = app.connect_raw(&format!("/ws?token={token}"), &[]).await.err();
    assert_eq!(refused, Some(StatusCode::TOO_MANY_REQUESTS));
    // A connection that ends frees its place.
    open.pop().unwrap().close().await;
    app.wait_for_connections(2).await;
    app.connect(&token).await;

    // 1 handshake a second, bursts of 10: the 11th at once is refused.
    let app = spawn_app_with(&["--handshake-rate-per-ip", "1"]).await;
    let token = app.token("c1", Role::Customer, "acme");
    for _ in 0..10 {
        drop(app.connect(&token).await);
    }
    let refused = app.connect_raw(&format!("/ws?token={token}"), &[]).await.err();
    assert_eq!(refused, Some(StatusCode::TOO_MANY_REQUESTS));
}

#[actix_web::test]
async fn a_big_room_lists_100_members_pages_the_rest_and_batches_member_events() {
    let app = spawn_app_with(&["--room-member-events-max", "5"]).await;
    let mut first = app.agent("a000", "acme").await;
    first.request(json!({"type": "join_room", "room": "hall"})).await;
    // 150 members join; the first member hears the first few joins one by one, then batches.
    let mut members = Vec::new();
    for i in 1..150 {
        let mut ws = app.connect(&app.token(&format!("a{i:03}"), Role::Admin, "acme")).await;
        let joined = ws.request(json!({"type": "join_room", "room": "hall"})).await;
        assert_eq!(joined["member_count"], i + 1);
        assert_eq!(joined["members"].as_array().unwrap().len(), (i + 1).min(100));
        assert_eq!(joined["members_truncated"], i + 1 > 100);
        members.push(ws);
    }
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;
    let mut one_by_one = 0;
    let mut batched = Vec::new();
    loop {
        match first.next_event(Duration::from_millis(100)).await {
            crate::helpers::Event::Json(frame) if frame["type"] == "user_joined" => one_by_one += 1,
            crate::helpers::Event::Json(frame) if frame["type"] == "room_members_changed" => {
                batched.push(frame)
            }
            crate::helpers::Event::Json(_) => {}
            _ => break,
        }
    }
    assert_eq!(one_by_one, 4, "joins told one by one while the room had at most 5 members");
    let joined: usize = batched.iter().map(|b| b["joined"].as_array().unwrap().len()).sum();
    let truncated = batched.iter().any(|b| b["truncated"] == true);
    // Each batch lists at most 100 joins (and says when it left some out).
    assert!(batched.iter().all(|b| b["joined"].as_array().unwrap().len() <= 100));
    assert!(joined == 145 || (truncated && joined < 145), "{joined} listed, truncated {truncated}");
    assert!(batched.len() <= 4, "{} batches", batched.len());
    assert_eq!(batched.last().unwrap()["member_count"], 150);

    // Pages of 100 in name order, with a cursor; members only.
    let page = first.request(json!({"type": "get_room_members", "room": "hall"})).await;
    assert_eq!(page["members"].as_array().unwrap().len(), 100);
    assert_eq!(page["members"][0]["id"], "a000");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest =
        first.request(json!({"type": "get_room_members", "room": "hall", "cursor": cursor})).await;
    assert_eq!(rest["members"].as_array().unwrap().len(), 50);
    assert_eq!(rest["members"][0]["id"], "a100");
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);
    let bad =
        first.request(json!({"type": "get_room_members", "room": "hall", "cursor": "nope"})).await;
    assert_eq!(bad["code"], "invalid_message");
    let mut outsider = app.agent("outsider", "acme").await;
    let refused = outsider.request(json!({"type": "get_room_members", "room": "hall"})).await;
    assert_eq!(refused["code"], "not_a_member");

    // Leaves are batched too.
    for ws in members.drain(..10) {
        ws.close().await;
    }
    let left = first.next_of_type("room_members_changed").await;
    assert_eq!(left["left"].as_array().unwrap().len(), 10);
    assert_eq!(left["member_count"], 140);
}

/// Sends a POST head declaring `length` body bytes and then only `body`; the status line's
/// code and the JSON answer, and how long the answer took.
async fn partial_post(
    port: u16,
    path: &str,
    headers: &str,
    length: usize,
    body: &[u8],
) -> (u16, serde_json::Value, Duration) {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n{headers}\r\n"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        while !answer.ends_with(b"}") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read).await.expect("an answer within 15 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = json.find('{').map_or("", |i| &json[i..]);
    (status, serde_json::from_str(json).unwrap_or_default(), started.elapsed())
}

#[actix_web::test]
async fn webhooks_hold_no_memory_for_strangers() {
    let app =
        spawn_app_with(&["--twilio-auth-token", "twilio-token", "--vapi-secret", "vapi-secret"])
            .await;
    let json = "Content-Type: application/json\r\n";
    // A wrong Vapi secret is refused before the body: nothing of the announced megabyte is sent.
    let wrong = format!("{json}X-Vapi-Secret: wrong\r\n");
    let (status, body, took) =
        partial_post(app.port, "/api/v1/webhooks/vapi", &wrong, 900_000, b"").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_signature")), "{body}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Bodies over the cap: 413 with the JSON error body, from the announced length alone.
    let right = format!("{json}X-Vapi-Secret: vapi-secret\r\n");
    let (status, body, _) =
        partial_post(app.port, "/api/v1/webhooks/vapi", &right, 2 << 20, b"").await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")), "{body}");
    let form = "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: x\r\n";
    let (status, body, _) =
        partial_post(app.port, "/api/v1/webhooks/twilio", form, 65 * 1024, b"").await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")), "{body}");
    let (status, body, _) = partial_post(app.port, "/api/v1/auth/guest", json, 300_000, b"").await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")), "{body}");
    // A body that stalls: 408 after 10 s, not a connection held forever.
    let (status, body, took) =
        partial_post(app.port, "/api/v1/webhooks/vapi", &right, 1000, b"{\"message\":").await;
    assert_eq!((status, body["error"].as_str()), (408, Some("request_timeout")), "{body}");
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(13), "{took:?}");
}

#[actix_web::test]
async fn a_fragmented_ping_is_a_protocol_error_not_an_error_line_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    let server = ServerProcess::start(&db, &[]);
    let token = test_token("agent-1", Role::Agent, "acme");
    for _ in 0..20 {
        let (mut ws, handshake) =
            RawWs::connect(&server.address, &format!("/ws?token={token}")).await;
        assert_eq!(handshake.status, 101);
        // A ping without FIN: control frames may not be fragmented.
        let mut frame = RawWs::header(false, 0x9, 2);
        frame.extend_from_slice(b"hi");
        ws.stream.write_all(&frame).await.unwrap();
        assert_eq!(ws.close_code(Duration::from_secs(3)).await, Some(1002));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log.lock().unwrap();
    let errors: Vec<&String> = log.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
