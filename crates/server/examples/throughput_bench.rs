//! Benchmark (issue 3, a): throughput of auto-approved `userAdd` requests from HTTP POST to
//! delivered, p99 submit-to-delivered latency at half that rate, and the same row writes done
//! by the database alone, all in one run against one database.
//!
//! ```sh
//! cargo build --release --locked -p steward-server --bin steward
//! cargo build --release --locked -p steward-server --example throughput_bench
//! B=$CARGO_TARGET_DIR/release   # or target/release
//! $B/examples/throughput_bench --binary $B/steward --database-url sqlite:///tmp/tp.db
//! $B/examples/throughput_bench --binary $B/steward --database-url postgres://postgres@127.0.0.1:5432/steward_tp
//! ```
//! The database must be empty (a new SQLite file, a new PostgreSQL database).
//!
//! What it does, in order:
//!  1. starts `steward serve` (the release binary, its default configuration apart from the
//!     listen address, the database and `--worker-poll-ms`) with a bootstrap administrator
//!     token, and waits for `/readyz`;
//!  2. through the API, as the administrator: one catalog, `--packages` groups added to it
//!     as resources, one access package per group granting its Member role, one policy per
//!     package without approval (`allowedTargetScope: allMemberUsers`), and the users (each
//!     user requests every package once, so one user serves `--packages` requests);
//!  3. personal tokens for those users by direct SQL (`INSERT INTO api_tokens` of the
//!     SHA-256 hex of a secret the benchmark generates): `steward token create` per user is
//!     a process start each. Not measured;
//!  4. **raw**: the rows one request writes, in the transactions Steward writes them in, by
//!     plain SQL through the store's own database driver from this process (no HTTP, no
//!     reads, no application logic), on `--raw-concurrency` connections;
//!  5. **max**: `--requests` POSTs on `--concurrency` keep-alive connections, each sending
//!     its next request as soon as the previous answered (closed loop); throughput is
//!     requests / (last `completed_at` − first POST sent);
//!  6. **half rate**: `--latency-requests` POSTs on a fixed schedule (request k at k / rate,
//!     rate = half of step 5's throughput unless `--rate` is given), on enough connections
//!     that one is always free; latency of each is its `completed_at` minus the time it was
//!     scheduled to be sent;
//!  7. **raw** again, to see whether the database slowed as the tables grew.
//!
//! "Delivered" is the request's state `delivered`; its `completed_at` (unix µs, set by the
//! worker from the server's clock when it writes the delivered state, committed in the same
//! transaction) is read back from the database after the queue has drained and compared with
//! this process's wall clock at submission (same machine, same clock). Every request of a
//! phase must end `delivered`, else the run fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use steward_store::{Cell, Driver, Param, PgDriver, SqliteDriver};
use tokio::net::TcpStream;
use uuid::Uuid;

const ADMIN: &str = "bench-admin-token";
const EM: &str = "/v1.0/identityGovernance/entitlementManagement";

#[derive(Parser, Debug, Clone)]
#[command(about = "Request throughput benchmark (issue 3, a)")]
struct Opts {
    /// The `steward` binary to start (a release build).
    #[arg(long)]
    binary: PathBuf,
    /// An empty database: `sqlite:///path` or `postgres://…`.
    #[arg(long)]
    database_url: String,
    /// Requests in the maximum-throughput phase.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests in the half-rate latency phase.
    #[arg(long, default_value_t = 10_000)]
    latency_requests: usize,
    /// Requests in each raw-database phase.
    #[arg(long, default_value_t = 20_000)]
    raw_requests: usize,
    /// Access packages (each with its own group); each user requests every one.
    #[arg(long, default_value_t = 8)]
    packages: usize,
    /// Keep-alive connections in the maximum-throughput phase.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Connections in the half-rate phase (enough that one is free at each scheduled send).
    #[arg(long, default_value_t = 128)]
    latency_concurrency: usize,
    /// Concurrent transactions in the raw phases [default: the store's pool size, 16 on
    /// PostgreSQL, 8 on SQLite].
    #[arg(long)]
    raw_concurrency: Option<usize>,
    /// Arrival rate of the latency phase [default: half the measured maximum].
    #[arg(long)]
    rate: Option<f64>,
    /// `--worker-poll-ms` for the server.
    #[arg(long, default_value_t = 200)]
    worker_poll_ms: u64,
    /// `STEWARD_LOG` for the server.
    #[arg(long, default_value = "info")]
    server_log: String,
    /// Skip the raw phases.
    #[arg(long)]
    no_raw: bool,
    /// Where to keep the server's log [default: a temporary directory, removed at the end].
    #[arg(long)]
    server_log_file: Option<PathBuf>,
}

