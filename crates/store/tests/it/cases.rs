//! The contract cases, generic over the backend: each takes a fresh, migrated store.

use std::collections::HashSet;

use jiff::Timestamp;
use steward_app::auth::ApiToken;
use steward_app::ports::Page;
use steward_app::query::{
    ACCESS_PACKAGES, CATALOGS, GROUPS, ListQuery, RESOURCE_REQUESTS, RESOURCE_ROLES, RESOURCE_SCOPES, RESOURCES,
    Relation, USERS,
};
use steward_app::{Store, StoreError};
use steward_domain::DomainError;
use steward_domain::catalog::{self, Catalog, ResourceRequest};
use steward_domain::directory::{Group, User};
use steward_domain::enums::{CatalogState, RequestState, RequestType, UserType};
use steward_domain::ids::{
    AccessPackageId, CatalogId, GroupId, ResourceRequestId, ResourceRoleScopeId, TokenId, UserId,
};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::text::DisplayName;
use steward_store::SqlStore;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn at(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(1_900_000_000_000_000 + micros).unwrap()
}

fn user(upn: &str) -> User {
    User {
        id: UserId::new(),
        display_name: DisplayName::parse(upn.split('@').next().unwrap()).unwrap(),
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

fn group(name: &str) -> Group {
    Group {
        id: GroupId::new(),
        display_name: DisplayName::parse(name).unwrap(),
        description: Some(format!("{name} team")),
        mail_nickname: name.to_lowercase(),
        mail_enabled: false,
        security_enabled: true,
        created_date_time: at(0),
    }
}

fn catalog_named(name: &str) -> Catalog {
    catalog::new_catalog(
        DisplayName::parse(name).unwrap(),
        Some("d".into()),
        Some(CatalogState::Published),
        Some(true),
        at(1),
    )
}

fn package(catalog: CatalogId, name: &str, description: Option<&str>, created: Timestamp) -> AccessPackage {
    AccessPackage {
        id: AccessPackageId::new(),
        catalog_id: catalog,
        display_name: DisplayName::parse(name).unwrap(),
        description: description.map(str::to_owned),
        is_hidden: name.len().is_multiple_of(2),
        created_date_time: created,
        modified_date_time: created,
    }
}

fn add_request(catalog: CatalogId, kind: RequestType) -> ResourceRequest {
    ResourceRequest {
        id: ResourceRequestId::new(),
        catalog_id: catalog,
        resource_id: None,
        request_type: kind,
        state: RequestState::Delivered,
        created_date_time: at(5),
    }
}

fn query(schema: &'static steward_app::query::Schema, q: &str) -> ListQuery {
    ListQuery::from_options(schema, &steward_odata::parse_query(q).unwrap()).unwrap()
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn is_rule_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Rule(DomainError::Conflict(_))))
}

fn ids<T, K: Ord + Clone>(p: &Page<T>, key: impl Fn(&T) -> K) -> Vec<K> {
    let mut v: Vec<K> = p.items.iter().map(key).collect();
    v.sort();
    v
}

pub async fn users_round_trip(s: SqlStore) {
    let mut u = user("adele@contoso.example");
    s.insert_user(&u).await.unwrap();
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap(), u);
    assert_eq!(s.user_by_upn("ADELE@Contoso.Example").await.unwrap().unwrap().id, u.id);
    assert!(is_conflict(s.insert_user(&user("Adele@CONTOSO.example")).await), "UPNs are unique regardless of case");

    let boss = user("boss@contoso.example");
    s.insert_user(&boss).await.unwrap();
    u.manager = Some(boss.id);
    u.user_type = UserType::Guest;
    u.mail = None;
    u.department = Some("Marketing".into());
    s.update_user(&u).await.unwrap();
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap(), u);

    s.delete_user(boss.id).await.unwrap();
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap().manager, None, "deleting the manager clears the link");
    assert!(matches!(s.delete_user(boss.id).await, Err(StoreError::NotFound { .. })));
    assert!(s.get_user(UserId::new()).await.unwrap().is_none());
}

