//! The `Store` port on SQLite and PostgreSQL. One implementation of the store's logic
//! (`SqlStore`) runs the same SQL text on both databases through a thin `Driver` per backend;
//! the two migration trees keep the same version numbers and the same tables and columns.
//!
//! Portability choices, so no query needs a dialect branch: ids are GUID text, timestamps are
//! unix microseconds (BIGINT) taken from the application's clock, booleans are `BOOLEAN`,
//! placeholders are `$n` (which sqlx's SQLite driver accepts too), and PostgreSQL text columns
//! that are sorted on use the "C" collation so both databases order strings bytewise.

mod compile;
mod driver;
mod lifecycle;
mod postgres;
mod rows;
mod sql_store;
mod sqlite;

pub use driver::{Driver, Param};
pub use postgres::PgDriver;
pub use sql_store::SqlStore;
pub use sqlite::SqliteDriver;

use std::sync::Arc;

use steward_app::StoreError;

/// Opens the store a URL names: `postgres://…` / `postgresql://…` for PostgreSQL, `sqlite:…`
/// (or a plain file path) for SQLite. Runs the migrations when `migrate` is set.
pub async fn open(url: &str, migrate: bool) -> Result<SqlStore, StoreError> {
    let driver: Arc<dyn Driver> = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PgDriver::connect(url).await?)
    } else {
        Arc::new(SqliteDriver::open(url).await?)
    };
    if migrate {
        driver.migrate().await?;
    }
    Ok(SqlStore::new(driver))
}

/// The (version, description) list of a migration tree, for the parity test and `migrate`.
pub fn migration_list(postgres: bool) -> Vec<(i64, String)> {
    let m = if postgres { postgres::migrator() } else { sqlite::migrator() };
    m.iter().map(|m| (m.version, m.description.to_string())).collect()
}
