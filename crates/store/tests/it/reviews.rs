//! Access reviews in the store: definitions read back as written (their input parsed back
//! equal), the sweep's questions (due definitions, instances whose stage ended), an instance
//! opened in one batch with its decisions and reviewers, a reviewer's decisions paged through
//! the relation, stale writes failing the whole batch, decisions refused once their instance
//! moved on, deletion by cascade, sign-ins only moving forward, and a batch of 10,000
//! decisions written and applied.

use std::time::Instant;

use jiff::Timestamp;
use serde_json::json;
use steward_app::Store;
use steward_app::ports::{Batch, Put};
use steward_app::query::{ListQuery, REVIEW_DECISIONS, REVIEW_DEFINITIONS, REVIEW_INSTANCES, Relation};
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::ids::{
    AccessPackageId, AssignmentId, PolicyId, ReviewDecisionId, ReviewDefinitionId, ReviewInstanceId, UserId,
};
use steward_domain::review::{
    ApplyResult, Decision, DefinitionInput, Recommendation, ReviewDecision, ReviewDefinition, ReviewInstance,
    ReviewStatus, StageDecision,
};
use steward_store::SqlStore;

use crate::fixtures::*;

/// A definition of a quarterly review of `package`'s assignments by two users, in two stages,
/// named `display`.
pub fn definition(
    display: &str,
    package: AccessPackageId,
    policy: Option<PolicyId>,
    created: Timestamp,
) -> ReviewDefinition {
    let body = json!({
        "displayName": display,
        "descriptionForAdmins": "Quarterly: who still needs the Sales tools?",
        "descriptionForReviewers": "Please decide by the end of the stage.",
        "scope": {"@odata.type": "#microsoft.graph.accessReviewQueryScope",
                  "query": format!("/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{package}')"),
                  "queryType": "MicrosoftGraph"},
        "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
        "fallbackReviewers": [{"query": format!("/users/{}", UserId::new())}],
        "settings": {"instanceDurationInDays": 14, "defaultDecisionEnabled": true, "defaultDecision": "Recommendation",
                     "justificationRequiredOnApproval": true, "recommendationsEnabled": true,
                     "recommendationLookBackDuration": "P45D",
                     "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 31},
                                    "range": {"type": "numbered", "startDate": "2030-01-31", "numberOfOccurrences": 4}}},
        "stageSettings": [
            {"stageId": "1", "durationInDays": 7, "decisionsThatWillMoveToNextStage": ["NotReviewed", "Approve"],
             "reviewers": [{"query": "./manager", "queryRoot": "decisions"}], "recommendationsEnabled": true},
            {"stageId": "2", "dependsOn": ["1"], "durationInDays": 7,
             "reviewers": [{"query": format!("/groups/{}/owners", UserId::new())}],
             "fallbackReviewers": [{"query": "./accessPackage/catalog/owners", "queryRoot": "decisions"}]}
        ]
    });
    let input = DefinitionInput::parse(body.as_object().unwrap()).unwrap();
    ReviewDefinition {
        id: ReviewDefinitionId::new(),
        input,
        policy_id: policy,
        status: ReviewStatus::NotStarted,
        created_by: Some(UserId::new()),
        created_date_time: created,
        last_modified_date_time: created,
        next_occurrence: 0,
        next_start: Some(created),
    }
}

pub fn instance(d: &ReviewDefinition, start: Timestamp) -> ReviewInstance {
    ReviewInstance {
        id: ReviewInstanceId::new(),
        definition_id: d.id,
        occurrence: 0,
        start,
        end: start.saturating_add(jiff::SignedDuration::from_hours(14 * 24)).unwrap(),
        status: ReviewStatus::InProgress,
        stage: 0,
        stage_end: start.saturating_add(jiff::SignedDuration::from_hours(7 * 24)).unwrap(),
        last_modified_date_time: start,
    }
}

