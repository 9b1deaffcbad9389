//! Building and running the server: open and migrate the database, resolve the signing
//! secret, bind (port 0 allowed), start the hubs once, then serve until stopped. Tests build
//! exactly this with their own settings, one application per test.

use std::cell::OnceCell;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use base64::Engine;

use crate::auth::{ClaimPath, ExternalIssuer, PasswordHashError, PasswordHasher, TokenService};
use crate::calendar::CalendarTool;
use crate::calendar::crypto::TokenCipher;
use crate::calendar::oauth::Google;
use crate::cluster::{Bus, driver};
use crate::config::{ConfigError, MetricsBind, Settings};
use crate::db::{self, DbError, DbPool};
use crate::hubs::Hubs;
use crate::hubs::calls::BROWSER_PROVIDER;
use crate::hubs::presence::CloseAll;
use crate::metrics::Metrics;
use crate::outbound::HttpClient;
use crate::rpc_proxy::RpcProxy;
use crate::state::{AppState, AuthLimits, SessionConfig};
use crate::{accounts, logging, net, routes, ws};

/// Why the hub could not start (or stopped); the message names the setting at fault where
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--database-url: {0}")]
    Database(#[from] DbError),
    #[error("password hashing: {0}")]
    PasswordHashing(#[from] PasswordHashError),
    #[error("cannot sign the token: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("cannot read the password from standard input: {0}")]
    PasswordInput(std::io::Error),
    #[error("cannot serve on {address}: {source}")]
    Serve { address: SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Server(std::io::Error),
}

/// How long a starting node of a cluster waits for Redis before it serves anyway.
const JOIN_WAIT: Duration = Duration::from_secs(3);

/// A built, bound, not yet running server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    hubs: Hubs,
    /// `/metrics`' own listener and server, with `--metrics-bind ADDR`.
    metrics: Option<(SocketAddr, Server)>,
}

/// Opens the database and applies pending migrations (shared by `serve` and the sub-commands).
pub fn open_database(
    settings: &Settings,
    metrics: Option<Arc<Metrics>>,
) -> Result<DbPool, StartupError> {
    let storage = &settings.storage;
    let pool = db::connect_timed(&storage.database_url, storage.sqlite_synchronous, metrics)?;
    for version in db::migrate(&pool)? {
        log::info!("applied migration {version}");
    }
    Ok(pool)
}

/// Browser calls live in the CallHub's memory: the ones a previous run left open cannot go on,
/// so they end (`server-restart`) before anyone connects.
fn end_interrupted_calls(pool: &DbPool) -> Result<(), StartupError> {
    let mut conn = pool.get().map_err(DbError::from)?;
    let ended = db::calls::end_open_calls(&mut conn, BROWSER_PROVIDER, "server-restart")
        .map_err(DbError::from)?;
    if ended > 0 {
        log::info!("ended {ended} browser calls left open by the previous run");
    }
    Ok(())
}

/// The token service: `--jwt-secret`, or the secret generated once and kept in the database;
/// plus the external identity provider's key when `--jwt-public-key` is set.
pub fn token_service(
    settings: &Settings,
    pool: &DbPool,
    http: &dyn Fn() -> HttpClient,
) -> Result<TokenService, StartupError> {
    let auth = &settings.auth;
    let secret = match &auth.jwt_secret {
        Some(secret) => secret.expose().to_owned(),
        None => {
            let mut conn = pool.get().map_err(DbError::from)?;
            db::server_settings::get_or_create(
                &mut conn,
                db::server_settings::JWT_SECRET,
                random_secret,
            )
            .map_err(DbError::from)?
        }
    };
    Ok(TokenService::new(secret.as_bytes(), external_issuer(settings, http)?))
}

/// The external identity provider, when `--jwt-public-key` or `--jwt-jwks-url` names one.
fn external_issuer(
    settings: &Settings,
    http: &dyn Fn() -> HttpClient,
) -> Result<Option<ExternalIssuer>, ConfigError> {
    let auth = &settings.auth;
    let (Some(issuer), Some(audience)) = (auth.jwt_issuer.clone(), auth.jwt_audience.clone())
    else {
        return Ok(None);
    };
    let claims = (ClaimPath::new(&auth.jwt_role_claim), ClaimPath::new(&auth.jwt_company_claim));
    Ok(match (&auth.jwt_public_key, &auth.jwt_jwks_url) {
        (Some(path), _) => Some(ExternalIssuer::from_pem(path, issuer, audience, claims)?),
        (None, Some(url)) => {
            Some(ExternalIssuer::from_jwks(url.clone(), http(), issuer, audience, claims))
        }
        (None, None) => None,
    })
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    // getrandom only fails when the OS has no entropy source at all; a hub cannot run there.
    if let Err(e) = getrandom::fill(&mut bytes) {
        panic!("no OS random source for the JWT secret: {e}");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate()?;
        let metrics = Arc::new(match settings.operations.metrics_bind {
            Some(MetricsBind::Off) => Metrics::disabled(),
            _ => Metrics::new(),
        });
        let pool = open_database(&settings, Some(metrics.clone()))?;
        // In a cluster the other nodes' calls go on; a dead node's are ended by its claimer.
        if settings.cluster.redis_url.is_none() {
            end_interrupted_calls(&pool)?;
        }
        // The one outbound HTTP client (Google, a JWKS, the RPC backend), made only when one of
        // them is configured: a hub without them never loads TLS roots.
        let outbound = OnceCell::new();
        let http = || outbound.get_or_init(crate::outbound::http_client).clone();
        let tokens = Arc::new(token_service(&settings, &pool, &http)?);
        tokens.fetch_external_keys().await;
        let listener = listen(settings.http.bind)?;
        let address = listener
            .local_addr()
            .map_err(|source| StartupError::Serve { address: settings.http.bind, source })?;
        let public_url =
            settings.http.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
        let cipher = Arc::new(TokenCipher::from_settings(
            settings.google.encryption_key.as_ref(),
            &settings.storage.database_url,
        )?);
        let google = Google::from_settings(&settings.google, &public_url, &http).map(Arc::new);
        let rpc = RpcProxy::from_settings(&settings.backend, &http).map(Arc::new);
        let calendar = CalendarTool::new(pool.clone(), Arc::clone(&cipher), google.clone());
        let ws = &settings.websocket;
        let caps = net::ConnectionCaps::new(
            ws.max_connections_per_ip as usize,
            ws.max_connections_per_user as usize,
        );
        let (bus, bus_queue) = (settings.cluster.redis_url.as_ref())
            .map(|_| Bus::new(&settings.cluster, metrics.clone()))
            .unzip();
        let hubs =
            Hubs::start(&settings, pool.clone(), calendar, metrics, caps.clone(), bus.clone());
        if let (Some(url), Some(bus), Some(queue)) = (&settings.cluster.redis_url, &bus, bus_queue)
        {
            let cluster = &settings.cluster.cluster_name;
            driver::start(url, cluster, bus.clone(), queue, hubs.bus_targets())
                .map_err(|e| ConfigError::new("--redis-url", e.to_string()))?;
            if !bus.joined(JOIN_WAIT).await {
                log::warn!("redis does not answer yet: serving this node's clients meanwhile");
            }
        }
        accounts::watch_disabled(
            pool.clone(),
            tokens.disabled_users().clone(),
            hubs.presence.clone(),
        );
        let state = AppState {
            limits: AuthLimits::new(settings.auth.auth_rate_per_minute),
            session: Arc::new(SessionConfig::new(
                &settings,
                hubs.clone(),
                pool.clone(),
                Arc::clone(&tokens),
                rpc,
                caps,
            )),
            passwords: Arc::new(PasswordHasher::new()?),
            public_url,
            pool,
            hubs: hubs.clone(),
            tokens,
            google,
            cipher,
            settings,
        };
        let state = web::Data::new(state);
        let metrics = match state.settings.operations.metrics_bind {
            Some(MetricsBind::Listen(bind)) => Some(serve_metrics(state.clone(), bind)?),
            _ => None,
        };
        let server = serve(state, listener, address)?;
        log::info!("listening on http://{address}");
        Ok(Self { address, server, hubs, metrics })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address of `/metrics`' own listener, with `--metrics-bind ADDR`.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(address, _)| *address)
    }

    /// Serves until SIGINT/SIGTERM, then closes every WebSocket with 1001 and stops gracefully.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let handle = self.server.handle();
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let presence = self.hubs.presence.clone();
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            log::info!("shutting down");
            if let Ok(asked) = presence.send(CloseAll).await {
                log::info!("asked {asked} connections to close (1001)");
            }
            // Give the sessions a moment to write their close frames.
            actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            if let Some(metrics) = metrics {
                metrics.stop(true).await;
            }
            handle.stop(true).await;
        });
        self.server.await.map_err(StartupError::Server)
    }
}

