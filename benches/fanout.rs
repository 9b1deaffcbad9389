//! Fan-out benchmark: N WebSocket connections in one room of a `switchboard serve` child
//! process, one publisher sending 1 KiB messages into the room. Prints the server's memory per
//! idle connection (RSS growth / N), deliveries per second, and publish→receive latency.
//!
//! Run: `cargo bench --bench fanout` (defaults: 2000 connections, 200 messages of 1024 bytes),
//! or `cargo bench --bench fanout -- --connections 500 --messages 100 --size 1024 --rate 50`
//! (`--rate` paces the publisher in messages per second; 0 sends back to back).
//! Everything runs on 127.0.0.1 and stops by itself (60 s at most for the delivery phase).

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::Message;
use common::{ROOM, Server, client, connect, join, option, receive, spread, token};
use futures_util::SinkExt;
use switchboard::auth::Role;

async fn run(server: &Server) {
    let connections = option("--connections", 2000) as usize;
    let messages = option("--messages", 200) as usize;
    let size = option("--size", 1024) as usize;
    let rate = option("--rate", 0);
    let http = client();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let base_rss = server.rss_kib();

    let started = Instant::now();
    let mut sockets = Vec::with_capacity(connections);
    for chunk in (0..connections).collect::<Vec<_>>().chunks(100) {
        let batch = chunk.iter().map(|i| {
            let token = token(&format!("receiver-{i}"), Role::Service);
            let (http, address) = (&http, &server.address);
            async move { connect(http, address, &token).await }
        });
        sockets.extend(futures_util::future::join_all(batch).await);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = server.rss_kib();
    let per_connection = idle_rss.saturating_sub(base_rss) as f64 / connections as f64;
    let joining = Instant::now();
    for chunk in sockets.chunks_mut(100) {
        futures_util::future::join_all(chunk.iter_mut().map(join)).await;
    }
    let join_secs = joining.elapsed().as_secs_f64();
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let joined_rss = server.rss_kib();

    let clock = Instant::now();
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(connections * messages)));
    let done = Rc::new(Cell::new(0));
    let evicted = Rc::new(Cell::new(0));
    for socket in sockets {
        actix_web::rt::spawn(receive(
            socket,
            messages,
            clock,
            latencies.clone(),
            done.clone(),
            evicted.clone(),
        ));
    }
    let mut publisher = connect(&http, &server.address, &token("publisher", Role::Service)).await;
    join(&mut publisher).await;

    let pad = "x".repeat(size.saturating_sub(80));
    let pace = (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64));
    let send_start = Instant::now();
    for n in 0..messages {
        let t = clock.elapsed().as_micros();
        let frame = format!(
            r#"{{"type":"publish","room":"{ROOM}","data":{{"t":{t},"n":{n},"pad":"{pad}"}}}}"#
        );
        publisher.send(Message::Text(frame.into())).await.expect("publish");
        if let Some(pace) = pace {
            actix_web::rt::time::sleep_until((send_start + pace * (n as u32 + 1)).into()).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.get() < connections && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = send_start.elapsed().as_secs_f64();
    let busy_rss = server.rss_kib();

    let mut lat = latencies.borrow().clone();
    lat.sort_unstable();
    let delivered = lat.len();
    let pace = if rate == 0 { "back-to-back".to_owned() } else { format!("{rate}/s") };
    println!("switchboard fan-out benchmark (server: separate process, 127.0.0.1)");
    println!("  connections {connections}  messages {messages} x {size} B  rate {pace}");
    println!(
        "  connect: {connect_secs:.2} s ({:.0} connections/s)",
        connections as f64 / connect_secs
    );
    println!(
        "  server RSS: {base_rss} KiB at start, {idle_rss} KiB with {connections} idle connections => {per_connection:.1} KiB per connection"
    );
    println!("  join one room: {join_secs:.2} s ({:.0} joins/s)", connections as f64 / join_secs);
    println!(
        "  server RSS after all joined one room: {joined_rss} KiB; after the fan-out: {busy_rss} KiB"
    );
    println!(
        "  delivered {delivered}/{} in {elapsed:.2} s => {:.0} deliveries/s; evicted as slow: {}",
        connections * messages,
        delivered as f64 / elapsed,
        evicted.get()
    );
    println!("  latency publish->receive: {}", spread(&lat));
}

fn main() {
    let server = Server::start(&["--max-rooms-per-connection", "4"]);
    actix_web::rt::System::new().block_on(run(&server));
}
