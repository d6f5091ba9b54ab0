//! What the store benchmarks share: reading their options, the audit event of a set-up write,
//! and the catalog, group, package and admin-only policy every benchmark starts from.

// Each example compiles this module on its own and uses part of it.
#![allow(dead_code)]

use jiff::Timestamp;
use steward_app::Store;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::catalog::{self, Catalog, ResourceRequest};
use steward_domain::directory::Group;
use steward_domain::enums::{CatalogState, CatalogType, RequestState, RequestType};
use steward_domain::ids::{AccessPackageId, CatalogId, GroupId, PolicyId, ResourceRequestId, ResourceRoleScopeId};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_domain::text::DisplayName;

/// The audit event of one set-up write (every catalog, package and policy write records one).
pub fn setup_event(at: Timestamp, activity: Activity, target_type: &str, id: impl ToString) -> AuditEvent {
    let id = id.to_string();
    AuditEvent::new(at, activity, Initiator::App("bench".into()), target_type, &id, &id)
}

/// The number after option `name` (underscores allowed), or `default`.
pub fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(default)
}

/// What `seed` made.
pub struct Seeded {
    pub cat: Catalog,
    pub group: Group,
    pub pkg: AccessPackage,
    pub policy: AssignmentPolicy,
}

/// A catalog, a directory group as its resource, a package granting the group's Member role,
/// and an admin-only policy (`notSpecified`) of the package, written at `start`.
pub async fn seed(store: &dyn Store, start: Timestamp) -> Seeded {
    let cat = Catalog {
        id: CatalogId::new(),
        display_name: DisplayName::parse("Bench").unwrap(),
        description: None,
        catalog_type: CatalogType::UserManaged,
        state: CatalogState::Published,
        is_externally_visible: false,
        created_date_time: start,
        modified_date_time: start,
    };
    store
        .insert_catalog(&cat, None, &setup_event(start, Activity::CreateCatalog, "AccessPackageCatalog", cat.id))
        .await
        .unwrap();
    let group = Group {
        id: GroupId::new(),
        display_name: DisplayName::parse("Bench group").unwrap(),
        description: None,
        mail_nickname: "bench".into(),
        mail_enabled: false,
        security_enabled: true,
        created_date_time: start,
    };
    store.insert_group(&group).await.unwrap();
    let added = catalog::group_resource(cat.id, &group, start);
    let rr = ResourceRequest {
        id: ResourceRequestId::new(),
        catalog_id: cat.id,
        resource_id: Some(added.resource.id),
        request_type: RequestType::AdminAdd,
        state: RequestState::Delivered,
        created_date_time: start,
    };
    store
        .add_resource(
            &added,
            &rr,
            &setup_event(start, Activity::CreateResourceRequest, "AccessPackageResourceRequest", rr.id),
        )
        .await
        .unwrap();
    let pkg = AccessPackage {
        id: AccessPackageId::new(),
        catalog_id: cat.id,
        display_name: DisplayName::parse("Bench package").unwrap(),
        description: None,
        is_hidden: false,
        created_date_time: start,
        modified_date_time: start,
    };
    store.insert_package(&pkg, &setup_event(start, Activity::CreatePackage, "AccessPackage", pkg.id)).await.unwrap();
    let member = added.roles.iter().find(|r| r.display_name == "Member").unwrap();
    store
        .add_role_scope(
            &ResourceRoleScope {
                id: ResourceRoleScopeId::new(),
                access_package_id: pkg.id,
                role_id: member.id,
                scope_id: added.scope.id,
                created_date_time: start,
            },
            &setup_event(start, Activity::UpdatePackage, "AccessPackage", pkg.id),
        )
        .await
        .unwrap();
    let settings: PolicySettings =
        serde_json::from_value(serde_json::json!({"allowedTargetScope": "notSpecified"})).unwrap();
    let policy = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: pkg.id,
        catalog_id: cat.id,
        display_name: DisplayName::parse("Bench policy").unwrap(),
        description: None,
        settings,
        created_date_time: start,
        modified_date_time: start,
    };
    store
        .insert_policy(&policy, &setup_event(start, Activity::CreatePolicy, "AccessPackageAssignmentPolicy", policy.id))
        .await
        .unwrap();
    Seeded { cat, group, pkg, policy }
}
