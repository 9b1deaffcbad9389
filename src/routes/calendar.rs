//! Connecting a Google Calendar (`docs/protocol.md` §7): the consent URL, Google's redirect back to
//! us, the connection's status, and disconnecting. No token ever travels in a URL: the page
//! asks for the consent URL with its Bearer token and navigates there; Google comes back with
//! a single-use `state` bound to that user.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::Routes;
use crate::auth::{Caller, Role};
use crate::calendar::oauth::{self, TokenError};
use crate::calendar::tool::{ForgetUser, owner_label};
use crate::db::{
    self,
    models::{CalendarConnection, OAuthState},
};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::ids::{CompanyId, UserId};
use crate::state::AppState;
use crate::telephony::constant_time_eq;
use crate::time::now_millis;

/// How long a consent may take before its `state` expires.
const STATE_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Who has a calendar: the people on the dashboard.
const CALENDAR_USERS: &[Role] = &[Role::Agent, Role::Admin];

pub fn configure(routes: &mut Routes<'_>) {
    routes.post("/api/v1/calendar/connect", connect);
    routes.get("/api/v1/calendar/oauth/callback", callback);
    routes.get("/api/v1/calendar", status);
    routes.delete("/api/v1/calendar", disconnect);
}

/// The cookie that binds a consent to the browser that asked for it (RFC 6749 §10.12).
const BINDING_COOKIE: &str = "sb_oauth";
const CALLBACK_PATH: &str = "/api/v1/calendar/oauth/callback";

/// The consent URL for the caller, with a fresh single-use `state` and PKCE challenge, bound to
/// this browser by the `sb_oauth` cookie: a callback completed in another browser (a victim
/// lured to approve someone else's consent URL) stores nothing.
#[utoipa::path(post, path = "/api/v1/calendar/connect", tag = "calendar", security(("bearer" = [])),
    responses(
        (status = 200, body = ConnectAnswer, headers(("Set-Cookie" = String, description = "sb_oauth: binds the consent to this browser")),
            example = json!({"authorization_url": "https://accounts.google.com/o/oauth2/v2/auth?client_id=…&state=…&code_challenge=…"})),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not an agent or admin", body = ErrorBody),
        (status = 503, description = "provider_not_configured", body = ErrorBody),
    ))]
async fn connect(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let identity = caller.require(CALENDAR_USERS)?;
    let google = state.google.clone().ok_or_else(|| {
        AppError::new(
            ErrorCode::ProviderNotConfigured,
            "Google Calendar is not configured on this hub",
        )
    })?;
    let pending = OAuthState {
        state: oauth::random_token(),
        company: identity.company.to_string(),
        user_id: identity.user.id.to_string(),
        code_verifier: oauth::random_token(),
        expires_at: now_millis() + STATE_LIFETIME_MS,
        browser_binding: String::new(),
    };
    let browser_secret = oauth::random_token();
    let pending = OAuthState { browser_binding: binding_of(&browser_secret), ..pending };
    let url = google
        .config
        .authorization_url(&pending.state, &oauth::code_challenge(&pending.code_verifier));
    db::run(&state.pool, move |conn| db::calendar::insert_state(conn, &pending, now_millis()))
        .await?;
    let secure = if state.public_url.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!(
        "{BINDING_COOKIE}={browser_secret}; Path={CALLBACK_PATH}; Max-Age={}; HttpOnly; \
         SameSite=Lax{secure}",
        STATE_LIFETIME_MS / 1000
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, cookie))
        .json(ConnectAnswer { authorization_url: url }))
}

#[derive(Serialize, ToSchema)]
struct ConnectAnswer {
    /// Google's consent page; open it in the browser that asked.
    authorization_url: String,
}

/// What the stored state keeps of the browser's secret: its SHA-256, in hex.
fn binding_of(browser_secret: &str) -> String {
    Sha256::digest(browser_secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `sb_oauth` cookie the browser sent, if any.
fn binding_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(BINDING_COOKIE)?.strip_prefix('='))
        .map(str::to_owned)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Google's redirect: always answered with a redirect back to the dashboard, saying how it went.
#[utoipa::path(get, path = "/api/v1/calendar/oauth/callback", tag = "calendar", params(CallbackQuery),
    responses((status = 302, description = "to `/agent?calendar=connected`, or `/agent?calendar=error&reason=…`",
        headers(("Location" = String)))))]
async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let location = match complete(query.into_inner(), binding_cookie(&req), &state).await {
        Ok(()) => "/agent?calendar=connected".to_owned(),
        Err(reason) => format!("/agent?calendar=error&reason={reason}"),
    };
    HttpResponse::Found().insert_header((header::LOCATION, location)).finish()
}

