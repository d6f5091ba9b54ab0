//! The audit events of administrators' changes to catalogs, their resources, access packages
//! and assignment policies. Use cases build the event here and hand it to the store's write,
//! which records it in the transaction of the change; this module builds, it never writes.
//! Its submodules own the rest of the trail: where a change came from (`origin`), the hash
//! chain and its checkpoints (`chain`), and reading it as Graph's directoryAudits (`trail`).

pub mod chain;
pub mod origin;
pub mod trail;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use steward_domain::audit::{Activity, AuditEvent, ModifiedProperty};
use steward_domain::text::clip;

use crate::auth::{AdminCap, CatalogCap, CreatorCap};
use crate::lifecycle::Actor;

/// A capability that names who holds it, so the changes it authorizes are audited to them.
pub trait Acting: Copy {
    fn acting(self) -> Actor;
}

impl Acting for AdminCap {
    fn acting(self) -> Actor {
        self.actor()
    }
}
impl Acting for CatalogCap {
    fn acting(self) -> Actor {
        self.actor()
    }
}
impl Acting for CreatorCap {
    fn acting(self) -> Actor {
        self.actor()
    }
}

/// Target types, as Entra names them in `targetResources`.
pub const CATALOG: &str = "AccessPackageCatalog";
pub const RESOURCE_REQUEST: &str = "AccessPackageResourceRequest";
pub const PACKAGE: &str = "AccessPackage";
pub const POLICY: &str = "AccessPackageAssignmentPolicy";
pub const ROLE_ASSIGNMENT: &str = "RoleAssignment";
/// Steward's own: a connection to a delivery target.
pub const CONNECTION: &str = "Connection";

/// How much of a display name an event's detail keeps.
const NAME_MAX: usize = 80;

/// An administrator's change to the object `target_id`, correlated by that same id: the events
/// of one catalog, package or policy read together as its history (`Store::events_of`).
pub(crate) fn admin_event(
    cap: impl Acting,
    activity: Activity,
    target_type: &str,
    target_id: impl ToString,
    now: Timestamp,
) -> AuditEvent {
    let id = target_id.to_string();
    AuditEvent::new(now, activity, cap.acting().initiator(), target_type, &id, &id)
}

/// The detail of a creation: the new object's name, shortened.
pub(crate) fn named(display_name: &str) -> String {
    format!("displayName '{}'", clip(display_name, NAME_MAX))
}

/// The detail of an update: the names of the top-level properties whose JSON form differs
/// between `before` and `after`, `modifiedDateTime` aside. Names only, never values, so the
/// record stays short and repeats nothing a property might hold.
pub(crate) fn changed_properties<T: Serialize>(before: &T, after: &T) -> String {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return "changed: (not comparable)".to_owned();
    };
    let mut names: Vec<&str> = a
        .keys()
        .chain(b.keys())
        .filter(|k| k.as_str() != "modifiedDateTime" && a.get(*k) != b.get(*k))
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() { "changed: nothing".to_owned() } else { format!("changed: {}", names.join(", ")) }
}

/// How much of one value a modified property keeps.
const VALUE_MAX: usize = 2_000;

/// Property names whose values never enter the trail, whatever object they belong to.
fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["secret", "password", "token", "credential", "key"].iter().any(|s| n.contains(s))
}

/// The top-level properties whose JSON form differs between `before` and `after`
/// (`modifiedDateTime` aside), with both values as JSON texts, as Graph's `modifiedProperties`
/// carry them; a secret's values are replaced by `"[REDACTED]"`.
pub(crate) fn modified<T: Serialize>(before: &T, after: &T) -> Vec<ModifiedProperty> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let mut names: Vec<&String> =
        a.keys().chain(b.keys()).filter(|k| k.as_str() != "modifiedDateTime" && a.get(*k) != b.get(*k)).collect();
    names.sort_unstable();
    names.dedup();
    let shown = |name: &str, v: Option<&Value>| {
        v.map(|v| if is_secret(name) { "\"[REDACTED]\"".to_owned() } else { clip(&v.to_string(), VALUE_MAX) })
    };
    names
        .into_iter()
        .map(|name| ModifiedProperty {
            display_name: name.clone(),
            old_value: shown(name, a.get(name)),
            new_value: shown(name, b.get(name)),
        })
        .collect()
}

/// An update's event: the names of what changed in its detail, the values in its modified
/// properties.
pub(crate) fn with_changes<T: Serialize>(event: AuditEvent, before: &T, after: &T) -> AuditEvent {
    event.with_detail(changed_properties(before, after)).with_changes(modified(before, after))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_update_names_what_changed_and_nothing_else() {
        let before = json!({"displayName": "A", "description": "d", "modifiedDateTime": "1", "state": "published"});
        let after = json!({"displayName": "B", "description": "d", "modifiedDateTime": "2", "isHidden": true});
        assert_eq!(changed_properties(&before, &after), "changed: displayName, isHidden, state");
        assert_eq!(changed_properties(&before, &before), "changed: nothing");
    }

    #[test]
    fn modified_properties_carry_json_values_and_hide_secrets() {
        let before = json!({"displayName": "A", "isHidden": false, "clientSecret": "s1", "modifiedDateTime": "1"});
        let after = json!({"displayName": "B", "isHidden": false, "clientSecret": "s2", "state": "x"});
        let m = modified(&before, &after);
        let shown: Vec<(&str, Option<&str>, Option<&str>)> =
            m.iter().map(|p| (p.display_name.as_str(), p.old_value.as_deref(), p.new_value.as_deref())).collect();
        assert_eq!(
            shown,
            [
                ("clientSecret", Some("\"[REDACTED]\""), Some("\"[REDACTED]\"")),
                ("displayName", Some("\"A\""), Some("\"B\"")),
                ("state", None, Some("\"x\"")),
            ]
        );
    }

    #[test]
    fn an_event_is_correlated_by_its_target() {
        let e =
            admin_event(crate::auth::local_operator(), Activity::CreateCatalog, CATALOG, "c-1", Timestamp::UNIX_EPOCH);
        assert_eq!((e.target_type.as_str(), e.target_id.as_str(), e.correlation_id.as_str()), (CATALOG, "c-1", "c-1"));
        assert_eq!(e.initiator, steward_domain::audit::Initiator::App("local-operator".into()));
        assert_eq!(named(&"x".repeat(100)), format!("displayName '{}…'", "x".repeat(NAME_MAX)));
    }
}