pub async fn directory_links(s: SqlStore) {
    let g = group("Sales");
    s.insert_group(&g).await.unwrap();
    let (a, b, c) = (user("a@x.io"), user("b@x.io"), user("c@x.io"));
    for u in [&a, &b, &c] {
        s.insert_user(u).await.unwrap();
    }
    s.add_member(g.id, a.id).await.unwrap();
    s.add_member(g.id, b.id).await.unwrap();
    assert!(is_conflict(s.add_member(g.id, a.id).await));
    s.add_owner(g.id, c.id).await.unwrap();
    let members = s.list_users(&ListQuery::all(&USERS).related(Relation::GroupMembers, g.id)).await.unwrap();
    assert_eq!(ids(&members, |u| u.id), {
        let mut v = vec![a.id, b.id];
        v.sort();
        v
    });
    let owners = s.list_users(&ListQuery::all(&USERS).related(Relation::GroupOwners, g.id)).await.unwrap();
    assert_eq!(ids(&owners, |u| u.id), vec![c.id]);
    s.remove_member(g.id, a.id).await.unwrap();
    assert!(matches!(s.remove_member(g.id, a.id).await, Err(StoreError::NotFound { .. })));

    s.add_sponsor(a.id, c.id).await.unwrap();
    assert!(is_conflict(s.add_sponsor(a.id, c.id).await));
    let sponsors = s.list_users(&ListQuery::all(&USERS).related(Relation::Sponsors, a.id)).await.unwrap();
    assert_eq!(ids(&sponsors, |u| u.id), vec![c.id]);
    s.remove_sponsor(a.id, c.id).await.unwrap();
    assert!(s.list_users(&ListQuery::all(&USERS).related(Relation::Sponsors, a.id)).await.unwrap().items.is_empty());

    let mut b2 = b.clone();
    b2.manager = Some(c.id);
    s.update_user(&b2).await.unwrap();
    let reports = s.list_users(&ListQuery::all(&USERS).related(Relation::DirectReports, c.id)).await.unwrap();
    assert_eq!(ids(&reports, |u| u.id), vec![b.id]);

    s.delete_group(g.id).await.unwrap();
    assert!(s.list_users(&ListQuery::all(&USERS).related(Relation::GroupOwners, g.id)).await.unwrap().items.is_empty());
}

pub async fn catalog_deletion_rule(s: SqlStore) {
    let c = catalog_named("HR");
    s.insert_catalog(&c).await.unwrap();
    assert_eq!(s.get_catalog(c.id).await.unwrap().unwrap(), c);
    let g = group("Payroll");
    s.insert_group(&g).await.unwrap();
    let added = catalog::group_resource(c.id, &g, at(2));
    s.add_resource(&added, &add_request(c.id, RequestType::AdminAdd)).await.unwrap();
    let p = package(c.id, "Payroll access", None, at(3));
    s.insert_package(&p).await.unwrap();

    assert!(is_rule_conflict(s.delete_catalog(c.id).await), "a catalog with a package cannot be deleted");
    assert!(s.get_catalog(c.id).await.unwrap().is_some());

    s.delete_package(p.id).await.unwrap();
    s.delete_catalog(c.id).await.unwrap();
    assert!(s.get_catalog(c.id).await.unwrap().is_none());
    assert!(s.get_resource(added.resource.id).await.unwrap().is_none(), "resources go with their catalog");
    assert!(s.get_resource_role(added.roles[0].id).await.unwrap().is_none());
    assert!(matches!(s.delete_catalog(c.id).await, Err(StoreError::NotFound { .. })));
}

