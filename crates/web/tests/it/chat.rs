//! Chat webhooks of catalogs, posted to a real HTTP receiver on loopback: administrators add,
//! list, test and remove them (the address never shown again); a request waiting for approval
//! is announced once to each of its catalog's webhooks, in Slack's and Teams' formats, with a
//! link into the portal; a webhook that fails for now is tried again until it takes the
//! message, once; bad input is refused with Graph's error shape.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::auth::{TokenHolder, create_token, local_operator};

use crate::app::{EM, TestApp};

const START: &str = "2031-03-01T09:00:00Z";

/// What the receiver got, by path, and how many times each path still answers 503.
#[derive(Default)]
struct Receiver {
    posts: Mutex<Vec<(String, Value)>>,
    failing: Mutex<Vec<String>>,
}

impl Receiver {
    fn posts(&self, path: &str) -> Vec<Value> {
        self.posts.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, v)| v.clone()).collect()
    }
}

async fn receive(State(r): State<Arc<Receiver>>, Path(path): Path<String>, body: String) -> StatusCode {
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    r.posts.lock().unwrap().push((path.clone(), value));
    let mut failing = r.failing.lock().unwrap();
    match failing.iter().position(|p| *p == path) {
        Some(i) => {
            failing.remove(i);
            StatusCode::SERVICE_UNAVAILABLE
        }
        None => StatusCode::OK,
    }
}

/// A webhook receiver on a free loopback port: its base URL.
async fn receiver(r: Arc<Receiver>) -> String {
    let app = axum::Router::new().route("/hooks/{path}", axum::routing::post(receive)).with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hooks")
}

async fn drain(app: &TestApp, by: &str) {
    app.post("/ops/clock", &json!({"advance": by})).await.expect(StatusCode::OK);
    for _ in 0..3 {
        app.post("/ops/jobs/drain", &json!({})).await.expect(StatusCode::OK);
    }
}