pub fn decision(i: &ReviewInstance, principal: UserId, reviewers: Vec<UserId>) -> ReviewDecision {
    ReviewDecision {
        id: ReviewDecisionId::new(),
        instance_id: i.id,
        definition_id: i.definition_id,
        assignment_id: AssignmentId::new(),
        principal_id: principal,
        access_package_id: AccessPackageId::new(),
        policy_id: Some(PolicyId::new()),
        stage: 0,
        reviewers,
        decision: Decision::NotReviewed,
        justification: None,
        reviewed_by: None,
        reviewed_at: None,
        recommendation: Recommendation::Approve,
        recommendation_reason: Some("Active within the last 45 days.".into()),
        apply_result: ApplyResult::New,
        applied_by: None,
        applied_at: None,
        history: Vec::new(),
        last_modified_date_time: i.start,
    }
}

/// `d` as the store reads it back: reviewers sorted, each once.
fn canonical(mut d: ReviewDecision) -> ReviewDecision {
    d.reviewers.sort_unstable();
    d.reviewers.dedup();
    d
}

fn sorted_by_id(mut v: Vec<ReviewDecision>) -> Vec<ReviewDecision> {
    v.sort_by_key(|d| d.id);
    v
}

fn changed<T>(row: T, read_at: Timestamp) -> Put<T> {
    Put::Changed { row, read_at }
}

fn event(target: impl ToString) -> AuditEvent {
    let t = target.to_string();
    AuditEvent::new(at(0), Activity::UpdatePackage, Initiator::System, "AccessReview", &t, &t)
}

/// An instance opened with its definition: `n` decisions, principal `i` reviewed by
/// `reviewers(i)`.
async fn opened(
    s: &SqlStore,
    n: usize,
    reviewers: impl Fn(usize) -> Vec<UserId>,
) -> (ReviewDefinition, ReviewInstance, Vec<ReviewDecision>) {
    let d = definition("Sales review", AccessPackageId::new(), None, at(0));
    let i = instance(&d, at(10));
    let decisions: Vec<ReviewDecision> = (0..n).map(|k| decision(&i, UserId::new(), reviewers(k))).collect();
    let batch = Batch {
        review_definitions: vec![Put::New(d.clone())],
        review_instances: vec![Put::New(i.clone())],
        review_decisions: decisions.iter().cloned().map(Put::New).collect(),
        ..Default::default()
    };
    s.apply(&batch).await.unwrap();
    (d, i, decisions)
}

