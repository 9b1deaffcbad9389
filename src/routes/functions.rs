//! `POST /api/v1/functions/{name}` (`docs/protocol.md` §11): a backend with a service token
//! runs a §7 calendar function as a named user of its own company — the calendar voice
//! assistant's own server, say. It takes the same path as a session's `function_call` and Vapi's
//! `tool-calls` ([`Hubs::run_function`](crate::hubs::Hubs::run_function)), so the user's
//! dashboards show `tool_call_executed` as for any other caller.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Caller, Role};
use crate::calendar::tool::RunFunction;
use crate::db;
use crate::error::{AppError, ErrorCode};
use crate::ids::UserId;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/functions/{name}", web::post().to(run_function));
}

#[derive(Deserialize)]
struct FunctionRequest {
    user_id: String,
    #[serde(default)]
    arguments: Value,
    /// The caller's id for this function call: a retry with the same one never books twice.
    call_id: Option<String>,
}

/// 200 `{"output"}`, or the function's error with its status (`FunctionErrorCode::status`).
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
    let tool_call_id = call_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let run = RunFunction { company, user_id, name: name.into_inner(), arguments, tool_call_id };
    Ok(match state.hubs.run_function(run, None).await {
        Ok(output) => HttpResponse::Ok().json(json!({ "output": output })),
        Err(e) => HttpResponse::build(e.code.status())
            .json(json!({ "error": e.code, "message": e.message })),
    })
}
