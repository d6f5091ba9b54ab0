//! The `Caller` extractor: `Authorization: Bearer <token>` checked on every API request; and
//! `Admin`, which also requires the global administrator role.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use steward_app::AppError;
use steward_app::auth::{AdminCap, Principal};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated principal of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(
                AppError::Unauthenticated("Access token is empty: send Authorization: Bearer <token>.".into()).into()
            );
        };
        let value = value.to_str().unwrap_or("");
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
            _ => {
                return Err(
                    AppError::Unauthenticated("The Authorization header must be 'Bearer <token>'.".into()).into()
                );
            }
        };
        let p = state.auth.authenticate(&state.services, token).await?;
        tracing::debug!(principal = %p.label(), "authenticated");
        Ok(Caller(p))
    }
}

/// An authenticated global administrator: the principal and the capability its check handed
/// out. Handlers of administrator-only endpoints take it as their first extractor, so a caller
/// without the role is answered 403 before the query options or the body are even read: a
/// malformed request from someone who may not make it at all learns nothing about it.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal, pub AdminCap);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        let cap = p.admin()?;
        Ok(Admin(p, cap))
    }
}
