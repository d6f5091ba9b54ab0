//! Delegated administration: role assignments on the whole service and on one catalog, their
//! uniqueness and references, filters, and what removing a user or a catalog does to them;
//! a catalog created together with its creator's owner role, atomically.

use steward_app::Store;
use steward_app::ports::RoleAssignmentFilter;
use steward_domain::ids::{CatalogId, RoleAssignmentId, UserId};
use steward_domain::role::{AppScope, Role, RoleAssignment};
use steward_store::SqlStore;

use crate::fixtures::*;

pub async fn role_assignments(s: SqlStore) {
    let (alice, bob) = (user("alice@x.io"), user("bob@x.io"));
    s.insert_user(&alice).await.unwrap();
    s.insert_user(&bob).await.unwrap();
    let (a, b) = (catalog_named("A"), catalog_named("B"));
    s.insert_catalog(&a, None, &audit()).await.unwrap();
    s.insert_catalog(&b, None, &audit()).await.unwrap();
    let give = |u: UserId, r: Role, scope: AppScope| RoleAssignment::new(u, r, scope).unwrap();
    let owner_a = give(alice.id, Role::CatalogOwner, AppScope::Catalog(a.id));
    let reader_b = give(alice.id, Role::CatalogReader, AppScope::Catalog(b.id));
    let creator = give(bob.id, Role::CatalogCreator, AppScope::Tenant);
    let manager_a = give(bob.id, Role::AccessPackageManager, AppScope::Catalog(a.id));
    for (i, x) in [&owner_a, &reader_b, &creator, &manager_a].into_iter().enumerate() {
        s.insert_role_assignment(x, at(i as i64 + 1), &audit()).await.unwrap();
    }
    assert_conflict(
        s.insert_role_assignment(&give(alice.id, Role::CatalogOwner, AppScope::Catalog(a.id)), at(9), &audit()).await,
        "the same role twice at the same scope",
    );
    assert_not_found(
        s.insert_role_assignment(&give(UserId::new(), Role::CatalogOwner, AppScope::Catalog(a.id)), at(9), &audit())
            .await,
        "a role for a missing user",
    );
    assert_not_found(
        s.insert_role_assignment(
            &give(alice.id, Role::CatalogOwner, AppScope::Catalog(CatalogId::new())),
            at(9),
            &audit(),
        )
        .await,
        "a role in a missing catalog",
    );

    assert_eq!(s.get_role_assignment(owner_a.id).await.unwrap(), Some(owner_a.clone()));
    assert!(s.get_role_assignment(RoleAssignmentId::new()).await.unwrap().is_none());
    assert_eq!(s.role_assignments_of(alice.id).await.unwrap(), [owner_a.clone(), reader_b.clone()]);
    let all = s.list_role_assignments(&RoleAssignmentFilter::default()).await.unwrap();
    assert_eq!(all, [owner_a.clone(), reader_b.clone(), creator.clone(), manager_a.clone()], "in creation order");
    let in_a = RoleAssignmentFilter { catalogs: Some(vec![a.id]), ..RoleAssignmentFilter::default() };
    assert_eq!(s.list_role_assignments(&in_a).await.unwrap(), [owner_a.clone(), manager_a.clone()]);
    let none = RoleAssignmentFilter { catalogs: Some(vec![]), ..RoleAssignmentFilter::default() };
    assert!(s.list_role_assignments(&none).await.unwrap().is_empty());
    let owners = RoleAssignmentFilter { role: Some(Role::CatalogOwner), ..RoleAssignmentFilter::default() };
    assert_eq!(s.list_role_assignments(&owners).await.unwrap(), std::slice::from_ref(&owner_a));
    let tenant = RoleAssignmentFilter { scope: Some(AppScope::Tenant), ..RoleAssignmentFilter::default() };
    assert_eq!(s.list_role_assignments(&tenant).await.unwrap(), std::slice::from_ref(&creator));
    let bobs_in_a = RoleAssignmentFilter {
        principal: Some(bob.id),
        scope: Some(AppScope::Catalog(a.id)),
        ..RoleAssignmentFilter::default()
    };
    assert_eq!(s.list_role_assignments(&bobs_in_a).await.unwrap(), std::slice::from_ref(&manager_a));

    s.delete_role_assignment(reader_b.id, &audit()).await.unwrap();
    assert_not_found(s.delete_role_assignment(reader_b.id, &audit()).await, "a removed role assignment");
    // Roles go with their catalog and with their user.
    s.delete_catalog(a.id, &audit()).await.unwrap();
    assert_eq!(s.role_assignments_of(bob.id).await.unwrap(), std::slice::from_ref(&creator));
    s.delete_user(bob.id).await.unwrap();
    assert!(s.list_role_assignments(&RoleAssignmentFilter::default()).await.unwrap().is_empty());
}

pub async fn a_catalog_and_its_creators_owner_role_are_written_together(s: SqlStore) {
    let carol = user("carol@x.io");
    s.insert_user(&carol).await.unwrap();
    let c = catalog_named("Carol's");
    let owner = RoleAssignment::new(carol.id, Role::CatalogOwner, AppScope::Catalog(c.id)).unwrap();
    s.insert_catalog(&c, Some(&owner), &audit()).await.unwrap();
    assert_eq!(s.role_assignments_of(carol.id).await.unwrap(), [owner]);

    // An owner who does not exist: neither the catalog nor the role is written.
    let d = catalog_named("Nobody's");
    let ghost = RoleAssignment::new(UserId::new(), Role::CatalogOwner, AppScope::Catalog(d.id)).unwrap();
    assert_not_found(s.insert_catalog(&d, Some(&ghost), &audit()).await, "a catalog with a missing owner");
    assert!(s.get_catalog(d.id).await.unwrap().is_none(), "nothing half-written");
}
