//! Connection status and the admin test message (`docs/protocol.md` §5).

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::hubs::presence::{DeliverToUser, GetTotals, ListConnections};
use crate::hubs::rooms::RoomsByConnection;
use crate::ids::UserId;
use crate::protocol::{ConnectionSummary, ServerMessage, encode};
use crate::state::AppState;
use crate::time::timestamp;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/ws/status", web::get().to(ws_status))
        .route("/api/v1/ws/clients", web::get().to(ws_clients))
        .route("/api/v1/ws/test", web::post().to(ws_test));
}

/// Roles that may look at and message other connections from outside.
const OPERATORS: &[Role] = &[Role::Admin, Role::Service];

fn hub_unavailable(e: actix::MailboxError) -> AppError {
    AppError::internal(format!("hub unavailable: {e}"))
}

/// Public: global aggregate counts only.
async fn ws_status(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let totals = state.hubs.presence.send(GetTotals).await.map_err(hub_unavailable)?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "active",
        "connected_users": totals.users,
        "connections": totals.connections,
    })))
}

/// The caller's company's connections, with their rooms.
async fn ws_clients(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let identity = caller.require(OPERATORS)?;
    let company = identity.company.clone();
    let connections = state
        .hubs
        .presence
        .send(ListConnections { company: company.clone() })
        .await
        .map_err(hub_unavailable)?;
    let mut rooms = state
        .hubs
        .rooms
        .send(RoomsByConnection { company, conn: None })
        .await
        .map_err(hub_unavailable)?;
    let clients: Vec<ConnectionSummary> = connections
        .into_iter()
        .map(|c| ConnectionSummary {
            session_id: c.conn,
            rooms: rooms.remove(&c.conn).unwrap_or_default(),
            user: c.user,
            connected_at: timestamp(c.connected_at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "clients": clients })))
}

#[derive(Deserialize)]
struct TestRequest {
    target_user_id: String,
    message: String,
    event: Option<String>,
}

/// Sends a `test` frame to one user of the caller's company.
async fn ws_test(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<TestRequest>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.require(OPERATORS)?;
    let target = UserId::parse(&body.target_user_id)
        .ok_or_else(|| AppError::invalid_message("target_user_id must be a user id"))?;
    let frame = encode(&ServerMessage::Test {
        event: body.event.as_deref().unwrap_or("test"),
        message: &body.message,
        sender: &identity.user,
        timestamp: timestamp(Utc::now()),
    });
    let delivery = DeliverToUser {
        company: identity.company.clone(),
        user_id: target,
        except_conn: None,
        frame,
    };
    let delivered = state.hubs.presence.send(delivery).await.map_err(hub_unavailable)?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "delivered": delivered })))
}
