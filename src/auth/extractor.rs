//! `Caller`: the REST extractor that authenticates `Authorization: Bearer <token>`.

use futures_core::future::LocalBoxFuture;

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
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let tokens = req.app_data::<web::Data<TokenService>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let tokens =
                tokens.ok_or_else(|| AppError::internal("TokenService is not registered"))?;
            let token = token.ok_or_else(AppError::invalid_token)?;
            // Usually a memory lookup; a rotated identity-provider key costs one JWKS fetch.
            let identity = tokens.verify_fresh(&token).await.map_err(|e| {
                log::debug!("REST {e}");
                AppError::invalid_token()
            })?;
            Ok(Caller(identity))
        })
    }
}
