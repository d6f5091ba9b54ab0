//! Catalogs and their resources (a group added with its two roles, its scope and a request).

use steward_app::Store;
use steward_app::query::{
    CATALOGS, ListQuery, RESOURCE_REQUESTS, RESOURCE_ROLES, RESOURCE_SCOPES, RESOURCES, Relation,
};
use steward_domain::catalog::{self, Resource};
use steward_domain::enums::{CatalogState, RequestType};
use steward_domain::ids::{CatalogId, ResourceId, ResourceRoleId, ResourceScopeId};
use steward_store::SqlStore;

use crate::fixtures::*;

/// What a catalog holds: (resources, roles, scopes, requests).
async fn holdings(s: &SqlStore, c: CatalogId) -> (usize, usize, usize, usize) {
    let resources = s.list_resources(&ListQuery::all(&RESOURCES).scoped("catalog/id", c).unwrap()).await.unwrap();
    let roles =
        s.list_resource_roles(&ListQuery::all(&RESOURCE_ROLES).related(Relation::CatalogRoles, c)).await.unwrap();
    let scopes =
        s.list_resource_scopes(&ListQuery::all(&RESOURCE_SCOPES).related(Relation::CatalogScopes, c)).await.unwrap();
    let requests =
        s.list_resource_requests(&ListQuery::all(&RESOURCE_REQUESTS).scoped("catalog/id", c).unwrap()).await.unwrap();
    (resources.items.len(), roles.items.len(), scopes.items.len(), requests.items.len())
}

pub async fn catalogs_round_trip(s: SqlStore) {
    let mut c = catalog_named("Human Resources");
    c.modified_date_time = t("2030-01-02T03:04:05.123456Z");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    assert_eq!(s.get_catalog(c.id).await.unwrap().unwrap(), c);
    assert!(s.get_catalog(CatalogId::new()).await.unwrap().is_none());
    assert_conflict(s.insert_catalog(&c, None, &audit()).await, "the same catalog id twice");
    let other = catalog_named("Other");
    s.insert_catalog(&other, None, &audit()).await.unwrap();

    let read_at = c.modified_date_time;
    let mut changed = c.clone();
    changed.display_name = name("Ressources humaines — « RH »");
    changed.description = None;
    changed.state = CatalogState::Unpublished;
    changed.is_externally_visible = !c.is_externally_visible;
    changed.modified_date_time = t("2030-01-02T03:04:06.000001Z");
    s.update_catalog(&changed, read_at, &audit()).await.unwrap();
    assert_eq!(s.get_catalog(c.id).await.unwrap().unwrap(), changed);
    assert_conflict(s.update_catalog(&c, read_at, &audit()).await, "a write based on a stale read");
    assert_eq!(s.get_catalog(c.id).await.unwrap().unwrap(), changed, "the stale write did not land");
    assert_not_found(s.update_catalog(&catalog_named("Gone"), read_at, &audit()).await, "update of an unknown catalog");

    let page = s.list_catalogs(&query(&CATALOGS, "$filter=state eq 'unpublished'&$count=true")).await.unwrap();
    assert_eq!(page.items, vec![changed.clone()]);
    assert_eq!(page.count, Some(1));
    let all = s.list_catalogs(&ListQuery::all(&CATALOGS)).await.unwrap();
    assert_eq!(sorted_keys(&all, |x| x.id), sorted(vec![c.id, other.id]));

    s.delete_catalog(c.id, &audit()).await.unwrap();
    assert!(s.get_catalog(c.id).await.unwrap().is_none());
    assert_not_found(s.delete_catalog(c.id, &audit()).await, "delete of a deleted catalog");
    assert!(s.get_catalog(other.id).await.unwrap().is_some());
}

