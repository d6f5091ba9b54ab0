//! Benchmark: how fast Steward delivers a burst of administrator assignments into a real
//! target through a connection: a throwaway OpenLDAP `slapd` (an LDAP `groupOfNames`) or
//! PyPI's `scim2-server` (a SCIM 2.0 group), 10,000 assignments by default.
//!
//! ```sh
//! cargo run --release -p steward-server --example delivery_bench -- ldap
//! cargo run --release -p steward-server --example delivery_bench -- scim
//! # PostgreSQL: the URL names a server the benchmark may create a database on; it creates
//! # a fresh database next to the one named, runs there and drops it at the end.
//! cargo run --release -p steward-server --example delivery_bench -- ldap postgres://postgres@127.0.0.1:5432/postgres
//! cargo run --release -p steward-server --example delivery_bench -- scim postgres://postgres@127.0.0.1:5432/postgres 10000
//! ```
//! Arguments: the target (`ldap` or `scim`), the database URL (default: a new SQLite file in a
//! temporary directory, removed at the end; `-` says so when a count follows) and the number
//! of assignments (default 10,000): `… -- ldap - 1000`.
//! The peers come from `steward-testpeers`: Debian's `slapd`/`ldap-utils` and the
//! `scim2-server` of `.venv` (`bash scripts/python-venv.sh`).
//!
//! What it does, in order:
//!  1. starts the peer: slapd seeded (by `slapadd`) with N `inetOrgPerson` entries
//!     `uid=userK,ou=people` (mail `userK@example.test`) and one `groupOfNames`
//!     `cn=bench,ou=groups` holding one seed member; or scim2-server with one empty group
//!     (and, with `--scim-precreate`, the N SCIM users made through its API beforehand;
//!     without it, the connection has `createUsers: true` and Steward creates each SCIM
//!     user during delivery);
//!  2. runs Steward in this process, wired as `steward serve` wires it (the store with its
//!     jobs-queued hook, `Services` with the connectors and a secrets key, the HTTP app on a
//!     loopback port, the worker with the same parallelism and number of loops), with the
//!     worker held back;
//!  3. through the HTTP API, as the bootstrap administrator: N directory users (mail and
//!     userPrincipalName `userK@example.test`), the connection (tested), a catalog holding its
//!     group (`resourceRequests`, origin `<connection id>:<group>`), an access package with
//!     the group's Member role and an administrator-only policy without approval;
//!  4. **burst**: N `adminAdd` assignment requests POSTed on `--http-connections` keep-alive
//!     connections as fast as the server answers;
//!  5. **delivery**: starts the worker loops (`steward_server::worker::run`, the production
//!     loop) and waits until no delivery job is left and every request is final;
//!  6. reads the peer directly (`ldapsearch` / `GET /Groups/<id>`) and checks that the group
//!     holds exactly the N users plus the seeded members.
//!
//! Times: "end to end" runs from the first POST sent to the last request's `completed_at`
//! (unix µs: the worker reads the system clock once a wave's connector calls are done and
//! writes it with the wave's outcomes, committed right after; this process reads the same
//! clock); "delivery" from the moment the
//! worker loops start to that same last `completed_at`; grants/s = N / delivery. With
//! `--worker-during-burst` the worker runs from the start instead, as in production, and the
//! delivery phase cannot be told apart: the figures are then end to end, plus the tail after
//! the last POST was answered.

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

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
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
use steward_app::auth::Authenticator;
use steward_app::connections::ConnectionSetup;
use steward_app::lifecycle::worker::{LocalJobs, PARALLEL, Worker};
use steward_app::secrets::Sealer;
use steward_app::{Services, SystemClock};
use steward_store::{Cell, Driver, PgDriver, SqliteDriver};
use steward_testpeers::{Scim2Server, Slapd, slapd};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const ADMIN: &str = "delivery-bench-admin-token";
/// 32 bytes in base64: seals the connection's credentials in this throwaway database.
const SECRETS_KEY: &str = "ZGVsaXZlcnktYmVuY2gta2V5LTMyLWJ5dGVzLWxvbmc=";
const EM: &str = "/v1.0/identityGovernance/entitlementManagement";
const GROUP_CN: &str = "bench";
/// The requests' states that are final for this benchmark.
const FINAL: &str = "('delivered', 'deliveryFailed', 'partiallyDelivered')";

