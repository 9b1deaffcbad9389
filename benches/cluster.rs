//! Cluster benchmark (§9): `switchboard serve` child processes on one fresh PostgreSQL database
//! and the machine's Redis (127.0.0.1:5432 and :6379, as on every machine of this kind).
//!
//! Prints, in one run:
//! - fan-out into one room, publisher on the first node: the same load (N subscribers × M
//!   messages of S bytes) on one node without Redis, then on two nodes of a cluster with half
//!   the subscribers on each — deliveries/s and publish→receive latency;
//! - the messages per second Redis carries between two nodes (one subscriber on the second
//!   node, small messages back to back from the first);
//! - the purge time: from `kill -9` of a node to an agent on another node hearing that the
//!   dead node's agent went offline.
//!
//! Run: `cargo bench --bench cluster` (defaults: 2000 subscribers, 200 messages of 1024 bytes),
//! or `cargo bench --bench cluster -- --connections 1000 --messages 100 --size 1024`.
//! Everything runs on 127.0.0.1 and stops by itself; the database and the Redis keys are
//! removed after.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::{Frame, Message};
use common::{ROOM, Server, client, connect, join, ms, option, percentile, receive, token};
use diesel::{Connection, RunQueryDsl};
use futures_util::{SinkExt, StreamExt};
use switchboard::auth::Role;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
const REDIS: &str = "redis://127.0.0.1:6379/0";
const KEY: &str = "bench-encryption-key-0123456789";

/// A fresh PostgreSQL database, dropped after.
struct Database {
    url: String,
    name: String,
}