pub async fn definitions_round_trip(s: SqlStore) {
    let package = AccessPackageId::new();
    let policy = PolicyId::new();
    let d = definition("Quarterly Sales review", package, Some(policy), at(1));
    s.apply(&Batch { review_definitions: vec![Put::New(d.clone())], ..Default::default() }).await.unwrap();
    let back = s.get_review_definition(d.id).await.unwrap().unwrap();
    assert_eq!(back.input, d.input, "the input parses back equal");
    assert_eq!(back, d);
    assert_eq!(s.review_definition_of_policy(policy).await.unwrap(), Some(d.clone()));
    assert_eq!(s.review_definition_of_policy(PolicyId::new()).await.unwrap(), None);
    assert_eq!(s.get_review_definition(ReviewDefinitionId::new()).await.unwrap(), None);

    // One definition per policy; any number without one.
    let twin = definition("Twin", package, Some(policy), at(2));
    assert_conflict(
        s.apply(&Batch { review_definitions: vec![Put::New(twin)], ..Default::default() }).await,
        "a second definition of one policy",
    );
    let free = [definition("alpha", package, None, at(3)), definition("Beta", AccessPackageId::new(), None, at(4))];
    let batch = Batch { review_definitions: free.iter().cloned().map(Put::New).collect(), ..Default::default() };
    s.apply(&batch).await.unwrap();

    // Replaced on the version read, refused on an older one.
    let mut renamed = d.clone();
    renamed.input.display_name = "Renamed Sales review".into();
    renamed.input.stages.clear();
    renamed.input.settings.recurrence = None;
    renamed.status = ReviewStatus::InProgress;
    renamed.next_occurrence = 1;
    renamed.next_start = None;
    renamed.last_modified_date_time = at(5);
    let put = |row: &ReviewDefinition, read_at| Batch {
        review_definitions: vec![changed(row.clone(), read_at)],
        ..Default::default()
    };
    s.apply(&put(&renamed, d.last_modified_date_time)).await.unwrap();
    assert_eq!(s.get_review_definition(d.id).await.unwrap(), Some(renamed.clone()));
    let mut again = renamed.clone();
    again.input.display_name = "Lost update".into();
    assert_conflict(s.apply(&put(&again, d.last_modified_date_time)).await, "a stale definition");
    assert_eq!(s.get_review_definition(d.id).await.unwrap(), Some(renamed.clone()));

    // Lists filter and order on displayName, status, createdDateTime and the scope's query.
    let names = async |q: &str| -> Vec<String> {
        let page = s.list_review_definitions(&query(&REVIEW_DEFINITIONS, q)).await.unwrap();
        page.items.iter().map(|d| d.input.display_name.clone()).collect()
    };
    assert_eq!(names("").await, vec!["Beta", "Renamed Sales review", "alpha"], "bytewise by displayName");
    assert_eq!(names("$orderby=createdDateTime desc").await, vec!["Beta", "alpha", "Renamed Sales review"]);
    assert_eq!(names("$filter=status eq 'inProgress'").await, vec!["Renamed Sales review"]);
    assert_eq!(names("$filter=createdDateTime ge 2030-03-18T00:00:00.000003Z").await, vec!["Beta", "alpha"]);
    assert_eq!(names("$filter=contains(displayName,'SALES')").await, vec!["Renamed Sales review"]);
    let scoped = format!("$filter=contains(scope/query,'{}')&$orderby=displayName", package.to_string().to_uppercase());
    assert_eq!(names(&scoped).await, vec!["Renamed Sales review", "alpha"]);
    let counted = s.list_review_definitions(&query(&REVIEW_DEFINITIONS, "$top=1&$count=true")).await.unwrap();
    assert_eq!((counted.items.len(), counted.count, counted.next.is_some()), (1, Some(3), true));
}

