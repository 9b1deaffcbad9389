//! Defences, tested the way an attacker would go (raw sockets, against the real binary where
//! the hub's own memory is the thing to watch): `docs/protocol.md` §2, §4, §6, §7.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::helpers::test_token;
use crate::process::ServerProcess;
use crate::raw_ws::RawWs;
use switchboard::auth::Role;

/// Streams up to `total` bytes after a header announcing 2^40; returns how much the hub took
/// before it closed the connection (or how much it took in `within`).
async fn stream_huge_frame(ws: &mut RawWs, total: usize, within: Duration) -> usize {
    let started = Instant::now();
    if ws.stream.write_all(&RawWs::header(true, 1, 1 << 40)).await.is_err() {
        return 0;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total && started.elapsed() < within {
        let write = tokio::time::timeout(Duration::from_millis(500), ws.stream.write_all(&chunk));
        match write.await {
            Ok(Ok(())) => sent += chunk.len(),
            // Refused (reset, broken pipe) or stalled: the hub is not taking any more.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

#[actix_web::test]
async fn a_frame_header_announcing_terabytes_closes_1009_before_and_after_auth() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    let server = ServerProcess::start(&db, &[]);
    let baseline = server.rss_kib();

    // Before authentication: no token at all.
    let (mut ws, handshake) = RawWs::connect(&server.address, "/ws").await;
    assert_eq!(handshake.status, 101, "{}", handshake.head);
    let sent = stream_huge_frame(&mut ws, 4 << 30, Duration::from_secs(5)).await;
    eprintln!("sent {sent}");
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1009));
    assert!(ws.ends_within(Duration::from_secs(2)).await, "the connection stays open");
    let grown = server.rss_kib().saturating_sub(baseline);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");

    // After authentication, the same.
    let token = test_token("agent-1", Role::Agent, "acme");
    let (mut ws, handshake) = RawWs::connect(&server.address, &format!("/ws?token={token}")).await;
    assert_eq!(handshake.status, 101, "{}", handshake.head);
    let sent = stream_huge_frame(&mut ws, 4 << 30, Duration::from_secs(5)).await;
    eprintln!("sent {sent}");
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1009));
    assert!(ws.ends_within(Duration::from_secs(2)).await, "the connection stays open");
    let grown = server.rss_kib().saturating_sub(baseline);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
}