impl Database {
    fn create() -> Self {
        let name = format!("sb_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&format!("{POSTGRES}/postgres"))
            .unwrap_or_else(|e| panic!("PostgreSQL is needed at {POSTGRES}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create");
        Self { url: format!("{POSTGRES}/{name}"), name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&format!("{POSTGRES}/postgres")) {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = diesel::sql_query(drop).execute(&mut admin);
        }
    }
}

/// A node of the cluster `cluster` (or a lone node without Redis, when `None`).
fn node(db: &Database, cluster: Option<(&str, &str)>) -> Server {
    let mut args = vec!["--encryption-key", KEY, "--max-rooms-per-connection", "4"];
    if let Some((name, node)) = cluster {
        args.extend(["--redis-url", REDIS, "--cluster-name", name, "--node-id", node]);
    }
    Server::start_on(&db.url, &args, tempfile::tempdir().expect("temp dir"))
}

/// What one fan-out run measured.
struct FanOut {
    expected: usize,
    delivered: usize,
    per_sec: f64,
    latencies: Vec<u32>,
    evicted: usize,
}

impl FanOut {
    fn line(&self, label: &str) -> String {
        let lat = &self.latencies;
        format!(
            "  {label:<34} {:>9.0} deliveries/s  p50 {:>9}  p99 {:>9}  max {:>9}  ({}/{} delivered, {} evicted)",
            self.per_sec,
            ms(percentile(lat, 0.50)),
            ms(percentile(lat, 0.99)),
            ms(lat.last().copied().unwrap_or(0)),
            self.delivered,
            self.expected,
            self.evicted
        )
    }
}

/// `subscribers` connections spread evenly over `nodes` join one room; a publisher on
/// `nodes[0]` sends `messages` of `size` bytes back to back.
async fn fan_out(nodes: &[&Server], subscribers: usize, messages: usize, size: usize) -> FanOut {
    let http = client();
    let mut sockets = Vec::with_capacity(subscribers);
    for chunk in (0..subscribers).collect::<Vec<_>>().chunks(100) {
        let batch = chunk.iter().map(|i| {
            let (http, address) = (&http, &nodes[i % nodes.len()].address);
            let token = token(&format!("receiver-{i}"), Role::Service);
            async move {
                let mut socket = connect(http, address, &token).await;
                join(&mut socket).await;
                socket
            }
        });
        sockets.extend(futures_util::future::join_all(batch).await);
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let clock = Instant::now();
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(subscribers * messages)));
    let (done, evicted) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    for socket in sockets {
        let (l, d, e) = (latencies.clone(), done.clone(), evicted.clone());
        actix_web::rt::spawn(receive(socket, messages, clock, l, d, e));
    }
    let mut publisher = connect(&http, &nodes[0].address, &token("publisher", Role::Service)).await;
    join(&mut publisher).await;
    let pad = "x".repeat(size.saturating_sub(80));
    let started = Instant::now();
    for n in 0..messages {
        let t = clock.elapsed().as_micros();
        let frame = format!(
            r#"{{"type":"publish","room":"{ROOM}","data":{{"t":{t},"n":{n},"pad":"{pad}"}}}}"#
        );
        publisher.send(Message::Text(frame.into())).await.expect("publish");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.get() < subscribers && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = latencies.borrow().clone();
    latencies.sort_unstable();
    FanOut {
        expected: subscribers * messages,
        delivered: latencies.len(),
        per_sec: latencies.len() as f64 / elapsed,
        latencies,
        evicted: evicted.get(),
    }
}

/// Kills `victim` (SIGKILL) while an agent is connected to it and another to `observer`;
/// answers how long until the observer hears the victim's agent went offline.
async fn purge_time(observer: &Server, mut victim: Server) -> Duration {
    let http = client();
    let mut watching = connect(&http, &observer.address, &token("observer", Role::Agent)).await;
    let _doomed = connect(&http, &victim.address, &token("doomed", Role::Agent)).await;
    wait_for_presence(&mut watching, r#""online":true"#).await;
    let killed = Instant::now();
    victim.child.kill().expect("kill -9");
    victim.child.wait().expect("reaped");
    wait_for_presence(&mut watching, r#""online":false"#).await;
    killed.elapsed()
}

/// Reads until a `presence_changed` of `doomed` containing `what` (30 s at most).
async fn wait_for_presence(socket: &mut common::Socket, what: &str) {
    let wanted = |text: &str| {
        text.contains(r#""type":"presence_changed""#)
            && text.contains("doomed")
            && text.contains(what)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match actix_web::rt::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Frame::Text(text)))) if wanted(&String::from_utf8_lossy(&text)) => return,
            Ok(Some(Ok(Frame::Ping(p)))) => socket.send(Message::Pong(p)).await.expect("pong"),
            Ok(Some(Ok(_))) => {}
            other => panic!("waiting for presence {what}: {other:?}"),
        }
    }
    panic!("no presence {what} within 30 s");
}

async fn run(db: &Database, cluster: &str) {
    let subscribers = option("--connections", 2000) as usize;
    let messages = option("--messages", 200) as usize;
    let size = option("--size", 1024) as usize;
    let carried_messages = option("--bus-messages", 20_000) as usize;

    let lone = node(db, None);
    let one = fan_out(&[&lone], subscribers, messages, size).await;
    drop(lone);
    let a = node(db, Some((cluster, "a")));
    let b = node(db, Some((cluster, "b")));
    let two = fan_out(&[&a, &b], subscribers, messages, size).await;
    // Only the second node's subscriber: every message crosses Redis once.
    let bus_only = fan_out(&[&b], 1, carried_messages, 100).await;
    let purge = purge_time(&a, node(db, Some((cluster, "c")))).await;

    println!(
        "switchboard cluster benchmark (nodes: separate processes; PostgreSQL + Redis on 127.0.0.1)"
    );
    println!(
        "  fan-out: {subscribers} subscribers x {messages} messages x {size} B, publisher on node 1"
    );
    println!("{}", one.line("one node (no Redis)"));
    println!("{}", two.line("two nodes (half the subscribers each)"));
    println!("  two nodes / one node: {:.2}x the deliveries/s", two.per_sec / one.per_sec);
    println!(
        "  Redis between two nodes: {carried_messages} messages x 100 B => {:.0} messages/s carried (p99 {})",
        bus_only.per_sec,
        ms(percentile(&bus_only.latencies, 0.99))
    );
    println!(
        "  purge after kill -9 of a node: {:.2} s (lease 5 s, checked every 1 s)",
        purge.as_secs_f64()
    );
}

fn main() {
    let db = Database::create();
    let cluster = format!("sbbench-{}", uuid::Uuid::new_v4().simple());
    actix_web::rt::System::new().block_on(run(&db, &cluster));
    // The cluster's keys go with the run.
    if let Ok(mut redis) = redis::Client::open(REDIS).and_then(|c| c.get_connection()) {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{cluster}:*")).query(&mut redis).unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut redis);
        }
    }
}
