//! `TestApp`: the router over a fresh SQLite database, and a recorder of every status it gave.
//! Every request goes through `TestApp::request`, which records the status, checks that the
//! response carries a `request-id`, and (unless the caller sent its own) sends a unique
//! `client-request-id` so error bodies can be checked for the echo.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use steward_app::auth::{Authenticator, TokenHolder, create_token, local_operator};
use steward_app::lifecycle::worker::Worker;
use steward_app::ports::ManualClock;
use steward_app::{Services, Store, SystemClock};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-secret";
pub const EM: &str = "/v1.0/identityGovernance/entitlementManagement";
/// A well-formed GUID that names nothing.
/// The secret the portal harness's one-click decision links are signed under.
pub const DECISION_LINK_SECRET: &[u8] = b"decision-link-secret-of-the-tests";
pub const UNKNOWN: &str = "6f1c2d3e-0000-4000-8000-00000000000a";

pub struct TestApp {
    pub router: Router,
    pub services: Services,
    pub statuses: Arc<Mutex<Vec<(String, StatusCode)>>>,
    next_crid: AtomicU64,
    _dir: TempDir,
}

pub struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The `client-request-id` the request carried, if any.
    pub sent_crid: Option<String>,
}

impl Resp {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts Graph's error shape (content type, code, message, innerError with the request's
    /// ids) and returns the error code.
    #[track_caller]
    pub fn graph_error(&self) -> String {
        let ct = self.header("content-type");
        assert!(ct.starts_with("application/json"), "error content type '{ct}': {}", self.text);
        let v = self.json();
        let e = &v["error"];
        assert!(e["code"].as_str().is_some_and(|s| !s.is_empty()), "code: {v}");
        assert!(e["message"].as_str().is_some_and(|s| !s.is_empty()), "message: {v}");
        let inner = &e["innerError"];
        assert!(inner["date"].as_str().is_some_and(|s| !s.is_empty()), "innerError.date: {v}");
        let rid = inner["request-id"].as_str().unwrap_or_default();
        assert!(!rid.is_empty(), "innerError.request-id: {v}");
        assert_eq!(rid, self.header("request-id"), "the body's request-id is the header's");
        if let Some(crid) = &self.sent_crid {
            assert_eq!(inner["client-request-id"].as_str(), Some(crid.as_str()), "client-request-id echoed: {v}");
        }
        e["code"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts the exact status and Graph's error shape; returns the error code.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        self.graph_error()
    }

    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[track_caller]
    pub fn id(&self) -> String {
        self.json()["id"].as_str().unwrap_or_else(|| panic!("no id in {}", self.text)).to_owned()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_public_url(None).await
    }

    pub async fn with_public_url(public_url: Option<&str>) -> Self {
        let (store, dir) = Self::store().await;
        let services = Services::new(store, Arc::new(SystemClock));
        let router =
            steward_web::app(services.clone(), Authenticator::new(Some(ADMIN)), public_url.map(str::to_owned), None);
        Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir }
    }