/// This process's wall clock in unix microseconds: comparable with the server's timestamps
/// because both read the same machine's clock.
#[allow(clippy::disallowed_methods)] // a benchmark compares with the server's clock on purpose
fn wall_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// HTTP: one hyper HTTP/1.1 connection per task, kept alive.

struct Conn {
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let tcp = TcpStream::connect(addr).await.expect("connect to the server");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("HTTP handshake");
        // Ends when `send` is dropped and the connection closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Conn { send }
    }

    async fn call(&mut self, method: Method, path: &str, token: &str, body: Option<&Value>) -> (StatusCode, Bytes) {
        let body = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap()));
        self.raw(method, path, token, body).await
    }

    async fn raw(&mut self, method: Method, path: &str, token: &str, body: Option<Bytes>) -> (StatusCode, Bytes) {
        self.send.ready().await.expect("connection usable");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default())).unwrap();
        let resp = self.send.send_request(req).await.expect("HTTP response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("response body").to_bytes();
        (status, bytes)
    }

    /// A POST as the administrator that must answer 201; returns the new object's id.
    async fn create(&mut self, path: &str, body: Value) -> String {
        let (status, bytes) = self.call(Method::POST, path, ADMIN, Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {}", String::from_utf8_lossy(&bytes));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["id"].as_str().unwrap_or_default().to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The server process.

struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Server {
    async fn start(o: &Opts, data_dir: &std::path::Path, log: &std::path::Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(log).unwrap();
        let child = tokio::process::Command::new(&o.binary)
            .args(["serve", "--listen", &addr.to_string(), "--database-url", &o.database_url, "--data-dir"])
            .arg(data_dir)
            .args(["--worker-poll-ms", &o.worker_poll_ms.to_string()])
            .env("STEWARD_BOOTSTRAP_ADMIN_TOKEN", ADMIN)
            .env("STEWARD_LOG", &o.server_log)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start steward serve");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(tcp) = TcpStream::connect(addr).await {
                drop(tcp);
                let mut c = Conn::open(addr).await;
                if c.raw(Method::GET, "/readyz", ADMIN, None).await.0 == StatusCode::OK {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Server { child, addr }
    }

    /// SIGTERM (graceful shutdown), then wait.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }

    /// The server's resident memory and CPU time (user + system, seconds) from /proc.
    fn usage(&self) -> (f64, f64) {
        let Some(pid) = self.child.id() else { return (0.0, 0.0) };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
        let rest: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (rss_kb / 1024.0, (ticks(11) + ticks(12)) / 100.0)
    }
}

/// CPU time of the whole machine (busy, total) in clock ticks, from /proc/stat.
fn machine_cpu() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> =
        s.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: f64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// The world every phase shares.

#[derive(Clone)]
struct Package {
    id: String,
    catalog: String,
    policy: String,
    group: String,
    role: String,
}

struct World {
    packages: Vec<Package>,
    users: Vec<String>,
    tokens: Vec<String>,
}

impl World {
    /// Request number `k` overall: user `k / P` asks for package `k % P`.
    fn pair(&self, k: usize) -> (usize, &Package) {
        (k / self.packages.len(), &self.packages[k % self.packages.len()])
    }
}

async fn setup(addr: SocketAddr, o: &Opts, driver: &Arc<dyn Driver>, users: usize) -> World {
    let mut c = Conn::open(addr).await;
    let catalog = c.create(&format!("{EM}/catalogs"), json!({"displayName": "Throughput bench"})).await;
    let mut packages = Vec::new();
    for p in 0..o.packages {
        let group = c
            .create(
                "/v1.0/groups",
                json!({"displayName": format!("Bench group {p}"), "mailNickname": format!("bench-{p}")}),
            )
            .await;
        c.create(
            &format!("{EM}/resourceRequests"),
            json!({"requestType": "adminAdd", "catalog": {"id": catalog},
                   "resource": {"originId": group, "originSystem": "AadGroup"}}),
        )
        .await;
        let pkg = c
            .create(
                &format!("{EM}/accessPackages"),
                json!({"displayName": format!("Bench package {p}"), "catalog": {"id": catalog}}),
            )
            .await;
        c.create(
            &format!("{EM}/accessPackages/{pkg}/resourceRoleScopes"),
            json!({"role": {"originId": format!("Member_{group}"), "originSystem": "AadGroup"},
                   "scope": {"originId": group, "originSystem": "AadGroup"}}),
        )
        .await;
        let policy = c
            .create(
                &format!("{EM}/assignmentPolicies"),
                json!({"accessPackage": {"id": pkg}, "displayName": "Everyone, no approval",
                       "allowedTargetScope": "allMemberUsers"}),
            )
            .await;
        let rows = driver
            .fetch("SELECT role_id FROM role_scopes WHERE access_package_id = $1", &[Param::Text(Some(pkg.clone()))])
            .await
            .unwrap();
        let role = match rows.first().and_then(|r| r.0.first()) {
            Some(cell) => cell_text(cell),
            None => panic!("package {pkg} has no role scope"),
        };
        packages.push(Package { id: pkg, catalog: catalog.clone(), policy, group, role });
    }

    // Users through the API, 16 connections.
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let next = next.clone();
        tasks.spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    break;
                }
                let id = c
                    .create(
                        "/v1.0/users",
                        json!({"displayName": format!("Bench user {i}"),
                               "userPrincipalName": format!("bench.user.{i}@bench.example"),
                               "department": "Bench"}),
                    )
                    .await;
                out.push((i, id));
            }
            out
        });
    }
    let mut ids = vec![String::new(); users];
    while let Some(r) = tasks.join_next().await {
        for (i, id) in r.unwrap() {
            ids[i] = id;
        }
    }
    println!("setup: {users} users through the API in {:.1} s", t.elapsed().as_secs_f64());

    // Personal tokens by direct SQL: the stored form is the SHA-256 hex of the secret.
    let t = Instant::now();
    let now = wall_us();
    let mut tokens = Vec::with_capacity(users);
    let mut rows = Vec::with_capacity(users);
    for (i, uid) in ids.iter().enumerate() {
        let secret = format!("stw_bench_{i}_{}", Uuid::new_v4().simple());
        rows.push(vec![
            Param::Text(Some(Uuid::now_v7().to_string())),
            Param::Text(Some(format!("bench {i}"))),
            Param::Text(Some(steward_app::auth::hash_secret(&secret))),
            Param::Text(Some(uid.clone())),
            Param::Int(Some(now)),
        ]);
        tokens.push(secret);
    }
    for chunk in rows.chunks(100) {
        let mut tx = driver.begin().await.unwrap();
        tx.execute(
            &values_sql("INSERT INTO api_tokens (id, name, hash, user_id, created_at)", chunk.len(), 5),
            &chunk.concat(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    println!("setup: {users} personal tokens by SQL in {:.1} s", t.elapsed().as_secs_f64());
    World { packages, users: ids, tokens }
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

fn cell_int(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Int(v) => Some(*v),
        _ => None,
    }
}

/// `head VALUES ($1, …), (…)` for `rows` tuples of `cols`.
fn values_sql(head: &str, rows: usize, cols: usize) -> String {
    let mut sql = format!("{head} VALUES ");
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            n += 1;
            sql.push_str(&format!("{}${n}", if c == 0 { "" } else { ", " }));
        }
        sql.push(')');
    }
    sql
}

