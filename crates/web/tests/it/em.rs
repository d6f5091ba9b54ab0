//! Entitlement management round trips on SQLite through HTTP: catalogs, resource requests,
//! resources with their roles and scopes, access packages with nested `$expand` and `$select`,
//! and incompatibilities in both directions.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::{EM, TestApp};

fn ids(v: &Value) -> Vec<String> {
    v["value"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn catalogs_round_trip() {
    let app = TestApp::new().await;
    let catalogs = format!("{EM}/catalogs");
    let body = json!({"displayName": "Marketing", "description": "Campaign tools", "isExternallyVisible": true, "state": "published"});
    let r = app.post(&catalogs, &body).await;
    let created = r.expect(StatusCode::CREATED).json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(r.header("location").ends_with(&format!("/catalogs/{id}")), "{:?}", r.headers);
    assert!(r.header("content-type").starts_with("application/json"));
    for k in ["displayName", "description", "isExternallyVisible", "state"] {
        assert_eq!(created[k], body[k], "{k}");
    }
    assert_eq!(created["catalogType"], "userManaged");
    assert_eq!(created["@odata.type"], "#microsoft.graph.accessPackageCatalog");
    assert!(
        created["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#identityGovernance/entitlementManagement/catalogs/$entity")
    );
    assert_eq!(created["createdDateTime"], created["modifiedDateTime"]);
    assert!(created["createdDateTime"].as_str().unwrap().ends_with('Z'));

    let r = app.get(&format!("{catalogs}/{id}")).await;
    assert_eq!(r.expect(StatusCode::OK).json(), created, "reads back exactly as created");
    assert_eq!(r.header("etag"), created["@odata.etag"].as_str().unwrap());

    let r = app
        .patch(
            &format!("{catalogs}/{id}"),
            &json!({"displayName": "Marketing EU", "description": null, "isExternallyVisible": false}),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    let now = app.get(&format!("{catalogs}/{id}")).await.json();
    assert_eq!(now["displayName"], "Marketing EU");
    assert_eq!(now["description"], Value::Null);
    assert_eq!(now["isExternallyVisible"], false);
    assert_eq!(now["state"], "published", "untouched properties stay");
    assert_eq!(now["createdDateTime"], created["createdDateTime"]);
    assert_ne!(now["modifiedDateTime"], created["modifiedDateTime"]);
    assert_ne!(now["@odata.etag"], created["@odata.etag"]);

    let r = app.post(&catalogs, &json!({"displayName": "Zeta", "state": "unpublished"})).await;
    let other = r.expect(StatusCode::CREATED).id();
    let r = app.post(&catalogs, &json!({"displayName": "Defaults"})).await;
    let defaults = r.expect(StatusCode::CREATED).json();
    assert_eq!((&defaults["state"], &defaults["isExternallyVisible"]), (&json!("published"), &json!(false)));
    let defaults = defaults["id"].as_str().unwrap().to_owned();
    let list = app.get(&format!("{catalogs}?$filter=state%20eq%20'Published'")).await.json();
    assert_eq!(ids(&list), vec![defaults.clone(), id.clone()]);
    let list = app.get(&format!("{catalogs}?$filter=state%20eq%20'unpublished'")).await.json();
    assert_eq!(ids(&list), vec![other.clone()]);
    let list = app.get(&format!("{catalogs}?$orderby=displayName%20desc&$select=displayName")).await.json();
    assert_eq!(ids(&list), vec![other.clone(), id.clone(), defaults.clone()]);
    assert_eq!(
        list["value"][0],
        json!({"@odata.type": "#microsoft.graph.accessPackageCatalog", "@odata.etag": list["value"][0]["@odata.etag"], "id": other, "displayName": "Zeta"})
    );
    let one = app.get(&format!("{catalogs}/{id}?$select=displayName,state")).await.json();
    assert_eq!(one["state"], "published");
    assert!(one.get("description").is_none() && one.get("createdDateTime").is_none(), "{one}");

    app.delete(&format!("{catalogs}/{other}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("{catalogs}/{other}")).await.expect_error(StatusCode::NOT_FOUND);
    app.assert_no_5xx();
}

#[tokio::test]
async fn resource_requests_and_resources_round_trip() {
    let app = TestApp::new().await;
    let cat = app.catalog("Engineering").await;
    let g = app.group("Builders").await;
    let r = app.add_group(&cat, &g).await;
    let req = r.expect(StatusCode::CREATED).json();
    assert_eq!(req["requestType"], "adminAdd");
    assert_eq!(req["state"], "delivered");
    assert_eq!(req["@odata.type"], "#microsoft.graph.accessPackageResourceRequest");

    let list = app
        .get(&format!("{EM}/resourceRequests?$expand=catalog,resource&$filter=requestType%20eq%20'AdminAdd'"))
        .await
        .json();
    assert_eq!(ids(&list), vec![req["id"].as_str().unwrap().to_owned()]);
    assert_eq!(list["value"][0]["catalog"]["id"], cat.as_str());
    assert_eq!(list["value"][0]["resource"]["originId"], g.as_str());
    assert_eq!(list["value"][0]["resource"]["displayName"], "Builders");

    let res = app.get(&format!("{EM}/catalogs/{cat}/resources?$expand=roles,scopes")).await.json();
    let resource = &res["value"][0];
    assert_eq!(resource["originSystem"], "AadGroup");
    assert_eq!(resource["@odata.type"], "#microsoft.graph.accessPackageResource");
    let mut roles: Vec<(String, String)> = resource["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["displayName"].as_str().unwrap().to_owned(), r["originId"].as_str().unwrap().to_owned()))
        .collect();
    roles.sort();
    assert_eq!(roles, vec![("Member".to_owned(), format!("Member_{g}")), ("Owner".to_owned(), format!("Owner_{g}"))]);
    assert_eq!(resource["scopes"].as_array().unwrap().len(), 1);
    assert_eq!(resource["scopes"][0]["isRootScope"], true);
    let rid = resource["id"].as_str().unwrap().to_owned();
    let one = app.get(&format!("{EM}/catalogs/{cat}/resources/{rid}")).await.json();
    assert_eq!(one["originId"], g.as_str());
    let tenant_wide = app.get(&format!("{EM}/resources?$filter=originId%20eq%20'{g}'")).await.json();
    assert_eq!(ids(&tenant_wide), vec![rid.clone()]);
    let roles = app.get(&format!("{EM}/catalogs/{cat}/resourceRoles?$filter=originSystem%20eq%20'AadGroup'%20and%20resource/id%20eq%20'{rid}'&$expand=resource")).await.json();
    assert_eq!(roles["value"].as_array().unwrap().len(), 2);
    assert_eq!(roles["value"][0]["resource"]["id"], rid.as_str());
    let scopes = app.get(&format!("{EM}/catalogs/{cat}/resourceScopes")).await.json();
    assert_eq!(scopes["value"][0]["originId"], g.as_str());

    // another catalog may hold the same group; removing it from one leaves the other
    let cat2 = app.catalog("Second").await;
    app.add_group(&cat2, &g).await.expect(StatusCode::CREATED);
    let r = app
        .post(&format!("{EM}/resourceRequests"), &json!({"requestType": "adminRemove", "catalog": {"id": cat}, "resource": {"originId": g, "originSystem": "AadGroup"}}))
        .await;
    assert_eq!(r.expect(StatusCode::CREATED).json()["requestType"], "adminRemove");
    assert_eq!(app.get(&format!("{EM}/catalogs/{cat}/resources")).await.json()["value"], json!([]));
    assert_eq!(app.get(&format!("{EM}/catalogs/{cat2}/resources")).await.json()["value"].as_array().unwrap().len(), 1);
    let all = app.get(&format!("{EM}/resourceRequests?$count=true&$orderby=createdDateTime")).await.json();
    assert_eq!(all["@odata.count"], 3);
    assert_eq!(all["value"][2]["requestType"], "adminRemove");
    app.assert_no_5xx();
}

#[tokio::test]
async fn access_packages_round_trip_with_nested_expand_and_select() {
    let app = TestApp::new().await;
    let cat = app.catalog("Finance").await;
    let g = app.group("Ledger").await;
    app.add_group(&cat, &g).await.expect(StatusCode::CREATED);
    let packages = format!("{EM}/accessPackages");
    let body = json!({"displayName": "Ledger access", "description": "Read the books", "isHidden": true, "catalog": {"id": cat}});
    let r = app.post(&packages, &body).await;
    let created = r.expect(StatusCode::CREATED).json();
    let a = created["id"].as_str().unwrap().to_owned();
    for k in ["displayName", "description", "isHidden"] {
        assert_eq!(created[k], body[k], "{k}");
    }
    assert_eq!(created["@odata.type"], "#microsoft.graph.accessPackage");
    assert_eq!(app.get(&format!("{packages}/{a}")).await.json(), created, "reads back exactly as created");
    // the beta API's flat catalogId is accepted too
    let b =
        app.post(&packages, &json!({"displayName": "Flat", "catalogId": cat})).await.expect(StatusCode::CREATED).id();

    let r = app
        .post(
            &format!("{packages}/{a}/resourceRoleScopes"),
            &json!({"role": {"originId": format!("Member_{g}"), "originSystem": "AadGroup"}, "scope": {"originId": g, "originSystem": "AadGroup"}}),
        )
        .await;
    let rrs = r.expect(StatusCode::CREATED).json();
    let rrs_id = rrs["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("{packages}/{a}/resourceRoleScopes/{rrs_id}")).await.json(), rrs);

    let plain =
        format!("{packages}/{a}?$expand=resourceRoleScopes($expand=role,scope),catalog&$select=displayName,isHidden");
    let v = app.get(&plain).await.expect(StatusCode::OK).json();
    assert_eq!(v["id"], a.as_str());
    assert_eq!(v["displayName"], "Ledger access");
    assert_eq!(v["isHidden"], true);
    assert!(v.get("description").is_none(), "$select drops the rest: {v}");
    assert_eq!(v["catalog"]["id"], cat.as_str());
    assert_eq!(v["catalog"]["displayName"], "Finance");
    let scope_entry = &v["resourceRoleScopes"][0];
    assert_eq!(scope_entry["id"], rrs_id.as_str());
    assert_eq!(scope_entry["role"]["displayName"], "Member");
    assert_eq!(scope_entry["role"]["originId"], format!("Member_{g}"));
    assert_eq!(scope_entry["role"]["@odata.type"], "#microsoft.graph.accessPackageResourceRole");
    assert_eq!(scope_entry["scope"]["originId"], g.as_str());
    assert_eq!(scope_entry["scope"]["isRootScope"], true);
    // as msgraph-sdk encodes it (reference §2.2): same answer
    let sdk = format!(
        "{packages}/{a}?$expand=resourceRoleScopes%28%24expand%3Drole%2Cscope%29,catalog&%24select=displayName,isHidden"
    );
    assert_eq!(app.get(&sdk).await.json(), v);
    // on the list too, with a filter
    let list = app
        .get(&format!("{packages}?$filter=catalog/id%20eq%20'{cat}'%20and%20isHidden%20eq%20true&$expand=resourceRoleScopes($expand=role,scope),catalog&$select=displayName"))
        .await
        .json();
    assert_eq!(ids(&list), vec![a.clone()]);
    assert_eq!(list["value"][0]["resourceRoleScopes"][0]["scope"]["originId"], g.as_str());
    let catalog_view = app
        .get(&format!("{EM}/catalogs/{cat}?$expand=accessPackages($select=displayName;$orderby=displayName)"))
        .await
        .json();
    assert_eq!(catalog_view["accessPackages"].as_array().unwrap().len(), 2);

    // PATCH, then read back
    app.patch(&format!("{packages}/{a}"), &json!({"description": null, "isHidden": false}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let now = app.get(&format!("{packages}/{a}")).await.json();
    assert_eq!((now["description"].clone(), now["isHidden"].clone()), (Value::Null, json!(false)));
    assert_eq!(now["displayName"], "Ledger access");

    // incompatibilities, both directions, then removed again
    let c = app.package(&cat, "Auditor").await;
    let aref = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}")});
    for other in [&b, &c] {
        app.post(&format!("{packages}/{a}/incompatibleAccessPackages/$ref"), &aref(other))
            .await
            .expect(StatusCode::NO_CONTENT);
    }
    app.post(
        &format!("{packages}/{a}/incompatibleGroups/$ref"),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/groups/{g}")}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let mut inc = ids(&app.get(&format!("{packages}/{a}/incompatibleAccessPackages")).await.json());
    inc.sort();
    let mut want = vec![b.clone(), c.clone()];
    want.sort();
    assert_eq!(inc, want);
    assert_eq!(ids(&app.get(&format!("{packages}/{c}/accessPackagesIncompatibleWith")).await.json()), vec![a.clone()]);
    assert_eq!(
        app.get(&format!("{packages}/{c}/incompatibleAccessPackages")).await.json()["value"],
        json!([]),
        "one-directional"
    );
    assert_eq!(ids(&app.get(&format!("{packages}/{a}/incompatibleGroups")).await.json()), vec![g.clone()]);
    let expanded = app.get(&format!("{packages}/{a}?$expand=incompatibleAccessPackages($select=displayName),incompatibleGroups,accessPackagesIncompatibleWith")).await.json();
    assert_eq!(expanded["incompatibleAccessPackages"].as_array().unwrap().len(), 2);
    assert_eq!(expanded["incompatibleGroups"][0]["displayName"], "Ledger");
    assert_eq!(expanded["accessPackagesIncompatibleWith"], json!([]));

    app.delete(&format!("{packages}/{a}/incompatibleAccessPackages/{b}/$ref")).await.expect(StatusCode::NO_CONTENT);
    app.delete(&format!("{packages}/{a}/incompatibleAccessPackages/{b}/$ref"))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    app.delete(&format!("{packages}/{a}/incompatibleGroups/{g}/$ref")).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(ids(&app.get(&format!("{packages}/{a}/incompatibleAccessPackages")).await.json()), vec![c.clone()]);
    assert_eq!(app.get(&format!("{packages}/{a}/incompatibleGroups")).await.json()["value"], json!([]));

    // deleting a package takes its role scopes and incompatibilities with it
    app.delete(&format!("{packages}/{a}/resourceRoleScopes/{rrs_id}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("{packages}/{a}/resourceRoleScopes/{rrs_id}")).await.expect_error(StatusCode::NOT_FOUND);
    app.post(
        &format!("{packages}/{a}/resourceRoleScopes"),
        &json!({"role": {"originId": format!("Owner_{g}"), "originSystem": "AadGroup"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    app.delete(&format!("{packages}/{a}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("{packages}/{a}")).await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("{packages}/{c}/accessPackagesIncompatibleWith")).await.json()["value"], json!([]));
    for p in [&b, &c] {
        app.delete(&format!("{packages}/{p}")).await.expect(StatusCode::NO_CONTENT);
    }
    app.delete(&format!("{EM}/catalogs/{cat}")).await.expect(StatusCode::NO_CONTENT);
    // the catalog's resources went with it, so the group can go now
    app.delete(&format!("/v1.0/groups/{g}")).await.expect(StatusCode::NO_CONTENT);
    app.assert_no_5xx();
}
