//! `steward audit verify` on SQLite and on the real PostgreSQL at `$DATABASE_URL` (the test
//! command always provides it; without it this test fails, it never skips): an untouched trail
//! verifies; a record edited, deleted, moved, or the whole chain rewritten after an edit, or the
//! last records cut off, each fail naming the record, directly in the database as an intruder
//! would; undoing the change makes it verify again. `steward audit export` writes the period.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::{Command, Output};

use sqlx::{AssertSqlSafe, Connection};
use steward_app::Store;
use steward_app::audit::chain;
use steward_app::ports::Batch;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::audit_chain::{self, CheckpointKey, Record};

const KEY: &str = "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHM=";
const EVENTS: i64 = 20;

fn steward(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .arg("--database-url")
        .arg(url)
        .env("STEWARD_SECRETS_KEY", KEY)
        .env_remove("STEWARD_CONFIG")
        .output()
        .expect("the steward binary runs")
}

/// Runs `verify`; its exit status and what it printed.
fn verify(url: &str) -> (bool, String) {
    let out = steward(url, &["audit", "verify"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn assert_intact(url: &str, records: i64) {
    let (ok, text) = verify(url);
    assert!(ok, "an untouched trail fails: {text}");
    assert!(text.contains(&format!("audit trail intact: {records} records (1–{records})")), "{text}");
    assert!(text.contains("1 signed checkpoint checked"), "{text}");
}

fn assert_tampered(url: &str, what: &str) {
    let (ok, text) = verify(url);
    assert!(!ok, "tampering went unseen: {text}");
    assert!(text.contains("audit trail TAMPERED") && text.contains(what), "expected '{what}' in: {text}");
}

async fn exec(url: &str, sql: &str) {
    let sql = AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

async fn text_of(url: &str, sql: &str) -> String {
    let sql = AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar::<_, String>(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar::<_, String>(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// The condition on `audit_events` that picks the record at `seq`.
fn at_seq(seq: i64) -> String {
    format!("id = (SELECT event_id FROM audit_links WHERE seq = {seq})")
}

/// Writes `detail` into the event of link `l` and the link's hashes, as a tamperer would.
async fn rewrite(url: &str, l: &audit_chain::Link, detail: &str) {
    exec(url, &format!("UPDATE audit_events SET detail = '{detail}' WHERE {}", at_seq(l.seq))).await;
    let (prev, hash, seq) = (&l.prev_hash, &l.hash, l.seq);
    exec(url, &format!("UPDATE audit_links SET prev_hash = '{prev}', hash = '{hash}' WHERE seq = {seq}")).await;
}

/// The id of the record at `seq`.
async fn id_at(url: &str, seq: i64) -> String {
    text_of(url, &format!("SELECT event_id FROM audit_links WHERE seq = {seq}")).await
}

/// Writes `EVENTS` events and chains them as the server's worker does, with the key the
/// configuration's secrets_key gives.
async fn seed(url: &str) {
    let store = steward_store::open(url, true).await.unwrap();
    let t0 = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    let events: Vec<AuditEvent> = (0..EVENTS)
        .map(|i| {
            let at = t0.checked_add(jiff::SignedDuration::from_secs(i)).unwrap();
            AuditEvent::new(
                at,
                Activity::Approve,
                Initiator::User(format!("u-{i}")),
                "AccessPackageAssignmentRequest",
                i,
                i,
            )
            .with_detail(format!("stage {}", i % 2 + 1))
        })
        .collect();
    store.apply(&Batch { events, ..Batch::default() }).await.unwrap();
    let key = CheckpointKey::derive(KEY.as_bytes());
    assert_eq!(chain::catch_up(&store, Some(&key), t0).await.unwrap(), EVENTS as u64);
    assert_eq!(store.audit_chain_state().await.unwrap().head.seq, EVENTS);
}

async fn tamper_and_verify(url: &str) {
    seed(url).await;
    assert_intact(url, EVENTS);

    // Edited: one column of record 5.
    let id5 = id_at(url, 5).await;
    exec(url, &format!("UPDATE audit_events SET detail = 'approved by someone else' WHERE {}", at_seq(5))).await;
    assert_tampered(url, &format!("record 5 (audit event {id5}) was edited"));
    exec(url, &format!("UPDATE audit_events SET detail = 'stage 1' WHERE {}", at_seq(5))).await;
    assert_intact(url, EVENTS);

    // Reordered: records 3 and 8 exchange places.
    let id8 = id_at(url, 8).await;
    exec(url, "UPDATE audit_links SET seq = -3 WHERE seq = 3").await;
    exec(url, "UPDATE audit_links SET seq = 3 WHERE seq = 8").await;
    exec(url, "UPDATE audit_links SET seq = 8 WHERE seq = -3").await;
    assert_tampered(url, &format!("record 3 (audit event {id8}) is out of order"));
    exec(url, "UPDATE audit_links SET seq = -8 WHERE seq = 8").await;
    exec(url, "UPDATE audit_links SET seq = 8 WHERE seq = 3").await;
    exec(url, "UPDATE audit_links SET seq = 3 WHERE seq = -8").await;
    assert_intact(url, EVENTS);

    // Rewritten: record 4 edited and every hash from it on recomputed, as someone who knows the
    // algorithm but not the key would; the signed checkpoint at the head gives it away.
    let store = steward_store::open(url, false).await.unwrap();
    let links = store.audit_links(0, 100).await.unwrap();
    let mut records: Vec<Record> = links.iter().map(|l| l.record.clone()).collect();
    records[3].detail = Some("rewritten".into());
    for l in audit_chain::chain(0, audit_chain::GENESIS, records) {
        let detail = l.record.detail.clone().unwrap_or_default();
        rewrite(url, &l, &detail).await;
    }
    exec(url, &format!("UPDATE audit_chain SET hash = (SELECT hash FROM audit_links WHERE seq = {EVENTS})")).await;
    assert_tampered(url, &format!("records at or before {EVENTS} were rewritten"));
    for l in &links {
        let detail = l.record.detail.clone().unwrap_or_default();
        rewrite(url, l, &detail).await;
    }
    exec(url, &format!("UPDATE audit_chain SET hash = (SELECT hash FROM audit_links WHERE seq = {EVENTS})")).await;
    assert_intact(url, EVENTS);

    // Export: the period's events, oldest first, in both formats.
    let out = steward(url, &["audit", "export", "--from", "2026-09-01", "--to", "2026-10-01", "--format", "jsonl"]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), EVENTS as usize);
    assert_eq!(lines[0]["activityDisplayName"], "Approve access package assignment request");
    assert_eq!(lines[0]["initiatedBy"]["user"]["id"], "u-0");
    let out = steward(url, &["audit", "export", "--from", "2026-09-01", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(csv.lines().count(), EVENTS as usize + 1, "{csv}");
    assert!(csv.starts_with("activityDateTime,id,category,activityDisplayName"), "{csv}");

    // Deleted: the link of record 9 goes (its event stays, now unchained in all but name)…
    let id10 = id_at(url, 10).await;
    exec(url, "DELETE FROM audit_links WHERE seq = 9").await;
    assert_tampered(
        url,
        &format!("record 9 is missing (deleted); the trail resumes at record 10 (audit event {id10})"),
    );
    // …and then the event of record 7, which comes first.
    let id8 = id_at(url, 8).await;
    exec(url, &format!("DELETE FROM audit_events WHERE {}", at_seq(7))).await;
    assert_tampered(url, &format!("record 7 is missing (deleted); the trail resumes at record 8 (audit event {id8})"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_tampering_in_sqlite() {
    let dir = std::env::temp_dir().join(format!("steward-audit-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("steward.db").display());
    tamper_and_verify(&url).await;
    truncation(&format!("sqlite://{}?mode=rwc", dir.join("cut.db").display())).await;
    pruning(&format!("sqlite://{}?mode=rwc", dir.join("pruned.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_tampering_in_postgres() {
    let admin = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server for this test (scripts/test.sh sets it)");
    for name in ["steward_audit_verify", "steward_audit_cut", "steward_audit_pruned"] {
        let db = format!("{name}_{}", std::process::id());
        exec(&admin, &format!("DROP DATABASE IF EXISTS {db}")).await;
        exec(&admin, &format!("CREATE DATABASE {db}")).await;
        let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
        let (server, _) = base.rsplit_once('/').unwrap();
        let url = match query {
            Some(q) => format!("{server}/{db}?{q}"),
            None => format!("{server}/{db}"),
        };
        match name {
            "steward_audit_verify" => tamper_and_verify(&url).await,
            "steward_audit_cut" => truncation(&url).await,
            _ => pruning(&url).await,
        }
        exec(&admin, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    }
}

/// The last records deleted: the signed checkpoint at the head vouches for more.
async fn truncation(url: &str) {
    seed(url).await;
    assert_intact(url, EVENTS);
    exec(url, "DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_links WHERE seq > 18)").await;
    assert_tampered(url, "records after 18 were deleted");
}

/// Retention: the records older than it go, behind a signed checkpoint at the new start, and
/// the rest still verifies; deleting more from the start and moving the anchor by hand does not.
async fn pruning(url: &str) {
    seed(url).await;
    let store = steward_store::open(url, false).await.unwrap();
    let key = CheckpointKey::derive(KEY.as_bytes());
    let day = jiff::SignedDuration::from_hours(24);
    // Ten days and ten seconds after the first event: the first ten are older than ten days.
    let now = jiff::Timestamp::from_second(1_790_000_010).unwrap().checked_add(day * 10).unwrap();
    assert_eq!(chain::prune(&store, Some(&key), now, day * 10).await.unwrap(), 10);
    assert_eq!(chain::prune(&store, Some(&key), now, day * 10).await.unwrap(), 0, "nothing more is that old");
    let (ok, text) = verify(url);
    assert!(ok && text.contains("audit trail intact: 10 records (11–20)"), "{text}");
    // Someone deletes record 11 too and moves the anchor onto it: no signed checkpoint vouches.
    exec(url, &format!("DELETE FROM audit_events WHERE {}", at_seq(11))).await;
    let eleven =
        "UPDATE audit_chain SET anchor_seq = 11, anchor_hash = (SELECT hash FROM audit_checkpoints WHERE seq = 10)";
    exec(url, eleven).await;
    assert_tampered(url, "no checkpoint vouches for record 11");
}
