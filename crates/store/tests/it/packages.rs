//! Access packages: their rows, role scopes, incompatibilities and assignment policies.

use steward_app::ports::Conflicting;
use steward_app::query::{ACCESS_PACKAGES, GROUPS, ListQuery, POLICIES, ROLE_SCOPES, Relation};
use steward_app::{Store, StoreError};
use steward_domain::catalog;
use steward_domain::directory::User;
use steward_domain::ids::{AccessPackageId, CatalogId, GroupId, PolicyId, ResourceRoleId, ResourceRoleScopeId, UserId};
use steward_domain::package::ResourceRoleScope;
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_store::SqlStore;

use crate::fixtures::*;

async fn related_packages(s: &SqlStore, relation: Relation, id: AccessPackageId) -> Vec<AccessPackageId> {
    let page = s.list_packages(&ListQuery::all(&ACCESS_PACKAGES).related(relation, id)).await.unwrap();
    sorted_keys(&page, |p| p.id)
}

async fn incompatible_groups(s: &SqlStore, id: AccessPackageId) -> Vec<GroupId> {
    let page = s.list_groups(&ListQuery::all(&GROUPS).related(Relation::IncompatibleGroups, id)).await.unwrap();
    sorted_keys(&page, |g| g.id)
}

async fn role_scopes_of(s: &SqlStore, id: AccessPackageId) -> Vec<ResourceRoleScope> {
    let q = ListQuery::all(&ROLE_SCOPES).scoped("accessPackage/id", id).unwrap();
    s.list_role_scopes(&q).await.unwrap().items
}

pub async fn packages_round_trip(s: SqlStore) {
    let c = catalog_named("Finance");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let c2 = catalog_named("Other");
    s.insert_catalog(&c2, None, &audit()).await.unwrap();
    let mut p = package(c.id, "Ledger readers", Some("Read the ledger"), t("2030-01-02T03:04:05.123456Z"));
    p.is_hidden = true;
    s.insert_package(&p, &audit()).await.unwrap();
    assert_eq!(s.get_package(p.id).await.unwrap().unwrap(), p);
    assert!(s.get_package(AccessPackageId::new()).await.unwrap().is_none());
    assert_not_found(
        s.insert_package(&package(CatalogId::new(), "Nowhere", None, at(1)), &audit()).await,
        "a package in an unknown catalog",
    );
    let q = package(c2.id, "Elsewhere", None, at(1));
    s.insert_package(&q, &audit()).await.unwrap();

    // Optimistic update: lands on the version that was read, and only on it.
    let read_at = p.modified_date_time;
    let mut changed = p.clone();
    changed.display_name = name("Ledger 'readers' — Grand livre");
    changed.description = None;
    changed.is_hidden = false;
    changed.modified_date_time = t("2030-01-02T03:04:05.123457Z");
    s.update_package(&changed, read_at, &audit()).await.unwrap();
    assert_eq!(s.get_package(p.id).await.unwrap().unwrap(), changed);
    assert_conflict(s.update_package(&p, read_at, &audit()).await, "a write based on a stale read");
    assert_eq!(s.get_package(p.id).await.unwrap().unwrap(), changed, "the stale write did not land");
    assert_not_found(
        s.update_package(&package(c.id, "Ghost", None, at(1)), at(1), &audit()).await,
        "update of an unknown package",
    );

    let listed = s.list_packages(&ListQuery::all(&ACCESS_PACKAGES).scoped("catalog/id", c.id).unwrap()).await.unwrap();
    assert_eq!(listed.items, vec![changed.clone()], "scoped to the catalog");

    s.delete_package(p.id, &audit()).await.unwrap();
    assert!(s.get_package(p.id).await.unwrap().is_none());
    assert_not_found(s.delete_package(p.id, &audit()).await, "delete of a deleted package");
    assert_eq!(s.get_package(q.id).await.unwrap().unwrap(), q);
}