pub async fn due_definitions_and_ending_instances(s: SqlStore) {
    let def = |name: &str, next: Option<i64>, status| ReviewDefinition {
        next_start: next.map(at),
        status,
        ..definition(name, AccessPackageId::new(), None, at(0))
    };
    let late = def("late", Some(50), ReviewStatus::InProgress);
    let early = def("early", Some(10), ReviewStatus::NotStarted);
    let now_due = def("now", Some(100), ReviewStatus::InProgress);
    let later = def("later", Some(101), ReviewStatus::NotStarted);
    let done = def("done", Some(5), ReviewStatus::Completed);
    let never = def("never", None, ReviewStatus::InProgress);
    let all = [&late, &early, &now_due, &later, &done, &never];
    let batch =
        Batch { review_definitions: all.iter().map(|d| Put::New((*d).clone())).collect(), ..Default::default() };
    s.apply(&batch).await.unwrap();
    let due = |now, limit| {
        let s = s.clone();
        async move { s.due_review_definitions(at(now), limit).await.unwrap().iter().map(|d| d.id).collect::<Vec<_>>() }
    };
    assert_eq!(due(100, 10).await, vec![early.id, late.id, now_due.id], "earliest first, not completed");
    assert_eq!(due(100, 2).await, vec![early.id, late.id]);
    assert_eq!(due(9, 10).await, Vec::<ReviewDefinitionId>::new());

    let inst = |stage_end: i64, status| ReviewInstance { stage_end: at(stage_end), status, ..instance(&late, at(0)) };
    let ended = inst(40, ReviewStatus::InProgress);
    let ended_first = inst(20, ReviewStatus::InProgress);
    let running = inst(60, ReviewStatus::InProgress);
    let completed = inst(10, ReviewStatus::Completed);
    let batch = Batch {
        review_instances: [&ended, &ended_first, &running, &completed].iter().map(|i| Put::New((*i).clone())).collect(),
        ..Default::default()
    };
    s.apply(&batch).await.unwrap();
    let ending = |now, limit| {
        let s = s.clone();
        async move { s.ending_review_instances(at(now), limit).await.unwrap().iter().map(|i| i.id).collect::<Vec<_>>() }
    };
    assert_eq!(ending(40, 10).await, vec![ended_first.id, ended.id]);
    assert_eq!(ending(100, 1).await, vec![ended_first.id]);
    assert_eq!(ending(19, 10).await, Vec::<ReviewInstanceId>::new());
    assert_eq!(s.get_review_instance(running.id).await.unwrap(), Some(running.clone()));

    // Instances are listed per definition, filtered and ordered.
    let ids = async |q: &str| -> Vec<ReviewInstanceId> {
        let q = query(&REVIEW_INSTANCES, q).scoped("definition/id", late.id).unwrap();
        s.list_review_instances(&q).await.unwrap().items.iter().map(|i| i.id).collect()
    };
    assert_eq!(ids("$filter=status eq 'Completed'").await, vec![completed.id]);
    assert_eq!(ids("$filter=status eq 'InProgress'&$top=999").await.len(), 3);
    let other = query(&REVIEW_INSTANCES, "").scoped("definition/id", early.id).unwrap();
    assert!(s.list_review_instances(&other).await.unwrap().items.is_empty());
    let newest = instance(&late, t("2030-06-01T00:00:00Z"));
    s.apply(&Batch { review_instances: vec![Put::New(newest.clone())], ..Default::default() }).await.unwrap();
    assert_eq!(ids("$orderby=startDateTime desc&$top=1").await, vec![newest.id]);
    assert_eq!(ids("$filter=endDateTime gt 2030-05-01T00:00:00Z").await, vec![newest.id]);

    // An instance of a missing definition is refused, naming it.
    let orphan = ReviewInstance { definition_id: ReviewDefinitionId::new(), ..instance(&late, at(0)) };
    assert_not_found(
        s.apply(&Batch { review_instances: vec![Put::New(orphan)], ..Default::default() }).await,
        "an instance of no definition",
    );
}

