//! The built-in directory: users and groups in Graph's shapes, and the rules on their fields.

use jiff::Timestamp;
use serde::Serialize;

use crate::DomainError;
use crate::enums::UserType;
use crate::ids::{GroupId, UserId};
use crate::text::DisplayName;

/// Longest userPrincipalName Graph accepts (113 for the local part plus domain is the
/// documented cap on the whole value).
pub const UPN_MAX: usize = 113;
/// Longest value of the short free-text attributes (department, jobTitle, ...).
pub const ATTRIBUTE_MAX: usize = 256;

/// A directory user. The manager is kept beside the user but, as in Graph, only shown through
/// `/users/{id}/manager` or `$expand=manager`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub display_name: DisplayName,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub user_type: UserType,
    pub account_enabled: bool,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    pub employee_id: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
    #[serde(skip)]
    pub manager: Option<UserId>,
}

/// A directory group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: GroupId,
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
}

/// Validates a userPrincipalName: `local@domain`, no spaces, bounded.
pub fn parse_upn(s: &str) -> Result<String, DomainError> {
    let ok = s.len() <= UPN_MAX
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(DomainError::invalid(format!(
            "userPrincipalName '{}' is not valid: expected alias@domain, without spaces, at most {UPN_MAX} characters.",
            crate::text::clip(s, 120)
        )))
    }
}

/// Validates a group's mailNickname: ASCII, no spaces or `@`, 1 to 64 characters.
pub fn parse_mail_nickname(s: &str) -> Result<String, DomainError> {
    let ok =
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic() && !b"@()\\[]\";:<>,".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(DomainError::invalid(format!(
            "mailNickname '{}' is not valid: 1 to 64 ASCII characters without spaces or any of @()\\[]\";:<>,",
            crate::text::clip(s, 80)
        )))
    }
}

/// Derives a mailNickname from a display name when a client leaves it out.
pub fn nickname_from(name: &DisplayName) -> String {
    let s: String = name
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.')
        .take(64)
        .collect();
    if s.is_empty() { "group".to_owned() } else { s }
}

/// A user cannot be their own manager.
pub fn check_manager(user: UserId, manager: UserId) -> Result<(), DomainError> {
    if user == manager { Err(DomainError::rule("A user cannot be their own manager.")) } else { Ok(()) }
}

/// A user cannot sponsor themselves.
pub fn check_sponsor(user: UserId, sponsor: UserId) -> Result<(), DomainError> {
    if user == sponsor { Err(DomainError::rule("A user cannot sponsor themselves.")) } else { Ok(()) }
}

/// A group that is a resource in some catalog stays until it is removed from them, so no
/// access package silently loses what it grants.
pub fn check_group_deletable(catalog_resources: u64) -> Result<(), DomainError> {
    if catalog_resources == 0 {
        Ok(())
    } else {
        Err(DomainError::conflict(format!(
            "The group is a resource in {catalog_resources} catalog(s); remove it from them (resourceRequests adminRemove) before deleting it."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_rules() {
        assert!(parse_upn("adele@contoso.com").is_ok());
        assert!(parse_upn("adele").is_err());
        assert!(parse_upn("a b@contoso.com").is_err());
        assert!(parse_upn("@contoso.com").is_err());
        assert!(parse_upn(&format!("{}@x.io", "a".repeat(120))).is_err());
    }

    #[test]
    fn nickname_rules() {
        assert!(parse_mail_nickname("sales-team").is_ok());
        assert!(parse_mail_nickname("sales team").is_err());
        assert!(parse_mail_nickname("").is_err());
        let n = nickname_from(&DisplayName::parse("Sales Team (EU)").unwrap());
        assert_eq!(n, "SalesTeamEU");
    }

    #[test]
    fn no_self_management() {
        let u = UserId::new();
        assert!(check_manager(u, u).is_err());
        assert!(check_manager(u, UserId::new()).is_ok());
    }

    #[test]
    fn groups_in_catalogs_stay() {
        assert!(check_group_deletable(0).is_ok());
        assert!(matches!(check_group_deletable(1), Err(DomainError::Conflict(_))));
    }
}
