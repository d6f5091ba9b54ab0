//! The PostgreSQL backend: a connection pool, plain `BEGIN` write transactions (row locks and
//! constraint checks do the serialising), the same SQL text as SQLite.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{AssertSqlSafe, Column, PgPool, Postgres, Row as _, Transaction, TypeInfo, ValueRef};
use steward_app::StoreError;

use crate::driver::{Cell, Driver, Param, Row, Tx, bind_scalar, map_err};

pub(crate) fn migrator() -> &'static sqlx::migrate::Migrator {
    static M: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
    &M
}

pub struct PgDriver {
    pool: PgPool,
}

impl PgDriver {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut opts =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
        let chosen = url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
        if !chosen && is_loopback(opts.get_host()) {
            opts = opts.ssl_mode(PgSslMode::Disable);
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(Self { pool })
    }
}

/// Whether `host` is this machine. A PostgreSQL URL naming it without an `sslmode` (nor
/// `PGSSLMODE`) connects without TLS: TLS on loopback protects nothing, and with sqlx 0.9.0,
/// which no longer sets `TCP_NODELAY` (sqlx issue #4335), every message larger than one TLS
/// record waits 40 ms for the server's delayed ACK (docs/BENCHMARKS.md, access reviews). A URL
/// that says `sslmode=require` (or any mode) keeps it.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.starts_with('/')
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn cells(row: &PgRow) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let null = row.try_get_raw(i).map_err(map_err)?.is_null();
        out.push(if null {
            Cell::Null
        } else {
            match col.type_info().name() {
                "INT8" => Cell::Int(row.try_get::<i64, _>(i).map_err(map_err)?),
                "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i).map_err(map_err)?)),
                "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i).map_err(map_err)?)),
                "BOOL" => Cell::Bool(row.try_get::<bool, _>(i).map_err(map_err)?),
                _ => Cell::Text(row.try_get::<String, _>(i).map_err(map_err)?),
            }
        });
    }
    Ok(Row(out))
}

#[async_trait]
impl Driver for PgDriver {
    async fn migrate(&self) -> Result<(), StoreError> {
        migrator().run(&self.pool).await.map_err(|e| StoreError::Internal(format!("PostgreSQL migration failed: {e}")))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(map_err)
    }

    async fn fetch(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let q = bind_pg(sqlx::query::<Postgres>(AssertSqlSafe(sql.to_owned())), params)?;
        let rows = q.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(cells).collect()
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let q = bind_pg(sqlx::query::<Postgres>(AssertSqlSafe(sql.to_owned())), params)?;
        Ok(q.execute(&self.pool).await.map_err(map_err)?.rows_affected())
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        let tx = self.pool.begin().await.map_err(map_err)?;
        Ok(Box::new(PgTx(tx)))
    }

    fn concurrent_writers(&self) -> bool {
        true
    }

    fn arrays(&self) -> bool {
        true
    }

    fn text_set(&self, placeholder: &str) -> String {
        format!("SELECT value FROM jsonb_array_elements_text(CAST({placeholder} AS jsonb))")
    }
}

/// Binds parameters, arrays included (`text[]`, `bigint[]`).
fn bind_pg<'q>(
    mut q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    params: &[Param],
) -> Result<sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>, StoreError> {
    for p in params {
        q = match p {
            Param::Texts(v) => q.bind(v.clone()),
            Param::Ints(v) => q.bind(v.clone()),
            other => bind_scalar(q, other)?,
        };
    }
    Ok(q)
}

struct PgTx(Transaction<'static, Postgres>);

#[async_trait]
impl Tx for PgTx {
    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let q = bind_pg(sqlx::query::<Postgres>(AssertSqlSafe(sql.to_owned())), params)?;
        let rows = q.fetch_all(&mut *self.0).await.map_err(map_err)?;
        rows.iter().map(cells).collect()
    }

    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let q = bind_pg(sqlx::query::<Postgres>(AssertSqlSafe(sql.to_owned())), params)?;
        Ok(q.execute(&mut *self.0).await.map_err(map_err)?.rows_affected())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.commit().await.map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_this_machine_counts_as_loopback() {
        for h in ["localhost", "127.0.0.1", "127.8.9.1", "::1", "[::1]", "/var/run/postgresql"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["db.example.com", "10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