pub async fn opening_an_instance_writes_decisions_and_reviewers(s: SqlStore) {
    let (alice, bob) = (UserId::new(), UserId::new());
    // Alice reviews every decision (twice named: kept once), Bob every third.
    let (_, i, decisions) = opened(&s, 250, |k| if k % 3 == 0 { vec![bob, alice, alice] } else { vec![alice] }).await;
    let want: Vec<ReviewDecision> = sorted_by_id(decisions.iter().cloned().map(canonical).collect());
    assert_eq!(s.get_review_decision(want[7].id).await.unwrap(), Some(want[7].clone()));
    assert_eq!(s.get_review_decision(ReviewDecisionId::new()).await.unwrap(), None);

    // Walked in id order.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = s.review_decisions_of(i.id, after, 64).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        walked.extend(page);
    }
    assert_eq!(walked, want);
    assert!(s.review_decisions_of(ReviewInstanceId::new(), None, 10).await.unwrap().is_empty());

    let some: Vec<ReviewDecisionId> = vec![want[3].id, ReviewDecisionId::new(), want[1].id, want[3].id];
    assert_eq!(s.review_decisions_by_id(&some).await.unwrap(), vec![want[1].clone(), want[3].clone()]);
    let principals = vec![want[5].principal_id, UserId::new(), want[2].principal_id];
    assert_eq!(
        s.review_decisions_of_principals(i.id, &principals).await.unwrap(),
        sorted_by_id(vec![want[2].clone(), want[5].clone()])
    );
    assert!(s.review_decisions_of_principals(ReviewInstanceId::new(), &principals).await.unwrap().is_empty());

    // A reviewer's decisions, paged through the relation and next links.
    let mine = |who: UserId, q: &str| {
        query(&REVIEW_DECISIONS, q).scoped("instance/id", i.id).unwrap().related(Relation::DecisionsToReview, who)
    };
    let all_pages = async |mut q: ListQuery| -> Vec<ReviewDecision> {
        let mut out = Vec::new();
        loop {
            let page = s.list_review_decisions(&q).await.unwrap();
            out.extend(page.items);
            match page.next {
                Some(next) => q.after = Some(next),
                None => return out,
            }
        }
    };
    assert_eq!(all_pages(mine(alice, "$top=40")).await, want);
    let bobs: Vec<ReviewDecision> = decisions.iter().step_by(3).cloned().map(canonical).collect();
    assert_eq!(all_pages(mine(bob, "$top=7")).await, sorted_by_id(bobs.clone()));
    let first = s.list_review_decisions(&mine(bob, "$top=7&$count=true")).await.unwrap();
    assert_eq!((first.items.len(), first.count), (7, Some(bobs.len() as u64)));
    assert!(all_pages(mine(UserId::new(), "")).await.is_empty());

    // Filters Graph clients use.
    let mut denied = want[9].clone();
    denied.decision = Decision::Deny;
    denied.recommendation = Recommendation::Deny;
    denied.reviewed_by = Some(alice);
    denied.reviewed_at = Some(at(20));
    denied.justification = Some("Left the team.".into());
    denied.last_modified_date_time = at(20);
    s.apply(&Batch {
        review_decisions: vec![changed(denied.clone(), want[9].last_modified_date_time)],
        ..Default::default()
    })
    .await
    .unwrap();
    let listed = async |q: &str| -> Vec<ReviewDecision> {
        all_pages(query(&REVIEW_DECISIONS, q).scoped("instance/id", i.id).unwrap()).await
    };
    assert_eq!(listed("$filter=decision eq 'Deny'").await, vec![denied.clone()]);
    assert_eq!(listed("$filter=recommendation eq 'Deny'").await, vec![denied.clone()]);
    assert_eq!(listed(&format!("$filter=principal/id eq '{}'", want[4].principal_id)).await, vec![want[4].clone()]);
    assert_eq!(listed("$filter=applyResult eq 'New'&$top=999").await.len(), 250);
    assert_eq!(listed("$filter=reviewedBy/id ne null").await, vec![denied.clone()]);
    let newest = query(&REVIEW_DECISIONS, "$orderby=reviewedDateTime desc&$top=1").scoped("instance/id", i.id).unwrap();
    let page = s.list_review_decisions(&newest).await.unwrap();
    assert_eq!((page.items, page.next.is_some()), (vec![denied], true));

    // One decision per assignment and instance; decisions of a missing instance name it.
    let mut twin = decision(&i, UserId::new(), vec![]);
    twin.assignment_id = want[0].assignment_id;
    assert_conflict(
        s.apply(&Batch { review_decisions: vec![Put::New(twin)], ..Default::default() }).await,
        "a second decision on one assignment",
    );
    let other = instance(&definition("x", AccessPackageId::new(), None, at(0)), at(0));
    let with_instance = Batch {
        review_instances: vec![Put::New(other.clone())],
        review_decisions: vec![Put::New(decision(&other, UserId::new(), vec![]))],
        ..Default::default()
    };
    assert_not_found(s.apply(&with_instance).await, "an instance of no definition, with its decisions");
}

