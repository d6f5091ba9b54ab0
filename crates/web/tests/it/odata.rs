//! OData over HTTP: `$count`, server-driven paging through absolute `@odata.nextLink`s, the
//! public URL or Host in links, case-insensitive paths and `('key')` syntax.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{ADMIN, EM, TestApp, path_of};

/// Follows `@odata.nextLink` from `first` to the end; returns the pages.
async fn all_pages(app: &TestApp, first: &str, origin: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let v = app.get(&path).await.expect(StatusCode::OK).json();
        next = v["@odata.nextLink"].as_str().map(|l| {
            assert!(l.starts_with(&format!("{origin}/v1.0/")), "absolute, on {origin}: {l}");
            assert!(l.contains("$skiptoken="), "{l}");
            path_of(l)
        });
        pages.push(v);
        assert!(pages.len() <= 50, "paging does not end");
    }
    pages
}

fn names(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().iter().map(|x| x["displayName"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn paging_follows_next_links_to_the_end() {
    let app = TestApp::with_public_url(Some("https://steward.example.com")).await;
    let cat = app.catalog("Paging").await;
    let mut want = Vec::new();
    for i in 0..25 {
        let name = format!("pkg {:02}", (i * 7) % 25);
        app.package(&cat, &name).await;
        want.push(name);
    }
    want.sort();

    // as the brief says: $top=10&$orderby=displayName, then follow nextLink
    let pages =
        all_pages(&app, &format!("{EM}/accessPackages?$top=10&$orderby=displayName"), "https://steward.example.com")
            .await;
    assert_eq!(pages.iter().map(|p| p["value"].as_array().unwrap().len()).collect::<Vec<_>>(), vec![10, 10, 5]);
    assert_eq!(names(&pages), want, "all 25 exactly once, in order");
    assert!(pages.iter().all(|p| p.get("@odata.count").is_none()), "no count unless asked");
    assert!(pages[0]["@odata.context"].as_str().unwrap().starts_with("https://steward.example.com/v1.0/$metadata#"));

    // with $count, $select and descending order; the count rides along on every page
    let pages = all_pages(
        &app,
        &format!("{EM}/accessPackages?$top=7&$orderby=displayName%20desc&$count=true&$select=displayName"),
        "https://steward.example.com",
    )
    .await;
    assert_eq!(pages.len(), 4);
    assert!(pages.iter().all(|p| p["@odata.count"] == 25), "every page carries the count");
    assert!(pages.iter().all(|p| p["value"].as_array().unwrap().iter().all(|x| x.get("description").is_none())));
    let mut desc = want.clone();
    desc.reverse();
    assert_eq!(names(&pages), desc);

    // with a filter, as msgraph-sdk encodes it
    let pages = all_pages(
        &app,
        &format!(
            "{EM}/accessPackages?%24filter=startswith%28displayName%2C%27pkg%201%27%29&%24top=3&%24orderby=displayName"
        ),
        "https://steward.example.com",
    )
    .await;
    assert_eq!(names(&pages), want.iter().filter(|n| n.starts_with("pkg 1")).cloned().collect::<Vec<_>>());

    // $skip and $top without server paging
    let v = app.get(&format!("{EM}/accessPackages?$top=5&$skip=20&$orderby=displayName")).await.json();
    assert_eq!(names(std::slice::from_ref(&v)), want[20..].to_vec());
    assert!(v.get("@odata.nextLink").is_none());
    app.assert_no_5xx();
}

#[tokio::test]
async fn paging_is_stable_while_rows_are_inserted() {
    let app = TestApp::new().await;
    let cat = app.catalog("Stable").await;
    for i in 0..9 {
        app.package(&cat, &format!("p{i}")).await;
    }
    let first = app.get(&format!("{EM}/accessPackages?$top=3&$orderby=displayName")).await.json();
    // rows sorting before and after the cursor appear meanwhile
    app.package(&cat, "a-before").await;
    app.package(&cat, "z-after").await;
    let rest = all_pages(&app, &path_of(first["@odata.nextLink"].as_str().unwrap()), "http://localhost").await;
    let mut seen = names(&[first]);
    seen.extend(names(&rest));
    let mut want: Vec<String> = (0..9).map(|i| format!("p{i}")).collect();
    want.push("z-after".into());
    assert_eq!(seen, want, "no row twice, none skipped");
}

#[tokio::test]
async fn counts() {
    let app = TestApp::new().await;
    let cat = app.catalog("Counting").await;
    for i in 0..4 {
        app.package(&cat, &format!("c{i}")).await;
    }
    app.user("One", "one@x.io").await;
    app.group("G").await;
    for (path, n) in [
        (format!("{EM}/accessPackages/$count"), "4"),
        (format!("{EM}/accessPackages/$count?$filter=displayName%20eq%20'c1'"), "1"),
        (format!("{EM}/accessPackages/$count?$search=%22c%22"), "4"),
        (format!("{EM}/catalogs/$count"), "1"),
        ("/v1.0/users/$count".to_owned(), "1"),
        ("/v1.0/groups/$count".to_owned(), "1"),
        (format!("{EM}/assignmentPolicies/$count"), "0"),
    ] {
        let r = app.get(&path).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.text, n, "{path}");
        assert!(r.header("content-type").starts_with("text/plain"), "{path}: {:?}", r.headers);
        assert!(r.text.parse::<u64>().is_ok());
    }
    let with = app.get(&format!("{EM}/accessPackages?$count=true&$top=1")).await.json();
    assert_eq!(with["@odata.count"], 4);
    assert_eq!(with["value"].as_array().unwrap().len(), 1);
    let without = app.get(&format!("{EM}/accessPackages?$count=false")).await.json();
    assert!(without.get("@odata.count").is_none());
    let zero = app.get(&format!("{EM}/accessPackages?$count=true&$filter=displayName%20eq%20'none'")).await.json();
    assert_eq!((zero["@odata.count"].clone(), zero["value"].clone()), (json!(0), json!([])));
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
    assert!(link.contains("$top=2"), "{link}");
    // and the public URL wins over Host when configured
    let app = TestApp::with_public_url(Some("https://steward.example.com/")).await;
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
        link.starts_with("https://steward.example.com/v1.0/identityGovernance/entitlementManagement/accessPackages?"),
        "{link}"
    );
    let rest = app.get(&path_of(&link)).await.json();
    assert_eq!(rest["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn paths_are_case_insensitive_and_accept_key_syntax() {
    let app = TestApp::new().await;
    let cat = app.catalog("Case").await;
    let pkg = app.package(&cat, "Keyed").await;
    let r = app.get("/v1.0/identitygovernance/entitlementmanagement/ACCESSPACKAGES").await;
    assert_eq!(r.expect(StatusCode::OK).json()["value"][0]["id"], pkg.as_str());
    assert_eq!(app.get("/V1.0/Users").await.status, StatusCode::OK);
    assert_eq!(app.get("/v1.0/identityGovernance/entitlementManagement/accessPackages/$COUNT").await.text, "1");
    for path in [
        format!("{EM}/accessPackages('{pkg}')"),
        format!("{EM}/accessPackages(%27{pkg}%27)"),
        format!("{EM}/accessPackages({pkg})"),
        format!("/v1.0/IDENTITYGOVERNANCE/entitlementManagement/AccessPackages('{pkg}')"),
    ] {
        let v = app.get(&format!("{path}?$expand=catalog")).await.expect(StatusCode::OK).json();
        assert_eq!(v["id"], pkg.as_str(), "{path}");
        assert_eq!(v["catalog"]["id"], cat.as_str());
        assert_eq!(v["catalog"]["@odata.type"], "#microsoft.graph.accessPackageCatalog");
    }
    let v = app.get(&format!("{EM}/catalogs('{cat}')/ACCESSPACKAGES")).await.expect(StatusCode::OK).json();
    assert_eq!(v["value"][0]["id"], pkg.as_str());
    let r = app.patch(&format!("{EM}/accesspackages('{pkg}')"), &json!({"description": "via key"})).await;
    r.expect(StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("{EM}/accessPackages/{pkg}")).await.json()["description"], "via key");
    app.assert_no_5xx();
}
