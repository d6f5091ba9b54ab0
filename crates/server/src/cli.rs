//! The command line: `serve`, `migrate`, `check-config`, `healthcheck`, `jobs`, `token`,
//! `connection` and `audit` (in `audit_cli`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use steward_app::auth::{self, local_operator};
use steward_app::{Services, SystemClock, directory};

use crate::config::{ALLOW_TEST_CLOCK, Config, LogFormat, Overrides, WorkerOverrides, test_clock_start};

#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    about = "Self-hosted entitlement management (access packages) with a Microsoft Graph v1.0-compatible API",
    long_about = "Steward bundles resource roles (groups, applications, sites, databases) into access \
                  packages kept in catalogs. Its REST API speaks Microsoft Graph v1.0's \
                  entitlement-management dialect, so Graph clients work against it.\n\n\
                  Configuration comes from built-in defaults, then a TOML file (--config, STEWARD_CONFIG or \
                  ./steward.toml), then STEWARD_* environment variables, then flags; flags win."
)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrations run first).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Print the merged configuration (secrets redacted) and exit.
    CheckConfig(ServeArgs),
    /// Exit 0 when the server at the configured (or given) address is ready, 1 otherwise.
    Healthcheck {
        /// Base URL of the server; defaults to http://<listen address>.
        #[arg(long)]
        url: Option<String>,
    },
    /// Print how many background jobs are queued: deliveries waiting or retrying, and the sweep.
    Jobs(DbArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage connections to delivery targets (PostgreSQL servers and LDAP directories for now).
    Connection {
        #[command(subcommand)]
        command: ConnectionCommand,
    },
    /// Verify the audit trail's hash chain, or export a period of it.
    Audit {
        #[command(subcommand)]
        command: crate::audit_cli::AuditCommand,
    },
}

