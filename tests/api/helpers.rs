//! `spawn_app()`: the real server on port 0 with a temporary SQLite file and short timers, and
//! clients that talk to it as any client would: real HTTP and real WebSockets (awc).
//!
//! With `SWITCHBOARD_TEST_POSTGRES=postgres://USER@HOST:PORT` set, every test server gets a
//! fresh PostgreSQL database of its own instead (created for it, dropped after): the whole
//! suite runs on the second backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_codec::Framed;
use actix_http::ws::{CloseReason, Codec, Frame, Item, Message};
use awc::BoxedSocket;
use awc::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::auth::{PasswordHasher, Role, TokenService};
use switchboard::config::Settings;
use switchboard::db;
use switchboard::startup::Application;
use tokio::sync::{mpsc, watch};

/// The HS256 secret every test server uses, so tests can mint tokens.
pub const TEST_SECRET: &str = "test-secret-0123456789-abcdefghij";
/// How long a client waits for a frame it expects.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(3);
/// Heartbeat settings of the test servers: pings every 100 ms, dead after 400 ms of silence.
pub const HEARTBEAT_MS: u64 = 100;
pub const CLIENT_TIMEOUT_MS: u64 = 400;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db_url: String,
    pub http: awc::Client,
    /// `/metrics` on its own listener, with `--metrics-bind ADDR`.
    pub metrics_url: Option<String>,
    tokens: TokenService,
    _dir: tempfile::TempDir,
    /// Dropped (the database with it) after the server's temp dir.
    postgres: Option<PostgresDatabase>,
}

/// A server with the test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A server with the test defaults plus `extra` flags (later flags win).
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db_url, postgres) = match PostgresDatabase::create() {
        Some(database) => (database.url.clone(), Some(database)),
        None => (format!("sqlite://{}", dir.path().join("hub.db").display()), None),
    };
    let mut args = vec!["--jwt-secret", TEST_SECRET];
    if postgres.is_some() {
        args.extend(["--encryption-key", "test-encryption-key-0123456789"]);
    }
    args.extend_from_slice(extra);
    let mut app = start(db_url, dir, &args).await;
    app.postgres = postgres;
    app
}

/// Whether the suite runs on PostgreSQL (`SWITCHBOARD_TEST_POSTGRES`).
pub fn on_postgres() -> bool {
    std::env::var_os("SWITCHBOARD_TEST_POSTGRES").is_some()
}

/// A PostgreSQL database made for one test server, dropped with it.
pub struct PostgresDatabase {
    pub url: String,
    server: String,
    name: String,
}

/// Where tests find PostgreSQL when they need it whatever the suite runs on: every machine of
/// this kind (CI's included) has it there.
const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

impl PostgresDatabase {
    /// A fresh database on `SWITCHBOARD_TEST_POSTGRES`, when it is set.
    pub fn create() -> Option<Self> {
        std::env::var("SWITCHBOARD_TEST_POSTGRES").ok().map(|server| Self::on(&server))
    }

    /// A fresh database for a test that needs PostgreSQL (`SWITCHBOARD_TEST_POSTGRES`, else
    /// the local server); fails with one line when there is none.
    pub fn required() -> Self {
        let server = std::env::var("SWITCHBOARD_TEST_POSTGRES")
            .unwrap_or_else(|_| LOCAL_POSTGRES.to_owned());
        Self::on(&server)
    }

    fn on(server: &str) -> Self {
        use diesel::{Connection, RunQueryDsl};
        let server = server.to_owned();
        let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            diesel::PgConnection::establish(&format!("{server}/postgres?sslmode=disable"))
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL is needed at {server} and does not answer: {e}")
                });
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).unwrap();
        // Plain TCP to the loopback server: with TLS, the servers' pools (still open on other
        // threads when the test binary exits) could touch OpenSSL after its exit-time cleanup
        // and crash the finished run (seen once as SIGSEGV after "test result: ok").
        Self { url: format!("{server}/{name}?sslmode=disable"), server, name }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        use diesel::{Connection, RunQueryDsl};
        if let Ok(mut admin) =
            diesel::PgConnection::establish(&format!("{}/postgres?sslmode=disable", self.server))
        {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = diesel::sql_query(drop).execute(&mut admin);
        }
    }
}

