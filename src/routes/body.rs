//! Reading a request body by hand, for routes that must not hold memory for strangers
//! (`docs/protocol.md` §6): a cap (413 `payload_too_large`, refused from the `Content-Length`
//! alone when it says so) and a deadline for the whole body (408 `request_timeout`).

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use futures_core::Stream;

use crate::error::{AppError, ErrorCode};

/// How long a whole request body may take to arrive.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

fn too_large(limit: usize) -> AppError {
    AppError::new(ErrorCode::PayloadTooLarge, format!("the body may be at most {limit} bytes"))
}

/// Reads at most `limit` bytes of body within [`BODY_DEADLINE`].
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, AppError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let read = async {
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(chunk) = poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
            let chunk = chunk.map_err(|e| AppError::invalid_message(format!("body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(BODY_DEADLINE, read).await.unwrap_or_else(|_| {
        Err(AppError::new(ErrorCode::RequestTimeout, "the body did not arrive in time"))
    })
}
