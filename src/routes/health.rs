//! Liveness and readiness probes (`docs/protocol.md` §10).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;
use serde_json::json;

use crate::db;
use crate::state::AppState;

/// Longest a probe waits for the database.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz)).route("/readyz", web::get().to(readyz));
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The process can serve: 200 `{"status":"ok","database":"ok","redis":"off"}`, or 503 with
/// `"status":"unavailable"` and `"down"` for whatever does not answer. Redis is `off` until a
/// cluster is configured.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = database_answers(&state).await;
    let word = |up: bool| if up { "ok" } else { "down" };
    let body = json!({"status": if database { "ok" } else { "unavailable" },
        "database": word(database), "redis": "off"});
    if database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Whether the database answers within [`PROBE_DEADLINE`], with our schema in it.
pub(super) async fn database_answers(state: &AppState) -> bool {
    let probe =
        db::run(&state.pool, |conn| diesel::sql_query("SELECT 1 FROM users LIMIT 1").execute(conn));
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
