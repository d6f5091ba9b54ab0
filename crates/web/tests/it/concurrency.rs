//! Concurrent requests on one SQLite database: updates never overwrite each other, duplicates
//! race to exactly one success, and nothing answers 5xx.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use crate::app::{EM, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_different_properties_all_land() {
    let app = Arc::new(TestApp::new().await);
    let cat = app.catalog("Race").await;
    let pkg = app.package(&cat, "Contended").await;
    let path = format!("{EM}/accessPackages/{pkg}");
    let bodies = [
        json!({"description": "d"}),
        json!({"isHidden": true}),
        json!({"displayName": "Renamed"}),
        json!({"description": "d"}),
    ];
    let mut tasks = Vec::new();
    for body in bodies {
        let (app, path) = (app.clone(), path.clone());
        tasks.push(tokio::spawn(async move { app.patch(&path, &body).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NO_CONTENT);
    }
    let now = app.get(&path).await.json();
    assert_eq!(
        (&now["description"], &now["isHidden"], &now["displayName"]),
        (&json!("d"), &json!(true), &json!("Renamed"))
    );
    app.assert_no_5xx();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_give_one_success_and_conflicts() {
    let app = Arc::new(TestApp::new().await);
    let cat = app.catalog("Race").await;
    let g = app.group("Contended").await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, cat, g) = (app.clone(), cat.clone(), g.clone());
        tasks.push(tokio::spawn(async move { app.add_group(&cat, &g).await.status }));
    }
    for i in 0..6 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.post("/v1.0/users", &json!({"displayName": format!("Twin {i}"), "userPrincipalName": "twin@x.io"}))
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().as_u16());
    }
    let (adds, users) = statuses.split_at(6);
    for s in [adds, users] {
        assert_eq!(s.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert_eq!(s.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
    }
    assert_eq!(app.get(&format!("{EM}/catalogs/{cat}/resources")).await.json()["value"].as_array().unwrap().len(), 1);
    app.assert_no_5xx();
}
