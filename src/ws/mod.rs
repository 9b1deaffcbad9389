//! The WebSocket endpoint: `GET /ws`, plus the legacy per-user paths `/ws/{user_id}` and
//! `/api/v1/ws/{user_id}`. The handshake checks the `Origin`, then a token from `?token=` or
//! `Authorization: Bearer` (without one, the session waits for an `auth` frame), then that a
//! legacy path names the token's own user; only then is the socket upgraded. This module and
//! `session.rs` are the only code that knows actix-web-actors.

mod frames;
mod guard;
mod session;

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::{Identity, bearer_token};
use crate::config::OriginPolicy;
use crate::error::{AppError, ErrorCode};
use crate::limits::client_ip;
use crate::net::{AcceptedSocket, CapGuard, SocketHandle, ip_key};
use crate::state::{AppState, SessionConfig};

use guard::InputGuard;
pub use session::{Transport, WsSession};

/// Registers `/ws` and `/ws/{user_id}`, ahead of the REST routes: the router tries routes in
/// order, and a handshake is the request a connection storm is made of.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(connect)).route("/ws/{user_id}", web::get().to(connect_legacy));
}

/// The legacy `/api/v1/ws/{user_id}`, registered after the fixed `/api/v1/ws/status` and
/// `/api/v1/ws/clients` routes, which its pattern would otherwise take.
pub fn configure_legacy_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/ws/{user_id}", web::get().to(connect_legacy));
}

async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    upgrade(req, stream, &state, None).await
}

async fn connect_legacy(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    upgrade(req, stream, &state, Some(user_id.into_inner())).await
}

/// The identity of a token given with the handshake (`?token=`, else a Bearer header); none
/// given: the session waits for an `auth` frame. A bad token is 401 before the upgrade.
async fn handshake_identity(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Identity>, AppError> {
    let Some(token) = handshake_token(req) else { return Ok(None) };
    let identity = state.tokens.verify_fresh(&token).await.map_err(|e| {
        log::debug!("ws handshake: {e}");
        AppError::invalid_token()
    })?;
    Ok(Some(identity))
}

/// The handshake; a refused one is counted by its error code (`handshakes_refused`).
async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    state: &AppState,
    required_user: Option<String>,
) -> Result<HttpResponse, AppError> {
    let result = checked_upgrade(req, stream, state, required_user).await;
    if let Err(e) = &result {
        state.hubs.metrics.handshake_refused(e.code.as_str());
    }
    result
}

/// The checks in order of cost — origin, the address's handshake rate and connection count,
/// the token, the legacy path's user — then the upgrade.
async fn checked_upgrade(
    req: HttpRequest,
    stream: web::Payload,
    state: &AppState,
    required_user: Option<String>,
) -> Result<HttpResponse, AppError> {
    let config = &state.session;
    if !origin_allowed(&req, &config.origin_policy, &state.public_url) {
        return Err(AppError::new(ErrorCode::OriginNotAllowed, "this origin may not connect"));
    }
    let client_ip = client_ip(&req, &state.settings.http.trusted_proxies);
    let ip_slot = match client_ip {
        Some(ip) => Some(admit_ip(config, ip)?),
        None => None,
    };
    let identity = handshake_identity(&req, state).await?;
    if let (Some(identity), Some(path_user)) = (&identity, &required_user)
        && identity.user.id.as_str() != path_user
    {
        return Err(AppError::new(ErrorCode::UserMismatch, "the path names another user"));
    }
    let (stream, tripped) = InputGuard::new(stream, config.max_message_bytes);
    let (socket, life) = SocketHandle::new(req.conn_data::<AcceptedSocket>(), config.write_timeout);
    let transport = Transport { socket, life, ip_slot, tripped, client_ip };
    let session = WsSession::new(config.clone(), identity, required_user, transport);
    session
        .upgrade(&req, stream, config.max_message_bytes)
        .await
        .map_err(|e| AppError::invalid_message(format!("not a WebSocket handshake: {e}")))
}

/// Counts a handshake and a connection against the client's IP (IPv6: its /64); 429 beyond
/// `--handshake-rate-per-ip` or `--max-connections-per-ip`.
fn admit_ip(config: &SessionConfig, ip: IpAddr) -> Result<CapGuard, AppError> {
    if !config.handshakes.check(&ip_key(ip)) {
        return Err(AppError::new(ErrorCode::RateLimited, "too many handshakes, slow down"));
    }
    config.caps.admit_ip(ip).ok_or_else(|| {
        AppError::new(ErrorCode::RateLimited, "too many connections from this address")
    })
}

/// `?token=` first (the last one, when repeated), then `Authorization: Bearer`.
fn handshake_token(req: &HttpRequest) -> Option<String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name == "token")
        .last()
        .map(|(_, token)| token.into_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| bearer_token(req).map(str::to_owned))
}

/// A handshake without `Origin` (not a browser) is always allowed; otherwise the policy decides.
fn origin_allowed(req: &HttpRequest, policy: &OriginPolicy, public_url: &str) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    match policy {
        OriginPolicy::Any => true,
        OriginPolicy::List(allowed) => allowed.contains(&origin),
        OriginPolicy::SameOrigin => {
            let info = req.connection_info();
            let own = format!("{}://{}", info.scheme(), info.host()).to_ascii_lowercase();
            origin == own || origin == origin_of(public_url)
        }
    }
}

/// `scheme://host[:port]` of a URL, lower-cased.
fn origin_of(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let after_scheme = lower.find("://").map_or(0, |i| i + 3);
    let end = lower[after_scheme..].find('/').map_or(lower.len(), |i| after_scheme + i);
    lower[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn origin_of_strips_the_path() {
        assert_eq!(origin_of("https://Hub.example.com/base"), "https://hub.example.com");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn same_origin_policy() {
        let req = |origin: &str| {
            TestRequest::default()
                .insert_header((header::HOST, "hub.local:8080"))
                .insert_header((header::ORIGIN, origin))
                .to_http_request()
        };
        let policy = OriginPolicy::SameOrigin;
        assert!(origin_allowed(&req("http://hub.local:8080"), &policy, "https://public.example"));
        assert!(origin_allowed(&req("https://public.example"), &policy, "https://public.example"));
        assert!(!origin_allowed(&req("https://evil.example"), &policy, "https://public.example"));
        assert!(origin_allowed(&TestRequest::default().to_http_request(), &policy, "http://x"));
    }
}
