//! Steward's HTTP surface: the Graph-compatible API under `/v1.0`, the operations endpoints,
//! and the middleware every request passes (request ids and logs, Graph's error shape, body
//! limits, timeouts, path normalisation). Handlers extract, call a use case, map the result;
//! no SQL and no business rules live here.

pub mod api;
pub mod auth;
pub mod body;
mod console;
pub mod entities;
pub mod error;
pub mod identity;
pub mod odata;
pub mod portal;
pub mod request_id;
pub mod routes;
pub mod scim;
pub mod security;
pub mod session;
pub mod signin;
pub mod views;

pub use routes::test_clock::TestClock;
pub use security::client_ip;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use steward_app::Services;
use steward_app::auth::Authenticator;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

/// The largest request body accepted (Graph bodies are small; this stops abuse).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How long a request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub auth: Authenticator,
    /// The externally visible base URL (scheme://host[:port]) used in `@odata.nextLink`; when
    /// unset, the request's Host header is used.
    pub public_url: Option<String>,
    pub metrics: Option<PrometheusHandle>,
    /// Who may read `/metrics` (the metrics token); off by default.
    pub metrics_access: steward_app::metrics::ScrapeAuthenticator,
    pub openapi: Arc<serde_json::Value>,
    /// Set only when the server runs on a manual clock for tests (`/ops/clock` is mounted).
    pub test_clock: Option<TestClock>,
    /// Trusted proxies, rate limiters, the security headers (see `security`).
    pub security: Arc<security::Security>,
    /// Portal sign-in and sessions (see `signin`).
    pub portal: Arc<signin::Portal>,
}

/// Every API route with its documentation.
pub fn api() -> api::Api {
    api::Api::new()
        .merge(routes::directory::api())
        .merge(routes::em::api())
        .merge(routes::policies::api())
        .merge(routes::lifecycle::api())
        .merge(routes::tokens::api())
        .merge(routes::connections::api())
        .merge(routes::chat::api())
        .merge(routes::extensions::api())
        .merge(routes::connected_orgs::api())
        .merge(routes::roles::api())
        .merge(routes::reviews::api())
        .merge(routes::review_history::api())
        .merge(routes::audit::api())
}

/// The OpenAPI document, generated from the routes themselves.
pub fn openapi_document() -> serde_json::Value {
    let (_, ops) = api().into_parts();
    api::openapi(&ops)
}

/// Builds the whole application.
pub fn app(
    services: Services,
    auth: Authenticator,
    public_url: Option<String>,
    metrics: Option<PrometheusHandle>,
) -> Router {
    app_with(services, auth, public_url, metrics, Options::default())
}

/// What an application may have beyond the Graph API.
#[derive(Clone, Default)]
pub struct Options {
    /// The test-only routes (`/ops/clock`, `/ops/jobs/drain`); see `app_with_test_clock`.
    pub test_clock: Option<TestClock>,
    /// The SCIM client's token checker; disabled (the default), `/scim/v2` answers every
    /// request 401, saying SCIM provisioning is not enabled.
    pub scim: steward_app::scim::ScimAuthenticator,
    /// Portal sign-in through the identity provider (`/auth`) and how long sessions last;
    /// without `sign_in`, `/auth/login` says sign-in is not configured.
    pub portal: signin::Portal,
    /// Trusted proxies, TLS, rate limits.
    pub security: security::SecurityOptions,
    /// The metrics token's checker; disabled (the default), `/metrics` answers 404 saying how
    /// to turn metrics on, whatever recorder handle the application was given.
    pub metrics_token: steward_app::metrics::ScrapeAuthenticator,
}

/// The application with `options`.
pub fn app_with(
    services: Services,
    auth: Authenticator,
    public_url: Option<String>,
    metrics: Option<PrometheusHandle>,
    options: Options,
) -> Router {
    build(services, auth, public_url, metrics, options)
}

/// The application with the test-only routes (`/ops/clock`, `/ops/jobs/drain`) mounted. The
/// services must read the test clock's `ManualClock`. For end-to-end tests only: `steward
/// serve` builds it only behind `--test-clock` and `STEWARD_ALLOW_TEST_CLOCK=1`.
pub fn app_with_test_clock(
    services: Services,
    auth: Authenticator,
    public_url: Option<String>,
    metrics: Option<PrometheusHandle>,
    test_clock: TestClock,
) -> Router {
    build(services, auth, public_url, metrics, Options { test_clock: Some(test_clock), ..Options::default() })
}

