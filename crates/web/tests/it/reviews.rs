//! Access reviews over HTTP: a quarterly review by managers with a fallback reviewer, applied
//! at its end (denied and unanswered assignments removed through systemRemove, approved ones
//! kept); self-review and stopping; a two-stage review; recommendations from sign-ins; who may
//! decide what; and bad input, each a clear 4xx in Graph's error shape.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::app::EM;
use crate::review_support::{AR, Person, advance, drain, of, principals, sorted, world};

#[tokio::test]
async fn a_quarterly_review_by_managers_removes_what_was_denied_or_left_unanswered() {
    let (w, policy) = world().await;
    let manager = w.person("qmanager@contoso.com", None).await;
    let fallback = w.person("qfallback@contoso.com", None).await;
    let ann = w.person("qann@contoso.com", Some(&manager)).await;
    let bob = w.person("qbob@contoso.com", Some(&manager)).await;
    let cid = w.person("qcid@contoso.com", Some(&manager)).await;
    let dee = w.person("qdee@contoso.com", None).await;
    w.assign(&policy, &[&ann, &bob, &cid, &dee]).await;

    let d = w
        .create(json!({"displayName": "Quarterly ledger review", "scope": w.scope(),
            "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
            "fallbackReviewers": [{"query": format!("/users/{}", fallback.id), "queryType": "MicrosoftGraph"}],
            "settings": {"instanceDurationInDays": 14, "justificationRequiredOnApproval": true,
                "defaultDecisionEnabled": true, "defaultDecision": "Deny", "autoApplyDecisionsEnabled": true,
                "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 3},
                               "range": {"type": "noEnd", "startDate": "2031-01-06"}}}}))
        .await;
    let r = w.app.patch(&format!("{AR}/{d}"), &json!({"descriptionForReviewers": "Still needed?"})).await;
    r.expect(StatusCode::NO_CONTENT);
    w.app
        .patch(&format!("{AR}/{d}"), &json!({"settings": {"instanceDurationInDays": 0}}))
        .await
        .expect_error(StatusCode::BAD_REQUEST);
    let got = w.app.get(&format!("{AR}/{d}")).await.json();
    assert_eq!(got["descriptionForReviewers"], "Still needed?");
    assert_eq!(got["settings"]["recurrence"]["pattern"]["interval"], 3);
    assert_eq!(got["status"], "NotStarted");
    drain(&w.app).await;
    assert_eq!(w.app.get(&format!("{AR}/{d}/instances")).await.json()["value"], json!([]), "not before its day");

    advance(&w.app, "P2D").await;
    drain(&w.app).await;
    let i = w.only_instance(&d).await;
    let every = w.decisions(crate::app::ADMIN, &d, &i, false).await;
    assert_eq!(principals(&every), sorted(&[&ann, &bob, &cid, &dee]));
    assert!(every.iter().all(|x| x["decision"] == "NotReviewed"));
    let x = of(&every, &ann);
    assert_eq!(x["resource"]["accessPackageId"], w.package.as_str());
    assert_eq!(x["resource"]["id"], policy.as_str());
    assert_eq!(x["principal"]["@odata.type"], "#microsoft.graph.userIdentity");
    assert_eq!(x["accessReviewId"], i.as_str());

    let by_manager = w.decisions(&manager.token, &d, &i, true).await;
    assert_eq!(principals(&by_manager), sorted(&[&ann, &bob, &cid]));
    assert_eq!(principals(&w.decisions(&fallback.token, &d, &i, true).await), sorted(&[&dee]));
    assert!(w.decisions(&ann.token, &d, &i, true).await.is_empty(), "nobody reviews their own access here");
    // A reviewer only sees the decisions they review, not the whole list.
    w.app
        .get_as(&manager.token, &format!("{AR}/{d}/instances/{i}/decisions"))
        .await
        .expect_error(StatusCode::FORBIDDEN);

    let id = |p: &Person| of(&every, p)["id"].as_str().unwrap().to_owned();
    w.record(&manager.token, &d, &i, &id(&dee), "Approve", Some("Knows it")).await.expect_error(StatusCode::FORBIDDEN);
    w.record(&ann.token, &d, &i, &id(&ann), "Approve", Some("Mine")).await.expect_error(StatusCode::FORBIDDEN);
    let e = w.record(&manager.token, &d, &i, &id(&bob), "Approve", None).await;
    e.expect_error(StatusCode::BAD_REQUEST);
    assert!(e.text.contains("justification"), "{}", e.text);
    let e = w.record(&manager.token, &d, &i, &id(&bob), "Maybe", Some("?")).await;
    e.expect_error(StatusCode::BAD_REQUEST);
    assert!(e.text.contains("Maybe"), "{}", e.text);

    w.record(&manager.token, &d, &i, &id(&ann), "Deny", Some("Moved team")).await.expect(StatusCode::NO_CONTENT);
    w.record(&manager.token, &d, &i, &id(&bob), "Approve", Some("Closes the books"))
        .await
        .expect(StatusCode::NO_CONTENT);
    w.app
        .json_as(
            &fallback.token,
            Method::POST,
            &format!("{AR}/{d}/instances/{i}/batchRecordDecisions"),
            &json!({"decision": "Approve", "justification": "Covers", "principalId": dee.id}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    let decided = w.decisions(crate::app::ADMIN, &d, &i, false).await;
    assert_eq!(of(&decided, &ann)["decision"], "Deny");
    assert_eq!(of(&decided, &ann)["reviewedBy"]["id"], manager.id.as_str());
    assert_eq!(of(&decided, &ann)["justification"], "Moved team");
    assert_eq!(of(&decided, &dee)["decision"], "Approve");
    assert_eq!(of(&decided, &cid)["decision"], "NotReviewed");
    let denied = w.app.get(&format!("{AR}/{d}/instances/{i}/decisions?$filter=decision%20eq%20'Deny'")).await.json();
    assert_eq!(denied["value"].as_array().unwrap().len(), 1, "{denied}");
    let contacted = w.app.get(&format!("{AR}/{d}/instances/{i}/contactedReviewers")).await.json();
    assert_eq!(contacted["value"].as_array().unwrap().len(), 2, "{contacted}");
    w.app.post(&format!("{AR}/{d}/instances/{i}/sendReminder"), &json!({})).await.expect(StatusCode::NO_CONTENT);

    advance(&w.app, "P14D").await;
    drain(&w.app).await;
    let ended = w.app.get(&format!("{AR}/{d}/instances/{i}")).await.json();
    assert_eq!(ended["status"], "Applied", "{ended}");
    let last = w.decisions(crate::app::ADMIN, &d, &i, false).await;
    assert_eq!(of(&last, &cid)["decision"], "Deny", "the default decision");
    for p in [&ann, &cid] {
        assert_eq!(of(&last, p)["applyResult"], "AppliedSuccessfully");
        assert!(of(&last, p)["appliedDateTime"].is_string());
        assert_eq!(w.state_of(p).await, "expired");
    }
    for p in [&bob, &dee] {
        assert_eq!(w.state_of(p).await, "delivered");
    }
    assert_eq!(w.members().await, sorted(&[&bob, &dee]), "removed from the target group");
    let removals =
        w.app.get(&format!("{EM}/assignmentRequests?$filter=requestType%20eq%20'systemRemove'")).await.json();
    assert_eq!(removals["value"].as_array().unwrap().len(), 2, "{removals}");
    assert!(removals["value"].as_array().unwrap().iter().all(|r| r["state"] == "delivered"), "{removals}");
    w.record(&manager.token, &d, &i, &id(&bob), "Deny", Some("Too late")).await.expect_error(StatusCode::CONFLICT);
    // The next quarter is planned.
    assert_eq!(w.app.get(&format!("{AR}/{d}")).await.json()["status"], "InProgress");
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn self_review_stop_and_one_outcome_for_concurrent_writers() {
    let (w, policy) = world().await;
    let sam = w.person("ssam@contoso.com", None).await;
    let sue = w.person("ssue@contoso.com", None).await;
    w.assign(&policy, &[&sam, &sue]).await;
    let d = w
        .create(json!({"displayName": "Wiki self-review", "scope": w.scope(), "reviewers": [],
            "settings": {"instanceDurationInDays": 7, "autoApplyDecisionsEnabled": true}}))
        .await;
    drain(&w.app).await;
    let i = w.only_instance(&d).await;
    for p in [&sam, &sue] {
        assert_eq!(principals(&w.decisions(&p.token, &d, &i, true).await), sorted(&[p]), "each reviews their own");
    }
    let every = w.decisions(crate::app::ADMIN, &d, &i, false).await;
    let id = |p: &Person| of(&every, p)["id"].as_str().unwrap().to_owned();
    w.record(&sam.token, &d, &i, &id(&sue), "Deny", Some("Not mine")).await.expect_error(StatusCode::FORBIDDEN);
    // Two reviewers' writes of one decision at once: one outcome, no server error.
    let own = id(&sam);
    let (a, b) = tokio::join!(
        w.record(&sam.token, &d, &i, &own, "Approve", Some("first")),
        w.record(&sam.token, &d, &i, &own, "Deny", Some("I no longer need it")),
    );
    for r in [&a, &b] {
        assert!(matches!(r.status, StatusCode::NO_CONTENT | StatusCode::CONFLICT), "{}", r.text);
    }
    w.record(&sam.token, &d, &i, &id(&sam), "Deny", Some("I no longer need it")).await.expect(StatusCode::NO_CONTENT);
    w.record(&sue.token, &d, &i, &id(&sue), "Approve", None).await.expect(StatusCode::NO_CONTENT);

    w.app.post(&format!("{AR}/{d}/instances/{i}/stop"), &json!({})).await.expect(StatusCode::NO_CONTENT);
    drain(&w.app).await;
    assert_eq!(w.app.get(&format!("{AR}/{d}/instances/{i}")).await.json()["status"], "Applied");
    assert_eq!(w.state_of(&sam).await, "expired");
    assert_eq!(w.state_of(&sue).await, "delivered");
    assert_eq!(w.members().await, sorted(&[&sue]));
    w.record(&sue.token, &d, &i, &id(&sue), "Deny", Some("After the stop")).await.expect_error(StatusCode::CONFLICT);
    let e = w.app.post(&format!("{AR}/{d}/instances/{i}/stop"), &json!({})).await;
    e.expect_error(StatusCode::CONFLICT);
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn a_two_stage_review_moves_on_only_what_the_first_stage_lets_through() {
    let (w, policy) = world().await;
    let manager = w.person("tmanager@contoso.com", None).await;
    let owner = w.person("towner@contoso.com", None).await;
    let xia = w.person("txia@contoso.com", Some(&manager)).await;
    let yan = w.person("tyan@contoso.com", Some(&manager)).await;
    w.assign(&policy, &[&xia, &yan]).await;
    let d = w
        .create(json!({"displayName": "Payroll", "scope": w.scope(),
            "settings": {"instanceDurationInDays": 6, "defaultDecisionEnabled": true, "defaultDecision": "Deny",
                         "autoApplyDecisionsEnabled": true},
            "stageSettings": [
                {"stageId": "1", "durationInDays": 3, "decisionsThatWillMoveToNextStage": ["Approve", "NotReviewed"],
                 "reviewers": [{"query": "./manager", "queryRoot": "decisions"}]},
                {"stageId": "2", "dependsOn": ["1"], "durationInDays": 3,
                 "reviewers": [{"query": format!("/users/{}", owner.id)}]}]}))
        .await;
    drain(&w.app).await;
    let i = w.only_instance(&d).await;
    let stages = w.app.get_as(&manager.token, &format!("{AR}/{d}/instances/{i}/stages")).await.json();
    let stages = stages["value"].as_array().unwrap().clone();
    assert_eq!(stages.len(), 2);
    assert_eq!((stages[0]["id"].as_str(), stages[0]["status"].as_str()), (Some("1"), Some("InProgress")));
    assert_eq!(stages[1]["status"], "NotStarted");
    assert_eq!(stages[0]["endDateTime"], stages[1]["startDateTime"]);
    let first = w.decisions(&manager.token, &d, &i, true).await;
    assert_eq!(principals(&first), sorted(&[&xia, &yan]));
    assert!(w.decisions(&owner.token, &d, &i, true).await.is_empty(), "stage 2 has not begun");
    let id = |p: &Person| of(&first, p)["id"].as_str().unwrap().to_owned();
    w.record(&manager.token, &d, &i, &id(&xia), "Approve", Some("Runs payroll")).await.expect(StatusCode::NO_CONTENT);
    w.record(&manager.token, &d, &i, &id(&yan), "Deny", Some("Left")).await.expect(StatusCode::NO_CONTENT);

    advance(&w.app, "P3DT1H").await;
    drain(&w.app).await;
    let second = w.decisions(&owner.token, &d, &i, true).await;
    assert_eq!(principals(&second), sorted(&[&xia]), "only what stage 1 approved goes on");
    assert!(w.decisions(&manager.token, &d, &i, true).await.is_empty());
    w.record(&manager.token, &d, &i, &id(&xia), "Deny", Some("stage 1 is over"))
        .await
        .expect_error(StatusCode::FORBIDDEN);
    w.record(&owner.token, &d, &i, &id(&xia), "Deny", Some("Outsourced")).await.expect(StatusCode::NO_CONTENT);

    advance(&w.app, "P3DT1H").await;
    drain(&w.app).await;
    assert_eq!(w.state_of(&xia).await, "expired");
    assert_eq!(w.state_of(&yan).await, "expired");
    assert!(w.members().await.is_empty());
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn recommendations_follow_sign_ins_and_bad_input_is_a_clear_4xx() {
    let (w, policy) = world().await;
    let reviewer = w.person("rreviewer@contoso.com", None).await;
    let active = w.person("ractive@contoso.com", None).await;
    let idle = w.person("ridle@contoso.com", None).await;
    w.assign(&policy, &[&active, &idle]).await;
    // Active uses Steward with her own token; Idle never does.
    w.app
        .get_as(&active.token, &format!("{EM}/assignments/filterByCurrentUser(on='target')"))
        .await
        .expect(StatusCode::OK);
    let d = w
        .create(json!({"displayName": "Reports", "scope": w.scope(),
            "reviewers": [{"query": format!("/users/{}", reviewer.id)}],
            "settings": {"instanceDurationInDays": 7, "recommendationsEnabled": true,
                         "recommendationLookBackDuration": "P30D"}}))
        .await;
    drain(&w.app).await;
    let i = w.only_instance(&d).await;
    let every = w.decisions(crate::app::ADMIN, &d, &i, false).await;
    assert_eq!(of(&every, &active)["recommendation"], "Approve");
    let lazy = of(&every, &idle);
    assert_eq!(lazy["recommendation"], "Deny");
    let reason = lazy["recommendationReason"].as_str().unwrap();
    assert!(reason.contains("sign-in") && reason.contains("30 days"), "{reason}");

    let batch = format!("{AR}/{d}/instances/{i}/batchRecordDecisions");
    let e = w
        .app
        .json_as(
            &reviewer.token,
            Method::POST,
            &batch,
            &json!({"decisions": [
            {"decision": "Approve", "justification": "a", "principalId": idle.id},
            {"decision": "Deny", "justification": "b", "principalId": idle.id}]}),
        )
        .await;
    e.expect_error(StatusCode::BAD_REQUEST);
    assert!(e.text.contains("two different values"), "{}", e.text);
    w.app
        .json_as(&active.token, Method::POST, &batch, &json!({"decision": "Deny", "principalId": idle.id}))
        .await
        .expect_error(StatusCode::FORBIDDEN);
    w.app
        .json_as(&reviewer.token, Method::POST, &format!("{AR}/{d}/instances/{i}/acceptRecommendations"), &json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let accepted = w.decisions(crate::app::ADMIN, &d, &i, false).await;
    assert_eq!(of(&accepted, &idle)["decision"], "Deny");
    assert_eq!(of(&accepted, &active)["decision"], "Approve");
    w.app.post(&format!("{AR}/{d}/instances/{i}/applyDecisions"), &json!({})).await.expect_error(StatusCode::CONFLICT);
    w.app.post(&format!("{AR}/{d}/instances/{i}/resetDecisions"), &json!({})).await.expect(StatusCode::NO_CONTENT);
    assert!(w.decisions(crate::app::ADMIN, &d, &i, false).await.iter().all(|x| x["decision"] == "NotReviewed"));

    let daily = json!({"displayName": "Daily", "scope": w.scope(), "reviewers": [],
        "settings": {"instanceDurationInDays": 1, "recurrence": {"pattern": {"type": "daily", "interval": 1},
            "range": {"type": "noEnd", "startDate": "2031-02-01"}}}});
    let e = w.app.post(AR, &daily).await;
    e.expect_error(StatusCode::BAD_REQUEST);
    assert!(e.text.contains("daily") && e.text.contains("not supported"), "{}", e.text);
    for bad in [
        json!({"displayName": "Nowhere", "reviewers": [], "settings": {},
            "scope": {"query": "/groups/x/transitiveMembers", "queryType": "MicrosoftGraph"}}),
        json!({"displayName": "Who", "scope": w.scope(), "settings": {},
            "reviewers": [{"query": "./manager", "queryRoot": "users"}]}),
        json!({"displayName": "Ghost", "scope": w.scope(), "settings": {},
            "reviewers": [{"query": format!("/users/{}", crate::app::UNKNOWN)}]}),
        json!({"displayName": "Gone", "settings": {}, "scope": {"query":
            format!("/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{}')", crate::app::UNKNOWN)}}),
    ] {
        w.app.post(AR, &bad).await.expect_error(StatusCode::BAD_REQUEST);
    }
    w.app.get(&format!("{AR}/{}", crate::app::UNKNOWN)).await.expect_error(StatusCode::NOT_FOUND);
    // A plain user may not create or list definitions.
    w.app.json_as(&idle.token, Method::POST, AR, &daily).await.expect_error(StatusCode::FORBIDDEN);
    w.app.get_as(&idle.token, AR).await.expect_error(StatusCode::FORBIDDEN);
    // The reviewer reads the definition they review; and the stop of a definition ends it.
    w.app.get_as(&reviewer.token, &format!("{AR}/{d}")).await.expect(StatusCode::OK);
    let mine = w.app.get_as(&reviewer.token, &format!("{AR}/filterByCurrentUser(on='reviewer')")).await.json();
    assert_eq!(mine["value"].as_array().unwrap().len(), 1, "{mine}");
    w.app.post(&format!("{AR}/{d}/stop"), &json!({})).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(w.app.get(&format!("{AR}/{d}")).await.json()["status"], "Completed");
    let x = of(&every, &idle)["id"].as_str().unwrap().to_owned();
    w.record(&reviewer.token, &d, &i, &x, "Deny", None).await.expect_error(StatusCode::CONFLICT);
    w.app.delete(&format!("{AR}/{d}")).await.expect(StatusCode::NO_CONTENT);
    w.app.get(&format!("{AR}/{d}")).await.expect_error(StatusCode::NOT_FOUND);
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn a_policy_s_review_settings_create_keep_and_delete_its_review() {
    let (w, _) = world().await;
    let reviewer = w.person("previewer@contoso.com", None).await;
    let settings = |enabled: bool, kind: &str| {
        json!({"accessPackage": {"id": w.package}, "displayName": "Reviewed", "allowedTargetScope": "allMemberUsers",
            "reviewSettings": {"isEnabled": enabled, "expirationBehavior": "removeAccess", "isRecommendationEnabled": true,
                "isReviewerJustificationRequired": false, "isSelfReview": false,
                "primaryReviewers": [{"@odata.type": format!("#microsoft.graph.{kind}"), "userId": reviewer.id}],
                "schedule": {"startDateTime": "2031-02-01T00:00:00Z", "expiration": {"type": "afterDuration", "duration": "P7D"},
                    "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 3}, "range": {"type": "noEnd"}}}}})
    };
    let e = w.app.post(&format!("{EM}/assignmentPolicies"), &settings(true, "connectedOrganizationMembers")).await;
    e.expect_error(StatusCode::BAD_REQUEST);
    assert!(e.text.contains("reviewSettings"), "{}", e.text);
    let policy = w.app.post(&format!("{EM}/assignmentPolicies"), &settings(true, "singleUser")).await;
    let policy = policy.expect(StatusCode::CREATED).id();
    let list = w.app.get(AR).await.json();
    let defs = list["value"].as_array().unwrap();
    assert_eq!(defs.len(), 1, "{list}");
    let d = &defs[0];
    assert!(d["scope"]["query"].as_str().unwrap().contains(&policy), "{d}");
    assert_eq!(d["settings"]["defaultDecision"], "Deny");
    assert_eq!(d["settings"]["instanceDurationInDays"], 7);
    assert_eq!(d["settings"]["recurrence"]["range"]["startDate"], "2031-02-01");
    assert_eq!(d["reviewers"][0]["query"], format!("/users/{}", reviewer.id));
    let id = d["id"].as_str().unwrap().to_owned();
    // Kept by the policy: changed through it, not directly.
    w.app.delete(&format!("{AR}/{id}")).await.expect_error(StatusCode::CONFLICT);
    w.app
        .put(&format!("{EM}/assignmentPolicies/{policy}"), &settings(false, "singleUser"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(w.app.get(&format!("{AR}/{id}")).await.json()["status"], "Completed", "turned off: stopped");
    w.app.delete(&format!("{EM}/assignmentPolicies/{policy}")).await.expect(StatusCode::NO_CONTENT);
    w.app.get(&format!("{AR}/{id}")).await.expect_error(StatusCode::NOT_FOUND);
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn halfway_through_reviewers_are_reminded_and_what_nobody_can_decide_goes_to_the_fallback() {
    let (w, policy) = world().await;
    let manager = w.person("hmanager@contoso.com", None).await;
    let fallback = w.person("hfallback@contoso.com", None).await;
    let ann = w.person("hann@contoso.com", Some(&manager)).await;
    let bob = w.person("hbob@contoso.com", Some(&manager)).await;
    w.assign(&policy, &[&ann, &bob]).await;
    let d = w
        .create(json!({"displayName": "Ledger, one-time", "scope": w.scope(),
            "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
            "fallbackReviewers": [{"query": format!("/users/{}", fallback.id), "queryType": "MicrosoftGraph"}],
            "settings": {"instanceDurationInDays": 10, "reminderNotificationsEnabled": true}}))
        .await;
    drain(&w.app).await;
    let i = w.only_instance(&d).await;
    let mine = w.decisions(&manager.token, &d, &i, true).await;
    assert_eq!(principals(&mine), sorted(&[&ann, &bob]));
    assert!(w.decisions(&fallback.token, &d, &i, true).await.is_empty());
    w.record(&manager.token, &d, &i, of(&mine, &bob)["id"].as_str().unwrap(), "Approve", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    // The manager leaves before deciding Ann's access.
    w.app
        .patch(&format!("/v1.0/users/{}", manager.id), &json!({"accountEnabled": false}))
        .await
        .expect(StatusCode::NO_CONTENT);
    advance(&w.app, "P4D").await;
    drain(&w.app).await;
    assert!(w.decisions(&fallback.token, &d, &i, true).await.is_empty(), "not before halfway");

    advance(&w.app, "P1DT1H").await;
    drain(&w.app).await;
    let now_fallback = w.decisions(&fallback.token, &d, &i, true).await;
    assert_eq!(principals(&now_fallback), sorted(&[&ann]), "only what nobody could decide moves");
    let every = w.decisions(crate::app::ADMIN, &d, &i, false).await;
    assert_eq!(of(&every, &bob)["decision"], "Approve", "a decided decision stays as it is");
    let events = w.app.services.store.events_of(&i).await.unwrap();
    let reminded: Vec<&str> = events
        .iter()
        .filter(|e| e.activity.display_name() == "Send access review reminder" && e.target_id == fallback.id)
        .filter_map(|e| e.detail.as_deref())
        .collect();
    assert!(reminded.iter().any(|d| d.starts_with("Reminder: 1 decisions to review")), "{reminded:?}");
    // One reminder a stage: the job does not run again.
    advance(&w.app, "P1D").await;
    drain(&w.app).await;
    let again = w.app.services.store.events_of(&i).await.unwrap();
    assert_eq!(again.len(), events.len(), "nothing more was sent");
}
