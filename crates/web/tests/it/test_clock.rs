//! The test-only routes: `/ops/clock` and `/ops/jobs/drain` exist only on a test clock, need an
//! administrator, answer in Graph's error shape, and let a test move time and then wait for
//! exactly the work it made due.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;
use steward_app::auth::Principal;
use steward_app::lifecycle::requests::{self, RequestInput};
use steward_domain::enums::{AssignmentState, RequestType};

use crate::app::{ADMIN, EM, TestApp};

const START: &str = "2031-03-01T09:00:00Z";

#[tokio::test]
async fn test_routes_do_not_exist_without_the_test_clock() {
    let app = TestApp::new().await;
    for (method, path) in [(Method::GET, "/ops/clock"), (Method::POST, "/ops/clock"), (Method::POST, "/ops/jobs/drain")]
    {
        let r = app
            .send(
                method,
                path,
                Some(ADMIN),
                &[("content-type", "application/json")],
                Body::from(r#"{"advance":"P1D"}"#),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.graph_error(), "ResourceNotFound");
    }
}

#[tokio::test]
async fn the_clock_is_read_advanced_and_set() {
    let app = TestApp::with_test_clock(START).await;
    let r = app.get("/ops/clock").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), json!({"now": START}));

    let r = app.post("/ops/clock", &json!({"advance": "P1D"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["now"], "2031-03-02T09:00:00Z");
    // Python's str(timedelta), as msgraph-sdk tests write durations
    let r = app.post("/ops/clock", &json!({"advance": "1 day, 2:30:00"})).await;
    assert_eq!(r.json()["now"], "2031-03-03T11:30:00Z");
    let r = app.post("/ops/clock", &json!({"set": "2031-06-01T00:00:00.5+00:00"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["now"], "2031-06-01T00:00:00.5Z");
    assert_eq!(app.services.clock.now().to_string(), "2031-06-01T00:00:00.5Z", "the services read the moved clock");
    assert_eq!(app.get("/ops/clock").await.json()["now"], "2031-06-01T00:00:00.5Z");

    for bad in [
        json!({}),
        json!({"advance": "P1D", "set": START}),
        json!({"advance": "soon"}),
        json!({"set": "tomorrow"}),
        json!({"advance": 60}),
        json!({"rewind": "P1D"}),
    ] {
        let r = app.post("/ops/clock", &bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        r.graph_error();
    }
    assert_eq!(app.get("/ops/clock").await.json()["now"], "2031-06-01T00:00:00.5Z", "bad requests moved nothing");

    // Administrators only.
    let (_, user) = app.user_with_token().await;
    for r in [
        app.get_as(&user, "/ops/clock").await,
        app.json_as(&user, Method::POST, "/ops/clock", &json!({"advance": "P1D"})).await,
        app.json_as(&user, Method::POST, "/ops/jobs/drain", &json!({})).await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert_eq!(r.graph_error(), "Authorization_RequestDenied");
    }
    let r = app.send(Method::GET, "/ops/clock", None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.graph_error();
    app.assert_no_5xx();
}

#[tokio::test]
async fn test_routes_stay_out_of_the_openapi_document() {
    let app = TestApp::with_test_clock(START).await;
    let doc = app.get("/openapi.json").await.json();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().all(|p| !p.starts_with("/ops")), "{paths:?}");
}

#[tokio::test]
async fn drain_runs_exactly_what_the_clock_made_due() {
    let app = TestApp::with_test_clock(START).await;
    // The first drain queues and runs the sweep, which then waits a second of clock time.
    assert_eq!(app.post("/ops/jobs/drain", &json!({})).await.json(), json!({"ran": 1}));
    let r = app.send(Method::POST, "/ops/jobs/drain", Some(ADMIN), &[], Body::empty()).await;
    assert_eq!(r.json(), json!({"ran": 0}), "nothing is due until the clock moves");
    app.post("/ops/clock", &json!({"advance": "PT1S"})).await;
    assert_eq!(app.post("/ops/jobs/drain", &json!({})).await.json(), json!({"ran": 1}));
    let r = app.post("/ops/jobs/drain", &json!({"rounds": 3})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "drain takes no parameters: {}", r.text);
}

/// An assignment for an hour: delivered at the first drain, expired and revoked at the drain
/// after the clock passes its end.
#[tokio::test]
async fn an_assignment_is_delivered_and_expires_as_the_clock_moves() {
    let app = TestApp::with_test_clock(START).await;
    let cat = app.catalog("Lifecycle").await;
    let g = app.group("On call").await;
    assert_eq!(app.add_group(&cat, &g).await.status, StatusCode::CREATED);
    let pkg = app.package(&cat, "On call rota").await;
    let r = app
        .post(
            &format!("{EM}/accessPackages/{pkg}/resourceRoleScopes"),
            &json!({"role": {"originId": format!("Member_{g}"), "originSystem": "AadGroup"}, "scope": {"originId": g, "originSystem": "AadGroup"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": pkg}, "displayName": "One hour", "allowedTargetScope": "allMemberUsers",
                    "expiration": {"type": "afterDuration", "duration": "PT1H"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let u = app.post("/v1.0/users", &json!({"displayName": "Robin", "userPrincipalName": "robin@x.io"})).await.id();

    // No request route exists yet: submit through the use case, on the same services.
    let req = requests::submit(
        &app.services,
        &Principal::Admin { token: None },
        RequestInput {
            request_type: Some(RequestType::AdminAdd),
            access_package_id: Some(pkg.parse().unwrap()),
            target_id: Some(u.parse().unwrap()),
            ..RequestInput::default()
        },
    )
    .await
    .unwrap();
    let store = &app.services.store;
    let members = || async { store.member_ids(g.parse().unwrap()).await.unwrap() };
    assert!(members().await.is_empty(), "delivery waits for the worker");

    let ran = app.post("/ops/jobs/drain", &json!({})).await.json()["ran"].as_u64().unwrap();
    assert!(ran >= 1, "the delivery ran");
    assert_eq!(members().await, vec![u.parse().unwrap()]);
    let assignment = store.get_request(req.id).await.unwrap().unwrap().assignment_id.unwrap();
    assert_eq!(store.get_assignment(assignment).await.unwrap().unwrap().state, AssignmentState::Delivered);

    app.post("/ops/clock", &json!({"advance": "PT59M"})).await;
    app.post("/ops/jobs/drain", &json!({})).await;
    assert_eq!(members().await.len(), 1, "not yet expired");

    app.post("/ops/clock", &json!({"advance": "0:01:00"})).await;
    app.post("/ops/jobs/drain", &json!({})).await;
    assert!(members().await.is_empty(), "expired at its end and revoked by the same drain");
    assert_eq!(store.get_assignment(assignment).await.unwrap().unwrap().state, AssignmentState::Expired);
    app.assert_no_5xx();
}
