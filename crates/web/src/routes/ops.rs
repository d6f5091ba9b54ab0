//! Operations endpoints, outside `/v1.0` and outside the route registry: liveness, readiness
//! (the database answers) and the OpenAPI document without authentication; Prometheus metrics
//! with their own bearer token (`metrics_token`), and off without one.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use steward_app::AppError;
use steward_app::metrics::ScrapeRefused;

use crate::AppState;
use crate::error::ApiError;
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

/// What `/metrics` answers while no metrics token is configured.
const METRICS_OFF: &str = "Metrics are not enabled on this server: set metrics_token in the configuration (or \
     STEWARD_METRICS_TOKEN) and give Prometheus that token as its bearer token.";

/// The recorder's settings: Steward's histograms as true Prometheus histograms with the buckets
/// of `steward_app::metrics::BUCKETS` (summaries cannot be added up across processes). Render
/// only: no listener of its own, no push gateway (the crate's default features are off).
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    let mut b = PrometheusBuilder::new();
    for (name, buckets) in steward_app::metrics::BUCKETS {
        b = b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    Ok(b)
}

/// Prometheus' text format, for the holder of the metrics token only: 404 while metrics are
/// off, 401 without the token or with another one. The gauges read from the database are set
/// just before rendering.
pub async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim()));
    match st.metrics_access.check(bearer) {
        Ok(()) => {}
        Err(ScrapeRefused::Disabled) => return Err(ApiError::not_found(METRICS_OFF)),
        Err(ScrapeRefused::Missing) => {
            return Err(
                AppError::Unauthenticated("Send the metrics token as Authorization: Bearer <token>.".into()).into()
            );
        }
        Err(ScrapeRefused::Wrong) => {
            return Err(AppError::Unauthenticated("The bearer token is not this server's metrics token.".into()).into());
        }
    }
    // A token without a recorder: the binary did not install one, so there is nothing to show.
    let Some(handle) = &st.metrics else {
        return Err(ApiError::not_found(METRICS_OFF));
    };
    steward_app::metrics::observe_store(&st.services).await?;
    let mut r = (StatusCode::OK, handle.render()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

pub async fn openapi(State(st): State<AppState>) -> Response {
    json_response(StatusCode::OK, (*st.openapi).clone())
}
