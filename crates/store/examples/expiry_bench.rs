//! Benchmark (issue 3, b): an expiry sweep over many assignments of which many end at the same
//! moment. Seeds the store, moves a manual clock to that moment, then times
//!   1. the sweep alone (state change and audit event per assignment, and one `RevokeEnded`
//!      job per bulk transaction) until every due assignment has expired, and
//!   2. the revocations that follow (group membership removed through the directory
//!      connector), run by two workers sharing the job queue.
//!
//! ```sh
//! cargo run --release -p steward-store --example expiry_bench -- sqlite:///tmp/expiry.db
//! cargo run --release -p steward-store --example expiry_bench -- postgres://postgres@127.0.0.1:5432/steward_expiry
//! ```
//! Options: `--assignments N` (default 1,000,000), `--ending N` (default 100,000),
//! `--revoke N` (how many of the ending assignments have a real user and group membership to
//! revoke; default 20,000). The database must be empty (a new SQLite file or a new
//! PostgreSQL database).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use steward_app::lifecycle::{sweep, worker::Worker};
use steward_app::ports::{Batch, ManualClock, Put};
use steward_app::{Services, Store};
use steward_domain::assignment::Assignment;
use steward_domain::directory::User;
use steward_domain::enums::{AssignmentState, UserType};
use steward_domain::ids::{AssignmentId, UserId};
use steward_domain::schedule::Window;
use steward_domain::text::DisplayName;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).filter(|a| !a.starts_with("--")).expect("usage: expiry_bench <database-url> [options]");
    let total = support::arg(&args, "--assignments", 1_000_000);
    let ending = support::arg(&args, "--ending", 100_000).min(total);
    let revoke = support::arg(&args, "--revoke", 20_000).min(ending);
    let store = Arc::new(steward_store::open(url, true).await.expect("open the store"));
    let start: Timestamp = "2031-01-01T00:00:00Z".parse().unwrap();
    let end: Timestamp = "2031-02-01T00:00:00Z".parse().unwrap();
    let later: Timestamp = "2032-01-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let s = Services::new(store.clone(), clock.clone());

    // A catalog, a group as its resource, a package granting Member, an admin-only policy.
    let support::Seeded { cat, group, pkg, policy } = support::seed(&*store, start).await;

    // Users with a real membership for the first `revoke` ending assignments.
    let t = Instant::now();
    let mut targets: Vec<UserId> = Vec::with_capacity(total);
    let mut tasks = Vec::new();
    for chunk in 0..8 {
        let store = store.clone();
        let gid = group.id;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (chunk..revoke).step_by(8) {
                let u = User {
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
                    created_date_time: start,
                    manager: None,
                };
                store.insert_user(&u).await.unwrap();
                store.add_member(gid, u.id).await.unwrap();
                ids.push(u.id);
            }
            ids
        }));
    }
    for task in tasks {
        targets.extend(task.await.unwrap());
    }
    targets.extend((targets.len()..total).map(|_| UserId::new()));
    println!("seeded {revoke} users with memberships in {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    for (c, chunk) in targets.chunks(5_000).enumerate() {
        let mut batch = Batch::default();
        for (i, target) in chunk.iter().enumerate() {
            let n = c * 5_000 + i;
            batch.assignments.push(Put::New(Assignment {
                id: AssignmentId::new(),
                access_package_id: pkg.id,
                catalog_id: cat.id,
                policy_id: Some(policy.id),
                target_id: *target,
                state: AssignmentState::Delivered,
                status: "Delivered".into(),
                window: Window { start, end: Some(if n < ending { end } else { later }) },
                expired_date_time: None,
                created_date_time: start,
                modified_date_time: start,
            }));
        }
        store.apply(&batch).await.unwrap();
    }
    println!("seeded {total} assignments ({ending} ending at {end}) in {:.1} s", t.elapsed().as_secs_f64());

    // 1. The sweep alone.
    clock.set(end);
    let t = Instant::now();
    let mut expired = 0;
    let mut passes = 0;
    loop {
        let (swept, more) = sweep::pass(&s, end).await.unwrap();
        expired += swept.expired;
        passes += 1;
        if !more && swept.expired == 0 {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(expired, ending, "every due assignment expires once");
    println!(
        "sweep: {expired} assignments expired in {secs:.2} s over {passes} passes = {:.0} expirations/s",
        expired as f64 / secs
    );
    let jobs = store.pending_jobs().await.unwrap();
    println!("revocation jobs queued: {jobs}");

    // 2. The revocations, by two workers.
    clock.advance(SignedDuration::from_secs(1));
    let t = Instant::now();
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let w = Worker::new(s.clone(), format!("bench-{i}"));
            tokio::spawn(async move { w.drain(usize::MAX).await.unwrap() })
        })
        .collect();
    let mut ran = 0;
    for r in runs {
        ran += r.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let left = store.member_ids(group.id).await.unwrap().len();
    println!("revocations: {ran} jobs in {secs:.2} s = {:.0} jobs/s; group members left: {left}", ran as f64 / secs);
    assert_eq!(left, 0, "every membership of an expired assignment was revoked");
}
