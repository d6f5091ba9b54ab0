//! The API's routes, one module per area; each exposes `api() -> Api`.

pub mod audit;
pub mod chat;
pub mod connected_orgs;
pub mod connections;
pub mod directory;
pub mod em;
pub mod extensions;
pub mod lifecycle;
pub mod ops;
pub mod policies;
pub mod review_history;
pub mod reviews;
pub mod roles;
pub mod test_clock;
pub mod tokens;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::str::FromStr;
use steward_domain::DomainError;

use crate::error::ApiError;

/// Parses a path id into its newtype: a malformed id is a 400 that says what was expected.
pub fn path_id<T: FromStr<Err = DomainError>>(raw: &str) -> Result<T, ApiError> {
    let raw = raw.trim_start_matches("('").trim_end_matches("')");
    raw.parse::<T>().map_err(|e| ApiError::bad_request(e.to_string()))
}

/// 204 No Content.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Actions take no body; tolerate an empty one or `{}`.
pub fn no_body(headers: &HeaderMap, bytes: &Bytes) -> Result<(), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    crate::body::Body::parse(headers, bytes, "action")?.finish()
}
