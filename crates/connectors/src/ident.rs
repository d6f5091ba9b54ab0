//! How a Steward user is named in a target system, and how such names are made safe to put
//! in a statement: PostgreSQL identifiers are quoted, never interpolated as they come.

use serde::{Deserialize, Serialize};
use steward_domain::directory::User;

/// Which of a user's attributes is their name in the target system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserKey {
    /// `alice@contoso.com`
    #[default]
    UserPrincipalName,
    /// The part of the user principal name before `@`: `alice`.
    UserPrincipalNamePrefix,
    Mail,
    EmployeeId,
}

impl UserKey {
    /// The user's name under this key, or why there is none.
    pub fn of(self, user: &User) -> Result<String, String> {
        let value = match self {
            Self::UserPrincipalName => Some(user.user_principal_name.clone()),
            Self::UserPrincipalNamePrefix => {
                user.user_principal_name.split('@').next().map(str::to_owned).filter(|s| !s.is_empty())
            }
            Self::Mail => user.mail.clone(),
            Self::EmployeeId => user.employee_id.clone(),
        };
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            format!("user '{}' has no {} to name them in the target system", user.user_principal_name, self.label())
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::UserPrincipalName => "userPrincipalName",
            Self::UserPrincipalNamePrefix => "userPrincipalName",
            Self::Mail => "mail",
            Self::EmployeeId => "employeeId",
        }
    }
}

/// The longest PostgreSQL identifier, in bytes (`NAMEDATALEN - 1` in a default build). A longer
/// name is silently truncated by the server, which could make it name a different role, so it
/// is refused instead.
pub const PG_IDENT_MAX: usize = 63;

/// `name` as a quoted PostgreSQL identifier: in double quotes, each `"` doubled. Refuses what
/// no identifier can hold (empty, a NUL byte) and what the server would truncate.
pub fn pg_quote(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("a role name cannot be empty".into());
    }
    if name.contains('\0') {
        return Err("a role name cannot contain a NUL character".into());
    }
    if name.len() > PG_IDENT_MAX {
        return Err(format!(
            "the role name '{}…' is longer than PostgreSQL's {PG_IDENT_MAX} bytes",
            name.chars().take(20).collect::<String>()
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes_and_refuses_what_cannot_be_a_name() {
        assert_eq!(pg_quote("analytics").unwrap(), "\"analytics\"");
        assert_eq!(pg_quote("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(pg_quote("x\"; DROP ROLE y; --").unwrap(), "\"x\"\"; DROP ROLE y; --\"");
        assert!(pg_quote("").is_err());
        assert!(pg_quote("a\0b").is_err());
        assert!(pg_quote(&"r".repeat(63)).is_ok());
        assert!(pg_quote(&"r".repeat(64)).is_err());
        assert!(pg_quote(&"é".repeat(32)).is_err(), "64 bytes in 32 characters");
    }
}
