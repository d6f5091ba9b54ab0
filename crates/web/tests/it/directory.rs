//! The built-in directory over HTTP: users with managers and sponsors, groups with members and
//! owners, all through Graph's `$ref` calls.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::app::{ADMIN, EM, TestApp};

#[tokio::test]
async fn users_groups_and_links_round_trip() {
    let app = TestApp::new().await;
    let body = json!({
        "displayName": "Adele Vance", "userPrincipalName": "adele@contoso.example", "mail": "adele@contoso.example",
        "userType": "guest", "accountEnabled": false, "department": "Engineering", "jobTitle": "Manager",
        "companyName": "Contoso", "employeeId": "E-7", "city": "Seattle", "country": "US",
        "mailNickname": "adele", "passwordProfile": {"password": "ignored"}
    });
    let r = app.post("/v1.0/users", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let adele = r.json();
    for k in [
        "displayName",
        "userPrincipalName",
        "mail",
        "accountEnabled",
        "department",
        "jobTitle",
        "companyName",
        "employeeId",
        "city",
        "country",
    ] {
        assert_eq!(adele[k], body[k], "{k}");
    }
    assert_eq!(adele["userType"], "Guest");
    assert_eq!(adele["@odata.type"], "#microsoft.graph.user");
    let id = adele["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1.0/users/{id}")).await.json()["userPrincipalName"], "adele@contoso.example");
    assert_eq!(app.get("/v1.0/users/ADELE@contoso.example").await.json()["id"], id, "lookup by userPrincipalName");
    let r = app.post("/v1.0/users", &json!({"displayName": "Dup", "userPrincipalName": "Adele@Contoso.Example"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let boss = app
        .post("/v1.0/users", &json!({"displayName": "Isaiah", "userPrincipalName": "isaiah@contoso.example"}))
        .await
        .id();
    assert_eq!(app.get(&format!("/v1.0/users/{id}/manager")).await.status, StatusCode::NOT_FOUND);
    let r = app
        .json_as(
            ADMIN,
            Method::PUT,
            &format!("/v1.0/users/{id}/manager/$ref"),
            &json!({"@odata.id": format!("https://graph/v1.0/users/{boss}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.get(&format!("/v1.0/users/{id}/manager")).await.json()["id"], boss.as_str());
    let reports = app.get(&format!("/v1.0/users/{boss}/directReports")).await.json();
    assert_eq!(reports["value"][0]["id"], id);
    let expanded =
        app.get(&format!("/v1.0/users/{id}?$expand=manager($select=displayName)&$select=displayName")).await.json();
    assert_eq!(expanded["manager"]["displayName"], "Isaiah");
    assert!(expanded.get("mail").is_none(), "$select drops the rest");
    let r = app
        .json_as(
            ADMIN,
            Method::PUT,
            &format!("/v1.0/users/{id}/manager/$ref"),
            &json!({"@odata.id": format!("https://graph/v1.0/users/{id}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "nobody manages themselves");

    let r = app
        .post(
            &format!("/v1.0/users/{id}/sponsors/$ref"),
            &json!({"@odata.id": format!("https://graph/v1.0/users/{boss}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.get(&format!("/v1.0/users/{id}/sponsors")).await.json()["value"][0]["id"], boss.as_str());
    assert_eq!(app.delete(&format!("/v1.0/users/{id}/sponsors/{boss}/$ref")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/v1.0/users/{id}/sponsors")).await.json()["value"], json!([]));
    assert_eq!(app.delete(&format!("/v1.0/users/{id}/manager/$ref")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/v1.0/users/{id}/manager")).await.status, StatusCode::NOT_FOUND);

    let r = app
        .patch(
            &format!("/v1.0/users/{id}"),
            &json!({"department": null, "jobTitle": "Director", "accountEnabled": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let u = app.get(&format!("/v1.0/users/{id}")).await.json();
    assert_eq!(
        (u["department"].clone(), u["jobTitle"].clone(), u["accountEnabled"].clone()),
        (json!(null), json!("Director"), json!(true))
    );

    // groups, members and owners
    let r = app.post("/v1.0/groups", &json!({"displayName": "Sales", "description": "d", "mailNickname": "sales", "securityEnabled": true, "mailEnabled": false})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let g = r.id();
    for link in ["members", "owners"] {
        let r = app
            .post(
                &format!("/v1.0/groups/{g}/{link}/$ref"),
                &json!({"@odata.id": format!("https://graph/v1.0/directoryObjects/{id}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{link}: {}", r.text);
        let r = app
            .post(
                &format!("/v1.0/groups/{g}/{link}/$ref"),
                &json!({"@odata.id": format!("https://graph/v1.0/users/{id}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{link} twice");
        assert_eq!(app.get(&format!("/v1.0/groups/{g}/{link}")).await.json()["value"][0]["id"], id);
    }
    let members = app.get(&format!("/v1.0/groups/{g}?$expand=members($select=displayName)")).await.json();
    assert_eq!(members["members"][0]["displayName"], "Adele Vance");
    assert_eq!(app.delete(&format!("/v1.0/groups/{g}/members/{id}/$ref")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/v1.0/groups/{g}/members/{id}/$ref")).await.status, StatusCode::NOT_FOUND);

    // a group that is a catalog resource cannot be deleted
    let cat = app.catalog("Cat").await;
    assert_eq!(app.add_group(&cat, &g).await.status, StatusCode::CREATED);
    let r = app.delete(&format!("/v1.0/groups/{g}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let res = app.get(&format!("{EM}/catalogs/{cat}/resources?$expand=roles,scopes")).await.json();
    assert_eq!(res["value"][0]["originId"], g.as_str());
    assert_eq!(res["value"][0]["roles"].as_array().unwrap().len(), 2);
    let rid = res["value"][0]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("{EM}/resourceRequests"),
            &json!({"requestType": "AdminRemove", "catalog": {"id": cat}, "resource": {"id": rid}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["requestType"], "adminRemove");
    assert_eq!(app.delete(&format!("/v1.0/groups/{g}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/v1.0/users/{id}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.send(Method::GET, &format!("/v1.0/users/{id}"), Some(ADMIN), &[], Body::empty()).await.status,
        StatusCode::NOT_FOUND
    );
    app.assert_no_5xx();
}
