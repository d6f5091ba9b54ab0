//! Assignment policies over HTTP: Graph's bodies (as msgraph-sdk sends them), PUT as replace,
//! PATCH as merge, both paths, polymorphic values that must say their type, and the package
//! that cannot be deleted while a policy hangs on it.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{ADMIN, EM, TestApp};

fn sdk_policy(pkg: &str) -> Value {
    // The body msgraph-sdk 1.65 sends (reference §6.2), timedelta durations included.
    json!({"accessPackage": {"id": pkg}, "allowedTargetScope": "specificDirectoryUsers", "description": "two-stage", "displayName": "Employees self-service",
        "expiration": {"duration": "30 days, 0:00:00", "type": "afterDuration"},
        "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "isRequired": true, "sequence": 1, "text": "Why?", "isSingleLineQuestion": true}],
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "isApprovalRequiredForUpdate": true, "isRequestorJustificationRequired": true,
          "stages": [{"durationBeforeAutomaticDenial": "14 days, 0:00:00", "fallbackPrimaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": "u-fallback"}],
                      "isApproverJustificationRequired": true, "isEscalationEnabled": false, "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]},
                     {"durationBeforeAutomaticDenial": "14 days, 0:00:00", "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": "u-owner"}]}]},
        "requestorSettings": {"allowCustomAssignmentSchedule": true, "enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true, "enableTargetsToSelfUpdateAccess": true},
        "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.groupMembers", "description": "Sales team", "groupId": "g-1"}]})
}

#[tokio::test]
async fn policies_round_trip_replace_merge_and_delete() {
    let app = TestApp::new().await;
    let cat = app.catalog("Policies").await;
    let pkg = app.package(&cat, "Toolkit").await;
    let root = format!("{EM}/assignmentPolicies");

    let r = app.post(&root, &sdk_policy(&pkg)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["@odata.type"], "#microsoft.graph.accessPackageAssignmentPolicy");
    assert_eq!(created["expiration"]["duration"], "P30D", "durations are emitted in ISO 8601");
    assert_eq!(created["requestApprovalSettings"]["stages"][0]["durationBeforeAutomaticDenial"], "P14D");
    assert_eq!(
        created["requestApprovalSettings"]["stages"][0]["primaryApprovers"][0]["@odata.type"],
        "#microsoft.graph.requestorManager"
    );
    assert_eq!(created["specificAllowedTargets"][0]["groupId"], "g-1");
    assert!(created["questions"][0]["id"].is_string(), "questions get ids");

    let got =
        app.get(&format!("{root}/{id}?$expand=accessPackage($select=displayName),catalog,questions")).await.json();
    assert_eq!(got["accessPackage"]["displayName"], "Toolkit");
    assert_eq!(got["catalog"]["id"], cat.as_str());
    assert_eq!(got["questions"][0]["text"], "Why?");
    let same = app.get(&format!("{EM}/accessPackages/{pkg}/assignmentPolicies/{id}")).await;
    assert_eq!(same.status, StatusCode::OK);
    let listed =
        app.get(&format!("{EM}/accessPackages/{pkg}?$expand=assignmentPolicies($select=displayName)")).await.json();
    assert_eq!(listed["assignmentPolicies"][0]["displayName"], "Employees self-service");
    let filtered = app.get(&format!("{root}?$filter=accessPackage/id%20eq%20'{pkg}'%20and%20allowedTargetScope%20eq%20'SpecificDirectoryUsers'&$count=true")).await.json();
    assert_eq!(filtered["@odata.count"], 1);

    // PATCH merges: only the description changes
    let r = app
        .patch(&format!("{EM}/accessPackages/{pkg}/assignmentPolicies/{id}"), &json!({"description": "patched"}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let got = app.get(&format!("{root}/{id}")).await.json();
    assert_eq!(got["description"], "patched");
    assert_eq!(got["requestApprovalSettings"]["stages"].as_array().unwrap().len(), 2);

    // PUT replaces: what the body leaves out is gone; accessPackage may be left out (Graph requires it, we don't)
    let r = app
        .json_as(
            ADMIN,
            Method::PUT,
            &format!("{root}/{id}"),
            &json!({"displayName": "renamed", "allowedTargetScope": "allMemberUsers"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got = r.json();
    assert_eq!(got["displayName"], "renamed");
    assert_eq!(got["requestApprovalSettings"], Value::Null);
    assert_eq!(got["questions"], json!([]));
    assert_eq!(got["createdDateTime"], created["createdDateTime"]);

    // A PUT that omits a required field (displayName) is refused and changes nothing.
    let r = app
        .json_as(ADMIN, Method::PUT, &format!("{root}/{id}"), &json!({"allowedTargetScope": "allDirectoryUsers"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    r.graph_error();
    let still = app.get(&format!("{root}/{id}")).await.json();
    assert_eq!(
        (still["displayName"].as_str(), still["allowedTargetScope"].as_str()),
        (Some("renamed"), Some("allMemberUsers"))
    );

    // bad policies: missing or unknown @odata.type on polymorphic values, misspelt settings, incoherence
    let bad = [
        json!({"displayName": "x", "accessPackage": {"id": pkg}, "allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets": [{"userId": "u"}]}),
        json!({"displayName": "x", "accessPackage": {"id": pkg}, "allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.everyone"}]}),
        json!({"displayName": "x", "accessPackage": {"id": pkg}, "questions": [{"text": "untyped"}]}),
        json!({"displayName": "x", "accessPackage": {"id": pkg}, "requestorSetings": {}}),
        json!({"displayName": "x", "accessPackage": {"id": pkg}, "expiration": {"duration": "a while"}}),
        json!({"displayName": "x", "accessPackage": {"id": pkg}, "allowedTargetScope": "specificDirectoryUsers"}),
        json!({"displayName": "x", "accessPackage": {"id": pkg}, "allowedTargetScope": "everyone"}),
        json!({"displayName": "x"}),
        json!({"accessPackage": {"id": pkg}}),
    ];
    for body in bad {
        let r = app.post(&root, &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        r.graph_error();
    }
    let r = app.post(&format!("{EM}/accessPackages/{pkg}/assignmentPolicies"), &json!({"displayName": "typed #-less", "specificAllowedTargets": [{"@odata.type": "microsoft.graph.SINGLEUSER", "userId": "u"}], "allowedTargetScope": "specificDirectoryUsers"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "@odata.type matches without '#' and in any case: {}", r.text);
    assert_eq!(r.json()["specificAllowedTargets"][0]["@odata.type"], "#microsoft.graph.singleUser");
    let second = r.id();

    // a package with policies cannot be deleted; its policies can, with a stale ETag refused
    let r = app.delete(&format!("{EM}/accessPackages/{pkg}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r =
        app.send(Method::DELETE, &format!("{root}/{id}"), Some(ADMIN), &[("if-match", "W/\"1\"")], Body::empty()).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.delete(&format!("{root}/{id}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.delete(&format!("{EM}/accessPackages/{pkg}/assignmentPolicies/{second}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&format!("{root}/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("{EM}/accessPackages/{pkg}")).await.status, StatusCode::NO_CONTENT);
    app.assert_no_5xx();
}
