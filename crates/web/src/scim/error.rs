//! SCIM's error shape (RFC 7644 §3.12): `{"schemas": [Error], "status": "404", "scimType":
//! …, "detail": …}` with `application/scim+json`, for every error under `/scim/v2`: the use
//! cases' `ScimError`, and, through `scim_errors`, whatever else answered with an error
//! (an unknown path, a wrong method, a body too large, a timeout, a panic).

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_app::StoreError;
use steward_app::scim::{ERROR, ScimError};

/// SCIM's media type.
pub const SCIM_JSON: &str = "application/scim+json";

/// A SCIM error on its way to the client.
#[derive(Debug)]
pub struct ScimErr(pub ScimError);

impl From<ScimError> for ScimErr {
    fn from(e: ScimError) -> Self {
        Self(e)
    }
}

/// A rendered error, marked so `scim_errors` leaves it alone.
#[derive(Debug, Clone, Copy)]
struct Rendered;

/// The response of an error: status, SCIM code, detail.
pub fn error_response(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("schemas".into(), json!([ERROR]));
    body.insert("status".into(), json!(status.as_u16().to_string()));
    if let Some(t) = scim_type {
        body.insert("scimType".into(), json!(t));
    }
    body.insert("detail".into(), json!(detail));
    let body = serde_json::Value::Object(body);
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"steward-scim\""));
    }
    r.extensions_mut().insert(Rendered);
    r
}

impl IntoResponse for ScimErr {
    fn into_response(self) -> Response {
        match self.0 {
            ScimError::Request { status, scim_type, detail } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                error_response(status, scim_type.map(|t| t.as_str()), &detail)
            }
            ScimError::Store(e) => {
                // Logged once here, inside the request's span; the client sees no detail.
                tracing::error!(error = %e, "store failure");
                let status = match e {
                    StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                error_response(status, None, "The service could not complete the request; it has been logged.")
            }
        }
    }
}

/// Renders in SCIM's shape any error response that is not one already: axum's own 404 and
/// 405, a body-size rejection, a timeout, a caught panic.
pub async fn scim_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || resp.extensions().get::<Rendered>().is_some() {
        return resp;
    }
    if status.is_server_error() {
        metrics::counter!("steward_http_server_errors_total").increment(1);
    }
    let (detail, scim_type) = match status {
        StatusCode::NOT_FOUND => ("No SCIM endpoint is at this path.", None),
        StatusCode::METHOD_NOT_ALLOWED => ("This method is not allowed on this SCIM endpoint.", None),
        StatusCode::PAYLOAD_TOO_LARGE => ("The request body is larger than the server accepts.", Some("tooMany")),
        StatusCode::REQUEST_TIMEOUT => ("The request took too long.", None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("Send the body as application/scim+json.", None),
        s if s.is_server_error() => ("The service could not complete the request.", None),
        _ => ("The request is not valid.", Some("invalidSyntax")),
    };
    let (parts, _) = resp.into_parts();
    let mut r = error_response(status, scim_type, detail);
    // Keep the headers others set (Allow on 405), with our body's type and length.
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    r
}
