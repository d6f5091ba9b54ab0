//! Builders for test objects and small assertion helpers shared by the cases.

use std::cmp::Ordering;

use jiff::Timestamp;
use steward_app::ports::Page;
use steward_app::query::{ListQuery, Schema};
use steward_app::{Store, StoreError};
use steward_domain::DomainError;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::catalog::{self, Catalog, GroupResource, ResourceRequest};
use steward_domain::directory::{Group, User};
use steward_domain::enums::{CatalogState, RequestState, RequestType, UserType};
use steward_domain::ids::{AccessPackageId, CatalogId, GroupId, ResourceRequestId, ResourceRoleScopeId, UserId};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::text::DisplayName;
use steward_store::SqlStore;

/// A timestamp from RFC 3339 text.
pub fn t(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
}

/// A timestamp `micros` after 2030-03-18T00:00:00Z.
pub fn at(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(t("2030-03-18T00:00:00Z").as_microsecond() + micros).unwrap()
}

pub fn name(s: &str) -> DisplayName {
    DisplayName::parse(s).unwrap_or_else(|e| panic!("bad display name {s:?}: {e}"))
}

/// A user with every optional field set.
pub fn user(upn: &str) -> User {
    User {
        id: UserId::new(),
        display_name: name(upn.split('@').next().unwrap()),
        user_principal_name: upn.into(),
        mail: Some(upn.into()),
        user_type: UserType::Member,
        account_enabled: true,
        department: Some("Sales".into()),
        job_title: Some("Engineer".into()),
        company_name: Some("Contoso".into()),
        employee_id: Some("E-1".into()),
        city: Some("Seattle".into()),
        country: Some("US".into()),
        created_date_time: t("2030-01-02T03:04:05.123456Z"),
        manager: None,
    }
}

pub fn group(display: &str) -> Group {
    Group {
        id: GroupId::new(),
        display_name: name(display),
        description: Some(format!("{display} team")),
        mail_nickname: steward_domain::directory::nickname_from(&name(display)),
        mail_enabled: false,
        security_enabled: true,
        created_date_time: t("2030-01-02T03:04:05.654321Z"),
    }
}

pub fn catalog_named(display: &str) -> Catalog {
    catalog::new_catalog(
        name(display),
        Some(format!("{display} catalog")),
        Some(CatalogState::Published),
        Some(true),
        at(1),
    )
}

pub fn package(catalog: CatalogId, display: &str, description: Option<&str>, created: Timestamp) -> AccessPackage {
    AccessPackage {
        id: AccessPackageId::new(),
        catalog_id: catalog,
        display_name: name(display),
        description: description.map(str::to_owned),
        is_hidden: false,
        created_date_time: created,
        modified_date_time: created,
    }
}

pub fn request(catalog: CatalogId, kind: RequestType, created: Timestamp) -> ResourceRequest {
    ResourceRequest {
        id: ResourceRequestId::new(),
        catalog_id: catalog,
        resource_id: None,
        request_type: kind,
        state: RequestState::Delivered,
        created_date_time: created,
    }
}

/// The adminAdd request that goes with adding `added`.
pub fn add_request(added: &GroupResource) -> ResourceRequest {
    ResourceRequest {
        resource_id: Some(added.resource.id),
        ..request(added.resource.catalog_id, RequestType::AdminAdd, added.resource.created_date_time)
    }
}

pub fn remove_request(added: &GroupResource, created: Timestamp) -> ResourceRequest {
    ResourceRequest {
        resource_id: Some(added.resource.id),
        ..request(added.resource.catalog_id, RequestType::AdminRemove, created)
    }
}

pub fn role_scope(
    package: AccessPackageId,
    added: &GroupResource,
    role: usize,
    created: Timestamp,
) -> ResourceRoleScope {
    ResourceRoleScope {
        id: ResourceRoleScopeId::new(),
        access_package_id: package,
        role_id: added.roles[role].id,
        scope_id: added.scope.id,
        created_date_time: created,
    }
}

/// An audit event for a write whose event the case does not look at (every write of catalogs,
/// resources, packages and policies records one). A new id each time, as events need.
pub fn audit() -> AuditEvent {
    AuditEvent::new(at(0), Activity::UpdatePackage, Initiator::System, "Test", "-", "unread")
}

/// A catalog, a group and that group added to the catalog as a resource.
pub async fn catalog_with_group(s: &SqlStore, catalog: &str, group_name: &str) -> (Catalog, Group, GroupResource) {
    let c = catalog_named(catalog);
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let g = group(group_name);
    s.insert_group(&g).await.unwrap();
    let added = catalog::group_resource(c.id, &g, at(2));
    s.add_resource(&added, &add_request(&added), &audit()).await.unwrap();
    (c, g, added)
}

/// A `ListQuery` from an OData query string (values already percent-encoded where needed).
pub fn query(schema: &'static Schema, q: &str) -> ListQuery {
    let options = steward_odata::parse_query(q).unwrap_or_else(|e| panic!("bad query {q}: {e}"));
    ListQuery::from_options(schema, &options).unwrap_or_else(|e| panic!("query {q} refused: {e}"))
}

/// Percent-encodes what a query-string value cannot carry as is (`%`, `&`, `+`, `#`).
pub fn enc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '%' => out.push_str("%25"),
            '&' => out.push_str("%26"),
            '+' => out.push_str("%2B"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{what}: expected Conflict, got {r:?}");
}

#[track_caller]
pub fn assert_rule_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(matches!(r, Err(StoreError::Rule(DomainError::Conflict(_)))), "{what}: expected Rule(Conflict), got {r:?}");
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(matches!(r, Err(StoreError::NotFound { .. })), "{what}: expected NotFound, got {r:?}");
}

/// The keys of a page's rows, sorted (for set comparisons).
pub fn sorted_keys<T, K: Ord>(p: &Page<T>, key: impl Fn(&T) -> K) -> Vec<K> {
    let mut v: Vec<K> = p.items.iter().map(key).collect();
    v.sort();
    v
}

pub fn sorted<K: Ord>(mut v: Vec<K>) -> Vec<K> {
    v.sort();
    v
}

/// Bytewise comparison of text, as both databases are meant to order it.
pub fn bytes(a: &str, b: &str) -> Ordering {
    a.as_bytes().cmp(b.as_bytes())
}

/// Chains every event written so far, pass after pass, and returns how many it chained. On
/// PostgreSQL an event waits to be chained until every transaction older than its own has
/// ended, in any database of the server (other tests run beside this one), so a pass may
/// chain none while events wait: this waits for them, up to ten seconds.
pub async fn chain_everything(s: &SqlStore) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut total = 0u64;
    loop {
        total += u64::from(s.chain_audit(100).await.unwrap().chained);
        if s.audit_chain_state().await.unwrap().unchained == 0 {
            return total;
        }
        assert!(std::time::Instant::now() < deadline, "events still wait to be chained after ten seconds");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
