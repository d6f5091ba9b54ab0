//! Bad input of every kind answers the right 4xx in Graph's error shape, changes nothing, and
//! never a 5xx.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::app::{ADMIN, EM, TestApp};

#[tokio::test]
async fn bad_input_answers_graph_errors_and_never_5xx() {
    let app = TestApp::new().await;
    let cat = app.catalog("Sales").await;
    let pkg = app.package(&cat, "Toolkit").await;
    let catalogs = format!("{EM}/catalogs");
    let packages = format!("{EM}/accessPackages");

    // malformed JSON, wrong JSON types, wrong shapes
    let r = app.raw_post(&catalogs, "application/json", "{\"displayName\": ").await;
    assert_eq!((r.status, r.graph_error().as_str()), (StatusCode::BAD_REQUEST, "BadRequest"), "{}", r.text);
    for body in
        [json!({"displayName": 5}), json!({"displayName": "x", "isExternallyVisible": "yes"}), json!(["x"]), json!("x")]
    {
        let r = app.post(&catalogs, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.graph_error(), "InvalidModel");
    }
    let r = app.post(&packages, &json!({"displayName": "x", "catalog": {"id": cat}, "isHidden": "yes"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("isHidden"), "{}", r.text);
    let r = app.post(&catalogs, &json!({"displayName": "x", "colour": "red"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("colour"), "names the unknown property: {}", r.text);
    let r = app.post(&catalogs, &json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "displayName is required");
    let r = app.post(&packages, &json!({"displayName": "no catalog"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "catalog is required");

    // @odata.type: unknown or wrong → 400; with or without '#' → accepted
    let r = app.post(&catalogs, &json!({"@odata.type": "#microsoft.graph.user", "displayName": "x"})).await;
    assert_eq!((r.status, r.graph_error().as_str()), (StatusCode::BAD_REQUEST, "InvalidModel"));
    let r = app.post(&catalogs, &json!({"@odata.type": "#microsoft.graph.noSuchType", "displayName": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.post(&catalogs, &json!({"@odata.type": 7, "displayName": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for t in ["#microsoft.graph.accessPackageCatalog", "microsoft.graph.accessPackageCatalog"] {
        let r = app.post(&catalogs, &json!({"@odata.type": t, "displayName": format!("typed {t}")})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{t}: {}", r.text);
    }
    // a $ref body without @odata.id, or pointing at the wrong collection
    let refs = format!("{packages}/{pkg}/incompatibleAccessPackages/$ref");
    let r = app.post(&refs, &json!({"id": pkg})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.post(&refs, &json!({"@odata.id": "https://x/v1.0/groups/6f1c2d3e-0000-4000-8000-00000000000a"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // displayName length: 256 is fine, 257 is not
    let r = app.post(&catalogs, &json!({"displayName": "n".repeat(256)})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.post(&catalogs, &json!({"displayName": "n".repeat(257)})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("257"), "{}", r.text);
    let r = app.patch(&format!("{packages}/{pkg}"), &json!({"displayName": "n".repeat(300)})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // query options
    for (q, code) in [
        ("$filter=displayName%20eq", "InvalidFilter"),
        ("$filter=(displayName%20eq%20'b'", "InvalidFilter"),
        ("$filter=displayName%20eq%20'x'%20and", "InvalidFilter"),
        ("$filter=colour%20eq%20'red'", "InvalidFilter"),
        ("$filter=isHidden%20eq%20'yes'", "InvalidFilter"),
        ("$filter=catalog/id%20eq%20'not-a-guid'", "InvalidFilter"),
        ("$top=0", "BadRequest"),
        ("$top=-1", "BadRequest"),
        ("$top=100000", "BadRequest"),
        ("$top=abc", "BadRequest"),
        ("$skip=-3", "BadRequest"),
        ("$count=maybe", "BadRequest"),
        ("$foo=1", "BadRequest"),
        ("$orderby=nope", "BadRequest"),
        ("$orderby=displayName%20sideways", "BadRequest"),
        ("$select=nope", "BadRequest"),
        ("$expand=nope", "BadRequest"),
        ("$skiptoken=garbage!!", "BadRequest"),
    ] {
        let r = app.get(&format!("{packages}?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text);
        assert_eq!(r.graph_error(), code, "{q}");
    }
    let r = app.get(&format!("{packages}?$filter=colour%20eq%20'red'")).await;
    assert!(r.text.contains("colour"), "names the unknown property: {}", r.text);

    // ids: malformed → 400, unknown → 404
    for path in [format!("{catalogs}/not-a-guid"), format!("{packages}/123"), "/v1.0/groups/x".into()] {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        r.graph_error();
    }
    let unknown = "6f1c2d3e-0000-4000-8000-00000000000a";
    for path in [format!("{catalogs}/{unknown}"), format!("{packages}/{unknown}"), format!("/v1.0/users/{unknown}")] {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        r.graph_error();
    }
    let r = app.post(&packages, &json!({"displayName": "orphan", "catalog": {"id": unknown}})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // authentication
    let r = app.send(Method::GET, &catalogs, None, &[("client-request-id", "cr-1")], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("www-authenticate").is_some());
    r.graph_error();
    assert_eq!(r.json()["error"]["innerError"]["client-request-id"], "cr-1");
    assert_eq!(r.headers.get("client-request-id").unwrap(), "cr-1");
    let r = app.get_as("wrong-token", &catalogs).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.graph_error();
    let r = app.send(Method::GET, &catalogs, None, &[("authorization", "Basic eDp5")], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // transport: media type, size, route, method
    let r = app.raw_post(&catalogs, "text/plain", "displayName=x").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    r.graph_error();
    let big = json!({"displayName": "big", "description": "x".repeat(2 * 1024 * 1024)}).to_string();
    let r = app.raw_post(&catalogs, "application/json", big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    r.graph_error();
    let r = app.get("/v1.0/nothingHere").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.graph_error();
    let r = app.json_as(ADMIN, Method::PUT, &catalogs, &json!({})).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    r.graph_error();

    // rules
    let r = app.delete(&format!("{catalogs}/{cat}")).await;
    assert_eq!((r.status, r.graph_error().as_str()), (StatusCode::CONFLICT, "Conflict"));
    assert_eq!(app.get(&format!("{catalogs}/{cat}")).await.status, StatusCode::OK, "the catalog is still there");
    let g = app.group("Crm").await;
    assert_eq!(app.add_group(&cat, &g).await.status, StatusCode::CREATED);
    let r = app.add_group(&cat, &g).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let other = app.catalog("Other").await;
    let r = app
        .post(
            &format!("{packages}/{pkg}/resourceRoleScopes"),
            &json!({"role": {"originId": format!("Member_{g}"), "originSystem": "AadGroup"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let other_pkg = app.package(&other, "Elsewhere").await;
    let r = app
        .post(
            &format!("{packages}/{other_pkg}/resourceRoleScopes"),
            &json!({"role": {"originId": format!("Member_{g}"), "originSystem": "AadGroup"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a role from another catalog: {}", r.text);
    let r = app.post(&refs, &json!({"@odata.id": format!("https://x/v1.0/identityGovernance/entitlementManagement/accessPackages/{pkg}")})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "incompatible with itself");
    r.graph_error();
    let r = app
        .post(
            &format!("{EM}/resourceRequests"),
            &json!({"requestType": "userAdd", "catalog": {"id": cat}, "resource": {"originId": g}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post(&format!("{EM}/resourceRequests"), &json!({"requestType": "adminAdd", "catalog": {"id": cat}, "resource": {"originId": g, "originSystem": "SharePointOnline"}}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // enums: case-insensitive in, camelCase out; unknown members refused
    let r = app.post(&catalogs, &json!({"displayName": "Enum", "state": "UNPUBLISHED"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["state"], "unpublished");
    let r = app.post(&catalogs, &json!({"displayName": "Enum", "state": "sideways"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("published"), "lists the allowed values: {}", r.text);

    // If-Match: a stale tag answers 412 and changes nothing
    let r = app.get(&format!("{packages}/{pkg}")).await;
    let etag = r.headers.get("etag").unwrap().to_str().unwrap().to_owned();
    assert_eq!(r.json()["@odata.etag"], etag.as_str());
    let r = app
        .send(
            Method::PATCH,
            &format!("{packages}/{pkg}"),
            Some(ADMIN),
            &[("content-type", "application/json"), ("if-match", "W/\"1\"")],
            Body::from(r#"{"description":"stale"}"#),
        )
        .await;
    assert_eq!((r.status, r.graph_error().as_str()), (StatusCode::PRECONDITION_FAILED, "PreconditionFailed"));
    let r = app
        .send(
            Method::PATCH,
            &format!("{packages}/{pkg}"),
            Some(ADMIN),
            &[("content-type", "application/json"), ("if-match", &etag)],
            Body::from(r#"{"description":"fresh"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .send(Method::DELETE, &format!("{packages}/{pkg}"), Some(ADMIN), &[("if-match", &etag)], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "the tag changed with the update");
    let now = app.get(&format!("{packages}/{pkg}")).await.json();
    assert_eq!(now["description"], "fresh");

    app.assert_no_5xx();
}

#[tokio::test]
async fn personal_tokens_read_the_directory_but_cannot_administer() {
    let app = TestApp::new().await;
    let cat = app.catalog("Sales").await;
    let pkg = app.package(&cat, "Toolkit").await;
    let g = app.group("Sales team").await;
    let user = app.user_token().await;

    assert_eq!(app.get_as(&user, "/v1.0/users").await.status, StatusCode::OK);
    assert_eq!(app.get_as(&user, "/v1.0/groups").await.status, StatusCode::OK);
    assert_eq!(app.get_as(&user, &format!("/v1.0/groups/{g}/members")).await.status, StatusCode::OK);
    let denied = [
        (Method::GET, format!("{EM}/catalogs"), json!(null)),
        (Method::GET, format!("{EM}/accessPackages/{pkg}"), json!(null)),
        (Method::POST, format!("{EM}/catalogs"), json!({"displayName": "mine"})),
        (Method::POST, format!("{EM}/accessPackages"), json!({"displayName": "mine", "catalog": {"id": cat}})),
        (Method::PATCH, format!("{EM}/accessPackages/{pkg}"), json!({"description": "mine"})),
        (Method::DELETE, format!("{EM}/accessPackages/{pkg}"), json!(null)),
        (
            Method::POST,
            format!("{EM}/resourceRequests"),
            json!({"requestType": "adminAdd", "catalog": {"id": cat}, "resource": {"originId": g}}),
        ),
        (Method::POST, "/v1.0/users".into(), json!({"displayName": "x", "userPrincipalName": "x@x.io"})),
        (Method::POST, "/v1.0/groups".into(), json!({"displayName": "x"})),
        (
            Method::POST,
            format!("/v1.0/groups/{g}/members/$ref"),
            json!({"@odata.id": "https://x/v1.0/users/6f1c2d3e-0000-4000-8000-00000000000a"}),
        ),
        (Method::GET, "/v1.0/steward/apiTokens".into(), json!(null)),
        (Method::POST, "/v1.0/steward/apiTokens".into(), json!({"displayName": "escalate"})),
    ];
    for (method, path, body) in denied {
        let r = if body.is_null() {
            app.send(method.clone(), &path, Some(&user), &[], Body::empty()).await
        } else {
            app.json_as(&user, method.clone(), &path, &body).await
        };
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.text);
        r.graph_error();
    }
    // nothing changed
    let p = app.get(&format!("{EM}/accessPackages/{pkg}")).await.json();
    assert_eq!(p["description"], serde_json::Value::Null);
    assert_eq!(app.get(&format!("{EM}/catalogs/$count")).await.text, "1");

    // administrators create tokens over the API; the secret is shown once and works
    let r = app.post("/v1.0/steward/apiTokens", &json!({"displayName": "automation"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let secret = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_as(&secret, &format!("{EM}/catalogs")).await.status, StatusCode::OK);
    let listed = app.get("/v1.0/steward/apiTokens").await;
    assert!(!listed.text.contains(&secret), "secrets are never listed");
    let id = r.id();
    assert_eq!(app.delete(&format!("/v1.0/steward/apiTokens/{id}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get_as(&secret, &format!("{EM}/catalogs")).await.status, StatusCode::UNAUTHORIZED, "revoked");
    app.assert_no_5xx();
}