pub async fn resources_add_and_remove(s: SqlStore) {
    let c = catalog_named("Engineering");
    s.insert_catalog(&c).await.unwrap();
    let g = group("Prod");
    s.insert_group(&g).await.unwrap();
    let added = catalog::group_resource(c.id, &g, at(2));
    s.add_resource(&added, &add_request(c.id, RequestType::AdminAdd)).await.unwrap();

    // the same group again: refused, and nothing of the second attempt is left behind
    let again = catalog::group_resource(c.id, &g, at(3));
    assert!(is_conflict(s.add_resource(&again, &add_request(c.id, RequestType::AdminAdd)).await));
    let roles =
        s.list_resource_roles(&ListQuery::all(&RESOURCE_ROLES).related(Relation::CatalogRoles, c.id)).await.unwrap();
    assert_eq!(roles.items.len(), 2);
    let scopes =
        s.list_resource_scopes(&ListQuery::all(&RESOURCE_SCOPES).related(Relation::CatalogScopes, c.id)).await.unwrap();
    assert_eq!(scopes.items.len(), 1);
    let reqs = s
        .list_resource_requests(&ListQuery::all(&RESOURCE_REQUESTS).scoped("catalog/id", c.id).unwrap())
        .await
        .unwrap();
    assert_eq!(reqs.items.len(), 1);
    let res = s.list_resources(&ListQuery::all(&RESOURCES).scoped("catalog/id", c.id).unwrap()).await.unwrap();
    assert_eq!(res.items, vec![added.resource.clone()]);

    let p = package(c.id, "Prod", None, at(4));
    s.insert_package(&p).await.unwrap();
    let rrs = ResourceRoleScope {
        id: ResourceRoleScopeId::new(),
        access_package_id: p.id,
        role_id: added.roles[0].id,
        scope_id: added.scope.id,
        created_date_time: at(5),
    };
    s.add_role_scope(&rrs).await.unwrap();
    assert!(is_rule_conflict(s.remove_resource(added.resource.id, &add_request(c.id, RequestType::AdminRemove)).await));
    assert!(is_rule_conflict(s.delete_group(g.id).await), "a group that is a catalog resource stays");

    s.remove_role_scope(p.id, rrs.id).await.unwrap();
    s.remove_resource(added.resource.id, &add_request(c.id, RequestType::AdminRemove)).await.unwrap();
    assert!(s.get_resource(added.resource.id).await.unwrap().is_none());
    let reqs = s
        .list_resource_requests(&ListQuery::all(&RESOURCE_REQUESTS).scoped("catalog/id", c.id).unwrap())
        .await
        .unwrap();
    assert_eq!(reqs.items.len(), 2);
    s.delete_group(g.id).await.unwrap();
}

