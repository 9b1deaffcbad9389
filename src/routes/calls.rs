//! Calls over REST (`docs/protocol.md` §6): registration and status updates by services, listing
//! and reading (with the event log) by agents and admins. Always the caller's company only.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::Routes;
use crate::auth::{Caller, Role};
use crate::calls::{CallEvent, CallStatus, CallTarget, CompanyChoice};
use crate::db::models::Call;
use crate::db::{self, calls::Cursor};
use crate::error::{AppError, ErrorBody};
use crate::hubs::calls::{RecordError, record};
use crate::ids::{CallId, UserId};
use crate::state::AppState;
use crate::time::timestamp_from_millis;

/// Default and largest page of `GET /api/v1/calls`.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

pub fn configure(routes: &mut Routes<'_>) {
    routes.post("/api/v1/calls", register);
    routes.get("/api/v1/calls", list);
    routes.get("/api/v1/calls/{id}", read);
    routes.post("/api/v1/calls/{id}/status", update_status);
}

const READERS: &[Role] = &[Role::Agent, Role::Admin];

/// A call as REST shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "6c4d8ea818324d0f8cf7fd1a6c045615", "company": "acme",
    "provider": "twilio", "provider_call_id": "CA0000000000000000000000000000BROW",
    "owner_id": "ann", "owner_name": "Ann", "direction": "inbound", "from": "+15017122661",
    "to": "+15558675310", "status": "ended", "ended_reason": "no-answer",
    "created_at": "2026-11-24T09:00:00.000Z", "updated_at": "2026-11-24T09:01:00.000Z",
    "ended_at": "2026-11-24T09:01:00.000Z"}))]
pub struct CallJson<'a> {
    pub id: &'a str,
    pub company: &'a str,
    pub provider: &'a str,
    pub provider_call_id: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    /// The owner's display name as last seen; null when unknown.
    pub owner_name: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub status: &'a str,
    pub ended_reason: Option<&'a str>,
    pub created_at: String,
    pub updated_at: String,
    pub ended_at: Option<String>,
}

/// The last seen names of owners, by user id.
type OwnerNames = HashMap<String, String>;

impl<'a> CallJson<'a> {
    fn new(call: &'a Call, names: &'a OwnerNames) -> Self {
        Self {
            id: &call.id,
            company: &call.company,
            provider: &call.provider,
            provider_call_id: call.provider_call_id.as_deref(),
            owner_id: call.owner_id.as_deref(),
            owner_name: call.owner_id.as_ref().and_then(|o| names.get(o)).map(String::as_str),
            direction: call.direction.as_deref(),
            from: call.from_number.as_deref(),
            to: call.to_number.as_deref(),
            status: &call.status,
            ended_reason: call.ended_reason.as_deref(),
            created_at: timestamp_from_millis(call.created_at),
            updated_at: timestamp_from_millis(call.updated_at),
            ended_at: call.ended_at.map(timestamp_from_millis),
        }
    }
}

impl From<RecordError> for AppError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Storage(e) => AppError::storage(e),
            RecordError::UnknownCall => AppError::not_found("call"),
        }
    }
}

/// The last seen names of the owners of `calls` (one indexed query).
fn owner_names(
    conn: &mut db::DbConn,
    company: &str,
    calls: &[Call],
) -> diesel::QueryResult<OwnerNames> {
    let owners: Vec<&str> = calls.iter().filter_map(|c| c.owner_id.as_deref()).collect();
    if owners.is_empty() {
        return Ok(OwnerNames::new());
    }
    db::agents::names(conn, company, &owners)
}

/// A call with its owner's name looked up, ready for [`CallJson::new`].
async fn with_owner_name(state: &AppState, call: Call) -> Result<(Call, OwnerNames), AppError> {
    let company = call.company.clone();
    Ok(db::run(&state.pool, move |conn| {
        let names = owner_names(conn, &company, std::slice::from_ref(&call))?;
        Ok((call, names))
    })
    .await?)
}

/// A user id given as a call's owner (a signed URL, trusted metadata, a service's request);
/// `invalid_message` naming `field` when malformed.
pub(super) fn parse_owner(value: Option<&str>, field: &str) -> Result<Option<UserId>, AppError> {
    value
        .map(|v| {
            UserId::parse(v)
                .ok_or_else(|| AppError::invalid_message(format!("{field} is not a valid user id")))
        })
        .transpose()
}

/// A call id from a URL path; one that cannot be an id names no call.
fn parse_call_id(value: &str) -> Result<CallId, AppError> {
    CallId::parse(value).ok_or_else(|| AppError::not_found("call"))
}

/// A short id of the caller's choosing (provider names, provider call ids).
fn checked(value: &str, what: &'static str, max: usize) -> Result<String, AppError> {
    let ok = !value.is_empty() && value.len() <= max && !value.chars().any(char::is_control);
    ok.then(|| value.to_owned()).ok_or_else(|| {
        AppError::invalid_message(format!("{what} must be 1-{max} printable characters"))
    })
}

#[derive(Deserialize, ToSchema)]
struct RegisterRequest {
    provider: String,
    provider_call_id: String,
    owner_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    direction: Option<String>,
}

