//! Fan-out benchmark: N WebSocket connections in one room of a `switchboard serve` child
//! process, one publisher sending 1 KiB messages into the room. Prints the server's memory per
//! idle connection (RSS growth / N), deliveries per second, and publish→receive latency.
//!
//! Run: `cargo bench --bench fanout` (defaults: 2000 connections, 200 messages of 1024 bytes),
//! or `cargo bench --bench fanout -- --connections 500 --messages 100 --size 1024 --rate 50`
//! (`--rate` paces the publisher in messages per second; 0 sends back to back).
//! Everything runs on 127.0.0.1 and stops by itself (60 s at most for the delivery phase).

use std::cell::{Cell, RefCell};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use switchboard::auth::{Role, TokenService};

const SECRET: &str = "bench-secret-0123456789-abcdefghij";
const COMPANY: &str = "bench";
const ROOM: &str = "fanout";

struct Options {
    connections: usize,
    messages: usize,
    size: usize,
    rate: u64,
}

fn options() -> Options {
    let mut options = Options { connections: 2000, messages: 200, size: 1024, rate: 0 };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = || pair[1].parse().unwrap_or_else(|_| panic!("{} needs a number", pair[0]));
        match pair[0].as_str() {
            "--connections" => options.connections = value(),
            "--messages" => options.messages = value(),
            "--size" => options.size = value(),
            "--rate" => options.rate = value() as u64,
            _ => {}
        }
    }
    options
}

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(db: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", db, "--jwt-secret", SECRET])
        .args(["--rate-limit-per-sec", "1000000", "--rate-limit-burst", "1000000"])
        .args(["--max-rooms-per-connection", "4"])
        .env("RUST_LOG", "warn,switchboard::startup=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((_, address)) = line.split_once("listening on http://") {
                let _ = tx.send(address.trim().to_owned());
            } else if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("server: {line}");
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(30)).expect("server starts");
    Server { child, address }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

type Socket = actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec>;

async fn connect(http: &awc::Client, address: &str, token: &str) -> Socket {
    let url = format!("ws://{address}/ws?token={token}");
    // room_joined lists every member: with thousands of members it passes 64 KiB.
    let (_, mut socket) = http.ws(url).max_frame_size(1 << 22).connect().await.expect("connect");
    expect_type(&mut socket, "connected").await;
    socket
}

