//! Settings: every knob of the contract (PROTOCOL.md §1) as a clap flag with an environment
//! fallback, plus the sub-commands. Settings are parsed once in `main` (or by a test) and passed
//! by value; nothing reads the environment after that. Secrets are wrapped in [`Secret`] so a
//! `{:?}` of the settings never prints them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The command line: global settings plus an optional sub-command (`serve` when absent).
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Realtime hub for customer-contact teams")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage login accounts.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Print a signed token (for service integrations and scripts).
    Token(TokenArgs),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a login; the password comes from SWITCHBOARD_PASSWORD or standard input.
    Add(UserAddArgs),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum)]
    pub role: StaffRole,
    #[arg(long)]
    pub company: String,
}

/// The roles a login account can have (customers and services never log in with a password).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StaffRole {
    Agent,
    Admin,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub sub: String,
    #[arg(long, value_parser = parse_role)]
    pub role: crate::user::Role,
    #[arg(long)]
    pub company: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
}

fn parse_role(value: &str) -> Result<crate::user::Role, String> {
    value.parse()
}

/// Every setting of PROTOCOL.md §1, plus the documented limits the contract leaves open.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    /// `sqlite://` + a relative or absolute path.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://switchboard.db", global = true)]
    pub database_url: DatabaseUrl,

    /// HS256 secret; unset: generated once and kept in the database.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", global = true)]
    pub jwt_secret: Option<Secret>,

    /// PEM public key: RS256/ES256 tokens from an external identity provider.
    #[arg(long, env = "SWITCHBOARD_JWT_PUBLIC_KEY", global = true)]
    pub jwt_public_key: Option<PathBuf>,

    /// Required `iss` of external tokens (with --jwt-public-key).
    #[arg(long, env = "SWITCHBOARD_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of external tokens (with --jwt-public-key).
    #[arg(long, env = "SWITCHBOARD_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// The URL providers call; default `http://<bound address>`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL", value_parser = parse_public_url, global = true)]
    pub public_url: Option<String>,

    /// Comma-separated origins allowed to open a WebSocket; `*` allows any.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',', global = true)]
    pub allowed_origins: Vec<String>,

    /// Comma-separated proxy addresses whose X-Forwarded-For is believed.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<IpAddr>,

    /// Frames that may wait for one connection before it counts as a slow consumer.
    #[arg(long, env = "SWITCHBOARD_SESSION_QUEUE", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65536), global = true)]
    pub session_queue: u32,

    /// A queued browser call nobody accepts ends after this long (reason `no-answer`).
    #[arg(long, env = "SWITCHBOARD_QUEUE_TIMEOUT_MS", default_value_t = 60_000, global = true)]
    pub queue_timeout_ms: u64,

    /// A browser call whose party lost its last connection ends after this long.
    #[arg(long, env = "SWITCHBOARD_CALL_GRACE_MS", default_value_t = 15_000, global = true)]
    pub call_grace_ms: u64,

    /// Browser calls that may wait per company.
    #[arg(long, env = "SWITCHBOARD_MAX_QUEUED_CALLS", default_value_t = 100, global = true)]
    pub max_queued_calls: u32,

    /// Server WebSocket ping interval.
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(10..), global = true)]
    pub heartbeat_interval_ms: u64,

    /// A connection that sent nothing for this long is closed.
    #[arg(long, env = "SWITCHBOARD_CLIENT_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(20..), global = true)]
    pub client_timeout_ms: u64,

    /// Twilio auth token; unset: the Twilio webhook answers 503.
    #[arg(long, env = "SWITCHBOARD_TWILIO_AUTH_TOKEN", global = true)]
    pub twilio_auth_token: Option<Secret>,

    /// Vapi server secret; unset: the Vapi webhook answers 503.
    #[arg(long, env = "SWITCHBOARD_VAPI_SECRET", global = true)]
    pub vapi_secret: Option<Secret>,

    /// Company for guests and webhooks that name none.
    #[arg(long, env = "SWITCHBOARD_DEFAULT_COMPANY", default_value = "default", global = true)]
    pub default_company: String,

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

    // ---- limits the contract leaves open (documented in the README) ----
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

    /// Simultaneous connections (tabs, devices) one user may hold.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_USER", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections_per_user: u32,

    /// Login and guest-token requests per minute per client IP (and per email for login).
    #[arg(long, env = "SWITCHBOARD_AUTH_RATE_PER_MINUTE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub auth_rate_per_minute: u32,

    /// ICE servers for the pages' WebRTC calls, as the JSON array `RTCPeerConnection` takes
    /// (e.g. `[{"urls":"stun:stun.example.com:3478"}]`); empty on a LAN.
    #[arg(long, env = "SWITCHBOARD_ICE_SERVERS", default_value = "[]", value_parser = parse_ice_servers, global = true)]
    pub ice_servers: serde_json::Value,

    /// HTTP worker threads; 0 = one per core.
    #[arg(long, env = "SWITCHBOARD_WORKERS", default_value_t = 0, global = true)]
    pub workers: usize,
}

