//! SCIM compliance: a real `steward serve` with a SCIM token, checked by PyPI's `scim2-cli`
//! (`scim2 test`, scim2-tester underneath: discovery endpoints, then create, read, query with
//! attributes, replace, delete and PATCH add, remove and replace of every announced attribute,
//! for users with the enterprise extension and for groups). Every check it reports must be a
//! success; any error, or any check it had to skip, fails the test. Once on SQLite, once on
//! PostgreSQL (`DATABASE_URL`).
//!
//! Needs the test virtualenv (`bash scripts/python-venv.sh`, pinned in
//! tests/sdk/requirements.txt): `$STEWARD_VENV`, else the repository's `.venv`. Nothing here
//! skips: without it the test fails and says how to make it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use sqlx::Connection;
use steward_testpeers::{free_port, wait_for_port};

const TOKEN: &str = "scim-compliance-token-0123456789abcdef";
const ADMIN: &str = "scim-compliance-admin-token-0123456789";

/// The `scim2` program of the test virtualenv.
fn scim2() -> PathBuf {
    let venv = std::env::var_os("STEWARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let p = venv.join("bin/scim2");
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/python-venv.sh` (the test command does) to install PyPI's scim2-cli \
         pinned in tests/sdk/requirements.txt, or point STEWARD_VENV at a virtualenv that has it",
        p.display()
    );
    p
}

/// `steward serve` on a free port, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path, database_url: &str) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("STEWARD_CONFIG")
            .env("STEWARD_SCIM_TOKEN", TOKEN)
            .env("STEWARD_BOOTSTRAP_ADMIN_TOKEN", ADMIN)
            .env("STEWARD_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the steward binary runs");
        wait_for_port(port, "steward serve");
        Self { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes terminal colours, should the tool print any.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `scim2 test` against the server and asserts that every check succeeded.
fn run_scim2_test(dir: &Path, database_url: &str) {
    let scim2 = scim2();
    let server = Server::start(dir, database_url);
    let url = format!("http://127.0.0.1:{}/scim/v2", server.port);
    let out = Command::new(&scim2)
        .args(["--url", &url, "-h", &format!("Authorization: Bearer {TOKEN}"), "test"])
        .env("NO_COLOR", "1")
        .output()
        .expect("scim2 runs");
    let stdout = plain(&String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
    let report = format!("scim2 test said:\n{stdout}\n{stderr}\nsteward serve logged:\n{log}");
    // The report: a heading, then one line per check result (`SUCCESS title`, `ERROR title`,
    // `SKIPPED title`, …), each followed by indented reasons.
    let results: Vec<&str> =
        stdout.lines().filter(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with("Performing ")).collect();
    let failed: Vec<&&str> = results.iter().filter(|l| !l.starts_with("SUCCESS ")).collect();
    assert!(failed.is_empty(), "checks that did not succeed: {failed:#?}\n{report}");
    assert!(out.status.success(), "scim2 test exited with {}\n{report}", out.status);
    // It really checked both resource types, end to end.
    assert!(results.len() >= 80, "only {} checks ran\n{report}", results.len());
    for expected in [
        "SUCCESS query_all_schemas",
        "SUCCESS access_schema_by_id",
        "SUCCESS resource_types_schema_validation",
        "SUCCESS object_creation",
        "SUCCESS object_replacement",
        "SUCCESS object_deletion",
        "SUCCESS check_add_attribute",
        "SUCCESS check_remove_attribute",
        "SUCCESS check_replace_attribute",
        "SUCCESS search_with_attributes",
        "SUCCESS random_url",
    ] {
        assert!(results.contains(&expected), "no '{expected}'\n{report}");
    }
    for reason in [
        "Successfully replaced attribute 'active'",
        "Successfully replaced attribute 'members'",
        "Successfully replaced attribute 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager'",
        "Successfully removed attribute 'emails'",
    ] {
        assert!(stdout.contains(reason), "no '{reason}'\n{report}");
    }
}

#[test]
fn scim2_cli_finds_the_scim_server_compliant_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("steward-scim-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    run_scim2_test(&dir, &format!("sqlite://{}", dir.join("steward.db").display()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_cli_finds_the_scim_server_compliant_on_postgresql() {
    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server (a superuser URL); the test command sets it");
    let name = format!("steward_scim_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let (main, query) = match admin_url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (admin_url.as_str(), None),
    };
    let base = main.rsplit_once('/').map_or(main, |(b, _)| b);
    let url = match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    };
    let dir = std::env::temp_dir().join(format!("steward-scim-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let outcome = {
        let (dir, url) = (dir.clone(), url.clone());
        tokio::task::spawn_blocking(move || run_scim2_test(&dir, &url)).await
    };
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