/// The pending consent `key` names, taken (and so used up) before anything else, whatever
/// happens next; only for the browser that started it.
async fn take_bound_state(
    state: &AppState,
    key: String,
    browser_secret: Option<String>,
) -> Result<OAuthState, &'static str> {
    let pending =
        db::run(&state.pool, move |conn| db::calendar::take_state(conn, &key, now_millis()))
            .await
            .map_err(|e| {
                log::error!("calendar callback: {e}");
                "storage_unavailable"
            })?
            .ok_or("invalid_state")?;
    let binding = browser_secret.map(|secret| binding_of(&secret)).unwrap_or_default();
    if !constant_time_eq(binding.as_bytes(), pending.browser_binding.as_bytes()) {
        log::warn!("calendar callback from another browser than the one that asked: refused");
        return Err("state_mismatch");
    }
    Ok(pending)
}

/// Checks the `state`, exchanges the code, stores the refresh token encrypted. The error is the
/// `reason` shown to the user.
async fn complete(
    query: CallbackQuery,
    browser_secret: Option<String>,
    state: &AppState,
) -> Result<(), &'static str> {
    let google = state.google.clone().ok_or("not_configured")?;
    let key = query.state.ok_or("invalid_state")?;
    let pending = take_bound_state(state, key, browser_secret).await?;
    if query.error.is_some() {
        return Err("access_denied");
    }
    let code = query.code.ok_or("missing_code")?;
    let tokens = oauth::exchange_code(&google.http, &google.config, &code, &pending.code_verifier)
        .await
        .map_err(|e| {
            log::warn!("calendar code exchange: {e}");
            match e {
                TokenError::Refused(_) => "exchange_refused",
                TokenError::Unavailable(_) => "google_unavailable",
            }
        })?;
    let refresh_token = tokens.refresh_token.ok_or("no_refresh_token")?;
    let (company, user_id) = (
        CompanyId::parse(&pending.company).ok_or("invalid_state")?,
        UserId::parse(&pending.user_id).ok_or("invalid_state")?,
    );
    // Which account and zone, for the user to see; never a reason not to connect.
    let (calendar_id, time_zone) =
        oauth::primary_calendar(&google.http, &google.config, &tokens.access_token).await;
    let connection = CalendarConnection {
        company: company.to_string(),
        user_id: user_id.to_string(),
        refresh_token: state.cipher.encrypt(&refresh_token, &owner_label(&company, &user_id)),
        calendar_id,
        time_zone,
        connected_at: now_millis(),
    };
    db::run(&state.pool, move |conn| db::calendar::upsert(conn, &connection)).await.map_err(
        |e| {
            log::error!("storing a calendar connection: {e}");
            "storage_unavailable"
        },
    )?;
    // A client cached for an earlier connection must not outlive it.
    let _ = state.hubs.calendar.send(ForgetUser { company, user_id }).await;
    Ok(())
}

#[derive(Serialize, ToSchema)]
struct CalendarState {
    connected: bool,
    calendar_id: Option<String>,
    time_zone: Option<String>,
}

/// Whether the caller has a calendar connected, and which.
#[utoipa::path(get, path = "/api/v1/calendar", tag = "calendar", security(("bearer" = [])),
    responses(
        (status = 200, body = CalendarState, example = json!({"connected": true, "calendar_id": "ann@example.com", "time_zone": "Europe/Berlin"})),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
async fn status(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let identity = caller.require(CALENDAR_USERS)?;
    let (company, user) = (identity.company.to_string(), identity.user.id.to_string());
    let found = db::run(&state.pool, move |conn| db::calendar::find(conn, &company, &user)).await?;
    Ok(HttpResponse::Ok().json(CalendarState {
        connected: found.is_some(),
        calendar_id: found.as_ref().and_then(|c| c.calendar_id.clone()),
        time_zone: found.as_ref().and_then(|c| c.time_zone.clone()),
    }))
}

/// Forgets the caller's calendar: the stored token and the cached client are gone before this
/// answers.
#[utoipa::path(delete, path = "/api/v1/calendar", tag = "calendar", security(("bearer" = [])),
    responses(
        (status = 200, body = CalendarState, example = json!({"connected": false, "calendar_id": null, "time_zone": null})),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
async fn disconnect(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let identity = caller.require(CALENDAR_USERS)?;
    let (company, user) = (identity.company.to_string(), identity.user.id.to_string());
    let removed = db::run(&state.pool, move |conn| {
        let found = db::calendar::find(conn, &company, &user)?;
        db::calendar::delete(conn, &company, &user)?;
        Ok(found)
    })
    .await?;
    // The grant is also revoked at Google (best effort, after answering).
    let label = owner_label(&identity.company, &identity.user.id);
    let revocable = removed.and_then(|c| state.cipher.decrypt(&c.refresh_token, &label).ok());
    if let (Some(token), Some(google)) = (revocable, state.google.clone()) {
        actix_web::rt::spawn(
            async move { oauth::revoke(&google.http, &google.config, &token).await },
        );
    }
    let forget =
        ForgetUser { company: identity.company.clone(), user_id: identity.user.id.clone() };
    state
        .hubs
        .calendar
        .send(forget)
        .await
        .map_err(|e| AppError::internal(format!("calendar tool unavailable: {e}")))?;
    Ok(HttpResponse::Ok().json(CalendarState {
        connected: false,
        calendar_id: None,
        time_zone: None,
    }))
}