// ---------------------------------------------------------------------------------------------
// Steward phases.

#[derive(Debug, Clone)]
struct Sent {
    request_id: String,
    /// When it was meant to be sent (the schedule; = `sent_us` in the closed loop).
    due_us: i64,
    sent_us: i64,
    answered_us: i64,
}

/// Sends requests `first..first + n` (of the world's pairs); on a schedule when `rate` is set.
async fn post_phase(
    addr: SocketAddr,
    world: &Arc<World>,
    first: usize,
    n: usize,
    conc: usize,
    rate: Option<f64>,
) -> Vec<Sent> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let start_wall = wall_us() + 50_000;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let next = next.clone();
        let world = world.clone();
        tasks.spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut out = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    break;
                }
                let due_us = match rate {
                    Some(r) => {
                        let offset = k as f64 / r;
                        tokio::time::sleep_until((start + Duration::from_secs_f64(offset)).into()).await;
                        start_wall + (offset * 1e6) as i64
                    }
                    None => 0,
                };
                let (user, pkg) = world.pair(first + k);
                let body = Bytes::from(format!(
                    r#"{{"requestType":"userAdd","assignment":{{"accessPackageId":"{}"}}}}"#,
                    pkg.id
                ));
                let sent_us = wall_us();
                let (status, bytes) =
                    c.raw(Method::POST, &format!("{EM}/assignmentRequests"), &world.tokens[user], Some(body)).await;
                let answered_us = wall_us();
                assert_eq!(status, StatusCode::CREATED, "POST assignmentRequests: {}", String::from_utf8_lossy(&bytes));
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                let request_id = v["id"].as_str().unwrap().to_owned();
                out.push(Sent {
                    request_id,
                    due_us: if rate.is_some() { due_us } else { sent_us },
                    sent_us,
                    answered_us,
                });
            }
            out
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all
}