pub async fn packages_role_scopes_and_incompatibility(s: SqlStore) {
    let c = catalog_named("Finance");
    s.insert_catalog(&c).await.unwrap();
    let g = group("Ledger");
    s.insert_group(&g).await.unwrap();
    let added = catalog::group_resource(c.id, &g, at(2));
    s.add_resource(&added, &add_request(c.id, RequestType::AdminAdd)).await.unwrap();
    let (a, b) = (package(c.id, "A", Some("first"), at(3)), package(c.id, "B", None, at(4)));
    s.insert_package(&a).await.unwrap();
    s.insert_package(&b).await.unwrap();
    assert_eq!(s.get_package(a.id).await.unwrap().unwrap(), a);

    let rrs = ResourceRoleScope {
        id: ResourceRoleScopeId::new(),
        access_package_id: a.id,
        role_id: added.roles[0].id,
        scope_id: added.scope.id,
        created_date_time: at(6),
    };
    s.add_role_scope(&rrs).await.unwrap();
    let dup = ResourceRoleScope { id: ResourceRoleScopeId::new(), ..rrs.clone() };
    assert!(is_conflict(s.add_role_scope(&dup).await));
    assert_eq!(s.get_role_scope(rrs.id).await.unwrap().unwrap(), rrs);
    assert!(matches!(s.remove_role_scope(b.id, rrs.id).await, Err(StoreError::NotFound { .. })), "wrong package");

    s.add_incompatible_package(a.id, b.id).await.unwrap();
    assert!(is_conflict(s.add_incompatible_package(a.id, b.id).await));
    s.add_incompatible_group(a.id, g.id).await.unwrap();
    assert!(is_conflict(s.add_incompatible_group(a.id, g.id).await));
    let inc =
        s.list_packages(&ListQuery::all(&ACCESS_PACKAGES).related(Relation::IncompatiblePackages, a.id)).await.unwrap();
    assert_eq!(ids(&inc, |p| p.id), vec![b.id]);
    let with = s
        .list_packages(&ListQuery::all(&ACCESS_PACKAGES).related(Relation::PackagesIncompatibleWith, b.id))
        .await
        .unwrap();
    assert_eq!(ids(&with, |p| p.id), vec![a.id]);
    let groups = s.list_groups(&ListQuery::all(&GROUPS).related(Relation::IncompatibleGroups, a.id)).await.unwrap();
    assert_eq!(ids(&groups, |g| g.id), vec![g.id]);

    s.remove_incompatible_group(a.id, g.id).await.unwrap();
    assert!(matches!(s.remove_incompatible_group(a.id, g.id).await, Err(StoreError::NotFound { .. })));

    s.delete_package(a.id).await.unwrap();
    assert!(s.get_role_scope(rrs.id).await.unwrap().is_none(), "role scopes go with their package");
    let with = s
        .list_packages(&ListQuery::all(&ACCESS_PACKAGES).related(Relation::PackagesIncompatibleWith, b.id))
        .await
        .unwrap();
    assert!(with.items.is_empty(), "incompatibility links go with the package");
}

/// Inserts packages with varied names, cases, descriptions (some null) and times.
async fn seed_packages(s: &SqlStore) -> (Vec<AccessPackage>, CatalogId, CatalogId) {
    let (c1, c2) = (catalog_named("One"), catalog_named("Two"));
    s.insert_catalog(&c1).await.unwrap();
    s.insert_catalog(&c2).await.unwrap();
    let names = [
        "alpha",
        "Alpha",
        "BETA",
        "beta",
        "Gamma",
        "gamma ray",
        "delta",
        "Delta Force",
        "epsilon",
        "50% off",
        "under_score",
        "zeta",
    ];
    let mut out = Vec::new();
    for i in 0..30 {
        let name = format!("{} {}", names[i % names.len()], i / names.len());
        let desc = match i % 3 {
            0 => None,
            1 => Some("Finance tools"),
            _ => Some("engineering"),
        };
        let p = package(if i % 2 == 0 { c1.id } else { c2.id }, &name, desc, at(i as i64 * 1000));
        s.insert_package(&p).await.unwrap();
        out.push(p);
    }
    (out, c1.id, c2.id)
}

