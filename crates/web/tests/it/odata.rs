//! OData over HTTP: `$count`, server-driven paging through absolute `@odata.nextLink`s, `$select`
//! and nested `$expand`, case-insensitive paths and `('key')` syntax.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::app::{ADMIN, EM, TestApp};

fn path_of(link: &str) -> String {
    let rest = link.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

#[tokio::test]
async fn paging_follows_next_links_to_the_end() {
    let app = TestApp::with_public_url(Some("https://steward.example.com")).await;
    let cat = app.catalog("Paging").await;
    let mut names = Vec::new();
    for i in 0..25 {
        let name = format!("pkg {:02}", (i * 7) % 25);
        app.package(&cat, &name).await;
        names.push(name);
    }
    names.sort();
    let mut seen = Vec::new();
    let mut next = Some(format!("{EM}/accessPackages?$top=10&$orderby=displayName&$count=true&$select=displayName"));
    let mut pages = 0;
    while let Some(path) = next {
        let r = app.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        let v = r.json();
        assert_eq!(v["@odata.count"], 25, "every page carries the count");
        for item in v["value"].as_array().unwrap() {
            assert!(item.get("description").is_none(), "$select keeps only what was asked");
            seen.push(item["displayName"].as_str().unwrap().to_owned());
        }
        next = v["@odata.nextLink"].as_str().map(|l| {
            assert!(l.starts_with("https://steward.example.com/v1.0/"), "absolute, on the public URL: {l}");
            assert!(l.contains("$skiptoken="), "{l}");
            path_of(l)
        });
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, names);
    assert_eq!(
        app.get(&format!("{EM}/accessPackages/$count?$filter=startswith(displayName,'pkg%201')")).await.text,
        "10"
    );
    let r = app.get(&format!("{EM}/accessPackages/$count")).await;
    assert!(r.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/plain"));
    app.assert_no_5xx();
}

#[tokio::test]
async fn next_link_uses_the_host_header_without_a_public_url() {
    let app = TestApp::new().await;
    let cat = app.catalog("Host").await;
    for i in 0..3 {
        app.package(&cat, &format!("p{i}")).await;
    }
    let r = app
        .send(
            Method::GET,
            &format!("{EM}/accessPackages?$top=2"),
            Some(ADMIN),
            &[("host", "steward.internal:9000")],
            Body::empty(),
        )
        .await;
    let link = r.json()["@odata.nextLink"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with("http://steward.internal:9000/v1.0/identityGovernance/entitlementManagement/accessPackages?"),
        "{link}"
    );
}

#[tokio::test]
async fn paths_are_case_insensitive_and_accept_key_syntax() {
    let app = TestApp::new().await;
    let cat = app.catalog("Case").await;
    let pkg = app.package(&cat, "Keyed").await;
    let r = app.get("/v1.0/identitygovernance/entitlementmanagement/ACCESSPACKAGES").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&format!("{EM}/accessPackages('{pkg}')?$expand=catalog")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["catalog"]["id"], cat.as_str());
    assert_eq!(v["catalog"]["@odata.type"], "#microsoft.graph.accessPackageCatalog");
    assert_eq!(v["@odata.type"], "#microsoft.graph.accessPackage");
}

#[tokio::test]
async fn nested_expand_and_incompatibilities() {
    let app = TestApp::new().await;
    let cat = app.catalog("Expand").await;
    let g = app.group("Writers").await;
    assert_eq!(app.add_group(&cat, &g).await.status, StatusCode::CREATED);
    let a = app.package(&cat, "A").await;
    let b = app.package(&cat, "B").await;
    let r = app
        .post(
            &format!("{EM}/accessPackages/{a}/resourceRoleScopes"),
            &json!({"role": {"originId": format!("Owner_{g}"), "originSystem": "AadGroup"}, "scope": {"originId": g, "originSystem": "AadGroup"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.post(&format!("{EM}/accessPackages/{a}/incompatibleAccessPackages/$ref"), &json!({"@odata.id": format!("https://g/v1.0/identityGovernance/entitlementManagement/accessPackages/{b}")})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .post(
            &format!("{EM}/accessPackages/{a}/incompatibleGroups/$ref"),
            &json!({"@odata.id": format!("https://g/v1.0/groups/{g}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let v = app
        .get(&format!(
            "{EM}/accessPackages/{a}?$expand=resourceRoleScopes($expand=role($expand=resource($select=originId)),scope),incompatibleAccessPackages($select=displayName),incompatibleGroups"
        ))
        .await
        .json();
    let rrs = &v["resourceRoleScopes"][0];
    assert_eq!(rrs["role"]["displayName"], "Owner");
    assert_eq!(rrs["role"]["resource"]["originId"], g.as_str());
    assert!(rrs["role"]["resource"].get("displayName").is_none());
    assert_eq!(rrs["scope"]["isRootScope"], true);
    assert_eq!(v["incompatibleAccessPackages"][0]["displayName"], "B");
    assert_eq!(v["incompatibleGroups"][0]["id"], g.as_str());
    let with = app.get(&format!("{EM}/accessPackages/{b}/accessPackagesIncompatibleWith")).await.json();
    assert_eq!(with["value"][0]["id"], a.as_str());
    let cat_v = app.get(&format!("{EM}/catalogs/{cat}?$expand=*")).await.json();
    assert_eq!(cat_v["accessPackages"].as_array().unwrap().len(), 2);
    assert_eq!(cat_v["resourceRoles"].as_array().unwrap().len(), 2);
    assert_eq!(cat_v["resourceScopes"].as_array().unwrap().len(), 1);
    let filtered = app.get(&format!("{EM}/catalogs/{cat}/resourceRoles?$filter=originSystem%20eq%20'AadGroup'%20and%20displayName%20eq%20'Member'")).await.json();
    assert_eq!(filtered["value"].as_array().unwrap().len(), 1);
    app.assert_no_5xx();
}
