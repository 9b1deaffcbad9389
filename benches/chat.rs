//! Chat benchmark: one support conversation watched by 100 agents (and its customer), on a
//! `switchboard serve` child process whose database already holds 10,000 conversations and
//! 1,000,000 messages. Prints:
//! - the inbox, an unread-only inbox and a history page: response times over HTTP;
//! - a burst: every agent sends 20 messages at once (the per-user burst) — messages stored and
//!   delivered per second, until every watcher has every message;
//! - paced: 200 messages a second for 5 s — send→receive latency p50/p99 at the watchers.
//!
//! Run: `cargo bench --bench chat` (options: `-- --agents 100 --conversations 10000
//! --messages-per-conversation 100 --rate 200 --seconds 5`). Everything stays on 127.0.0.1 and
//! stops by itself.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::{Frame, Message};
use common::{
    Server, Socket, client, connect, ms, number_after, option, percentile, spread, token,
};
use futures_util::{SinkExt, StreamExt};
use switchboard::auth::Role;

const CONVERSATION: &str = "support:bench-customer";

/// Fills the database: `conversations` support conversations of `per_conversation` messages each,
/// alternating customer and agent, in one transaction.
fn seed(db: &str, conversations: u64, per_conversation: u64) {
    let url = db.parse().expect("database url");
    let pool =
        switchboard::db::connect(&url, switchboard::config::Synchronous::Normal).expect("db");
    switchboard::db::migrate(&pool).expect("migrate");
    let total = conversations * per_conversation;
    let sql = format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_conversation})
         INSERT INTO conversations (company, id, kind, customer_id, customer_name, last_seq, last_message_at, created_at)
         SELECT 'bench', 'support:seed-' || i, 'support', 'seed-' || i, 'Seed ' || i, {per_conversation},
                1700000000000 + i * 1000, 1700000000000 FROM n;
         WITH RECURSIVE m(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM m WHERE j < {last_message})
         INSERT INTO messages (company, conversation, seq, id, sender_id, sender_name, sender_role, text, sent_at)
         SELECT 'bench', 'support:seed-' || (j / {per_conversation}), (j % {per_conversation}) + 1, 'seed-' || j,
                CASE WHEN j % 2 = 0 THEN 'seed-' || (j / {per_conversation}) ELSE 'agent-0' END, 'Seed',
                CASE WHEN j % 2 = 0 THEN 'customer' ELSE 'agent' END, 'message number ' || j, 1700000000000 + j
         FROM m;
         COMMIT;",
        last_conversation = conversations - 1,
        last_message = total - 1,
    );
    let started = Instant::now();
    diesel::connection::SimpleConnection::batch_execute(&mut pool.get().expect("conn"), &sql)
        .expect("seed");
    println!(
        "  seeded {conversations} conversations and {total} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Times `rounds` GETs of `path`; sorted microseconds.
async fn time_get(
    http: &awc::Client,
    address: &str,
    path: &str,
    token: &str,
    rounds: usize,
) -> Vec<u32> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let mut res = http
            .get(format!("http://{address}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.body().limit(1 << 24).await.expect("body");
        times.push(started.elapsed().as_micros() as u32);
    }
    times.sort_unstable();
    times
}

/// Reads chat frames until `expected` messages arrived (its own `message_sent` counting),
/// recording the latency of those that carry a `t`.
async fn watch(
    mut socket: Socket,
    expected: usize,
    clock: Instant,
    latencies: Rc<RefCell<Vec<u32>>>,
    done: Rc<Cell<usize>>,
) -> Socket {
    let mut received = 0;
    while received < expected {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Frame::Text(text)))) => {
                // `message`, and `message_sent` for a watcher's own sends.
                let is_message = text.starts_with(br#"{"type":"message"#);
                if !is_message {
                    continue;
                }
                received += 1;
                if let Some(sent) = number_after(&text, br#""t":"#) {
                    let now = clock.elapsed().as_micros() as u64;
                    latencies.borrow_mut().push(now.saturating_sub(sent) as u32);
                }
            }
            Ok(Some(Ok(Frame::Ping(p)))) => {
                let _ = socket.send(Message::Pong(p)).await;
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    if received >= expected {
        done.set(done.get() + 1);
    }
    socket
}

/// Sends `count` messages 100 ms apart from `first`, reading between sends.
async fn paced_sender(mut socket: Socket, count: usize, first: Instant, clock: Instant) {
    for n in 0..count {
        let due = first + Duration::from_millis(100) * n as u32;
        loop {
            tokio::select! {
                _ = actix_web::rt::time::sleep_until(due.into()) => break,
                frame = socket.next() => match frame {
                    Some(Ok(Frame::Ping(p))) => { let _ = socket.send(Message::Pong(p)).await; }
                    Some(Ok(Frame::Close(reason))) => panic!("a sender was closed: {reason:?}"),
                    Some(Ok(_)) => {}
                    other => panic!("a sender's connection ended: {other:?}"),
                },
            }
        }
        let t = clock.elapsed().as_micros() as u64;
        socket.send(send_frame("paced", Some(t))).await.expect("send");
    }
    // Keep reading a while: the last messages are still on their way to the watchers.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

fn send_frame(text: &str, t: Option<u64>) -> Message {
    let meta = t.map_or_else(|| "null".to_owned(), |t| format!(r#"{{"t":{t}}}"#));
    Message::Text(
        format!(r#"{{"type":"send_message","conversation":"{CONVERSATION}","text":"{text}","meta":{meta}}}"#).into(),
    )
}

#[actix_web::main]
async fn main() {
    let agents = option("--agents", 100) as usize;
    let conversations = option("--conversations", 10_000);
    let per_conversation = option("--messages-per-conversation", 100);
    let rate = option("--rate", 200);
    let seconds = option("--seconds", 5);
    println!("switchboard chat benchmark (server: separate process, 127.0.0.1)");
    // A deep queue per connection: one client process reads 101 sockets, and must not be
    // evicted as a slow consumer for its own slowness.
    let flags = ["--session-queue", "8192"];
    let server = Server::start_prepared(&flags, |db| seed(db, conversations, per_conversation));
    let http = client();

    // The inbox with 10,000 conversations and 1,000,000 messages.
    let agent_token = token("agent-0", Role::Agent);
    let inbox = time_get(&http, &server.address, "/api/v1/conversations", &agent_token, 50).await;
    let unread =
        time_get(&http, &server.address, "/api/v1/conversations?unread=true", &agent_token, 50)
            .await;
    let history_path = format!("/api/v1/conversations/support:seed-{}/messages", conversations / 2);
    let history = time_get(&http, &server.address, &history_path, &agent_token, 50).await;
    for (what, times) in [
        ("inbox (50 conversations)", &inbox),
        ("unread inbox", &unread),
        ("history page (50 messages)", &history),
    ] {
        println!(
            "  {what}: p50 {}  p99 {}",
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99))
        );
    }

    // One conversation watched by every agent and its customer.
    let mut sockets = Vec::new();
    for i in 0..agents {
        sockets.push(
            connect(&http, &server.address, &token(&format!("agent-{i}"), Role::Agent)).await,
        );
    }
    let customer = connect(&http, &server.address, &token("bench-customer", Role::Customer)).await;

    // Burst: every agent sends 20 at once.
    let burst = agents * 20;
    let clock = Instant::now();
    let (latencies, done) = (Rc::new(RefCell::new(Vec::new())), Rc::new(Cell::new(0)));
    for socket in &mut sockets {
        for i in 0..20 {
            socket.send(send_frame(&format!("burst {i}"), None)).await.expect("send");
        }
    }
    let mut watchers = Vec::new();
    for socket in sockets.drain(..).chain(std::iter::once(customer)) {
        watchers.push(actix_web::rt::spawn(watch(
            socket,
            burst,
            clock,
            latencies.clone(),
            done.clone(),
        )));
    }
    let mut sockets = Vec::new();
    for watcher in watchers {
        sockets.push(watcher.await.expect("watcher"));
    }
    let elapsed = clock.elapsed().as_secs_f64();
    println!(
        "  burst: {burst} messages stored and delivered to {}/{} watchers in {elapsed:.2} s => {:.0} messages/s, {:.0} deliveries/s",
        done.get(),
        agents + 1,
        burst as f64 / elapsed,
        (burst * (agents + 1)) as f64 / elapsed
    );

    // Paced: `rate` messages a second from `rate / 10` agents (10 a second each, the per-user
    // rate), for `seconds`.
    actix_web::rt::time::sleep(Duration::from_millis(option("--pause-ms", 3000))).await; // buckets refill
    let senders = (rate as usize / 10).clamp(1, agents);
    let total = senders * 10 * seconds as usize;
    let clock = Instant::now();
    let (latencies, done) = (Rc::new(RefCell::new(Vec::new())), Rc::new(Cell::new(0)));
    let watching = sockets.split_off(senders);
    let watchers: Vec<_> = watching
        .into_iter()
        .map(|socket| {
            actix_web::rt::spawn(watch(socket, total, clock, latencies.clone(), done.clone()))
        })
        .collect();
    // Each sender sends 10 a second, offset from the others, and reads what comes back in
    // between (its own `message_sent` and the others' messages) like any client.
    let start = Instant::now();
    let per_sender = 10 * seconds as usize;
    for (k, socket) in sockets.into_iter().enumerate() {
        let offset = Duration::from_secs_f64(k as f64 / rate as f64);
        actix_web::rt::spawn(paced_sender(socket, per_sender, start + offset, clock));
    }
    for watcher in watchers {
        let _ = watcher.await;
    }
    let mut lat = latencies.borrow().clone();
    lat.sort_unstable();
    println!(
        "  paced {rate} messages/s for {seconds} s to {}/{} watchers: {} delivered; send->receive {}",
        done.get(),
        agents + 1 - senders,
        lat.len(),
        spread(&lat)
    );
    drop(server);
}