pub async fn filters_match_an_oracle(s: SqlStore) {
    let (all, c1, _) = seed_packages(&s).await;
    let cutoff = at(10_000);
    type Pred = Box<dyn Fn(&AccessPackage) -> bool>;
    let cases: Vec<(String, Pred)> = vec![
        ("displayName eq 'alpha 0'".into(), Box::new(|p| p.display_name.as_str() == "alpha 0")),
        ("description ne 'engineering'".into(), Box::new(|p| p.description.as_deref() != Some("engineering"))),
        ("description eq null".into(), Box::new(|p| p.description.is_none())),
        ("description ne null".into(), Box::new(|p| p.description.is_some())),
        (format!("createdDateTime gt {cutoff}"), Box::new(move |p| p.created_date_time > cutoff)),
        (format!("createdDateTime le {cutoff}"), Box::new(move |p| p.created_date_time <= cutoff)),
        ("startswith(displayName,'al')".into(), Box::new(|p| p.display_name.as_str().to_lowercase().starts_with("al"))),
        ("endswith(displayName,' 1')".into(), Box::new(|p| p.display_name.as_str().ends_with(" 1"))),
        ("contains(displayName,'ET')".into(), Box::new(|p| p.display_name.as_str().to_lowercase().contains("et"))),
        ("contains(displayName,'50%')".into(), Box::new(|p| p.display_name.as_str().contains("50%"))),
        ("contains(displayName,'_')".into(), Box::new(|p| p.display_name.as_str().contains('_'))),
        ("tolower(displayName) eq 'beta 0'".into(), Box::new(|p| p.display_name.as_str().to_lowercase() == "beta 0")),
        (
            "displayName in ('zeta 0', 'delta 1', 'nope')".into(),
            Box::new(|p| ["zeta 0", "delta 1"].contains(&p.display_name.as_str())),
        ),
        (
            format!("catalog/id eq '{c1}' and (isHidden eq true or not (contains(description,'fin')))"),
            Box::new(move |p| {
                p.catalog_id == c1
                    && (p.is_hidden || !p.description.as_deref().unwrap_or("").to_lowercase().contains("fin"))
            }),
        ),
        ("isHidden".into(), Box::new(|p| p.is_hidden)),
        ("not (isHidden eq true)".into(), Box::new(|p| !p.is_hidden)),
    ];
    for (filter, pred) in cases {
        let mut q = query(&ACCESS_PACKAGES, &format!("$filter={filter}&$top=999"));
        q.count = true;
        let page = s.list_packages(&q).await.unwrap();
        let mut want: Vec<AccessPackageId> = all.iter().filter(|p| pred(p)).map(|p| p.id).collect();
        want.sort();
        assert_eq!(ids(&page, |p| p.id), want, "$filter={filter}");
        assert_eq!(page.count, Some(want.len() as u64), "count for $filter={filter}");
    }

    // $search, $orderby desc, $top + $skip and $count independent of $top
    let page = s.list_packages(&query(&ACCESS_PACKAGES, "$search=\"finance\"&$top=999")).await.unwrap();
    assert_eq!(page.items.len(), all.iter().filter(|p| p.description.as_deref() == Some("Finance tools")).count());
    let page = s.list_packages(&query(&ACCESS_PACKAGES, "$orderby=displayName desc&$top=999")).await.unwrap();
    let mut names: Vec<String> = all.iter().map(|p| p.display_name.as_str().to_owned()).collect();
    names.sort();
    names.reverse();
    assert_eq!(
        page.items.iter().map(|p| p.display_name.as_str().to_owned()).collect::<Vec<_>>(),
        names,
        "bytewise order on both databases"
    );
    let page =
        s.list_packages(&query(&ACCESS_PACKAGES, "$orderby=displayName&$top=5&$skip=10&$count=true")).await.unwrap();
    names.reverse();
    assert_eq!(
        page.items.iter().map(|p| p.display_name.as_str().to_owned()).collect::<Vec<_>>(),
        names[10..15].to_vec()
    );
    assert_eq!(page.count, Some(30));
    let catalogs = s.list_catalogs(&query(&CATALOGS, "$filter=state eq 'published'")).await.unwrap();
    assert_eq!(catalogs.items.len(), 2);
}

