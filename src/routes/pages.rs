//! The two pages and their assets, compiled into the binary so the hub serves them from any
//! working directory: the customer landing page at `/`, the agent dashboard at `/agent`, and
//! `/static/…`. Plus `GET /api/v1/webrtc/config`, the ICE servers the pages' calls use.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::Routes;
use crate::state::AppState;

/// One embedded file under `static/`: (path it is served at, content type, text).
macro_rules! asset {
    ($served_at:literal, $file:literal, $content_type:expr) => {
        ($served_at, $content_type, include_str!(concat!("../../static/", $file)))
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every embedded file: (path, content type, text). The icon is served at `/favicon.ico` too,
/// where browsers look for it whatever the page declares.
const FILES: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../static/index.html")),
    ("/agent", HTML, include_str!("../../static/agent.html")),
    asset!("/static/css/app.css", "css/app.css", "text/css; charset=utf-8"),
    asset!("/static/icon.svg", "icon.svg", "image/svg+xml"),
    asset!("/favicon.ico", "icon.svg", "image/svg+xml"),
    asset!("/static/js/switchboard.js", "js/switchboard.js", JS),
    asset!("/static/js/call.js", "js/call.js", JS),
    asset!("/static/js/chat.js", "js/chat.js", JS),
    asset!("/static/js/alerts.js", "js/alerts.js", JS),
    asset!("/static/js/phone-calls.js", "js/phone-calls.js", JS),
    asset!("/static/js/customer.js", "js/customer.js", JS),
    asset!("/static/js/agent.js", "js/agent.js", JS),
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
}

/// The one JSON route here: the ICE servers the pages' calls use.
pub fn configure_api(routes: &mut Routes<'_>) {
    routes.get("/api/v1/webrtc/config", webrtc_config);
}

#[derive(Serialize, ToSchema)]
struct WebRtcConfig<'a> {
    /// As `RTCPeerConnection` takes them (`--ice-servers`).
    #[schema(value_type = Vec<Object>)]
    ice_servers: &'a serde_json::Value,
}

/// The ICE servers the pages' calls use.
#[utoipa::path(get, path = "/api/v1/webrtc/config", tag = "calls",
    responses((status = 200, body = WebRtcConfig, example = json!({"ice_servers": [{"urls": "stun:stun.example.com:3478"}]}))))]
async fn webrtc_config(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(WebRtcConfig { ice_servers: &state.settings.calls.ice_servers })
}
