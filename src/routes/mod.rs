//! REST handlers by area. Each handler parses its input, checks the caller's role, and calls a
//! hub or the database; errors go through [`AppError`] so every answer has the contract's shape.

mod auth;
mod body;
mod calendar;
mod calls;
mod chat;
mod functions;
mod health;
pub mod metrics;
pub mod openapi;
mod pages;
mod publish;
mod status;
mod webhooks;

use actix_web::error::JsonPayloadError;
use actix_web::http::Method;
use actix_web::{App, FromRequest, Handler, HttpResponse, Responder, web};

use crate::error::{AppError, ErrorCode, error_body};

/// Largest JSON body a REST endpoint accepts.
pub(crate) const MAX_JSON_BODY: usize = 64 * 1024;

/// Registers every REST route, the JSON error handlers, and the JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(MAX_JSON_BODY).error_handler(
        |err, _| match err {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                let text = format!("the body may be at most {MAX_JSON_BODY} bytes");
                AppError::new(ErrorCode::PayloadTooLarge, text).into()
            }
            err => AppError::invalid_message(format!("invalid JSON body: {err}")).into(),
        },
    ))
    .app_data(
        web::PathConfig::default()
            .error_handler(|err, _| AppError::invalid_message(err.to_string()).into()),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|err, _| AppError::invalid_message(err.to_string()).into()),
    )
    .configure(|cfg| register(&mut Routes { cfg, table: &mut Vec::new() }))
    .configure(pages::configure);
}

/// Every REST route, each module's in turn.
fn register(routes: &mut Routes<'_>) {
    health::configure(routes);
    metrics::configure(routes);
    auth::configure(routes);
    status::configure(routes);
    publish::configure(routes);
    calls::configure(routes);
    chat::configure(routes);
    webhooks::configure(routes);
    calendar::configure(routes);
    functions::configure(routes);
    pages::configure_api(routes);
    openapi::configure(routes);
}

/// Registers REST routes on actix and remembers each one's method and path: the table the
/// OpenAPI test compares with the description, so no REST route is served undescribed. (The
/// pages' static files and the WebSocket upgrades are registered apart: they are not REST.)
pub struct Routes<'a> {
    cfg: &'a mut web::ServiceConfig,
    table: &'a mut Vec<(Method, &'static str)>,
}

impl Routes<'_> {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.table.push((method.clone(), path));
        self.cfg.route(path, web::method(method).to(handler));
    }

    pub fn get<F, Args>(&mut self, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, path, handler);
    }

    pub fn post<F, Args>(&mut self, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::POST, path, handler);
    }

    pub fn delete<F, Args>(&mut self, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::DELETE, path, handler);
    }
}

/// Every REST route as registered: (method, path).
pub fn table() -> Vec<(Method, &'static str)> {
    let mut table = Vec::new();
    let _app = App::new().configure(|cfg| register(&mut Routes { cfg, table: &mut table }));
    table
}

/// The answer for any path no route claims.
pub async fn not_found() -> HttpResponse {
    error_body(ErrorCode::NotFound, "no such endpoint")
}
