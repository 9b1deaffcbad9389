//! Webhook benchmark: N agents connected to a `switchboard serve` child process; signed Twilio
//! status callbacks posted at a fixed rate (each one a new call, so each is stored and pushed).
//! Prints webhooks/s, the webhook's own response time, and webhook→screen latency: from the
//! moment the POST is sent to the moment each agent's socket has the `call_status_changed`.
//!
//! Run: `cargo bench --bench webhooks` (the three loads of README "Performance", 5 s each), or
//! one load: `cargo bench --bench webhooks -- --agents 500 --rate 400 --seconds 5 --concurrency 16`.
//! Everything runs on 127.0.0.1 and stops by itself.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_http::ws::{Frame, Message};
use common::{Server, Socket, client, connect, number_after, option, spread, token};
use futures_util::{SinkExt, StreamExt};
use switchboard::auth::Role;
use switchboard::telephony::twilio;

const TWILIO_TOKEN: &str = "bench-twilio-token";

/// Reads `call_status_changed` frames, recording the latency from the send time in `data`.
async fn watch(
    mut socket: Socket,
    expected: usize,
    clock: Instant,
    latencies: Rc<RefCell<Vec<u32>>>,
    done: Rc<Cell<usize>>,
) {
    let mut received = 0;
    while received < expected {
        match socket.next().await {
            Some(Ok(Frame::Text(text))) => {
                let Some(sent) = number_after(&text, br#""BenchSentMicros":"#) else { continue };
                let now = clock.elapsed().as_micros() as u64;
                latencies.borrow_mut().push(now.saturating_sub(sent) as u32);
                received += 1;
            }
            Some(Ok(Frame::Ping(p))) => {
                let _ = socket.send(Message::Pong(p)).await;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    done.set(done.get() + 1);
}

/// The loads of README "Performance": (agents, webhooks/s). The first is the working day of a
/// big team, the second a small team's busy hour, the third past what two cores can deliver
/// (a million screen updates a second) where intake must stay prompt.
const SCENARIOS: [(u64, u64); 3] = [(2000, 50), (100, 500), (2000, 500)];

async fn run(server: &Server, agents: u64, rate: u64) {
    let agents = agents as usize;
    let rate = rate.max(1);
    let seconds = option("--seconds", 5);
    let concurrency = option("--concurrency", 16) as usize;
    let total = (rate * seconds) as usize;
    let http = client();

    let clock = Instant::now();
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(agents * total)));
    let done = Rc::new(Cell::new(0));
    for i in 0..agents {
        let socket =
            connect(&http, &server.address, &token(&format!("agent-{i}"), Role::Agent)).await;
        actix_web::rt::spawn(watch(socket, total, clock, latencies.clone(), done.clone()));
    }
    // Let the presence notices of the connects drain before measuring.
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;

    // The provider posts from its own thread, as Twilio is not the agents' browser: a webhook's
    // response time is then the hub's, not the wait behind 2,000 sockets read on this thread.
    let address = server.address.clone();
    let provider = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(post_webhooks(
            address,
            rate,
            total,
            concurrency,
            clock,
        ))
    });
    while !provider.is_finished() {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let posted = provider.join().expect("the provider thread panicked");
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.get() < agents && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }

    println!("switchboard webhook benchmark (server: separate process, 127.0.0.1, SQLite)");
    println!("  agents {agents}  webhooks {total} at {rate}/s offered  concurrency {concurrency}");
    report(total, posted, latencies.borrow().clone(), server);
}

/// Prints what a load measured: intake, response times, webhook→screen latency, memory.
fn report(total: usize, posted: Posted, mut screen: Vec<u32>, server: &Server) {
    let Posted { mut responses, failures, seconds } = posted;
    responses.sort_unstable();
    screen.sort_unstable();
    println!(
        "  accepted {}/{total} in {seconds:.2} s => {:.0} webhooks/s stored and pushed; failed {failures}",
        responses.len(),
        responses.len() as f64 / seconds,
    );
    println!("  webhook response time: {}", spread(&responses));
    println!("  webhook->screen latency over {} deliveries: {}", screen.len(), spread(&screen));
    println!("  server RSS at the end: {} KiB", server.rss_kib());
}

/// What the provider thread measured.
struct Posted {
    responses: Vec<u32>,
    failures: usize,
    seconds: f64,
}

/// Posts `total` signed status callbacks at `rate`/s, at most `concurrency` in flight; each
/// carries its send time (on `clock`, shared with the agents' thread) for the screen latency.
async fn post_webhooks(
    address: String,
    rate: u64,
    total: usize,
    concurrency: usize,
    clock: Instant,
) -> Posted {
    let http = client();
    let url = format!("http://{address}/api/v1/webhooks/twilio?company=bench");
    let response_times = Rc::new(RefCell::new(Vec::with_capacity(total)));
    let failures = Rc::new(Cell::new(0usize));
    let in_flight = Rc::new(Cell::new(0usize));
    let pace = Duration::from_secs_f64(1.0 / rate as f64);
    let send_start = Instant::now();
    for n in 0..total {
        actix_web::rt::time::sleep_until((send_start + pace * n as u32).into()).await;
        while in_flight.get() >= concurrency {
            actix_web::rt::time::sleep(Duration::from_micros(200)).await;
        }
        let sent = clock.elapsed().as_micros().to_string();
        let sid = format!("CA{n:032}");
        let params: Vec<(String, String)> = [
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("CallSid", sid.as_str()),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
            ("From", "+15017122661"),
            ("To", "+15558675310"),
            ("SequenceNumber", "1"),
            ("BenchSentMicros", sent.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = twilio::signature(TWILIO_TOKEN, &url, &params);
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
        let request = http
            .post(&url)
            .insert_header(("X-Twilio-Signature", signature))
            .content_type("application/x-www-form-urlencoded");
        let (response_times, failures, in_flight) =
            (response_times.clone(), failures.clone(), in_flight.clone());
        in_flight.set(in_flight.get() + 1);
        actix_web::rt::spawn(async move {
            let posted = Instant::now();
            match request.send_body(body).await {
                Ok(response) if response.status().is_success() => {
                    response_times.borrow_mut().push(posted.elapsed().as_micros() as u32);
                }
                _ => failures.set(failures.get() + 1),
            }
            in_flight.set(in_flight.get() - 1);
        });
    }
    while in_flight.get() > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = send_start.elapsed().as_secs_f64();
    let responses = response_times.borrow().clone();
    Posted { responses, failures: failures.get(), seconds }
}

/// `--agents` and `--rate` run one load; without them, each of [`SCENARIOS`] on a fresh server.
fn main() {
    let one = std::env::args().any(|a| a == "--agents" || a == "--rate");
    let loads = if one {
        vec![(option("--agents", 100), option("--rate", 200))]
    } else {
        SCENARIOS.to_vec()
    };
    for (agents, rate) in loads {
        let server = Server::start(&["--twilio-auth-token", TWILIO_TOKEN]);
        actix_web::rt::System::new().block_on(run(&server, agents, rate));
    }
}
