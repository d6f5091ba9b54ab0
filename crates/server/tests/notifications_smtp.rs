//! Notification email end to end: the real `steward serve` binary on a test clock, with
//! `[smtp]` pointing at a real aiosmtpd on loopback (`steward-testpeers`), driven through the
//! Graph API. One request through two approval stages (action required with working one-click
//! links, stage approved, approved, delivered), a review reminder, expiry warnings 14 days and
//! one day before the end (with a link to extend); then the relay goes down: a request made
//! meanwhile is as fast as ever, nothing is sent and nothing fails, and once the relay is back
//! every mail arrives, each exactly once (counted by Message-ID).
//!
//! Real processes and peers only. Nothing here skips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_domain::decision_link::{DecisionLink, LinkKey};
use steward_testpeers::smtp::ReceivedMail;
use steward_testpeers::{SmtpServer, free_port, wait_for_port};

const KEY: &str = "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHM=";
const TOKEN: &str = "mail-test-admin-token-0123456789abcdef";
const EM: &str = "/v1.0/identityGovernance/entitlementManagement";
const AR: &str = "/v1.0/identityGovernance/accessReviews/definitions";
const START: &str = "2031-03-01T09:00:00Z";
/// The longest one send may take: requests must return well within it.
const SMTP_TIMEOUT_SECONDS: u64 = 10;
/// How long mail may take to arrive once due (the worker polls every 200 ms).
const ARRIVAL: Duration = Duration::from_secs(20);

struct Server {
    child: Child,
    base: String,
    db: PathBuf,
    http: reqwest::Client,
}

