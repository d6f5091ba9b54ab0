//! Authorization: a personal (non-administrator) token reads the directory and nothing else;
//! the bootstrap administrator does everything.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{ADMIN, EM, TestApp};

#[tokio::test]
async fn personal_tokens_read_the_directory_and_only_the_admin_administers() {
    let app = TestApp::new().await;
    let cat = app.catalog("Sales").await;
    let empty_cat = app.catalog("Empty").await;
    let pkg = app.package(&cat, "Toolkit").await;
    let pkg2 = app.package(&cat, "Other").await;
    let spare = app.package(&cat, "Spare").await;
    let g = app.group("Sales team").await;
    let (me, user) = app.user_with_token().await;
    let someone = app.user("Someone", "someone@x.io").await;

    // what every signed-in principal may read
    for path in [
        "/v1.0/users".to_owned(),
        "/v1.0/groups".to_owned(),
        "/v1.0/users/$count".to_owned(),
        format!("/v1.0/users/{me}"),
        format!("/v1.0/users/{someone}/directReports"),
        format!("/v1.0/groups/{g}"),
        format!("/v1.0/groups/{g}/members"),
    ] {
        app.get_as(&user, &path).await.expect(StatusCode::OK);
    }
    let users = app.get_as(&user, "/v1.0/users").await.json();
    assert_eq!(users["value"].as_array().unwrap().len(), 2);

    let pkg_ref = |id: &str| json!({"@odata.id": format!("https://x/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}")});
    // (method, path, body, what the administrator gets); in an order the administrator can replay
    let calls: Vec<(Method, String, Value, StatusCode)> = vec![
        (Method::GET, format!("{EM}/catalogs"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/catalogs/$count"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/catalogs/{cat}"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/catalogs/{cat}/resources"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/catalogs/{cat}/accessPackages"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/accessPackages"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/accessPackages/{pkg}"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/accessPackages/{pkg}/resourceRoleScopes"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/accessPackages/{pkg}/incompatibleAccessPackages"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/accessPackages/{pkg}/incompatibleGroups"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/resourceRequests"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/resources"), Value::Null, StatusCode::OK),
        (Method::GET, format!("{EM}/assignmentPolicies"), Value::Null, StatusCode::OK),
        (Method::POST, format!("{EM}/catalogs"), json!({"displayName": "mine"}), StatusCode::CREATED),
        (Method::PATCH, format!("{EM}/catalogs/{cat}"), json!({"description": "d"}), StatusCode::NO_CONTENT),
        (
            Method::POST,
            format!("{EM}/accessPackages"),
            json!({"displayName": "mine", "catalog": {"id": cat}}),
            StatusCode::CREATED,
        ),
        (Method::PATCH, format!("{EM}/accessPackages/{pkg}"), json!({"description": "d"}), StatusCode::NO_CONTENT),
        (
            Method::POST,
            format!("{EM}/resourceRequests"),
            json!({"requestType": "adminAdd", "catalog": {"id": cat}, "resource": {"originId": g, "originSystem": "AadGroup"}}),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            format!("{EM}/accessPackages/{pkg}/resourceRoleScopes"),
            json!({"role": {"originId": format!("Member_{g}"), "originSystem": "AadGroup"}}),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            format!("{EM}/accessPackages/{pkg}/incompatibleAccessPackages/$ref"),
            pkg_ref(&pkg2),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            format!("{EM}/accessPackages/{pkg}/incompatibleGroups/$ref"),
            json!({"@odata.id": format!("https://x/v1.0/groups/{g}")}),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::DELETE,
            format!("{EM}/accessPackages/{pkg}/incompatibleAccessPackages/{pkg2}/$ref"),
            Value::Null,
            StatusCode::NO_CONTENT,
        ),
        (Method::DELETE, format!("{EM}/accessPackages/{spare}"), Value::Null, StatusCode::NO_CONTENT),
        (Method::DELETE, format!("{EM}/catalogs/{empty_cat}"), Value::Null, StatusCode::NO_CONTENT),
        (
            Method::POST,
            "/v1.0/users".into(),
            json!({"displayName": "x", "userPrincipalName": "x@x.io"}),
            StatusCode::CREATED,
        ),
        (Method::PATCH, format!("/v1.0/users/{someone}"), json!({"jobTitle": "Boss"}), StatusCode::NO_CONTENT),
        (Method::PATCH, format!("/v1.0/users/{me}"), json!({"jobTitle": "Self-promoted"}), StatusCode::NO_CONTENT),
        (
            Method::PUT,
            format!("/v1.0/users/{me}/manager/$ref"),
            json!({"@odata.id": format!("https://x/v1.0/users/{someone}")}),
            StatusCode::NO_CONTENT,
        ),
        (Method::POST, "/v1.0/groups".into(), json!({"displayName": "x"}), StatusCode::CREATED),
        (
            Method::POST,
            format!("/v1.0/groups/{g}/members/$ref"),
            json!({"@odata.id": format!("https://x/v1.0/users/{me}")}),
            StatusCode::NO_CONTENT,
        ),
        (Method::GET, "/v1.0/steward/apiTokens".into(), Value::Null, StatusCode::OK),
        (Method::POST, "/v1.0/steward/apiTokens".into(), json!({"displayName": "escalate"}), StatusCode::CREATED),
    ];
    for (method, path, body, _) in &calls {
        let r = send(&app, &user, method, path, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "user: {method} {path}: {}", r.text);
        r.graph_error();
    }
    // nothing changed
    let p = app.get(&format!("{EM}/accessPackages/{pkg}")).await.json();
    assert_eq!(p["description"], Value::Null);
    assert_eq!(app.get(&format!("{EM}/catalogs/$count")).await.text, "2");
    assert_eq!(app.get("/v1.0/users/$count").await.text, "2");
    assert_eq!(app.get(&format!("/v1.0/users/{me}")).await.json()["jobTitle"], Value::Null);
    assert_eq!(app.get(&format!("/v1.0/groups/{g}/members")).await.json()["value"], json!([]));
    assert_eq!(app.get(&format!("{EM}/catalogs/{cat}/resources")).await.json()["value"], json!([]));

    // the bootstrap administrator can do all of it
    for (method, path, body, want) in &calls {
        let r = send(&app, ADMIN, method, path, body).await;
        assert_eq!(r.status, *want, "admin: {method} {path}: {}", r.text);
    }
    assert_eq!(app.get(&format!("/v1.0/users/{me}/manager")).await.json()["id"], someone.as_str());

    // the personal token keeps reading what it may, now seeing the changes
    let members = app.get_as(&user, &format!("/v1.0/groups/{g}/members")).await.json();
    assert_eq!(members["value"][0]["id"], me.as_str());
    app.get_as(&user, &format!("/v1.0/users/{me}/manager")).await.expect(StatusCode::OK);
    app.assert_no_5xx();
}

#[tokio::test]
async fn tokens_follow_their_user_and_their_revocation() {
    let app = TestApp::new().await;
    let (me, user) = app.user_with_token().await;
    app.get_as(&user, "/v1.0/users").await.expect(StatusCode::OK);

    // a disabled account's token stops working; enabling it again restores it
    app.patch(&format!("/v1.0/users/{me}"), &json!({"accountEnabled": false})).await.expect(StatusCode::NO_CONTENT);
    app.get_as(&user, "/v1.0/users").await.expect_error(StatusCode::UNAUTHORIZED);
    app.patch(&format!("/v1.0/users/{me}"), &json!({"accountEnabled": true})).await.expect(StatusCode::NO_CONTENT);
    app.get_as(&user, "/v1.0/users").await.expect(StatusCode::OK);

    // administrators create tokens over the API; the secret is shown once and works
    let r = app.post("/v1.0/steward/apiTokens", &json!({"displayName": "automation"})).await;
    let secret = r.expect(StatusCode::CREATED).json()["token"].as_str().unwrap().to_owned();
    app.get_as(&secret, &format!("{EM}/catalogs")).await.expect(StatusCode::OK);
    app.json_as(&secret, Method::POST, &format!("{EM}/catalogs"), &json!({"displayName": "by token"}))
        .await
        .expect(StatusCode::CREATED);
    let listed = app.get("/v1.0/steward/apiTokens").await;
    assert!(!listed.text.contains(&secret), "secrets are never listed");
    let id = r.id();
    app.delete(&format!("/v1.0/steward/apiTokens/{id}")).await.expect(StatusCode::NO_CONTENT);
    app.get_as(&secret, &format!("{EM}/catalogs")).await.expect_error(StatusCode::UNAUTHORIZED);

    // a personal token made over the API acts as its user, not as an administrator
    let r = app.post("/v1.0/steward/apiTokens", &json!({"displayName": "personal", "userId": me})).await;
    let personal = r.expect(StatusCode::CREATED).json()["token"].as_str().unwrap().to_owned();
    app.get_as(&personal, &format!("{EM}/catalogs")).await.expect_error(StatusCode::FORBIDDEN);

    // a deleted user's tokens stop working
    app.delete(&format!("/v1.0/users/{me}")).await.expect(StatusCode::NO_CONTENT);
    app.get_as(&user, "/v1.0/users").await.expect_error(StatusCode::UNAUTHORIZED);
    app.get_as(&personal, "/v1.0/users").await.expect_error(StatusCode::UNAUTHORIZED);
    app.assert_no_5xx();
}

async fn send(app: &TestApp, token: &str, method: &Method, path: &str, body: &Value) -> crate::app::Resp {
    if body.is_null() {
        app.send(method.clone(), path, Some(token), &[], Body::empty()).await
    } else {
        app.json_as(token, method.clone(), path, body).await
    }
}

/// A caller without the role learns nothing from an entitlement-management endpoint: the
/// answer is 403 whatever the query options or body, as in Graph, not a 400 about them.
#[tokio::test]
async fn authorization_comes_before_validation() {
    let app = TestApp::new().await;
    let (_, user) = app.user_with_token().await;
    for path in [
        format!("{EM}/catalogs?$filter=nope%20eq%201"),
        format!("{EM}/accessPackages?$top=0"),
        format!("{EM}/accessPackages?$select=nope"),
        format!("{EM}/catalogs/not-a-guid"),
    ] {
        app.get_as(&user, &path).await.expect_error(StatusCode::FORBIDDEN);
    }
    let r = app
        .send(Method::POST, &format!("{EM}/catalogs"), Some(&user), &[("content-type", "application/json")], "{bad")
        .await;
    r.expect_error(StatusCode::FORBIDDEN);
    app.assert_no_5xx();
}

#[tokio::test]
async fn tokens_expire_and_a_role_scoped_token_holds_only_its_role() {
    let (app, clock) = TestApp::with_clock_and_connections("2026-06-01T09:00:00Z", crate::connections::KEY).await;
    let cat = app.catalog("Sales").await;
    let other = app.catalog("Other").await;
    let tokens = "/v1.0/steward/apiTokens";

    // An administrator token that expires tomorrow.
    let r = app.post(tokens, &json!({"displayName": "short", "expirationDateTime": "2026-06-02T09:00:00Z"})).await;
    r.expect(StatusCode::CREATED);
    let short = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["expirationDateTime"], "2026-06-02T09:00:00Z");
    app.get_as(&short, &format!("{EM}/catalogs")).await.expect(StatusCode::OK);
    clock.advance(jiff::SignedDuration::from_hours(25));
    let e = app.get_as(&short, &format!("{EM}/catalogs")).await;
    e.expect_error(StatusCode::UNAUTHORIZED);
    assert!(e.text.contains("expired"), "{}", e.text);

    // A machine token holding the catalog reader role of one catalog.
    let r = app
        .post(
            tokens,
            &json!({"displayName": "reader", "roleDefinitionId": "44272f93-9762-48e8-af59-1b5351b1d6b3",
                "appScopeId": format!("/AccessPackageCatalog/{cat}")}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.json()["isAdministrator"], false);
    let reader = r.json()["token"].as_str().unwrap().to_owned();
    let listed = app.get_as(&reader, &format!("{EM}/catalogs")).await.json();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    assert_eq!(listed["value"][0]["id"], cat.as_str());
    app.get_as(&reader, &format!("{EM}/catalogs/{other}")).await.expect_error(StatusCode::FORBIDDEN);
    app.json_as(&reader, Method::PATCH, &format!("{EM}/catalogs/{cat}"), &json!({"description": "x"}))
        .await
        .expect_error(StatusCode::FORBIDDEN);
    app.get_as(&reader, "/v1.0/steward/apiTokens").await.expect_error(StatusCode::FORBIDDEN);

    // Bad token requests.
    for (body, needle) in [
        (json!({"displayName": "x", "expirationDateTime": "2026-01-01T00:00:00Z"}), "future"),
        (json!({"displayName": "x", "roleDefinitionId": "ae79f266-94d4-4dab-b730-feca7e132178"}), "one catalog"),
        (json!({"displayName": "x", "appScopeId": "/"}), "roleDefinitionId"),
        (json!({"displayName": "x", "roleDefinitionId": "not-a-role"}), "roleDefinitionId"),
        (
            json!({"displayName": "x", "userId": "someone@x.io", "roleDefinitionId": "44272f93-9762-48e8-af59-1b5351b1d6b3"}),
            "not both",
        ),
    ] {
        let r = app.post(tokens, &body).await;
        r.expect_error(StatusCode::BAD_REQUEST);
        assert!(r.text.contains(needle), "{needle}: {}", r.text);
    }
    // Revoked means refused.
    let id = app.get(tokens).await.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["displayName"] == "reader")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("{tokens}/{id}")).await.expect(StatusCode::NO_CONTENT);
    app.get_as(&reader, &format!("{EM}/catalogs")).await.expect_error(StatusCode::UNAUTHORIZED);
    app.assert_no_5xx();
}