pub async fn role_scopes(s: SqlStore) {
    let (c, _g, added) = catalog_with_group(&s, "Finance", "Ledger").await;
    let (a, b) = (package(c.id, "A", None, at(3)), package(c.id, "B", None, at(4)));
    s.insert_package(&a, &audit()).await.unwrap();
    s.insert_package(&b, &audit()).await.unwrap();

    let member = role_scope(a.id, &added, 0, t("2030-01-02T03:04:05.123456Z"));
    s.add_role_scope(&member, &audit()).await.unwrap();
    assert_eq!(s.get_role_scope(member.id).await.unwrap().unwrap(), member);
    assert!(s.get_role_scope(ResourceRoleScopeId::new()).await.unwrap().is_none());
    assert_conflict(
        s.add_role_scope(&ResourceRoleScope { id: ResourceRoleScopeId::new(), ..member.clone() }, &audit()).await,
        "the same role and scope twice in a package",
    );
    let owner = role_scope(a.id, &added, 1, at(6));
    s.add_role_scope(&owner, &audit()).await.unwrap();
    let in_b = role_scope(b.id, &added, 0, at(7));
    s.add_role_scope(&in_b, &audit()).await.unwrap();
    let mut bad = role_scope(a.id, &added, 0, at(8));
    bad.role_id = steward_domain::ids::ResourceRoleId::new();
    assert!(s.add_role_scope(&bad, &audit()).await.is_err(), "a role that does not exist");

    assert_eq!(role_scopes_of(&s, a.id).await, vec![member.clone(), owner.clone()], "createdDateTime order");
    assert_eq!(role_scopes_of(&s, b.id).await, vec![in_b.clone()]);
    let by_role =
        s.list_role_scopes(&query(&ROLE_SCOPES, &format!("$filter=role/id eq '{}'", added.roles[0].id))).await.unwrap();
    assert_eq!(sorted_keys(&by_role, |r| r.id), sorted(vec![member.id, in_b.id]));

    assert_not_found(s.remove_role_scope(b.id, member.id, &audit()).await, "remove through the wrong package");
    assert!(s.get_role_scope(member.id).await.unwrap().is_some(), "the wrong package removed nothing");
    s.remove_role_scope(a.id, member.id, &audit()).await.unwrap();
    assert!(s.get_role_scope(member.id).await.unwrap().is_none());
    assert_not_found(s.remove_role_scope(a.id, member.id, &audit()).await, "remove of a removed role scope");
    assert_eq!(role_scopes_of(&s, a.id).await, vec![owner.clone()]);

    // Deleting a package deletes its role scopes, and only its own.
    s.delete_package(a.id, &audit()).await.unwrap();
    assert!(s.get_role_scope(owner.id).await.unwrap().is_none(), "role scopes go with their package");
    assert!(role_scopes_of(&s, a.id).await.is_empty());
    assert_eq!(role_scopes_of(&s, b.id).await, vec![in_b]);
}

