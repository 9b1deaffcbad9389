//! The value types of settings and their parsers: a [`Secret`] that never prints, a
//! [`DatabaseUrl`], and the checks clap runs on single values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::ids::CompanyId;
use crate::user::Role;

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

/// `--metrics-bind`: `/metrics` on a listener of its own, or nowhere (unset: on the main
/// listener, to loopback peers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsBind {
    Off,
    Listen(std::net::SocketAddr),
}

pub(super) fn parse_metrics_bind(value: &str) -> Result<MetricsBind, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(MetricsBind::Off);
    }
    value
        .parse()
        .map(MetricsBind::Listen)
        .map_err(|_| "must be an address (127.0.0.1:9100) or off".to_owned())
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message key=value…`
    Text,
    /// One JSON object per line: timestamp, level, target, message, and the fields logged.
    Json,
}

/// How hard SQLite syncs a commit to disk (`--sqlite-synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    /// An acknowledged write (a webhook answered 2xx) survives power loss.
    Full,
    /// Faster commits; the last ones may be lost on power loss (never on a crash).
    Normal,
}

/// Where the SQLite database lives, parsed from `sqlite://PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: the embedded default.
    Sqlite { path: PathBuf },
    /// `postgres://…` (or `postgresql://…`): the URL as libpq takes it, password included, so
    /// it is never printed whole.
    Postgres { url: Secret },
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(Self::Postgres { url: Secret::new(value) });
        }
        let path = value.strip_prefix("sqlite://").ok_or_else(|| {
            "expected sqlite://PATH or postgres://USER@HOST/DB (e.g. sqlite://switchboard.db)"
                .to_owned()
        })?;
        if path.is_empty() {
            return Err("the path after sqlite:// is empty".to_owned());
        }
        Ok(Self::Sqlite { path: PathBuf::from(path) })
    }
}

impl fmt::Display for DatabaseUrl {
    /// The URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            Self::Postgres { url } => {
                let url = url.expose();
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let rest = match rest.split_once('@') {
                    Some((user, host)) => {
                        format!("{}@{host}", user.split_once(':').map_or(user, |(u, _)| u))
                    }
                    None => rest.to_owned(),
                };
                write!(f, "{scheme}://{rest}")
            }
        }
    }
}

pub(super) fn parse_role(value: &str) -> Result<Role, String> {
    value.parse()
}

pub(super) fn parse_company(value: &str) -> Result<CompanyId, String> {
    CompanyId::parse(value.trim()).ok_or_else(|| "must be 1-128 printable characters".to_owned())
}

pub(super) fn parse_ice_servers(value: &str) -> Result<serde_json::Value, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(value).map_err(|e| format!("not JSON: {e}"))?;
    if !parsed.as_array().is_some_and(|servers| servers.iter().all(|s| s.get("urls").is_some())) {
        return Err("expected a JSON array of {\"urls\": …} objects".to_owned());
    }
    Ok(parsed)
}

pub(super) fn parse_public_url(value: &str) -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_accepts_relative_and_absolute_paths() {
        let path = |url: &str| match url.parse::<DatabaseUrl>().unwrap() {
            DatabaseUrl::Sqlite { path } => path,
            other => panic!("{other:?}"),
        };
        assert_eq!(path("sqlite://hub.db"), PathBuf::from("hub.db"));
        assert_eq!(path("sqlite:///var/lib/sb/hub.db"), PathBuf::from("/var/lib/sb/hub.db"));
        let pg: DatabaseUrl = "postgres://sb:hunter2@db.local:5432/hub".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://sb@db.local:5432/hub", "no password printed");
        assert!(!format!("{pg:?}").contains("hunter2"));
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
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
    fn companies_are_ids() {
        assert_eq!(parse_company(" acme ").unwrap().as_str(), "acme");
        assert!(parse_company("").is_err());
        assert!(parse_company("a\u{1}b").is_err());
    }
}
