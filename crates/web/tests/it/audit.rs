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