pub async fn catalog_deletion_rule(s: SqlStore) {
    let (c, g, added) = catalog_with_group(&s, "HR", "Payroll").await;
    let p = package(c.id, "Payroll access", None, at(3));
    s.insert_package(&p, &audit()).await.unwrap();

    assert_rule_conflict(s.delete_catalog(c.id, &audit()).await, "a catalog holding a package");
    assert_eq!(s.get_catalog(c.id).await.unwrap().unwrap(), c, "the catalog is still there");
    assert_eq!(holdings(&s, c.id).await, (1, 2, 1, 1), "and so is everything in it");
    assert!(s.get_package(p.id).await.unwrap().is_some());

    s.delete_package(p.id, &audit()).await.unwrap();
    s.delete_catalog(c.id, &audit()).await.unwrap();
    assert!(s.get_catalog(c.id).await.unwrap().is_none());
    assert!(s.get_resource(added.resource.id).await.unwrap().is_none(), "resources go with their catalog");
    for role in &added.roles {
        assert!(s.get_resource_role(role.id).await.unwrap().is_none(), "roles go with their catalog");
    }
    assert!(s.get_resource_scope(added.scope.id).await.unwrap().is_none(), "scopes go with their catalog");
    assert_eq!(holdings(&s, c.id).await, (0, 0, 0, 0), "requests go with their catalog");
    // The group itself stays, and is no longer a resource anywhere.
    assert!(s.get_group(g.id).await.unwrap().is_some());
    s.delete_group(g.id).await.unwrap();
}

