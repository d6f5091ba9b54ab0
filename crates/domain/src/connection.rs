//! Connections: how Steward reaches a delivery target (a PostgreSQL server, an LDAP
//! directory, a SCIM application). A connection holds its connector's settings, which carry
//! no secret, and says whether credentials are stored; the credentials themselves are sealed
//! and kept apart, never part of this value. Resources from a connection name it in their
//! origin id: `<connection id>:<the target's own id>`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::enums::ConnectionKind;
use crate::error::DomainError;
use crate::ids::ConnectionId;
use crate::text::DisplayName;

/// A configured connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: ConnectionId,
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub kind: ConnectionKind,
    /// The connector's settings, checked by the connector of `kind` when written.
    pub settings: serde_json::Value,
    /// Whether credentials are stored (they are never read back out through the API).
    pub has_credentials: bool,
    pub reconciliation: Reconciliation,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
    #[serde(with = "crate::time::serde_ts")]
    pub modified_date_time: Timestamp,
}

/// How Steward compares the target with what it granted there (beyond Graph): every
/// `interval_minutes` (0: never on its own; an administrator can still ask for a pass),
/// access Steward granted and someone took away is restored, and holders nobody granted
/// through Steward are reported as drift and, only if `authoritative`, removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reconciliation {
    #[serde(default = "default_interval")]
    pub interval_minutes: u32,
    #[serde(default)]
    pub authoritative: bool,
}

/// A pass an hour unless said otherwise.
pub const DEFAULT_RECONCILE_MINUTES: u32 = 60;
/// At most a pass a minute, at least one a year.
pub const MAX_RECONCILE_MINUTES: u32 = 366 * 24 * 60;

fn default_interval() -> u32 {
    DEFAULT_RECONCILE_MINUTES
}

impl Default for Reconciliation {
    fn default() -> Self {
        Self { interval_minutes: DEFAULT_RECONCILE_MINUTES, authoritative: false }
    }
}

impl Reconciliation {
    /// Parses and checks the `reconciliation` property of a connection.
    pub fn parse(v: &serde_json::Value) -> Result<Self, DomainError> {
        let r: Self = serde_json::from_value(v.clone()).map_err(|e| {
            DomainError::invalid(format!(
                "reconciliation must be {{\"intervalMinutes\": <minutes, 0 for never>, \"authoritative\": <bool>}}: {e}"
            ))
        })?;
        if r.interval_minutes > MAX_RECONCILE_MINUTES {
            return Err(DomainError::invalid(format!(
                "reconciliation.intervalMinutes must be at most {MAX_RECONCILE_MINUTES} (a year)."
            )));
        }
        Ok(r)
    }

    /// When the pass after one at `now` is due, if passes run on their own.
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        (self.interval_minutes > 0)
            .then(|| now.saturating_add(jiff::SignedDuration::from_mins(i64::from(self.interval_minutes))).ok())
            .flatten()
    }
}

/// The largest settings document, in bytes of JSON.
pub const SETTINGS_MAX: usize = 16 * 1024;

/// Refuses settings that are not a JSON object or are too large to be settings.
pub fn check_settings_shape(settings: &serde_json::Value) -> Result<(), DomainError> {
    if !settings.is_object() {
        return Err(DomainError::invalid("settings must be a JSON object.".to_owned()));
    }
    if settings.to_string().len() > SETTINGS_MAX {
        return Err(DomainError::invalid(format!("settings must be at most {SETTINGS_MAX} bytes of JSON.")));
    }
    Ok(())
}

/// The `originSystem` of resources from connections of `kind`.
pub const fn origin_system(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::PostgreSqlRoles => "PostgreSqlRole",
        ConnectionKind::Ldap => "LdapGroup",
        ConnectionKind::Scim => "ScimGroup",
    }
}

/// The origin id of a target object reached through `connection`.
pub fn origin_id(connection: ConnectionId, object: &str) -> String {
    format!("{connection}:{object}")
}

/// The connection and the target's own id in an origin id made by `origin_id`.
pub fn split_origin_id(origin_id: &str) -> Option<(ConnectionId, &str)> {
    let (conn, object) = origin_id.split_once(':')?;
    Some((conn.parse().ok()?, object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_ids_carry_the_connection_and_the_object() {
        let c = ConnectionId::new();
        let id = origin_id(c, "cn=Readers,ou=groups,dc=example,dc=test");
        assert_eq!(split_origin_id(&id), Some((c, "cn=Readers,ou=groups,dc=example,dc=test")));
        assert_eq!(split_origin_id(&origin_id(c, "a:b")), Some((c, "a:b")), "the object may hold ':'");
        assert_eq!(split_origin_id("not-a-connection:x"), None);
        assert_eq!(split_origin_id("no-colon"), None);
    }

    #[test]
    fn reconciliation_settings_are_checked() {
        let r = Reconciliation::parse(&serde_json::json!({})).unwrap();
        assert_eq!(r, Reconciliation::default());
        let r = Reconciliation::parse(&serde_json::json!({"intervalMinutes": 0, "authoritative": true})).unwrap();
        assert!(r.authoritative);
        let now: Timestamp = "2031-03-01T09:00:00Z".parse().unwrap();
        assert_eq!(r.next_after(now), None, "0: only on request");
        assert_eq!(Reconciliation::default().next_after(now), Some("2031-03-01T10:00:00Z".parse().unwrap()));
        assert!(Reconciliation::parse(&serde_json::json!({"intervalMinutes": -1})).is_err());
        assert!(Reconciliation::parse(&serde_json::json!({"every": 5})).is_err());
        assert!(Reconciliation::parse(&serde_json::json!({"intervalMinutes": MAX_RECONCILE_MINUTES + 1})).is_err());
    }

    #[test]
    fn settings_are_a_bounded_object() {
        assert!(check_settings_shape(&serde_json::json!({"host": "db"})).is_ok());
        assert!(check_settings_shape(&serde_json::json!(["host"])).is_err());
        assert!(check_settings_shape(&serde_json::json!({"x": "y".repeat(SETTINGS_MAX)})).is_err());
    }
}