pub async fn incompatibilities(s: SqlStore) {
    let c = catalog_named("Finance");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let (a, b, d) = (package(c.id, "A", None, at(1)), package(c.id, "B", None, at(2)), package(c.id, "D", None, at(3)));
    for p in [&a, &b, &d] {
        s.insert_package(p, &audit()).await.unwrap();
    }
    let (g, h) = (group("Auditors"), group("Traders"));
    s.insert_group(&g).await.unwrap();
    s.insert_group(&h).await.unwrap();

    // packages
    s.add_incompatible_package(a.id, b.id, &audit()).await.unwrap();
    s.add_incompatible_package(a.id, d.id, &audit()).await.unwrap();
    s.add_incompatible_package(b.id, d.id, &audit()).await.unwrap();
    assert_conflict(s.add_incompatible_package(a.id, b.id, &audit()).await, "duplicate incompatible package");
    assert!(s.add_incompatible_package(a.id, AccessPackageId::new(), &audit()).await.is_err(), "an unknown package");
    assert_eq!(related_packages(&s, Relation::IncompatiblePackages, a.id).await, sorted(vec![b.id, d.id]));
    assert_eq!(related_packages(&s, Relation::IncompatiblePackages, b.id).await, vec![d.id]);
    assert!(related_packages(&s, Relation::IncompatiblePackages, d.id).await.is_empty(), "links are directed");
    assert_eq!(related_packages(&s, Relation::PackagesIncompatibleWith, d.id).await, sorted(vec![a.id, b.id]));
    assert_eq!(related_packages(&s, Relation::PackagesIncompatibleWith, b.id).await, vec![a.id]);
    assert!(related_packages(&s, Relation::PackagesIncompatibleWith, a.id).await.is_empty());

    s.remove_incompatible_package(a.id, d.id, &audit()).await.unwrap();
    assert_not_found(s.remove_incompatible_package(a.id, d.id, &audit()).await, "remove of a removed link");
    assert_not_found(s.remove_incompatible_package(d.id, a.id, &audit()).await, "remove of the reverse link");
    assert_eq!(related_packages(&s, Relation::IncompatiblePackages, a.id).await, vec![b.id]);
    assert_eq!(related_packages(&s, Relation::PackagesIncompatibleWith, d.id).await, vec![b.id]);

    // groups
    s.add_incompatible_group(a.id, g.id, &audit()).await.unwrap();
    s.add_incompatible_group(a.id, h.id, &audit()).await.unwrap();
    s.add_incompatible_group(b.id, g.id, &audit()).await.unwrap();
    assert_conflict(s.add_incompatible_group(a.id, g.id, &audit()).await, "duplicate incompatible group");
    assert!(s.add_incompatible_group(a.id, GroupId::new(), &audit()).await.is_err(), "an unknown group");
    assert_eq!(incompatible_groups(&s, a.id).await, sorted(vec![g.id, h.id]));
    assert_eq!(incompatible_groups(&s, b.id).await, vec![g.id]);
    s.remove_incompatible_group(a.id, h.id, &audit()).await.unwrap();
    assert_not_found(s.remove_incompatible_group(a.id, h.id, &audit()).await, "remove of a removed group link");
    assert_not_found(s.remove_incompatible_group(d.id, g.id, &audit()).await, "remove of a link that never was");
    assert_eq!(incompatible_groups(&s, a.id).await, vec![g.id]);
    // Both kinds in one read, packages in both directions (a → b, b → d; a → g, b → g).
    assert_eq!(s.incompatibilities(a.id).await.unwrap(), (vec![b.id], vec![g.id]));
    assert_eq!(s.incompatibilities(b.id).await.unwrap(), (sorted(vec![a.id, d.id]), vec![g.id]));
    assert_eq!(s.incompatibilities(d.id).await.unwrap(), (vec![b.id], vec![]));

    // Deleting a package removes its links in both directions; the other side stays.
    s.delete_package(b.id, &audit()).await.unwrap();
    assert!(related_packages(&s, Relation::IncompatiblePackages, a.id).await.is_empty(), "links to it go");
    assert!(related_packages(&s, Relation::PackagesIncompatibleWith, d.id).await.is_empty(), "links from it go");
    assert!(incompatible_groups(&s, b.id).await.is_empty());
    assert_eq!(incompatible_groups(&s, a.id).await, vec![g.id]);
    assert!(s.get_group(g.id).await.unwrap().is_some());
    assert!(s.get_package(a.id).await.unwrap().is_some());
    assert!(s.get_package(d.id).await.unwrap().is_some());

    // Deleting a group removes it from incompatibility lists.
    s.delete_group(g.id).await.unwrap();
    assert!(incompatible_groups(&s, a.id).await.is_empty());
}

pub async fn policies_round_trip(s: SqlStore) {
    let c = catalog_named("Policies");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let pkg = package(c.id, "Pkg", None, at(1));
    s.insert_package(&pkg, &audit()).await.unwrap();
    let mut settings: PolicySettings = serde_json::from_value(serde_json::json!({
        "allowedTargetScope": "specificDirectoryUsers",
        "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.groupMembers", "groupId": "g"}],
        "expiration": {"type": "afterDuration", "duration": "P30D"},
        "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "text": "Why?"}],
        "reviewSettings": {"isEnabled": true}
    }))
    .unwrap();
    settings.check().unwrap();
    let p = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: pkg.id,
        catalog_id: c.id,
        display_name: name("Self service"),
        description: Some("d".into()),
        settings,
        created_date_time: t("2030-01-02T03:04:05.123456Z"),
        modified_date_time: t("2030-01-02T03:04:05.123456Z"),
    };
    s.insert_policy(&p, &audit()).await.unwrap();
    assert_eq!(s.get_policy(p.id).await.unwrap().unwrap(), p, "every setting round-trips");
    assert!(s.get_policy(PolicyId::new()).await.unwrap().is_none());
    let listed = s
        .list_policies(&query(
            &POLICIES,
            &format!("$filter=accessPackage/id eq '{}' and allowedTargetScope eq 'specificDirectoryUsers'", pkg.id),
        ))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![p.clone()]);

    assert_rule_conflict(s.delete_package(pkg.id, &audit()).await, "a package with a policy");
    assert!(s.get_package(pkg.id).await.unwrap().is_some());

    let mut changed = p.clone();
    changed.display_name = name("Renamed");
    changed.description = None;
    changed.settings.questions.clear();
    changed.modified_date_time = at(3);
    s.update_policy(&changed, p.modified_date_time, &audit()).await.unwrap();
    assert_conflict(s.update_policy(&changed, p.modified_date_time, &audit()).await, "a stale version");
    assert_eq!(s.get_policy(p.id).await.unwrap().unwrap(), changed);
    assert_not_found(
        s.update_policy(
            &AssignmentPolicy { id: PolicyId::new(), ..changed.clone() },
            changed.modified_date_time,
            &audit(),
        )
        .await,
        "update of an unknown policy",
    );

    let orphan = AssignmentPolicy { id: PolicyId::new(), access_package_id: AccessPackageId::new(), ..p.clone() };
    assert_not_found(s.insert_policy(&orphan, &audit()).await, "a policy of an unknown package");

    s.delete_policy(p.id, &audit()).await.unwrap();
    assert_not_found(s.delete_policy(p.id, &audit()).await, "delete of a deleted policy");
    s.delete_package(pkg.id, &audit()).await.unwrap();
    s.delete_catalog(c.id, &audit()).await.unwrap();
}