/// `/metrics` on a listener of its own (`--metrics-bind ADDR`): one worker, that one route.
fn serve_metrics(
    state: web::Data<AppState>,
    bind: SocketAddr,
) -> Result<(SocketAddr, Server), StartupError> {
    let listener = listen(bind).map_err(|e| ConfigError::new("--metrics-bind", e.reason))?;
    let address =
        listener.local_addr().map_err(|source| StartupError::Serve { address: bind, source })?;
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).route(
            "/metrics",
            web::get().to(|state: web::Data<AppState>| async move {
                routes::metrics::scrape(&state).await
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartupError::Serve { address, source })?
    .run();
    log::info!("metrics on http://{address}/metrics");
    Ok((address, server))
}

/// The HTTP server over `listener`: every route, the shared state, the access log.
fn serve(
    state: web::Data<AppState>,
    listener: TcpListener,
    address: SocketAddr,
) -> Result<Server, StartupError> {
    let workers = state.settings.http.worker_threads();
    let write_timeout = state.settings.websocket.write_timeout();
    let token_data = web::Data::from(Arc::clone(&state.tokens));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(logging::access_log))
            .app_data(state.clone())
            .app_data(token_data.clone())
            .configure(ws::configure)
            .configure(routes::configure)
            .configure(ws::configure_legacy_api)
            .default_service(web::to(routes::not_found))
    })
    .on_connect(move |connection, data| net::on_connect(connection, data, write_timeout))
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .map_err(|source| StartupError::Serve { address, source })?
    .run();
    Ok(server)
}

/// A listening socket with `SO_REUSEADDR`, so a restarted hub gets its port back while the
/// previous run's connections linger in TIME_WAIT.
fn listen(address: SocketAddr) -> Result<TcpListener, ConfigError> {
    let bind = || -> std::io::Result<TcpListener> {
        let domain = socket2::Domain::for_address(address);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&address.into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    };
    bind().map_err(|e| ConfigError::new("--bind", format!("cannot listen on {address}: {e}")))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