async fn join(socket: &mut Socket) {
    let join = format!(r#"{{"type":"join_room","room":"{ROOM}"}}"#);
    socket.send(Message::Text(join.into())).await.expect("join");
    expect_type(socket, "room_joined").await;
}

async fn expect_type(socket: &mut Socket, kind: &str) {
    loop {
        match socket.next().await {
            Some(Ok(Frame::Text(text))) => {
                let text = String::from_utf8_lossy(&text);
                assert!(text.contains(&format!(r#""type":"{kind}""#)), "expected {kind}: {text}");
                return;
            }
            Some(Ok(Frame::Ping(p))) => socket.send(Message::Pong(p)).await.expect("pong"),
            Some(Ok(_)) => {}
            other => panic!("connection ended while waiting for {kind}: {other:?}"),
        }
    }
}

/// Reads room messages, recording each one's latency from the `t` it carries.
async fn receive(
    mut socket: Socket,
    expected: usize,
    clock: Instant,
    latencies: Rc<RefCell<Vec<u32>>>,
    done: Rc<Cell<usize>>,
    evicted: Rc<Cell<usize>>,
) {
    let mut received = 0;
    while received < expected {
        match socket.next().await {
            Some(Ok(Frame::Text(text))) => {
                let Some(sent) = sent_at(&text) else { continue };
                let now = clock.elapsed().as_micros() as u64;
                latencies.borrow_mut().push(now.saturating_sub(sent) as u32);
                received += 1;
            }
            Some(Ok(Frame::Ping(p))) => {
                let _ = socket.send(Message::Pong(p)).await;
            }
            Some(Ok(Frame::Close(reason))) => {
                if reason.is_some_and(|r| u16::from(r.code) == 4009) {
                    evicted.set(evicted.get() + 1);
                }
                break;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    done.set(done.get() + 1);
}

/// The publish time the publisher put in `"t":<micros>` (a cheap scan, not a JSON parse).
fn sent_at(text: &[u8]) -> Option<u64> {
    let at = text.windows(4).position(|w| w == br#""t":"#)? + 4;
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&text[at..at + digits]).ok()?.parse().ok()
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

async fn run(options: Options, server: &Server) {
    let tokens = TokenService::new(SECRET.as_bytes(), None);
    let token = |sub: &str| {
        tokens
            .issue(sub, Role::Service, COMPANY, None, Duration::from_secs(3600))
            .expect("sign")
            .token
    };
    // awc holds a pool slot per upgraded socket; its default limit is 100 connections.
    let connector = awc::Connector::new().limit(0);
    let http =
        awc::Client::builder().connector(connector).timeout(Duration::from_secs(30)).finish();
    let pid = server.child.id();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let base_rss = rss_kib(pid);

    let started = Instant::now();
    let mut sockets = Vec::with_capacity(options.connections);
    for chunk in (0..options.connections).collect::<Vec<_>>().chunks(100) {
        let batch = chunk.iter().map(|i| {
            let token = token(&format!("receiver-{i}"));
            let http = &http;
            let address = &server.address;
            async move { connect(http, address, &token).await }
        });
        sockets.extend(futures_util::future::join_all(batch).await);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(pid);
    let per_connection =
        (idle_rss.saturating_sub(base_rss) * 1024) as f64 / options.connections as f64;
    for chunk in sockets.chunks_mut(100) {
        futures_util::future::join_all(chunk.iter_mut().map(join)).await;
    }
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let joined_rss = rss_kib(pid);

    let clock = Instant::now();
    let latencies =
        Rc::new(RefCell::new(Vec::with_capacity(options.connections * options.messages)));
    let done = Rc::new(Cell::new(0));
    let evicted = Rc::new(Cell::new(0));
    for socket in sockets {
        actix_web::rt::spawn(receive(
            socket,
            options.messages,
            clock,
            latencies.clone(),
            done.clone(),
            evicted.clone(),
        ));
    }
    let mut publisher = connect(&http, &server.address, &token("publisher")).await;
    join(&mut publisher).await;

    let pad = "x".repeat(options.size.saturating_sub(80));
    let pace = (options.rate > 0).then(|| Duration::from_secs_f64(1.0 / options.rate as f64));
    let send_start = Instant::now();
    for n in 0..options.messages {
        let t = clock.elapsed().as_micros();
        let frame = format!(
            r#"{{"type":"publish","room":"{ROOM}","data":{{"t":{t},"n":{n},"pad":"{pad}"}}}}"#
        );
        publisher.send(Message::Text(frame.into())).await.expect("publish");
        if let Some(pace) = pace {
            let next = send_start + pace * (n as u32 + 1);
            actix_web::rt::time::sleep_until(next.into()).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.get() < options.connections && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = send_start.elapsed().as_secs_f64();
    let busy_rss = rss_kib(pid);

    let mut lat = latencies.borrow().clone();
    lat.sort_unstable();
    let delivered = lat.len();
    let expected = options.connections * options.messages;
    println!("switchboard fan-out benchmark (server: separate process, 127.0.0.1)");
    println!(
        "  connections {}  messages {} x {} B  rate {}",
        options.connections,
        options.messages,
        options.size,
        if options.rate == 0 { "back-to-back".to_owned() } else { format!("{}/s", options.rate) }
    );
    println!(
        "  connect: {connect_secs:.2} s ({:.0} connections/s)",
        options.connections as f64 / connect_secs
    );
    println!(
        "  server RSS: {base_rss} KiB at start, {idle_rss} KiB with {} idle connections => {:.1} KiB per connection",
        options.connections,
        per_connection / 1024.0
    );
    println!("  server RSS after all joined one room: {joined_rss} KiB");
    println!("  server RSS after the fan-out: {busy_rss} KiB");
    println!(
        "  delivered {delivered}/{expected} in {elapsed:.2} s => {:.0} deliveries/s; evicted as slow: {}",
        delivered as f64 / elapsed,
        evicted.get()
    );
    println!(
        "  latency publish->receive: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&lat, 0.50) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}

fn main() {
    let options = options();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/bench.db", dir.path().display());
    let server = start_server(&db);
    actix_web::rt::System::new().block_on(run(options, &server));
}
