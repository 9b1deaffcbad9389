//! Login, guest tokens, refresh and `me` (`docs/protocol.md` §2).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Identity, IssuedToken, Role};
use crate::db;
use crate::error::{AppError, ErrorCode};
use crate::ids::CompanyId;
use crate::limits::client_ip;
use crate::net::ip_key;
use crate::protocol::UserWithCompany;
use crate::state::AppState;
use crate::time::timestamp_from_unix;
use crate::user::UserRef;

/// How long a dashboard login lasts: a working day and then some.
pub const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a landing-page visitor's token lasts.
pub const GUEST_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Bounds on the lifetime a refreshed token may get.
const REFRESH_TTL_RANGE: (i64, i64) = (60, 30 * 24 * 3600);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/auth/login", web::post().to(login))
        .route("/api/v1/auth/guest", web::post().to(guest))
        .route("/api/v1/auth/refresh", web::post().to(refresh))
        .route("/api/v1/me", web::get().to(me));
}

/// The answer of every endpoint that hands out a token.
#[derive(Serialize)]
struct TokenAnswer<'a> {
    token: String,
    expires_at: String,
    user: UserWithCompany<'a>,
}

fn token_answer(issued: IssuedToken, identity: &Identity) -> HttpResponse {
    HttpResponse::Ok().json(TokenAnswer {
        token: issued.token,
        expires_at: timestamp_from_unix(issued.expires_at),
        user: UserWithCompany { user: &identity.user, company: &identity.company },
    })
}

fn issue(state: &AppState, identity: &Identity, ttl: Duration) -> Result<IssuedToken, AppError> {
    state
        .tokens
        .issue(
            identity.user.id.as_str(),
            identity.user.role,
            identity.company.as_str(),
            Some(&identity.user.name),
            ttl,
        )
        .map_err(AppError::internal)
}

/// The client's address as the rate limits count it: the IP, or its /64 for IPv6.
fn client_key(req: &HttpRequest, state: &AppState) -> String {
    client_ip(req, &state.settings.http.trusted_proxies)
        .map_or_else(|| "unknown".into(), |ip| ip_key(ip).to_string())
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

fn invalid_credentials() -> AppError {
    AppError::new(ErrorCode::InvalidCredentials, "wrong email or password")
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    let LoginRequest { email, password } = body.into_inner();
    let email = email.trim().to_lowercase();
    // Per address, and per (email, address): someone guessing one person's password from one
    // place is stopped, and nobody elsewhere can lock that person out.
    let client = client_key(&req, &state);
    if !state.limits.login_by_ip.check(&client)
        || !state.limits.login_by_email_and_ip.check(&format!("{email} {client}"))
    {
        return Err(AppError::rate_limited());
    }
    let account = db::run(&state.pool, move |conn| db::users::find_by_email(conn, &email)).await?;
    // Argon2 costs tens of milliseconds of CPU: keep it off the async workers. An unknown email
    // is checked against a dummy hash so both failures take the same time.
    let passwords = Arc::clone(&state.passwords);
    let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
    let matches = web::block(move || passwords.verify(&password, stored_hash.as_deref()))
        .await
        .map_err(AppError::internal)?;
    let account = account.filter(|_| matches).ok_or_else(invalid_credentials)?;
    let role: Role = account.role.parse().map_err(AppError::internal)?;
    let identity = Identity::from_claims(crate::auth::Claims {
        sub: account.id,
        role,
        company: account.company,
        name: Some(account.name),
        exp: 0,
        iat: None,
    })
    .ok_or_else(|| AppError::internal("stored account has an unusable id or company"))?;
    let issued = issue(&state, &identity, LOGIN_TOKEN_TTL)?;
    Ok(token_answer(issued, &identity))
}

#[derive(Deserialize, Default)]
struct GuestRequest {
    company: Option<String>,
    name: Option<String>,
}

async fn guest(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // The body is optional: an empty POST asks for a guest of the default company.
    let request: GuestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        GuestRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::invalid_message(format!("invalid JSON body: {e}")))?
    };
    if !state.limits.guest_by_ip.check(&client_key(&req, &state)) {
        return Err(AppError::rate_limited());
    }
    let company = match request.company {
        Some(named) => CompanyId::parse(named.trim())
            .ok_or_else(|| AppError::invalid_message("company must be a non-empty id"))?,
        None => state.settings.telephony.default_company.clone(),
    };
    let lookup = company.clone();
    let known =
        db::run(&state.pool, move |conn| db::users::company_exists(conn, lookup.as_str())).await?;
    if !known {
        return Err(AppError::new(ErrorCode::UnknownCompany, "no such company"));
    }
    let name = request
        .name
        .as_deref()
        .map(crate::user::clean_display_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Guest".to_owned());
    let sub = format!("guest-{}", uuid::Uuid::new_v4().simple());
    let identity = Identity::from_claims(crate::auth::Claims {
        sub,
        role: Role::Customer,
        company: company.to_string(),
        name: Some(name),
        exp: 0,
        iat: None,
    })
    .ok_or_else(|| AppError::internal("guest identity could not be built"))?;
    let issued = issue(&state, &identity, GUEST_TOKEN_TTL)?;
    Ok(token_answer(issued, &identity))
}

/// A new token with the same claims and the same lifetime as the caller's (still valid) one.
async fn refresh(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let identity = caller.0;
    let lifetime = identity
        .issued_at
        .map_or(GUEST_TOKEN_TTL.as_secs() as i64, |iat| identity.expires_at - iat)
        .clamp(REFRESH_TTL_RANGE.0, REFRESH_TTL_RANGE.1);
    let issued = issue(&state, &identity, Duration::from_secs(lifetime.unsigned_abs()))?;
    Ok(token_answer(issued, &identity))
}

#[derive(Serialize)]
struct MeAnswer<'a> {
    sub: &'a str,
    role: Role,
    company: &'a CompanyId,
    name: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    user: &'a UserRef,
}

/// The caller's claims.
async fn me(caller: Caller) -> HttpResponse {
    let identity = &caller.0;
    HttpResponse::Ok().json(MeAnswer {
        sub: identity.user.id.as_str(),
        role: identity.user.role,
        company: &identity.company,
        name: &identity.user.name,
        exp: identity.expires_at,
        iat: identity.issued_at,
        user: &identity.user,
    })
}
