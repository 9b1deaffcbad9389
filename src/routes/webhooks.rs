//! Telephony webhooks (`docs/protocol.md` §6): Twilio status callbacks and Vapi server messages.
//! A webhook answers 2xx only after its event is committed; a storage failure answers 503 so
//! the provider retries, and the transaction leaves nothing half-written.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::Routes;
use super::calls::parse_owner;
use crate::calendar::functions::{FunctionError, FunctionErrorCode};
use crate::calendar::tool::RunFunction;
use crate::calls::{CallEvent, CallStatus, CallTarget, CompanyChoice};
use crate::db::{self, calls::StoredEvent};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::hubs;
use crate::ids::{CompanyId, UserId};
use crate::state::AppState;
use crate::telephony::{twilio, vapi};

/// Largest Twilio status callback (a form of a few dozen fields).
const TWILIO_BODY_LIMIT: usize = 64 * 1024;
/// Vapi's end-of-call reports carry transcripts.
const VAPI_BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(routes: &mut Routes<'_>) {
    routes.post("/api/v1/webhooks/twilio", twilio_status);
    routes.post("/api/v1/webhooks/vapi", vapi_message);
}

fn not_configured(provider: &str) -> AppError {
    AppError::new(
        ErrorCode::ProviderNotConfigured,
        format!("{provider} is not configured on this hub"),
    )
}

fn invalid_signature() -> AppError {
    AppError::new(ErrorCode::InvalidSignature, "missing or invalid webhook signature")
}

/// Stores the event; a storage failure becomes 503 `storage_unavailable`. A change that was
/// pushed is timed from the request's arrival (`webhook_to_push_seconds`).
async fn record(
    state: &AppState,
    event: CallEvent,
    arrived: Instant,
) -> Result<StoredEvent, AppError> {
    let stored = hubs::calls::record(&state.pool, &state.hubs.calls, event).await?;
    if stored.applied {
        state.hubs.metrics.webhook_pushed(arrived.elapsed());
    }
    Ok(stored)
}

/// Counts a webhook request by provider and outcome (`ok`, or the error code it answered).
fn counted(
    state: &AppState,
    provider: &'static str,
    result: Result<HttpResponse, AppError>,
) -> Result<HttpResponse, AppError> {
    let outcome = result.as_ref().err().map_or("ok", |e| e.code.as_str());
    state.hubs.metrics.webhook(provider, outcome);
    result
}

/// A company or user id from a signed URL or trusted metadata; malformed ones are refused.
fn parse_company(value: &str) -> Result<CompanyId, AppError> {
    CompanyId::parse(value).ok_or_else(|| AppError::invalid_message("company is not a valid id"))
}

/// `POST /api/v1/webhooks/twilio`: a voice status callback, form-encoded.
#[utoipa::path(post, path = "/api/v1/webhooks/twilio", tag = "webhooks",
    params(
        ("company" = Option<String>, Query, description = "the company the call belongs to (part of the signed URL)"),
        ("owner" = Option<String>, Query, description = "the user who owns the call"),
        ("X-Twilio-Signature" = String, Header, description = "HMAC-SHA1 of the URL and the sorted parameters"),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's status callback parameters (CallSid, CallStatus, SequenceNumber, …)"),
    responses(
        (status = 204, description = "stored (or a duplicate) and pushed"),
        (status = 400, body = ErrorBody),
        (status = 403, description = "invalid_signature", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 503, description = "storage_unavailable or provider_not_configured: Twilio retries", body = ErrorBody),
    ))]
async fn twilio_status(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let arrived = Instant::now();
    counted(&state, "twilio", twilio_callback(req, payload, &state, arrived).await)
}