/// A server on an existing database, with the secret stored there (no `--jwt-secret`).
pub async fn spawn_app_on_database(db_url: &str, extra: &[&str]) -> TestApp {
    let mut args = Vec::new();
    if db_url.starts_with("postgres") {
        args.extend(["--encryption-key", "test-encryption-key-0123456789"]);
    }
    args.extend_from_slice(extra);
    start(db_url.to_owned(), tempfile::tempdir().expect("temp dir"), &args).await
}

/// Makes the database refuse every insert into `table` (a trigger installed from outside the
/// hub, in the backend's own dialect): a real storage failure.
pub fn refuse_inserts(app: &TestApp, table: &str) {
    let sql = if on_postgres() {
        format!(
            "CREATE FUNCTION refuse_{table}() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{table}();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;"
        )
    };
    raw_sql(app, &sql);
}

/// Undoes [`refuse_inserts`].
pub fn accept_inserts(app: &TestApp, table: &str) {
    let sql = if on_postgres() {
        format!("DROP TRIGGER refuse_{table} ON {table}; DROP FUNCTION refuse_{table}();")
    } else {
        format!("DROP TRIGGER refuse_{table};")
    };
    raw_sql(app, &sql);
}

/// Every row of a PostgreSQL table as text, one a line.
pub fn table_text(app: &TestApp, table: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    let url = app.db_url.parse().expect("database url");
    let pool = db::connect(&url, switchboard::config::Synchronous::Full).expect("connect");
    let db::DbConn::Postgres(mut conn) = pool.get().expect("connection") else {
        panic!("table_text reads PostgreSQL");
    };
    let query = diesel::sql_query(format!("SELECT {table}::text AS row FROM {table}"));
    let rows: Vec<Row> = diesel::RunQueryDsl::load(query, &mut *conn).expect("rows");
    rows.into_iter().map(|r| r.row).collect::<Vec<_>>().join("\n")
}

/// Runs SQL on the test server's database through a connection of its own.
pub fn raw_sql(app: &TestApp, sql: &str) {
    use diesel::connection::SimpleConnection;
    let url = app.db_url.parse().expect("database url");
    let pool = db::connect(&url, switchboard::config::Synchronous::Full).expect("connect");
    pool.get().expect("connection").batch_execute(sql).expect("raw sql");
}

async fn start(db_url: String, dir: tempfile::TempDir, extra: &[&str]) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let heartbeat = HEARTBEAT_MS.to_string();
    let timeout = CLIENT_TIMEOUT_MS.to_string();
    let defaults = [
        ["--bind", "127.0.0.1:0"],
        ["--database-url", &db_url],
        ["--heartbeat-interval-ms", &heartbeat],
        ["--client-timeout-ms", &timeout],
        ["--auth-timeout-ms", "500"],
        ["--workers", "2"],
        // Every test client comes from 127.0.0.1.
        ["--handshake-rate-per-ip", "100000"],
    ];
    // A flag may be given once: `extra` replaces the default of the same name.
    let mut args = vec!["switchboard"];
    for [flag, value] in defaults {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend_from_slice(extra);
    let settings = Settings::from_args(args).expect("test settings parse");
    let app = Application::build(settings).await.expect("server builds");
    let port = app.port();
    let metrics_url = app.metrics_address().map(|a| format!("http://{a}/metrics"));
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp { metrics_url, _dir: dir, ..client_of(port, &db_url) }
}

/// A client of a test server listening on `port` of 127.0.0.1 (in this process or a child).
pub fn client_of(port: u16, db_url: &str) -> TestApp {
    // No cap on simultaneous connections (awc defaults to 100): big-room tests hold more.
    let connector = awc::Connector::new().limit(0);
    let http =
        awc::Client::builder().connector(connector).timeout(Duration::from_secs(10)).finish();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db_url: db_url.to_owned(),
        http,
        metrics_url: None,
        tokens: TokenService::new(TEST_SECRET.as_bytes(), None),
        _dir: tempfile::tempdir().expect("temp dir"),
        postgres: None,
    }
}

impl TestApp {
    /// A signed token for `sub` in `company` valid for an hour.
    pub fn token(&self, sub: &str, role: Role, company: &str) -> String {
        self.token_for(sub, role, company, Duration::from_secs(3600))
    }

