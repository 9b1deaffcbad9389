//! The two pages and their assets, compiled into the binary so the hub serves them from any
//! working directory: the customer landing page at `/`, the agent dashboard at `/agent`, and
//! `/static/…`. Plus `GET /api/v1/webrtc/config`, the ICE servers the pages' calls use.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// Every embedded file: (path, content type, bytes).
const FILES: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("../../static/index.html")),
    ("/agent", "text/html; charset=utf-8", include_str!("../../static/agent.html")),
    ("/static/css/app.css", "text/css; charset=utf-8", include_str!("../../static/css/app.css")),
    (
        "/static/js/switchboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/js/switchboard.js"),
    ),
    (
        "/static/js/call.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/js/call.js"),
    ),
    (
        "/static/js/chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/js/chat.js"),
    ),
    (
        "/static/js/customer.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/js/customer.js"),
    ),
    (
        "/static/js/agent.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/js/agent.js"),
    ),
];

/// A strict policy: our own scripts and styles only, media and WebSockets to ourselves.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, content_type, body) in FILES {
        cfg.route(
            path,
            web::get().to(move || async move {
                HttpResponse::Ok()
                    .insert_header((header::CONTENT_TYPE, *content_type))
                    .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
                    .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .insert_header((header::REFERRER_POLICY, "no-referrer"))
                    .insert_header((header::CACHE_CONTROL, "no-cache"))
                    .body(*body)
            }),
        );
    }
    cfg.route("/api/v1/webrtc/config", web::get().to(webrtc_config));
}

async fn webrtc_config(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "ice_servers": state.settings.calls.ice_servers }))
}
