//! Liveness and readiness probes (`docs/protocol.md` §10).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use super::Routes;
use crate::db;
use crate::state::AppState;

/// Longest a probe waits for the database.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

pub fn configure(routes: &mut Routes<'_>) {
    routes.get("/healthz", healthz);
    routes.get("/readyz", readyz);
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health, example = json!({"status": "ok"}))))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: each store `ok`, `down`, or `off` (not configured).
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ok` or `unavailable`.
    status: &'static str,
    database: &'static str,
    redis: &'static str,
}

/// The process can serve: 200 `{"status":"ok","database":"ok","redis":"off"}`, or 503 with
/// `"status":"unavailable"` and `"down"` for whatever does not answer. Redis is `off` on one
/// node (no `--redis-url`); in a cluster it is `down` while the bus is disconnected (the node
/// still serves its own clients meanwhile).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = Readiness, example = json!({"status": "ok", "database": "ok", "redis": "off"})),
        (status = 503, body = Readiness, example = json!({"status": "unavailable", "database": "ok", "redis": "down"})),
    ))]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = database_answers(&state).await;
    let redis = state.hubs.bus.as_ref().map(crate::cluster::Bus::is_up);
    let word = |up: bool| if up { "ok" } else { "down" };
    let ready = database && redis != Some(false);
    let status = if ready { "ok" } else { "unavailable" };
    let body = Readiness { status, database: word(database), redis: redis.map_or("off", word) };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether the database answers within [`PROBE_DEADLINE`], with our schema in it.
pub(super) async fn database_answers(state: &AppState) -> bool {
    let probe = db::run(
        &state.pool,
        |conn| crate::on_backend!(conn, c => diesel::sql_query("SELECT 1 FROM users LIMIT 1").execute(c)),
    );
    match tokio::time::timeout(PROBE_DEADLINE, probe).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            log::warn!("database probe failed: {e}");
            false
        }
        Err(_) => {
            log::warn!("database probe timed out");
            false
        }
    }
}
