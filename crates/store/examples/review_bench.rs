//! Benchmark (issue 7): an access review over many assignments. Seeds the store through the
//! `Store` port (a package granting a group, an admin-only policy, users each with an active
//! assignment, managers with `--reports` reports each, most users with a recent sign-in),
//! creates a one-time review of the package's assignments by each user's manager (through
//! `reviews::create_definition`, as an administrator), then times
//!   1. opening the instance: `reviews::sweep` past the start until the instance exists (one
//!      decision per assignment with its reviewer and recommendation, in one batch);
//!   2. the reviewer's decision list: `reviews::list_my_decisions` within the instance, what
//!      `…/decisions/filterByCurrentUser(on='reviewer')` calls, for `--samples` random
//!      managers: Graph's default page (100, a manager's whole list), and pages 1 and 2 of
//!      `$top=50`; and, for comparison, the default page across every instance;
//!   3. recording decisions (60% Approve, 30% Deny, 10% left unanswered), one
//!      `reviews::batch_record` per manager (`batchRecordDecisions` naming each principal);
//!   4. applying them: `reviews::sweep` past the instance's end until it is Applied (the
//!      unanswered take the default, Deny; every Deny removes its assignment through the
//!      systemRemove flow, which queues the revocations). Delivering those is the job
//!      worker's business (`expiry_bench` times it).
//!
//! ```sh
//! cargo run --release -p steward-store --example review_bench -- sqlite:///tmp/review.db
//! cargo run --release -p steward-store --example review_bench -- postgres://postgres@127.0.0.1:5432/steward_review
//! ```
//! Options: `--assignments N` (default 100,000), `--reports N` per manager (default 100),
//! `--samples N` managers whose list is read (default 200). The database must be empty (a new
//! SQLite file or a new PostgreSQL database).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use steward_app::auth::Principal;
use steward_app::ports::{Batch, ManualClock, Put};
use steward_app::query::{ASSIGNMENTS, ListQuery, REVIEW_DECISIONS, REVIEW_INSTANCES};
use steward_app::reviews::{self, BatchItem};
use steward_app::{Services, Store};
use steward_domain::assignment::Assignment;
use steward_domain::directory::User;
use steward_domain::enums::{AssignmentState, UserType};
use steward_domain::ids::{AssignmentId, UserId};
use steward_domain::review::{ApplyResult, Decision, DefinitionInput, Recommendation, ReviewStatus};
use steward_domain::schedule::Window;
use steward_domain::text::DisplayName;

/// A small deterministic generator (xorshift64*), so every run reads the same managers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        let n = u64::try_from(v.len()).unwrap();
        v.get(usize::try_from(self.next() % n).unwrap()).unwrap()
    }
}

/// What user `i`'s manager decides: 6 in 10 Approve, 3 Deny, 1 left unanswered (by a hash of
/// `i`, so the mix is spread over every manager's reports).
fn choice(i: usize) -> Option<Decision> {
    match (i.wrapping_mul(2_654_435_761) >> 7) % 10 {
        0..=5 => Some(Decision::Approve),
        6..=8 => Some(Decision::Deny),
        _ => None,
    }
}

/// Whether user `i` signed in recently (7 in 10); the others have no sign-in recorded, so
/// their recommendation is Deny.
fn signed_in(i: usize) -> bool {
    (i.wrapping_mul(40_503) >> 5) % 10 < 7
}

/// The 1-minute load average (Linux), to print beside what is timed.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// p50 / p95 / p99 / max of `v` in ms (nearest rank).
fn percentiles(v: &mut [Duration]) -> String {
    v.sort_unstable();
    let at = |p: f64| {
        let rank = (p * v.len() as f64).ceil() as usize;
        ms(*v.get(rank.clamp(1, v.len()) - 1).unwrap())
    };
    format!(
        "p50 {:.2} / p95 {:.2} / p99 {:.2} / max {:.2} ms (n = {})",
        at(0.50),
        at(0.95),
        at(0.99),
        ms(*v.last().unwrap()),
        v.len()
    )
}

