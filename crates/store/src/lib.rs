//! The `Store` port on SQLite and PostgreSQL. One implementation of the store's logic
//! (`SqlStore`) runs the same SQL text on both databases through a thin `Driver` per backend;
//! the two migration trees keep the same version numbers and the same tables and columns.
//!
//! Portability choices, so no query needs a dialect branch: ids are GUID text, timestamps are
//! unix microseconds (BIGINT) taken from the application's clock, booleans are `BOOLEAN`,
//! placeholders are `$n` (which sqlx's SQLite driver accepts too), and every PostgreSQL text
//! column uses the "C" collation so both databases order and compare strings bytewise.
//!
//! Case-insensitive comparisons never use the database's `lower()` (ASCII-only on SQLite,
//! collation-dependent on PostgreSQL). Each filterable text column has a folded companion
//! (`*_fold`, or `upn_key` for the userPrincipalName) that the store fills with Rust's
//! `str::to_lowercase` on every write, null exactly when the value is; the compiler compares
//! those columns with literals folded the same way, so both databases agree with Rust to the
//! letter. `steward_app::query::Field::fold` names the companion of each property, and
//! `SqlStore::fold_missing` (run by `open` after migrating) folds rows written before the
//! columns existed.

mod compile;
mod driver;
mod lifecycle;
mod postgres;
mod requestors;
mod rows;
mod rule_sql;
mod sql_store;
mod sqlite;

pub use driver::{Cell, Driver, Param, Row, Tx};
pub use postgres::PgDriver;
pub use sql_store::{JobsQueued, SqlStore};
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
    let store = SqlStore::new(driver.clone());
    if migrate {
        driver.migrate().await?;
        let folded = store.fold_missing().await?;
        if folded > 0 {
            tracing::info!(rows = folded, "filled the case-folded text columns of existing rows");
        }
        let indexed = store.index_missing_requestors().await?;
        if indexed > 0 {
            tracing::info!(policies = indexed, "indexed who may request the packages of existing policies");
        }
    }
    Ok(store)
}

/// The (version, description) list of a migration tree, for the parity test and `migrate`.
pub fn migration_list(postgres: bool) -> Vec<(i64, String)> {
    let m = if postgres { postgres::migrator() } else { sqlite::migrator() };
    m.iter().map(|m| (m.version, m.description.to_string())).collect()
}
