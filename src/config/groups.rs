//! The settings, one clap group per part of the hub (`docs/protocol.md` §1).
//! Each group is flattened into [`Settings`](super::Settings), so every flag stays a global
//! `--flag` with its environment fallback, and each offers what its part of the hub needs in
//! the types it needs (durations, sizes, policies).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use google_calendar3::hyper::Uri;

use super::ConfigError;
use super::values::{
    DatabaseUrl, LogFormat, MetricsBind, Secret, Synchronous, parse_company, parse_ice_servers,
    parse_metrics_bind, parse_public_url,
};
use crate::ids::CompanyId;

/// Where the hub listens and who may talk to it over HTTP.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    /// The URL providers call; default `http://<bound address>`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL", value_parser = parse_public_url, global = true)]
    pub public_url: Option<String>,

    /// Comma-separated origins allowed to open a WebSocket; `*` allows any.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',', global = true)]
    pub allowed_origins: Vec<String>,

    /// Comma-separated proxy addresses whose X-Forwarded-For is believed.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<IpAddr>,

    /// HTTP worker threads; 0 = one per core.
    #[arg(long, env = "SWITCHBOARD_WORKERS", default_value_t = 0, global = true)]
    pub workers: usize,
}

impl HttpSettings {
    /// Which browser origins may open a WebSocket.
    pub fn origin_policy(&self) -> OriginPolicy {
        if self.allowed_origins.iter().any(|o| o.trim() == "*") {
            OriginPolicy::Any
        } else if self.allowed_origins.iter().all(|o| o.trim().is_empty()) {
            OriginPolicy::SameOrigin
        } else {
            OriginPolicy::List(
                self.allowed_origins
                    .iter()
                    .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect(),
            )
        }
    }

    /// HTTP worker threads: `--workers`, or one per core.
    pub fn worker_threads(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            self.workers
        }
    }
}

/// Which `Origin` a browser WebSocket handshake may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Only the server's own origin (`--public-url`, or the request's scheme + Host).
    SameOrigin,
    /// `*`: any origin.
    Any,
    /// Exactly these origins (lower-cased, no trailing slash).
    List(Vec<String>),
}

/// Where durable state lives.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Storage")]
pub struct StorageSettings {
    /// `sqlite://` + a relative or absolute path.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://switchboard.db", global = true)]
    pub database_url: DatabaseUrl,

    /// `full`: an acknowledged webhook survives power loss; `normal` trades that for speed.
    #[arg(
        long,
        env = "SWITCHBOARD_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full",
        global = true
    )]
    pub sqlite_synchronous: Synchronous,
}

/// Tokens: who signs them, who else may, and how often one may ask for one.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Identity")]
pub struct AuthSettings {
    /// HS256 secret; unset: generated once and kept in the database.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", global = true)]
    pub jwt_secret: Option<Secret>,

    /// PEM public key: RS256/ES256 tokens from an external identity provider.
    #[arg(long, env = "SWITCHBOARD_JWT_PUBLIC_KEY", global = true)]
    pub jwt_public_key: Option<PathBuf>,

    /// Required `iss` of external tokens (with --jwt-public-key).
    #[arg(long, env = "SWITCHBOARD_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of external tokens (with --jwt-public-key or --jwt-jwks-url).
    #[arg(long, env = "SWITCHBOARD_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// An identity provider's JWKS URL: its RS256/ES256 tokens are accepted, keys rotate freely.
    #[arg(long, env = "SWITCHBOARD_JWT_JWKS_URL", global = true)]
    pub jwt_jwks_url: Option<String>,

    /// Where an external token carries the role (a dotted path reaches into objects).
    #[arg(long, env = "SWITCHBOARD_JWT_ROLE_CLAIM", default_value = "role", global = true)]
    pub jwt_role_claim: String,

    /// Where an external token carries the company (a dotted path reaches into objects).
    #[arg(long, env = "SWITCHBOARD_JWT_COMPANY_CLAIM", default_value = "company", global = true)]
    pub jwt_company_claim: String,

    /// No refresh extends a sign-in beyond this many seconds.
    #[arg(long, env = "SWITCHBOARD_SESSION_MAX_AGE_SECS", default_value_t = 604_800,
          value_parser = clap::value_parser!(u64).range(60..), global = true)]
    pub session_max_age_secs: u64,

    /// Login and guest-token requests per minute per client IP (and per email for login).
    #[arg(long, env = "SWITCHBOARD_AUTH_RATE_PER_MINUTE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub auth_rate_per_minute: u32,
}

/// The WebSocket: liveness, limits and back-pressure of each connection.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "WebSocket")]
pub struct WebSocketSettings {
    /// Frames that may wait for one connection before it counts as a slow consumer.
    #[arg(long, env = "SWITCHBOARD_SESSION_QUEUE", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65536), global = true)]
    pub session_queue: u32,

