//! Crash safety of delivery: a `steward serve` process is killed with SIGKILL while its worker
//! is in the middle of a grant into a real slapd (frozen with SIGSTOP, so the call hangs
//! mid-flight). A second process on the same database takes the job over once the dead
//! one's lease has run out and finishes the delivery, exactly once in effect: the request is
//! delivered, the user is in the group once, the grant is recorded done once.
//!
//! Real processes and peers only: the `steward` binary, a throwaway slapd
//! (`steward-testpeers`), SQLite on disk. Nothing here skips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_testpeers::slapd::{ADMIN, BASE, PASSWORD};
use steward_testpeers::{Slapd, free_port, pause, wait_for_port};

const KEY: &str = "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHM=";
const TOKEN: &str = "crash-test-admin-token-0123456789abcdef";
/// Prometheus' token for `/metrics` (metrics are off without one).
const METRICS_TOKEN: &str = "crash-test-metrics-token-0123456789";
const EM: &str = "/v1.0/identityGovernance/entitlementManagement";

/// One `steward serve` process on the test's database, on a test clock.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    fn start(dir: &Path, n: usize) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join(format!("serve-{n}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--public-url", &base])
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("steward.db").display()))
            .arg("--data-dir")
            .arg(dir.join(format!("data-{n}")))
            .args(["--test-clock", "2031-03-01T09:00:00Z"])
            .env_remove("STEWARD_CONFIG")
            .env("STEWARD_BOOTSTRAP_ADMIN_TOKEN", TOKEN)
            .env("STEWARD_ALLOW_TEST_CLOCK", "1")
            .env("STEWARD_SECRETS_KEY", KEY)
            .env("STEWARD_METRICS_TOKEN", METRICS_TOKEN)
            .env("STEWARD_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the steward binary runs");
        wait_for_port(port, "steward serve");
        Self { child, base, http: reqwest::Client::new() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("steward answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a job of `kind` is leased right now, read from the database file.
async fn leased(db: &Path, kind: &str) -> bool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = $1 AND lease_owner IS NOT NULL")
        .bind(kind)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n > 0
}

#[tokio::test]
async fn a_server_killed_mid_delivery_finishes_the_delivery_after_restart_exactly_once() {
    let group = format!("cn=VPN users,ou=groups,{BASE}");
    let ada_dn = format!("cn=ada,ou=people,{BASE}");
    let slapd = Slapd::start(&format!(
        "dn: {ada_dn}\nobjectClass: inetOrgPerson\ncn: ada\nsn: ada\nmail: ada@example.test\n\n\
         dn: {group}\nobjectClass: groupOfNames\ncn: VPN users\nmember: cn=nobody,{BASE}\n"
    ));
    let dir: PathBuf = std::env::temp_dir().join(format!("steward-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();

    let first = Server::start(&dir, 1);
    let ada = first.post("/v1.0/users", json!({"displayName": "Ada", "userPrincipalName": "ada@example.test"})).await;
    let ada = ada["id"].as_str().unwrap().to_owned();
    let conn = first
        .post(
            "/v1.0/steward/connections",
            json!({"displayName": "Directory", "kind": "ldap",
                "settings": {"url": slapd.url, "bindDn": ADMIN, "userBaseDn": format!("ou=people,{BASE}"),
                    "groupBaseDn": format!("ou=groups,{BASE}"), "userKey": "userPrincipalName", "connectTimeoutSeconds": 2},
                "credentials": {"password": PASSWORD}}),
        )
        .await;
    let origin = format!("{}:{group}", conn["id"].as_str().unwrap());
    let cat = first.post(&format!("{EM}/catalogs"), json!({"displayName": "Network"})).await["id"].clone();
    first
        .post(
            &format!("{EM}/resourceRequests"),
            json!({"requestType": "adminAdd", "catalog": {"id": cat},
                "resource": {"originId": origin, "originSystem": "LdapGroup"}}),
        )
        .await;
    let package =
        first.post(&format!("{EM}/accessPackages"), json!({"displayName": "VPN", "catalog": {"id": cat}})).await["id"]
            .clone();
    let roles = first
        .get(&format!("{EM}/catalogs/{}/resourceRoles?$expand=resource($expand=scopes)", cat.as_str().unwrap()))
        .await;
    let r = &roles["value"][0];
    first
        .post(
            &format!("{EM}/accessPackages/{}/resourceRoleScopes", package.as_str().unwrap()),
            json!({"role": {"id": r["id"], "originId": "Member", "originSystem": "LdapGroup", "resource": {"id": r["resource"]["id"]}},
                "scope": {"id": r["resource"]["scopes"][0]["id"], "originId": origin, "originSystem": "LdapGroup"}}),
        )
        .await;
    let policy = first
        .post(
            &format!("{EM}/assignmentPolicies"),
            json!({"accessPackage": {"id": package}, "displayName": "Direct", "allowedTargetScope": "notSpecified",
                "expiration": {"type": "noExpiration"}}),
        )
        .await;

    // The directory hangs: the worker's grant is stuck mid-call when the server is killed.
    slapd.freeze();
    let req = first
        .post(
            &format!("{EM}/assignmentRequests"),
            json!({"requestType": "adminAdd", "assignment": {"targetId": ada, "assignmentPolicyId": policy["id"],
                "accessPackageId": package}}),
        )
        .await;
    let rid = req["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !leased(&dir.join("steward.db"), "deliver").await {
        assert!(Instant::now() < deadline, "the delivery job was never taken");
        pause();
    }
    // Give the worker a moment to be inside the connector call (its bind waits on slapd).
    for _ in 0..10 {
        pause();
    }
    let mut first = first;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    slapd.thaw();
    // The killed worker's modify may or may not reach the directory: a request it had already
    // written to the socket while slapd was frozen is read when slapd wakes, after the kill.
    // Either way the request is still delivering, and the restart must end with one member.
    let written_before = slapd.members(&group).contains(&ada_dn);

    // A new process on the same database: once the dead worker's lease has run out, it
    // takes the job over and finishes it.
    let second = Server::start(&dir, 2);
    let r = second.get(&format!("{EM}/assignmentRequests/{rid}")).await;
    assert_eq!(r["state"], json!("delivering"), "{r}");
    second.post("/ops/clock", json!({"advance": "PT2M"})).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let r = second.get(&format!("{EM}/assignmentRequests/{rid}?$expand=assignment")).await;
        if r["state"] == json!("delivered") {
            break r;
        }
        assert!(Instant::now() < deadline, "not delivered after restart: {r}");
        pause();
    };
    assert_eq!(r["assignment"]["state"], json!("delivered"), "{r}");
    let members = slapd.members(&group);
    assert_eq!(
        members.iter().filter(|m| **m == ada_dn).count(),
        1,
        "written before the kill: {written_before}; {members:?}"
    );
    let a = r["assignment"]["id"].as_str().unwrap();
    let deliveries = second.get(&format!("/v1.0/steward/assignments/{a}/deliveries")).await;
    let d = deliveries["value"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{deliveries}");
    assert_eq!(d[0]["state"], json!("done"), "{deliveries}");

    // A reconciliation pass finds the seed member nobody granted, and says so in its report,
    // at the drift endpoint and as a Prometheus metric.
    let cid = conn["id"].as_str().unwrap();
    let report = second.post(&format!("/v1.0/steward/connections/{cid}/reconcile"), json!({})).await;
    assert_eq!((report["restored"].as_u64(), report["drift"].as_u64()), (Some(0), Some(1)), "{report}");
    let drift = second.get(&format!("/v1.0/steward/connections/{cid}/drift")).await;
    assert_eq!(drift["value"][0]["holder"], json!(format!("cn=nobody,{BASE}")), "{drift}");
    let metrics = second.http.get(format!("{}/metrics", second.base)).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    let line = format!("steward_reconciliation_drift{{connection=\"{cid}\"}} 1");
    assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    // The delivery the second process finished, labelled with its connection; the request's
    // state is read from the database, which both processes share.
    let line = format!("steward_delivery_latency_seconds_count{{connection=\"{cid}\"}} 1");
    assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    assert!(metrics.lines().any(|l| l == "steward_requests{state=\"delivered\"} 1"), "{metrics}");
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