#[track_caller]
fn assert_missing<T: std::fmt::Debug>(r: Result<T, StoreError>, kind: &str, what: &str) {
    assert!(
        matches!(&r, Err(StoreError::NotFound { kind: k, .. }) if *k == kind),
        "{what}: expected NotFound {kind}, got {r:?}"
    );
}

/// A duplicate is a `Conflict`; a reference to something that does not exist is `NotFound`
/// naming what is missing. Neither is ever reported as the other.
pub async fn constraint_violations_are_named_precisely(s: SqlStore) {
    let c = catalog_named("C");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    assert_conflict(s.insert_catalog(&c, None, &audit()).await, "the same catalog twice");
    let p = package(c.id, "P", None, at(1));
    s.insert_package(&p, &audit()).await.unwrap();
    assert_conflict(s.insert_package(&p, &audit()).await, "the same package id twice");
    assert_missing(
        s.insert_package(&package(CatalogId::new(), "Q", None, at(1)), &audit()).await,
        "catalog",
        "unknown catalog",
    );

    let settings: PolicySettings =
        serde_json::from_value(serde_json::json!({"allowedTargetScope": "allMemberUsers"})).unwrap();
    let pol = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: p.id,
        catalog_id: c.id,
        display_name: name("Policy"),
        description: None,
        settings,
        created_date_time: at(1),
        modified_date_time: at(1),
    };
    s.insert_policy(&pol, &audit()).await.unwrap();
    assert_conflict(s.insert_policy(&pol, &audit()).await, "the same policy id twice");
    let orphan = AssignmentPolicy { id: PolicyId::new(), access_package_id: AccessPackageId::new(), ..pol.clone() };
    assert_missing(s.insert_policy(&orphan, &audit()).await, "access package", "a policy of an unknown package");

    let g = group("G");
    s.insert_group(&g).await.unwrap();
    assert_conflict(s.insert_group(&g).await, "the same group twice");
    let u = user("u@x.io");
    s.insert_user(&u).await.unwrap();
    assert_conflict(s.insert_user(&u).await, "the same user twice");
    let orphan = User { manager: Some(UserId::new()), ..user("v@x.io") };
    assert_missing(s.insert_user(&orphan).await, "manager (user)", "a user with an unknown manager");
    assert_missing(
        s.update_user(&User { manager: Some(UserId::new()), ..u.clone() }).await,
        "manager (user)",
        "update",
    );
    assert_missing(s.add_member(g.id, UserId::new()).await, "user", "an unknown member");
    assert_missing(s.add_member(GroupId::new(), u.id).await, "group", "a member of an unknown group");
    assert_missing(s.add_owner(g.id, UserId::new()).await, "user", "an unknown owner");
    assert_missing(s.add_sponsor(u.id, UserId::new()).await, "sponsor (user)", "an unknown sponsor");
    s.add_member(g.id, u.id).await.unwrap();
    assert_conflict(s.add_member(g.id, u.id).await, "the same member twice");
    assert_missing(
        s.add_incompatible_group(p.id, GroupId::new(), &audit()).await,
        "group",
        "an unknown incompatible group",
    );
    assert_missing(
        s.add_incompatible_package(p.id, AccessPackageId::new(), &audit()).await,
        "access package",
        "an unknown incompatible package",
    );

    let elsewhere = catalog::group_resource(CatalogId::new(), &g, at(2));
    assert_missing(
        s.add_resource(&elsewhere, &add_request(&elsewhere), &audit()).await,
        "catalog",
        "a resource of no catalog",
    );
    let (_, _, added) = catalog_with_group(&s, "D", "H").await;
    let mut rrs = role_scope(p.id, &added, 0, at(3));
    rrs.role_id = ResourceRoleId::new();
    assert_missing(s.add_role_scope(&rrs, &audit()).await, "resource role", "a role scope of an unknown role");
}

