//! `steward connection …` on the command line, against a SQLite database and the real
//! PostgreSQL at `$DATABASE_URL` as the target (which the test command always provides;
//! without it this test fails, it never skips). Credentials go in through standard input and
//! never come out: not on the terminal, not in the database file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const KEY: &str = "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHM=";
const SECRET: &str = "cli-password-never-shown";

fn steward(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.args(args)
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .env("STEWARD_SECRETS_KEY", KEY)
        .env_remove("STEWARD_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the steward binary runs");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains(SECRET), "a credential was printed: {all}");
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn target() -> String {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server for this test (scripts/test.sh sets it)");
    // postgres://user[:password]@host:port/database
    let rest = url.split_once("://").unwrap().1;
    let (userinfo, hostpart) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let (hostport, database) = hostpart.split_once('/').unwrap_or((hostpart, "postgres"));
    let database = database.split('?').next().unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    serde_json::json!({"host": host, "port": port.parse::<u16>().unwrap(), "database": database, "user": user})
        .to_string()
}

fn credentials() -> String {
    let url = std::env::var("DATABASE_URL").unwrap();
    let userinfo = url.split_once("://").unwrap().1.split_once('@').unwrap().0;
    // The real password when the URL has one (a throwaway cluster's); the marker otherwise,
    // which trust authentication ignores.
    let password = userinfo.split_once(':').map_or(SECRET.to_owned(), |(_, p)| p.to_owned());
    serde_json::json!({ "password": password }).to_string()
}

#[test]
fn connections_are_managed_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("steward-cli-conn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("steward.db");
    let settings = target();

    let add = ["connection", "add", "--name", "Analytics", "--kind", "postgreSqlRoles", "--settings", &settings];
    let mut with_creds = add.to_vec();
    with_creds.extend(["--credentials-file", "-"]);
    let out = steward(&db, &with_creds, Some(&credentials()));
    assert!(out.status.success(), "{out:?}");
    let id = text(&out).trim().to_owned();
    assert_eq!(id.len(), 36, "prints the new id: {id}");

    let out = steward(&db, &["connection", "list"], None);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out).contains(&format!("{id}\tAnalytics\tpostgreSqlRoles\tcredentials")), "{}", text(&out));

    let out = steward(&db, &["connection", "test", &id], None);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out).contains("connected"), "{}", text(&out));
    let out = steward(&db, &["connection", "discover", &id], None);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out).lines().all(|l| l.starts_with(&format!("{id}:"))), "{}", text(&out));
    let out = steward(&db, &["connection", "reconcile", &id], None);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out).contains("0 role(s) compared: 0 restored"), "{}", text(&out));

    // Refused with a clear message, and nothing written.
    let bad_json =
        steward(&db, &["connection", "add", "--name", "X", "--kind", "postgreSqlRoles", "--settings", "{"], None);
    assert!(!bad_json.status.success());
    assert!(String::from_utf8_lossy(&bad_json.stderr).contains("--settings is not JSON"), "{bad_json:?}");
    let bad_creds = steward(&db, &with_creds, Some("{\"password\": 7}"));
    assert!(!bad_creds.status.success());
    assert!(String::from_utf8_lossy(&bad_creds.stderr).contains("credentials.password must be a string"));
    let bad_kind = steward(&db, &["connection", "add", "--name", "X", "--kind", "scim", "--settings", "{}"], None);
    assert!(String::from_utf8_lossy(&bad_kind.stderr).contains("baseUrl"), "{bad_kind:?}");
    assert_eq!(text(&steward(&db, &["connection", "list"], None)).lines().count(), 1);

    // At rest the credentials are sealed: the database file does not hold them in the clear.
    let bytes = std::fs::read(&db).unwrap();
    let wal = std::fs::read(dir.join("steward.db-wal")).unwrap_or_default();
    for b in [bytes, wal] {
        assert!(!b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }

    let out = steward(&db, &["connection", "remove", &id], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&steward(&db, &["connection", "list"], None)), "");
    let _ = std::fs::remove_dir_all(&dir);
}
