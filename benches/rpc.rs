//! RPC proxy benchmark (`docs/protocol.md` §11): C connections to a `switchboard serve` child
//! process, each calling `rpc` in a closed loop (one call waiting at a time) for S seconds; the
//! hub signs each call and POSTs it to a backend in this process (its own thread), which checks
//! the signature the way a real one would and answers `{"result": …}`. Prints round trips per
//! second and the round-trip time at the client (p50, p99), plus the hub's memory.
//!
//! Run: `cargo bench --bench rpc` (defaults: 200 connections for 5 s), or
//! `cargo bench --bench rpc -- --connections 200 --seconds 5`. Everything stays on 127.0.0.1
//! and stops by itself.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::{Frame, Message};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::{Server, Socket, client, connect, option, spread, token};
use futures_util::{SinkExt, StreamExt};
use subtle::ConstantTimeEq;
use switchboard::auth::Role;
use switchboard::rpc_proxy;

const SECRET: &str = "bench-backend-secret";

/// The backend: verifies `X-Switchboard-Signature`, then answers with a small result.
async fn backend(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let timestamp: i64 = header("X-Switchboard-Timestamp").parse().unwrap_or(0);
    let expected = rpc_proxy::signature(SECRET.as_bytes(), timestamp, &body);
    let given = header("X-Switchboard-Signature");
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok().content_type("application/json").body(r#"{"result":{"text":"Keep going."}}"#)
}

/// Starts the backend on its own thread and actix system; its URL.
fn start_backend() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(|| App::new().route("/rpc", web::post().to(backend)))
                .workers(1)
                .bind("127.0.0.1:0")
                .expect("bind the backend");
            tx.send(server.addrs()[0]).expect("report the address");
            server.run().await.expect("backend runs");
        });
    });
    format!("http://{}/rpc", rx.recv().expect("backend starts"))
}

/// Calls `rpc` until `until`, one at a time, recording each round trip.
async fn caller(
    mut socket: Socket,
    until: Instant,
    times: Rc<RefCell<Vec<u32>>>,
    errors: Rc<Cell<usize>>,
) {
    const REQUEST: &str = r#"{"type":"rpc","method":"motivation","data":{"mood":3}}"#;
    while Instant::now() < until {
        let sent = Instant::now();
        socket.send(Message::Text(REQUEST.into())).await.expect("send");
        loop {
            match socket.next().await {
                Some(Ok(Frame::Text(text))) => {
                    if text.starts_with(br#"{"type":"rpc_result""#) {
                        times.borrow_mut().push(sent.elapsed().as_micros() as u32);
                        break;
                    }
                    if text.starts_with(br#"{"type":"rpc_error""#) {
                        errors.set(errors.get() + 1);
                        break;
                    }
                }
                Some(Ok(Frame::Ping(p))) => {
                    let _ = socket.send(Message::Pong(p)).await;
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    }
}

async fn run(server: &Server) {
    let connections = option("--connections", 200) as usize;
    let seconds = option("--seconds", 5);
    let http = client();
    let mut sockets = Vec::with_capacity(connections);
    for i in 0..connections {
        let role = if i % 2 == 0 { Role::Customer } else { Role::Agent };
        sockets.push(connect(&http, &server.address, &token(&format!("user-{i}"), role)).await);
    }
    // Let the presence notices of the connects drain before measuring.
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;

    let times = Rc::new(RefCell::new(Vec::new()));
    let errors = Rc::new(Cell::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let running: Vec<_> = sockets
        .into_iter()
        .map(|socket| actix_web::rt::spawn(caller(socket, until, times.clone(), errors.clone())))
        .collect();
    for task in running {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut times = times.borrow().clone();
    times.sort_unstable();
    println!(
        "switchboard rpc proxy benchmark (hub: separate process; backend: this process, own thread; 127.0.0.1)"
    );
    println!("  connections {connections}, each one rpc waiting at a time, {seconds} s");
    println!(
        "  {} round trips in {elapsed:.2} s => {:.0} rpc round trips/s; rpc_error {}",
        times.len(),
        times.len() as f64 / elapsed,
        errors.get()
    );
    println!("  round trip at the client: {}", spread(&times));
    println!("  hub RSS at the end: {} KiB", server.rss_kib());
}

fn main() {
    let url = start_backend();
    let server = Server::start(&["--rpc-proxy-url", &url, "--rpc-proxy-secret", SECRET]);
    actix_web::rt::System::new().block_on(run(&server));
}
