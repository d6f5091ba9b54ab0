//! Request ids: every request gets a `request-id` (a new GUID) and keeps the caller's
//! `client-request-id`; both are echoed in headers, in error bodies and on every log line of
//! the request (through the tracing span opened here).

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The ids of the current request, stored in its extensions.
#[derive(Debug, Clone, Default)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: Option<String>,
}

pub async fn assign(mut req: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    let ids = RequestIds { request_id: request_id.clone(), client_request_id: client_request_id.clone() };
    req.extensions_mut().insert(ids);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        client_request_id = client_request_id.as_deref().unwrap_or(""),
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request finished"));
    metrics::histogram!(
        steward_app::metrics::HTTP_REQUEST_DURATION,
        "method" => method_label(&method),
        "status" => status.to_string()
    )
    .record(elapsed.as_secs_f64());
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    if let Some(Ok(v)) = client_request_id.map(|c| HeaderValue::from_str(&c)) {
        h.insert("client-request-id", v);
    }
    resp
}

/// The `method` label: a client may send any extension method, and each would be a new series
/// in the recorder, so only the standard ones are named.
fn method_label(m: &axum::http::Method) -> &'static str {
    const STANDARD: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    STANDARD.into_iter().find(|s| *s == m.as_str()).unwrap_or("other")
}
