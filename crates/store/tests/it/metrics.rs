//! The figures behind the scrape-time gauges: requests counted by state, jobs by kind (due or
//! later) with the age of the oldest due job no worker holds (a leased one does not count, one
//! whose lease ran out does again), and the decisions of review instances in progress only.

use jiff::SignedDuration;
use steward_app::Store;
use steward_app::jobs::{JobKind, NewJob};
use steward_app::metrics::{JobCounts, MetricsSnapshot};
use steward_app::ports::{Batch, Put};
use steward_domain::enums::{RequestState, RequestType};
use steward_domain::ids::{AccessPackageId, CatalogId, RequestId, UserId};
use steward_domain::request::{AssignmentRequest, RequestDetail, RequestStatus};
use steward_domain::review::{Decision, ReviewStatus};
use steward_store::SqlStore;

use crate::fixtures::*;
use crate::reviews::{decision, definition, instance};

fn request(state: RequestState, status: RequestStatus) -> AssignmentRequest {
    AssignmentRequest {
        id: RequestId::new(),
        request_type: RequestType::UserAdd,
        state,
        status,
        access_package_id: AccessPackageId::new(),
        catalog_id: CatalogId::new(),
        policy_id: None,
        target_id: UserId::new(),
        requestor_id: None,
        assignment_id: None,
        detail: RequestDetail::default(),
        created_date_time: at(0),
        completed_date_time: None,
        modified_date_time: at(0),
        due: None,
    }
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

pub async fn metrics_snapshot_counts_requests_jobs_and_reviews(s: SqlStore) {
    let now = at(3_600_000_000); // an hour in
    assert_eq!(s.metrics_snapshot(now).await.unwrap(), MetricsSnapshot::default(), "an empty store");

    // Requests by state, each state once however many requests are in it.
    let requests = [
        request(RequestState::PendingApproval, RequestStatus::PendingApproval),
        request(RequestState::PendingApproval, RequestStatus::PendingApprovalEscalated),
        request(RequestState::Delivering, RequestStatus::Delivering),
        request(RequestState::Delivered, RequestStatus::Delivered),
        request(RequestState::Delivered, RequestStatus::Delivered),
        request(RequestState::Delivered, RequestStatus::Delivered),
        request(RequestState::Denied, RequestStatus::TimedOut),
    ];
    s.apply(&Batch { requests: requests.iter().cloned().map(Put::New).collect(), ..Default::default() }).await.unwrap();

    // Jobs: two revocation jobs due 20 and 10 minutes ago, the sweep due now, one tomorrow.
    let ago = |m: i64| now.checked_sub(secs(60 * m)).unwrap();
    let job = |kind, run_at| NewJob { run_at, ..NewJob::now(kind, now) };
    let older = job(JobKind::RevokeEnded { assignments: vec![] }, ago(20));
    let newer = job(JobKind::RevokeEnded { assignments: vec![] }, ago(10));
    let sweep = NewJob::sweep(now);
    let later = job(JobKind::GuestsLostAccess { users: vec![] }, ago(-24 * 60));
    s.apply(&Batch { jobs: vec![older.clone(), newer, sweep, later], ..Default::default() }).await.unwrap();

    // Reviews: an instance in progress with three decisions, one decided; a completed
    // instance's decisions are not counted.
    let d = definition("Metrics review", AccessPackageId::new(), None, at(0));
    let open = instance(&d, at(10));
    let mut decided = decision(&open, UserId::new(), vec![UserId::new()]);
    decided.decision = Decision::Deny;
    decided.reviewed_by = Some(UserId::new());
    decided.reviewed_at = Some(at(20));
    let undecided = [decision(&open, UserId::new(), vec![]), decision(&open, UserId::new(), vec![])];
    let done = steward_domain::review::ReviewInstance { status: ReviewStatus::Completed, ..instance(&d, at(5)) };
    let old = decision(&done, UserId::new(), vec![]);
    let mut decisions: Vec<_> = undecided.iter().cloned().map(Put::New).collect();
    decisions.push(Put::New(decided));
    decisions.push(Put::New(old));
    let batch = Batch {
        review_definitions: vec![Put::New(d.clone())],
        review_instances: vec![Put::New(open), Put::New(done)],
        review_decisions: decisions,
        ..Default::default()
    };
    s.apply(&batch).await.unwrap();

    let snap = s.metrics_snapshot(now).await.unwrap();
    let mut by_state = snap.requests.clone();
    by_state.sort();
    assert_eq!(
        by_state,
        vec![
            ("delivered".to_owned(), 3),
            ("delivering".to_owned(), 1),
            ("denied".to_owned(), 1),
            ("pendingApproval".to_owned(), 2)
        ]
    );
    let mut jobs = snap.jobs.clone();
    jobs.sort_by(|a, b| a.kind.cmp(&b.kind));
    assert_eq!(
        jobs,
        vec![
            JobCounts { kind: "guestsLostAccess".into(), due: 0, scheduled: 1 },
            JobCounts { kind: "revokeEnded".into(), due: 2, scheduled: 0 },
            JobCounts { kind: "sweep".into(), due: 1, scheduled: 0 },
        ],
        "a job due exactly now is due"
    );
    assert_eq!(snap.oldest_due_job_age, secs(20 * 60), "the older delivery");
    assert_eq!((snap.review_decisions, snap.review_decisions_decided), (3, 1));

    // A worker holds the older job: it stays pending, but no longer waits; the next one does.
    let lease_until = now.checked_add(secs(60)).unwrap();
    let claimed = s.claim_jobs_by_id("metrics-worker", &[older.id], now, lease_until).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let snap = s.metrics_snapshot(now).await.unwrap();
    assert_eq!(snap.jobs.iter().find(|j| j.kind == "revokeEnded").map(|j| j.due), Some(2), "running is pending");
    assert_eq!(snap.oldest_due_job_age, secs(10 * 60));
    // Its lease runs out: it waits again, since it became due.
    let after = lease_until.checked_add(secs(1)).unwrap();
    assert_eq!(s.metrics_snapshot(after).await.unwrap().oldest_due_job_age, secs(20 * 60 + 61));
    // Nothing due at all: zero.
    assert_eq!(s.metrics_snapshot(ago(30)).await.unwrap().oldest_due_job_age, SignedDuration::ZERO);
}
