//! Benchmark (issue 8): the audit trail's hash chain.
//!
//! `append`: audit append throughput with concurrent writers on PostgreSQL, with and without
//! the chain, in the same run. Each writer records events one transaction at a time
//! (`Store::apply` with one event, as every change writes its event in its own transaction).
//! Without the chain the events are only inserted, and the chain's part of each insert (the
//! writing transaction's id and its index) is dropped from the schema first; with it, a
//! chainer runs beside the writers as the worker does (`audit::chain::pass`, up to 1,000
//! events a transaction, signed
//! checkpoints, the worker's 200 ms poll interval after a pass that left nothing waiting), and
//! the clock stops when the last event is chained, not merely written. Variants alternate
//! over `--rounds`, each on a new database.
//!
//! `verify`: `audit::chain::verify` (what `steward audit verify` runs) over a chain of
//! `--records` records, seeded through the store (events written in batches, then chained).
//!
//! ```sh
//! cargo run --release -p steward-store --example audit_bench -- append postgres://postgres@127.0.0.1:5432/postgres
//! cargo run --release -p steward-store --example audit_bench -- verify sqlite:///tmp/audit.db --records 10_000_000
//! ```
//! Options: `--writers N` (default 32), `--events N` per writer (default 1,000), `--rounds N`
//! (default 3), `--async-commit` (`synchronous_commit = off` in the benchmark's databases,
//! taking the disk's flush latency out of the comparison); `--records N` (default 10,000,000). `append` takes a PostgreSQL superuser URL
//! and creates (and drops) its own databases; `verify` seeds the database it is given when its
//! trail is empty and reuses it otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use sqlx::{AssertSqlSafe, Connection};
use steward_app::Store;
use steward_app::audit::chain;
use steward_app::ports::Batch;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::audit_chain::CheckpointKey;
use steward_store::SqlStore;
use support::arg;

fn event(writer: usize, i: usize, at: Timestamp) -> AuditEvent {
    let request = steward_domain::ids::RequestId::new();
    AuditEvent::new(
        at,
        if i.is_multiple_of(3) { Activity::Approve } else { Activity::UserRequestsAssignment },
        Initiator::User(format!("00000000-0000-4000-8000-{writer:012}")),
        "AccessPackageAssignmentRequest",
        request,
        request,
    )
    .with_detail(format!("stage {}", i % 2 + 1))
}

async fn exec(url: &str, sql: String) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
}

