//! The request lifecycle over HTTP: a user requests, their manager approves through the
//! approval's stage, delivery puts them in the group; every bad request answers a Graph
//! error with a 4xx and changes nothing; Graph's function segments parse.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::auth::{TokenHolder, create_token, local_operator};
use steward_app::lifecycle::worker::Worker;

use crate::app::{ADMIN, EM, TestApp};

struct Person {
    id: String,
    token: String,
}

async fn person(app: &TestApp, name: &str, manager: Option<&Person>) -> Person {
    let r = app
        .post(
            "/v1.0/users",
            &json!({"displayName": name, "userPrincipalName": format!("{name}@contoso.com"), "department": "Sales"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    if let Some(m) = manager {
        let r = app
            .json_as(
                ADMIN,
                Method::PUT,
                &format!("/v1.0/users/{id}/manager/$ref"),
                &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", m.id)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    let (_, secret) = create_token(&app.services, local_operator(), name, TokenHolder::User(id.parse().unwrap()), None)
        .await
        .unwrap();
    Person { id, token: secret.expose().to_owned() }
}

struct Setup {
    app: TestApp,
    group: String,
    package: String,
    policy: String,
    alice: Person,
    manager: Person,
    stranger: Person,
}

async fn setup() -> Setup {
    let app = TestApp::new().await;
    let cat = app.catalog("Sales").await;
    let group = app.group("SugarLearning Prod").await;
    assert_eq!(app.add_group(&cat, &group).await.status, StatusCode::CREATED);
    let package = app.package(&cat, "SugarLearning Prod Contributor").await;
    let roles = app
        .get(&format!("{EM}/catalogs/{cat}/resourceRoles?$filter=originId eq 'Member_{group}'&$expand=resource($expand=scopes)").replace(' ', "%20"))
        .await
        .json();
    let role = &roles["value"][0];
    let r = app
        .post(
            &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
            &json!({"role": {"id": role["id"], "originId": role["originId"], "originSystem": "AadGroup",
                "resource": {"id": role["resource"]["id"]}},
                "scope": {"id": role["resource"]["scopes"][0]["id"], "originId": group, "originSystem": "AadGroup"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let policy = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": package}, "displayName": "Sales staff", "allowedTargetScope": "allMemberUsers",
                "expiration": {"type": "afterDuration", "duration": "P30D"},
                "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true,
                    "allowCustomAssignmentSchedule": false},
                "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "isRequestorJustificationRequired": true,
                    "stages": [{"durationBeforeAutomaticDenial": "P14D",
                        "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]}]},
                "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": "ticket",
                    "text": "Ticket number?", "isRequired": true, "regexPattern": "[A-Z]+-[0-9]+"}]}),
        )
        .await;
    assert_eq!(policy.status, StatusCode::CREATED, "{}", policy.text);
    let policy = policy.id();
    let manager = person(&app, "manager", None).await;
    let alice = person(&app, "alice", Some(&manager)).await;
    let stranger = person(&app, "stranger", None).await;
    Setup { app, group, package, policy, alice, manager, stranger }
}

fn request_body(package: &str, justification: Option<&str>, ticket: &str) -> Value {
    json!({"requestType": "userAdd", "assignment": {"accessPackageId": package},
        "justification": justification,
        "answers": [{"@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": ticket,
            "answeredQuestion": {"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": "ticket"}}]})
}

#[tokio::test]
async fn request_approve_deliver_over_http() {
    let s = setup().await;
    let app = &s.app;
    let reqs = format!("{EM}/assignmentRequests");
    let r = app
        .json_as(&s.alice.token, Method::POST, &reqs, &request_body(&s.package, Some("Quarter close"), "FIN-42"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    assert_eq!(created["@odata.type"], "#microsoft.graph.accessPackageAssignmentRequest");
    assert_eq!(created["state"], "pendingApproval");
    assert_eq!(created["status"], "PendingApproval");
    assert_eq!(created["answers"][0]["answeredQuestion"]["id"], "ticket");
    let rid = created["id"].as_str().unwrap().to_owned();

    // The manager sees it among their approvals, with one stage assigned to them.
    let mine = app
        .get_as(&s.manager.token, &format!("{EM}/accessPackageAssignmentApprovals/filterByCurrentUser(on='approver')"))
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.json()["value"][0]["id"], rid.as_str());
    let stages = app.get_as(&s.manager.token, &format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages")).await;
    assert_eq!(stages.status, StatusCode::OK, "{}", stages.text);
    let stage = stages.json()["value"][0].clone();
    assert_eq!(stage["assignedToMe"], true);
    assert_eq!(stage["status"], "InProgress");
    let stage_url = format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages/{}", stage["id"].as_str().unwrap());
    // GET approval answers with its stages inline, as Graph does (the SDK reads approval.stages);
    // $select shapes it like any entity.
    let approval = app.get_as(&s.manager.token, &format!("{EM}/accessPackageAssignmentApprovals/{rid}")).await;
    assert_eq!(approval.status, StatusCode::OK, "{}", approval.text);
    let approval = approval.json();
    assert_eq!(approval["@odata.type"], "#microsoft.graph.approval");
    assert_eq!(approval["id"], rid.as_str());
    assert_eq!(approval["stages"].as_array().map(Vec::len), Some(1), "{approval}");
    assert_eq!(approval["stages"][0]["id"], stage["id"]);
    assert_eq!(approval["stages"][0]["assignedToMe"], true);
    let selected =
        app.get_as(&s.manager.token, &format!("{EM}/accessPackageAssignmentApprovals/{rid}?$select=id")).await;
    assert_eq!(selected.status, StatusCode::OK, "{}", selected.text);
    assert!(selected.json().get("stages").is_none(), "{}", selected.text);

    // Not the requestor, not a stranger, not an administrator token.
    for token in [&s.alice.token, &s.stranger.token, &ADMIN.to_owned()] {
        let r = app
            .json_as(token, Method::PATCH, &stage_url, &json!({"reviewResult": "Approve", "justification": "x"}))
            .await;
        assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}: {}", r.status, r.text);
        r.graph_error();
    }
    let r = app.json_as(&s.manager.token, Method::PATCH, &stage_url, &json!({"reviewResult": "Maybe"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app
        .json_as(
            &s.manager.token,
            Method::PATCH,
            &stage_url,
            &json!({"reviewResult": "Approve", "justification": "ok"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.json_as(&s.manager.token, Method::PATCH, &stage_url, &json!({"reviewResult": "Deny"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a second decision: {}", r.text);
    r.graph_error();

    Worker::new(app.services.clone(), "test").drain(10).await.unwrap();
    let r = app.get_as(&s.alice.token, &format!("{reqs}/{rid}?$expand=assignment,accessPackage,requestor")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["state"], "delivered", "{v}");
    assert_eq!(v["assignment"]["state"], "delivered");
    assert_eq!(v["accessPackage"]["id"], s.package.as_str());
    assert_eq!(v["requestor"]["objectId"], s.alice.id.as_str());
    let members = app.get(&format!("/v1.0/groups/{}/members", s.group)).await.json();
    assert_eq!(members["value"][0]["id"], s.alice.id.as_str());

    // Lists: by the administrator with a filter, and by the target.
    let all = app.get(&format!("{reqs}?$filter=state eq 'Delivered'&$count=true").replace(' ', "%20")).await;
    assert_eq!(all.json()["@odata.count"], 1, "{}", all.text);
    let mine = app.get_as(&s.alice.token, &format!("{reqs}/filterByCurrentUser(on='target')")).await;
    assert_eq!(mine.json()["value"].as_array().unwrap().len(), 1);
    let a = app
        .get(
            &format!("{EM}/assignments?$expand=target,accessPackage&$filter=target/objectid eq '{}'", s.alice.id)
                .replace(' ', "%20"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["value"][0]["target"]["objectId"], s.alice.id.as_str());
    // Someone else's request is invisible.
    let r = app.get_as(&s.stranger.token, &format!("{reqs}/{rid}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // A delivered request cannot be cancelled.
    let r = app.send(Method::POST, &format!("{reqs}/{rid}/cancel"), Some(&s.alice.token), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // The approvals collection is listed per approver only.
    let r = app.get_as(&s.manager.token, &format!("{EM}/accessPackageAssignmentApprovals")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // An ended request can be deleted, by an administrator only.
    let r = app.send(Method::DELETE, &format!("{reqs}/{rid}"), Some(&s.alice.token), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.delete(&format!("{reqs}/{rid}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.get(&format!("{reqs}/{rid}")).await.status, StatusCode::NOT_FOUND);
    app.assert_no_5xx();
}

#[tokio::test]
async fn bad_requests_answer_4xx_and_change_nothing() {
    let s = setup().await;
    let app = &s.app;
    let reqs = format!("{EM}/assignmentRequests");
    let cases: Vec<(&str, Value, StatusCode)> = vec![
        ("missing justification", request_body(&s.package, None, "FIN-1"), StatusCode::BAD_REQUEST),
        ("answer fails its pattern", request_body(&s.package, Some("why"), "fin 1"), StatusCode::BAD_REQUEST),
        (
            "missing answer",
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": s.package}, "justification": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown package",
            request_body("00000000-0000-4000-8000-000000000001", Some("why"), "FIN-1"),
            StatusCode::NOT_FOUND,
        ),
        ("malformed package id", request_body("nope", Some("why"), "FIN-1"), StatusCode::BAD_REQUEST),
        (
            "unknown request type",
            json!({"requestType": "userSideways", "assignment": {"accessPackageId": s.package}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "custom schedule not allowed",
            {
                let mut b = request_body(&s.package, Some("why"), "FIN-1");
                b["schedule"] = json!({"startDateTime": "2031-01-01T00:00:00Z", "expiration": {"endDateTime": "2031-01-05T00:00:00Z"}});
                b
            },
            StatusCode::BAD_REQUEST,
        ),
        (
            "for someone else as userAdd",
            {
                let mut b = request_body(&s.package, Some("why"), "FIN-1");
                b["assignment"]["targetId"] = json!(s.stranger.id);
                b
            },
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown property",
            {
                let mut b = request_body(&s.package, Some("why"), "FIN-1");
                b["colour"] = json!("red");
                b
            },
            StatusCode::BAD_REQUEST,
        ),
        (
            "policy of another package",
            {
                let mut b = request_body(&s.package, Some("why"), "FIN-1");
                b["assignment"]["assignmentPolicyId"] = json!("00000000-0000-4000-8000-000000000002");
                b
            },
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, body, want) in cases {
        let r = app.json_as(&s.alice.token, Method::POST, &reqs, &body).await;
        assert_eq!(r.status, want, "{what}: {}", r.text);
        r.graph_error();
    }
    // An administrator token is not a user: userAdd is refused, adminAdd works.
    let r = app.post(&reqs, &request_body(&s.package, Some("why"), "FIN-1")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // A user cannot assign directly.
    let direct = json!({"requestType": "adminAdd", "assignment": {"targetId": s.stranger.id, "assignmentPolicyId": s.policy, "accessPackageId": s.package}});
    let r = app.json_as(&s.alice.token, Method::POST, &reqs, &direct).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Nothing was written by any of them.
    let all = app.get(&format!("{reqs}?$count=true")).await.json();
    assert_eq!(all["@odata.count"], 0, "{all}");
    // The administrator's direct assignment in the SDK's typed form.
    let typed = json!({"requestType": "AdminAdd", "assignment": {"target": {"objectId": s.stranger.id},
        "assignmentPolicy": {"id": s.policy}, "accessPackage": {"id": s.package}}});
    let r = app.post(&reqs, &typed).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["state"], "delivering");
    let again = app.post(&reqs, &typed).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    let open = r.id();
    let r2 = app.delete(&format!("{reqs}/{open}")).await;
    assert_eq!(r2.status, StatusCode::CONFLICT, "an open request is not deleted: {}", r2.text);
    // Approvals of a request nobody must approve do not exist; bad function names are 400.
    let rid = r.id();
    let r = app.get(&format!("{EM}/accessPackageAssignmentApprovals/{rid}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app.get_as(&s.alice.token, &format!("{reqs}/filterByCurrentUser(on='everyone')")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // additionalAccess with and without the comma the Python SDK drops.
    for sep in [",", ""] {
        let url = format!(
            "{EM}/assignments/additionalAccess(accessPackageId='{}'{sep}incompatibleAccessPackageId='{}')",
            s.package, "00000000-0000-4000-8000-000000000003"
        );
        let r = app.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text);
    }
    app.assert_no_5xx();
}

#[tokio::test]
async fn what_may_i_request_and_why() {
    let s = setup().await;
    let app = &s.app;
    let r =
        app.get_as(&s.alice.token, &format!("{EM}/accessPackages/filterByCurrentUser(on='allowedRequestor')")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["value"][0]["id"], s.package.as_str());
    let r = app
        .send(
            Method::POST,
            &format!("{EM}/accessPackages/{}/getApplicablePolicyRequirements", s.package),
            Some(&s.alice.token),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    // Absolute, like every other @odata.context.
    let context = v["@odata.context"].as_str().unwrap();
    assert!(context.starts_with("http"), "{context}");
    assert!(
        context.ends_with("/v1.0/$metadata#Collection(microsoft.graph.accessPackageAssignmentRequestRequirements)"),
        "{context}"
    );
    assert_eq!(v["value"][0]["policyId"], s.policy.as_str());
    assert_eq!(v["value"][0]["isRequestorJustificationRequired"], true);
    let r = app.get_as(&s.alice.token, &format!("/v1.0/steward/accessPackages/{}/explanation", s.package)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["approvalStages"][0]["approvers"][0]["id"], s.manager.id.as_str());
    // A user may not ask about someone else; an administrator may.
    let r = app
        .get_as(
            &s.alice.token,
            &format!("/v1.0/steward/accessPackages/{}/explanation?userId={}", s.package, s.stranger.id),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.get(&format!("/v1.0/steward/accessPackages/{}/explanation?userId={}", s.package, s.stranger.id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["allowed"], true);
    app.assert_no_5xx();
}

#[tokio::test]
async fn disabling_an_account_removes_its_access() {
    let s = setup().await;
    let app = &s.app;
    let r = app
        .post(
            &format!("{EM}/assignmentRequests"),
            &json!({"requestType": "adminAdd", "assignment": {"accessPackageId": s.package,
                "assignmentPolicyId": s.policy, "targetId": s.alice.id},
                "answers": [{"@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "FIN-1",
                    "answeredQuestion": {"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": "ticket"}}]}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    let worker = Worker::new(app.services.clone(), "test");
    worker.drain(10).await.unwrap();
    let members = |v: Value| -> Vec<String> {
        v["value"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
    };
    let in_group = app.get(&format!("/v1.0/groups/{}/members", s.group)).await.json();
    assert_eq!(members(in_group), std::slice::from_ref(&s.alice.id));

    app.patch(&format!("/v1.0/users/{}", s.alice.id), &json!({"accountEnabled": false}))
        .await
        .expect(StatusCode::NO_CONTENT);
    worker.drain(10).await.unwrap();
    let in_group = app.get(&format!("/v1.0/groups/{}/members", s.group)).await.json();
    assert!(members(in_group).is_empty(), "the disabled user's access was removed");
    let removals = app
        .get(&format!("{EM}/assignmentRequests?$filter=requestType eq 'systemRemove'").replace(' ', "%20"))
        .await
        .json();
    assert_eq!(removals["value"].as_array().unwrap().len(), 1, "{removals}");
    // Enabling the account again gives nothing back.
    app.patch(&format!("/v1.0/users/{}", s.alice.id), &json!({"accountEnabled": true}))
        .await
        .expect(StatusCode::NO_CONTENT);
    worker.drain(10).await.unwrap();
    let in_group = app.get(&format!("/v1.0/groups/{}/members", s.group)).await.json();
    assert!(members(in_group).is_empty());
}