/// Registers a call before its provider reports it (status `queued`). Registering the same
/// provider call again answers the existing call (200) instead of a new one (201).
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])),
    request_body(content = RegisterRequest, example = json!({"provider": "twilio",
        "provider_call_id": "CA0000000000000000000000000000BROW", "owner_id": "ann",
        "from": "+15017122661", "to": "+15558675310", "direction": "inbound"})),
    responses(
        (status = 201, body = CallJson),
        (status = 200, description = "registered before: the existing call", body = CallJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "not a service", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
async fn register(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.require(&[Role::Service])?;
    let body = body.into_inner();
    let provider = checked(&body.provider.to_ascii_lowercase(), "provider", 32)?;
    let provider_call_id = checked(&body.provider_call_id, "provider_call_id", 128)?;
    let owner_id = parse_owner(body.owner_id.as_deref(), "owner_id")?;
    let company = CompanyChoice::Known(identity.company.clone());
    let target = CallTarget::Keys(vec![(provider.clone(), provider_call_id.clone())]);
    let event = CallEvent {
        owner_id,
        direction: body.direction.as_deref().and_then(crate::telephony::normalize_direction),
        from: body.from,
        to: body.to,
        provider_call_id: Some(provider_call_id),
        payload: json!({"registered_by": identity.user.id}),
        data: json!({"registered": true}),
        ..CallEvent::new(company, target, provider, CallStatus::Queued)
    };
    let stored = record(&state.pool, &state.hubs.calls, event).await?;
    let created = stored.previous_status.is_none();
    let mut answer = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    let (call, names) = with_owner_name(&state, stored.call).await?;
    Ok(answer.json(CallJson::new(&call, &names)))
}

#[derive(Deserialize, ToSchema)]
struct StatusRequest {
    /// `queued`, `initiated`, `ringing`, `in-progress`, `ended` or `failed`.
    status: String,
    ended_reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
}

#[derive(Serialize, ToSchema)]
struct StatusAnswer<'a> {
    /// False when the call had already moved past this status (statuses only move forward).
    applied: bool,
    call: CallJson<'a>,
}

/// A status report for a call from any other provider; answers whether it was applied.
#[utoipa::path(post, path = "/api/v1/calls/{id}/status", tag = "calls", security(("bearer" = [])),
    params(("id" = String, Path, description = "call id")),
    request_body(content = StatusRequest, example = json!({"status": "ended", "ended_reason": "completed", "data": {"duration": 42}})),
    responses(
        (status = 200, body = StatusAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
async fn update_status(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<StatusRequest>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.require(&[Role::Service])?;
    let body = body.into_inner();
    let status = CallStatus::parse(&body.status).ok_or_else(|| {
        AppError::invalid_message(
            "status must be queued, initiated, ringing, in-progress, ended or failed",
        )
    })?;
    let data = body.data.unwrap_or(Value::Null);
    let company = CompanyChoice::Known(identity.company.clone());
    let provider = format!("rest:{}", identity.user.id);
    let event = CallEvent {
        ended_reason: body.ended_reason,
        payload: json!({"status": status.as_str(), "data": data}),
        data,
        ..CallEvent::new(company, CallTarget::Id(parse_call_id(&id)?), provider, status)
    };
    let stored = record(&state.pool, &state.hubs.calls, event).await?;
    let applied = stored.applied;
    let (call, names) = with_owner_name(&state, stored.call).await?;
    Ok(HttpResponse::Ok().json(StatusAnswer { applied, call: CallJson::new(&call, &names) }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only calls in this status.
    status: Option<String>,
    /// Page size, 1-200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    before: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct CallsPage<'a> {
    calls: Vec<CallJson<'a>>,
    next_cursor: Option<String>,
}

/// The caller's company's calls, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])), params(ListQuery),
    responses(
        (status = 200, body = CallsPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "not an agent or admin", body = ErrorBody),
    ))]
async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.require(READERS)?;
    let query = query.into_inner();
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            CallStatus::parse(s)
                .ok_or_else(|| AppError::invalid_message("unknown status"))?
                .as_str(),
        ),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid_message(format!("limit must be 1-{MAX_PAGE}")));
    }
    let before = match query.before.as_deref() {
        None | Some("") => None,
        Some(b) => Some(
            Cursor::decode(b)
                .ok_or_else(|| AppError::invalid_message("before is not a cursor from this API"))?,
        ),
    };
    let company = identity.company.to_string();
    let (page, next, names) = db::run(&state.pool, move |conn| {
        let (page, next) = db::calls::list(conn, &company, status, before.as_ref(), limit)?;
        let names = owner_names(conn, &company, &page)?;
        Ok((page, next, names))
    })
    .await?;
    let calls = page.iter().map(|c| CallJson::new(c, &names)).collect();
    Ok(HttpResponse::Ok().json(CallsPage { calls, next_cursor: next.map(|c| c.encode()) }))
}

/// One stored event of a call.
#[derive(Serialize, ToSchema)]
struct EventJson<'a> {
    status: &'a str,
    received_at: String,
    /// Whether it changed the call (false: late or repeated).
    applied: bool,
    /// What the provider sent.
    #[schema(value_type = Object)]
    payload: Value,
}

#[derive(Serialize, ToSchema)]
struct CallWithEvents<'a> {
    #[serde(flatten)]
    call: CallJson<'a>,
    events: Vec<EventJson<'a>>,
}

/// One call with its event log.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "calls", security(("bearer" = [])),
    params(("id" = String, Path, description = "call id")),
    responses(
        (status = 200, body = CallWithEvents),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.require(READERS)?;
    let company = identity.company.to_string();
    let id = id.into_inner();
    let found = db::run(&state.pool, move |conn| {
        let Some(call) = db::calls::find(conn, &company, &id)? else { return Ok(None) };
        let events = db::calls::events(conn, &call.id)?;
        let names = owner_names(conn, &company, std::slice::from_ref(&call))?;
        Ok(Some((call, events, names)))
    })
    .await?;
    let (call, events, names) = found.ok_or_else(|| AppError::not_found("call"))?;
    let events = events
        .iter()
        .map(|e| EventJson {
            status: &e.status,
            received_at: timestamp_from_millis(e.received_at),
            applied: e.applied,
            payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
        })
        .collect();
    Ok(HttpResponse::Ok().json(CallWithEvents { call: CallJson::new(&call, &names), events }))
}
