//! `GET /metrics` (`docs/protocol.md` §10): Prometheus (OpenMetrics) text. Without
//! `--metrics-bind` it is on the main listener for loopback peers only — not through a proxy,
//! so a reverse proxy on the same host does not publish it — and any number of hubs share a
//! machine without a port clash; with an address it has a listener of its own (any peer, see
//! `startup`), and `off` serves it nowhere.

use actix_web::{HttpRequest, HttpResponse, web};

use super::Routes;
use super::health::database_answers;
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::hubs::presence::GetTotals;
use crate::state::AppState;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn configure(routes: &mut Routes<'_>) {
    routes.get("/metrics", on_main_listener);
}

/// Prometheus metrics, OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 403, description = "not a loopback peer, or through a proxy", body = ErrorBody),
        (status = 404, description = "served on its own listener, or off (--metrics-bind)", body = ErrorBody),
    ))]
async fn on_main_listener(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if state.settings.operations.metrics_bind.is_some() {
        return Err(AppError::new(ErrorCode::NotFound, "metrics are not served here"));
    }
    let from_loopback = req.peer_addr().is_some_and(|peer| peer.ip().is_loopback());
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|name| req.headers().contains_key(*name));
    if !from_loopback || proxied {
        let text = "metrics are served to loopback peers only (see --metrics-bind)";
        return Err(AppError::new(ErrorCode::Forbidden, text));
    }
    Ok(scrape(&state).await)
}

/// The scrape: the PresenceHub's totals and the database probe, then every metric.
pub async fn scrape(state: &AppState) -> HttpResponse {
    let totals = state.hubs.presence.send(GetTotals { cluster: false }).await.unwrap_or_default();
    let database = database_answers(state).await;
    let mut stores = vec![("database", database)];
    if let Some(bus) = &state.hubs.bus {
        stores.push(("redis", bus.is_up()));
    }
    let text = state.hubs.metrics.render(totals.connections, totals.users, &stores);
    HttpResponse::Ok().content_type(OPENMETRICS).body(text)
}
