//! `Caller`: the REST extractor that authenticates `Authorization: Bearer <token>`.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use super::claims::Identity;
use super::jwt::TokenService;
use crate::error::AppError;
use crate::user::Role;

/// An authenticated REST caller. Missing or invalid token → 401 `invalid_token`.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl Caller {
    /// 403 `forbidden` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Identity, AppError> {
        if roles.contains(&self.0.role()) { Ok(&self.0) } else { Err(AppError::forbidden()) }
    }
}

/// The token of an `Authorization: Bearer` header, if there is one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequest for Caller {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(tokens) = req.app_data::<web::Data<TokenService>>() else {
            return ready(Err(AppError::internal("TokenService is not registered")));
        };
        let result = bearer_token(req)
            .ok_or_else(AppError::invalid_token)
            .and_then(|token| {
                tokens.verify(token).map_err(|e| {
                    log::debug!("REST {e}");
                    AppError::invalid_token()
                })
            })
            .map(Caller);
        ready(result)
    }
}
