//! The one place errors become HTTP: `ApiError` carries a status, a Graph error code and a
//! message; the `graph_errors` middleware renders every error response (ours, axum's own 404
//! and 405, a body-size rejection, a panic) in Graph's shape with the request's ids.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_app::AppError;

use crate::request_id::RequestIds;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// OData's `error.details`: `{code, message, target}` objects, when there is more to say.
    pub details: Vec<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Vec::new() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn invalid_model(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidModel", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", message)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(m) => Self::invalid_model(m),
            AppError::Query { code, message } => Self::new(StatusCode::BAD_REQUEST, code, message),
            e @ AppError::NotFound { .. } => Self::not_found(e.to_string()),
            AppError::Conflict(m) => Self::new(StatusCode::CONFLICT, "Conflict", m),
            AppError::Unprocessable(m) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalidRequest", m),
            AppError::PreconditionFailed(m) => Self::new(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", m),
            AppError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "Authorization_RequestDenied", m),
            AppError::Unauthenticated(m) => Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m),
            AppError::ConditionsNotMet { message, unmet, acr_values, max_age } => {
                let mut e = Self::new(StatusCode::FORBIDDEN, "ConditionalRequirementsNotMet", message);
                e.details = unmet
                    .iter()
                    .map(|name| json!({"code": name, "message": format!("{name} is not met"), "target": "conditionalRequirements"}))
                    .collect();
                // Where a browser signs in again to meet what a new sign-in can meet.
                let mut query: Vec<String> = Vec::new();
                if let Some(acr) = acr_values {
                    query.push(format!("acr_values={acr}"));
                }
                if let Some(age) = max_age {
                    query.push(format!("max_age={age}"));
                }
                if !query.is_empty() {
                    e.details.push(json!({"code": "signInAgain", "message": "Sign in again to meet the requirements.",
                        "target": format!("/auth/login?{}", query.join("&"))}));
                }
                e
            }
            AppError::Upstream(m) => Self::new(StatusCode::BAD_GATEWAY, "badGateway", m),
            AppError::Store(e) => {
                // Logged once here, inside the request's span; the client sees no detail.
                tracing::error!(error = %e, "store failure");
                let status = match e {
                    steward_app::StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                Self::new(
                    status,
                    if status == StatusCode::SERVICE_UNAVAILABLE { "serviceNotAvailable" } else { "generalException" },
                    "The service could not complete the request; it has been logged. Try again later.",
                )
            }
        }
    }
}

impl From<steward_domain::DomainError> for ApiError {
    fn from(e: steward_domain::DomainError) -> Self {
        AppError::from(e).into()
    }
}

impl From<steward_odata::ODataError> for ApiError {
    fn from(e: steward_odata::ODataError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.code, e.message)
    }
}

impl IntoResponse for ApiError {
    /// The body is written by `graph_errors`, which knows the request ids.
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.extensions_mut().insert(self);
        r
    }
}

/// What an error response without an `ApiError` (axum's own rejections) gets as code/message.
fn default_for(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("ResourceNotFound", "The requested resource does not exist."),
        StatusCode::METHOD_NOT_ALLOWED => ("MethodNotAllowed", "The HTTP method is not allowed on this resource."),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("RequestEntityTooLarge", "The request body is larger than the server accepts.")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("UnsupportedMediaType", "Send the body as application/json."),
        StatusCode::REQUEST_TIMEOUT => ("RequestTimeout", "The request took too long."),
        s if s.is_server_error() => ("generalException", "The service could not complete the request."),
        _ => ("BadRequest", "The request is not valid."),
    };
    ApiError::new(status, code, message)
}

/// Renders error responses in Graph's shape:
/// `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
pub async fn graph_errors(req: Request, next: Next) -> Response {
    let ids = req.extensions().get::<RequestIds>().cloned().unwrap_or_default();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let err = match parts.extensions.remove::<ApiError>() {
        Some(e) => e,
        None => {
            // A response some layer already rendered as JSON stays as it is.
            let is_json =
                parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if is_json {
                return Response::from_parts(parts, body);
            }
            default_for(status)
        }
    };
    if status.is_server_error() {
        metrics::counter!("steward_http_server_errors_total").increment(1);
    }
    #[allow(clippy::disallowed_methods)] // the error's timestamp is a wire detail, not logic
    let date = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let mut body = json!({
        "error": {
            "code": err.code,
            "message": err.message,
            "innerError": {
                "date": date,
                "request-id": ids.request_id,
                "client-request-id": ids.client_request_id.clone().unwrap_or_else(|| ids.request_id.clone()),
            }
        }
    });
    if !err.details.is_empty()
        && let Some(e) = body.get_mut("error").and_then(serde_json::Value::as_object_mut)
    {
        e.insert("details".into(), serde_json::Value::Array(err.details));
    }
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    if status == StatusCode::UNAUTHORIZED {
        parts.headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"steward\""));
    }
    Response::from_parts(parts, Body::from(body.to_string()))
}
