//! The SQLite backend: one database file in WAL mode, write transactions opened with
//! `BEGIN IMMEDIATE` so a read-then-write never fails with SQLITE_BUSY half way.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row as _, Sqlite, SqlitePool, Transaction, TypeInfo, ValueRef};
use steward_app::StoreError;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::driver::{Cell, Driver, Param, Row, Tx, bind_params, map_err};

pub(crate) fn migrator() -> &'static sqlx::migrate::Migrator {
    static M: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
    &M
}

pub struct SqliteDriver {
    pool: SqlitePool,
    /// Taken by every write (a transaction, or a statement on its own) for as long as it
    /// runs. SQLite has one writer at a time; without this, writers of this process would
    /// meet at `BEGIN IMMEDIATE`, and SQLite's busy handler makes the losers sleep (1, 2,
    /// 5, 10 … ms) and retry. Queued here they start the moment the lock is free. Other
    /// processes on the same file still meet the busy timeout.
    writer: Arc<Mutex<()>>,
}

impl SqliteDriver {
    /// Opens (creating if missing) the database at `url`: `sqlite:PATH`, `sqlite://PATH`,
    /// `sqlite::memory:` (a single connection) or a bare file path.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let memory = url.contains(":memory:");
        let opts = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(format!("bad SQLite URL: {e}")))?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let opts = opts
            .create_if_missing(true)
            .journal_mode(if memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 8 })
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database: {e}")))?;
        Ok(Self { pool, writer: Arc::default() })
    }
}

fn cells(row: &SqliteRow) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.columns().len());
    for i in 0..row.columns().len() {
        let kind = {
            let raw = row.try_get_raw(i).map_err(map_err)?;
            if raw.is_null() { None } else { Some(raw.type_info().name().to_owned()) }
        };
        out.push(match kind.as_deref() {
            None => Cell::Null,
            Some("INTEGER" | "BOOLEAN" | "INT4" | "INT8" | "BIGINT") => {
                Cell::Int(row.try_get::<i64, _>(i).map_err(map_err)?)
            }
            Some(_) => Cell::Text(row.try_get::<String, _>(i).map_err(map_err)?),
        });
    }
    Ok(Row(out))
}

#[async_trait]
impl Driver for SqliteDriver {
    async fn migrate(&self) -> Result<(), StoreError> {
        migrator().run(&self.pool).await.map_err(|e| StoreError::Internal(format!("SQLite migration failed: {e}")))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(map_err)
    }

    async fn fetch(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let q = bind_params(sqlx::query::<Sqlite>(AssertSqlSafe(sql.to_owned())), params)?;
        let rows = q.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(cells).collect()
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let _writing = self.writer.lock().await;
        let q = bind_params(sqlx::query::<Sqlite>(AssertSqlSafe(sql.to_owned())), params)?;
        Ok(q.execute(&self.pool).await.map_err(map_err)?.rows_affected())
    }

    fn text_set(&self, placeholder: &str) -> String {
        format!("SELECT value FROM json_each({placeholder})")
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        let writing = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        Ok(Box::new(SqliteTx { tx, _writing: writing }))
    }
}

/// A write transaction and this process's write turn, released together.
struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    _writing: OwnedMutexGuard<()>,
}

#[async_trait]
impl Tx for SqliteTx {
    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let q = bind_params(sqlx::query::<Sqlite>(AssertSqlSafe(sql.to_owned())), params)?;
        let rows = q.fetch_all(&mut *self.tx).await.map_err(map_err)?;
        rows.iter().map(cells).collect()
    }

    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let q = bind_params(sqlx::query::<Sqlite>(AssertSqlSafe(sql.to_owned())), params)?;
        Ok(q.execute(&mut *self.tx).await.map_err(map_err)?.rows_affected())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(map_err)
    }
}
