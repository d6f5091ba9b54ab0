//! Upgrading a database that already holds rows: migration 0003 adds the case-folded text
//! columns empty (neither database lowercases like Rust), and opening the store fills them, so
//! case-insensitive filters find rows written before the upgrade; migration 0005 adds the index
//! of who may request each policy's package, and opening the store fills it for the policies
//! already there; migration 0016 starts the notification cursor at the audit chain's head.

use steward_app::Store;
use steward_app::query::{ACCESS_PACKAGES, GROUPS, USERS};
use steward_store::SqlStore;

use crate::fixtures::{enc, query};
use crate::support::{Kind, empty_database};

/// Rows as the 0002 schema holds them; the 600 users need more than one batch to fold.
fn seed_sql() -> Vec<String> {
    let users: Vec<String> = (0..600)
        .map(|i| {
            format!(
                "('00000000-0000-4000-8000-{i:012}', 'NUTZER Ä {i}', 'N{i}@Straße.example', 'n{i}@straße.example', \
                 NULL, 'Member', TRUE, 'ÜBERSEE', NULL, NULL, NULL, 'ZÜRICH', NULL, NULL, {i})"
            )
        })
        .collect();
    vec![
        format!(
            "INSERT INTO users (id, display_name, user_principal_name, upn_key, mail, user_type, account_enabled, \
             department, job_title, company_name, employee_id, city, country, manager_id, created_at) VALUES {}",
            users.join(", ")
        ),
        "INSERT INTO groups (id, display_name, description, mail_nickname, mail_enabled, security_enabled, created_at) \
         VALUES ('10000000-0000-4000-8000-000000000001', 'ÉCOLE', 'ΣΊΣΥΦΟΣ', 'Ecole', FALSE, TRUE, 1)"
            .into(),
        "INSERT INTO catalogs (id, display_name, description, catalog_type, state, is_externally_visible, created_at, \
         modified_at) VALUES ('20000000-0000-4000-8000-000000000001', 'KATALOG', NULL, 'userManaged', 'published', \
         TRUE, 1, 1)"
            .into(),
        "INSERT INTO access_packages (id, catalog_id, display_name, description, is_hidden, created_at, modified_at) \
         VALUES ('30000000-0000-4000-8000-000000000001', '20000000-0000-4000-8000-000000000001', 'PAKET Ö', NULL, \
         FALSE, 1, 1)"
            .into(),
    ]
}

