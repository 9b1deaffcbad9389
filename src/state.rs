//! What every request handler and WebSocket session shares, built once in startup.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{PasswordHasher, TokenService};
use crate::calendar::crypto::TokenCipher;
use crate::calendar::oauth::Google;
use crate::config::{OriginPolicy, Settings};
use crate::db::DbPool;
use crate::hubs::Hubs;
use crate::limits::KeyedLimiter;
use crate::net::ConnectionCaps;
use crate::rpc_proxy::RpcProxy;

/// Shared application state (behind `web::Data`).
pub struct AppState {
    pub settings: Settings,
    /// `--public-url`, or `http://<bound address>`; no trailing slash.
    pub public_url: String,
    pub pool: DbPool,
    pub hubs: Hubs,
    pub tokens: Arc<TokenService>,
    pub passwords: Arc<PasswordHasher>,
    pub limits: AuthLimits,
    pub session: Arc<SessionConfig>,
    /// The Google OAuth client, when configured.
    pub google: Option<Arc<Google>>,
    pub cipher: Arc<TokenCipher>,
}

/// Limits of the auth endpoints, per client address (IPv6: its /64).
pub struct AuthLimits {
    pub login_by_ip: KeyedLimiter,
    /// Per (email, address) pair, so a named user cannot be locked out from elsewhere.
    pub login_by_email_and_ip: KeyedLimiter,
    pub guest_by_ip: KeyedLimiter,
}

impl AuthLimits {
    pub fn new(per_minute: u32) -> Self {
        Self {
            login_by_ip: KeyedLimiter::per_minute(per_minute),
            login_by_email_and_ip: KeyedLimiter::per_minute(per_minute),
            guest_by_ip: KeyedLimiter::per_minute(per_minute),
        }
    }
}

/// What each WebSocket session needs to know, shared by all of them.
pub struct SessionConfig {
    pub hubs: Hubs,
    /// The app's backend for `rpc` frames, when `--rpc-proxy-url` is set.
    pub rpc: Option<Arc<RpcProxy>>,
    /// For the few frames that read before they ask a hub (a chat recipient's role).
    pub pool: DbPool,
    pub tokens: Arc<TokenService>,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    /// How long an unauthenticated connection may wait before its `auth` frame.
    pub auth_timeout: Duration,
    pub max_message_bytes: usize,
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    pub mailbox_capacity: usize,
    pub origin_policy: OriginPolicy,
    /// How long a closing or evicted connection may take before its socket is reset.
    pub write_timeout: Duration,
    /// Connections per client IP and per user.
    pub caps: Arc<ConnectionCaps>,
    /// Handshakes per client IP.
    pub handshakes: KeyedLimiter,
}

impl SessionConfig {
    pub fn new(
        settings: &Settings,
        hubs: Hubs,
        pool: DbPool,
        tokens: Arc<TokenService>,
        rpc: Option<Arc<RpcProxy>>,
        caps: Arc<ConnectionCaps>,
    ) -> Self {
        let ws = &settings.websocket;
        Self {
            hubs,
            pool,
            tokens,
            rpc,
            heartbeat_interval: ws.heartbeat_interval(),
            client_timeout: ws.client_timeout(),
            auth_timeout: ws.auth_timeout(),
            max_message_bytes: ws.max_message_bytes(),
            rate_limit_per_sec: ws.rate_limit_per_sec,
            rate_limit_burst: ws.rate_limit_burst,
            mailbox_capacity: ws.mailbox_capacity(),
            origin_policy: settings.http.origin_policy(),
            write_timeout: ws.write_timeout(),
            caps,
            handshakes: KeyedLimiter::new(
                f64::from(ws.handshake_rate_per_ip),
                f64::from(ws.handshake_rate_per_ip) * 10.0,
            ),
        }
    }
}