/// The bulk reads of pages that show many packages at once: rows by id (missing ids absent,
/// past SQLite's 500-key chunks), each package's grants, and each package's incompatibilities
/// seen from its side.
pub async fn bulk_reads_for_pages(s: SqlStore) {
    let (c, g, added) = catalog_with_group(&s, "Finance", "Ledger").await;
    let mut packages = Vec::new();
    for i in 0..3 {
        let p = package(c.id, &format!("P{i}"), None, at(10 + i));
        s.insert_package(&p, &audit()).await.unwrap();
        packages.push(p);
    }
    let [a, b, d] = [packages[0].clone(), packages[1].clone(), packages[2].clone()];
    // Many ids that do not exist around the real ones: several chunks where the driver chunks.
    let mut ids: Vec<AccessPackageId> = (0..1200).map(|_| AccessPackageId::new()).collect();
    ids.insert(3, a.id);
    ids.insert(700, b.id);
    ids.push(d.id);
    let mut found = s.packages_by_id(&ids).await.unwrap();
    found.sort_by_key(|p| p.id);
    let mut want = vec![a.clone(), b.clone(), d.clone()];
    want.sort_by_key(|p| p.id);
    assert_eq!(found, want);
    assert!(s.packages_by_id(&[]).await.unwrap().is_empty());

    let policy = |pkg: &steward_domain::package::AccessPackage, n: i64| AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: pkg.id,
        catalog_id: c.id,
        display_name: name(&format!("Policy {n}")),
        description: None,
        settings: serde_json::from_value(serde_json::json!({"allowedTargetScope": "allMemberUsers"})).unwrap(),
        created_date_time: at(100 + n),
        modified_date_time: at(100 + n),
    };
    let (pa, pb) = (policy(&a, 1), policy(&b, 2));
    s.insert_policy(&pa, &audit()).await.unwrap();
    s.insert_policy(&pb, &audit()).await.unwrap();
    let mut found = s.policies_by_id(&[pb.id, PolicyId::new(), pa.id, pa.id]).await.unwrap();
    found.sort_by_key(|p| p.display_name.as_str().to_owned());
    assert_eq!(found, vec![pa.clone(), pb.clone()]);

    // Grants: a has the Member and Owner roles, b the Member role, d none.
    for (pkg, role, n) in [(&a, 0, 1), (&a, 1, 2), (&b, 0, 3)] {
        s.add_role_scope(&role_scope(pkg.id, &added, role, at(200 + n)), &audit()).await.unwrap();
    }
    let mut keys = ids.clone();
    keys.push(a.id);
    let grants = s.package_grants_of(&keys).await.unwrap();
    let mut want = Vec::new();
    for p in [&a, &b, &d] {
        want.extend(s.package_grants(p.id).await.unwrap().into_iter().map(|g| (p.id, g)));
    }
    want.sort_by_key(|(p, g)| (*p, g.role_id));
    assert_eq!(grants, want, "by package and role, each once");
    assert_eq!(grants.len(), 3);

    // Incompatibilities: a → b, d → a (packages, both directions count), a → g (group).
    s.add_incompatible_package(a.id, b.id, &audit()).await.unwrap();
    s.add_incompatible_package(d.id, a.id, &audit()).await.unwrap();
    s.add_incompatible_group(a.id, g.id, &audit()).await.unwrap();
    let mut got = s.incompatibilities_of(&ids).await.unwrap();
    got.sort_by_key(|(p, c)| (*p, format!("{c:?}")));
    let mut want = Vec::new();
    for p in [&a, &b, &d] {
        let (packages, groups) = s.incompatibilities(p.id).await.unwrap();
        want.extend(packages.into_iter().map(|o| (p.id, Conflicting::Package(o))));
        want.extend(groups.into_iter().map(|o| (p.id, Conflicting::Group(o))));
    }
    want.sort_by_key(|(p, c)| (*p, format!("{c:?}")));
    assert_eq!(got, want, "the same as `incompatibilities` package by package");
    assert_eq!(got.len(), 5);
    assert!(s.incompatibilities_of(&[AccessPackageId::new()]).await.unwrap().is_empty());
}
