//! What the access-review HTTP tests share (`reviews`, `review_history`): a catalog with a
//! group granted by a package and an administrators' policy, people with tokens and managers,
//! the clock and the job queue moved by hand, and reading and recording decisions.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{EM, TestApp};

pub const START: &str = "2031-01-05T09:00:00Z";
pub const AR: &str = "/v1.0/identityGovernance/accessReviews/definitions";

pub struct World {
    pub app: TestApp,
    pub package: String,
    pub group: String,
}

pub struct Person {
    pub id: String,
    pub token: String,
}

/// Runs what is due, after a second has passed (the sweep comes round every second), and what
/// that queued (revocations).
pub async fn drain(app: &TestApp) {
    advance(app, "PT1S").await;
    for _ in 0..3 {
        app.post("/ops/jobs/drain", &json!({})).await.expect(StatusCode::OK);
    }
}

pub async fn advance(app: &TestApp, by: &str) {
    app.post("/ops/clock", &json!({"advance": by})).await.expect(StatusCode::OK);
}

/// A catalog with a group, a package granting membership of it, and an administrators' policy.
pub async fn world() -> (World, String) {
    let app = TestApp::with_test_clock(START).await;
    let cat = app.catalog("Reviews").await;
    let (group, package) = app.group_package(&cat, "Ledger users", "Ledger").await;
    let policy = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": package}, "displayName": "Direct", "allowedTargetScope": "notSpecified"}),
        )
        .await;
    let policy = policy.expect(StatusCode::CREATED).id();
    (World { app, package, group }, policy)
}

impl World {
    pub async fn person(&self, upn: &str, manager: Option<&Person>) -> Person {
        let (id, token) = self.app.person(upn).await;
        if let Some(m) = manager {
            let link = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", m.id)});
            let r = self.app.put(&format!("/v1.0/users/{id}/manager/$ref"), &link).await;
            assert!(r.status.is_success(), "{}", r.text);
        }
        Person { id, token }
    }

    pub async fn assign(&self, policy: &str, people: &[&Person]) {
        for p in people {
            let body = json!({"requestType": "adminAdd", "assignment": {"accessPackageId": self.package,
                "assignmentPolicyId": policy, "targetId": p.id}});
            self.app.post(&format!("{EM}/assignmentRequests"), &body).await.expect(StatusCode::CREATED);
        }
        drain(&self.app).await;
    }

    pub async fn state_of(&self, p: &Person) -> String {
        let q = format!("{EM}/assignments?$filter=target/objectId%20eq%20'{}'&$orderby=createdDateTime%20desc", p.id);
        let v = self.app.get(&q).await.json();
        v["value"][0]["state"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn members(&self) -> Vec<String> {
        let v = self.app.get(&format!("/v1.0/groups/{}/members", self.group)).await.json();
        let mut ids: Vec<String> =
            v["value"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    }

    pub fn scope(&self) -> Value {
        json!({"@odata.type": "#microsoft.graph.accessReviewQueryScope", "queryType": "MicrosoftGraph",
            "query": format!("/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{}')", self.package)})
    }

    pub async fn create(&self, body: Value) -> String {
        let r = self.app.post(AR, &body).await;
        r.expect(StatusCode::CREATED).id()
    }

    pub async fn only_instance(&self, d: &str) -> String {
        let v = self.app.get(&format!("{AR}/{d}/instances")).await.json();
        let list = v["value"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{v}");
        list[0]["id"].as_str().unwrap().to_owned()
    }

    pub async fn decisions(&self, token: &str, d: &str, i: &str, mine: bool) -> Vec<Value> {
        let path = if mine {
            format!("{AR}/{d}/instances/{i}/decisions/filterByCurrentUser(on='reviewer')")
        } else {
            format!("{AR}/{d}/instances/{i}/decisions")
        };
        let r = self.app.get_as(token, &path).await;
        r.expect(StatusCode::OK);
        r.json()["value"].as_array().unwrap().clone()
    }

    pub async fn record(
        &self,
        token: &str,
        d: &str,
        i: &str,
        x: &str,
        decision: &str,
        why: Option<&str>,
    ) -> crate::app::Resp {
        let path = format!("{AR}/{d}/instances/{i}/decisions/{x}");
        self.app.json_as(token, Method::PATCH, &path, &json!({"decision": decision, "justification": why})).await
    }
}

pub fn of<'a>(decisions: &'a [Value], p: &Person) -> &'a Value {
    decisions.iter().find(|x| x["principal"]["id"] == p.id.as_str()).unwrap_or_else(|| panic!("{decisions:?}"))
}

pub fn principals(decisions: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = decisions.iter().map(|x| x["principal"]["id"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

pub fn sorted(ids: &[&Person]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|p| p.id.clone()).collect();
    v.sort();
    v
}