    /// The app able to build connections (the real connectors) and, when `key` is given (32
    /// bytes in base64), to store their credentials.
    pub async fn with_connections(key: Option<&str>) -> Self {
        let (store, dir) = Self::store().await;
        let sealer =
            key.map(|k| steward_app::secrets::Sealer::from_base64(&secrecy::SecretString::from(k.to_owned())).unwrap());
        let setup =
            steward_app::connections::ConnectionSetup { factory: Some(Arc::new(steward_connectors::Factory)), sealer };
        let services = Services::new(store, Arc::new(SystemClock)).with_connection_setup(setup);
        let router = steward_web::app(services.clone(), Authenticator::new(Some(ADMIN)), None, None);
        Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir }
    }

    /// The app able to build connections, with credentials (and custom extensions' signing
    /// secrets) sealed by `key`, sending custom extension callouts over HTTP, on a manual clock
    /// starting at `start` (returned, to move it).
    pub async fn with_clock_and_connections(start: &str, key: &str) -> (Self, Arc<ManualClock>) {
        let (store, dir) = Self::store().await;
        let clock = Arc::new(ManualClock::new(start.parse().unwrap()));
        let sealer = steward_app::secrets::Sealer::from_base64(&secrecy::SecretString::from(key.to_owned())).unwrap();
        let setup = steward_app::connections::ConnectionSetup {
            factory: Some(Arc::new(steward_connectors::Factory)),
            sealer: Some(sealer),
        };
        let callouts = steward_connectors::callout::HttpCallouts::new().unwrap();
        let services =
            Services::new(store, clock.clone()).with_connection_setup(setup).with_callouts(Arc::new(callouts));
        let router = steward_web::app(services.clone(), Authenticator::new(Some(ADMIN)), None, None);
        let app = Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir };
        (app, clock)
    }

    /// The app accepting the identity provider's access tokens, naming users as `mapping`
    /// says (on the system clock: the provider's tokens carry real times).
    pub async fn with_identity(
        idp: steward_web::identity::IdentityProvider,
        mapping: steward_app::identity::ClaimMapping,
    ) -> Self {
        let (store, dir) = Self::store().await;
        let services = Services::new(store, Arc::new(SystemClock));
        let auth = Authenticator::new(Some(ADMIN)).with_identity_provider(Arc::new(idp), mapping);
        let router = steward_web::app(services.clone(), auth, None, None);
        Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir }
    }

    /// The app with `options` (portal sign-in, trusted proxies, rate limits, …) on `clock`.
    pub async fn with_options(
        auth: Authenticator,
        clock: Arc<dyn steward_app::Clock>,
        public_url: Option<&str>,
        options: steward_web::Options,
    ) -> Self {
        let (store, dir) = Self::store().await;
        let mut services = Services::new(store, clock)
            .with_decision_key(steward_domain::decision_link::LinkKey::derive(DECISION_LINK_SECRET));
        if let Some(url) = public_url {
            services = services.with_public_url(url);
        }
        let router = steward_web::app_with(services.clone(), auth, public_url.map(str::to_owned), None, options);
        Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir }
    }

    /// A directory user with this user principal name, and a personal token acting as them.
    pub async fn person(&self, upn: &str) -> (String, String) {
        let id = self.user("Person", upn).await;
        let (_, secret) =
            create_token(&self.services, local_operator(), "t", TokenHolder::User(id.parse().unwrap()), None)
                .await
                .unwrap();
        (id, secret.expose().to_owned())
    }

    /// The app with SCIM provisioning enabled by `token` (`/scim/v2`), able to build
    /// connections (credentials sealed by `connections::KEY`).
    pub async fn with_scim(token: &str) -> Self {
        let (store, dir) = Self::store().await;
        let key = secrecy::SecretString::from(crate::connections::KEY.to_owned());
        let setup = steward_app::connections::ConnectionSetup {
            factory: Some(Arc::new(steward_connectors::Factory)),
            sealer: Some(steward_app::secrets::Sealer::from_base64(&key).unwrap()),
        };
        let services = Services::new(store, Arc::new(SystemClock)).with_connection_setup(setup);
        let scim = steward_app::scim::ScimAuthenticator::new(Some(&secrecy::SecretString::from(token.to_owned())));
        let options = steward_web::Options { scim, ..Default::default() };
        let router = steward_web::app_with(services.clone(), Authenticator::new(Some(ADMIN)), None, None, options);
        Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir }
    }

    /// The app on a manual clock starting at `start`, with the test-only routes mounted.
    pub async fn with_test_clock(start: &str) -> Self {
        let (store, dir) = Self::store().await;
        let clock = Arc::new(ManualClock::new(start.parse().unwrap()));
        let services = Services::new(store, clock.clone());
        let worker = Worker::new(services.clone(), "web-it");
        let router = steward_web::app_with_test_clock(
            services.clone(),
            Authenticator::new(Some(ADMIN)),
            None,
            None,
            steward_web::TestClock::new(clock, worker),
        );
        Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir }
    }

    /// The app on a manual clock starting at `start`, with the test-only routes, sending
    /// notification email into an in-memory outbox through `mailer`, linking to
    /// `https://steward.test` and signing one-click links with `link_key` (all returned).
    pub async fn with_mail(
        start: &str,
        mailer: Arc<dyn steward_app::mail::Mailer>,
        link_key: &[u8],
        notify: steward_app::notify::Settings,
    ) -> (Self, Arc<ManualClock>) {
        let (store, dir) = Self::store().await;
        let clock = Arc::new(ManualClock::new(start.parse().unwrap()));
        let services = Services::new(store, clock.clone())
            .with_mailer(mailer)
            .with_public_url("https://steward.test")
            .with_decision_key(steward_domain::decision_link::LinkKey::derive(link_key))
            .with_notify_settings(notify);
        (Self::linking_on_test_clock(services, &clock, "web-it-mail", dir), clock)
    }

    /// The app posting to catalogs' chat webhooks over HTTP (their addresses sealed by
    /// `connections::KEY`), sending no mail, linking to `https://steward.test`, on a manual
    /// clock starting at `start` (returned, to move it), with the test-only routes.
    pub async fn with_chat(start: &str) -> (Self, Arc<ManualClock>) {
        let (store, dir) = Self::store().await;
        let clock = Arc::new(ManualClock::new(start.parse().unwrap()));
        let key = secrecy::SecretString::from(crate::connections::KEY.to_owned());
        let setup = steward_app::connections::ConnectionSetup {
            factory: None,
            sealer: Some(steward_app::secrets::Sealer::from_base64(&key).unwrap()),
        };
        let services = Services::new(store, clock.clone())
            .with_connection_setup(setup)
            .with_chat(Arc::new(steward_connectors::callout::HttpCallouts::new().unwrap()))
            .with_public_url("https://steward.test");
        (Self::linking_on_test_clock(services, &clock, "web-it-chat", dir), clock)
    }

    /// The app over `services` linking to `https://steward.test`, with the test-only routes on
    /// `clock` and a worker named `worker`.
    fn linking_on_test_clock(services: Services, clock: &Arc<ManualClock>, worker: &str, dir: TempDir) -> Self {
        let worker = Worker::new(services.clone(), worker);
        let router = steward_web::app_with_test_clock(
            services.clone(),
            Authenticator::new(Some(ADMIN)),
            Some("https://steward.test".to_owned()),
            None,
            steward_web::TestClock::new(clock.clone(), worker),
        );
        Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir }
    }

    /// The app on a manual clock starting at `start` (returned, to move it), with the test-only
    /// routes, metrics rendered by `handle` and read with `token` (either may be absent).
    pub async fn with_metrics(
        start: &str,
        handle: Option<metrics_exporter_prometheus::PrometheusHandle>,
        token: Option<&str>,
    ) -> (Self, Arc<ManualClock>) {
        let (store, dir) = Self::store().await;
        let clock = Arc::new(ManualClock::new(start.parse().unwrap()));
        let services = Services::new(store, clock.clone());
        let worker = Worker::new(services.clone(), "web-it-metrics");
        let token = token.map(|t| secrecy::SecretString::from(t.to_owned()));
        let options = steward_web::Options {
            test_clock: Some(steward_web::TestClock::new(clock.clone(), worker)),
            metrics_token: steward_app::metrics::ScrapeAuthenticator::new(token.as_ref()),
            ..Default::default()
        };
        let router = steward_web::app_with(services.clone(), Authenticator::new(Some(ADMIN)), None, handle, options);
        let app = Self { router, services, statuses: Arc::default(), next_crid: AtomicU64::new(1), _dir: dir };
        (app, clock)
    }

    async fn store() -> (Arc<dyn Store>, TempDir) {
        let dir = std::env::temp_dir().join(format!("steward-web-it-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = steward_store::open(&format!("sqlite://{}/t.db", dir.display()), true).await.unwrap();
        (Arc::new(store), TempDir(dir))
    }

    /// The one place requests are sent: records the status and checks `request-id`.
    pub async fn request(&self, req: Request<Body>) -> Resp {
        let label = format!("{} {}", req.method(), req.uri());
        let sent_crid = req.headers().get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        self.statuses.lock().unwrap().push((label.clone(), status));
        assert!(headers.get("request-id").is_some_and(|v| !v.is_empty()), "no request-id on {label}");
        // Steward echoes ids of up to 128 visible ASCII characters.
        if let Some(c) = sent_crid.as_ref().filter(|c| c.len() <= 128) {
            assert_eq!(headers.get("client-request-id").and_then(|v| v.to_str().ok()), Some(c.as_str()), "{label}");
        }
        Resp { status, headers, text: String::from_utf8_lossy(&bytes).into_owned(), sent_crid }
    }

    /// Sends a request with an optional bearer token, extra headers and a body. Adds a unique
    /// `client-request-id` unless `headers` has one.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("client-request-id")) {
            let n = self.next_crid.fetch_add(1, Ordering::Relaxed);
            req = req.header("client-request-id", format!("it-{n:06}"));
        }
        self.request(req.body(body.into()).unwrap()).await
    }

    /// A JSON call with a bearer token, arriving from `peer` (as the server's listener reports
    /// the TCP peer).
    pub async fn json_from(&self, peer: &str, token: &str, method: Method, path: &str, body: &Value) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer.parse::<std::net::SocketAddr>().unwrap()));
        self.request(req).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(ADMIN), &[], Body::empty()).await
    }
    pub async fn get_as(&self, token: &str, path: &str) -> Resp {
        self.send(Method::GET, path, Some(token), &[], Body::empty()).await
    }
    pub async fn json_as(&self, token: &str, method: Method, path: &str, body: &Value) -> Resp {
        self.send(method, path, Some(token), &[("content-type", "application/json")], body.to_string()).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.json_as(ADMIN, Method::POST, path, body).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.json_as(ADMIN, Method::PATCH, path, body).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.json_as(ADMIN, Method::PUT, path, body).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(ADMIN), &[], Body::empty()).await
    }
    pub async fn raw_post(&self, path: &str, content_type: &str, body: impl Into<Body>) -> Resp {
        self.send(Method::POST, path, Some(ADMIN), &[("content-type", content_type)], body).await
    }

    /// A new directory user and a personal token acting as them.
    pub async fn user_with_token(&self) -> (String, String) {
        let upn = format!("pat{}@x.io", uuid::Uuid::new_v4().simple());
        let id = self.post("/v1.0/users", &json!({"displayName": "Pat", "userPrincipalName": upn})).await;
        let id = id.expect(StatusCode::CREATED).id();
        let (_, secret) =
            create_token(&self.services, local_operator(), "t", TokenHolder::User(id.parse().unwrap()), None)
                .await
                .unwrap();
        (id, secret.expose().to_owned())
    }

    pub async fn catalog(&self, name: &str) -> String {
        self.post(&format!("{EM}/catalogs"), &json!({"displayName": name})).await.expect(StatusCode::CREATED).id()
    }
    pub async fn package(&self, catalog: &str, name: &str) -> String {
        let body = json!({"displayName": name, "catalog": {"id": catalog}});
        self.post(&format!("{EM}/accessPackages"), &body).await.expect(StatusCode::CREATED).id()
    }
    pub async fn group(&self, name: &str) -> String {
        self.post("/v1.0/groups", &json!({"displayName": name})).await.expect(StatusCode::CREATED).id()
    }
    pub async fn user(&self, name: &str, upn: &str) -> String {
        let body = json!({"displayName": name, "userPrincipalName": upn});
        self.post("/v1.0/users", &body).await.expect(StatusCode::CREATED).id()
    }
    /// A new group `group` added to `catalog`, and a new package `package` there granting
    /// membership of it: (group id, package id).
    pub async fn group_package(&self, catalog: &str, group: &str, package: &str) -> (String, String) {
        let group = self.group(group).await;
        self.add_group(catalog, &group).await.expect(StatusCode::CREATED);
        let package = self.package(catalog, package).await;
        self.post(
            &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
            &json!({"role": {"originId": format!("Member_{group}"), "originSystem": "AadGroup"}}),
        )
        .await
        .expect(StatusCode::CREATED);
        (group, package)
    }
    /// `resourceRequests` adminAdd of a group into a catalog.
    pub async fn add_group(&self, catalog: &str, group: &str) -> Resp {
        self.post(
            &format!("{EM}/resourceRequests"),
            &json!({"requestType": "adminAdd", "catalog": {"id": catalog}, "resource": {"originId": group, "originSystem": "AadGroup"}}),
        )
        .await
    }

    /// No response so far was a server error.
    #[track_caller]
    pub fn assert_no_5xx(&self) {
        let statuses = self.statuses.lock().unwrap();
        let bad: Vec<_> = statuses.iter().filter(|(_, s)| s.as_u16() >= 500).collect();
        assert!(bad.is_empty(), "5xx responses among {}: {bad:?}", statuses.len());
    }
}

/// The path and query of an absolute URL (`https://host/v1.0/x?y` → `/v1.0/x?y`).
#[track_caller]
pub fn path_of(link: &str) -> String {
    let rest = link.split_once("://").unwrap_or_else(|| panic!("not absolute: {link}")).1;
    rest[rest.find('/').unwrap()..].to_owned()
}
