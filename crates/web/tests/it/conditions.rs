//! Conditional requirements of a policy, with a real OpenID Connect provider: a request
//! without multi-factor authentication is refused with the condition named, and accepted after
//! step-up (a new sign-in with `acr_values=mfa`); an approver's decision likewise; bad settings
//! are refused.

use axum::http::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use steward_app::identity::ClaimMapping;
use steward_oidc::{ProviderConfig, SignInOptions};
use steward_testpeers::{MintOptions, OidcProvider};
use steward_web::identity::IdentityProvider;

use crate::app::{EM, TestApp};

fn users() -> Value {
    json!({
        "alice": {"preferred_username": "alice@contoso.com", "name": "Alice", "amr": ["pwd"]},
        "boss": {"preferred_username": "boss@contoso.com", "name": "Boss", "amr": ["pwd"]},
    })
}

fn config(peer: &OidcProvider) -> ProviderConfig {
    ProviderConfig::new(peer.issuer(), peer.client_id())
        .with_client_secret(peer.client_secret().to_owned().into())
        .with_audience([peer.api_audience().to_owned()])
}

struct World {
    app: TestApp,
    peer: OidcProvider,
    package: String,
    boss: String,
}

async fn world(conditions: Value) -> World {
    let peer = OidcProvider::start(&users());
    let app = TestApp::with_identity(IdentityProvider::new(config(&peer)).unwrap(), ClaimMapping::default()).await;
    app.user("Alice", "alice@contoso.com").await;
    let boss = app.user("Boss", "boss@contoso.com").await;
    let cat = app.catalog("Finance").await;
    let package = app.package(&cat, "Ledger").await;
    let approval = if conditions.get("onApproval").is_some() {
        json!({"isApprovalRequiredForAdd": true, "stages": [{"durationBeforeAutomaticDenial": "P7D",
            "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": boss}]}]})
    } else {
        json!({"isApprovalRequiredForAdd": false, "stages": []})
    };
    let r = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": package}, "displayName": "Guarded", "allowedTargetScope": "allMemberUsers",
                "requestApprovalSettings": approval, "conditionalRequirements": conditions}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert!(r.json()["conditionalRequirements"].is_object(), "{}", r.text);
    World { app, peer, package, boss }
}

/// An access token from a sign-in through the provider's authorization endpoint, with
/// `acr_values` (step-up) when given.
async fn sign_in(peer: &OidcProvider, user: &str, acr_values: Option<&str>) -> String {
    let http = steward_oidc::http_client(std::time::Duration::from_secs(10)).unwrap();
    let client = steward_oidc::Provider::discover(config(peer), http).await.unwrap();
    let redirect = "http://127.0.0.1:9/client/callback";
    let options = SignInOptions { acr_values: acr_values.map(str::to_owned), ..SignInOptions::default() };
    let (url, pending) = client.begin_sign_in(redirect, &options).unwrap();
    let answer = peer.authorize(&url, redirect, user).await;
    let done = client
        .finish_sign_in(&pending, &answer.code, &answer.state, steward_app::Clock::now(&steward_app::SystemClock))
        .await
        .unwrap();
    done.access_token.expose_secret().to_owned()
}

/// Asserts the status and Graph's error shape; returns the message.
#[track_caller]
fn refused(r: &crate::app::Resp, status: StatusCode) -> String {
    r.expect_error(status);
    r.json()["error"]["message"].as_str().unwrap().to_owned()
}

async fn request(w: &World, token: &str) -> crate::app::Resp {
    w.app
        .json_as(
            token,
            Method::POST,
            &format!("{EM}/assignmentRequests"),
            &json!({"requestType": "userAdd", "assignment": {"accessPackageId": w.package}}),
        )
        .await
}

#[tokio::test]
async fn a_request_needs_multi_factor_authentication_and_succeeds_after_step_up() {
    let w = world(json!({"onRequest": {"multiFactorAuthentication": true}})).await;
    let plain = sign_in(&w.peer, "alice", None).await;
    let r = request(&w, &plain).await;
    let message = refused(&r, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "ConditionalRequirementsNotMet");
    assert!(message.contains("multi-factor authentication") && message.contains("acr_values=mfa"), "{message}");
    assert!(message.contains("Guarded"), "names the policy: {message}");
    let details = &r.json()["error"]["details"];
    assert_eq!(details[0]["code"], "multiFactorAuthentication", "{details}");
    assert_eq!(details[1]["target"], "/auth/login?acr_values=mfa", "where to sign in again: {details}");

    let stepped_up = sign_in(&w.peer, "alice", Some("mfa")).await;
    let r = request(&w, &stepped_up).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.json()["state"], "delivered");
}

