//! Backends for the contract suite: a fresh SQLite file, or a fresh PostgreSQL database on the
//! server `DATABASE_URL` names (a superuser URL; the test command sets it). A missing
//! `DATABASE_URL` fails the PostgreSQL tests: they never skip.
//!
//! Each case runs in its own task, so a failing case still gets its file or database removed
//! before the panic is passed on.
//!
//! The PostgreSQL databases are created with the ICU `en-US` collation as their default (when
//! the server has ICU), the way many production clusters are set up, so the suite catches any
//! query whose result depends on the server's default collation instead of the store's own
//! choices (SQLite and PostgreSQL must order and match text the same way).

use std::future::Future;

use sqlx::Connection;
use steward_store::SqlStore;

/// Which database a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

struct Backend {
    store: SqlStore,
    cleanup: Cleanup,
}

pub enum Cleanup {
    File(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

impl Cleanup {
    /// Removes the file or database.
    pub async fn run(self) {
        match self {
            Cleanup::File(p) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
                }
            }
            Cleanup::Database { admin_url, name } => drop_database(&admin_url, &name).await,
        }
    }
}

/// Runs one contract case on a fresh, migrated store of `kind`, then removes the database,
/// whether the case passed or panicked.
pub async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(SqlStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let backend = match kind {
        Kind::Sqlite => sqlite().await,
        Kind::Postgres => postgres().await,
    };
    let outcome = tokio::spawn(case(backend.store.clone())).await;
    backend.finish().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("the case did not finish: {e}"),
        }
    }
}

async fn sqlite() -> Backend {
    let (url, cleanup) = empty_database(Kind::Sqlite).await;
    let store = steward_store::open(&url, true).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    Backend { store, cleanup }
}

/// The URL of database `name` on the server `url` points at: the path replaced, any
/// `?options` kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn postgres() -> Backend {
    let (url, cleanup) = empty_database(Kind::Postgres).await;
    let store = match steward_store::open(&url, true).await {
        Ok(s) => s,
        Err(e) => {
            cleanup.run().await;
            panic!("cannot open the store on {url}: {e}");
        }
    };
    Backend { store, cleanup }
}

/// A new, empty database of `kind` (no migrations run) and how to remove it.
pub async fn empty_database(kind: Kind) -> (String, Cleanup) {
    if kind == Kind::Sqlite {
        let path = std::env::temp_dir().join(format!("steward-t-{}.db", uuid::Uuid::new_v4().simple()));
        return (format!("sqlite://{}", path.display()), Cleanup::File(path));
    }
    let admin_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| {
        panic!("DATABASE_URL must point at a PostgreSQL superuser connection; the test command sets it")
    });
    let name = format!("steward_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL (a PostgreSQL superuser URL): {e}"));
    let icu: bool = sqlx::query_scalar(
        "SELECT current_setting('server_version_num')::int >= 150000 \
         AND EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'en-US-x-icu')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let create = if icu {
        format!("CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
    } else {
        format!("CREATE DATABASE {name}")
    };
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create {name}: {e}"));
    let _ = admin.close().await;
    (with_database(&admin_url, &name), Cleanup::Database { admin_url, name })
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut admin)
            .await;
        let _ = admin.close().await;
    }
}

impl Backend {
    async fn finish(self) {
        drop(self.store);
        self.cleanup.run().await;
    }
}

#[test]
fn database_urls_are_rewritten() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
    assert_eq!(with_database("postgresql://h:5432", "x"), "postgresql://h:5432/x");
}
