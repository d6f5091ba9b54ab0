//! `TestApp`: the router over a fresh SQLite database, and a recorder of every status it gave.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use steward_app::auth::{Authenticator, create_token, local_operator};
use steward_app::{Services, SystemClock};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-secret";
pub const EM: &str = "/v1.0/identityGovernance/entitlementManagement";

pub struct TestApp {
    pub router: Router,
    pub services: Services,
    pub statuses: Arc<Mutex<Vec<(String, StatusCode)>>>,
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
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// Asserts Graph's error shape and returns the error code.
    pub fn graph_error(&self) -> String {
        let ct = self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(ct.starts_with("application/json"), "error content type {ct}: {}", self.text);
        let v = self.json();
        let e = &v["error"];
        assert!(e["code"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
        assert!(e["message"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
        assert!(e["innerError"]["request-id"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
        assert!(e["innerError"]["date"].as_str().is_some(), "{v}");
        e["code"].as_str().unwrap().to_owned()
    }
    pub fn id(&self) -> String {
        self.json()["id"].as_str().unwrap_or_else(|| panic!("no id in {}", self.text)).to_owned()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_public_url(None).await
    }

    pub async fn with_public_url(public_url: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(format!("steward-web-it-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = steward_store::open(&format!("sqlite://{}/t.db", dir.display()), true).await.unwrap();
        let services = Services::new(Arc::new(store), Arc::new(SystemClock));
        let router =
            steward_web::app(services.clone(), Authenticator::new(Some(ADMIN)), public_url.map(str::to_owned), None);
        Self { router, services, statuses: Arc::default(), _dir: TempDir(dir) }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let mut req = Request::builder().method(method.clone()).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        self.statuses.lock().unwrap().push((format!("{method} {path}"), status));
        assert!(headers.contains_key("request-id"), "every response carries request-id");
        Resp { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(ADMIN), &[], Body::empty()).await
    }
    pub async fn get_as(&self, token: &str, path: &str) -> Resp {
        self.send(Method::GET, path, Some(token), &[], Body::empty()).await
    }
    pub async fn json_as(&self, token: &str, method: Method, path: &str, body: &Value) -> Resp {
        self.send(method, path, Some(token), &[("content-type", "application/json")], Body::from(body.to_string()))
            .await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.json_as(ADMIN, Method::POST, path, body).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.json_as(ADMIN, Method::PATCH, path, body).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, Some(ADMIN), &[], Body::empty()).await
    }
    pub async fn raw_post(&self, path: &str, content_type: &str, body: impl Into<Body>) -> Resp {
        self.send(Method::POST, path, Some(ADMIN), &[("content-type", content_type)], body.into()).await
    }

    /// A personal token acting as a new directory user.
    pub async fn user_token(&self) -> String {
        let u = self
            .post("/v1.0/users", &serde_json::json!({"displayName": "Pat", "userPrincipalName": format!("pat{}@x.io", uuid::Uuid::new_v4().simple())}))
            .await;
        assert_eq!(u.status, StatusCode::CREATED, "{}", u.text);
        let id = u.id().parse().unwrap();
        let (_, secret) = create_token(&self.services, local_operator(), "pat", Some(id)).await.unwrap();
        secret.expose().to_owned()
    }

    pub async fn catalog(&self, name: &str) -> String {
        let r = self.post(&format!("{EM}/catalogs"), &serde_json::json!({"displayName": name})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.id()
    }
    pub async fn package(&self, catalog: &str, name: &str) -> String {
        let r = self
            .post(
                &format!("{EM}/accessPackages"),
                &serde_json::json!({"displayName": name, "catalog": {"id": catalog}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.id()
    }
    pub async fn group(&self, name: &str) -> String {
        let r = self.post("/v1.0/groups", &serde_json::json!({"displayName": name})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.id()
    }
    pub async fn add_group(&self, catalog: &str, group: &str) -> Resp {
        self.post(
            &format!("{EM}/resourceRequests"),
            &serde_json::json!({"requestType": "adminAdd", "catalog": {"id": catalog}, "resource": {"originId": group, "originSystem": "AadGroup"}}),
        )
        .await
    }

    /// No response so far was a server error.
    pub fn assert_no_5xx(&self) {
        let bad: Vec<_> = self.statuses.lock().unwrap().iter().filter(|(_, s)| s.is_server_error()).cloned().collect();
        assert!(bad.is_empty(), "5xx responses: {bad:?}");
    }
}
