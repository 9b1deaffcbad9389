//! The one error type at the HTTP and WebSocket boundary. Every failure a client can see has a
//! stable snake_case [`ErrorCode`] (`docs/protocol.md` §3); HTTP answers `{"error","message"}` with
//! the code's status, WebSocket answers an `error` frame with the same code. The public message is
//! always safe to show: causes (SQL, I/O) go to the log only.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Every error code of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidToken,
    Forbidden,
    NotFound,
    InvalidMessage,
    RateLimited,
    Internal,
    StorageUnavailable,
    InvalidJson,
    UnknownType,
    NotAMember,
    InvalidCredentials,
    UnknownCompany,
    UserMismatch,
    OriginNotAllowed,
    InvalidSignature,
    ProviderNotConfigured,
    CallAlreadyTaken,
    NotInCall,
    QueueFull,
    PayloadTooLarge,
    RequestTimeout,
}

impl ErrorCode {
    /// The HTTP status a REST answer with this code carries.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidToken | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden | UserMismatch | OriginNotAllowed | NotAMember | InvalidSignature => {
                StatusCode::FORBIDDEN
            }
            NotFound | UnknownCompany | NotInCall => StatusCode::NOT_FOUND,
            InvalidMessage | InvalidJson | UnknownType => StatusCode::BAD_REQUEST,
            RateLimited | QueueFull => StatusCode::TOO_MANY_REQUESTS,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            CallAlreadyTaken => StatusCode::CONFLICT,
            StorageUnavailable | ProviderNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidToken => "invalid_token",
            Forbidden => "forbidden",
            NotFound => "not_found",
            InvalidMessage => "invalid_message",
            RateLimited => "rate_limited",
            Internal => "internal",
            StorageUnavailable => "storage_unavailable",
            InvalidJson => "invalid_json",
            UnknownType => "unknown_type",
            NotAMember => "not_a_member",
            InvalidCredentials => "invalid_credentials",
            UnknownCompany => "unknown_company",
            UserMismatch => "user_mismatch",
            OriginNotAllowed => "origin_not_allowed",
            InvalidSignature => "invalid_signature",
            ProviderNotConfigured => "provider_not_configured",
            CallAlreadyTaken => "call_already_taken",
            NotInCall => "not_in_call",
            QueueFull => "queue_full",
            PayloadTooLarge => "payload_too_large",
            RequestTimeout => "request_timeout",
        }
    }
}

/// `function_error.code`: why a calendar function (`docs/protocol.md` §7) could not run. Part of
/// the wire like [`ErrorCode`], so it lives beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FunctionErrorCode {
    CalendarNotConnected,
    InvalidArguments,
    NotFound,
    CalendarUnavailable,
    UnknownFunction,
}

impl FunctionErrorCode {
    pub fn as_str(self) -> &'static str {
        use FunctionErrorCode::*;
        match self {
            CalendarNotConnected => "calendar_not_connected",
            InvalidArguments => "invalid_arguments",
            NotFound => "not_found",
            CalendarUnavailable => "calendar_unavailable",
            UnknownFunction => "unknown_function",
        }
    }

    /// The HTTP status of `POST /api/v1/functions/{name}` answering this error.
    pub fn status(self) -> StatusCode {
        use FunctionErrorCode::*;
        match self {
            CalendarNotConnected => StatusCode::CONFLICT,
            InvalidArguments => StatusCode::BAD_REQUEST,
            NotFound | UnknownFunction => StatusCode::NOT_FOUND,
            CalendarUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failure with a public code and message, and (for internal failures) a cause for the log.
pub struct AppError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// A status other than the code's usual one (Vapi's `invalid_signature` is a 401).
    status: Option<StatusCode>,
    cause: Option<Cause>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into(), status: None, cause: None }
    }

    /// The same error answered with another HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// 500 `internal`; the cause is logged, never sent.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            status: None,
            cause: Some(cause.into()),
        }
    }

    /// 503 `storage_unavailable`; the cause is logged, never sent.
    pub fn storage(cause: impl Into<Cause>) -> Self {
        Self {
            code: ErrorCode::StorageUnavailable,
            message: "storage is unavailable, try again".into(),
            status: None,
            cause: Some(cause.into()),
        }
    }

    pub fn invalid_token() -> Self {
        Self::new(ErrorCode::InvalidToken, "missing, invalid or expired token")
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorCode::Forbidden, "your role may not do this")
    }

    pub fn not_found(what: &'static str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn invalid_message(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidMessage, message)
    }

    pub fn rate_limited() -> Self {
        Self::new(ErrorCode::RateLimited, "too many requests, slow down")
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        let mut source = self.cause.as_deref().map(|c| c as &dyn std::error::Error);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Every error answer: `{"error","message"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorCode,
    message: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    fn error_response(&self) -> HttpResponse {
        if self.cause.is_some() {
            log::error!("{self:?}");
        }
        HttpResponse::build(self.status_code())
            .json(ErrorBody { error: self.code, message: &self.message })
    }
}

/// The JSON error body for places that build a response by hand (extractor rejections).
pub fn error_body(code: ErrorCode, message: &str) -> HttpResponse {
    HttpResponse::build(code.status()).json(ErrorBody { error: code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [ErrorCode::InvalidToken, ErrorCode::NotAMember, ErrorCode::QueueFull] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let err = AppError::internal(std::io::Error::other("SELECT * FROM users failed"));
        assert_eq!(err.to_string(), "internal error");
        assert!(format!("{err:?}").contains("SELECT"));
    }
}
