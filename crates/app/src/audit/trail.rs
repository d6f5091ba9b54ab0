//! Reading the audit trail: Graph's `directoryAudit` shape (reference §4) for
//! `/auditLogs/directoryAudits`, and its export over a period as JSON Lines or CSV
//! (`steward audit export`). Only administrators read it.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Value as Json, json};
use steward_domain::audit::{AuditEvent, Initiator};
use steward_domain::directory::User;
use steward_domain::ids::{AccessPackageId, AssignmentId, AuditEventId, RequestId, UserId};
use steward_domain::time::{format_datetime, to_micros};
use steward_odata::CmpOp;

use crate::auth::{AdminCap, Principal};
use crate::ports::{Page, Store};
use crate::query::{Cond, DIRECTORY_AUDITS, ListQuery, MAX_TOP, Sort, Value};
use crate::{AppError, Services};

const REQUEST: &str = "AccessPackageAssignmentRequest";
const ASSIGNMENT: &str = "AccessPackageAssignment";
/// How Steward names itself as the initiator of its own work (timers, delivery).
pub const SYSTEM_NAME: &str = "Steward";

/// A page of the trail. Without an `$orderby`, newest first, as Graph lists it.
pub async fn list(s: &Services, p: &Principal, mut q: ListQuery, ordered: bool) -> Result<Page<AuditEvent>, AppError> {
    p.admin()?;
    if !ordered {
        for sort in &mut q.order {
            sort.descending = true;
        }
    }
    Ok(s.store.list_audit_events(&q).await?)
}

pub async fn get(s: &Services, p: &Principal, id: AuditEventId) -> Result<AuditEvent, AppError> {
    p.admin()?;
    s.store.get_audit_event(id).await?.ok_or_else(|| AppError::not_found("directoryAudit", id))
}

/// The people and packages a page of events names, read in one go per kind.
#[derive(Debug, Default)]
pub struct Names {
    users: HashMap<String, User>,
    packages: HashMap<String, String>,
    /// A request's or an assignment's target user and package, by its id.
    subjects: HashMap<String, (UserId, AccessPackageId)>,
}

impl Names {
    pub async fn of(store: &dyn Store, events: &[AuditEvent]) -> Result<Self, AppError> {
        let request_ids: Vec<RequestId> =
            events.iter().filter(|e| e.target_type == REQUEST).filter_map(|e| e.target_id.parse().ok()).collect();
        let assignment_ids: Vec<AssignmentId> =
            events.iter().filter(|e| e.target_type == ASSIGNMENT).filter_map(|e| e.target_id.parse().ok()).collect();
        let mut subjects: HashMap<String, (UserId, AccessPackageId)> = store
            .requests_by_id(&request_ids)
            .await?
            .into_iter()
            .map(|r| (r.id.to_string(), (r.target_id, r.access_package_id)))
            .collect();
        subjects.extend(
            store
                .assignments_by_id(&assignment_ids)
                .await?
                .into_iter()
                .map(|a| (a.id.to_string(), (a.target_id, a.access_package_id))),
        );
        let mut user_ids: Vec<UserId> = events
            .iter()
            .filter_map(|e| match &e.initiator {
                Initiator::User(u) => u.parse().ok(),
                _ => None,
            })
            .chain(events.iter().filter(|e| e.target_type == "User").filter_map(|e| e.target_id.parse().ok()))
            .chain(subjects.values().map(|(u, _)| *u))
            .collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        let mut package_ids: Vec<AccessPackageId> = events
            .iter()
            .filter(|e| e.target_type == "AccessPackage")
            .filter_map(|e| e.target_id.parse().ok())
            .chain(subjects.values().map(|(_, p)| *p))
            .collect();
        package_ids.sort_unstable();
        package_ids.dedup();
        let users = store.users_by_id(&user_ids).await?.into_iter().map(|u| (u.id.to_string(), u)).collect();
        let packages = store
            .packages_by_id(&package_ids)
            .await?
            .into_iter()
            .map(|p| (p.id.to_string(), p.display_name.as_str().to_owned()))
            .collect();
        Ok(Self { users, packages, subjects })
    }

    fn user(&self, id: &str, ip: Option<&str>) -> Json {
        let u = self.users.get(id);
        json!({
            "id": id,
            "displayName": u.map(|u| u.display_name.as_str()),
            "userPrincipalName": u.map(|u| u.user_principal_name.as_str()),
            "ipAddress": ip,
        })
    }

