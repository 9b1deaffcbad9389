//! `POST /api/v1/functions/{name}` (`docs/protocol.md` §11): a backend with a service token
//! runs a §7 calendar function as a named user of its own company — the calendar voice
//! assistant's own server, say. It takes the same path as a session's `function_call` and Vapi's
//! `tool-calls` ([`Hubs::run_function`](crate::hubs::Hubs::run_function)), so the user's
//! dashboards show `tool_call_executed` as for any other caller.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::Routes;
use crate::auth::{Caller, Role};
use crate::calendar::tool::RunFunction;
use crate::db;
use crate::error::{AppError, ErrorBody, ErrorCode, FunctionErrorCode};
use crate::ids::UserId;
use crate::state::AppState;

pub fn configure(routes: &mut Routes<'_>) {
    routes.post("/api/v1/functions/{name}", run_function);
}

#[derive(Deserialize, ToSchema)]
struct FunctionRequest {
    /// The user of the service's company the function runs as.
    user_id: String,
    /// The function's arguments (`docs/protocol.md` §7), an object or its JSON text.
    #[serde(default)]
    #[schema(value_type = Object)]
    arguments: Value,
    /// The caller's id for this function call: a retry with the same one never books twice.
    call_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct FunctionOutput {
    #[schema(value_type = Object)]
    output: Value,
}

/// A function's error: `{"error","message"}` with the status [`FunctionErrorCode::status`] gives.
#[derive(Serialize, ToSchema)]
struct FunctionFailure {
    error: FunctionErrorCode,
    message: String,
}

/// 200 `{"output"}`, or the function's error with its status (`FunctionErrorCode::status`).
#[utoipa::path(post, path = "/api/v1/functions/{name}", tag = "calendar", security(("bearer" = [])),
    params(("name" = String, Path, description = "check_calendar_availability, create_calendar_event, reschedule_appointment, cancel_appointment or get_appointment_details")),
    request_body(content = FunctionRequest, example = json!({"user_id": "ann", "call_id": "tool-1",
        "arguments": {"datetime_start": "2026-12-01T09:00:00Z", "datetime_end": "2026-12-01T10:00:00Z"}})),
    responses(
        (status = 200, body = FunctionOutput, example = json!({"output": {"available": true, "busy": []}})),
        (status = 400, description = "invalid_arguments (or invalid_message: no user_id)", body = FunctionFailure),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not a service", body = ErrorBody),
        (status = 404, description = "unknown_function, not_found, or a user unknown in the company", body = FunctionFailure),
        (status = 409, description = "calendar_not_connected", body = FunctionFailure,
            example = json!({"error": "calendar_not_connected", "message": "this user has not connected a Google Calendar"})),
        (status = 503, description = "calendar_unavailable", body = FunctionFailure),
    ))]
async fn run_function(
    caller: Caller,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<FunctionRequest>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.require(&[Role::Service])?;
    let FunctionRequest { user_id, arguments, call_id } = body.into_inner();
    let no_such_user = || AppError::new(ErrorCode::NotFound, "no such user in this company");
    let user_id = UserId::parse(&user_id).ok_or_else(no_such_user)?;
    let company = identity.company.clone();
    let (in_company, id) = (company.to_string(), user_id.to_string());
    let known = db::run(&state.pool, move |conn| db::users::known(conn, &in_company, &id))
        .await
        .map_err(AppError::from)?;
    if !known {
        return Err(no_such_user());
    }
    let tool_call_id = call_id.unwrap_or_else(|| crate::ids::random_uuid().simple().to_string());
    let run = RunFunction { company, user_id, name: name.into_inner(), arguments, tool_call_id };
    Ok(match state.hubs.run_function(run, None).await {
        Ok(output) => HttpResponse::Ok().json(FunctionOutput { output }),
        Err(e) => HttpResponse::build(e.code.status())
            .json(FunctionFailure { error: e.code, message: e.message }),
    })
}