/// Follows `next` cursors to the end, optionally inserting rows between pages.
async fn walk(
    s: &SqlStore,
    mut q: ListQuery,
    mut between: impl FnMut(usize) -> Option<AccessPackage>,
) -> Vec<AccessPackage> {
    let mut seen = Vec::new();
    for page_no in 0.. {
        let page = s.list_packages(&q).await.unwrap();
        assert!(page.items.len() <= q.top as usize);
        seen.extend(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
        if let Some(p) = between(page_no) {
            s.insert_package(&p).await.unwrap();
        }
    }
    seen
}

pub async fn keyset_paging_is_stable_under_inserts(s: SqlStore) {
    let (all, c1, _) = seed_packages(&s).await;
    for order in ["displayName", "displayName desc", "description", "createdDateTime desc"] {
        let q = query(&ACCESS_PACKAGES, &format!("$orderby={order}&$top=7"));
        let seen = walk(&s, q.clone(), |_| None).await;
        let full = s.list_packages(&query(&ACCESS_PACKAGES, &format!("$orderby={order}&$top=999"))).await.unwrap();
        assert_eq!(
            seen.iter().map(|p| p.id).collect::<Vec<_>>(),
            full.items.iter().map(|p| p.id).collect::<Vec<_>>(),
            "order {order}"
        );
        assert_eq!(seen.len(), all.len());
    }
    // Inserting while paging: nothing seen twice, nothing of the original set missed.
    let q = query(&ACCESS_PACKAGES, "$orderby=displayName&$top=4");
    let mut added = Vec::new();
    let seen = walk(&s, q, |i| {
        let p = package(
            c1,
            &format!("{} inserted {i}", if i % 2 == 0 { "aaa" } else { "zzz" }),
            None,
            at(99_000 + i as i64),
        );
        added.push(p.clone());
        Some(p)
    })
    .await;
    let unique: HashSet<_> = seen.iter().map(|p| p.id).collect();
    assert_eq!(unique.len(), seen.len(), "a row was seen twice");
    for p in &all {
        assert!(unique.contains(&p.id), "{} was missed", p.display_name);
    }
    for p in &added {
        if p.display_name.as_str().starts_with("zzz") {
            assert!(unique.contains(&p.id), "rows sorting after the cursor appear later");
        }
    }
    let names: Vec<&str> = seen.iter().map(|p| p.display_name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

pub async fn tokens(s: SqlStore) {
    let u = user("t@x.io");
    s.insert_user(&u).await.unwrap();
    let admin =
        ApiToken { id: TokenId::new(), name: "ci".into(), hash: "a".repeat(64), user_id: None, created_at: at(1) };
    let personal = ApiToken {
        id: TokenId::new(),
        name: "me".into(),
        hash: "b".repeat(64),
        user_id: Some(u.id),
        created_at: at(2),
    };
    s.insert_token(&admin).await.unwrap();
    s.insert_token(&personal).await.unwrap();
    assert!(is_conflict(s.insert_token(&ApiToken { id: TokenId::new(), ..admin.clone() }).await), "hashes are unique");
    assert_eq!(s.token_by_hash(&"b".repeat(64)).await.unwrap().unwrap(), personal);
    assert_eq!(s.list_tokens().await.unwrap(), vec![admin.clone(), personal.clone()]);
    s.delete_user(u.id).await.unwrap();
    assert!(s.token_by_hash(&"b".repeat(64)).await.unwrap().is_none(), "a personal token dies with its user");
    s.delete_token(admin.id).await.unwrap();
    assert!(s.list_tokens().await.unwrap().is_empty());
}

pub async fn concurrent_links_have_one_winner(s: SqlStore) {
    let c = catalog_named("Race");
    s.insert_catalog(&c).await.unwrap();
    for round in 0..5 {
        let (a, b) =
            (package(c.id, &format!("a{round}"), None, at(1)), package(c.id, &format!("b{round}"), None, at(2)));
        s.insert_package(&a).await.unwrap();
        s.insert_package(&b).await.unwrap();
        let (s1, s2) = (s.clone(), s.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { s1.add_incompatible_package(a.id, b.id).await }),
            tokio::spawn(async move { s2.add_incompatible_package(a.id, b.id).await })
        );
        let results = [r1.unwrap(), r2.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert_eq!(results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count(), 1, "{results:?}");
    }
}

pub async fn concurrent_resource_adds_have_one_winner(s: SqlStore) {
    let c = catalog_named("Race");
    s.insert_catalog(&c).await.unwrap();
    for round in 0..5 {
        let g = group(&format!("G{round}"));
        s.insert_group(&g).await.unwrap();
        let (x, y) = (catalog::group_resource(c.id, &g, at(1)), catalog::group_resource(c.id, &g, at(2)));
        let (s1, s2) = (s.clone(), s.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move {
                s1.add_resource(&x, &add_request(x.resource.catalog_id, RequestType::AdminAdd)).await
            }),
            tokio::spawn(async move {
                s2.add_resource(&y, &add_request(y.resource.catalog_id, RequestType::AdminAdd)).await
            })
        );
        let results = [r1.unwrap(), r2.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    }
    let roles =
        s.list_resource_roles(&ListQuery::all(&RESOURCE_ROLES).related(Relation::CatalogRoles, c.id)).await.unwrap();
    assert_eq!(roles.items.len(), 10, "exactly one resource (two roles) per group");
}

pub async fn optimistic_updates_never_lose_a_write(s: SqlStore) {
    let c = catalog_named("Edit");
    s.insert_catalog(&c).await.unwrap();
    let read_at = c.modified_date_time;
    let mut first = c.clone();
    first.display_name = DisplayName::parse("First").unwrap();
    first.modified_date_time = at(100);
    let mut second = c.clone();
    second.description = Some("second".into());
    second.modified_date_time = at(101);
    s.update_catalog(&first, read_at).await.unwrap();
    assert!(is_conflict(s.update_catalog(&second, read_at).await), "a write based on a stale read must not land");
    assert_eq!(s.get_catalog(c.id).await.unwrap().unwrap(), first);
    assert!(matches!(s.update_catalog(&catalog_named("Gone"), read_at).await, Err(StoreError::NotFound { .. })));

    let p = package(c.id, "P", None, at(1));
    s.insert_package(&p).await.unwrap();
    let mut p2 = p.clone();
    p2.is_hidden = !p.is_hidden;
    p2.modified_date_time = at(2);
    s.update_package(&p2, p.modified_date_time).await.unwrap();
    assert!(is_conflict(s.update_package(&p2, p.modified_date_time).await));
    assert_eq!(s.get_package(p.id).await.unwrap().unwrap(), p2);
}

pub async fn policies_round_trip(s: SqlStore) {
    use steward_app::query::POLICIES;
    use steward_domain::ids::PolicyId;
    use steward_domain::policy::{AssignmentPolicy, PolicySettings};

    let c = catalog_named("Policies");
    s.insert_catalog(&c).await.unwrap();
    let pkg = package(c.id, "Pkg", None, at(1));
    s.insert_package(&pkg).await.unwrap();
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
        display_name: DisplayName::parse("Self service").unwrap(),
        description: Some("d".into()),
        settings,
        created_date_time: at(2),
        modified_date_time: at(2),
    };
    s.insert_policy(&p).await.unwrap();
    assert_eq!(s.get_policy(p.id).await.unwrap().unwrap(), p, "every setting round-trips");
    let listed = s
        .list_policies(&query(
            &POLICIES,
            &format!("$filter=accessPackage/id eq '{}' and allowedTargetScope eq 'specificDirectoryUsers'", pkg.id),
        ))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![p.clone()]);

    assert!(is_rule_conflict(s.delete_package(pkg.id).await), "a package with a policy stays");

    let mut changed = p.clone();
    changed.display_name = DisplayName::parse("Renamed").unwrap();
    changed.settings.questions.clear();
    changed.modified_date_time = at(3);
    s.update_policy(&changed, p.modified_date_time).await.unwrap();
    assert!(is_conflict(s.update_policy(&changed, p.modified_date_time).await), "stale version");
    assert_eq!(s.get_policy(p.id).await.unwrap().unwrap(), changed);

    let orphan = AssignmentPolicy { id: PolicyId::new(), access_package_id: AccessPackageId::new(), ..p.clone() };
    assert!(matches!(s.insert_policy(&orphan).await, Err(StoreError::NotFound { .. })));

    s.delete_policy(p.id).await.unwrap();
    assert!(matches!(s.delete_policy(p.id).await, Err(StoreError::NotFound { .. })));
    s.delete_package(pkg.id).await.unwrap();
}