    fn target(&self, kind: &str, id: &str) -> Json {
        let (display_name, upn) = match kind {
            "User" => {
                let u = self.users.get(id);
                (u.map(|u| u.display_name.as_str().to_owned()), u.map(|u| u.user_principal_name.clone()))
            }
            "AccessPackage" => (self.packages.get(id).cloned(), None),
            _ => (None, None),
        };
        json!({"id": id, "type": kind, "displayName": display_name, "userPrincipalName": upn,
            "groupType": null, "modifiedProperties": []})
    }
}

/// Which service logged an event of `category`, as Entra names them.
fn logged_by(category: &str) -> &'static str {
    match category {
        "UserManagement" | "GroupManagement" => "Core Directory",
        "Policy" => "Access Reviews",
        _ => "Entitlement Management",
    }
}

/// Graph's coarse `operationType` of an activity, from its display name's first word.
fn operation_type(display_name: &str) -> &'static str {
    match display_name.split_whitespace().next().unwrap_or_default() {
        "Create" | "Add" | "Invite" => "Add",
        "Delete" | "Remove" => "Delete",
        "Assign" | "Administrator" if display_name.contains("removes") => "Unassign",
        "Assign" | "Administrator" => "Assign",
        _ => "Update",
    }
}

/// One event in Graph's `directoryAudit` shape.
pub fn directory_audit(e: &AuditEvent, names: &Names) -> Json {
    let ip = e.ip_address.as_deref();
    let initiated_by = match &e.initiator {
        Initiator::User(id) => json!({"user": names.user(id, ip), "app": null}),
        Initiator::App(label) => json!({"user": null, "app": {"appId": null, "displayName": label,
            "servicePrincipalId": null, "servicePrincipalName": label}}),
        Initiator::System => json!({"user": null, "app": {"appId": null, "displayName": SYSTEM_NAME,
            "servicePrincipalId": null, "servicePrincipalName": SYSTEM_NAME}}),
    };
    let mut main = names.target(&e.target_type, &e.target_id);
    if let Some(m) = main.as_object_mut() {
        m.insert(
            "modifiedProperties".into(),
            serde_json::to_value(&e.modified_properties).unwrap_or_else(|_| json!([])),
        );
    }
    let mut targets = vec![main];
    // A request's or an assignment's event also names its package and its target user.
    let subject = names.subjects.get(&e.target_id).filter(|_| e.target_type == REQUEST || e.target_type == ASSIGNMENT);
    if let Some((user, package)) = subject {
        targets.push(names.target("AccessPackage", &package.to_string()));
        targets.push(names.target("User", &user.to_string()));
    }
    let mut details = Vec::new();
    if let Some(d) = &e.detail {
        details.push(json!({"key": "detail", "value": d}));
    }
    if let (Some(ip), false) = (ip, matches!(e.initiator, Initiator::User(_))) {
        details.push(json!({"key": "ipAddress", "value": ip}));
    }
    let failed = e.result != "success";
    json!({
        "id": e.id.to_string(),
        "category": e.category,
        "correlationId": e.correlation_id,
        "result": e.result,
        "resultReason": if failed { e.detail.clone().unwrap_or_default() } else { String::new() },
        "activityDisplayName": e.activity.display_name(),
        "activityDateTime": format_datetime(e.at),
        "loggedByService": logged_by(&e.category),
        "operationType": operation_type(e.activity.display_name()),
        "initiatedBy": initiated_by,
        "targetResources": targets,
        "additionalDetails": details,
    })
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One `directoryAudit` JSON object per line.
    JsonLines,
    /// One row per event, with a header row.
    Csv,
}

/// The CSV header of an export.
pub const CSV_HEADER: &[&str] = &[
    "activityDateTime",
    "id",
    "category",
    "activityDisplayName",
    "result",
    "resultReason",
    "initiatedByUserId",
    "initiatedByUserPrincipalName",
    "initiatedByApp",
    "ipAddress",
    "targetType",
    "targetId",
    "targetDisplayName",
    "correlationId",
    "modifiedProperties",
    "detail",
];

