//! Settings: every knob of the contract (`docs/protocol.md` §1) as a clap flag with an environment
//! fallback, plus the sub-commands. Settings are parsed once in `main` (or by a test) and passed
//! by value; nothing reads the environment after that. Secrets are wrapped in [`Secret`] so a
//! `{:?}` of the settings never prints them.

mod groups;
mod values;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use groups::{
    AuthSettings, BackendSettings, CallsSettings, ChatSettings, ClusterSettings, GoogleSettings,
    HttpSettings, OperationsSettings, OriginPolicy, StorageSettings, TelephonySettings,
    WebSocketSettings,
};
pub use values::{DatabaseUrl, LogFormat, MetricsBind, Secret, Synchronous};

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
    /// Copy the database to a new file while the hub runs (a consistent snapshot).
    Backup(BackupArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write; it must not exist yet.
    #[arg(long)]
    pub to: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a login; the password comes from SWITCHBOARD_PASSWORD or standard input.
    Add(UserAddArgs),
    /// Disable a login: its tokens stop working and its connections close (4001), on every
    /// running hub of this database.
    Disable(UserEmailArgs),
    /// Enable a disabled login again.
    Enable(UserEmailArgs),
}

#[derive(Debug, Args)]
pub struct UserEmailArgs {
    #[arg(long)]
    pub email: String,
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
    #[arg(long, value_parser = values::parse_role)]
    pub role: crate::user::Role,
    #[arg(long)]
    pub company: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
}

/// Every setting of `docs/protocol.md` §1, plus the documented limits the contract leaves open, in
/// one group per part of the hub.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub websocket: WebSocketSettings,
    #[command(flatten)]
    pub calls: CallsSettings,
    #[command(flatten)]
    pub chat: ChatSettings,
    #[command(flatten)]
    pub telephony: TelephonySettings,
    #[command(flatten)]
    pub google: GoogleSettings,
    #[command(flatten)]
    pub backend: BackendSettings,
    #[command(flatten)]
    pub operations: OperationsSettings,
    #[command(flatten)]
    pub cluster: ClusterSettings,
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
        let ws = &self.websocket;
        if ws.heartbeat_interval_ms >= ws.client_timeout_ms {
            return Err(ConfigError::new(
                "--heartbeat-interval-ms",
                "must be smaller than --client-timeout-ms",
            ));
        }
        let auth = &self.auth;
        if auth.jwt_public_key.is_some() && auth.jwt_jwks_url.is_some() {
            return Err(ConfigError::new(
                "--jwt-jwks-url",
                "cannot be combined with --jwt-public-key (one identity provider)",
            ));
        }
        let external = if auth.jwt_public_key.is_some() {
            Some("--jwt-public-key")
        } else if auth.jwt_jwks_url.is_some() {
            Some("--jwt-jwks-url")
        } else {
            None
        };
        if let Some(with) = external {
            if auth.jwt_issuer.is_none() {
                return Err(ConfigError::new("--jwt-issuer", format!("is required with {with}")));
            }
            if auth.jwt_audience.is_none() {
                return Err(ConfigError::new("--jwt-audience", format!("is required with {with}")));
            }
        }
        if let Some(secret) = &auth.jwt_secret
            && secret.expose().len() < 16
        {
            return Err(ConfigError::new("--jwt-secret", "must be at least 16 characters"));
        }
        self.backend.validate()?;
        self.cluster.validate(&self.storage)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let mut all = vec!["switchboard"];
        all.extend_from_slice(args);
        Settings::from_args(all).expect("settings parse")
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let s = settings(&["--jwt-secret", "a-very-secret-value-123"]);
        assert!(!format!("{s:?}").contains("a-very-secret-value-123"));
    }

    #[test]
    fn a_backend_url_is_http_and_comes_with_its_secret() {
        let rule = |args: &[&str]| settings(args).validate().map_err(|e| e.setting);
        assert_eq!(rule(&[]), Ok(()));
        assert_eq!(
            rule(&["--rpc-proxy-url", "http://127.0.0.1:9000/rpc"]),
            Err("--rpc-proxy-secret")
        );
        let with_secret = ["--rpc-proxy-secret", "s3cret"];
        for bad in ["ftp://backend/rpc", "backend/rpc", "http://", "not a url"] {
            let args = [&["--rpc-proxy-url", bad][..], &with_secret[..]].concat();
            assert_eq!(rule(&args), Err("--rpc-proxy-url"), "{bad}");
        }
        let good = [&["--rpc-proxy-url", "https://app.example.com/rpc?v=2"][..], &with_secret[..]]
            .concat();
        assert_eq!(rule(&good), Ok(()));
        assert_eq!(settings(&good).backend.rpc_timeout(), std::time::Duration::from_secs(5));
        assert!(!format!("{:?}", settings(&good)).contains("s3cret"));
    }

    #[test]
    fn groups_flatten_into_global_flags() {
        let s = settings(&["--default-company", "acme", "--call-grace-ms", "5"]);
        assert_eq!(s.telephony.default_company.as_str(), "acme");
        assert_eq!(s.calls.grace(), std::time::Duration::from_millis(5));
        let parsed = Cli::try_parse_from(["switchboard", "migrate", "--workers", "3"]).unwrap();
        assert_eq!(parsed.settings.http.workers, 3);
        assert!(Settings::from_args(["switchboard", "--default-company", ""]).is_err());
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
        assert_eq!(settings(&[]).http.origin_policy(), OriginPolicy::SameOrigin);
        assert_eq!(settings(&["--allowed-origins", "*"]).http.origin_policy(), OriginPolicy::Any);
        assert_eq!(
            settings(&["--allowed-origins", "https://A.example/,https://b.example"])
                .http
                .origin_policy(),
            OriginPolicy::List(vec!["https://a.example".into(), "https://b.example".into()])
        );
    }
}
