//! The audit trail of administrators' changes made over HTTP: each change records one event,
//! named as Entra names it, initiated by the token that made it and correlated by the
//! changed object's id; a refused change records none.

use axum::http::{Method, StatusCode};
use serde_json::json;
use steward_app::auth::{TokenHolder, create_token, local_operator};
use steward_domain::audit::{AuditEvent, Initiator};

use crate::app::{EM, TestApp};

async fn trail(app: &TestApp, id: &str) -> Vec<(&'static str, String, Initiator)> {
    let events: Vec<AuditEvent> = app.services.store.events_of(id).await.unwrap();
    for e in &events {
        assert_eq!(
            (e.target_id.as_str(), e.category.as_str(), e.result.as_str()),
            (id, "EntitlementManagement", "success")
        );
    }
    events.into_iter().map(|e| (e.activity.display_name(), e.target_type, e.initiator)).collect()
}

#[tokio::test]
async fn admin_changes_over_http_leave_an_audit_trail() {
    let app = TestApp::new().await;
    let bootstrap = Initiator::App("bootstrap-admin".into());
    let (token, secret) =
        create_token(&app.services, local_operator(), "ops", TokenHolder::Administrator, None).await.unwrap();
    let ops = Initiator::App(format!("admin-token:{}", token.id));

    let cat = app.catalog("Audited").await;
    app.patch(&format!("{EM}/catalogs/{cat}"), &json!({"description": "now described"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let pkg = app.package(&cat, "Audited package").await;
    let r = app
        .json_as(
            secret.expose(),
            Method::POST,
            &format!("{EM}/assignmentPolicies"),
            &json!({"displayName": "Direct", "accessPackage": {"id": pkg}, "allowedTargetScope": "notSpecified"}),
        )
        .await;
    let policy = r.expect(StatusCode::CREATED).id();
    // Refused: the catalog still holds the package. Nothing is recorded for it.
    app.delete(&format!("{EM}/catalogs/{cat}")).await.expect_error(StatusCode::CONFLICT);

    let cat_type = "AccessPackageCatalog".to_owned();
    assert_eq!(
        trail(&app, &cat).await,
        vec![
            ("Create access package catalog", cat_type.clone(), bootstrap.clone()),
            ("Update access package catalog", cat_type, bootstrap.clone()),
        ]
    );
    assert_eq!(trail(&app, &pkg).await, vec![("Create access package", "AccessPackage".to_owned(), bootstrap)]);
    assert_eq!(
        trail(&app, &policy).await,
        vec![("Create access package assignment policy", "AccessPackageAssignmentPolicy".to_owned(), ops)]
    );
    let update = &app.services.store.events_of(&cat).await.unwrap()[1];
    assert_eq!(update.detail.as_deref(), Some("changed: description"), "the update says what it changed");
    app.assert_no_5xx();
}

/// `/auditLogs/directoryAudits`: the same trail in Graph's `directoryAudit` shape, newest first,
/// with the client's address, old and new values, filters and paging; and its hash chain
/// verifies once the worker's chainer has run.
#[tokio::test]
async fn the_trail_reads_as_directory_audits() {
    use steward_app::audit::chain;
    const DA: &str = "/v1.0/auditLogs/directoryAudits";
    let app = TestApp::new().await;
    let r = app
        .json_from(
            "192.0.2.10:5555",
            crate::app::ADMIN,
            Method::POST,
            &format!("{EM}/catalogs"),
            &json!({"displayName": "Audited"}),
        )
        .await;
    let cat = r.expect(StatusCode::CREATED).id();
    app.patch(&format!("{EM}/catalogs/{cat}"), &json!({"description": "now described"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let pkg = app.package(&cat, "Audited package").await;

    let all = app.get(DA).await.json();
    let names: Vec<&str> =
        all["value"].as_array().unwrap().iter().map(|v| v["activityDisplayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Create access package", "Update access package catalog", "Create access package catalog"]);
    assert_eq!(all["@odata.context"].as_str().unwrap().rsplit('#').next(), Some("auditLogs/directoryAudits"));

    let of_catalog = app.get(&format!("{DA}?$filter=targetResources/any(t:%20t/id%20eq%20'{cat}')")).await.json();
    let events = of_catalog["value"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{of_catalog}");
    let (update, create) = (&events[0], &events[1]);
    assert_eq!(create["initiatedBy"]["app"]["displayName"], "bootstrap-admin");
    assert_eq!(create["initiatedBy"]["user"], serde_json::Value::Null);
    assert!(
        create["additionalDetails"].as_array().unwrap().contains(&json!({"key": "ipAddress", "value": "192.0.2.10"}))
    );
    assert_eq!(
        (create["category"].as_str(), create["result"].as_str()),
        (Some("EntitlementManagement"), Some("success"))
    );
    assert_eq!(create["loggedByService"], "Entitlement Management");
    assert_eq!(create["correlationId"], cat.as_str());
    let target = &update["targetResources"][0];
    assert_eq!((target["id"].as_str(), target["type"].as_str()), (Some(cat.as_str()), Some("AccessPackageCatalog")));
    assert_eq!(
        target["modifiedProperties"],
        json!([{"displayName": "description", "oldValue": "null", "newValue": "\"now described\""}])
    );

    let one = |f: &str| {
        let app = &app;
        let f = f.to_owned();
        async move {
            let page = app.get(&format!("{DA}?$filter={}", f.replace(' ', "%20"))).await;
            page.json()["value"].as_array().unwrap().len()
        }
    };
    assert_eq!(one("activityDisplayName eq 'Update access package catalog'").await, 1);
    assert_eq!(one("startswith(activityDisplayName, 'create access')").await, 2);
    assert_eq!(one("category eq 'EntitlementManagement' and result eq 'success'").await, 3);
    assert_eq!(one(&format!("correlationId eq '{pkg}'")).await, 1);
    assert_eq!(one("activityDateTime ge 2999-01-01T00:00:00Z").await, 0);
    assert_eq!(one(&format!("initiatedBy/user/id eq '{}'", crate::app::UNKNOWN)).await, 0);

    // Paging: one at a time, oldest first when asked, every event once.
    let mut seen = Vec::new();
    let mut next = Some(format!("{DA}?$top=1&$orderby=activityDateTime&$count=true"));
    let mut pages = 0;
    while let Some(link) = next {
        let path = if link.starts_with('/') { link } else { crate::app::path_of(&link) };
        let page = app.get(&path).await.json();
        assert_eq!(page["@odata.count"], 3, "{page}");
        seen.extend(
            page["value"].as_array().unwrap().iter().map(|v| v["activityDisplayName"].as_str().unwrap().to_owned()),
        );
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["Create access package catalog", "Update access package catalog", "Create access package"]);

    let first = all["value"][0]["id"].as_str().unwrap();
    app.get(&format!("{DA}/{first}")).await.expect(StatusCode::OK);
    app.get(&format!("{DA}/{}", crate::app::UNKNOWN)).await.expect_error(StatusCode::NOT_FOUND);
    let bad = app.get(&format!("{DA}?$filter=colour%20eq%20'red'")).await;
    bad.expect_error(StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("colour"), "{}", bad.json());
    app.get(&format!("{DA}?$filter=activityDateTime%20ge%20'yesterday'")).await.expect_error(StatusCode::BAD_REQUEST);

    // The chainer links all three; the chain verifies.
    let store = &*app.services.store;
    let now = app.services.clock.now();
    assert_eq!(chain::catch_up(store, None, now).await.unwrap(), 3);
    let report = chain::verify(store, None, |_| {}).await.unwrap();
    let v = report.outcome.unwrap();
    assert_eq!((v.records, v.last_seq, report.unchained), (3, 3, 0));
    app.assert_no_5xx();
}
