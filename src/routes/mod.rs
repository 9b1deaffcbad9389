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
mod pages;
mod publish;
mod status;
mod webhooks;

use actix_web::error::JsonPayloadError;
use actix_web::{HttpResponse, web};

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
    .configure(health::configure)
    .configure(metrics::configure)
    .configure(auth::configure)
    .configure(status::configure)
    .configure(publish::configure)
    .configure(calls::configure)
    .configure(chat::configure)
    .configure(webhooks::configure)
    .configure(calendar::configure)
    .configure(functions::configure)
    .configure(pages::configure);
}

/// The answer for any path no route claims.
pub async fn not_found() -> HttpResponse {
    error_body(ErrorCode::NotFound, "no such endpoint")
}
