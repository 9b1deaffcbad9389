//! Building and running the server: open and migrate the database, resolve the signing
//! secret, bind (port 0 allowed), start the hubs once, then serve until stopped. Tests build
//! exactly this with their own settings, one application per test.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{App, HttpServer, web};
use base64::Engine;

use crate::auth::{ExternalIssuer, PasswordHasher, TokenService};
use crate::calendar::CalendarTool;
use crate::calendar::crypto::TokenCipher;
use crate::calendar::oauth::Google;
use crate::config::{ConfigError, Settings};
use crate::db::{self, DbError, DbPool};
use crate::hubs::calls::CallSettings;
use crate::hubs::presence::CloseAll;
use crate::hubs::{HubLimits, Hubs};
use crate::state::{AppState, AuthLimits, SessionConfig};
use crate::{routes, ws};

/// Why the hub could not start; the message names the setting at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--database-url: {0}")]
    Database(#[from] DbError),
    #[error("{0}")]
    Other(String),
}

/// A built, bound, not yet running server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    hubs: Hubs,
}

/// Opens the database and applies pending migrations (shared by `serve` and the sub-commands).
pub fn open_database(settings: &Settings) -> Result<DbPool, StartupError> {
    let pool = db::connect(&settings.database_url)?;
    for version in db::migrate(&pool)? {
        log::info!("applied migration {version}");
    }
    Ok(pool)
}

/// The token service: `--jwt-secret`, or the secret generated once and kept in the database;
/// plus the external identity provider's key when `--jwt-public-key` is set.
pub fn token_service(settings: &Settings, pool: &DbPool) -> Result<TokenService, StartupError> {
    let secret = match &settings.jwt_secret {
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
    let external = match (&settings.jwt_public_key, &settings.jwt_issuer, &settings.jwt_audience) {
        (Some(path), Some(issuer), Some(audience)) => {
            Some(ExternalIssuer::load(path, issuer.clone(), audience.clone())?)
        }
        _ => None,
    };
    Ok(TokenService::new(secret.as_bytes(), external))
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
        let pool = open_database(&settings)?;
        let tokens = Arc::new(token_service(&settings, &pool)?);
        let passwords =
            Arc::new(PasswordHasher::new().map_err(|e| StartupError::Other(e.to_string()))?);
        let listener = listen(settings.bind).map_err(|e| {
            ConfigError::new("--bind", format!("cannot listen on {}: {e}", settings.bind))
        })?;
        let address = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?;
        let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{address}"));

        let limits = HubLimits {
            max_connections_per_user: settings.max_connections_per_user as usize,
            max_rooms_per_connection: settings.max_rooms_per_connection as usize,
            calls: CallSettings {
                queue_timeout: Duration::from_millis(settings.queue_timeout_ms),
                grace: Duration::from_millis(settings.call_grace_ms),
                max_queued_per_company: settings.max_queued_calls as usize,
            },
        };
        let cipher = Arc::new(TokenCipher::from_settings(
            settings.encryption_key.as_ref(),
            &settings.database_url,
        )?);
        let google = Google::from_settings(&settings, &public_url).map(Arc::new);
        let calendar = CalendarTool::new(pool.clone(), Arc::clone(&cipher), google.clone());
        let hubs = Hubs::start(limits, pool.clone(), calendar);
        let session = Arc::new(SessionConfig {
            hubs: hubs.clone(),
            tokens: Arc::clone(&tokens),
            heartbeat_interval: Duration::from_millis(settings.heartbeat_interval_ms),
            client_timeout: Duration::from_millis(settings.client_timeout_ms),
            auth_timeout: Duration::from_millis(settings.auth_timeout_ms),
            max_message_bytes: settings.max_message_bytes as usize,
            rate_limit_per_sec: settings.rate_limit_per_sec,
            rate_limit_burst: settings.rate_limit_burst,
            mailbox_capacity: settings.session_queue as usize,
            origin_policy: settings.origin_policy(),
        });
        let workers = if settings.workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            settings.workers
        };
        let state = web::Data::new(AppState {
            limits: AuthLimits::new(settings.auth_rate_per_minute),
            settings,
            public_url,
            pool,
            hubs: hubs.clone(),
            tokens: Arc::clone(&tokens),
            passwords,
            session,
            google,
            cipher,
        });
        let token_data = web::Data::from(tokens);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(access_log())
                .app_data(state.clone())
                .app_data(token_data.clone())
                .configure(routes::configure)
                .configure(ws::configure)
                .default_service(web::to(routes::not_found))
        })
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)
        .map_err(|e| StartupError::Other(format!("cannot serve on {address}: {e}")))?
        .run();
        log::info!("listening on http://{address}");
        Ok(Self { address, server, hubs })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Serves until SIGINT/SIGTERM, then closes every WebSocket with 1001 and stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let presence = self.hubs.presence.clone();
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            log::info!("shutting down");
            if let Ok(asked) = presence.send(CloseAll).await {
                log::info!("asked {asked} connections to close (1001)");
            }
            // Give the sessions a moment to write their close frames.
            actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            handle.stop(true).await;
        });
        self.server.await
    }
}

/// A listening socket with `SO_REUSEADDR`, so a restarted hub gets its port back while the
/// previous run's connections linger in TIME_WAIT.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(address), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
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

/// Access log with the path only: tokens may travel in query strings, which are never logged.
fn access_log() -> Logger {
    Logger::new(r#"%a "%{method}xi %U" %s %b %Dms"#)
        .custom_request_replace("method", |req| req.method().to_string())
}
