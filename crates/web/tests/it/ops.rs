//! Operations endpoints, the OpenAPI document, and the headers every response carries.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::app::{ADMIN, EM, TestApp};

#[tokio::test]
async fn health_readiness_and_openapi() {
    let app = TestApp::new().await;
    // no token needed
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        app.send(Method::GET, path, None, &[], Body::empty()).await.expect(StatusCode::OK);
    }
    let r = app.get("/openapi.json").await;
    assert!(r.header("content-type").starts_with("application/json"));
    let doc: serde_json::Value = serde_json::from_str(&r.text).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1.0/identityGovernance/entitlementManagement/catalogs"]["post"].is_object());
    assert!(doc["paths"]["/v1.0/identityGovernance/entitlementManagement/catalogs"]["get"].is_object());
    assert!(doc["paths"]["/v1.0/users/{id}/manager/$ref"]["put"].is_object());
    assert_eq!(doc, steward_web::openapi_document(), "served as generated");
    // metrics are off in this app
    app.get("/metrics").await.expect_error(StatusCode::NOT_FOUND);
    app.assert_no_5xx();
}

/// The API surface changes only on purpose: the document is generated from the route registry
/// and compared with the committed snapshot.
#[test]
fn openapi_snapshot() {
    insta::assert_json_snapshot!("openapi", steward_web::openapi_document());
}

#[tokio::test]
async fn every_response_has_a_request_id_and_echoes_the_client_request_id() {
    let app = TestApp::new().await;
    let cat = app.catalog("Headers").await;
    let json_ct = ("content-type", "application/json");
    // (method, path, token, headers, body)
    type Case<'a> = (Method, String, Option<&'a str>, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case<'_>> = vec![
        (Method::GET, "/healthz".into(), None, vec![], String::new()),
        (Method::GET, "/readyz".into(), None, vec![], String::new()),
        (Method::GET, "/openapi.json".into(), None, vec![], String::new()),
        (Method::GET, format!("{EM}/catalogs"), Some(ADMIN), vec![], String::new()),
        (Method::GET, format!("{EM}/catalogs/{cat}"), Some(ADMIN), vec![], String::new()),
        (Method::GET, format!("{EM}/catalogs/$count"), Some(ADMIN), vec![], String::new()),
        (Method::POST, format!("{EM}/catalogs"), Some(ADMIN), vec![json_ct], json!({"displayName": "h"}).to_string()),
        (
            Method::PATCH,
            format!("{EM}/catalogs/{cat}"),
            Some(ADMIN),
            vec![json_ct],
            json!({"description": "h"}).to_string(),
        ),
        (Method::GET, format!("{EM}/catalogs"), None, vec![], String::new()),
        (Method::GET, format!("{EM}/catalogs/nope"), Some(ADMIN), vec![], String::new()),
        (Method::GET, "/nothing".into(), Some(ADMIN), vec![], String::new()),
        (Method::PUT, format!("{EM}/catalogs"), Some(ADMIN), vec![json_ct], "{}".into()),
        (Method::POST, format!("{EM}/catalogs"), Some(ADMIN), vec![json_ct], "x".repeat(2 << 20)),
        (Method::POST, format!("{EM}/catalogs"), Some(ADMIN), vec![("content-type", "text/plain")], "x".into()),
    ];
    let mut request_ids = HashSet::new();
    for (i, (method, path, token, headers, body)) in cases.into_iter().enumerate() {
        let crid = format!("client-{i}-{}", uuid::Uuid::new_v4());
        let mut h = headers.clone();
        h.push(("client-request-id", &crid));
        let r = app.send(method.clone(), &path, token, &h, body).await;
        let rid = r.header("request-id");
        assert!(uuid::Uuid::parse_str(rid).is_ok(), "{method} {path}: request-id '{rid}' is a GUID");
        assert!(request_ids.insert(rid.to_owned()), "request ids are unique");
        assert_eq!(r.header("client-request-id"), crid, "{method} {path}");
        if r.status.is_client_error() {
            r.graph_error();
        }
    }
    // without a client-request-id, none is invented in the headers, and the error body
    // still carries one (Graph repeats the request id)
    let req = Request::builder().uri(format!("{EM}/catalogs")).body(Body::empty()).unwrap();
    let r = app.request(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("client-request-id").is_none());
    let v = r.json();
    assert_eq!(v["error"]["innerError"]["client-request-id"], v["error"]["innerError"]["request-id"]);
    // an unusable client-request-id (too long) is not echoed, and nothing breaks
    let long = "c".repeat(500);
    let req =
        Request::builder().uri("/healthz").header("client-request-id", long.as_str()).body(Body::empty()).unwrap();
    let r = app.request(req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("client-request-id").is_none());
    app.assert_no_5xx();
}