impl Settings {
    /// Parses settings from an argument list (flags, then environment, then defaults); tests use
    /// this to build a server exactly as the binary would.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map(|cli| cli.settings)
    }

    /// Checks the rules that involve more than one setting; the error names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_interval_ms >= self.client_timeout_ms {
            return Err(ConfigError::new(
                "--heartbeat-interval-ms",
                "must be smaller than --client-timeout-ms",
            ));
        }
        if self.jwt_public_key.is_some() {
            if self.jwt_issuer.is_none() {
                return Err(ConfigError::new("--jwt-issuer", "is required with --jwt-public-key"));
            }
            if self.jwt_audience.is_none() {
                return Err(ConfigError::new(
                    "--jwt-audience",
                    "is required with --jwt-public-key",
                ));
            }
        }
        if self.default_company.trim().is_empty() {
            return Err(ConfigError::new("--default-company", "must not be empty"));
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose().len() < 16
        {
            return Err(ConfigError::new("--jwt-secret", "must be at least 16 characters"));
        }
        Ok(())
    }

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

/// A setting that failed a check: `--name: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self { setting, reason: reason.into() }
    }
}

/// Where the SQLite database lives, parsed from `sqlite://PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub path: PathBuf,
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let path = value
            .strip_prefix("sqlite://")
            .ok_or_else(|| "expected sqlite://PATH (e.g. sqlite://switchboard.db)".to_owned())?;
        if path.is_empty() {
            return Err("the path after sqlite:// is empty".to_owned());
        }
        Ok(Self { path: PathBuf::from(path) })
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqlite://{}", self.path.display())
    }
}

fn parse_ice_servers(value: &str) -> Result<serde_json::Value, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(value).map_err(|e| format!("not JSON: {e}"))?;
    if !parsed.as_array().is_some_and(|servers| servers.iter().all(|s| s.get("urls").is_some())) {
        return Err("expected a JSON array of {\"urls\": …} objects".to_owned());
    }
    Ok(parsed)
}

fn parse_public_url(value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| "must start with http:// or https://".to_owned())?;
    if rest.is_empty() || rest.contains(['?', '#']) {
        return Err("must be a base URL such as https://hub.example.com".to_owned());
    }
    Ok(trimmed.to_owned())
}

/// A secret setting: usable, but never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let mut all = vec!["switchboard"];
        all.extend_from_slice(args);
        Settings::from_args(all).expect("settings parse")
    }

    #[test]
    fn database_url_accepts_relative_and_absolute_paths() {
        assert_eq!("sqlite://hub.db".parse::<DatabaseUrl>().unwrap().path, PathBuf::from("hub.db"));
        assert_eq!(
            "sqlite:///var/lib/sb/hub.db".parse::<DatabaseUrl>().unwrap().path,
            PathBuf::from("/var/lib/sb/hub.db")
        );
        assert!("postgres://x".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn public_url_is_a_base_url() {
        assert_eq!(
            parse_public_url("https://hub.example.com/").unwrap(),
            "https://hub.example.com"
        );
        assert!(parse_public_url("hub.example.com").is_err());
        assert!(parse_public_url("https://hub.example.com/?x=1").is_err());
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let s = settings(&["--jwt-secret", "a-very-secret-value-123"]);
        assert!(!format!("{s:?}").contains("a-very-secret-value-123"));
    }

    #[test]
    fn heartbeat_must_be_below_timeout() {
        let s = settings(&["--heartbeat-interval-ms", "500", "--client-timeout-ms", "400"]);
        let err = s.validate().unwrap_err();
        assert_eq!(err.setting, "--heartbeat-interval-ms");
    }

    #[test]
    fn public_key_requires_issuer_and_audience() {
        let s = settings(&["--jwt-public-key", "/tmp/k.pem", "--jwt-issuer", "idp"]);
        assert_eq!(s.validate().unwrap_err().setting, "--jwt-audience");
    }

    #[test]
    fn origin_policy_forms() {
        assert_eq!(settings(&[]).origin_policy(), OriginPolicy::SameOrigin);
        assert_eq!(settings(&["--allowed-origins", "*"]).origin_policy(), OriginPolicy::Any);
        assert_eq!(
            settings(&["--allowed-origins", "https://A.example/,https://b.example"])
                .origin_policy(),
            OriginPolicy::List(vec!["https://a.example".into(), "https://b.example".into()])
        );
    }
}
