//! The narrow waist between the store's logic and a database: run SQL text with typed
//! parameters, get rows of cells back, in or out of a write transaction.

use async_trait::async_trait;
use steward_app::StoreError;

/// A bound parameter. Typed even when null, because PostgreSQL checks a parameter's type
/// against its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
    /// A `text[]`, for bulk statements over `UNNEST` (PostgreSQL only).
    Texts(Vec<Option<String>>),
    /// A `bigint[]`, for bulk statements over `UNNEST` (PostgreSQL only).
    Ints(Vec<Option<i64>>),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Self::Text(Some(s.to_owned()))
    }
}
impl From<String> for Param {
    fn from(s: String) -> Self {
        Self::Text(Some(s))
    }
}
impl From<Option<String>> for Param {
    fn from(s: Option<String>) -> Self {
        Self::Text(s)
    }
}
impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<bool> for Param {
    fn from(v: bool) -> Self {
        Self::Bool(Some(v))
    }
}

/// One value read back from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
}

/// A row as cells in select-list order.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Cell>);

/// A database backend.
#[async_trait]
pub trait Driver: Send + Sync {
    /// Runs the backend's migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Runs a read outside any explicit transaction.
    async fn fetch(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError>;
    /// Runs one write statement on its own; returns the rows it touched. A single statement
    /// is atomic without an explicit transaction, and costs one round trip instead of three
    /// (`BEGIN`, the statement, `COMMIT`).
    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError>;
    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite).
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// A subquery yielding, as rows of one text column, the strings of the JSON array bound at
    /// `placeholder` (`$n`): how a list of any length travels as one parameter, so a query's
    /// text and parameter count do not grow with it.
    fn text_set(&self, placeholder: &str) -> String;
    /// Whether concurrent writers can run at once and queue claims need `FOR UPDATE SKIP
    /// LOCKED` (PostgreSQL); SQLite serializes writers, so it needs none.
    fn concurrent_writers(&self) -> bool {
        false
    }
    /// Whether array parameters (`Param::Texts`, `Param::Ints`) can be bound, so bulk writes
    /// can send one statement over `UNNEST` instead of many multi-row `VALUES` (PostgreSQL).
    fn arrays(&self) -> bool {
        false
    }
}

/// A write transaction; dropped without `commit` it rolls back.
#[async_trait]
pub trait Tx: Send {
    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError>;
    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError>;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The text of a `Conflict` that is a unique-constraint violation, before a caller relabels it.
pub(crate) const UNIQUE_VIOLATION: &str = "A unique constraint was violated.";
/// The text of a `Conflict` that is a foreign-key violation, before a caller relabels it: an
/// insert naming a row that does not exist, or a delete of a row that is still referenced.
pub(crate) const FOREIGN_KEY_VIOLATION: &str = "A foreign key constraint was violated.";

/// Maps a sqlx error to the store's error: constraint violations become `Conflict` with one of
/// the two texts above (callers tell them apart and replace the text with one that names the
/// object, or turn a missing reference into `NotFound`), connection trouble `Unavailable`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => StoreError::Conflict(UNIQUE_VIOLATION.into()),
            sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::Conflict(FOREIGN_KEY_VIOLATION.into()),
            _ => StoreError::Internal(db.to_string()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

/// Binds one scalar parameter, whatever the backend; arrays are the driver's business.
pub(crate) fn bind_scalar<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    p: &Param,
) -> Result<sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>, StoreError>
where
    DB: sqlx::Database,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<bool>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    Ok(match p {
        Param::Text(v) => q.bind(v.clone()),
        Param::Int(v) => q.bind(*v),
        Param::Bool(v) => q.bind(*v),
        Param::Texts(_) | Param::Ints(_) => {
            return Err(StoreError::Internal("array parameters are not supported by this database".into()));
        }
    })
}

/// Binds scalar parameters in order, whatever the backend.
pub(crate) fn bind_params<'q, DB>(
    mut q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    params: &[Param],
) -> Result<sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>, StoreError>
where
    DB: sqlx::Database,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<bool>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    for p in params {
        q = bind_scalar(q, p)?;
    }
    Ok(q)
}
