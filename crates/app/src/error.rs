//! The application layer's error: what went wrong in terms a caller can act on. The web layer
//! maps it to an HTTP status and Graph's error shape in exactly one place.

use steward_domain::DomainError;

use crate::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body or a parameter is malformed or breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// A query option is malformed or names something unknown (400), with Graph's error code.
    #[error("{message}")]
    Query { code: &'static str, message: String },
    /// The addressed object does not exist (404).
    #[error("{kind} '{id}' was not found.")]
    NotFound { kind: &'static str, id: String },
    /// The action conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is well formed but breaks a rule of the model (422).
    #[error("{0}")]
    Unprocessable(String),
    /// An `If-Match` precondition does not hold: the object changed since the caller read it (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The caller is known but may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The caller's sign-in does not meet a policy's conditional requirements (403): the
    /// conditions not met, and what to ask the identity provider for to meet them.
    #[error("{message}")]
    ConditionsNotMet { message: String, unmet: Vec<&'static str>, acr_values: Option<String>, max_age: Option<u64> },
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// A target system that Steward called failed or could not be reached (502); the message
    /// says which and why, never with a credential in it.
    #[error("{0}")]
    Upstream(String),
    /// The store failed; the detail is logged, never sent.
    #[error(transparent)]
    Store(StoreError),
}

impl AppError {
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(m) => Self::Invalid(m),
            DomainError::Rule(m) => Self::Unprocessable(m),
            DomainError::Conflict(m) => Self::Conflict(m),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::NotFound { kind, id } => Self::NotFound { kind, id },
            StoreError::Rule(d) => d.into(),
            other => Self::Store(other),
        }
    }
}

impl From<steward_odata::ODataError> for AppError {
    fn from(e: steward_odata::ODataError) -> Self {
        Self::Query { code: e.code, message: e.message }
    }
}