    pub fn token_for(&self, sub: &str, role: Role, company: &str, ttl: Duration) -> String {
        let name = format!("{sub} name");
        self.tokens.issue(sub, role, company, Some(&name), ttl).expect("sign").token
    }

    /// Creates a login account directly in the database; returns its id.
    pub fn create_user(&self, email: &str, password: &str, role: &str, company: &str) -> String {
        let url = self.db_url.parse().expect("db url");
        let pool = db::connect(&url, switchboard::config::Synchronous::Full).expect("db");
        let hash = PasswordHasher::new().expect("hasher").hash(password).expect("hash");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let user = db::models::NewUser {
            id: &id,
            company,
            email,
            name: "Test User",
            role,
            password_hash: &hash,
            created_at: 0,
        };
        db::users::insert(&mut pool.get().expect("conn"), &user).expect("insert user");
        id
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// GET with an optional bearer token; the status and the JSON body (Null when not JSON).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let mut res = req.send().await.expect("GET");
        let body = res.body().await.expect("body");
        (res.status(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// POST a JSON body with an optional bearer token.
    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (StatusCode, Value) {
        self.post_raw(path, &body.to_string(), token).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url(path)).content_type("application/json");
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let mut res = req.send_body(body.to_owned()).await.expect("POST");
        let body = res.body().await.expect("body");
        (res.status(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Connects with `?token=` and reads the `connected` frame.
    pub async fn connect(&self, token: &str) -> WsClient {
        let mut client =
            self.connect_raw(&format!("/ws?token={token}"), &[]).await.expect("upgrade");
        let connected = client.next_json().await;
        assert_eq!(connected["type"], "connected", "{connected}");
        client
    }

    /// Connects an agent of `company` and reads the `connected` frame.
    pub async fn agent(&self, sub: &str, company: &str) -> WsClient {
        self.connect(&self.token(sub, Role::Agent, company)).await
    }

    /// Opens a WebSocket on `path` with extra headers; the HTTP status when refused.
    pub async fn connect_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, StatusCode> {
        connect_ws(&self.http, &self.ws_url(path), headers).await
    }

    /// Polls `/api/v1/ws/status` until it reports `connections` (or fails after a while).
    pub async fn wait_for_connections(&self, connections: u64) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            let (_, status) = self.get("/api/v1/ws/status", None).await;
            if status["connections"] == json!(connections) {
                return status;
            }
            last = status;
            actix_web::rt::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("expected {connections} connections, status stayed {last}");
    }
}

/// Opens a WebSocket to any URL with extra headers; the HTTP status when refused.
pub async fn connect_ws(
    http: &awc::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<WsClient, StatusCode> {
    let mut req = http.ws(url).max_frame_size(4 * 1024 * 1024);
    for (name, value) in headers {
        req = req.set_header(*name, *value);
    }
    match req.connect().await {
        Ok((_, framed)) => Ok(WsClient::start(framed)),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status),
        Err(e) => panic!("ws connect failed: {e}"),
    }
}

/// A token signed with [`TEST_SECRET`], for servers started outside [`spawn_app`].
pub fn test_token(sub: &str, role: Role, company: &str) -> String {
    TokenService::new(TEST_SECRET.as_bytes(), None)
        .issue(sub, role, company, None, Duration::from_secs(3600))
        .expect("sign")
        .token
}

/// A real WebSocket client that behaves like a browser: a background task owns the socket and
/// answers the server's pings by itself, and queues what arrives. It can stop reading
/// ([`WsClient::pause_reading`]) to play a slow or dead client. Dropping it drops the TCP
/// connection without a close frame.
pub struct WsClient {
    outgoing: mpsc::UnboundedSender<Message>,
    events: mpsc::UnboundedReceiver<Event>,
    reading: watch::Sender<bool>,
    pings: Arc<AtomicUsize>,
}

/// What ended a wait for a frame.
#[derive(Debug)]
pub enum Event {
    Json(Value),
    Closed(Option<CloseReason>),
    /// The TCP connection ended without a close frame.
    Ended,
    Timeout,
}

impl WsClient {
    fn start(framed: Framed<BoxedSocket, Codec>) -> Self {
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (reading, reading_rx) = watch::channel(true);
        let pings = Arc::new(AtomicUsize::new(0));
        actix_web::rt::spawn(pump(framed, outgoing_rx, events_tx, reading_rx, Arc::clone(&pings)));
        Self { outgoing, events, reading, pings }
    }

    /// How many WebSocket pings the server has sent so far (each was answered).
    pub fn pings_seen(&self) -> usize {
        self.pings.load(Ordering::Relaxed)
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send(Message::Text(text.to_owned().into())).await;
    }

    pub async fn send(&mut self, message: Message) {
        self.outgoing.send(message).expect("client task is running");
    }

    /// Stops reading the socket (and so answering pings): the server's writes back up.
    pub fn pause_reading(&self) {
        self.reading.send_replace(false);
    }

    pub fn resume_reading(&self) {
        self.reading.send_replace(true);
    }

    /// The next event within `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Event {
        match tokio::time::timeout(wait, self.events.recv()).await {
            Err(_) => Event::Timeout,
            Ok(None) => Event::Ended,
            Ok(Some(event)) => event,
        }
    }

    /// The next JSON frame; fails the test on anything else.
    pub async fn next_json(&mut self) -> Value {
        match self.next_event(FRAME_TIMEOUT).await {
            Event::Json(value) => value,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Sends a request and returns the next frame.
    pub async fn request(&mut self, value: Value) -> Value {
        self.send_json(value).await;
        self.next_json().await
    }

    /// Sends a request with a `ref` (a fresh one unless it has one) and returns the answer that
    /// echoes it, skipping the frames pushed meanwhile.
    pub async fn ask(&mut self, mut frame: Value) -> Value {
        if frame.get("ref").is_none() {
            frame["ref"] = serde_json::json!(uuid::Uuid::new_v4().simple().to_string());
        }
        let wanted = frame["ref"].clone();
        self.send_json(frame).await;
        loop {
            let answer = self.next_json().await;
            if answer["ref"] == wanted {
                return answer;
            }
        }
    }

    /// The next frame of type `kind`, skipping others (for frames interleaved by design).
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next_json().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Fails the test if any frame arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        match self.next_event(wait).await {
            Event::Timeout => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// Waits for the server's close frame and returns its code; fails on anything else.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match self.next_event(FRAME_TIMEOUT).await {
                Event::Closed(Some(reason)) => return u16::from(reason.code),
                Event::Json(_) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Closes normally (1000) and waits for the server's answer.
    pub async fn close(mut self) {
        self.send(Message::Close(Some(awc::ws::CloseCode::Normal.into()))).await;
        let _ = self.next_event(Duration::from_secs(1)).await;
    }

    /// A message split into a first text fragment and continuation fragments.
    pub async fn send_fragmented(&mut self, parts: &[&str]) {
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let bytes = actix_web::web::Bytes::copy_from_slice(part.as_bytes());
            let item = match i {
                0 => Item::FirstText(bytes),
                i if i == last => Item::Last(bytes),
                _ => Item::Continue(bytes),
            };
            self.send(Message::Continuation(item)).await;
        }
    }
}

/// The client's socket task: writes what the test sends, reads (unless paused), answers pings.
async fn pump(
    mut framed: Framed<BoxedSocket, Codec>,
    mut outgoing: mpsc::UnboundedReceiver<Message>,
    events: mpsc::UnboundedSender<Event>,
    mut reading: watch::Receiver<bool>,
    pings: Arc<AtomicUsize>,
) {
    loop {
        let read = *reading.borrow();
        tokio::select! {
            message = outgoing.recv() => match message {
                Some(message) => {
                    if framed.send(message).await.is_err() {
                        break;
                    }
                }
                None => break, // the test dropped the client: drop the socket
            },
            changed = reading.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            frame = framed.next(), if read => match frame {
                Some(Ok(Frame::Text(bytes))) => {
                    let value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
                    let _ = events.send(Event::Json(value));
                }
                Some(Ok(Frame::Ping(payload))) => {
                    pings.fetch_add(1, Ordering::Relaxed);
                    let _ = framed.send(Message::Pong(payload)).await;
                }
                Some(Ok(Frame::Close(reason))) => {
                    let _ = events.send(Event::Closed(reason));
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    let _ = events.send(Event::Ended);
                    break;
                }
            },
        }
    }
}
