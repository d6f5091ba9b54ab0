//! Operations endpoints, outside `/v1.0` and without authentication: liveness, readiness
//! (the database answers), Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::odata::json_response;

pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

pub async fn readyz(State(st): State<AppState>) -> Response {
    match st.services.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    match &st.metrics {
        Some(h) => {
            let mut r = (StatusCode::OK, h.render()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            r
        }
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

pub async fn openapi(State(st): State<AppState>) -> Response {
    json_response(StatusCode::OK, (*st.openapi).clone())
}
