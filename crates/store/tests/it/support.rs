//! Backends for the contract suite: a fresh SQLite file, or a fresh PostgreSQL database on the
//! server `DATABASE_URL` names (a superuser URL; the test command sets it). A missing
//! `DATABASE_URL` fails the PostgreSQL tests: they never skip.

use steward_store::SqlStore;

pub struct Backend {
    pub store: SqlStore,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

pub async fn sqlite() -> Backend {
    let path = std::env::temp_dir().join(format!("steward-it-{}.db", uuid::Uuid::new_v4().simple()));
    let store = steward_store::open(&format!("sqlite://{}", path.display()), true).await.expect("open SQLite");
    Backend { store, cleanup: Cleanup::File(path) }
}

pub async fn postgres() -> Backend {
    let admin_url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must point at a PostgreSQL superuser connection; the test command (scripts/test.sh) sets it",
    );
    let name = format!("steward_it_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("DATABASE_URL names a database");
    let store = steward_store::open(&format!("{base}/{name}"), true).await.expect("open PostgreSQL");
    Backend { store, cleanup: Cleanup::Database { admin_url, name } }
}

impl Backend {
    pub async fn finish(self) {
        drop(self.store);
        match self.cleanup {
            Cleanup::File(p) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
                }
            }
            Cleanup::Database { admin_url, name } => {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&admin)
                        .await;
                }
            }
        }
    }
}