pub async fn resources_add_list_and_remove(s: SqlStore) {
    let (c, g, added) = catalog_with_group(&s, "Engineering", "Prod admins").await;
    let origin = g.id.to_string();

    // What was added reads back exactly.
    assert_eq!(s.get_resource(added.resource.id).await.unwrap().unwrap(), added.resource);
    assert_eq!(s.get_resource_role(added.roles[0].id).await.unwrap().unwrap(), added.roles[0]);
    assert_eq!(s.get_resource_role(added.roles[1].id).await.unwrap().unwrap(), added.roles[1]);
    assert_eq!(s.get_resource_scope(added.scope.id).await.unwrap().unwrap(), added.scope);
    assert!(s.get_resource(ResourceId::new()).await.unwrap().is_none());
    assert!(s.get_resource_role(ResourceRoleId::new()).await.unwrap().is_none());
    assert!(s.get_resource_scope(ResourceScopeId::new()).await.unwrap().is_none());

    // The same group again: refused, and nothing of the second attempt is left behind.
    let again = catalog::group_resource(c.id, &g, at(3));
    assert_conflict(s.add_resource(&again, &add_request(&again), &audit()).await, "the same group twice in a catalog");
    assert_eq!(holdings(&s, c.id).await, (1, 2, 1, 1), "exactly one resource, 2 roles, 1 scope, 1 request");
    assert!(s.get_resource(again.resource.id).await.unwrap().is_none());
    assert!(s.get_resource_role(again.roles[0].id).await.unwrap().is_none());
    assert!(s.get_resource_scope(again.scope.id).await.unwrap().is_none());

    // The same group in another catalog is fine; lists are scoped to their catalog.
    let c2 = catalog_named("Operations");
    s.insert_catalog(&c2, None, &audit()).await.unwrap();
    let other = catalog::group_resource(c2.id, &g, at(4));
    s.add_resource(&other, &add_request(&other), &audit()).await.unwrap();
    let h = group("Readers");
    s.insert_group(&h).await.unwrap();
    let second = catalog::group_resource(c.id, &h, at(5));
    let second_req = add_request(&second);
    s.add_resource(&second, &second_req, &audit()).await.unwrap();
    assert_eq!(holdings(&s, c.id).await, (2, 4, 2, 2));
    assert_eq!(holdings(&s, c2.id).await, (1, 2, 1, 1));

    let res = s.list_resources(&ListQuery::all(&RESOURCES).scoped("catalog/id", c.id).unwrap()).await.unwrap();
    let mut want: Vec<Resource> = vec![added.resource.clone(), second.resource.clone()];
    want.sort_by(|a, b| bytes(&a.display_name, &b.display_name));
    assert_eq!(res.items, want, "ordered by displayName");
    let by_origin = s
        .list_resources(&query(&RESOURCES, &format!("$filter=originId eq '{origin}' and originSystem eq 'AadGroup'")))
        .await
        .unwrap();
    assert_eq!(sorted_keys(&by_origin, |r| r.id), sorted(vec![added.resource.id, other.resource.id]));
    let roles = s
        .list_resource_roles(
            &query(&RESOURCE_ROLES, "$filter=displayName eq 'Owner'").related(Relation::CatalogRoles, c.id),
        )
        .await
        .unwrap();
    assert_eq!(sorted_keys(&roles, |r| r.id), sorted(vec![added.roles[1].id, second.roles[1].id]));
    let roles_of_one = s
        .list_resource_roles(&ListQuery::all(&RESOURCE_ROLES).scoped("resource/id", added.resource.id).unwrap())
        .await
        .unwrap();
    assert_eq!(sorted_keys(&roles_of_one, |r| r.id), sorted(vec![added.roles[0].id, added.roles[1].id]));
    let scopes = s
        .list_resource_scopes(&ListQuery::all(&RESOURCE_SCOPES).scoped("resource/id", added.resource.id).unwrap())
        .await
        .unwrap();
    assert_eq!(scopes.items, vec![added.scope.clone()]);
    let requests = s
        .list_resource_requests(&ListQuery::all(&RESOURCE_REQUESTS).scoped("catalog/id", c.id).unwrap())
        .await
        .unwrap();
    assert_eq!(requests.items.len(), 2);
    let first_req = &requests.items[0];
    assert_eq!(
        (first_req.catalog_id, first_req.resource_id, first_req.request_type, first_req.created_date_time),
        (c.id, Some(added.resource.id), RequestType::AdminAdd, added.resource.created_date_time),
        "requests come in createdDateTime order"
    );
    assert_eq!(requests.items[1], second_req, "a request reads back exactly");

    // A role scope blocks removing the resource and deleting its group.
    let p = package(c.id, "Prod", None, at(6));
    s.insert_package(&p, &audit()).await.unwrap();
    let rrs = role_scope(p.id, &added, 0, at(7));
    s.add_role_scope(&rrs, &audit()).await.unwrap();
    assert_rule_conflict(
        s.remove_resource(added.resource.id, &remove_request(&added, at(8)), &audit()).await,
        "a resource in use",
    );
    assert_eq!(holdings(&s, c.id).await, (2, 4, 2, 2), "the refused removal wrote nothing, not even its request");
    assert_rule_conflict(s.delete_group(g.id).await, "a group that is a catalog resource");
    assert!(s.get_group(g.id).await.unwrap().is_some());

    s.remove_role_scope(p.id, rrs.id, &audit()).await.unwrap();
    s.remove_resource(added.resource.id, &remove_request(&added, at(9)), &audit()).await.unwrap();
    assert!(s.get_resource(added.resource.id).await.unwrap().is_none());
    assert!(s.get_resource_role(added.roles[0].id).await.unwrap().is_none());
    assert!(s.get_resource_scope(added.scope.id).await.unwrap().is_none());
    assert_eq!(holdings(&s, c.id).await, (1, 2, 1, 3), "the removal is recorded as a request");
    let removal =
        s.list_resource_requests(&query(&RESOURCE_REQUESTS, "$filter=requestType eq 'adminRemove'")).await.unwrap();
    assert_eq!(removal.items.len(), 1);
    assert_eq!(removal.items[0].request_type, RequestType::AdminRemove);
    assert_eq!(removal.items[0].resource_id, Some(added.resource.id));
    assert_not_found(
        s.remove_resource(added.resource.id, &remove_request(&added, at(10)), &audit()).await,
        "remove of a removed resource",
    );

    // Still a resource of the other catalog: the group stays until that one goes too.
    assert_rule_conflict(s.delete_group(g.id).await, "a group still in another catalog");
    s.remove_resource(other.resource.id, &remove_request(&other, at(11)), &audit()).await.unwrap();
    s.delete_group(g.id).await.unwrap();
    assert!(s.get_group(g.id).await.unwrap().is_none());
}

/// The app checks that the group exists before it calls `add_resource`, outside the store's
/// transaction; the group can be deleted in between (`delete_group` finds it in no catalog and
/// goes ahead). The store must then refuse the resource, or the catalog holds a resource whose
/// group is gone, which `check_group_deletable` exists to prevent.
pub async fn resources_need_an_existing_group(s: SqlStore) {
    let c = catalog_named("Dangling");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let g = group("Short lived");
    s.insert_group(&g).await.unwrap();
    let added = catalog::group_resource(c.id, &g, at(2)); // app: get_group(g) found it
    s.delete_group(g.id).await.unwrap(); // meanwhile another request deletes it
    let r = s.add_resource(&added, &add_request(&added), &audit()).await;
    assert!(r.is_err(), "a resource for a deleted group was accepted");
    assert_eq!(holdings(&s, c.id).await, (0, 0, 0, 0));
}