/// Waits until no delivery job is left, then reads each request's state and `completed_at`.
async fn delivered(driver: &Arc<dyn Driver>, sent: &[Sent]) -> (HashMap<String, i64>, i64) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let rows = driver.fetch("SELECT COUNT(*) FROM jobs WHERE kind = 'deliver'", &[]).await.unwrap();
        let left = rows.first().and_then(|r| r.0.first()).and_then(cell_int).unwrap_or(-1);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "deliveries did not finish ({left} jobs left)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen_empty = wall_us();
    let since = sent.iter().map(|s| s.sent_us).min().unwrap_or(0) - 5_000_000;
    let rows = driver
        .fetch(
            "SELECT id, state, completed_at FROM assignment_requests WHERE created_at >= $1",
            &[Param::Int(Some(since))],
        )
        .await
        .unwrap();
    let mut done = HashMap::new();
    let mut states: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        let id = cell_text(&r.0[0]);
        let state = cell_text(&r.0[1]);
        *states.entry(state.clone()).or_default() += 1;
        if state == "delivered"
            && let Some(at) = cell_int(&r.0[2])
        {
            done.insert(id, at);
        }
    }
    let missing = sent.iter().filter(|s| !done.contains_key(&s.request_id)).count();
    assert_eq!(missing, 0, "{missing} requests did not end delivered; states seen: {states:?}");
    (done, seen_empty)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{name}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&v, 50.0),
        pct(&v, 95.0),
        pct(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

struct PhaseResult {
    throughput: f64,
    post_rate: f64,
}

fn report(name: &str, sent: &[Sent], done: &HashMap<String, i64>, seen_empty: i64, cpu: CpuUse) -> PhaseResult {
    let first = sent.iter().map(|s| s.sent_us).min().unwrap();
    let last_answer = sent.iter().map(|s| s.answered_us).max().unwrap();
    let last_done = sent.iter().map(|s| done[&s.request_id]).max().unwrap();
    let n = sent.len() as f64;
    let secs = (last_done - first) as f64 / 1e6;
    let post_secs = (last_answer - first) as f64 / 1e6;
    let r = PhaseResult { throughput: n / secs, post_rate: n / post_secs };
    println!(
        "{name}: {} requests delivered in {secs:.2} s = {:.0} requests/s (POSTs answered in {post_secs:.2} s = {:.0}/s; \
         queue seen empty {:.2} s after the first POST)",
        sent.len(),
        r.throughput,
        r.post_rate,
        (seen_empty - first) as f64 / 1e6
    );
    println!(
        "{name}: {}",
        summary("POST answered (from send)", sent.iter().map(|s| (s.answered_us - s.sent_us) as f64 / 1e3).collect())
    );
    println!(
        "{name}: {}",
        summary(
            "submit->delivered (from scheduled send)",
            sent.iter().map(|s| (done[&s.request_id] - s.due_us) as f64 / 1e3).collect()
        )
    );
    let late = sent.iter().filter(|s| s.sent_us - s.due_us > 5_000).count();
    if late > 0 {
        println!("{name}: {late} requests were sent more than 5 ms after their scheduled time");
    }
    println!("{name}: {}", cpu.per_request(sent.len()));
    r
}

// ---------------------------------------------------------------------------------------------
// The raw database: Steward's row writes per request, in Steward's transactions.

/// Rows and transactions per request, as Steward writes them (crates/store/src/lifecycle.rs):
///  - submit, one transaction: the request, the assignment, one delivery (upsert), one job,
///    three audit events (one multi-row insert);
///  - the worker's claim, one transaction per 32 jobs: `UPDATE jobs … RETURNING`;
///  - the connector: the group membership, one statement on its own;
///  - the worker's finish, one transaction: delete the job, upsert the delivery, update the
///    assignment and the request (each conditional on the version read), two audit events.
async fn raw_phase(driver: &Arc<dyn Driver>, world: &Arc<World>, first: usize, n: usize, conc: usize, pg: bool) -> f64 {
    const CLAIM: usize = 32;
    let chunks = n.div_ceil(CLAIM);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..conc {
        let driver = driver.clone();
        let world = world.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let owner = format!("raw-bench:{w}");
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                let ks: Vec<usize> = (c * CLAIM..((c + 1) * CLAIM).min(n)).map(|k| first + k).collect();
                let mut items = Vec::with_capacity(ks.len());
                for k in ks {
                    items.push(raw_submit(&driver, &world, k).await);
                }
                raw_claim(&driver, &owner, &items, pg).await;
                for it in &items {
                    raw_grant(&driver, it).await;
                    raw_finish(&driver, &owner, it).await;
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

struct RawItem {
    request: String,
    assignment: String,
    job: String,
    user: String,
    package: Package,
    created: i64,
    detail: String,
}

fn t(s: &str) -> Param {
    Param::Text(Some(s.to_owned()))
}
fn i(v: i64) -> Param {
    Param::Int(Some(v))
}
const NULL_T: Param = Param::Text(None);
const NULL_I: Param = Param::Int(None);

async fn raw_submit(driver: &Arc<dyn Driver>, world: &World, k: usize) -> RawItem {
    let (u, pkg) = world.pair(k);
    let user = world.users[u].clone();
    let now = wall_us();
    let request = Uuid::now_v7().to_string();
    let assignment = Uuid::now_v7().to_string();
    let job = Uuid::now_v7().to_string();
    let start = jiff::Timestamp::from_microsecond(now).unwrap();
    // The same document Steward stores for an auto-approved userAdd without justification.
    let detail = format!(
        r#"{{"justification":null,"answers":[],"schedule":{{"startDateTime":null,"expiration":null}},"window":{{"start":"{start}","end":null}},"stages":[],"reason":null,"failures":[]}}"#
    );
    let open_key = format!("{user}:{}", pkg.id);
    let mut tx = driver.begin().await.unwrap();
    tx.execute(
        "INSERT INTO assignment_requests (id, request_type, state, status, access_package_id, catalog_id, \
         policy_id, target_id, requestor_id, assignment_id, open_key, detail, created_at, completed_at, \
         modified_at, due) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        &[
            t(&request),
            t("userAdd"),
            t("delivering"),
            t("Delivering"),
            t(&pkg.id),
            t(&pkg.catalog),
            t(&pkg.policy),
            t(&user),
            t(&user),
            t(&assignment),
            t(&open_key),
            t(&detail),
            i(now),
            NULL_I,
            i(now),
            NULL_I,
        ],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO assignments (id, access_package_id, catalog_id, policy_id, target_id, state, status, start_at, \
         end_at, expired_at, active_key, created_at, modified_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            t(&assignment),
            t(&pkg.id),
            t(&pkg.catalog),
            t(&pkg.policy),
            t(&user),
            t("delivering"),
            t("Delivering"),
            i(now),
            NULL_I,
            NULL_I,
            t(&open_key),
            i(now),
            i(now),
        ],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO deliveries (assignment_id, resource_role_id, action, state, attempts, detail) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (assignment_id, resource_role_id, action) \
         DO UPDATE SET state = excluded.state, attempts = excluded.attempts, detail = excluded.detail",
        &[t(&assignment), t(&pkg.role), t("grant"), t("pending"), i(0), NULL_T],
    )
    .await
    .unwrap();
    let payload = format!(
        r#"{{"kind":"deliver","assignment":"{assignment}","role":"{}","action":"grant","request":"{request}"}}"#,
        pkg.role
    );
    tx.execute(
        "INSERT INTO jobs (id, kind, payload, run_at, singleton) VALUES ($1, $2, $3, $4, $5)",
        &[t(&job), t("deliver"), t(&payload), i(RAW_RUN_AT), NULL_T],
    )
    .await
    .unwrap();
    let user_init = format!(r#"{{"user":"{user}"}}"#);
    let mut ev = Vec::new();
    for (activity, display, initiator) in [
        ("UserRequestsAssignment", "User requests access package assignment", user_init.as_str()),
        ("AutoApprove", "Auto approve access package assignment request", r#""system""#),
        ("ReadyToFulfill", "Ready to fulfill access package assignment request", user_init.as_str()),
    ] {
        ev.extend(audit_row(
            activity,
            display,
            initiator,
            "AccessPackageAssignmentRequest",
            &request,
            &request,
            now,
            None,
        ));
    }
    tx.execute(&values_sql(AUDIT_HEAD, 3, 11), &ev).await.unwrap();
    tx.commit().await.unwrap();
    RawItem { request, assignment, job, user, package: pkg.clone(), created: now, detail }
}

/// The raw jobs' due time: far in the future, so that the idle server's worker, which looks
/// for jobs due now, never takes them; the raw claim asks for jobs due by then.
const RAW_RUN_AT: i64 = 4_102_444_800_000_000; // 2100-01-01

const AUDIT_HEAD: &str = "INSERT INTO audit_events (id, at, activity, display_name, category, initiator, target_type, \
                          target_id, correlation_id, result, detail)";

#[allow(clippy::too_many_arguments)]
fn audit_row(
    activity: &str,
    display: &str,
    initiator: &str,
    target_type: &str,
    target: &str,
    correlation: &str,
    at: i64,
    detail: Option<String>,
) -> Vec<Param> {
    vec![
        t(&Uuid::now_v7().to_string()),
        i(at),
        t(activity),
        t(display),
        t("EntitlementManagement"),
        t(initiator),
        t(target_type),
        t(target),
        t(correlation),
        t("success"),
        Param::Text(detail),
    ]
}

async fn raw_claim(driver: &Arc<dyn Driver>, owner: &str, items: &[RawItem], pg: bool) {
    let now = wall_us();
    // Steward's claim statement, limited to this chunk's jobs so each raw task runs its own.
    let ids: Vec<String> = (0..items.len()).map(|j| format!("${}", j + 5)).collect();
    let lock = if pg { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM jobs WHERE id IN ({}) AND run_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
         ORDER BY run_at, id LIMIT $4{lock}) \
         AND run_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
         RETURNING id, payload, attempts",
        ids.join(", ")
    );
    let mut params = vec![t(owner), i(now + 60_000_000), i(RAW_RUN_AT), i(32)];
    params.extend(items.iter().map(|it| t(&it.job)));
    let mut tx = driver.begin().await.unwrap();
    let rows = tx.fetch(&sql, &params).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows.len(), items.len(), "every raw job claimed");
}

/// The directory connector's grant: one insert, on its own (no explicit transaction).
async fn raw_grant(driver: &Arc<dyn Driver>, it: &RawItem) {
    driver
        .execute("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)", &[t(&it.package.group), t(&it.user)])
        .await
        .unwrap();
}

async fn raw_finish(driver: &Arc<dyn Driver>, owner: &str, it: &RawItem) {
    let now = wall_us().max(it.created + 1);
    let mut tx = driver.begin().await.unwrap();
    let n = tx.execute("DELETE FROM jobs WHERE id = $1 AND lease_owner = $2", &[t(&it.job), t(owner)]).await.unwrap();
    assert_eq!(n, 1);
    tx.execute(
        "INSERT INTO deliveries (assignment_id, resource_role_id, action, state, attempts, detail) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (assignment_id, resource_role_id, action) \
         DO UPDATE SET state = excluded.state, attempts = excluded.attempts, detail = excluded.detail",
        &[t(&it.assignment), t(&it.package.role), t("grant"), t("done"), i(1), NULL_T],
    )
    .await
    .unwrap();
    let open_key = format!("{}:{}", it.user, it.package.id);
    let n = tx
        .execute(
            "WITH v (id, state, status, start_at, end_at, expired_at, active_key, modified_at, read_at) AS \
             (VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)) \
             UPDATE assignments SET state = v.state, status = v.status, start_at = v.start_at, end_at = v.end_at, \
             expired_at = v.expired_at, active_key = v.active_key, modified_at = v.modified_at \
             FROM v WHERE assignments.id = v.id AND assignments.modified_at = v.read_at",
            &[
                t(&it.assignment),
                t("delivered"),
                t("Delivered"),
                i(it.created),
                NULL_I,
                NULL_I,
                t(&open_key),
                i(now),
                i(it.created),
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = tx
        .execute(
            "UPDATE assignment_requests SET request_type = $2, state = $3, status = $4, \
             access_package_id = $5, catalog_id = $6, policy_id = $7, target_id = $8, requestor_id = $9, \
             assignment_id = $10, open_key = $11, detail = $12, created_at = $13, completed_at = $14, \
             modified_at = $15, due = $16 WHERE id = $1 AND modified_at = $17",
            &[
                t(&it.request),
                t("userAdd"),
                t("delivered"),
                t("Delivered"),
                t(&it.package.id),
                t(&it.package.catalog),
                t(&it.package.policy),
                t(&it.user),
                t(&it.user),
                t(&it.assignment),
                NULL_T,
                t(&it.detail),
                i(it.created),
                i(now),
                i(now),
                NULL_I,
                i(it.created),
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let mut ev = audit_row(
        "FulfillResource",
        "Fulfill access package resource assignment",
        r#""system""#,
        "AccessPackageAssignment",
        &it.assignment,
        &it.request,
        now,
        Some("Grant Member of Bench group 0: done".to_owned()),
    );
    ev.extend(audit_row(
        "Fulfill",
        "Fulfill access package assignment request",
        r#""system""#,
        "AccessPackageAssignmentRequest",
        &it.request,
        &it.request,
        now,
        None,
    ));
    tx.execute(&values_sql(AUDIT_HEAD, 2, 11), &ev).await.unwrap();
    tx.commit().await.unwrap();
}

// ---------------------------------------------------------------------------------------------

/// CPU time (user + system, seconds) of a process, from /proc.
fn proc_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time of each PostgreSQL backend serving this database (none on SQLite, where the
/// database runs inside the server or this process).
async fn db_backends(driver: &Arc<dyn Driver>, pg: bool) -> HashMap<String, f64> {
    if !pg {
        return HashMap::new();
    }
    let rows = driver
        .fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()", &[])
        .await
        .unwrap_or_default();
    rows.iter()
        .filter_map(|r| r.0.first().and_then(cell_int))
        .map(|pid| (pid.to_string(), proc_cpu(&pid.to_string())))
        .collect()
}

/// Where the CPU went during a phase.
struct CpuMeter {
    machine: (f64, f64),
    server: f64,
    me: f64,
    db: HashMap<String, f64>,
}

#[derive(Debug, Clone, Copy)]
struct CpuUse {
    /// Machine CPU busy, percent of all cores (other users of the machine included).
    machine_pct: f64,
    server_s: f64,
    db_s: f64,
    me_s: f64,
}

impl CpuUse {
    fn per_request(&self, n: usize) -> String {
        let us = |s: f64| s / n as f64 * 1e6;
        format!(
            "CPU per request: server {:.0} µs, PostgreSQL backends {:.0} µs, this process {:.0} µs; machine busy {:.0}%",
            us(self.server_s),
            us(self.db_s),
            us(self.me_s),
            self.machine_pct
        )
    }
}

impl CpuMeter {
    async fn start(server: &Server, driver: &Arc<dyn Driver>, pg: bool) -> Self {
        Self {
            machine: machine_cpu(),
            server: server.usage().1,
            me: proc_cpu("self"),
            db: db_backends(driver, pg).await,
        }
    }
    async fn stop(&self, server: &Server, driver: &Arc<dyn Driver>, pg: bool) -> CpuUse {
        let (busy, total) = machine_cpu();
        let now = db_backends(driver, pg).await;
        let db_s = now.iter().map(|(pid, t)| t - self.db.get(pid).copied().unwrap_or(0.0)).sum();
        CpuUse {
            machine_pct: (busy - self.machine.0) / (total - self.machine.1).max(1.0) * 100.0,
            server_s: server.usage().1 - self.server,
            db_s,
            me_s: proc_cpu("self") - self.me,
        }
    }
}

#[tokio::main]
async fn main() {
    let o = Opts::parse();
    let pg = o.database_url.starts_with("postgres");
    let raw_conc = o.raw_concurrency.unwrap_or(if pg { 16 } else { 8 });
    let raw_n = if o.no_raw { 0 } else { o.raw_requests };
    let total = o.requests + o.latency_requests + 2 * raw_n;
    let users = total.div_ceil(o.packages);
    let dir = std::env::temp_dir().join(format!("steward-tp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "throughput_bench: {} on {}; load average {}",
        o.database_url,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load_average()
    );
    println!("options: {o:?}");

    let server = Server::start(&o, &dir, &o.server_log_file.clone().unwrap_or_else(|| dir.join("server.log"))).await;
    let driver: Arc<dyn Driver> = if pg {
        Arc::new(PgDriver::connect(&o.database_url).await.unwrap())
    } else {
        Arc::new(SqliteDriver::open(&o.database_url).await.unwrap())
    };
    let world = Arc::new(setup(server.addr, &o, &driver, users).await);
    let mut next = 0;

    let mut raw_rates = Vec::new();
    if raw_n > 0 {
        println!("load average before raw: {}", load_average());
        let cpu = CpuMeter::start(&server, &driver, pg).await;
        let rate = raw_phase(&driver, &world, next, raw_n, raw_conc, pg).await;
        next += raw_n;
        let used = cpu.stop(&server, &driver, pg).await;
        println!("raw (before): {raw_n} requests' rows on {raw_conc} connections = {rate:.0} requests/s");
        println!("raw (before): {}", used.per_request(raw_n));
        raw_rates.push(rate);
    }

    println!("load average before max: {}", load_average());
    let cpu = CpuMeter::start(&server, &driver, pg).await;
    let sent = post_phase(server.addr, &world, next, o.requests, o.concurrency, None).await;
    next += o.requests;
    let (done, seen) = delivered(&driver, &sent).await;
    let max = report("max", &sent, &done, seen, cpu.stop(&server, &driver, pg).await);

    let rate = o.rate.unwrap_or(max.throughput / 2.0);
    println!("load average before half rate: {}", load_average());
    let cpu = CpuMeter::start(&server, &driver, pg).await;
    let sent = post_phase(server.addr, &world, next, o.latency_requests, o.latency_concurrency, Some(rate)).await;
    next += o.latency_requests;
    let (done, seen) = delivered(&driver, &sent).await;
    println!("half rate: offered {rate:.0} requests/s");
    let half = report("half rate", &sent, &done, seen, cpu.stop(&server, &driver, pg).await);

    if raw_n > 0 {
        println!("load average before raw (after): {}", load_average());
        let cpu = CpuMeter::start(&server, &driver, pg).await;
        let rate = raw_phase(&driver, &world, next, raw_n, raw_conc, pg).await;
        let used = cpu.stop(&server, &driver, pg).await;
        println!("raw (after): {raw_n} requests' rows on {raw_conc} connections = {rate:.0} requests/s");
        println!("raw (after): {}", used.per_request(raw_n));
        raw_rates.push(rate);
        let best = raw_rates.iter().copied().fold(0.0, f64::max);
        println!(
            "ratio: Steward max {:.0} / raw best {best:.0} = {:.2} (raw before/after: {:.0}/{:.0})",
            max.throughput,
            max.throughput / best,
            raw_rates[0],
            raw_rates[1]
        );
    }
    let _ = half.post_rate;
    let (rss, cpu_s) = server.usage();
    println!("server: VmRSS {rss:.1} MiB, CPU {cpu_s:.1} s in all; load average {}", load_average());
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