async fn migrate_and_seed(kind: Kind, url: &str, version: i64, seed: Vec<String>) {
    match kind {
        Kind::Sqlite => {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true)).await.unwrap();
            sqlx::migrate!("migrations/sqlite").run_to(version, &pool).await.unwrap();
            for sql in seed {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Kind::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::migrate!("migrations/postgres").run_to(version, &pool).await.unwrap();
            for sql in seed {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

async fn count(s: &SqlStore, schema: &'static steward_app::query::Schema, filter: &str) -> u64 {
    let q = query(schema, &format!("$filter={}&$count=true&$top=1", enc(filter)));
    match schema.table {
        "users" => s.list_users(&q).await.unwrap().count,
        "groups" => s.list_groups(&q).await.unwrap().count,
        _ => s.list_packages(&q).await.unwrap().count,
    }
    .unwrap()
}

async fn upgrade(kind: Kind) {
    let (url, cleanup) = empty_database(kind).await;
    let outcome = tokio::spawn(async move {
        migrate_and_seed(kind, &url, 2, seed_sql()).await;
        let s = steward_store::open(&url, true).await.unwrap();
        assert_eq!(s.fold_missing().await.unwrap(), 0, "open folded everything; a second pass has nothing to do");
        for (schema, filter, want) in [
            (&USERS, "startswith(displayName,'nutzer ä')", 600),
            (&USERS, "tolower(city) eq 'zürich' and contains(department,'übersee')", 600),
            (&USERS, "contains(userPrincipalName,'STRASSE')", 0),
            (&USERS, "contains(userPrincipalName,'STRAẞE')", 600),
            (&USERS, "mail eq null and not contains(mail,'x')", 600),
            (&GROUPS, "tolower(displayName) eq 'école' and endswith(description,'ΦΟΣ')", 1),
            (&ACCESS_PACKAGES, "contains(displayName,'ö') and description eq null", 1),
        ] {
            assert_eq!(count(&s, schema, filter).await, want, "{filter}");
        }
    })
    .await;
    cleanup.run().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rows_written_before_0003_are_folded() {
    upgrade(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_written_before_0003_are_folded() {
    upgrade(Kind::Postgres).await;
}

const MEMBER: &str = "00000000-0000-4000-8000-00000000000a";
const GUEST: &str = "00000000-0000-4000-8000-00000000000b";
const GROUP: &str = "10000000-0000-4000-8000-00000000000a";
const CATALOG: &str = "20000000-0000-4000-8000-00000000000a";

fn package_id(i: usize) -> String {
    format!("30000000-0000-4000-8000-{i:012}")
}

/// Rows as the 0004 schema holds them: a member of a group in Sales, a guest, and policies
/// of every kind, more than one indexing batch of them.
fn policies_sql() -> Vec<String> {
    let policy = |i: usize, package: usize, settings: serde_json::Value| {
        format!(
            "('40000000-0000-4000-8000-{i:012}', '{}', '{CATALOG}', 'Policy {i}', NULL, 'x', '{}', 1, 1)",
            package_id(package),
            settings.to_string().replace('\'', "''")
        )
    };
    let mut policies = vec![
        policy(0, 0, serde_json::json!({"allowedTargetScope": "allMemberUsers"})),
        policy(
            1,
            1,
            serde_json::json!({"allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets":
            [{"@odata.type": "#microsoft.graph.groupMembers", "groupId": GROUP.to_uppercase()}]}),
        ),
        policy(
            2,
            2,
            serde_json::json!({"allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets":
            [{"@odata.type": "#microsoft.graph.attributeRuleMembers", "membershipRule": "user.department -eq \"SALES\""}]}),
        ),
        policy(
            3,
            3,
            serde_json::json!({"allowedTargetScope": "specificDirectoryUsers",
            "requestorSettings": {"enableTargetsToSelfAddAccess": false},
            "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.singleUser", "userId": GUEST}]}),
        ),
    ];
    policies.extend((4..604).map(|i| policy(i, 4, serde_json::json!({"allowedTargetScope": "allExternalUsers"}))));
    let packages: Vec<String> =
        (0..5).map(|i| format!("('{}', '{CATALOG}', 'Paket {i}', NULL, FALSE, {i}, {i})", package_id(i))).collect();
    vec![
        format!(
            "INSERT INTO users (id, display_name, user_principal_name, upn_key, user_type, account_enabled, department, \
             created_at) VALUES ('{MEMBER}', 'M', 'm@x.example', 'm@x.example', 'Member', TRUE, 'Sales', 1), \
             ('{GUEST}', 'G', 'g@x.example', 'g@x.example', 'Guest', TRUE, 'Finance', 1)"
        ),
        format!(
            "INSERT INTO groups (id, display_name, mail_nickname, mail_enabled, security_enabled, created_at) \
             VALUES ('{GROUP}', 'Team', 'team', FALSE, TRUE, 1)"
        ),
        format!("INSERT INTO group_members (group_id, user_id) VALUES ('{GROUP}', '{MEMBER}')"),
        format!(
            "INSERT INTO catalogs (id, display_name, catalog_type, state, is_externally_visible, created_at, \
             modified_at) VALUES ('{CATALOG}', 'K', 'userManaged', 'published', TRUE, 1, 1)"
        ),
        format!(
            "INSERT INTO access_packages (id, catalog_id, display_name, description, is_hidden, created_at, \
             modified_at) VALUES {}",
            packages.join(", ")
        ),
        format!(
            "INSERT INTO assignment_policies (id, access_package_id, catalog_id, display_name, description, \
             allowed_target_scope, settings, created_at, modified_at) VALUES {}",
            policies.join(", ")
        ),
    ]
}

async fn requestable(s: &SqlStore, user: &str) -> Vec<String> {
    let user = s.get_user(user.parse().unwrap()).await.unwrap().unwrap();
    let page = s.requestable_packages(&user, &query(&ACCESS_PACKAGES, "$top=50")).await.unwrap();
    page.items.iter().map(|p| p.id.to_string()).collect()
}

async fn upgrade_policies(kind: Kind) {
    let (url, cleanup) = empty_database(kind).await;
    let outcome = tokio::spawn(async move {
        migrate_and_seed(kind, &url, 4, policies_sql()).await;
        let s = steward_store::open(&url, true).await.unwrap();
        assert_eq!(s.index_missing_requestors().await.unwrap(), 0, "open indexed every policy");
        assert_eq!(requestable(&s, MEMBER).await, vec![package_id(0), package_id(1), package_id(2)]);
        assert_eq!(requestable(&s, GUEST).await, vec![package_id(4)]);
    })
    .await;
    cleanup.run().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_policies_written_before_0005_are_indexed() {
    upgrade_policies(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_policies_written_before_0005_are_indexed() {
    upgrade_policies(Kind::Postgres).await;
}

/// Migration 0016 starts the notification cursor at the audit chain's head, so a database
/// upgraded with history in its audit trail does not mail about that history.
async fn upgrade_notify_cursor(kind: Kind) {
    let (url, cleanup) = empty_database(kind).await;
    let outcome = tokio::spawn(async move {
        migrate_and_seed(kind, &url, 15, vec!["UPDATE audit_chain SET seq = 7 WHERE id = 1".into()]).await;
        let s = steward_store::open(&url, true).await.unwrap();
        assert_eq!(s.notify_cursor().await.unwrap(), 7);
    })
    .await;
    cleanup.run().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_notification_cursor_starts_at_the_chain_head() {
    upgrade_notify_cursor(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_notification_cursor_starts_at_the_chain_head() {
    upgrade_notify_cursor(Kind::Postgres).await;
}

/// Events as the 0016 schema holds them: `count` of them, the first `chained` with their
/// place and hashes in `audit_events` itself, and the chain's head after those.
fn trail_sql(count: usize, chained: usize) -> Vec<String> {
    use steward_domain::audit_chain::{self, Record};
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            id: format!("50000000-0000-4000-8000-{i:012}"),
            at: 1_790_000_000_000_000 + i as i64,
            activity: "approve".into(),
            display_name: "Approve access package assignment request".into(),
            category: "EntitlementManagement".into(),
            initiator: format!(r#"{{"user":"u-{i}"}}"#),
            ip_address: Some("192.0.2.7".into()),
            target_type: "AccessPackageAssignmentRequest".into(),
            target_id: format!("r-{i}"),
            correlation_id: format!("r-{i}"),
            result: "success".into(),
            detail: (i % 2 == 0).then(|| format!("stage {i}")),
            modified_properties: None,
        })
        .collect();
    let links = audit_chain::chain(0, audit_chain::GENESIS, records.clone());
    let text = |v: &Option<String>| v.as_ref().map_or("NULL".to_owned(), |s| format!("'{s}'"));
    let rows: Vec<String> = records
        .iter()
        .zip(&links)
        .enumerate()
        .map(|(i, (r, l))| {
            let (seq, prev, hash) = if i < chained {
                (l.seq.to_string(), format!("'{}'", l.prev_hash), format!("'{}'", l.hash))
            } else {
                ("NULL".into(), "NULL".into(), "NULL".into())
            };
            format!(
                "('{}', {}, '{}', '{}', '{}', '{}', {}, '{}', '{}', '{}', '{}', {}, NULL, '{}', 'u-{i}', {seq}, {prev}, {hash})",
                r.id,
                r.at,
                r.activity,
                r.display_name,
                r.category,
                r.initiator,
                text(&r.ip_address),
                r.target_type,
                r.target_id,
                r.correlation_id,
                r.result,
                text(&r.detail),
                r.display_name.to_lowercase(),
            )
        })
        .collect();
    let head =
        links.get(chained.wrapping_sub(1)).map_or((0, audit_chain::GENESIS.to_owned()), |l| (l.seq, l.hash.clone()));
    vec![
        format!(
            "INSERT INTO audit_events (id, at, activity, display_name, category, initiator, ip_address, target_type, \
             target_id, correlation_id, result, detail, modified_properties, display_name_fold, initiator_user_id, \
             seq, prev_hash, hash) VALUES {}",
            rows.join(", ")
        ),
        format!("UPDATE audit_chain SET seq = {}, hash = '{}' WHERE id = 1", head.0, head.1),
    ]
}

/// Migration 0017 moves the chain out of `audit_events` into `audit_links`: what was chained
/// keeps its place and still verifies, what was not is chained after it.
async fn upgrade_audit_links(kind: Kind) {
    let (url, cleanup) = empty_database(kind).await;
    let outcome = tokio::spawn(async move {
        migrate_and_seed(kind, &url, 16, trail_sql(5, 3)).await;
        let s = steward_store::open(&url, true).await.unwrap();
        let state = s.audit_chain_state().await.unwrap();
        assert_eq!((state.head.seq, state.unchained), (3, 2));
        let now = jiff::Timestamp::from_second(1_790_000_100).unwrap();
        assert_eq!(steward_app::audit::chain::catch_up(&s, None, now).await.unwrap(), 2);
        let links = s.audit_links(0, 10).await.unwrap();
        let ids: Vec<String> = links.iter().map(|l| l.record.id.clone()).collect();
        let want: Vec<String> = (0..5).map(|i| format!("50000000-0000-4000-8000-{i:012}")).collect();
        assert_eq!(ids, want, "the chained three first, in their places, then the other two");
        let report = steward_app::audit::chain::verify(&s, None, |_| {}).await.unwrap();
        assert_eq!(report.outcome.map(|v| (v.records, v.last_seq)), Ok((5, 5)));
        // Written after the upgrade: chained after those.
        let late = steward_domain::audit::AuditEvent::new(
            now,
            steward_domain::audit::Activity::Approve,
            steward_domain::audit::Initiator::User("u-9".into()),
            "AccessPackageAssignmentRequest",
            "r-9",
            "r-9",
        );
        s.apply(&steward_app::ports::Batch { events: vec![late], ..Default::default() }).await.unwrap();
        assert_eq!(steward_app::audit::chain::catch_up(&s, None, now).await.unwrap(), 1);
        let report = steward_app::audit::chain::verify(&s, None, |_| {}).await.unwrap();
        assert_eq!(report.outcome.map(|v| v.records), Ok(6));
    })
    .await;
    cleanup.run().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_audit_chain_moves_to_its_own_table() {
    upgrade_audit_links(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_audit_chain_moves_to_its_own_table() {
    upgrade_audit_links(Kind::Postgres).await;
}