    /// Server WebSocket ping interval.
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(10..), global = true)]
    pub heartbeat_interval_ms: u64,

    /// A connection that sent nothing for this long is closed.
    #[arg(long, env = "SWITCHBOARD_CLIENT_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(20..), global = true)]
    pub client_timeout_ms: u64,

    /// How long a connection without a handshake token may wait before its `auth` frame.
    #[arg(long, env = "SWITCHBOARD_AUTH_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(10..), global = true)]
    pub auth_timeout_ms: u64,

    /// Largest inbound WebSocket message in bytes (continuation frames counted together).
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGE_BYTES", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1024..), global = true)]
    pub max_message_bytes: u32,

    /// Sustained inbound frames per second per connection.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PER_SEC", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub rate_limit_per_sec: u32,

    /// Inbound frame burst per connection.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_BURST", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub rate_limit_burst: u32,

    /// Rooms one connection may be in (the automatic `agents` room included).
    #[arg(long, env = "SWITCHBOARD_MAX_ROOMS_PER_CONNECTION", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_rooms_per_connection: u32,

    /// A connection with frames waiting that takes none for this long is torn down.
    #[arg(long, env = "SWITCHBOARD_WRITE_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..), global = true)]
    pub write_timeout_ms: u64,

    /// Simultaneous WebSocket connections from one client IP (IPv6: one /64).
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections_per_ip: u32,

    /// WebSocket handshakes per second from one client IP (bursts of ten times as many).
    #[arg(long, env = "SWITCHBOARD_HANDSHAKE_RATE_PER_IP", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub handshake_rate_per_ip: u32,

    /// Above this many members, a room's joins and leaves are batched (one
    /// `room_members_changed` a second).
    #[arg(long, env = "SWITCHBOARD_ROOM_MEMBER_EVENTS_MAX", default_value_t = 100, global = true)]
    pub room_member_events_max: u32,

    /// Simultaneous connections (tabs, devices) one user may hold.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_USER", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections_per_user: u32,
}

impl WebSocketSettings {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms)
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes as usize
    }

    /// The mailbox size of each session.
    pub fn mailbox_capacity(&self) -> usize {
        self.session_queue as usize
    }
}

/// Browser calls from the landing page.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Calls")]
pub struct CallsSettings {
    /// A queued browser call nobody accepts ends after this long (reason `no-answer`).
    #[arg(long, env = "SWITCHBOARD_QUEUE_TIMEOUT_MS", default_value_t = 60_000, global = true)]
    pub queue_timeout_ms: u64,

    /// A browser call whose party lost its last connection ends after this long.
    #[arg(long, env = "SWITCHBOARD_CALL_GRACE_MS", default_value_t = 15_000, global = true)]
    pub call_grace_ms: u64,

    /// Browser calls that may wait per company.
    #[arg(long, env = "SWITCHBOARD_MAX_QUEUED_CALLS", default_value_t = 100, global = true)]
    pub max_queued_calls: u32,

    /// ICE servers for the pages' WebRTC calls, as the JSON array `RTCPeerConnection` takes
    /// (e.g. `[{"urls":"stun:stun.example.com:3478"}]`); empty on a LAN.
    #[arg(long, env = "SWITCHBOARD_ICE_SERVERS", default_value = "[]", value_parser = parse_ice_servers, global = true)]
    pub ice_servers: serde_json::Value,
}

impl CallsSettings {
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.call_grace_ms)
    }

    pub fn max_queued_per_company(&self) -> usize {
        self.max_queued_calls as usize
    }
}

/// Chat.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Chat")]
pub struct ChatSettings {
    /// Delete chat messages older than this many days (checked daily); 0 keeps them forever.
    #[arg(long, env = "SWITCHBOARD_MESSAGE_RETENTION_DAYS", default_value_t = 0, global = true)]
    pub message_retention_days: u32,
}

impl ChatSettings {
    /// How long messages are kept, when not forever.
    pub fn retention(&self) -> Option<Duration> {
        (self.message_retention_days > 0)
            .then(|| Duration::from_secs(u64::from(self.message_retention_days) * 24 * 3600))
    }
}

/// Telephony providers' webhooks.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Telephony")]
pub struct TelephonySettings {
    /// Twilio auth token; unset: the Twilio webhook answers 503.
    #[arg(long, env = "SWITCHBOARD_TWILIO_AUTH_TOKEN", global = true)]
    pub twilio_auth_token: Option<Secret>,

    /// Vapi server secret; unset: the Vapi webhook answers 503.
    #[arg(long, env = "SWITCHBOARD_VAPI_SECRET", global = true)]
    pub vapi_secret: Option<Secret>,

    /// Company for guests and webhooks that name none.
    #[arg(long, env = "SWITCHBOARD_DEFAULT_COMPANY", default_value = "default",
          value_parser = parse_company, global = true)]
    pub default_company: CompanyId,
}

/// The calendar tool's Google OAuth client, and the key its tokens are stored under.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Google Calendar")]
pub struct GoogleSettings {
    /// Google OAuth client id.
    #[arg(long, env = "SWITCHBOARD_GOOGLE_CLIENT_ID", global = true)]
    pub google_client_id: Option<String>,