#[derive(Parser, Debug, Clone)]
#[command(about = "Delivery throughput into a real slapd or scim2-server")]
struct Opts {
    /// `ldap` (a throwaway slapd) or `scim` (scim2-server).
    #[arg(value_parser = ["ldap", "scim"])]
    target: String,
    /// `sqlite://PATH` (a new file) or `postgres://…` (a server: a fresh database is created
    /// next to the one named and dropped at the end); `-` or nothing for the default, a
    /// temporary SQLite file.
    database_url: Option<String>,
    /// Assignments in the burst (and users, in Steward and in the peer).
    #[arg(default_value_t = 10_000)]
    count: usize,
    /// Keep-alive HTTP connections the burst is sent on.
    #[arg(long, default_value_t = 16)]
    http_connections: usize,
    /// Run the worker during the burst too (as `steward serve` does) instead of after it.
    #[arg(long)]
    worker_during_burst: bool,
    /// scim: create the N SCIM users through scim2-server's API before the burst (the
    /// connection then has `createUsers: false`) instead of letting Steward create them.
    #[arg(long)]
    scim_precreate: bool,
    /// The worker's poll interval when idle (`worker.poll_interval_ms`, default 200 as in
    /// `steward serve`).
    #[arg(long, default_value_t = 200)]
    worker_poll_ms: u64,
    /// Give up waiting for the deliveries after this long.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
    /// ldap: after delivery, take a hundredth of the members out of the group and put as many
    /// strangers in by hand, then time one reconciliation pass over the group
    /// (`steward_app::reconcile::pass`, as the job runs it) and check what it found.
    #[arg(long)]
    reconcile: bool,
}