fn build(
    services: Services,
    auth: Authenticator,
    public_url: Option<String>,
    metrics: Option<PrometheusHandle>,
    options: Options,
) -> Router {
    let Options { test_clock, scim: scim_auth, portal, security, metrics_token } = options;
    let provider_origin = portal.sign_in.as_ref().and_then(|s| origin(s.provider.issuer()));
    let security = Arc::new(security::Security::new(&security, public_url.as_deref(), provider_origin.as_deref()));
    let scim_state = scim::ScimState { services: services.clone(), auth: scim_auth, public_url: public_url.clone() };
    let (mut api_router, ops) = api().into_parts();
    // Test routes stay out of the registry, so they are never in `/openapi.json`.
    if test_clock.is_some() {
        api_router = api_router.merge(routes::test_clock::router());
    }
    let canon = Arc::new(canonical_segments(ops.iter().map(|o| o.path)));
    let state = AppState {
        services,
        auth,
        public_url,
        metrics,
        metrics_access: metrics_token,
        openapi: Arc::new(api::openapi(&ops)),
        test_clock,
        security: security.clone(),
        portal: Arc::new(portal),
    };
    let sign_in = signin::router(state.clone());
    let my_access = portal::router(state.clone());
    let inner = api_router
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(routes::ops::openapi))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(CatchPanicLayer::new());
    // The outer router only normalises the path, so the inner one routes on canonical paths;
    // request ids and error rendering wrap everything, including the inner router's 404/405.
    let graph = Router::new()
        .fallback_service(inner)
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let canon = canon.clone();
            async move { normalize(req, next, &canon).await }
        }))
        .layer(middleware::from_fn_with_state(
            (security.clone(), security::Dialect::Graph),
            security::limit_failed_auth,
        ))
        .layer(middleware::from_fn(error::graph_errors));
    let scim = scim::router(scim_state, BODY_LIMIT, REQUEST_TIMEOUT).layer(middleware::from_fn_with_state(
        (security.clone(), security::Dialect::Scim),
        security::limit_failed_auth,
    ));
    // SCIM is another protocol, with its own paths, errors and token, and sign-in and the
    // portal (My Access) have their own pages: beside the Graph API, not under its path
    // normalisation or error rendering.
    // Request ids and the security headers wrap everything.
    Router::new()
        .nest(scim::PREFIX, scim)
        .nest(signin::PREFIX, sign_in)
        .merge(my_access)
        .fallback_service(graph)
        .layer(middleware::from_fn_with_state(security.clone(), security::audit_origin))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn_with_state(security, security::headers))
}

/// scheme://host[:port] of an absolute URL (the identity provider's, for the CSP's
/// `form-action`).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().filter(|a| !a.is_empty())?;
    Some(format!("{scheme}://{authority}"))
}

/// Lowercased static segment → its canonical spelling (`accesspackages` → `accessPackages`).
fn canonical_segments<'a>(paths: impl Iterator<Item = &'a str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for p in paths {
        for seg in p.split('/').filter(|s| !s.is_empty() && !s.starts_with('{')) {
            m.insert(seg.to_ascii_lowercase(), seg.to_owned());
        }
    }
    m
}

/// Graph paths are case-insensitive and accept keys as `segment('id')`; route on one form.
async fn normalize(mut req: Request, next: Next, canon: &HashMap<String, String>) -> Response {
    let path = req.uri().path();
    let mut out = String::with_capacity(path.len() + 8);
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        let (name, key) = match seg.find('(') {
            Some(i) if seg.ends_with(')') && !seg.contains("%28") => {
                (seg.get(..i).unwrap_or(seg), seg.get(i + 1..seg.len() - 1))
            }
            _ => (seg, None),
        };
        match canon.get(&name.to_ascii_lowercase()) {
            Some(c) => out.push_str(c),
            None => out.push_str(name),
        }
        // A function call with named parameters (`filterByCurrentUser(on='target')`) stays one
        // segment; only a bare key (`accessPackages('id')`) becomes a path segment.
        if let Some(k) = key.filter(|k| k.contains('=') || k.contains("%3D") || k.contains("%3d")) {
            out.push('(');
            out.push_str(k);
            out.push(')');
        } else if let Some(k) = key {
            let k = k.trim_matches('\'');
            let k = k.strip_prefix("%27").and_then(|k| k.strip_suffix("%27")).unwrap_or(k);
            if !k.is_empty() {
                out.push('/');
                out.push_str(k);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    if out != path {
        let pq = match req.uri().query() {
            Some(q) => format!("{out}?{q}"),
            None => out,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    next.run(req).await
}
