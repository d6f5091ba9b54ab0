//! `/metrics`: off without a metrics token (404 in Graph's error shape, saying how to turn it
//! on), 401 without the token or with another one (the administrator's included), and with it
//! Prometheus' text format: requests by state read from the database, the approval's latency
//! on the test clock, the job queue, deliveries per connection, emails.
//!
//! Each test collects into a recorder of its own, set as the thread's default: `#[tokio::test]`
//! runs the app, the worker and their tasks on the test's one thread, so tests running side by
//! side in one process (plain `cargo test`) do not see each other's figures.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::PrometheusRecorder;
use serde_json::json;

use crate::app::{ADMIN, EM, TestApp};

const START: &str = "2031-03-01T09:00:00Z";
const TOKEN: &str = "metrics-token-for-tests-0123";

fn recorder() -> PrometheusRecorder {
    steward_web::routes::ops::prometheus_builder().unwrap().build_recorder()
}

/// The value of sample `series` (its name and labels as rendered), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[track_caller]
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

async fn scrape(app: &TestApp) -> String {
    let r = app.send(Method::GET, "/metrics", Some(TOKEN), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.header("content-type").starts_with("text/plain; version=0.0.4"), "{:?}", r.headers);
    r.text
}

#[tokio::test]
async fn metrics_are_off_without_a_token() {
    let rec = recorder();
    // Neither without a recorder nor with one: the token turns them on.
    for handle in [None, Some(rec.handle())] {
        let (app, _) = TestApp::with_metrics(START, handle, None).await;
        for token in [None, Some(ADMIN), Some(TOKEN)] {
            let r = app.send(Method::GET, "/metrics", token, &[], Body::empty()).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
            assert_eq!(r.graph_error(), "ResourceNotFound");
            let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
            assert!(message.contains("metrics_token") && message.contains("STEWARD_METRICS_TOKEN"), "{message}");
        }
        app.assert_no_5xx();
    }
    // The plain app (as most tests build it) has them off too.
    let app = TestApp::new().await;
    app.send(Method::GET, "/metrics", None, &[], Body::empty()).await.expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_need_their_token_and_show_requests_approvals_and_deliveries() {
    let rec = recorder();
    let _local = metrics::set_default_local_recorder(&rec);
    steward_app::metrics::describe();
    let (app, _clock) = TestApp::with_metrics(START, Some(rec.handle()), Some(TOKEN)).await;

    // Only the metrics token: not none, not another, not the administrator's, not Basic.
    // (bearer token, other headers)
    type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>);
    let bad: [Case<'_>; 4] = [
        (None, vec![]),
        (Some("metrics-token-for-tests-0124"), vec![]),
        (Some(ADMIN), vec![]),
        (None, vec![("authorization", "Basic bWV0cmljczptZXRyaWNz")]),
    ];
    for (token, headers) in bad {
        let r = app.send(Method::GET, "/metrics", token, &headers, Body::empty()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?} {headers:?}: {}", r.text);
        assert_eq!(r.graph_error(), "InvalidAuthenticationToken");
        assert!(r.header("www-authenticate").starts_with("Bearer"));
        assert!(!r.text.contains("steward_"), "{}", r.text);
    }

    // A made-up HTTP method is not a label of its own.
    let brew = Method::from_bytes(b"BREW").unwrap();
    assert!(app.send(brew, "/healthz", None, &[], Body::empty()).await.status.is_client_error());

    // Every metric is described; the gauges read from the database are there at zero.
    let text = scrape(&app).await;
    assert!(text.contains("method=\"other\"") && !text.contains("BREW"), "{text}");
    for name in [
        "steward_requests",
        "steward_jobs_pending",
        "steward_jobs_oldest_due_age_seconds",
        "steward_review_decisions",
        "steward_emails_sent_total",
        "steward_emails_failed_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} described in:\n{text}");
    }
    assert_eq!(value(&text, "steward_requests{state=\"pendingApproval\"}"), 0.0);
    assert_eq!(value(&text, "steward_jobs_oldest_due_age_seconds"), 0.0);
    assert_eq!(value(&text, "steward_review_decisions{state=\"pending\"}"), 0.0);
    assert_eq!(value(&text, "steward_emails_sent_total"), 0.0);

    // A package granting a group, approved by one approver.
    let cat = app.catalog("Metrics").await;
    let g = app.group("Dashboards").await;
    assert_eq!(app.add_group(&cat, &g).await.status, StatusCode::CREATED);
    let pkg = app.package(&cat, "Dashboard viewers").await;
    let r = app
        .post(
            &format!("{EM}/accessPackages/{pkg}/resourceRoleScopes"),
            &json!({"role": {"originId": format!("Member_{g}"), "originSystem": "AadGroup"},
                    "scope": {"originId": g, "originSystem": "AadGroup"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (approver, approver_token) = app.person("approver@contoso.com").await;
    let (_, alice) = app.person("alice@contoso.com").await;
    let r = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": pkg}, "displayName": "Approved", "allowedTargetScope": "allMemberUsers",
                "requestorSettings": {"enableTargetsToSelfAddAccess": true},
                "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [
                    {"durationBeforeAutomaticDenial": "P7D",
                     "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": approver}]}]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .json_as(
            &alice,
            Method::POST,
            &format!("{EM}/assignmentRequests"),
            &json!({"requestType": "userAdd", "assignment": {"accessPackageId": pkg}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["state"], "pendingApproval");
    let rid = r.id();

    // The request is counted in its state, read from the database at the scrape.
    let text = scrape(&app).await;
    assert_eq!(value(&text, "steward_requests{state=\"pendingApproval\"}"), 1.0, "{text}");
    assert_eq!(value(&text, "steward_requests{state=\"delivered\"}"), 0.0);

    // Approved two hours later: the approval took 7,200 s.
    app.post("/ops/clock", &json!({"advance": "PT2H"})).await.expect(StatusCode::OK);
    let stages = app.get_as(&approver_token, &format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages")).await;
    let stage = stages.json()["value"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .json_as(
            &approver_token,
            Method::PATCH,
            &format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages/{stage}"),
            &json!({"reviewResult": "Approve", "justification": "dashboards are fine"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let text = scrape(&app).await;
    assert_eq!(value(&text, "steward_approval_latency_seconds_count{outcome=\"approved\"}"), 1.0, "{text}");
    assert_eq!(value(&text, "steward_approval_latency_seconds_sum{outcome=\"approved\"}"), 7200.0);
    assert_eq!(value(&text, "steward_approval_latency_seconds_bucket{outcome=\"approved\",le=\"3600\"}"), 0.0);
    assert_eq!(value(&text, "steward_approval_latency_seconds_bucket{outcome=\"approved\",le=\"14400\"}"), 1.0);
    assert_eq!(value(&text, "steward_requests{state=\"pendingApproval\"}"), 0.0, "a gauge that fell to zero");
    assert_eq!(value(&text, "steward_requests{state=\"delivering\"}"), 1.0);
    assert_eq!(value(&text, "steward_jobs_pending{kind=\"deliver\"}"), 1.0);

    // Nobody runs the delivery for a minute: the queue's oldest due job is a minute old.
    app.post("/ops/clock", &json!({"advance": "PT1M"})).await.expect(StatusCode::OK);
    let text = scrape(&app).await;
    assert_eq!(value(&text, "steward_jobs_oldest_due_age_seconds"), 60.0, "{text}");

    // Delivered into the built-in directory.
    app.post("/ops/jobs/drain", &json!({})).await.expect(StatusCode::OK);
    let text = scrape(&app).await;
    assert_eq!(value(&text, "steward_requests{state=\"delivered\"}"), 1.0, "{text}");
    assert_eq!(value(&text, "steward_requests{state=\"delivering\"}"), 0.0);
    assert_eq!(value(&text, "steward_jobs_pending{kind=\"deliver\"}"), 0.0);
    assert_eq!(value(&text, "steward_jobs_oldest_due_age_seconds"), 0.0);
    assert_eq!(value(&text, "steward_delivery_latency_seconds_count{connection=\"directory\"}"), 1.0);
    assert_eq!(sample(&text, "steward_delivery_failures_total{connection=\"directory\"}"), None, "none failed");
    // No user ids, request ids or paths in any label.
    for id in [rid.as_str(), approver.as_str(), pkg.as_str()] {
        assert!(!text.contains(id), "{id} in:\n{text}");
    }

    // The mail sender's helpers.
    steward_app::metrics::mail_sent();
    steward_app::metrics::mail_sent();
    steward_app::metrics::mail_failed(true);
    let text = scrape(&app).await;
    assert_eq!(value(&text, "steward_emails_sent_total"), 2.0, "{text}");
    assert_eq!(value(&text, "steward_emails_failed_total{reason=\"transient\"}"), 1.0);
    assert_eq!(value(&text, "steward_emails_failed_total{reason=\"permanent\"}"), 0.0);
    app.assert_no_5xx();
}