/// The signature covers the body, so it is read (capped, with a deadline) before it is checked.
async fn twilio_callback(
    req: HttpRequest,
    payload: web::Payload,
    state: &AppState,
    arrived: Instant,
) -> Result<HttpResponse, AppError> {
    let token = state
        .settings
        .telephony
        .twilio_auth_token
        .as_ref()
        .ok_or_else(|| not_configured("Twilio"))?;
    let body = super::body::read(&req, payload, TWILIO_BODY_LIMIT).await?;
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    // The URL Twilio signed: our public URL, the path and the raw query exactly as sent.
    let uri = req.uri();
    let url = match uri.query() {
        Some(query) => format!("{}{}?{query}", state.public_url, uri.path()),
        None => format!("{}{}", state.public_url, uri.path()),
    };
    let given = req.headers().get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !twilio::signature_matches(token.expose(), &url, &params, given) {
        return Err(invalid_signature());
    }
    let callback = twilio::parse_callback(&params).map_err(AppError::invalid_message)?;
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map_err(|e| AppError::invalid_message(e.to_string()))?
        .into_inner();
    let company = company_choice(state, query.get("company").map(String::as_str))?;
    let target = CallTarget::Keys(vec![("twilio".into(), callback.call_sid.clone())]);
    let event = CallEvent {
        ended_reason: callback.ended_reason,
        sequence: callback.sequence,
        owner_id: parse_owner(query.get("owner").map(String::as_str), "owner")?,
        direction: callback.direction,
        from: callback.from,
        to: callback.to,
        provider_call_id: Some(callback.call_sid),
        payload: callback.params.clone(),
        data: callback.params,
        ..CallEvent::new(company, target, "twilio", callback.status)
    };
    record(state, event, arrived).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The company a webhook names (signed URL, trusted metadata), else "whoever registered the
/// call, else the default company".
fn company_choice(state: &AppState, named: Option<&str>) -> Result<CompanyChoice, AppError> {
    match named {
        Some(company) => Ok(CompanyChoice::Known(parse_company(company)?)),
        None => Ok(CompanyChoice::RegisteredElse(state.settings.telephony.default_company.clone())),
    }
}

/// `POST /api/v1/webhooks/vapi`: a Vapi server message.
#[utoipa::path(post, path = "/api/v1/webhooks/vapi", tag = "webhooks",
    params(("X-Vapi-Secret" = String, Header, description = "the shared secret (--vapi-secret)")),
    request_body(content = Object, description = "a Vapi server message: status-update, end-of-call-report, tool-calls, …"),
    responses(
        (status = 200, description = "acknowledged; for `tool-calls`, `{\"results\": [...]}`", body = Object),
        (status = 400, body = ErrorBody),
        (status = 401, description = "invalid_signature", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
async fn vapi_message(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let arrived = Instant::now();
    counted(&state, "vapi", vapi_server_message(req, payload, &state, arrived).await)
}

/// Vapi authenticates with a header, so a stranger is refused before a byte of body is read.
async fn vapi_server_message(
    req: HttpRequest,
    payload: web::Payload,
    state: &AppState,
    arrived: Instant,
) -> Result<HttpResponse, AppError> {
    let secret =
        state.settings.telephony.vapi_secret.as_ref().ok_or_else(|| not_configured("Vapi"))?;
    if !vapi::secret_matches(&req, secret.expose()) {
        return Err(invalid_signature().with_status(StatusCode::UNAUTHORIZED));
    }
    let body = super::body::read(&req, payload, VAPI_BODY_LIMIT).await?;
    let message: Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::invalid_message(format!("invalid JSON body: {e}")))?;
    match vapi::parse(&message).map_err(AppError::invalid_message)? {
        vapi::VapiMessage::Status(report) => {
            let Some(status) = report.status else {
                log::info!(
                    "vapi call {}: status with no place in our model, acknowledged",
                    report.vapi_call_id
                );
                return Ok(HttpResponse::Ok().json(json!({})));
            };
            record(state, vapi_event(state, *report, status, message)?, arrived).await?;
            Ok(HttpResponse::Ok().json(json!({})))
        }
        vapi::VapiMessage::ToolCalls { .. } => {
            Ok(HttpResponse::Ok().json(run_tool_calls(state, &message).await))
        }
        vapi::VapiMessage::Other(kind) => {
            log::debug!("vapi message '{kind}' acknowledged");
            Ok(HttpResponse::Ok().json(json!({})))
        }
    }
}

fn vapi_event(
    state: &AppState,
    report: vapi::StatusReport,
    status: CallStatus,
    payload: Value,
) -> Result<CallEvent, AppError> {
    let mut keys = vec![("vapi".to_owned(), report.vapi_call_id.clone())];
    if let Some(sid) = &report.twilio_call_sid {
        keys.push(("twilio".to_owned(), sid.clone()));
    }
    let company = company_choice(state, report.company.as_deref())?;
    Ok(CallEvent {
        ended_reason: report.ended_reason,
        owner_id: parse_owner(report.owner_id.as_deref(), "owner_id")?,
        direction: report.direction,
        from: report.from,
        to: report.to,
        provider_call_id: Some(report.vapi_call_id),
        payload,
        data: report.data,
        ..CallEvent::new(company, CallTarget::Keys(keys), "vapi", status)
    })
}

/// Runs every tool call of a `tool-calls` message as the stored call's owner; always 200 with
/// one result per `toolCallId`, in order (`result` the compact JSON output, or a one-line
/// `error`). The owner also sees each one on the dashboard (`tool_call_executed`).
async fn run_tool_calls(state: &AppState, message: &Value) -> Value {
    let acting = acting_user(state, message).await;
    let mut results = Vec::new();
    for call in vapi::tool_calls(message) {
        let result = match &acting {
            Err(why) => Err(FunctionError::new(FunctionErrorCode::CalendarNotConnected, *why)),
            Ok((company, user_id, our_call_id)) => {
                let run = RunFunction {
                    company: company.clone(),
                    user_id: user_id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    tool_call_id: call.id.clone(),
                };
                state.hubs.run_function(run, Some(our_call_id)).await
            }
        };
        results.push(match result {
            Ok(output) => {
                json!({"toolCallId": call.id, "name": call.name, "result": output.to_string()})
            }
            Err(e) => json!({"toolCallId": call.id, "name": call.name, "error": e.message}),
        });
    }
    json!({ "results": results })
}

/// The user a voice assistant acts for: the owner of the call this message is about.
async fn acting_user(
    state: &AppState,
    message: &Value,
) -> Result<(CompanyId, UserId, String), &'static str> {
    let text = |pointer: &str| message.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let mut keys = Vec::new();
    if let Some(id) = text("/message/call/id") {
        keys.push(("vapi".to_owned(), id));
    }
    if let Some(sid) = text("/message/call/phoneCallProviderId") {
        keys.push(("twilio".to_owned(), sid));
    }
    let company = text("/message/call/metadata/company");
    let call = db::run(&state.pool, move |conn| {
        db::calls::find_for_provider(conn, company.as_deref(), &keys)
    })
    .await
    .map_err(|e| {
        log::error!("vapi tool-calls: {e}");
        "the hub cannot read its calls right now"
    })?
    .ok_or("no call on record for this assistant call")?;
    let owner = call
        .owner_id
        .as_deref()
        .and_then(UserId::parse)
        .ok_or("this call has no owner to act for")?;
    let company = CompanyId::parse(&call.company).ok_or("this call has no owner to act for")?;
    Ok((company, owner, call.id))
}
