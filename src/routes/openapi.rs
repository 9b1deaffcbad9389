//! `GET /api/v1/openapi.json` (`docs/protocol.md` §10): the OpenAPI 3.1 description of every
//! REST route, derived by utoipa from each handler's `#[utoipa::path]` and from the request and
//! answer types the handlers really use. A test compares it with the route table
//! ([`super::table`]) both ways and checks every example against its schema.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{Routes, auth, calendar, calls, chat, functions, health, metrics, pages, publish};
use super::{status, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard", description = "REST API of the Switchboard realtime hub. \
        The WebSocket protocol is in docs/protocol.md §4."),
    paths(
        health::healthz, health::readyz, metrics::on_main_listener, description,
        auth::login, auth::guest, auth::refresh, auth::me,
        status::ws_status, status::ws_clients, status::ws_test, publish::publish,
        calls::register, calls::list, calls::read, calls::update_status, pages::webrtc_config,
        chat::inbox, chat::history, chat::post_message, chat::mark_read,
        webhooks::twilio_status, webhooks::vapi_message,
        calendar::connect, calendar::callback, calendar::status, calendar::disconnect,
        functions::run_function,
    ),
    modifiers(&BearerTokens),
    tags(
        (name = "auth", description = "tokens (docs/protocol.md §2)"),
        (name = "status", description = "connections and server-side publishing (§5)"),
        (name = "calls", description = "calls (§6)"),
        (name = "webhooks", description = "telephony providers (§6)"),
        (name = "calendar", description = "the calendar tool (§7, §11)"),
        (name = "chat", description = "chat (§8)"),
        (name = "operations", description = "probes, metrics, this description (§10)"),
    )
)]
pub struct ApiDoc;

/// Tokens travel as `Authorization: Bearer <JWT>`.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

pub fn configure(routes: &mut Routes<'_>) {
    routes.get("/api/v1/openapi.json", description);
}

/// The description as JSON, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| panic!("the description serializes: {e}"))
    })
}

/// This description.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
async fn description() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}
