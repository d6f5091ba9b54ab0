//! The built-in directory over HTTP: users with managers, sponsors and direct reports, groups
//! with members and owners, all through Graph's `$ref` calls.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{EM, TestApp};

fn user_ref(id: &str) -> Value {
    json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{id}")})
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        v["value"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn users_round_trip_with_manager_sponsors_and_reports() {
    let app = TestApp::new().await;
    let body = json!({
        "displayName": "Adele Vance", "userPrincipalName": "adele@contoso.example", "mail": "adele@contoso.example",
        "userType": "Guest", "accountEnabled": false, "department": "Engineering", "jobTitle": "Manager",
        "companyName": "Contoso", "employeeId": "E-7", "city": "Seattle", "country": "US",
        "mailNickname": "adele", "passwordProfile": {"password": "ignored"}
    });
    let r = app.post("/v1.0/users", &body).await;
    let adele = r.expect(StatusCode::CREATED).json();
    for k in [
        "displayName",
        "userPrincipalName",
        "mail",
        "userType",
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
    assert_eq!(adele["@odata.type"], "#microsoft.graph.user");
    assert!(adele.get("passwordProfile").is_none());
    let id = adele["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/v1.0/users/{id}")).await.json(), adele, "reads back exactly as created");
    // by userPrincipalName, case-insensitively, also in key syntax
    assert_eq!(app.get("/v1.0/users/adele@contoso.example").await.json()["id"], id.as_str());
    assert_eq!(app.get("/v1.0/users/ADELE@contoso.example").await.json()["id"], id.as_str());
    assert_eq!(app.get("/v1.0/users('adele@contoso.example')").await.json()["id"], id.as_str());
    // userType is case-insensitive in, canonical out
    let guest =
        app.post("/v1.0/users", &json!({"displayName": "G", "userPrincipalName": "g@x.io", "userType": "guest"})).await;
    assert_eq!(guest.expect(StatusCode::CREATED).json()["userType"], "Guest");
    let member = app.post("/v1.0/users", &json!({"displayName": "M", "userPrincipalName": "m@x.io"})).await;
    assert_eq!(member.expect(StatusCode::CREATED).json()["userType"], "Member", "the default");
    let guests = app.get("/v1.0/users?$filter=userType%20eq%20'guest'&$count=true").await.json();
    assert_eq!(guests["@odata.count"], 2);

    // manager: PUT $ref, GET, by id or by UPN in the path; direct reports in reverse
    let boss = app.user("Isaiah Langer", "isaiah@contoso.example").await;
    let peer = app.user("Lee Gu", "lee@contoso.example").await;
    app.get(&format!("/v1.0/users/{id}/manager")).await.expect_error(StatusCode::NOT_FOUND);
    app.put(&format!("/v1.0/users/{id}/manager/$ref"), &user_ref(&boss)).await.expect(StatusCode::NO_CONTENT);
    app.put("/v1.0/users/lee@contoso.example/manager/$ref", &user_ref(&boss)).await.expect(StatusCode::NO_CONTENT);
    let m = app.get(&format!("/v1.0/users/{id}/manager")).await.expect(StatusCode::OK).json();
    assert_eq!(m["id"], boss.as_str());
    assert_eq!(m["displayName"], "Isaiah Langer");
    assert_eq!(app.get("/v1.0/users/adele@contoso.example/manager").await.json()["id"], boss.as_str());
    let reports = app.get(&format!("/v1.0/users/{boss}/directReports")).await.json();
    let mut want = vec![id.clone(), peer.clone()];
    want.sort();
    assert_eq!(ids(&reports), want);
    let filtered = app.get(&format!("/v1.0/users?$filter=manager/id%20eq%20'{boss}'&$count=true")).await.json();
    assert_eq!(filtered["@odata.count"], 2);
    let expanded =
        app.get(&format!("/v1.0/users/{id}?$expand=manager($select=displayName)&$select=displayName")).await.json();
    assert_eq!(expanded["manager"]["displayName"], "Isaiah Langer");
    assert!(expanded.get("mail").is_none(), "$select drops the rest");
    // replacing the manager moves the report
    app.put(&format!("/v1.0/users/{id}/manager/$ref"), &user_ref(&peer)).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(ids(&app.get(&format!("/v1.0/users/{boss}/directReports")).await.json()), vec![peer.clone()]);
    assert_eq!(ids(&app.get(&format!("/v1.0/users/{peer}/directReports")).await.json()), vec![id.clone()]);
    app.delete(&format!("/v1.0/users/{id}/manager/$ref")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("/v1.0/users/{id}/manager")).await.expect_error(StatusCode::NOT_FOUND);

    // sponsors: add two (one through directoryObjects), list, remove one, twice
    app.post(&format!("/v1.0/users/{id}/sponsors/$ref"), &user_ref(&boss)).await.expect(StatusCode::NO_CONTENT);
    app.post(
        &format!("/v1.0/users/{id}/sponsors/$ref"),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{peer}")}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.post(&format!("/v1.0/users/{id}/sponsors/$ref"), &user_ref(&boss)).await.expect_error(StatusCode::CONFLICT);
    assert_eq!(ids(&app.get(&format!("/v1.0/users/{id}/sponsors")).await.json()), {
        let mut v = vec![boss.clone(), peer.clone()];
        v.sort();
        v
    });
    let sponsors = app.get(&format!("/v1.0/users/{id}?$expand=sponsors($select=displayName)")).await.json();
    assert_eq!(sponsors["sponsors"].as_array().unwrap().len(), 2);
    app.delete(&format!("/v1.0/users/{id}/sponsors/{boss}/$ref")).await.expect(StatusCode::NO_CONTENT);
    app.delete(&format!("/v1.0/users/{id}/sponsors/{boss}/$ref")).await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(ids(&app.get(&format!("/v1.0/users/{id}/sponsors")).await.json()), vec![peer.clone()]);

    // PATCH: null clears, absent keeps
    let r = app
        .patch(
            &format!("/v1.0/users/{id}"),
            &json!({"department": null, "jobTitle": "Director", "accountEnabled": true, "userType": "member"}),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    let u = app.get(&format!("/v1.0/users/{id}")).await.json();
    assert_eq!(
        (&u["department"], &u["jobTitle"], &u["accountEnabled"], &u["userType"], &u["city"]),
        (&Value::Null, &json!("Director"), &json!(true), &json!("Member"), &json!("Seattle"))
    );
    // a new UPN is the new lookup key
    app.patch(&format!("/v1.0/users/{id}"), &json!({"userPrincipalName": "adele.vance@contoso.example"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(app.get("/v1.0/users/adele.vance@contoso.example").await.json()["id"], id.as_str());
    app.get("/v1.0/users/adele@contoso.example").await.expect_error(StatusCode::NOT_FOUND);

    // deleting a manager clears the link; deleting a user removes them from sponsor lists
    app.put(&format!("/v1.0/users/{id}/manager/$ref"), &user_ref(&peer)).await.expect(StatusCode::NO_CONTENT);
    app.delete(&format!("/v1.0/users/{peer}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("/v1.0/users/{id}/manager")).await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/v1.0/users/{id}/sponsors")).await.json()["value"], json!([]));
    app.delete(&format!("/v1.0/users/{id}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("/v1.0/users/{id}")).await.expect_error(StatusCode::NOT_FOUND);
    app.assert_no_5xx();
}

#[tokio::test]
async fn groups_round_trip_with_members_and_owners() {
    let app = TestApp::new().await;
    let u1 = app.user("Adele", "adele@x.io").await;
    let u2 = app.user("Bianca", "bianca@x.io").await;
    let body = json!({"displayName": "Sales", "description": "d", "mailNickname": "sales", "securityEnabled": true, "mailEnabled": false});
    let r = app.post("/v1.0/groups", &body).await;
    let created = r.expect(StatusCode::CREATED).json();
    for k in ["displayName", "description", "mailNickname", "securityEnabled", "mailEnabled"] {
        assert_eq!(created[k], body[k], "{k}");
    }
    assert_eq!(created["@odata.type"], "#microsoft.graph.group");
    let g = created["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/v1.0/groups/{g}")).await.json(), created, "reads back exactly as created");

    for link in ["members", "owners"] {
        app.post(
            &format!("/v1.0/groups/{g}/{link}/$ref"),
            &json!({"@odata.id": format!("https://graph/v1.0/directoryObjects/{u1}")}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
        app.post(&format!("/v1.0/groups/{g}/{link}/$ref"), &user_ref(&u2)).await.expect(StatusCode::NO_CONTENT);
        app.post(&format!("/v1.0/groups/{g}/{link}/$ref"), &user_ref(&u1)).await.expect_error(StatusCode::CONFLICT);
        let mut want = vec![u1.clone(), u2.clone()];
        want.sort();
        assert_eq!(ids(&app.get(&format!("/v1.0/groups/{g}/{link}")).await.json()), want, "{link}");
        let c =
            app.get(&format!("/v1.0/groups/{g}/{link}?$count=true&$filter=displayName%20eq%20'Bianca'")).await.json();
        assert_eq!(c["@odata.count"], 1, "{link}");
        app.delete(&format!("/v1.0/groups/{g}/{link}/{u1}/$ref")).await.expect(StatusCode::NO_CONTENT);
        app.delete(&format!("/v1.0/groups/{g}/{link}/{u1}/$ref")).await.expect_error(StatusCode::NOT_FOUND);
        assert_eq!(ids(&app.get(&format!("/v1.0/groups/{g}/{link}")).await.json()), vec![u2.clone()], "{link}");
    }
    let expanded = app.get(&format!("/v1.0/groups/{g}?$expand=members($select=displayName),owners")).await.json();
    assert_eq!(expanded["members"][0]["displayName"], "Bianca");
    assert_eq!(expanded["owners"][0]["id"], u2.as_str());
    let r = app
        .post(
            &format!("/v1.0/groups/{g}/members/$ref"),
            &json!({"@odata.id": format!("https://graph/v1.0/groups/{g}")}),
        )
        .await;
    r.expect_error(StatusCode::BAD_REQUEST);

    app.patch(&format!("/v1.0/groups/{g}"), &json!({"description": null, "displayName": "Sales EMEA"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let now = app.get(&format!("/v1.0/groups/{g}")).await.json();
    assert_eq!(
        (&now["displayName"], &now["description"], &now["mailNickname"]),
        (&json!("Sales EMEA"), &Value::Null, &json!("sales"))
    );

    // a group that is a catalog resource cannot be deleted until it leaves the catalog
    let cat = app.catalog("Cat").await;
    app.add_group(&cat, &g).await.expect(StatusCode::CREATED);
    let r = app.delete(&format!("/v1.0/groups/{g}")).await;
    assert_eq!(r.expect_error(StatusCode::CONFLICT), "Conflict");
    app.get(&format!("/v1.0/groups/{g}")).await.expect(StatusCode::OK);
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
    assert_eq!(r.expect(StatusCode::CREATED).json()["requestType"], "adminRemove");
    app.delete(&format!("/v1.0/groups/{g}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("/v1.0/groups/{g}")).await.expect_error(StatusCode::NOT_FOUND);
    // the users stay
    assert_eq!(app.get("/v1.0/users/$count").await.text, "2");
    app.assert_no_5xx();
}

/// Graph's "create group" examples set owners and members with `owners@odata.bind` and
/// `members@odata.bind`. Steward must either act on them or refuse them; creating the group
/// and silently dropping the links is not acceptable.
#[tokio::test]
async fn odata_bind_annotations_are_honoured_or_refused() {
    let app = TestApp::new().await;
    let u = app.user("Adele", "adele@x.io").await;
    let link = format!("https://graph.microsoft.com/v1.0/users/{u}");
    let r = app
        .post(
            "/v1.0/groups",
            &json!({"displayName": "Bound", "members@odata.bind": [link], "owners@odata.bind": [link]}),
        )
        .await;
    match r.status {
        StatusCode::CREATED => {
            let g = r.id();
            for nav in ["members", "owners"] {
                let v = app.get(&format!("/v1.0/groups/{g}/{nav}")).await.json();
                assert_eq!(ids(&v), vec![u.clone()], "{nav}@odata.bind was accepted, so it must have been applied");
            }
        }
        _ => {
            r.expect_error(StatusCode::BAD_REQUEST);
            assert_eq!(app.get("/v1.0/groups/$count").await.text, "0");
        }
    }
    let r = app
        .post("/v1.0/users", &json!({"displayName": "B", "userPrincipalName": "b@x.io", "manager@odata.bind": link}))
        .await;
    match r.status {
        StatusCode::CREATED => {
            let b = r.id();
            let m = app.get(&format!("/v1.0/users/{b}/manager")).await;
            assert_eq!(m.status, StatusCode::OK, "manager@odata.bind was accepted, so it must have been applied");
        }
        _ => {
            r.expect_error(StatusCode::BAD_REQUEST);
        }
    }
    app.assert_no_5xx();
}