/// One event as an export line (with its line end).
pub fn export_line(e: &AuditEvent, names: &Names, format: Format) -> String {
    let audit = directory_audit(e, names);
    match format {
        Format::JsonLines => format!("{audit}\n"),
        Format::Csv => {
            // A string along `path` in the rendered record, or nothing.
            let s = |path: &[&str]| {
                path.iter()
                    .try_fold(&audit, |v, k| match k.parse::<usize>() {
                        Ok(i) => v.get(i),
                        Err(_) => v.get(*k),
                    })
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let modified = serde_json::to_string(&e.modified_properties).unwrap_or_default();
            let fields = [
                s(&["activityDateTime"]),
                s(&["id"]),
                s(&["category"]),
                s(&["activityDisplayName"]),
                s(&["result"]),
                s(&["resultReason"]),
                s(&["initiatedBy", "user", "id"]),
                s(&["initiatedBy", "user", "userPrincipalName"]),
                s(&["initiatedBy", "app", "displayName"]),
                e.ip_address.clone().unwrap_or_default(),
                s(&["targetResources", "0", "type"]),
                s(&["targetResources", "0", "id"]),
                s(&["targetResources", "0", "displayName"]),
                s(&["correlationId"]),
                if e.modified_properties.is_empty() { String::new() } else { modified },
                e.detail.clone().unwrap_or_default(),
            ];
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            steward_domain::csv::line(&refs)
        }
    }
}

/// The events of `[from, to)`, oldest first, one page of up to `MAX_TOP` after `after` (the
/// `next` of the previous page): what an export walks.
pub async fn period_page(
    store: &dyn Store,
    _cap: AdminCap,
    from: Timestamp,
    to: Timestamp,
    after: Option<Vec<Value>>,
) -> Result<Page<AuditEvent>, AppError> {
    let at = DIRECTORY_AUDITS.field("activityDateTime").ok_or_else(|| {
        AppError::Store(crate::StoreError::Internal("no activityDateTime in the audit schema".into()))
    })?;
    let mut q = ListQuery::all(&DIRECTORY_AUDITS);
    q.order = vec![Sort { field: at, descending: false }];
    if let Some(id) = DIRECTORY_AUDITS.field("id") {
        q.order.push(Sort { field: id, descending: false });
    }
    q.top = MAX_TOP;
    q.after = after;
    let span = Cond::And(vec![
        Cond::Cmp { field: at, op: CmpOp::Ge, value: Value::Int(to_micros(from)), lower: false },
        Cond::Cmp { field: at, op: CmpOp::Lt, value: Value::Int(to_micros(to)), lower: false },
    ]);
    Ok(store.list_audit_events(&q.and(span)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_domain::audit::{Activity, ModifiedProperty};

    #[test]
    fn an_event_renders_in_graphs_shape() {
        let mut e = AuditEvent::new(
            Timestamp::UNIX_EPOCH,
            Activity::UpdatePackage,
            Initiator::App("ops-token".into()),
            "AccessPackage",
            "p-1",
            "p-1",
        )
        .with_detail("changed: displayName")
        .with_changes(vec![ModifiedProperty {
            display_name: "displayName".into(),
            old_value: Some("\"A\"".into()),
            new_value: Some("\"B\"".into()),
        }]);
        e.ip_address = Some("192.0.2.1".into());
        let a = directory_audit(&e, &Names::default());
        assert_eq!(a["activityDisplayName"], "Update access package");
        assert_eq!(a["activityDateTime"], "1970-01-01T00:00:00Z");
        assert_eq!(a["loggedByService"], "Entitlement Management");
        assert_eq!(a["operationType"], "Update");
        assert_eq!(a["initiatedBy"]["app"]["displayName"], "ops-token");
        assert_eq!(a["targetResources"][0]["modifiedProperties"][0]["newValue"], "\"B\"");
        assert_eq!(a["additionalDetails"][1], json!({"key": "ipAddress", "value": "192.0.2.1"}));
        let csv = export_line(&e, &Names::default(), Format::Csv);
        assert!(csv.contains("ops-token") && csv.contains("192.0.2.1") && csv.ends_with('\n'), "{csv}");
        let jsonl = export_line(&e, &Names::default(), Format::JsonLines);
        assert_eq!(jsonl.lines().count(), 1);
    }

    #[test]
    fn operation_types_follow_the_activity() {
        assert_eq!(operation_type("Create access package"), "Add");
        assert_eq!(operation_type("Delete access package"), "Delete");
        assert_eq!(operation_type("Administrator directly assigns user to access package"), "Assign");
        assert_eq!(operation_type("Administrator directly removes user access package assignment"), "Unassign");
        assert_eq!(operation_type("Approve access package assignment request"), "Update");
    }
}