#[tokio::test]
async fn a_request_waiting_for_approval_is_announced_once_to_each_webhook_of_its_catalog() {
    let r = Arc::new(Receiver::default());
    let base = receiver(r.clone()).await;
    let (app, _clock) = TestApp::with_chat(START).await;
    let catalog = app.catalog("Finance").await;
    let other = app.catalog("Marketing").await;
    let (_, package) = app.group_package(&catalog, "Ledger users", "Ledger").await;

    // Administrators add webhooks; the address is a secret and never comes back.
    let hooks = format!("/v1.0/steward/catalogs/{catalog}/chatWebhooks");
    let slack = app
        .post(
            &hooks,
            &json!({"displayName": "Finance approvals", "flavor": "slack", "url": format!("{base}/slack-s3cret")}),
        )
        .await;
    slack.expect(StatusCode::CREATED);
    assert!(!slack.text.contains("s3cret"), "{}", slack.text);
    assert_eq!(slack.json()["host"], "127.0.0.1");
    assert_eq!(slack.json()["flavor"], "slack");
    let teams = json!({"displayName": "Finance team", "flavor": "teams", "url": format!("{base}/teams-s3cret")});
    let teams_id = app.post(&hooks, &teams).await.expect(StatusCode::CREATED).id();
    let elsewhere = format!("/v1.0/steward/catalogs/{other}/chatWebhooks");
    app.post(&elsewhere, &json!({"displayName": "Marketing", "flavor": "slack", "url": format!("{base}/marketing")}))
        .await
        .expect(StatusCode::CREATED);
    let listed = app.get(&hooks).await;
    assert_eq!(listed.json()["value"].as_array().unwrap().len(), 2);
    assert!(!listed.text.contains("s3cret"), "{}", listed.text);

    // Bad input: Graph's error shape, nothing written.
    for (body, status) in [
        (json!({"displayName": "x", "flavor": "irc", "url": format!("{base}/x")}), StatusCode::BAD_REQUEST),
        (json!({"displayName": "x", "flavor": "slack", "url": "http://hooks.example.com/x"}), StatusCode::BAD_REQUEST),
        (json!({"displayName": "x", "flavor": "slack"}), StatusCode::BAD_REQUEST),
        (
            json!({"displayName": "x", "flavor": "slack", "url": format!("{base}/x"), "secret": 1}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        app.post(&hooks, &body).await.expect_error(status);
    }
    let nowhere = "/v1.0/steward/catalogs/00000000-0000-4000-8000-000000000009/chatWebhooks";
    app.post(nowhere, &json!({"displayName": "x", "flavor": "slack", "url": format!("{base}/x")}))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    app.get(nowhere).await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(app.get(&hooks).await.json()["value"].as_array().unwrap().len(), 2);

    // The test action posts now.
    let test = app.post(&format!("/v1.0/steward/chatWebhooks/{teams_id}/test"), &json!({})).await;
    assert_eq!(test.expect(StatusCode::OK).json()["succeeded"], true, "{}", test.text);
    assert_eq!(r.posts("teams-s3cret").len(), 1);
    r.posts.lock().unwrap().clear();

    // A request needing Bob's approval; the Slack webhook is down for the first try.
    let bob = app.user("Bob", "bob@contoso.test").await;
    let (_, ada_token) = app.person("ada@contoso.test").await;
    let body = json!({"accessPackage": {"id": package}, "displayName": "Approved", "allowedTargetScope": "allMemberUsers",
        "requestorSettings": {"enableTargetsToSelfAddAccess": true},
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [{"durationBeforeAutomaticDenial": "P7D",
            "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": bob}]}]}});
    app.post(&format!("{EM}/assignmentPolicies"), &body).await.expect(StatusCode::CREATED);
    r.failing.lock().unwrap().push("slack-s3cret".into());
    let request = json!({"requestType": "userAdd", "assignment": {"accessPackageId": package},
        "justification": "Quarter close"});
    app.json_as(&ada_token, Method::POST, &format!("{EM}/assignmentRequests"), &request)
        .await
        .expect(StatusCode::CREATED);
    drain(&app, "PT1S").await;

    let t = r.posts("teams-s3cret");
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["@type"], "MessageCard");
    assert!(t[0]["title"].as_str().unwrap().contains("Ledger"), "{}", t[0]);
    let open = t[0]["potentialAction"][0]["targets"][0]["uri"].as_str().unwrap();
    assert!(open.starts_with("https://steward.test/"), "{open}");
    assert!(t[0].to_string().contains("Quarter close"), "the justification is shown: {}", t[0]);
    assert_eq!(r.posts("slack-s3cret").len(), 1, "tried once, refused for now");
    assert!(r.posts("marketing").is_empty(), "another catalog's channel hears nothing");

    // After the backoff the Slack webhook takes it; nothing is posted twice.
    drain(&app, "PT31S").await;
    let s = r.posts("slack-s3cret");
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0], s[1], "the same message, tried again");
    let text = s[1]["text"].as_str().unwrap();
    assert!(text.starts_with('*') && text.contains("Ledger"), "{text}");
    assert!(text.contains("|") && text.contains("<https://steward.test/"), "a Slack link: {text}");
    drain(&app, "PT2H").await;
    assert_eq!((r.posts("slack-s3cret").len(), r.posts("teams-s3cret").len()), (2, 1), "once each");

    // Removed: gone from the list; its id no longer found.
    app.delete(&format!("/v1.0/steward/chatWebhooks/{teams_id}")).await.expect(StatusCode::NO_CONTENT);
    app.delete(&format!("/v1.0/steward/chatWebhooks/{teams_id}")).await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(app.get(&hooks).await.json()["value"].as_array().unwrap().len(), 1);

    // Only administrators manage webhooks.
    let (_, bob_token) = {
        let id: steward_domain::ids::UserId = bob.parse().unwrap();
        create_token(&app.services, local_operator(), "bob", TokenHolder::User(id), None).await.unwrap()
    };
    app.get_as(bob_token.expose(), &hooks).await.expect_error(StatusCode::FORBIDDEN);
}