/// This process's wall clock in unix microseconds: comparable with the worker's
/// `completed_at`, which it writes from the same machine's clock.
#[allow(clippy::disallowed_methods)] // a benchmark compares with the server's clock on purpose
fn wall_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
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

    async fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        self.send.ready().await.expect("connection usable");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {ADMIN}"));
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let bytes = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap())).unwrap_or_default();
        let resp = self.send.send_request(req.body(Full::new(bytes)).unwrap()).await.expect("HTTP response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("response body").to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    /// A POST that must answer 201; the new object.
    async fn create(&mut self, path: &str, body: Value) -> Value {
        let (status, v) = self.call(Method::POST, path, Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
        v
    }

    async fn get(&mut self, path: &str) -> Value {
        let (status, v) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Machine and process figures.

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
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

/// CPU time (user + system, seconds) of a process, from /proc.
fn proc_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The process whose command line holds every one of `needles` (the peer, found by the port
/// it was told to listen on), for its CPU time.
fn find_process(needles: &[&str]) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if needles.iter().all(|n| cmdline.contains(n)) {
            return Some(name);
        }
    }
    None
}

/// Where the CPU went during a phase: the machine (all users), this process (Steward's
/// server, worker and store, and the benchmark's client) and the peer.
struct CpuMeter {
    machine: (f64, f64),
    me: f64,
    peer: f64,
    peer_pid: Option<String>,
}

impl CpuMeter {
    fn start(peer_pid: Option<String>) -> Self {
        let peer = peer_pid.as_deref().map_or(0.0, proc_cpu);
        Self { machine: machine_cpu(), me: proc_cpu("self"), peer, peer_pid }
    }

    fn stop(&self) -> String {
        let (busy, total) = machine_cpu();
        let machine = (busy - self.machine.0) / (total - self.machine.1).max(1.0) * 100.0;
        let peer = match &self.peer_pid {
            Some(pid) => format!("{:.1} s", proc_cpu(pid) - self.peer),
            None => "unknown".to_owned(),
        };
        format!(
            "CPU: this process (Steward + client) {:.1} s, peer {peer}; machine busy {machine:.0}% of {} cores",
            proc_cpu("self") - self.me,
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The peers.

enum Peer {
    Ldap { slapd: Slapd, group_dn: String },
    Scim { server: Arc<Scim2Server>, group: String },
}

fn person_dn(k: usize) -> String {
    format!("uid=user{k},ou=people,{}", slapd::BASE)
}

fn user_name(k: usize) -> String {
    format!("user{k}@example.test")
}

impl Peer {
    async fn start(o: &Opts) -> Peer {
        let n = o.count;
        if o.target == "ldap" {
            let t = Instant::now();
            let mut ldif = String::with_capacity(n * 160);
            for k in 1..=n {
                ldif.push_str(&format!(
                    "dn: {}\nobjectClass: inetOrgPerson\nuid: user{k}\ncn: User {k}\nsn: {k}\nmail: {}\n\n",
                    person_dn(k),
                    user_name(k)
                ));
            }
            let seed = format!("uid=seed,ou=people,{}", slapd::BASE);
            ldif.push_str(&format!(
                "dn: {seed}\nobjectClass: inetOrgPerson\nuid: seed\ncn: Seed\nsn: Seed\nmail: seed@example.test\n\n"
            ));
            let group_dn = format!("cn={GROUP_CN},ou=groups,{}", slapd::BASE);
            ldif.push_str(&format!("dn: {group_dn}\nobjectClass: groupOfNames\ncn: {GROUP_CN}\nmember: {seed}\n"));
            let slapd = tokio::task::spawn_blocking(move || Slapd::start(&ldif)).await.unwrap();
            println!(
                "peer: slapd at {} seeded with {n} people and {group_dn} (1 seed member) in {:.1} s",
                slapd.url,
                t.elapsed().as_secs_f64()
            );
            Peer::Ldap { slapd, group_dn }
        } else {
            let server = Arc::new(tokio::task::spawn_blocking(Scim2Server::start).await.unwrap());
            let group = server.create_group("Bench group").await;
            println!("peer: scim2-server at {} with group {group} (no member)", server.base_url);
            if o.scim_precreate {
                let t = Instant::now();
                let next = Arc::new(AtomicUsize::new(1));
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..4 {
                    let (server, next) = (server.clone(), next.clone());
                    tasks.spawn(async move {
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k > n {
                                break;
                            }
                            server.create_user(&user_name(k)).await;
                        }
                    });
                }
                while let Some(r) = tasks.join_next().await {
                    r.unwrap();
                }
                println!(
                    "peer: {n} SCIM users created through scim2-server's API in {:.1} s (not measured below)",
                    t.elapsed().as_secs_f64()
                );
            }
            Peer::Scim { server, group }
        }
    }

    /// `(kind, settings, credentials, origin system, group origin id)` of the connection.
    fn connection(&self, o: &Opts) -> (&'static str, Value, Value, &'static str, String) {
        match self {
            Peer::Ldap { slapd: s, group_dn } => (
                "ldap",
                json!({"url": s.url, "bindDn": slapd::ADMIN,
                       "userBaseDn": format!("ou=people,{}", slapd::BASE),
                       "groupBaseDn": format!("ou=groups,{}", slapd::BASE),
                       "groupObjectClass": "groupOfNames", "memberAttribute": "member",
                       "userKey": "mail", "userAttribute": "mail"}),
                json!({"password": slapd::PASSWORD}),
                "LdapGroup",
                group_dn.clone(),
            ),
            Peer::Scim { server, group } => (
                "scim",
                json!({"baseUrl": server.base_url, "userKey": "userPrincipalName",
                       "matchAttribute": "userName", "createUsers": !o.scim_precreate}),
                json!({"bearerToken": server.token}),
                "ScimGroup",
                group.clone(),
            ),
        }
    }

    /// The peer's process, found by the port it listens on.
    fn pid(&self) -> Option<String> {
        match self {
            Peer::Ldap { slapd, .. } => find_process(&["slapd", &format!("{}/", slapd.url)]),
            Peer::Scim { server, .. } => {
                let port = server.base_url.rsplit_once(':').map(|(_, p)| p.trim_end_matches("/v2").to_owned())?;
                find_process(&["scim2-server", &format!("--port {port}")])
            }
        }
    }

    /// Reads the group back from the peer: `(members, seeded, what was checked and whether it
    /// held)`. LDAP: every user's DN is a member, none twice. SCIM: no member twice, and three
    /// users looked up by name (the first, the middle, the last) are members.
    async fn members(&self, n: usize) -> (usize, usize, String) {
        match self {
            Peer::Ldap { slapd, group_dn } => {
                let got: Vec<String> = slapd.members(group_dn);
                let set: HashSet<String> = got.iter().map(|d| d.to_lowercase()).collect();
                let all = (1..=n).all(|k| set.contains(&person_dn(k).to_lowercase()));
                (
                    got.len(),
                    1,
                    format!("every one of the {n} users' DNs present once: {}", all && set.len() == got.len()),
                )
            }
            Peer::Scim { server, group } => {
                let got = server.group_members(group).await;
                let set: HashSet<&String> = got.iter().collect();
                // Every member must be one of our users: look up a sample of names.
                let mut all = set.len() == got.len();
                for k in [1, n / 2, n].into_iter().filter(|k| *k >= 1) {
                    let ids = server.users_named(&user_name(k)).await;
                    all &= ids.len() == 1 && ids.iter().all(|id| set.contains(id));
                }
                (got.len(), 0, format!("no member twice, users 1, {}, {n} found by name among them: {all}", n / 2))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The database.

/// The database the run uses, and how to get rid of it.
struct Database {
    url: String,
    /// PostgreSQL: the server connection the database was created on, and its name.
    pg_admin: Option<(PgDriver, String)>,
    /// SQLite: the temporary directory to remove.
    temp_dir: Option<std::path::PathBuf>,
}

impl Database {
    async fn prepare(url: Option<&str>) -> Database {
        match url {
            Some(u) if u.starts_with("postgres") => {
                let admin = PgDriver::connect(u).await.unwrap();
                let name = format!("steward_delivery_bench_{}", std::process::id());
                admin.execute(&format!("CREATE DATABASE {name}"), &[]).await.unwrap();
                Database { url: with_database(u, &name), pg_admin: Some((admin, name)), temp_dir: None }
            }
            Some(u) => Database { url: u.to_owned(), pg_admin: None, temp_dir: None },
            None => {
                let dir = std::env::temp_dir().join(format!("steward-delivery-bench-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                Database { url: format!("sqlite://{}/steward.db", dir.display()), pg_admin: None, temp_dir: Some(dir) }
            }
        }
    }

    fn is_pg(&self) -> bool {
        self.url.starts_with("postgres")
    }

    async fn remove(self) {
        if let Some((admin, name)) = self.pg_admin {
            match admin.execute(&format!("DROP DATABASE {name} WITH (FORCE)"), &[]).await {
                Ok(_) => println!("dropped database {name}"),
                Err(e) => println!("could not drop database {name}: {e}"),
            }
        }
        if let Some(dir) = self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `url` with its database (the path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let host = rest.split_once('/').map_or(rest, |(h, _)| h);
    format!("{scheme}://{host}/{name}{query}")
}

/// Shows a URL without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => match rest.split_once('@') {
            Some((user, host)) => format!("{scheme}://{}@{host}", user.split(':').next().unwrap_or("")),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn cell_int(c: Option<&Cell>) -> i64 {
    match c {
        Some(Cell::Int(v)) => *v,
        _ => 0,
    }
}

fn cell_text(c: Option<&Cell>) -> String {
    match c {
        Some(Cell::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

async fn count(driver: &Arc<dyn Driver>, sql: &str) -> i64 {
    let rows = driver.fetch(sql, &[]).await.unwrap();
    cell_int(rows.first().and_then(|r| r.0.first()))
}

// ---------------------------------------------------------------------------------------------
// Steward in this process.

struct Steward {
    addr: SocketAddr,
    worker: Worker,
    services: Services,
    loops: usize,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Steward {
    /// The wiring of `steward serve` (crates/server/src/serve.rs), minus logging set-up,
    /// metrics and signals; the worker is not started.
    async fn start(url: &str) -> Steward {
        let local = Arc::new(LocalJobs::default());
        let store = {
            let local = local.clone();
            steward_store::open(url, true).await.unwrap().on_jobs_queued(move |ids| local.queued(ids))
        };
        let sealer = Sealer::from_base64(&secrecy::SecretString::from(SECRETS_KEY.to_owned())).unwrap();
        let setup = ConnectionSetup { factory: Some(Arc::new(steward_connectors::Factory)), sealer: Some(sealer) };
        let services = Services::new(Arc::new(store), Arc::new(SystemClock)).with_connection_setup(setup);
        let (parallel, loops) = if url.starts_with("postgres") { (PARALLEL, 2) } else { (1, 1) };
        let worker = Worker::new(services.clone(), steward_server::worker::owner_name())
            .with_parallelism(parallel)
            .with_local_jobs(local);
        let app = steward_web::app(services.clone(), Authenticator::new(Some(ADMIN)), None, None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await.unwrap();
        });
        println!("steward: listening on http://{addr}; worker parallelism {parallel}, {loops} loop(s)");
        Steward { addr, worker, services, loops, shutdown, tasks }
    }

    fn start_worker(&self, poll: Duration) {
        for _ in 0..self.loops {
            self.tasks.spawn(steward_server::worker::run(self.worker.clone(), poll, self.shutdown.clone()));
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Takes `n / 100` delivered members out of the LDAP group and puts as many strangers in, by
/// hand, then times one reconciliation pass and checks that it restored exactly the first and
/// reported exactly the second (and the seeded members).
async fn reconcile(steward: &Steward, peer: &Peer, n: usize, seeded: usize) {
    let Peer::Ldap { slapd, group_dn } = peer else {
        println!("reconcile: only measured against LDAP");
        return;
    };
    let k = (n / 100).max(1);
    let mut change = format!("dn: {group_dn}\nchangetype: modify\ndelete: member\n");
    for i in 1..=k {
        change.push_str(&format!("member: {}\n", person_dn(i)));
    }
    change.push_str("-\nadd: member\n");
    for i in 0..k {
        change.push_str(&format!("member: cn=stranger{i},ou=people,{}\n", slapd::BASE));
    }
    slapd.modify(&change);
    let c = steward.services.store.list_connections().await.unwrap().pop().expect("the connection");
    println!("reconcile: {k} members taken out and {k} strangers put in by hand; load average {}", load_average());
    let cpu = CpuMeter::start(peer.pid());
    let t = Instant::now();
    let r = steward_app::reconcile::pass(&steward.services, &c).await.unwrap();
    let took = t.elapsed();
    println!(
        "reconcile: one pass over a group of {} members ({n} granted through Steward): {:.2} s; restored {}, \
         drift {}, failures {:?}",
        n + seeded,
        took.as_secs_f64(),
        r.restored,
        r.drift,
        r.failures
    );
    println!("reconcile: {}", cpu.stop());
    let members = slapd.members(group_dn);
    let back = (1..=k).all(|i| members.contains(&person_dn(i)));
    println!(
        "reconcile: {}",
        if r.restored == k && r.drift == k + seeded && back { "as expected" } else { "MISMATCH" }
    );
}

/// What the burst posts: one user's assignment.
struct Setup {
    package: String,
    policy: String,
    users: Vec<String>,
}

async fn setup(addr: SocketAddr, o: &Opts, peer: &Peer) -> Setup {
    let mut c = Conn::open(addr).await;

    // Users first (16 connections): their mails and user principal names are the peer's.
    let t = Instant::now();
    let n = o.count;
    let next = Arc::new(AtomicUsize::new(1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let next = next.clone();
        tasks.spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut out = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k > n {
                    break;
                }
                let u = c
                    .create(
                        "/v1.0/users",
                        json!({"displayName": format!("User {k}"), "userPrincipalName": user_name(k),
                               "mail": user_name(k), "department": "Bench"}),
                    )
                    .await;
                out.push((k, id_of(&u)));
            }
            out
        });
    }
    let mut users = vec![String::new(); n];
    while let Some(r) = tasks.join_next().await {
        for (k, id) in r.unwrap() {
            users[k - 1] = id;
        }
    }
    println!("setup: {n} Steward users through the API in {:.1} s", t.elapsed().as_secs_f64());

    let (kind, settings, credentials, system, group) = peer.connection(o);
    let conn = c
        .create(
            "/v1.0/steward/connections",
            json!({"displayName": format!("Bench {kind}"), "kind": kind, "settings": settings,
                   "credentials": credentials}),
        )
        .await;
    let cid = id_of(&conn);
    let (_, tested) = c.call(Method::POST, &format!("/v1.0/steward/connections/{cid}/test"), Some(&json!({}))).await;
    assert_eq!(tested["succeeded"], json!(true), "the connection test failed: {tested}");
    println!("setup: connection {cid}: {}", tested["message"].as_str().unwrap_or_default());

    let catalog = id_of(&c.create(&format!("{EM}/catalogs"), json!({"displayName": "Delivery bench"})).await);
    let origin = format!("{cid}:{group}");
    c.create(
        &format!("{EM}/resourceRequests"),
        json!({"requestType": "adminAdd", "catalog": {"id": catalog},
               "resource": {"originId": origin, "originSystem": system}}),
    )
    .await;
    let package = id_of(
        &c.create(&format!("{EM}/accessPackages"), json!({"displayName": "Bench group", "catalog": {"id": catalog}}))
            .await,
    );
    let roles = c.get(&format!("{EM}/catalogs/{catalog}/resourceRoles?$expand=resource($expand=scopes)")).await;
    let role = &roles["value"][0];
    assert_eq!(role["originId"], json!("Member"), "{roles}");
    c.create(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        json!({"role": {"id": role["id"], "originId": "Member", "originSystem": system,
                        "resource": {"id": role["resource"]["id"]}},
               "scope": {"id": role["resource"]["scopes"][0]["id"], "originId": origin, "originSystem": system}}),
    )
    .await;
    let policy = id_of(
        &c.create(
            &format!("{EM}/assignmentPolicies"),
            json!({"accessPackage": {"id": package}, "displayName": "Administrators assign, no approval",
                   "allowedTargetScope": "notSpecified", "expiration": {"type": "noExpiration"}}),
        )
        .await,
    );
    println!("setup: catalog {catalog}, package {package} (Member of {group}), policy {policy}");
    Setup { package, policy, users }
}

/// Posts every assignment; `(first POST sent, last answer)` in unix µs.
async fn burst(addr: SocketAddr, o: &Opts, s: &Arc<Setup>) -> (i64, i64) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..o.http_connections {
        let (next, s) = (next.clone(), s.clone());
        tasks.spawn(async move {
            let mut c = Conn::open(addr).await;
            let (mut first, mut last) = (i64::MAX, 0);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(user) = s.users.get(k) else { break };
                let body = json!({"requestType": "adminAdd", "assignment":
                    {"targetId": user, "assignmentPolicyId": s.policy, "accessPackageId": s.package}});
                first = first.min(wall_us());
                let (status, v) = c.call(Method::POST, &format!("{EM}/assignmentRequests"), Some(&body)).await;
                last = wall_us();
                assert_eq!(status, StatusCode::CREATED, "adminAdd: {v}");
            }
            (first, last)
        });
    }
    let (mut first, mut last) = (i64::MAX, 0);
    while let Some(r) = tasks.join_next().await {
        let (f, l) = r.unwrap();
        first = first.min(f);
        last = last.max(l);
    }
    (first, last)
}

/// Waits until no delivery job is left (done, or failed for good), then checks that every
/// request is final; prints progress every 5 s. It looks four times a second at the job
/// table, which shrinks as the worker goes: counting the requests by state instead would
/// scan all N of them each time, which on SQLite costs this process (where SQLite runs)
/// seconds of CPU over a run. The end time is read from the requests' `completed_at`, so
/// how often this looks does not change the figures.
async fn wait_delivered(driver: &Arc<dyn Driver>, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut shown = Instant::now();
    loop {
        let left = count(driver, "SELECT COUNT(*) FROM jobs WHERE kind = 'deliver'").await;
        if left == 0 {
            let done = count(driver, &format!("SELECT COUNT(*) FROM assignment_requests WHERE state IN {FINAL}")).await;
            if done < n as i64 {
                println!("no delivery job is left, yet only {done} of {n} requests are final");
            }
            return;
        }
        if shown.elapsed() >= Duration::from_secs(5) {
            println!("  … {left} delivery jobs left; load average {}", load_average());
            shown = Instant::now();
        }
        if Instant::now() > deadline {
            println!("gave up after {} s with {left} delivery jobs left", timeout.as_secs());
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::main]
async fn main() {
    let o = Opts::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(std::env::var("STEWARD_LOG").unwrap_or("warn".into())).unwrap(),
        )
        .init();
    let n = o.count;
    println!(
        "delivery_bench: {} target, {n} assignments, {} cores; load average {}",
        o.target,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load_average()
    );
    println!("options: {o:?}");

    let peer = Peer::start(&o).await;
    let db = Database::prepare(o.database_url.as_deref().filter(|u| !u.is_empty() && *u != "-")).await;
    println!("database: {}", redact(&db.url));
    let steward = Steward::start(&db.url).await;
    let driver: Arc<dyn Driver> = if db.is_pg() {
        Arc::new(PgDriver::connect(&db.url).await.unwrap())
    } else {
        Arc::new(SqliteDriver::open(&db.url).await.unwrap())
    };
    let s = Arc::new(setup(steward.addr, &o, &peer).await);

    if o.worker_during_burst {
        steward.start_worker(Duration::from_millis(o.worker_poll_ms));
    }
    println!("load average before the burst: {}", load_average());
    let cpu = CpuMeter::start(peer.pid());
    let (first, last) = burst(steward.addr, &o, &s).await;
    println!(
        "burst: {n} adminAdd requests answered 201 in {:.2} s ({:.0} requests/s) on {} connections",
        secs(last - first),
        n as f64 / secs(last - first),
        o.http_connections
    );
    let burst_cpu = cpu.stop();
    if !o.worker_during_burst {
        println!("burst: {burst_cpu}");
    }
    let waiting = count(&driver, "SELECT COUNT(*) FROM jobs WHERE kind = 'deliver'").await;
    println!("burst: {waiting} delivery jobs queued when the last answer came");

    println!("load average before delivery: {}", load_average());
    let cpu = if o.worker_during_burst { cpu } else { CpuMeter::start(peer.pid()) };
    let worker_start = if o.worker_during_burst {
        first
    } else {
        let t = wall_us();
        steward.start_worker(Duration::from_millis(o.worker_poll_ms));
        t
    };
    wait_delivered(&driver, n, Duration::from_secs(o.timeout_secs)).await;
    let used = cpu.stop();

    // Outcome, from the store.
    let rows = driver.fetch("SELECT state, COUNT(*) FROM assignment_requests GROUP BY state", &[]).await.unwrap();
    let states: BTreeMap<String, i64> = rows.iter().map(|r| (cell_text(r.0.first()), cell_int(r.0.get(1)))).collect();
    let rows = driver
        .fetch("SELECT completed_at FROM assignment_requests WHERE state = 'delivered' ORDER BY completed_at", &[])
        .await
        .unwrap();
    let done: Vec<i64> = rows.iter().map(|r| cell_int(r.0.first())).collect();
    let delivered = done.len();
    let end = done.last().copied().unwrap_or(worker_start);
    println!("outcome: requests by state {states:?}");
    if delivered < n {
        let rows = driver
            .fetch("SELECT state, attempts, detail FROM deliveries WHERE state <> 'done' LIMIT 5", &[])
            .await
            .unwrap();
        for r in rows {
            println!(
                "  not done: {} after {} attempt(s): {}",
                cell_text(r.0.first()),
                cell_int(r.0.get(1)),
                cell_text(r.0.get(2))
            );
        }
    }

    // The peer, read directly.
    let (members, seeded, checked) = peer.members(n).await;
    println!(
        "peer: the group has {members} members = {} delivered + {seeded} seeded: {}; {checked}",
        members as i64 - seeded as i64,
        if members == n + seeded { "as expected" } else { "MISMATCH" }
    );

    let delivery = end - worker_start;
    println!("figures ({} target, {}):", o.target, if db.is_pg() { "PostgreSQL" } else { "SQLite" });
    println!(
        "  end to end (first POST sent -> last request delivered): {:.2} s = {:.0} assignments/s",
        secs(end - first),
        delivered as f64 / secs(end - first)
    );
    if o.worker_during_burst {
        println!("  after the last POST was answered: {:.2} s", secs(end - last));
    } else {
        println!(
            "  delivery (worker started -> last request delivered): {:.2} s = {:.0} grants/s",
            secs(delivery),
            delivered as f64 / secs(delivery)
        );
    }
    // How the rate changed as the group grew: each quarter of the deliveries. A wave of
    // deliveries shares one `completed_at`, so small counts make this lumpy.
    if delivered >= 4 {
        let mut prev = worker_start;
        let mut parts = Vec::new();
        for q in 1..=4 {
            let at = done[q * delivered / 4 - 1];
            let k = q * delivered / 4 - (q - 1) * delivered / 4;
            parts.push(format!("{:.0} at {:.1} s", k as f64 / secs((at - prev).max(1_000)), secs(at - worker_start)));
            prev = at;
        }
        println!("  grants/s by quarter of the deliveries (and when each quarter was done): {}", parts.join(", "));
    }
    println!("  {used}");
    println!("load average after: {}", load_average());

    if o.reconcile {
        reconcile(&steward, &peer, n, seeded).await;
    }

    drop(driver);
    steward.stop().await;
    drop(peer);
    db.remove().await;
}