    /// Google OAuth client secret.
    #[arg(long, env = "SWITCHBOARD_GOOGLE_CLIENT_SECRET", global = true)]
    pub google_client_secret: Option<Secret>,

    /// Google OAuth consent endpoint.
    #[arg(
        long,
        env = "SWITCHBOARD_GOOGLE_AUTH_URL",
        default_value = "https://accounts.google.com/o/oauth2/v2/auth",
        global = true
    )]
    pub google_auth_url: String,

    /// Google OAuth token endpoint.
    #[arg(
        long,
        env = "SWITCHBOARD_GOOGLE_TOKEN_URL",
        default_value = "https://oauth2.googleapis.com/token",
        global = true
    )]
    pub google_token_url: String,

    /// Google Calendar API base.
    #[arg(
        long,
        env = "SWITCHBOARD_GOOGLE_API_URL",
        default_value = "https://www.googleapis.com/calendar/v3/",
        global = true
    )]
    pub google_api_url: String,

    /// Key for stored OAuth tokens; unset: generated once into a 0600 file beside the database.
    #[arg(long, env = "SWITCHBOARD_ENCRYPTION_KEY", global = true)]
    pub encryption_key: Option<Secret>,
}

/// The app's backend, which answers `rpc` frames (`docs/protocol.md` §11).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Backend (RPC proxy)")]
pub struct BackendSettings {
    /// Where `rpc` frames are POSTed, signed; unset: `rpc` answers `not_configured`.
    #[arg(long, env = "SWITCHBOARD_RPC_PROXY_URL", global = true)]
    pub rpc_proxy_url: Option<String>,

    /// Key of the HMAC-SHA256 signature on every proxied call; required with --rpc-proxy-url.
    #[arg(long, env = "SWITCHBOARD_RPC_PROXY_SECRET", global = true)]
    pub rpc_proxy_secret: Option<Secret>,

    /// How long the backend may take to answer an `rpc`.
    #[arg(long, env = "SWITCHBOARD_RPC_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub rpc_timeout_ms: u64,
}

impl BackendSettings {
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// A backend URL is an absolute http(s) URL and comes with its secret: the hub never sends
    /// a caller's identity unsigned.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.rpc_proxy_url else { return Ok(()) };
        let parsed = url.parse::<Uri>().ok();
        let scheme = parsed.as_ref().and_then(Uri::scheme_str);
        if !matches!(scheme, Some("http" | "https"))
            || parsed.and_then(|u| u.host().map(str::len)).unwrap_or(0) == 0
        {
            return Err(ConfigError::new("--rpc-proxy-url", "must be an http:// or https:// URL"));
        }
        if self.rpc_proxy_secret.is_none() {
            return Err(ConfigError::new("--rpc-proxy-secret", "is required with --rpc-proxy-url"));
        }
        Ok(())
    }
}

/// What operators watch: metrics and logs (`docs/protocol.md` §10).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Operations")]
pub struct OperationsSettings {
    /// Where `/metrics` is served: unset = the main listener, to loopback peers only; an
    /// address = a listener of its own (any peer); `off` = nowhere.
    #[arg(long, env = "SWITCHBOARD_METRICS_BIND", value_parser = parse_metrics_bind, global = true)]
    pub metrics_bind: Option<MetricsBind>,

    /// Log lines as text, or one JSON object per line.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// More than one node (`docs/protocol.md` §9): the Redis every node of a cluster shares.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterSettings {
    /// Redis of the cluster (`redis://host:6379/0`); unset: one node, nothing of the cluster
    /// is loaded. Needs a PostgreSQL database.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", global = true)]
    pub redis_url: Option<Secret>,

    /// The prefix of every Redis key and channel: the nodes with the same name are one hub.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_NAME", default_value = "switchboard",
          value_parser = parse_cluster_name, global = true)]
    pub cluster_name: String,

    /// This node's name in the cluster; unset: a random one per start.
    #[arg(long, env = "SWITCHBOARD_NODE_ID", value_parser = parse_cluster_name, global = true)]
    pub node_id: Option<String>,
}

impl ClusterSettings {
    /// A cluster shares its database: a SQLite file cannot be.
    pub(super) fn validate(&self, storage: &StorageSettings) -> Result<(), ConfigError> {
        let Some(url) = &self.redis_url else { return Ok(()) };
        if !(url.expose().starts_with("redis://") || url.expose().starts_with("rediss://")) {
            return Err(ConfigError::new("--redis-url", "must be a redis:// URL"));
        }
        if matches!(storage.database_url, DatabaseUrl::Sqlite { .. }) {
            return Err(ConfigError::new(
                "--redis-url",
                "needs a postgres:// --database-url (a SQLite file cannot be shared by nodes)",
            ));
        }
        Ok(())
    }
}

/// Cluster and node names go into Redis keys: 1–64 of `[A-Za-z0-9_.-]`.
fn parse_cluster_name(value: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok { Ok(value.to_owned()) } else { Err("1-64 of A-Z a-z 0-9 _ . -".to_owned()) }
}