fn user(i: usize, manager: Option<UserId>, at: Timestamp) -> User {
    User {
        id: UserId::new(),
        display_name: DisplayName::parse(format!("User {i}")).unwrap(),
        user_principal_name: format!("user{i}@bench.example"),
        mail: None,
        user_type: UserType::Member,
        account_enabled: true,
        department: None,
        job_title: None,
        company_name: None,
        employee_id: None,
        city: None,
        country: None,
        created_date_time: at,
        manager,
    }
}

/// Inserts `users` over 8 tasks; notes a sign-in at `sign_in` for those flagged.
async fn insert_users(store: &Arc<steward_store::SqlStore>, users: Vec<(User, bool)>, sign_in: Timestamp) {
    let users = Arc::new(users);
    let mut tasks = Vec::new();
    for lane in 0..8 {
        let store = store.clone();
        let users = users.clone();
        tasks.push(tokio::spawn(async move {
            for (u, signed) in users.iter().skip(lane).step_by(8) {
                store.insert_user(u).await.unwrap();
                if *signed {
                    store.note_sign_in(u.id, sign_in).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).filter(|a| !a.starts_with("--")).expect("usage: review_bench <database-url> [options]");
    let total = support::arg(&args, "--assignments", 100_000);
    let per_manager = support::arg(&args, "--reports", 100).max(1);
    let samples = support::arg(&args, "--samples", 200).max(1);
    let store = Arc::new(steward_store::open(url, true).await.expect("open the store"));
    let start: Timestamp = "2031-01-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let s = Services::new(store.clone(), clock.clone());

    // A catalog, a group as its resource, a package granting Member, an admin-only policy.
    let support::Seeded { cat, group: _, pkg, policy } = support::seed(&*store, start).await;

    // Managers, then their reports: user i reports to manager i mod M, so a manager's reports
    // (and their decisions) are spread over the whole instance, as in a real directory.
    let t = Instant::now();
    let recent = start.checked_sub(SignedDuration::from_hours(5 * 24)).unwrap();
    let managers_n = total.div_ceil(per_manager);
    let managers: Vec<User> = (0..managers_n).map(|k| user(total + k, None, start)).collect();
    let manager_ids: Vec<UserId> = managers.iter().map(|u| u.id).collect();
    insert_users(&store, managers.into_iter().map(|u| (u, true)).collect(), recent).await;
    let users: Vec<(User, bool)> =
        (0..total).map(|i| (user(i, manager_ids.get(i % managers_n).copied(), start), signed_in(i))).collect();
    let user_ids: Vec<UserId> = users.iter().map(|(u, _)| u.id).collect();
    let signed = users.iter().filter(|(_, s)| *s).count();
    insert_users(&store, users, recent).await;
    println!(
        "seeded {managers_n} managers and {total} users ({signed} with a sign-in 5 days ago) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    for chunk in user_ids.chunks(5_000) {
        let mut batch = Batch::default();
        for target in chunk {
            batch.assignments.push(Put::New(Assignment {
                id: AssignmentId::new(),
                access_package_id: pkg.id,
                catalog_id: cat.id,
                policy_id: Some(policy.id),
                target_id: *target,
                state: AssignmentState::Delivered,
                status: "Delivered".into(),
                window: Window { start, end: None },
                expired_date_time: None,
                created_date_time: start,
                modified_date_time: start,
            }));
        }
        store.apply(&batch).await.unwrap();
    }
    println!("seeded {total} assignments in {:.1} s", t.elapsed().as_secs_f64());

    // A one-time review of the package's assignments by each user's manager.
    let body = json!({
        "displayName": "Bench review",
        "descriptionForReviewers": "Does this person still need the bench group?",
        "scope": {"@odata.type": "#microsoft.graph.accessReviewQueryScope",
                  "query": format!("/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{}')", pkg.id),
                  "queryType": "MicrosoftGraph"},
        "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
        "settings": {"instanceDurationInDays": 14, "defaultDecisionEnabled": true, "defaultDecision": "Deny",
                     "autoApplyDecisionsEnabled": true, "recommendationsEnabled": true,
                     "recommendationLookBackDuration": "P30D", "justificationRequiredOnApproval": false}
    });
    let input = DefinitionInput::parse(body.as_object().unwrap()).unwrap();
    let admin = Principal::Admin { token: None };
    let d = reviews::create_definition(&s, &admin, input).await.unwrap();

    // 1. Opening the instance.
    let open_at = start.checked_add(SignedDuration::from_secs(60)).unwrap();
    clock.set(open_at);
    println!("load average before opening: {}", load());
    let instances = ListQuery::all(&REVIEW_INSTANCES).scoped("definition/id", d.id).unwrap();
    let t = Instant::now();
    let mut passes = 0;
    let inst = loop {
        let swept = reviews::sweep(&s, open_at).await.unwrap();
        passes += 1;
        if swept.opened > 0 {
            break store.list_review_instances(&instances).await.unwrap().items.into_iter().next().unwrap();
        }
        assert!(passes < 10, "the instance did not open");
    };
    let open_secs = t.elapsed().as_secs_f64();
    let (mut n, mut deny_rec) = (0, 0);
    let mut after = None;
    loop {
        let chunk = store.review_decisions_of(inst.id, after, 1_000).await.unwrap();
        let Some(last) = chunk.last() else { break };
        after = Some(last.id);
        n += chunk.len();
        deny_rec += chunk.iter().filter(|x| x.recommendation == Recommendation::Deny).count();
    }
    assert_eq!(n, total, "one decision per assignment");
    println!(
        "open: instance over {n} assignments in {open_secs:.2} s ({passes} sweep); recommendations {} Approve, \
         {deny_rec} Deny",
        n - deny_rec
    );

    // 2. The reviewer's decision list, as the Graph route asks for it.
    let within = Some((d.id, inst.id));
    let default_page = ListQuery::from_options(&REVIEW_DECISIONS, &steward_odata::QueryOptions::default()).unwrap();
    let top50 = ListQuery::from_options(&REVIEW_DECISIONS, &steward_odata::parse_query("$top=50").unwrap()).unwrap();
    let mut rng = Rng(0x5EED_5EED_5EED);
    let picked: Vec<UserId> = (0..samples).map(|_| *rng.pick(&manager_ids)).collect();
    for m in picked.iter().take(5) {
        reviews::list_my_decisions(&s, *m, within, &default_page).await.unwrap();
    }
    println!("load average before the decision lists: {}", load());
    let (mut full, mut first, mut second, mut across) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for m in &picked {
        let t = Instant::now();
        let page = reviews::list_my_decisions(&s, *m, within, &default_page).await.unwrap();
        full.push(t.elapsed());
        assert_eq!(page.items.len(), per_manager.min(100), "a manager's default page");
        let t = Instant::now();
        let p1 = reviews::list_my_decisions(&s, *m, within, &top50).await.unwrap();
        first.push(t.elapsed());
        let mut q2 = top50.clone();
        q2.after = p1.next.clone();
        if q2.after.is_some() {
            let t = Instant::now();
            let p2 = reviews::list_my_decisions(&s, *m, within, &q2).await.unwrap();
            second.push(t.elapsed());
            assert!(p2.items.iter().all(|x| x.reviewers.contains(m)));
        }
        // For comparison: the same list across every instance (there is one), which the store
        // compiles to the reviewer's rows first (`id IN (…)`) instead of the instance's walk.
        let t = Instant::now();
        let all = reviews::list_my_decisions(&s, *m, None, &default_page).await.unwrap();
        across.push(t.elapsed());
        assert_eq!(all.items.len(), page.items.len());
    }
    println!("decision list, default page (100): {}", percentiles(&mut full));
    println!("decision list, $top=50 page 1:     {}", percentiles(&mut first));
    if !second.is_empty() {
        println!("decision list, $top=50 page 2:     {}", percentiles(&mut second));
    }
    println!("decision list across instances:    {}", percentiles(&mut across));

    // 3. Recording: one batchRecordDecisions per manager, naming each report decided.
    let mut reports: Vec<Vec<(usize, UserId)>> = vec![Vec::new(); managers_n];
    for (i, u) in user_ids.iter().enumerate() {
        reports.get_mut(i % managers_n).unwrap().push((i, *u));
    }
    let (mut approve, mut deny, mut open_left) = (0, 0, 0);
    let t = Instant::now();
    let mut recorded = 0;
    for (manager, theirs) in manager_ids.iter().zip(&reports) {
        let p = Principal::User { user: *manager, token: None, grants: Default::default(), sign_in: None };
        let mut items = Vec::new();
        for (i, u) in theirs {
            match choice(*i) {
                Some(decision) => {
                    if decision == Decision::Approve {
                        approve += 1;
                    } else {
                        deny += 1;
                    }
                    items.push(BatchItem {
                        decision,
                        justification: Some(format!("{} after checking the bench group.", decision.as_str())),
                        principal: Some(*u),
                        resource: None,
                    });
                }
                None => open_left += 1,
            }
        }
        recorded += reviews::batch_record(&s, &p, d.id, inst.id, &items).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(recorded, approve + deny);
    println!(
        "record: {recorded} decisions ({approve} Approve, {deny} Deny; {open_left} left unanswered) by \
         {managers_n} batchRecordDecisions in {secs:.2} s = {:.0} decisions/s",
        recorded as f64 / secs
    );

    // 4. Applying: past the end, the sweep ends the instance and applies its decisions.
    let end_at = inst.end.checked_add(SignedDuration::from_secs(60)).unwrap();
    clock.set(end_at);
    let jobs_before = store.pending_jobs().await.unwrap();
    println!("load average before applying: {}", load());
    let t = Instant::now();
    let mut passes = 0;
    loop {
        reviews::sweep(&s, end_at).await.unwrap();
        passes += 1;
        let now = store.get_review_instance(inst.id).await.unwrap().unwrap();
        if now.status == ReviewStatus::Applied {
            break;
        }
        assert!(passes < 10, "the instance was not applied (status {})", now.status.as_str());
    }
    let apply_secs = t.elapsed().as_secs_f64();
    let (mut removed, mut kept, mut other) = (0, 0, 0);
    let mut after = None;
    loop {
        let chunk = store.review_decisions_of(inst.id, after, 1_000).await.unwrap();
        let Some(last) = chunk.last() else { break };
        after = Some(last.id);
        for x in &chunk {
            match (x.decision, x.apply_result) {
                (Decision::Deny, ApplyResult::AppliedSuccessfully) => removed += 1,
                (Decision::Approve, ApplyResult::AppliedSuccessfully) => kept += 1,
                _ => other += 1,
            }
        }
    }
    assert_eq!(other, 0, "every decision is final and applied");
    assert_eq!(removed, deny + open_left, "every Deny (recorded or by default) is applied");
    let jobs = store.pending_jobs().await.unwrap() - jobs_before;
    let mut active = ListQuery::all(&ASSIGNMENTS).scoped("accessPackage/id", pkg.id).unwrap();
    active = active.and(steward_app::query::Cond::Cmp {
        field: ASSIGNMENTS.field("state").unwrap(),
        op: steward_odata::CmpOp::Ne,
        value: steward_app::query::Value::Text("expired".into()),
        lower: false,
    });
    active.top = 1;
    active.count = true;
    let left = store.list_assignments(&active).await.unwrap().count.unwrap();
    assert_eq!(left, u64::try_from(kept).unwrap(), "only approved assignments stay active");
    println!(
        "apply: {n} decisions ({kept} kept, {removed} removed: {deny} denied, {open_left} by default) in \
         {apply_secs:.2} s ({passes} sweeps); jobs queued: {jobs}; assignments still active: {left}"
    );
    println!("(the queued revocations are delivered by the job worker; expiry_bench times that)");
}