pub async fn stale_writes_fail_the_whole_batch(s: SqlStore) {
    let reviewer = UserId::new();
    let (d, i, decisions) = opened(&s, 5, |_| vec![reviewer]).await;
    let before = sorted_by_id(s.review_decisions_of(i.id, None, 100).await.unwrap());
    let recorded = |x: &ReviewDecision| {
        let mut r = x.clone();
        r.decision = Decision::Approve;
        r.justification = Some("Still on the team.".into());
        r.reviewed_by = Some(reviewer);
        r.reviewed_at = Some(at(30));
        r.last_modified_date_time = at(30);
        r
    };
    // A stale definition takes the decisions and the new instance of its batch with it.
    let mut d2 = d.clone();
    d2.next_occurrence = 1;
    d2.last_modified_date_time = at(30);
    let next = instance(&d, at(40));
    let batch = Batch {
        review_definitions: vec![changed(d2.clone(), at(-1))],
        review_instances: vec![Put::New(next.clone())],
        review_decisions: vec![
            changed(recorded(&decisions[0]), decisions[0].last_modified_date_time),
            Put::New(decision(&next, UserId::new(), vec![reviewer])),
        ],
        ..Default::default()
    };
    assert_conflict(s.apply(&batch).await, "a stale definition");
    assert_eq!(s.get_review_definition(d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(s.get_review_instance(next.id).await.unwrap(), None);
    assert_eq!(sorted_by_id(s.review_decisions_of(i.id, None, 100).await.unwrap()), before);

    // One stale decision among fresh ones: none is written.
    let batch = Batch {
        review_decisions: vec![
            changed(recorded(&decisions[1]), decisions[1].last_modified_date_time),
            changed(recorded(&decisions[2]), at(29)),
            changed(recorded(&decisions[3]), decisions[3].last_modified_date_time),
        ],
        ..Default::default()
    };
    assert_conflict(s.apply(&batch).await, "a stale decision");
    assert_eq!(sorted_by_id(s.review_decisions_of(i.id, None, 100).await.unwrap()), before);
    // The same on the versions read lands, and a second writer on those versions loses.
    let fresh = |k: usize| changed(recorded(&decisions[k]), decisions[k].last_modified_date_time);
    let batch = Batch { review_decisions: vec![fresh(1), fresh(2), fresh(3)], ..Default::default() };
    s.apply(&batch).await.unwrap();
    assert_conflict(s.apply(&batch).await, "the same versions again");
    assert_eq!(s.get_review_decision(decisions[2].id).await.unwrap(), Some(recorded(&decisions[2])));

    // A stale instance fails too.
    let mut moved = i.clone();
    moved.stage = 1;
    moved.last_modified_date_time = at(50);
    assert_conflict(
        s.apply(&Batch { review_instances: vec![changed(moved, at(1))], ..Default::default() }).await,
        "a stale instance",
    );
    assert_eq!(s.get_review_instance(i.id).await.unwrap(), Some(i));
}

pub async fn decisions_follow_their_instance(s: SqlStore) {
    let (alice, bob, carol) = (UserId::new(), UserId::new(), UserId::new());
    let (_, i, decisions) = opened(&s, 3, |_| vec![alice]).await;
    let mut d0 = canonical(decisions[0].clone());
    d0.decision = Decision::Approve;
    d0.reviewed_by = Some(alice);
    d0.reviewed_at = Some(at(20));
    d0.last_modified_date_time = at(20);
    let one = |d: &ReviewDecision, read_at| Batch {
        review_decisions: vec![changed(d.clone(), read_at)],
        ..Default::default()
    };
    s.apply(&one(&d0, decisions[0].last_modified_date_time)).await.unwrap();

    // Moving to stage 1 with the instance: the decision's reviewers are replaced, its first
    // stage kept in its history.
    let mut stage1 = i.clone();
    stage1.stage = 1;
    stage1.last_modified_date_time = at(30);
    let mut moved = d0.clone();
    moved.history = vec![StageDecision {
        stage: 0,
        decision: Decision::Approve,
        justification: None,
        reviewed_by: Some(alice),
        reviewed_at: Some(at(20)),
    }];
    moved.stage = 1;
    moved.reviewers = vec![carol, bob];
    moved.decision = Decision::NotReviewed;
    moved.reviewed_by = None;
    moved.reviewed_at = None;
    moved.last_modified_date_time = at(30);
    let batch = Batch {
        review_instances: vec![changed(stage1.clone(), i.last_modified_date_time)],
        review_decisions: vec![changed(moved.clone(), d0.last_modified_date_time)],
        ..Default::default()
    };
    s.apply(&batch).await.unwrap();
    assert_eq!(s.get_review_decision(d0.id).await.unwrap(), Some(canonical(moved.clone())));
    let of = async |who: UserId| -> Vec<ReviewDecisionId> {
        let q =
            query(&REVIEW_DECISIONS, "").scoped("instance/id", i.id).unwrap().related(Relation::DecisionsToReview, who);
        s.list_review_decisions(&q).await.unwrap().items.iter().map(|d| d.id).collect()
    };
    assert_eq!(of(bob).await, vec![d0.id]);
    assert_eq!(of(alice).await.len(), 2, "no longer a reviewer of the decision that moved on");

    // A decision still at stage 0 cannot be written now that the instance is at stage 1.
    let mut late = canonical(decisions[1].clone());
    late.decision = Decision::Deny;
    late.last_modified_date_time = at(40);
    assert_conflict(s.apply(&one(&late, decisions[1].last_modified_date_time)).await, "a decision of a past stage");
    // At the instance's stage it can.
    let mut now1 = moved.clone();
    now1.decision = Decision::Deny;
    now1.reviewed_by = Some(bob);
    now1.last_modified_date_time = at(40);
    s.apply(&one(&now1, moved.last_modified_date_time)).await.unwrap();

    // Completed: decisions are refused on their own, written with the instance.
    let mut completed = stage1.clone();
    completed.status = ReviewStatus::Completed;
    completed.last_modified_date_time = at(50);
    s.apply(&Batch {
        review_instances: vec![changed(completed.clone(), stage1.last_modified_date_time)],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut again = now1.clone();
    again.decision = Decision::Approve;
    again.last_modified_date_time = at(60);
    assert_conflict(s.apply(&one(&again, now1.last_modified_date_time)).await, "a decision of a completed instance");
    assert_eq!(s.get_review_decision(now1.id).await.unwrap(), Some(canonical(now1.clone())));
    let mut applied = now1.clone();
    applied.apply_result = ApplyResult::AppliedSuccessfully;
    applied.applied_at = Some(at(60));
    applied.applied_by = Some(UserId::new());
    applied.last_modified_date_time = at(60);
    let mut applied_instance = completed.clone();
    applied_instance.status = ReviewStatus::Applied;
    applied_instance.last_modified_date_time = at(60);
    let batch = Batch {
        review_instances: vec![changed(applied_instance.clone(), completed.last_modified_date_time)],
        review_decisions: vec![changed(applied.clone(), now1.last_modified_date_time)],
        ..Default::default()
    };
    s.apply(&batch).await.unwrap();
    assert_eq!(s.get_review_decision(now1.id).await.unwrap(), Some(canonical(applied)));
    assert_eq!(s.get_review_instance(i.id).await.unwrap(), Some(applied_instance));
}

pub async fn deleting_a_definition_takes_its_reviews(s: SqlStore) {
    let reviewer = UserId::new();
    let (d, i, decisions) = opened(&s, 20, |_| vec![reviewer]).await;
    let (keep, ki, kept) = opened(&s, 2, |_| vec![reviewer]).await;
    let e = event(d.id);
    s.delete_review_definition(d.id, &e).await.unwrap();
    assert_eq!(s.get_review_definition(d.id).await.unwrap(), None);
    assert_eq!(s.get_review_instance(i.id).await.unwrap(), None);
    assert!(s.review_decisions_by_id(&decisions.iter().map(|x| x.id).collect::<Vec<_>>()).await.unwrap().is_empty());
    let q = query(&REVIEW_DECISIONS, "").related(Relation::DecisionsToReview, reviewer);
    let left: Vec<ReviewDecisionId> = s.list_review_decisions(&q).await.unwrap().items.iter().map(|x| x.id).collect();
    assert_eq!(left, sorted(kept.iter().map(|x| x.id).collect()), "only the other definition's decisions are left");
    assert_eq!(s.events_of(&d.id.to_string()).await.unwrap(), vec![e]);
    assert_not_found(s.delete_review_definition(d.id, &event(d.id)).await, "deleted twice");
    assert_eq!(s.events_of(&d.id.to_string()).await.unwrap().len(), 1, "a refused delete records nothing");
    assert!(s.get_review_definition(keep.id).await.unwrap().is_some());
    assert!(s.get_review_instance(ki.id).await.unwrap().is_some());
}

pub async fn sign_ins_only_move_forward(s: SqlStore) {
    let (a, b) = (user("ada@contoso.example"), user("bo@contoso.example"));
    s.insert_user(&a).await.unwrap();
    s.insert_user(&b).await.unwrap();
    s.note_sign_in(a.id, at(20)).await.unwrap();
    s.note_sign_in(a.id, at(10)).await.unwrap();
    let everyone = [b.id, a.id, UserId::new(), a.id];
    assert_eq!(s.last_sign_ins(&everyone).await.unwrap(), vec![(a.id, at(20))], "an earlier sign-in changes nothing");
    s.note_sign_in(a.id, at(30)).await.unwrap();
    s.note_sign_in(b.id, at(5)).await.unwrap();
    s.note_sign_in(UserId::new(), at(5)).await.unwrap();
    let mut want = vec![(a.id, at(30)), (b.id, at(5))];
    want.sort();
    assert_eq!(s.last_sign_ins(&everyone).await.unwrap(), want);
    assert!(s.last_sign_ins(&[]).await.unwrap().is_empty());
    assert_eq!(s.get_user(a.id).await.unwrap(), Some(a), "the user reads as before");
}

/// 10,000 decisions (with 15,000 reviewer rows) opened in one batch, then all applied in one
/// batch with their instance; the times are printed (`--no-capture`).
pub async fn ten_thousand_decisions_in_one_batch(s: SqlStore) {
    const N: usize = 10_000;
    let (alice, bob) = (UserId::new(), UserId::new());
    let started = Instant::now();
    let (_, i, decisions) = opened(&s, N, |k| if k % 2 == 0 { vec![alice, bob] } else { vec![alice] }).await;
    let opening = started.elapsed();
    let count = async |who: UserId| {
        let q = query(&REVIEW_DECISIONS, "$top=1&$count=true").scoped("instance/id", i.id).unwrap();
        s.list_review_decisions(&q.related(Relation::DecisionsToReview, who)).await.unwrap().count.unwrap()
    };
    assert_eq!((count(alice).await, count(bob).await), (N as u64, (N / 2) as u64));

    let mut ended = i.clone();
    ended.status = ReviewStatus::Applied;
    ended.last_modified_date_time = at(100);
    let applied: Vec<ReviewDecision> = decisions
        .iter()
        .map(|d| {
            let mut a = d.clone();
            a.decision = Decision::Approve;
            a.apply_result = ApplyResult::AppliedSuccessfully;
            a.applied_at = Some(at(100));
            a.last_modified_date_time = at(100);
            a
        })
        .collect();
    let batch = Batch {
        review_instances: vec![changed(ended, i.last_modified_date_time)],
        review_decisions: decisions
            .iter()
            .zip(&applied)
            .map(|(d, a)| changed(a.clone(), d.last_modified_date_time))
            .collect(),
        ..Default::default()
    };
    let started = Instant::now();
    s.apply(&batch).await.unwrap();
    let applying = started.elapsed();
    eprintln!("10,000 decisions: opened in {opening:?}, applied in {applying:?}");
    let q = query(&REVIEW_DECISIONS, "$filter=applyResult eq 'AppliedSuccessfully'&$top=1&$count=true")
        .scoped("instance/id", i.id)
        .unwrap();
    assert_eq!(s.list_review_decisions(&q).await.unwrap().count, Some(N as u64));
    assert_eq!((count(alice).await, count(bob).await), (N as u64, (N / 2) as u64), "reviewers kept");
    assert_eq!(s.get_review_decision(applied[1234].id).await.unwrap(), Some(canonical(applied[1234].clone())));
}