#[tokio::test]
async fn a_decision_needs_the_approvers_multi_factor_sign_in_and_a_recent_one() {
    let w = world(json!({"onApproval": {"multiFactorAuthentication": true, "maxSignInAgeMinutes": 15}})).await;
    // No requirement at request time.
    let r = request(&w, &w.peer.mint(MintOptions::user("alice")).await).await;
    r.expect(StatusCode::CREATED);
    let rid = r.id();
    let stages = format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages");
    let boss_plain = sign_in(&w.peer, "boss", None).await;
    let stage = w.app.get_as(&boss_plain, &stages).await.json()["value"][0]["id"].as_str().unwrap().to_owned();
    let decide = |token: String| {
        let app = &w.app;
        let url = format!("{stages}/{stage}");
        async move { app.json_as(&token, Method::PATCH, &url, &json!({"reviewResult": "Approve"})).await }
    };
    let r = decide(boss_plain).await;
    let message = refused(&r, StatusCode::FORBIDDEN);
    assert!(message.contains("multi-factor"), "{message}");
    // A token with MFA, but a sign-in from two hours ago.
    let stale = w
        .peer
        .mint(MintOptions {
            claims: serde_json::from_value(json!({"amr": ["pwd", "mfa"], "auth_time": steward_app::Clock::now(&steward_app::SystemClock).as_second() - 7200}))
                .unwrap(),
            ..MintOptions::user("boss")
        })
        .await;
    let r = decide(stale).await;
    let message = refused(&r, StatusCode::FORBIDDEN);
    assert!(message.contains("no older than 15 minutes") && message.contains("max_age"), "{message}");
    assert!(!message.contains("multi-factor"), "MFA was shown: {message}");
    // Nothing was recorded by the refused decisions.
    let v = w.app.get(&format!("{EM}/assignmentRequests/{rid}")).await.json();
    assert_eq!(v["state"], "pendingApproval");

    let fresh = sign_in(&w.peer, "boss", Some("mfa")).await;
    decide(fresh).await.expect(StatusCode::NO_CONTENT);
    let v = w.app.get(&format!("{EM}/assignmentRequests/{rid}")).await.json();
    assert_ne!(v["state"], "pendingApproval", "{v}");
    let _ = &w.boss;
}

#[tokio::test]
async fn a_request_must_come_from_an_allowed_network() {
    let w = world(json!({"onRequest": {"allowedNetworks": ["10.0.0.0/8", "2001:db8::/32"]}})).await;
    let token = w.peer.mint(MintOptions::user("alice")).await;
    let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": w.package}});
    let url = format!("{EM}/assignmentRequests");
    let r = w.app.json_from("192.0.2.7:50000", &token, Method::POST, &url, &body).await;
    let message = refused(&r, StatusCode::FORBIDDEN);
    assert!(message.contains("allowed network"), "{message}");
    // Without an address (no listener reported one), the condition is not met either.
    refused(&request(&w, &token).await, StatusCode::FORBIDDEN);
    // An X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
    let r = w
        .app
        .send(
            Method::POST,
            &url,
            Some(&token),
            &[("content-type", "application/json"), ("x-forwarded-for", "10.1.1.1")],
            body.to_string(),
        )
        .await;
    refused(&r, StatusCode::FORBIDDEN);
    let r = w.app.json_from("10.20.30.40:50000", &token, Method::POST, &url, &body).await;
    r.expect(StatusCode::CREATED);
    // From an IPv6 address inside the network the request passes the condition too (and finds
    // the access already there).
    let r = w.app.json_from("[2001:db8::5]:443", &token, Method::POST, &url, &body).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "already assigned: {}", r.text);
}

#[tokio::test]
async fn bad_requirements_are_refused() {
    let app = TestApp::new().await;
    let cat = app.catalog("C").await;
    let package = app.package(&cat, "P").await;
    for (bad, needle) in [
        (json!({"onRequest": {"maxSignInAgeMinutes": 0}}), "maxSignInAgeMinutes"),
        (json!({"onRequest": {"allowedNetworks": ["10.0.0.0/40"]}}), "CIDR"),
        (json!({"onApproval": {"mfa": true}}), "mfa"),
        (json!({"whenever": {}}), "whenever"),
    ] {
        let r = app
            .post(
                &format!("{EM}/assignmentPolicies"),
                &json!({"accessPackage": {"id": package}, "displayName": "P", "allowedTargetScope": "allMemberUsers",
                    "conditionalRequirements": bad}),
            )
            .await;
        let message = refused(&r, StatusCode::BAD_REQUEST);
        assert!(message.contains(needle), "{needle}: {message}");
    }
    app.assert_no_5xx();
}