#[derive(Debug, Args, Default)]
pub struct DbArgs {
    /// Database URL: postgres://… selects PostgreSQL; default: a SQLite file in the data directory.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Directory for the default SQLite database.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Externally visible base URL (https://steward.example.com): used in @odata.nextLink, as
    /// the origin cookie-authenticated requests must come from, and for the sign-in redirect
    /// <URL>/auth/callback (default: from the Host header; sign-in needs it).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (tls.cert_file); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (tls.key_file).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seed a small demo organization (idempotent).
    #[arg(long)]
    pub demo: bool,
    /// Log line format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Do not run the background job worker in this process (an API-only process); the same as
    /// worker.enabled = false. Deliveries, approval timeouts and expiries then need another
    /// process with the worker on.
    #[arg(long)]
    pub no_worker: bool,
    /// How long the worker waits, in milliseconds, before looking again when no job was due
    /// (worker.poll_interval_ms) [default: 200].
    #[arg(long, value_name = "MS")]
    pub worker_poll_ms: Option<u64>,
    /// FOR TESTS ONLY: run on a manual clock that starts at this RFC 3339 time and serve
    /// GET/POST /ops/clock (read, set, advance it) and POST /ops/jobs/drain (run every due job
    /// now), administrators only. Refused unless STEWARD_ALLOW_TEST_CLOCK=1 is set as well.
    #[arg(long, value_name = "RFC3339")]
    pub test_clock: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret once. Without --user or --role it is a
    /// global-administrator token.
    Create {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// Make a personal token acting as this user (id or userPrincipalName), with their roles.
        #[arg(long, value_name = "USER", conflicts_with = "role")]
        user: Option<String>,
        /// Make a machine token holding only this role: a role definition id, or one of
        /// catalog-owner, catalog-reader, access-package-manager, access-package-assignment-manager,
        /// catalog-creator, administrator.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
        /// The catalog a catalog role applies to (its id).
        #[arg(long, value_name = "CATALOG_ID", requires = "role")]
        catalog: Option<String>,
        /// Refuse the token after this many days.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token by id.
    Revoke {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Register a connection and print it. Credentials come from a file or standard input,
    /// never from the command line (where other users could read them).
    Add {
        /// A name to recognise the connection by.
        #[arg(long)]
        name: String,
        /// postgreSqlRoles, ldap or scim.
        #[arg(long)]
        kind: String,
        /// The connector's settings as a JSON object, or @FILE to read them from a file.
        #[arg(long)]
        settings: String,
        /// A JSON file holding the credentials, such as {"password": "…"}; `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        credentials_file: Option<PathBuf>,
        /// Minutes between reconciliation passes (0: only when asked for).
        #[arg(long, value_name = "MINUTES", default_value_t = steward_domain::connection::DEFAULT_RECONCILE_MINUTES)]
        reconcile_every: u32,
        /// Let reconciliation remove holders nobody granted through Steward (otherwise they are
        /// only reported as drift).
        #[arg(long)]
        authoritative: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List connections (never their credentials).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check that a connection's target answers and lets Steward act; exits 1 when it does not.
    Test {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the resources a connection's target offers (originId, then name), for resource requests.
    Discover {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Compare the target with what Steward granted there now: restore what was taken away,
    /// report what nobody granted (and remove it if the connection is authoritative).
    Reconcile {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Delete a connection no catalog holds a resource from.
    Remove {
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn overrides(a: &ServeArgs) -> Overrides {
    Overrides {
        listen: a.listen.clone(),
        data_dir: a.db.data_dir.clone(),
        database_url: a.db.database_url.clone(),
        public_url: a.public_url.clone(),
        demo: a.demo.then_some(true),
        log_format: a.log_format,
        log: None,
        worker: WorkerOverrides { enabled: a.no_worker.then_some(false), poll_interval_ms: a.worker_poll_ms },
        tls: match (&a.tls_cert, &a.tls_key) {
            (Some(cert_file), Some(key_file)) => {
                Some(crate::config::TlsConfig { cert_file: cert_file.clone(), key_file: key_file.clone() })
            }
            _ => None,
        },
    }
}

/// The test clock's start, from `--test-clock` and `STEWARD_ALLOW_TEST_CLOCK`.
fn test_clock(a: &ServeArgs) -> anyhow::Result<Option<jiff::Timestamp>> {
    let allow = std::env::var(ALLOW_TEST_CLOCK).ok();
    test_clock_start(a.test_clock.as_deref(), allow.as_deref())
}

pub(crate) fn db_overrides(a: &DbArgs) -> Overrides {
    Overrides { data_dir: a.data_dir.clone(), database_url: a.database_url.clone(), ..Overrides::default() }
}

/// Opens the configured store, creating the data directory for the default SQLite file.
pub async fn open_store(cfg: &Config, migrate: bool) -> anyhow::Result<steward_store::SqlStore> {
    let url = cfg.database_url();
    if !url.starts_with("postgres") {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    }
    steward_store::open(&url, migrate)
        .await
        .with_context(|| format!("cannot open database {}", crate::config::redact_url(&url)))
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = cli.config.as_deref();
    match cli.command {
        Command::Serve(a) => {
            let cfg = Config::load(file, overrides(&a))?;
            let clock = test_clock(&a)?;
            crate::serve::serve(cfg, clock).await?;
        }
        Command::CheckConfig(a) => {
            let cfg = Config::load(file, overrides(&a))?;
            let clock = test_clock(&a)?;
            print!("{}", cfg.redacted_toml());
            if let Some(t) = clock {
                println!("# --test-clock: a manual clock starting at {t} (tests only)");
            }
        }
        Command::Migrate(a) => {
            let cfg = Config::load(file, db_overrides(&a))?;
            open_store(&cfg, true).await?;
            let pg = cfg.database_url().starts_with("postgres");
            let list = steward_store::migration_list(pg);
            println!("database is at migration {}", list.last().map(|(v, d)| format!("{v} ({d})")).unwrap_or_default());
        }
        Command::Healthcheck { url } => {
            let cfg = Config::load(file, Overrides::default())?;
            let base = url.unwrap_or_else(|| format!("http://{}", cfg.listen));
            return Ok(match healthcheck(&base).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("not ready: {e:#}");
                    ExitCode::FAILURE
                }
            });
        }
        Command::Jobs(a) => {
            let cfg = Config::load(file, db_overrides(&a))?;
            let store = open_store(&cfg, true).await?;
            let n = steward_app::Store::pending_jobs(&store).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{n} job{} queued", if n == 1 { "" } else { "s" });
        }
        Command::Token { command } => token(file, command).await?,
        Command::Connection { command } => return connection(file, command).await,
        Command::Audit { command } => return crate::audit_cli::run(file, command).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// A role by id or by a short name.
fn role_named(s: &str) -> anyhow::Result<steward_domain::role::Role> {
    use steward_domain::role::Role;
    let by_name = match s.to_ascii_lowercase().replace('_', "-").as_str() {
        "administrator" => Some(Role::Administrator),
        "catalog-creator" => Some(Role::CatalogCreator),
        "catalog-owner" => Some(Role::CatalogOwner),
        "catalog-reader" => Some(Role::CatalogReader),
        "access-package-manager" => Some(Role::AccessPackageManager),
        "access-package-assignment-manager" => Some(Role::AccessPackageAssignmentManager),
        _ => None,
    };
    match by_name {
        Some(r) => Ok(r),
        None => s.parse().map_err(|e| anyhow::anyhow!("--role: {e}")),
    }
}

async fn token(file: Option<&std::path::Path>, cmd: TokenCommand) -> anyhow::Result<()> {
    let db = match &cmd {
        TokenCommand::Create { db, .. } | TokenCommand::List { db } | TokenCommand::Revoke { db, .. } => db,
    };
    let cfg = Config::load(file, db_overrides(db))?;
    let store = open_store(&cfg, true).await?;
    let services = Services::new(Arc::new(store), Arc::new(SystemClock));
    let cap = local_operator();
    match cmd {
        TokenCommand::Create { name, user, role, catalog, expires_in_days, .. } => {
            let holder = match (user, role) {
                (Some(key), _) => {
                    let reader = steward_app::auth::Principal::Admin { token: None }.directory_reader()?;
                    let u = directory::find_user(&services, reader, &key).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    auth::TokenHolder::User(u.id)
                }
                (None, Some(role)) => {
                    let role = role_named(&role)?;
                    let scope = match catalog {
                        Some(c) => steward_domain::role::AppScope::Catalog(
                            c.parse().map_err(|e| anyhow::anyhow!("--catalog: {e}"))?,
                        ),
                        None => steward_domain::role::AppScope::Tenant,
                    };
                    auth::TokenHolder::Role(role, scope)
                }
                (None, None) => auth::TokenHolder::Administrator,
            };
            let expires =
                expires_in_days.map(|d| services.clock.now() + jiff::SignedDuration::from_hours(24 * i64::from(d)));
            let (t, secret) =
                auth::create_token(&services, cap, &name, holder, expires).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let what = match (t.user_id, t.role) {
                (Some(_), _) => "personal".to_owned(),
                (None, Some((r, s))) => format!("{} ({s})", r.display_name()),
                (None, None) => "global-administrator".to_owned(),
            };
            eprintln!("Created {what} token '{}' (id {}). The secret is shown once; store it now:", t.name, t.id);
            println!("{}", secret.expose());
        }
        TokenCommand::List { .. } => {
            for t in services.store.list_tokens().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                let who = match (t.user_id, t.role) {
                    (Some(u), _) => format!("user {u}"),
                    (None, Some((r, s))) => format!("{} at {s}", r.display_name()),
                    (None, None) => "administrator".into(),
                };
                let expires = t.expires_at.map_or_else(|| "never".to_owned(), steward_domain::time::format_datetime);
                println!(
                    "{}\t{}\t{}\t{}\texpires {expires}",
                    t.id,
                    t.name,
                    who,
                    steward_domain::time::format_datetime(t.created_at)
                );
            }
        }
        TokenCommand::Revoke { id, .. } => {
            let id = id.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            services.store.delete_token(id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("revoked");
        }
    }
    Ok(())
}

async fn connection(file: Option<&std::path::Path>, cmd: ConnectionCommand) -> anyhow::Result<ExitCode> {
    use steward_app::connections::{self, Credentials, NewConnection};
    let db = match &cmd {
        ConnectionCommand::Add { db, .. }
        | ConnectionCommand::List { db }
        | ConnectionCommand::Test { db, .. }
        | ConnectionCommand::Discover { db, .. }
        | ConnectionCommand::Reconcile { db, .. }
        | ConnectionCommand::Remove { db, .. } => db,
    };
    let cfg = Config::load(file, db_overrides(db))?;
    let store = open_store(&cfg, true).await?;
    let services = Services::new(Arc::new(store), Arc::new(SystemClock))
        .with_connection_setup(crate::config::connection_setup(&cfg)?);
    let cap = local_operator();
    let fail = |e: steward_app::AppError| anyhow::anyhow!("{e}");
    let id = |raw: &str| raw.parse().map_err(|e| anyhow::anyhow!("{e}"));
    match cmd {
        ConnectionCommand::Add { name, kind, settings, credentials_file, reconcile_every, authoritative, .. } => {
            let settings = match settings.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
                None => settings,
            };
            let settings: serde_json::Value = serde_json::from_str(&settings).context("--settings is not JSON")?;
            let credentials = match credentials_file {
                Some(path) => {
                    let text = if path.as_os_str() == "-" {
                        let mut s = String::new();
                        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                            .context("cannot read the credentials from standard input")?;
                        s
                    } else {
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
                    };
                    // Not echoed on error: it holds secrets.
                    let v: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|_| anyhow::anyhow!("the credentials are not a JSON object"))?;
                    Some(Credentials::from_json(&v).map_err(fail)?)
                }
                None => None,
            };
            let new = NewConnection {
                display_name: steward_domain::text::DisplayName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?,
                description: None,
                kind: kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
                settings,
                credentials,
                reconciliation: steward_domain::connection::Reconciliation::parse(
                    &serde_json::json!({"intervalMinutes": reconcile_every, "authoritative": authoritative}),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            let c = connections::create_connection(&services, cap, new).await.map_err(fail)?;
            eprintln!("Created connection '{}' (id {}).", c.display_name.as_str(), c.id);
            println!("{}", c.id);
        }
        ConnectionCommand::List { .. } => {
            for c in connections::list_connections(&services, cap).await.map_err(fail)? {
                let creds = if c.has_credentials { "credentials" } else { "no credentials" };
                println!("{}\t{}\t{}\t{creds}", c.id, c.display_name.as_str(), c.kind);
            }
        }
        ConnectionCommand::Test { id: raw, .. } => {
            let outcome = connections::test_connection(&services, cap, id(&raw)?).await.map_err(fail)?;
            println!("{}", outcome.message);
            if !outcome.succeeded {
                return Ok(ExitCode::FAILURE);
            }
        }
        ConnectionCommand::Discover { id: raw, .. } => {
            for r in connections::discover(&services, cap, id(&raw)?).await.map_err(fail)?.1 {
                println!("{}\t{}", r.origin_id, r.display_name);
            }
        }
        ConnectionCommand::Reconcile { id: raw, .. } => {
            let r = steward_app::reconcile::reconcile_now(&services, cap, id(&raw)?).await.map_err(fail)?;
            println!(
                "{} role(s) compared: {} restored, {} holder(s) nobody granted (drift), {} removed",
                r.roles, r.restored, r.drift, r.removed
            );
            for f in &r.failures {
                eprintln!("failed: {f}");
            }
            if !r.failures.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        ConnectionCommand::Remove { id: raw, .. } => {
            connections::delete_connection(&services, cap, id(&raw)?, None).await.map_err(fail)?;
            eprintln!("removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `GET /readyz` over a plain TCP connection (no HTTP client needed for one request).
async fn healthcheck(base: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hostport = base.strip_prefix("http://").context("healthcheck speaks plain http:// only")?.trim_end_matches('/');
    let fut = async {
        let mut s =
            tokio::net::TcpStream::connect(hostport).await.with_context(|| format!("cannot connect to {hostport}"))?;
        s.write_all(format!("GET /readyz HTTP/1.0\r\nHost: {hostport}\r\n\r\n").as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let head = String::from_utf8_lossy(&buf);
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status == "200" { Ok(()) } else { bail!("readyz answered {status}") }
    };
    tokio::time::timeout(Duration::from_secs(5), fut).await.context("timed out")?
}