fn database_url(admin: &str, db: &str) -> String {
    let (base, query) = admin.split_once('?').map_or((admin, None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').unwrap();
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

/// One variant on a new database: seconds until every event was written (and, with the chain,
/// chained), and seconds until the writers alone were done.
async fn append(admin: &str, name: &str, writers: usize, each: usize, chained: bool, async_commit: bool) -> (f64, f64) {
    exec(admin, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    exec(admin, format!("CREATE DATABASE {name}")).await;
    if async_commit {
        exec(admin, format!("ALTER DATABASE {name} SET synchronous_commit = off")).await;
    }
    let url = database_url(admin, name);
    let store: SqlStore = steward_store::open(&url, true).await.unwrap();
    if !chained {
        // The same inserts without the chain: what the chain adds to each writer's insert (the
        // writing transaction's id and its index, migration 0017) goes too.
        exec(
            &url,
            "DROP INDEX audit_events_chain_order; ALTER TABLE audit_events \
             ALTER COLUMN chain_xid DROP DEFAULT, ALTER COLUMN chain_xid DROP NOT NULL"
                .into(),
        )
        .await;
    }
    let t0 = Timestamp::from_second(1_790_000_000).unwrap();
    let key = CheckpointKey::derive(b"bench");
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let chainer = chained.then(|| {
        let (store, done, key) = (store.clone(), done.clone(), key.clone());
        tokio::spawn(async move {
            loop {
                let finished = done.load(Ordering::Acquire);
                let n = chain::pass(&store, Some(&key), t0).await.unwrap();
                if n == 0 && finished {
                    return;
                }
                if n < chain::BATCH {
                    // As the worker: a pass that left nothing waiting is followed by the poll
                    // interval (200 ms by default) when no job is due.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        })
    });
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    let at = t0.checked_add(SignedDuration::from_micros((w * each + i) as i64)).unwrap();
                    store.apply(&Batch { events: vec![event(w, i, at)], ..Batch::default() }).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let writers_done = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Release);
    if let Some(c) = chainer {
        c.await.unwrap();
        let state = store.audit_chain_state().await.unwrap();
        assert_eq!((state.head.seq, state.unchained), ((writers * each) as i64, 0), "everything chained");
    }
    let total = started.elapsed().as_secs_f64();
    drop(store);
    exec(admin, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    (total, writers_done)
}

async fn run_append(admin: &str, args: &[String]) {
    let writers = arg(args, "--writers", 32);
    let each = arg(args, "--events", 1_000);
    let rounds = arg(args, "--rounds", 3);
    let async_commit = args.iter().any(|a| a == "--async-commit");
    let n = (writers * each) as f64;
    println!(
        "{writers} writers × {each} events, one event per transaction, {rounds} rounds per variant, synchronous_commit {}",
        if async_commit { "off" } else { "on" }
    );
    let (mut plain, mut chained, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        for with_chain in [false, true] {
            let name = format!("steward_audit_bench_{}_{r}", if with_chain { "chain" } else { "plain" });
            let (total, writers_done) = append(admin, &name, writers, each, with_chain, async_commit).await;
            let label = if with_chain { "with chain   " } else { "without chain" };
            println!(
                "round {r} {label}: {:>8.0} events/s ({total:.2} s; writers done after {writers_done:.2} s)",
                n / total
            );
            if with_chain { chained.push(n / total) } else { plain.push(n / total) }
        }
        if let (Some(p), Some(c)) = (plain.last(), chained.last()) {
            ratios.push(1.0 - c / p);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (p, c) = (median(&mut plain), median(&mut chained));
    println!(
        "median: without chain {p:.0} events/s, with chain {c:.0} events/s: the chain costs {:.1}%",
        (1.0 - c / p) * 100.0
    );
    // Each round's pair ran back to back: the median of their costs is less exposed to the
    // disk's moods than the ratio of the medians.
    println!("median of the rounds' own costs: {:.1}%", median(&mut ratios) * 100.0);
}

async fn run_verify(url: &str, args: &[String]) {
    let records = arg(args, "--records", 10_000_000) as i64;
    let store: SqlStore = steward_store::open(url, true).await.unwrap();
    let key = CheckpointKey::derive(b"bench");
    let state = store.audit_chain_state().await.unwrap();
    if state.head.seq + state.unchained as i64 == 0 {
        let t0 = Timestamp::from_second(1_790_000_000).unwrap();
        let started = Instant::now();
        const BATCH: i64 = 5_000;
        let mut written = 0;
        while written < records {
            let n = BATCH.min(records - written);
            let events = (written..written + n)
                .map(|i| event((i % 97) as usize, i as usize, t0.checked_add(SignedDuration::from_micros(i)).unwrap()))
                .collect();
            store.apply(&Batch { events, ..Batch::default() }).await.unwrap();
            written += n;
            // Chain as the worker would, a pass per batch written, with checkpoints every 10,000.
            chain::catch_up(&store, Some(&key), t0).await.unwrap();
            if written % 500_000 == 0 {
                eprintln!("seeded {written} records in {:.0} s", started.elapsed().as_secs_f64());
            }
        }
        eprintln!("seeded {written} chained records in {:.0} s", started.elapsed().as_secs_f64());
    } else {
        eprintln!("reusing the {} records there", state.head.seq);
    }
    for run in 0..2 {
        let started = Instant::now();
        let report = chain::verify(&store, Some(key.clone()), |_| {}).await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let v = report.outcome.expect("an untouched chain verifies");
        println!(
            "verify run {run}: {} records and {} signed checkpoints in {seconds:.1} s ({:.0} records/s)",
            v.records,
            v.signed_checkpoints,
            v.records as f64 / seconds
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(url)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: audit_bench append <postgres superuser URL> | verify <database URL> [options]");
        std::process::exit(2);
    };
    match mode.as_str() {
        "append" => run_append(url, &args).await,
        "verify" => run_verify(url, &args).await,
        other => {
            eprintln!("unknown mode {other}: append or verify");
            std::process::exit(2);
        }
    }
}
