//! Google OAuth 2.0 for a user's calendar: the consent URL (authorization code, offline
//! access, PKCE S256), the code exchange and the refresh, all against the configured endpoints
//! (tests point them at a fake on loopback). One HTTP client (hyper + rustls) serves these and
//! the Calendar API.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use google_calendar3::common::Body;
use google_calendar3::hyper::{self, StatusCode, body::Bytes};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{GoogleSettings, Secret};
use crate::outbound;

pub use crate::outbound::{Connector, HttpClient};

/// The scopes the hub asks for, the narrowest that serve the five functions: events read and
/// written (`calendar.events`), free/busy and the primary calendar's id and zone read
/// (`calendar.readonly`) — never the right to manage calendars or their sharing.
pub const SCOPE: &str = "https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar.readonly";
/// How long one HTTP exchange with Google may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from Google's OAuth endpoints.
const MAX_ANSWER: usize = 1 << 20;

/// Where Google is and who we are to it.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_url: String,
    pub token_url: String,
    /// The Calendar API base, ending with `/`.
    pub api_url: String,
    /// `<public-url>/api/v1/calendar/oauth/callback`.
    pub redirect_uri: String,
}

impl GoogleConfig {
    /// `None` unless both the client id and the client secret are configured.
    pub fn from_settings(settings: &GoogleSettings, public_url: &str) -> Option<Self> {
        let (client_id, client_secret) =
            (settings.google_client_id.clone()?, settings.google_client_secret.clone()?);
        let mut api_url = settings.google_api_url.clone();
        if !api_url.ends_with('/') {
            api_url.push('/');
        }
        Some(Self {
            client_id,
            client_secret,
            auth_url: settings.google_auth_url.clone(),
            token_url: settings.google_token_url.clone(),
            api_url,
            redirect_uri: format!("{public_url}/api/v1/calendar/oauth/callback"),
        })
    }

    /// The consent page a user is sent to.
    pub fn authorization_url(&self, state: &str, code_challenge: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let separator = if self.auth_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}{query}", self.auth_url)
    }
}

/// A configured Google OAuth client, with the HTTP client that talks to Google. It exists only
/// when `--google-client-id` and `--google-client-secret` are set, so a hub without Google does
/// not load TLS roots at start.
pub struct Google {
    pub config: Arc<GoogleConfig>,
    pub http: HttpClient,
}

impl Google {
    pub fn from_settings(
        settings: &GoogleSettings,
        public_url: &str,
        http: &dyn Fn() -> HttpClient,
    ) -> Option<Self> {
        let config = GoogleConfig::from_settings(settings, public_url)?;
        Some(Self { config: Arc::new(config), http: http() })
    }
}

/// 32 random bytes, base64url: OAuth `state` values and PKCE verifiers.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no OS random source: {e}"));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of a verifier.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What the token endpoint answers.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Why no token came back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Google said no (`invalid_grant`: revoked, expired, or a bad code): reconnect.
    #[error("Google refused the grant: {0}")]
    Refused(String),
    /// The endpoint could not be reached or answered 5xx.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
}

/// `grant_type=authorization_code` with the PKCE verifier.
pub async fn exchange_code(
    client: &HttpClient,
    config: &GoogleConfig,
    code: &str,
    verifier: &str,
) -> Result<TokenResponse, TokenError> {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("client_id", &config.client_id)
        .append_pair("client_secret", config.client_secret.expose())
        .append_pair("redirect_uri", &config.redirect_uri)
        .append_pair("code_verifier", verifier)
        .finish();
    token_request(client, &config.token_url, body).await
}

/// `grant_type=refresh_token`.
pub async fn refresh(
    client: &HttpClient,
    config: &GoogleConfig,
    refresh_token: &str,
) -> Result<TokenResponse, TokenError> {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", &config.client_id)
        .append_pair("client_secret", config.client_secret.expose())
        .append_pair("refresh_token", refresh_token)
        .finish();
    token_request(client, &config.token_url, body).await
}

/// Revokes a grant at Google (best effort: the outcome is only logged). Google's revocation
/// endpoint sits beside its token endpoint (`…/token` → `…/revoke`).
pub async fn revoke(client: &HttpClient, config: &GoogleConfig, refresh_token: &str) {
    let url = match config.token_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/revoke"),
        None => return,
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", refresh_token)
        .finish();
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(outbound::body(body));
    let outcome = match request {
        Ok(request) => send(client, request).await.map(|(status, _)| status.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(status) => log::info!("calendar grant revoked at Google ({status})"),
        Err(e) => log::warn!("revoking a calendar grant at Google failed: {e}"),
    }
}

async fn token_request(
    client: &HttpClient,
    url: &str,
    body: String,
) -> Result<TokenResponse, TokenError> {
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(outbound::body(body))
        .map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let (status, bytes) = send(client, request).await.map_err(TokenError::Unavailable)?;
    if status.is_server_error() {
        return Err(TokenError::Unavailable(format!("token endpoint answered {status}")));
    }
    if !status.is_success() {
        // Google's error body names the reason (`invalid_grant`); no secrets in it.
        let reason = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        return Err(TokenError::Refused(reason));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| TokenError::Unavailable(format!("unreadable token response: {e}")))
}

async fn send(
    client: &HttpClient,
    request: hyper::Request<Body>,
) -> Result<(StatusCode, Bytes), String> {
    outbound::send(client, request, HTTP_TIMEOUT, MAX_ANSWER).await
}

/// The primary calendar's id (the account's address) and time zone, best effort.
pub async fn primary_calendar(
    client: &HttpClient,
    config: &GoogleConfig,
    access_token: &str,
) -> (Option<String>, Option<String>) {
    let request = hyper::Request::get(format!("{}calendars/primary", config.api_url))
        .header(hyper::header::AUTHORIZATION, format!("Bearer {access_token}"))
        .body(outbound::body(Bytes::new()));
    let Ok(request) = request else { return (None, None) };
    match send(client, request).await {
        Ok((status, bytes)) if status.is_success() => {
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            (text("id"), text("timeZone"))
        }
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn authorization_url_has_everything_google_needs() {
        let config = GoogleConfig {
            client_id: "cid".into(),
            client_secret: Secret::new("sec"),
            auth_url: "https://accounts.example/auth".into(),
            token_url: String::new(),
            api_url: String::new(),
            redirect_uri: "https://hub.example/api/v1/calendar/oauth/callback".into(),
        };
        let url = config.authorization_url("st", "ch");
        for part in [
            "response_type=code",
            "client_id=cid",
            "redirect_uri=https%3A%2F%2Fhub.example%2Fapi%2Fv1%2Fcalendar%2Foauth%2Fcallback",
            "access_type=offline",
            "prompt=consent",
            "state=st",
            "code_challenge=ch",
            "code_challenge_method=S256",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        assert!(!url.contains("sec"), "the client secret never travels in a URL");
    }
}
