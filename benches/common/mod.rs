//! What the benchmarks share: a `switchboard serve` child process on 127.0.0.1, its memory,
//! WebSocket connections to it, and percentiles. Everything stays on loopback.

#![allow(dead_code)] // each benchmark uses its own part of this

use std::cell::{Cell, RefCell};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use switchboard::auth::{Role, TokenService};

pub const SECRET: &str = "bench-secret-0123456789-abcdefghij";
pub const COMPANY: &str = "bench";

/// `switchboard serve` on a free port, killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the release binary with a fresh database and `extra` flags.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_prepared(extra, |_| {})
    }

    /// [`Server::start`], with the database first prepared by `prepare` (given its URL).
    pub fn start_prepared(extra: &[&str], prepare: impl FnOnce(&str)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}/bench.db", dir.path().display());
        prepare(&db);
        Self::start_on(&db, extra, dir)
    }

    /// The release binary on the database `db` (e.g. PostgreSQL shared by cluster nodes).
    pub fn start_on(db: &str, extra: &[&str], dir: tempfile::TempDir) -> Self {
        let db = db.to_owned();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db, "--jwt-secret", SECRET])
            .args(["--rate-limit-per-sec", "1000000", "--rate-limit-burst", "1000000"])
            // Every benchmark client comes from 127.0.0.1.
            .args(["--handshake-rate-per-ip", "1000000", "--max-connections-per-ip", "1000000"])
            .args(extra)
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
                } else if line.contains("WARN")
                    || line.contains("ERROR")
                    || line.contains("panicked")
                {
                    eprintln!("server: {line}");
                }
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(30)).expect("server starts");
        Self { child, address, _dir: dir }
    }

    /// The server's resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token for `sub` in the bench company.
pub fn token(sub: &str, role: Role) -> String {
    TokenService::new(SECRET.as_bytes(), None)
        .issue(sub, role, COMPANY, None, Duration::from_secs(3600))
        .expect("sign")
        .token
}

/// An HTTP/WebSocket client without awc's default limit of 100 connections (each upgraded
/// socket holds one).
pub fn client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0))
        .timeout(Duration::from_secs(30))
        .finish()
}

pub type Socket = actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec>;

/// Connects with a token and reads the `connected` frame.
pub async fn connect(http: &awc::Client, address: &str, token: &str) -> Socket {
    let url = format!("ws://{address}/ws?token={token}");
    // room_joined lists every member: with thousands of members it passes 64 KiB.
    let (_, mut socket) = http.ws(url).max_frame_size(1 << 22).connect().await.expect("connect");
    expect_type(&mut socket, "connected").await;
    socket
}

/// Reads until a frame of `kind`, answering pings.
pub async fn expect_type(socket: &mut Socket, kind: &str) {
    loop {
        match socket.next().await {
            Some(Ok(Frame::Text(text))) => {
                if String::from_utf8_lossy(&text).contains(&format!(r#""type":"{kind}""#)) {
                    return;
                }
            }
            Some(Ok(Frame::Ping(p))) => socket.send(Message::Pong(p)).await.expect("pong"),
            Some(Ok(_)) => {}
            other => panic!("connection ended while waiting for {kind}: {other:?}"),
        }
    }
}

/// The number right after `needle` (e.g. `b"\"t\":"`, optionally quoted) in a frame: a cheap
/// scan, not a JSON parse, so the client spends its time receiving.
pub fn number_after<const N: usize>(text: &[u8], needle: &[u8; N]) -> Option<u64> {
    // A fixed-size needle compiles to a fixed-size compare; a slice compare per window is
    // slow enough to halve what one client thread can receive.
    let at = text.windows(N).position(|w| w == needle)? + N;
    let rest = &text[at..];
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The `q` quantile of sorted values.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// "p50 …  p99 …  max …" of sorted microseconds, the way every benchmark prints a latency.
pub fn spread(sorted: &[u32]) -> String {
    format!(
        "p50 {}  p99 {}  max {}",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or(0))
    )
}

/// A command-line option `--name N` of the benchmark, or the default.
pub fn option(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].parse().unwrap_or_else(|_| panic!("{name} needs a number")))
        .unwrap_or(default)
}

/// Milliseconds with two decimals, from microseconds.
pub fn ms(micros: u32) -> String {
    format!("{:.2} ms", f64::from(micros) / 1000.0)
}

/// The room the fan-out benchmarks publish into.
pub const ROOM: &str = "fanout";

pub async fn join(socket: &mut Socket) {
    let join = format!(r#"{{"type":"join_room","room":"{ROOM}"}}"#);
    socket.send(Message::Text(join.into())).await.expect("join");
    expect_type(socket, "room_joined").await;
}

/// Reads `expected` room messages, recording each one's latency from the `t` (microseconds
/// since `clock`) it carries; counts itself `done`, or `evicted` when closed with 4009.
pub async fn receive(
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
                let Some(sent) = number_after(&text, br#""t":"#) else { continue };
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
