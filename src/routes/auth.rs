//! Login, guest tokens, refresh and `me` (`docs/protocol.md` §2).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Routes;
use crate::auth::{Caller, IssuedToken, Issuer, Role};
use crate::db;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::ids::{CompanyId, UserId};
use crate::limits::client_ip;
use crate::net::ip_key;
use crate::protocol::UserWithCompany;
use crate::state::AppState;
use crate::time::timestamp_from_unix;
use crate::user::{UserRef, clean_display_name};

/// How long a dashboard login lasts: a working day and then some.
pub const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a landing-page visitor's token lasts.
pub const GUEST_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Bounds on the lifetime a refreshed token may get.
const REFRESH_TTL_RANGE: (i64, i64) = (60, 30 * 24 * 3600);

pub fn configure(routes: &mut Routes<'_>) {
    routes.post("/api/v1/auth/login", login);
    routes.post("/api/v1/auth/guest", guest);
    routes.post("/api/v1/auth/refresh", refresh);
    routes.get("/api/v1/me", me);
}

/// The answer of every endpoint that hands out a token.
#[derive(Serialize, ToSchema)]
struct TokenAnswer<'a> {
    token: String,
    expires_at: String,
    user: UserWithCompany<'a>,
}

fn token_answer(issued: IssuedToken, user: &UserRef, company: &CompanyId) -> HttpResponse {
    HttpResponse::Ok().json(TokenAnswer {
        token: issued.token,
        expires_at: timestamp_from_unix(issued.expires_at),
        user: UserWithCompany { user, company },
    })
}

/// Signs a token for a new sign-in and answers with it.
fn sign_in(
    state: &AppState,
    user: &UserRef,
    company: &CompanyId,
    ttl: Duration,
) -> Result<HttpResponse, AppError> {
    let (id, name) = (user.id.as_str(), Some(&*user.name));
    let issued = state
        .tokens
        .issue(id, user.role, company.as_str(), name, ttl)
        .map_err(AppError::internal)?;
    Ok(token_answer(issued, user, company))
}

/// The client's address as the rate limits count it: the IP, or its /64 for IPv6.
fn client_key(req: &HttpRequest, state: &AppState) -> String {
    client_ip(req, &state.settings.http.trusted_proxies)
        .map_or_else(|| "unknown".into(), |ip| ip_key(ip).to_string())
}

#[derive(Deserialize, ToSchema)]
struct LoginRequest {
    email: String,
    password: String,
}

fn invalid_credentials() -> AppError {
    AppError::new(ErrorCode::InvalidCredentials, "wrong email or password")
}

/// Signs in with an account made by `switchboard user add`: a token for 12 hours.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body(content = LoginRequest, example = json!({"email": "ann@acme.test", "password": "correct horse battery"})),
    responses(
        (status = 200, body = TokenAnswer, example = json!({"token": "eyJ0eXAiOiJKV1Qi…",
            "expires_at": "2026-11-24T21:00:00.000Z",
            "user": {"id": "9f1c…", "name": "Ann", "role": "agent", "company": "acme"}})),
        (status = 401, description = "wrong email or password (also a disabled account)", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
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
    // A disabled account answers like a wrong password (and took the same time).
    let account =
        account.filter(|a| matches && a.disabled_at.is_none()).ok_or_else(invalid_credentials)?;
    let role: Role = account.role.parse().map_err(AppError::internal)?;
    let (Some(id), Some(company)) =
        (UserId::parse(&account.id), CompanyId::parse(&account.company))
    else {
        return Err(AppError::internal("stored account has an unusable id or company"));
    };
    let name = Arc::from(clean_display_name(&account.name));
    sign_in(&state, &UserRef { id, name, role }, &company, LOGIN_TOKEN_TTL)
}

#[derive(Deserialize, Default, ToSchema)]
struct GuestRequest {
    company: Option<String>,
    name: Option<String>,
}

/// A customer token (1 hour, a fresh id) for a landing-page visitor of a known company; the
/// body is optional (default: `--default-company`, name "Guest").
#[utoipa::path(post, path = "/api/v1/auth/guest", tag = "auth",
    request_body(content = Option<GuestRequest>, example = json!({"company": "acme", "name": "Vera"})),
    responses(
        (status = 200, body = TokenAnswer, example = json!({"token": "eyJ0eXAiOiJKV1Qi…",
            "expires_at": "2026-11-24T10:00:00.000Z",
            "user": {"id": "guest-2e1da7d3", "name": "Vera", "role": "customer", "company": "acme"}})),
        (status = 400, body = ErrorBody),
        (status = 404, description = "unknown_company", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
async fn guest(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let body = super::body::read(&req, payload, super::MAX_JSON_BODY).await?;
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
        .map(clean_display_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Guest".to_owned());
    let id = UserId::parse(&format!("guest-{}", crate::ids::random_uuid().simple()))
        .ok_or_else(|| AppError::internal("a guest id is a valid user id"))?;
    let guest = UserRef { id, name: Arc::from(name), role: Role::Customer };
    sign_in(&state, &guest, &company, GUEST_TOKEN_TTL)
}

/// A new token for the caller's (still valid) one: same claims, same lifetime, same original
/// sign-in time. Only our own tokens refresh (an identity provider refreshes its own), never
/// past `--session-max-age-secs` after the sign-in, and a password account is read again: a
/// disabled one gets no new token.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = TokenAnswer),
        (status = 401, body = ErrorBody),
        (status = 403, description = "a token of the identity provider", body = ErrorBody),
    ))]
async fn refresh(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let identity = caller.0;
    if identity.issuer != Issuer::Hub {
        let text = "tokens of the identity provider are refreshed by the identity provider";
        return Err(AppError::new(ErrorCode::Forbidden, text));
    }
    let now = chrono::Utc::now().timestamp();
    let signed_in = identity.auth_time.or(identity.issued_at).unwrap_or(now);
    let max_age = i64::try_from(state.settings.auth.session_max_age_secs).unwrap_or(i64::MAX);
    let session_end = signed_in.saturating_add(max_age);
    if now >= session_end {
        return Err(AppError::invalid_token());
    }
    if identity.role().is_staff() {
        let (company, id) = (identity.company.to_string(), identity.user.id.to_string());
        let account =
            db::run(&state.pool, move |conn| db::users::find_by_id(conn, &company, &id)).await?;
        if account.is_some_and(|a| a.disabled_at.is_some()) {
            return Err(AppError::invalid_token());
        }
    }
    let lifetime = identity
        .issued_at
        .map_or(GUEST_TOKEN_TTL.as_secs() as i64, |iat| identity.expires_at - iat)
        .clamp(REFRESH_TTL_RANGE.0, REFRESH_TTL_RANGE.1)
        .min(session_end - now);
    let issued = state
        .tokens
        .reissue(&identity, Duration::from_secs(lifetime.unsigned_abs()), signed_in)
        .map_err(AppError::internal)?;
    Ok(token_answer(issued, &identity.user, &identity.company))
}

#[derive(Serialize, ToSchema)]
struct MeAnswer<'a> {
    sub: &'a str,
    role: Role,
    #[schema(value_type = String)]
    company: &'a CompanyId,
    name: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    user: &'a UserRef,
}

/// The caller's claims.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = MeAnswer, example = json!({"sub": "ann", "role": "agent", "company": "acme",
            "name": "Ann", "exp": 1795525200, "iat": 1795482000,
            "user": {"id": "ann", "name": "Ann", "role": "agent"}})),
        (status = 401, body = ErrorBody),
    ))]
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