impl Server {
    fn start(dir: &Path, smtp_port: u16) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let db = dir.join("steward.db");
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--public-url", &base])
            .arg("--database-url")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--test-clock", START])
            .env_remove("STEWARD_CONFIG")
            .env("STEWARD_BOOTSTRAP_ADMIN_TOKEN", TOKEN)
            .env("STEWARD_ALLOW_TEST_CLOCK", "1")
            .env("STEWARD_SECRETS_KEY", KEY)
            .env("STEWARD_SMTP__HOST", "127.0.0.1")
            .env("STEWARD_SMTP__PORT", smtp_port.to_string())
            .env("STEWARD_SMTP__SECURITY", "none")
            .env("STEWARD_SMTP__FROM", "steward@example.test")
            .env("STEWARD_SMTP__FROM_NAME", "Steward")
            .env("STEWARD_SMTP__TIMEOUT_SECONDS", SMTP_TIMEOUT_SECONDS.to_string())
            .env("STEWARD_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the steward binary runs");
        wait_for_port(port, "steward serve");
        Self { child, base, db, http: reqwest::Client::new() }
    }

    /// A personal token of the user with this userPrincipalName, made by `steward token create`.
    fn token_of(&self, upn: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(["token", "create", "--name", upn, "--user", upn])
            .arg("--database-url")
            .arg(format!("sqlite://{}", self.db.display()))
            .env_remove("STEWARD_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("steward answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn post_as(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, v) = self.call(token, reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.post_as(TOKEN, path, body).await
    }

    async fn get_as(&self, token: &str, path: &str) -> Value {
        let (status, v) = self.call(token, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        self.get_as(TOKEN, path).await
    }

    /// Runs what is due a second later (the sweep comes round every second), a few times over.
    async fn drain(&self) {
        self.post("/ops/clock", json!({"advance": "PT1S"})).await;
        for _ in 0..3 {
            self.post("/ops/jobs/drain", json!({})).await;
        }
    }

    async fn set_clock(&self, t: jiff::Timestamp) {
        self.post("/ops/clock", json!({"set": t.to_string()})).await;
    }

    async fn now(&self) -> jiff::Timestamp {
        let v = self.get("/ops/clock").await;
        v["now"].as_str().unwrap().parse().unwrap()
    }

    /// `approver` decides the stage of `request` that waits for them.
    async fn decide(&self, token: &str, request: &str, approve: bool) {
        let stages = self.get_as(token, &format!("{EM}/accessPackageAssignmentApprovals/{request}/stages")).await;
        let stage = stages["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["assignedToMe"] == true && s["status"] == "InProgress")
            .unwrap_or_else(|| panic!("no stage waits for this approver: {stages}"))
            .clone();
        let url = format!("{EM}/accessPackageAssignmentApprovals/{request}/stages/{}", stage["id"].as_str().unwrap());
        let body = json!({"reviewResult": if approve { "Approve" } else { "Deny" }, "justification": "ok"});
        let (status, v) = self.call(token, reqwest::Method::PATCH, &url, Some(body)).await;
        assert_eq!(status, 204, "{v}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The notices as the database holds them: state by count.
async fn notice_states(db: &Path) -> HashMap<String, i64> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM notifications GROUP BY state").fetch_all(&pool).await.unwrap();
    pool.close().await;
    rows.into_iter().collect()
}

/// The one message to `to` whose subject starts with `subject`.
fn one<'a>(mails: &'a [ReceivedMail], to: &str, subject: &str) -> &'a ReceivedMail {
    let found: Vec<&ReceivedMail> =
        mails.iter().filter(|m| m.recipients == [to] && m.subject.starts_with(subject)).collect();
    assert_eq!(found.len(), 1, "one mail to {to} starting {subject:?}, among {:?}", summary(mails));
    found[0]
}

fn summary(mails: &[ReceivedMail]) -> Vec<(String, String)> {
    mails.iter().map(|m| (m.recipients.join(","), m.subject.clone())).collect()
}

/// Both bodies are there, the HTML one is a page with a heading, and every link points into
/// Steward.
fn well_formed(m: &ReceivedMail, base: &str) {
    let text = m.text.as_deref().unwrap_or_else(|| panic!("no text body: {}", m.subject));
    let html = m.html.as_deref().unwrap_or_else(|| panic!("no HTML body: {}", m.subject));
    assert!(text.contains("Hello "), "{text}");
    assert!(html.contains("<html lang=\"en\">") && html.contains("<h1"), "{html}");
    assert_eq!(m.from.as_deref(), Some("steward@example.test"));
    assert_eq!(m.mail_from, "steward@example.test");
    assert_eq!(m.to, m.recipients, "To is the recipient");
    assert!(m.message_id.as_deref().is_some_and(|i| i.ends_with("@steward>")), "{:?}", m.message_id);
    for l in m.links() {
        assert!(l.starts_with(base), "a link out of Steward: {l}");
    }
}

/// Waits until the relay holds `n` messages, running due jobs now and then.
async fn arrived(srv: &Server, smtp: &SmtpServer, n: usize) -> Vec<ReceivedMail> {
    let deadline = Instant::now() + ARRIVAL;
    loop {
        let got = smtp.messages();
        if got.len() >= n {
            // Nothing more than expected comes meanwhile.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let got = smtp.messages();
            assert_eq!(got.len(), n, "more mail than expected: {:?}", summary(&got));
            return got;
        }
        assert!(Instant::now() < deadline, "{} of {n} mails arrived: {:?}", got.len(), summary(&got));
        srv.post("/ops/jobs/drain", json!({})).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_of_a_request_mails_everyone_once_even_across_a_relay_outage() {
    let mut smtp = SmtpServer::start();
    let dir: PathBuf = std::env::temp_dir().join(format!("steward-mail-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let srv = Server::start(&dir, smtp.port());
    let base = srv.base.clone();

    // People with addresses; approvers and requestors sign in with personal tokens.
    let mut ids = HashMap::new();
    for name in ["ada", "bob", "cy", "rev", "dee"] {
        let u = srv
            .post(
                "/v1.0/users",
                json!({"displayName": name, "userPrincipalName": format!("{name}@example.test"),
                    "mail": format!("{name}@example.test")}),
            )
            .await;
        ids.insert(name, u["id"].as_str().unwrap().to_owned());
    }
    let ada = srv.token_of("ada@example.test");
    let bob = srv.token_of("bob@example.test");
    let cy = srv.token_of("cy@example.test");
    let dee = srv.token_of("dee@example.test");

    // A package granting a group, requested through two stages, access for 30 days.
    let cat = srv.post(&format!("{EM}/catalogs"), json!({"displayName": "Finance"})).await["id"].clone();
    let group =
        srv.post("/v1.0/groups", json!({"displayName": "Ledger users"})).await["id"].as_str().unwrap().to_owned();
    srv.post(
        &format!("{EM}/resourceRequests"),
        json!({"requestType": "adminAdd", "catalog": {"id": cat}, "resource": {"originId": group, "originSystem": "AadGroup"}}),
    )
    .await;
    let package =
        srv.post(&format!("{EM}/accessPackages"), json!({"displayName": "Ledger", "catalog": {"id": cat}})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    srv.post(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        json!({"role": {"originId": format!("Member_{group}"), "originSystem": "AadGroup"}}),
    )
    .await;
    let stage = |who: &str| {
        json!({"durationBeforeAutomaticDenial": "P7D",
            "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": ids[who]}]})
    };
    srv.post(
        &format!("{EM}/assignmentPolicies"),
        json!({"accessPackage": {"id": package}, "displayName": "Two approvals", "allowedTargetScope": "allMemberUsers",
            "expiration": {"type": "afterDuration", "duration": "P30D"},
            "requestorSettings": {"enableTargetsToSelfAddAccess": true},
            "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [stage("bob"), stage("cy")]}}),
    )
    .await;
    srv.drain().await;
    assert!(smtp.messages().is_empty(), "setting up mails nobody");

    // Ada asks: Bob is asked, with one-click links that work for him and this request only.
    let request = json!({"requestType": "userAdd", "assignment": {"accessPackageId": package},
        "justification": "Quarter close"});
    let rid = srv.post_as(&ada, &format!("{EM}/assignmentRequests"), request.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 2).await;
    let action = one(&mails, "bob@example.test", "Action required: approve or deny ada's request for Ledger");
    well_formed(action, &base);
    let submitted = one(&mails, "ada@example.test", "Submitted: your request for Ledger");
    well_formed(submitted, &base);
    assert!(submitted.links().contains(&format!("{base}/requests/{rid}")), "{:?}", submitted.links());
    let text = action.text.as_deref().unwrap();
    assert!(text.contains("Justification: Quarter close") && text.contains("Approval: stage 1 of 2"), "{text}");
    let links = action.links();
    let one_click: Vec<&String> = links.iter().filter(|l| l.contains(&format!("/approvals/{rid}/link?t="))).collect();
    assert_eq!(one_click.len(), 2, "approve and deny: {links:?}");
    assert!(links.contains(&format!("{base}/approvals/{rid}")), "{links:?}");
    let key = LinkKey::derive(KEY.as_bytes());
    let now = srv.now().await.as_second();
    let approve = DecisionLink::check(one_click[0].split_once("?t=").unwrap().1, &key, now).unwrap();
    let deny = DecisionLink::check(one_click[1].split_once("?t=").unwrap().1, &key, now).unwrap();
    assert_eq!((approve.request.to_string(), approve.approver.to_string()), (rid.clone(), ids["bob"].clone()));
    assert!(approve.approve && !deny.approve);
    assert!(approve.expires > now, "not expired");
    let mut altered = one_click[0].split_once("?t=").unwrap().1.to_owned();
    altered.replace_range(0..1, if altered.starts_with('0') { "1" } else { "0" });
    assert!(DecisionLink::check(&altered, &key, now).is_err(), "an altered link is refused");
    // The approval page and the one-click link are the portal's: they ask who is there first,
    // and come back to the link after sign-in.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for link in [format!("{base}/approvals/{rid}"), one_click[0].clone()] {
        let page = browser.get(&link).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 303, "{link}");
        let to = page.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with("/auth/login?returnTo="), "{link}: {to}");
    }

    // Bob approves stage 1: Ada hears so, Cy is asked.
    srv.decide(&bob, &rid, true).await;
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 4).await;
    let stage1 = one(&mails, "ada@example.test", "Stage 1 of 2 approved: your request for Ledger");
    well_formed(stage1, &base);
    assert!(stage1.text.as_deref().unwrap().contains("approved by bob"));
    let action2 = one(&mails, "cy@example.test", "Action required: approve or deny ada's request for Ledger");
    well_formed(action2, &base);
    assert!(action2.text.as_deref().unwrap().contains("Approval: stage 2 of 2"));
    assert_eq!(action2.links().iter().filter(|l| l.contains("/link?t=")).count(), 2);

    // Cy approves: approved, then delivered with what Ada now has.
    srv.decide(&cy, &rid, true).await;
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 6).await;
    well_formed(one(&mails, "ada@example.test", "Approved: your request for Ledger"), &base);
    let delivered = one(&mails, "ada@example.test", "You now have access to Ledger");
    well_formed(delivered, &base);
    assert!(delivered.text.as_deref().unwrap().contains("- Ledger users (Member)"), "{:?}", delivered.text);
    assert!(delivered.html.as_deref().unwrap().contains("<li>Ledger users (Member)</li>"), "{:?}", delivered.html);
    assert!(delivered.links().contains(&format!("{base}/access")), "{:?}", delivered.links());

    // An access review over the package: its reviewer hears it started, and halfway through.
    let scope = json!({"@odata.type": "#microsoft.graph.accessReviewQueryScope", "queryType": "MicrosoftGraph",
        "query": format!("/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{package}')")});
    let d = srv
        .post(
            AR,
            json!({"displayName": "Ledger review", "scope": scope,
                "reviewers": [{"query": format!("/users/{}", ids["rev"]), "queryType": "MicrosoftGraph"}],
                "settings": {"instanceDurationInDays": 10, "mailNotificationsEnabled": true,
                    "reminderNotificationsEnabled": true}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 7).await;
    let started = one(&mails, "rev@example.test", "Access review: Ledger review");
    well_formed(started, &base);
    let instance = srv.get(&format!("{AR}/{d}/instances")).await["value"][0]["id"].as_str().unwrap().to_owned();
    assert!(started.links().contains(&format!("{base}/reviews/{d}/{instance}")), "{:?}", started.links());
    srv.post("/ops/clock", json!({"advance": "P5DT1H"})).await;
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 8).await;
    let reminder =
        one(&mails, "rev@example.test", "Reminder: 1 decision wait for you in the access review Ledger review");
    well_formed(reminder, &base);
    assert!(reminder.links().contains(&format!("{base}/reviews/{d}/{instance}")), "{:?}", reminder.links());

    // Fourteen days and one day before Ada's access ends: a warning each, with a link to extend.
    let a = srv.get(&format!("{EM}/assignments?$filter=target/objectId%20eq%20'{}'", ids["ada"])).await;
    let end: jiff::Timestamp =
        a["value"][0]["schedule"]["expiration"]["endDateTime"].as_str().unwrap().parse().unwrap();
    srv.set_clock(end.checked_sub(jiff::SignedDuration::from_hours(14 * 24 - 1)).unwrap()).await;
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 9).await;
    let warn14 = one(&mails, "ada@example.test", "Your access to Ledger ends in 14 days");
    well_formed(warn14, &base);
    assert!(warn14.links().contains(&format!("{base}/access")), "{:?}", warn14.links());
    assert!(warn14.text.as_deref().unwrap().contains("Extend access:"), "{:?}", warn14.text);
    srv.set_clock(end.checked_sub(jiff::SignedDuration::from_hours(23)).unwrap()).await;
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 10).await;
    let warn1 = one(&mails, "ada@example.test", "Your access to Ledger ends within a day");
    well_formed(warn1, &base);
    assert!(warn1.links().contains(&format!("{base}/access")), "{:?}", warn1.links());

    // The relay goes away. A request made meanwhile returns as fast as ever; nothing is sent,
    // nothing fails: the mail waits.
    smtp.stop();
    let asked = Instant::now();
    let rid2 = srv.post_as(&dee, &format!("{EM}/assignmentRequests"), request.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(SMTP_TIMEOUT_SECONDS) / 5, "the request took {took:?}");
    srv.drain().await;
    srv.drain().await;
    let states = notice_states(&srv.db).await;
    assert_eq!(states.get("failed"), None, "{states:?}");
    assert_eq!(states.get("pending"), Some(&2), "dee's submitted and bob's action required wait: {states:?}");
    assert_eq!(states.get("sent"), Some(&10), "{states:?}");
    let r = srv.get(&format!("{EM}/assignmentRequests/{rid2}")).await;
    assert_eq!(r["state"], "pendingApproval", "{r}");

    // Back: once the retry is due, each waiting mail arrives, and nothing twice.
    smtp.restart();
    srv.post("/ops/clock", json!({"advance": "PT2M"})).await;
    srv.drain().await;
    let mails = arrived(&srv, &smtp, 12).await;
    well_formed(one(&mails, "dee@example.test", "Submitted: your request for Ledger"), &base);
    let late = mails
        .iter()
        .filter(|m| {
            m.recipients == ["bob@example.test"]
                && m.subject == "Action required: approve or deny dee's request for Ledger"
        })
        .count();
    assert_eq!(late, 1, "{:?}", summary(&mails));
    srv.post("/ops/clock", json!({"advance": "PT2H"})).await;
    srv.drain().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = smtp.messages();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *by_id.entry(m.message_id.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(mails.len(), 12, "{:?}", summary(&mails));
    assert!(by_id.values().all(|n| *n == 1), "a Message-ID came twice: {by_id:?}");
    let states = notice_states(&srv.db).await;
    assert_eq!(states.get("sent"), Some(&12), "{states:?}");
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
