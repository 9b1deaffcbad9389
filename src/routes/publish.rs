//! Server-side publishing into a room or to one user (`docs/protocol.md` §5).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::Routes;
use crate::auth::{Caller, Role};
use crate::error::{AppError, ErrorBody};
use crate::hubs::presence::DeliverToUser;
use crate::hubs::rooms::PublishToRoom;
use crate::ids::{RoomName, UserId};
use crate::protocol::{ServerMessage, encode};
use crate::state::AppState;

pub fn configure(routes: &mut Routes<'_>) {
    routes.post("/api/v1/publish", publish);
}

/// Exactly one of `room` and `user_id`.
#[derive(Deserialize, ToSchema)]
struct PublishRequest {
    room: Option<String>,
    user_id: Option<String>,
    /// Any JSON, delivered unchanged.
    #[schema(value_type = Object)]
    data: Value,
}

#[derive(Serialize, ToSchema)]
struct PublishAnswer {
    /// Connections reached.
    delivered: usize,
}

/// `room_message` to every member of a room, or `server_message` to one user's connections.
#[utoipa::path(post, path = "/api/v1/publish", tag = "status", security(("bearer" = [])),
    request_body(content = PublishRequest, example = json!({"room": "sales", "data": {"text": "New lead"}})),
    responses(
        (status = 200, body = PublishAnswer, example = json!({"delivered": 3})),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "not an admin or service", body = ErrorBody),
    ))]
async fn publish(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<PublishRequest>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.require(&[Role::Admin, Role::Service])?;
    let PublishRequest { room, user_id, data } = body.into_inner();
    let company = identity.company.clone();
    let from = identity.user.clone();
    let delivered = match (room, user_id) {
        (Some(room), None) => {
            let room = RoomName::parse(&room).ok_or_else(|| {
                AppError::invalid_message("room must be 1-64 characters of A-Z a-z 0-9 _ . : -")
            })?;
            state.hubs.rooms.send(PublishToRoom { company, room, from, data }).await
        }
        (None, Some(user_id)) => {
            let user_id = UserId::parse(&user_id)
                .ok_or_else(|| AppError::invalid_message("user_id must be a user id"))?;
            let frame = encode(&ServerMessage::ServerMessage { data: &data, from: &from });
            state
                .hubs
                .presence
                .send(DeliverToUser { company, user_id, except_conn: None, frame })
                .await
        }
        _ => {
            return Err(AppError::invalid_message("give exactly one of \"room\" or \"user_id\""));
        }
    }
    .map_err(|e| AppError::internal(format!("hub unavailable: {e}")))?;
    Ok(HttpResponse::Ok().json(PublishAnswer { delivered }))
}
