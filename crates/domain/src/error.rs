//! The domain's own error: a rule was broken or a value did not parse.

/// A broken rule or an unparsable value, with a message meant for the API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A value does not have the required form (bad id, too long a name, unknown enum member).
    #[error("{0}")]
    Invalid(String),
    /// The request is well formed but breaks a rule of the model (a package incompatible with
    /// itself, a role from another catalog, a user managing themselves).
    #[error("{0}")]
    Rule(String),
    /// The operation conflicts with the current state (deleting a catalog that still holds packages).
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
    pub fn rule(message: impl Into<String>) -> Self {
        Self::Rule(message.into())
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
}
