//! Connection status and the admin test message (`docs/protocol.md` §5).

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Routes;
use crate::auth::{Caller, Role};
use crate::error::{AppError, ErrorBody};
use crate::hubs::presence::{DeliverToUser, GetTotals, ListConnections};
use crate::hubs::rooms::RoomsByConnection;
use crate::ids::UserId;
use crate::protocol::{ConnectionSummary, ServerMessage, encode};
use crate::state::AppState;
use crate::time::timestamp;

pub fn configure(routes: &mut Routes<'_>) {
    routes.get("/api/v1/ws/status", ws_status);
    routes.get("/api/v1/ws/clients", ws_clients);
    routes.post("/api/v1/ws/test", ws_test);
}

/// Roles that may look at and message other connections from outside.
const OPERATORS: &[Role] = &[Role::Admin, Role::Service];

fn hub_unavailable(e: actix::MailboxError) -> AppError {
    AppError::internal(format!("hub unavailable: {e}"))
}

#[derive(Serialize, ToSchema)]
struct WsStatus {
    /// Always `active`.
    status: &'static str,
    connected_users: usize,
    connections: usize,
}

/// Public: global aggregate counts only.
#[utoipa::path(get, path = "/api/v1/ws/status", tag = "status",
    responses((status = 200, body = WsStatus, example = json!({"status": "active", "connected_users": 12, "connections": 15}))))]
async fn ws_status(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let totals =
        state.hubs.presence.send(GetTotals { cluster: true }).await.map_err(hub_unavailable)?;
    Ok(HttpResponse::Ok().json(WsStatus {
        status: "active",
        connected_users: totals.users,
        connections: totals.connections,
    }))
}

#[derive(Serialize, ToSchema)]
struct ClientsAnswer {
    clients: Vec<ConnectionSummary>,
}

/// The caller's company's connections, with their rooms.
#[utoipa::path(get, path = "/api/v1/ws/clients", tag = "status", security(("bearer" = [])),
    responses(
        (status = 200, body = ClientsAnswer, example = json!({"clients": [{"session_id": "5a0771f6aa684e838438bbfd7539c2c0",
            "user": {"id": "ann", "name": "Ann", "role": "agent"}, "rooms": ["agents", "sales"],
            "connected_at": "2026-11-24T09:00:00.000Z"}]})),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not an admin or service", body = ErrorBody),
    ))]
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
    Ok(HttpResponse::Ok().json(ClientsAnswer { clients }))
}

#[derive(Deserialize, ToSchema)]
struct TestRequest {
    target_user_id: String,
    message: String,
    event: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct TestAnswer {
    success: bool,
    /// Connections reached.
    delivered: usize,
}

/// Sends a `test` frame to one user of the caller's company.
#[utoipa::path(post, path = "/api/v1/ws/test", tag = "status", security(("bearer" = [])),
    request_body(content = TestRequest, example = json!({"target_user_id": "ann", "message": "hello", "event": "test"})),
    responses(
        (status = 200, body = TestAnswer, example = json!({"success": true, "delivered": 2})),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
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
    Ok(HttpResponse::Ok().json(TestAnswer { success: true, delivered }))
}
