//! Users, groups, their links (members, owners, sponsors, manager) and API tokens.

use steward_app::auth::ApiToken;
use steward_app::query::{GROUPS, ListQuery, Relation, USERS};
use steward_app::{Store, StoreError};
use steward_domain::enums::UserType;
use steward_domain::ids::{GroupId, TokenId, UserId};
use steward_domain::role::{AppScope, Role};
use steward_store::SqlStore;

use crate::fixtures::*;

async fn related_users(s: &SqlStore, relation: Relation, id: impl ToString) -> Vec<UserId> {
    let page = s.list_users(&ListQuery::all(&USERS).related(relation, id)).await.unwrap();
    sorted_keys(&page, |u| u.id)
}

pub async fn users_round_trip(s: SqlStore) {
    s.ping().await.unwrap();
    let mut u = user("adele.vance@contoso.example");
    s.insert_user(&u).await.unwrap();
    let got = s.get_user(u.id).await.unwrap().unwrap();
    assert_eq!(got, u, "every field, the timestamp to the microsecond");
    assert_eq!(got.created_date_time.subsec_microsecond(), 123_456);
    assert_eq!(s.user_by_upn("ADELE.VANCE@Contoso.Example").await.unwrap(), Some(u.clone()), "UPN lookup ignores case");
    assert_eq!(s.user_by_upn("adele.vance@contoso.example").await.unwrap(), Some(u.clone()));
    assert!(s.user_by_upn("nobody@contoso.example").await.unwrap().is_none());
    assert!(s.get_user(UserId::new()).await.unwrap().is_none());

    // A second user whose UPN differs only in case.
    assert_conflict(s.insert_user(&user("Adele.Vance@CONTOSO.example")).await, "UPNs are unique regardless of case");
    assert_conflict(s.insert_user(&u).await, "the same id twice");
    let all = s.list_users(&ListQuery::all(&USERS)).await.unwrap();
    assert_eq!(all.items, vec![u.clone()], "nothing of the refused inserts was written");

    // Every field changes, optional ones to None and back, text with quotes and non-ASCII.
    u.display_name = name("Adèle O'Vance \"AV\" 🚀");
    u.user_principal_name = "ADELE@fabrikam.example".into();
    u.mail = None;
    u.user_type = UserType::Guest;
    u.account_enabled = false;
    u.department = None;
    u.job_title = Some("Ingénieure".into());
    u.company_name = None;
    u.employee_id = Some("E-'2'".into());
    u.city = Some("Zürich".into());
    u.country = None;
    s.update_user(&u).await.unwrap();
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap(), u);
    assert_eq!(s.user_by_upn("adele@FABRIKAM.example").await.unwrap().map(|x| x.id), Some(u.id));
    assert!(s.user_by_upn("adele.vance@contoso.example").await.unwrap().is_none(), "the old UPN is free again");

    // A UPN taken by someone else (differing in case) cannot be taken over by an update.
    let other = user("other@contoso.example");
    s.insert_user(&other).await.unwrap();
    let mut thief = other.clone();
    thief.user_principal_name = "adele@fabrikam.EXAMPLE".into();
    assert_conflict(s.update_user(&thief).await, "update to a taken UPN");
    assert_eq!(s.get_user(other.id).await.unwrap().unwrap(), other, "the refused update changed nothing");
    assert_not_found(s.update_user(&user("ghost@contoso.example")).await, "update of an unknown user");

    // Manager: set, cleared, set again, then the manager is deleted.
    let boss = user("boss@contoso.example");
    s.insert_user(&boss).await.unwrap();
    u.manager = Some(boss.id);
    s.update_user(&u).await.unwrap();
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap().manager, Some(boss.id));
    assert_eq!(related_users(&s, Relation::DirectReports, boss.id).await, vec![u.id]);
    u.manager = None;
    s.update_user(&u).await.unwrap();
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap().manager, None, "the manager can be cleared");
    assert!(related_users(&s, Relation::DirectReports, boss.id).await.is_empty());
    u.manager = Some(boss.id);
    s.update_user(&u).await.unwrap();
    let mut bad = u.clone();
    bad.manager = Some(UserId::new());
    assert!(s.update_user(&bad).await.is_err(), "a manager that does not exist is refused");
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap().manager, Some(boss.id));

    s.delete_user(boss.id).await.unwrap();
    assert!(s.get_user(boss.id).await.unwrap().is_none());
    assert_eq!(s.get_user(u.id).await.unwrap().unwrap().manager, None, "deleting the manager clears the link");
    assert_not_found(s.delete_user(boss.id).await, "delete of a deleted user");
    assert_not_found(s.delete_user(UserId::new()).await, "delete of an unknown user");

    s.delete_user(u.id).await.unwrap();
    assert!(s.get_user(u.id).await.unwrap().is_none());
    assert_eq!(s.list_users(&ListQuery::all(&USERS)).await.unwrap().items, vec![other]);
}

pub async fn groups_round_trip(s: SqlStore) {
    let mut g = group("Sales EU");
    g.description = None;
    g.mail_enabled = true;
    s.insert_group(&g).await.unwrap();
    assert_eq!(s.get_group(g.id).await.unwrap().unwrap(), g);
    assert!(s.get_group(GroupId::new()).await.unwrap().is_none());
    assert_conflict(s.insert_group(&g).await, "the same group id twice");

    g.display_name = name("Ventes « UE »");
    g.description = Some("l'équipe".into());
    g.mail_nickname = "ventes-ue".into();
    g.mail_enabled = false;
    g.security_enabled = false;
    s.update_group(&g).await.unwrap();
    assert_eq!(s.get_group(g.id).await.unwrap().unwrap(), g);
    assert_not_found(s.update_group(&group("Ghost")).await, "update of an unknown group");

    let listed = s.list_groups(&ListQuery::all(&GROUPS)).await.unwrap();
    assert_eq!(listed.items, vec![g.clone()]);

    s.delete_group(g.id).await.unwrap();
    assert!(s.get_group(g.id).await.unwrap().is_none());
    assert_not_found(s.delete_group(g.id).await, "delete of a deleted group");
}

pub async fn group_members_owners_and_sponsors(s: SqlStore) {
    let g = group("Sales");
    let h = group("Support");
    s.insert_group(&g).await.unwrap();
    s.insert_group(&h).await.unwrap();
    let (a, b, c) = (user("a@x.io"), user("b@x.io"), user("c@x.io"));
    for u in [&a, &b, &c] {
        s.insert_user(u).await.unwrap();
    }

    // members
    s.add_member(g.id, a.id).await.unwrap();
    s.add_member(g.id, b.id).await.unwrap();
    s.add_member(h.id, a.id).await.unwrap();
    assert_conflict(s.add_member(g.id, a.id).await, "duplicate member");
    assert!(s.add_member(g.id, UserId::new()).await.is_err(), "an unknown user cannot become a member");
    assert_eq!(related_users(&s, Relation::GroupMembers, g.id).await, sorted(vec![a.id, b.id]));
    assert_eq!(related_users(&s, Relation::GroupMembers, h.id).await, vec![a.id]);
    s.remove_member(g.id, a.id).await.unwrap();
    assert_not_found(s.remove_member(g.id, a.id).await, "remove of a removed member");
    assert_not_found(s.remove_member(g.id, c.id).await, "remove of a non-member");
    assert_eq!(related_users(&s, Relation::GroupMembers, g.id).await, vec![b.id]);
    assert_eq!(related_users(&s, Relation::GroupMembers, h.id).await, vec![a.id], "other groups are untouched");

    // owners
    s.add_owner(g.id, c.id).await.unwrap();
    s.add_owner(g.id, b.id).await.unwrap();
    assert_conflict(s.add_owner(g.id, c.id).await, "duplicate owner");
    assert_eq!(related_users(&s, Relation::GroupOwners, g.id).await, sorted(vec![b.id, c.id]));
    assert_eq!(related_users(&s, Relation::GroupMembers, g.id).await, vec![b.id], "owners are not members");
    s.remove_owner(g.id, b.id).await.unwrap();
    assert_not_found(s.remove_owner(g.id, b.id).await, "remove of a removed owner");
    assert_not_found(s.remove_owner(g.id, a.id).await, "remove of a non-owner");
    assert_eq!(related_users(&s, Relation::GroupOwners, g.id).await, vec![c.id]);

    // sponsors
    s.add_sponsor(a.id, c.id).await.unwrap();
    s.add_sponsor(a.id, b.id).await.unwrap();
    s.add_sponsor(b.id, c.id).await.unwrap();
    assert_conflict(s.add_sponsor(a.id, c.id).await, "duplicate sponsor");
    assert_eq!(related_users(&s, Relation::Sponsors, a.id).await, sorted(vec![b.id, c.id]));
    assert_eq!(related_users(&s, Relation::Sponsors, b.id).await, vec![c.id]);
    assert!(related_users(&s, Relation::Sponsors, c.id).await.is_empty(), "sponsorship is directed");
    s.remove_sponsor(a.id, b.id).await.unwrap();
    assert_not_found(s.remove_sponsor(a.id, b.id).await, "remove of a removed sponsor");
    assert_eq!(related_users(&s, Relation::Sponsors, a.id).await, vec![c.id]);

    // direct reports
    let mut a2 = a.clone();
    a2.manager = Some(c.id);
    s.update_user(&a2).await.unwrap();
    let mut b2 = b.clone();
    b2.manager = Some(c.id);
    s.update_user(&b2).await.unwrap();
    assert_eq!(related_users(&s, Relation::DirectReports, c.id).await, sorted(vec![a.id, b.id]));
    assert!(related_users(&s, Relation::DirectReports, a.id).await.is_empty());

    // Related lists take the rest of the query too: filter, count and paging.
    let mut q =
        query(&USERS, "$filter=startswith(userPrincipalName,'A')&$count=true").related(Relation::DirectReports, c.id);
    let page = s.list_users(&q).await.unwrap();
    assert_eq!(page.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![a.id]);
    assert_eq!(page.count, Some(1));
    q = query(&USERS, "$top=1").related(Relation::DirectReports, c.id);
    let first = s.list_users(&q).await.unwrap();
    assert_eq!(first.items.len(), 1);
    q.after = first.next.clone();
    assert!(q.after.is_some());
    let second = s.list_users(&q).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert!(second.next.is_none());
    assert_eq!(sorted(vec![first.items[0].id, second.items[0].id]), sorted(vec![a.id, b.id]));

    // Deleting a user removes their memberships, ownerships and sponsorships, both ways.
    s.delete_user(c.id).await.unwrap();
    assert!(related_users(&s, Relation::GroupOwners, g.id).await.is_empty());
    assert!(related_users(&s, Relation::Sponsors, a.id).await.is_empty());
    assert!(related_users(&s, Relation::Sponsors, b.id).await.is_empty());
    assert_eq!(s.get_user(a.id).await.unwrap().unwrap().manager, None);

    // Deleting a group removes its links and leaves the users alone.
    s.add_owner(g.id, a.id).await.unwrap();
    s.delete_group(g.id).await.unwrap();
    assert!(related_users(&s, Relation::GroupMembers, g.id).await.is_empty());
    assert!(related_users(&s, Relation::GroupOwners, g.id).await.is_empty());
    assert!(s.get_user(a.id).await.unwrap().is_some());
    assert!(s.get_user(b.id).await.unwrap().is_some());
    assert_eq!(related_users(&s, Relation::GroupMembers, h.id).await, vec![a.id]);
    s.add_member(g.id, a.id).await.expect_err("a deleted group takes no members");
}

pub async fn tokens(s: SqlStore) {
    let u = user("t@x.io");
    s.insert_user(&u).await.unwrap();
    let admin = ApiToken {
        id: TokenId::new(),
        name: "ci".into(),
        hash: "a".repeat(64),
        user_id: None,
        role: None,
        created_at: at(1),
        expires_at: None,
    };
    let personal = ApiToken {
        id: TokenId::new(),
        name: "mine, 'quoted'".into(),
        hash: "b".repeat(64),
        user_id: Some(u.id),
        role: None,
        created_at: t("2030-01-02T03:04:05.000001Z"),
        expires_at: Some(t("2031-01-01T00:00:00Z")),
    };
    let c = steward_domain::ids::CatalogId::new();
    let scoped = ApiToken {
        id: TokenId::new(),
        name: "assigner".into(),
        hash: "e".repeat(64),
        user_id: None,
        role: Some((Role::AccessPackageAssignmentManager, AppScope::Catalog(c))),
        created_at: at(2),
        expires_at: None,
    };
    s.insert_token(&admin).await.unwrap();
    s.insert_token(&personal).await.unwrap();
    s.insert_token(&scoped).await.unwrap();
    assert_eq!(s.token_for_sign_in(&"e".repeat(64)).await.unwrap(), Some((scoped.clone(), None)));
    s.delete_token(scoped.id).await.unwrap();
    assert_conflict(s.insert_token(&ApiToken { id: TokenId::new(), ..admin.clone() }).await, "hashes are unique");
    assert_eq!(s.token_by_hash(&"a".repeat(64)).await.unwrap(), Some(admin.clone()));
    assert_eq!(s.token_by_hash(&"b".repeat(64)).await.unwrap(), Some(personal.clone()));
    assert!(s.token_by_hash(&"c".repeat(64)).await.unwrap().is_none());
    assert!(s.token_by_hash(&"A".repeat(64)).await.unwrap().is_none(), "hashes are compared exactly");
    assert_eq!(s.list_tokens().await.unwrap(), vec![personal.clone(), admin.clone()], "oldest first");
    assert_eq!(s.token_for_sign_in(&"a".repeat(64)).await.unwrap(), Some((admin.clone(), None)));
    assert_eq!(s.token_for_sign_in(&"b".repeat(64)).await.unwrap(), Some((personal.clone(), Some(true))));
    assert!(s.token_for_sign_in(&"c".repeat(64)).await.unwrap().is_none());
    s.update_user(&steward_domain::directory::User { account_enabled: false, ..u.clone() }).await.unwrap();
    assert_eq!(s.token_for_sign_in(&"b".repeat(64)).await.unwrap(), Some((personal.clone(), Some(false))));

    let orphan = ApiToken { id: TokenId::new(), hash: "d".repeat(64), user_id: Some(UserId::new()), ..admin.clone() };
    assert!(s.insert_token(&orphan).await.is_err(), "a personal token needs its user");

    s.delete_user(u.id).await.unwrap();
    assert!(s.token_by_hash(&"b".repeat(64)).await.unwrap().is_none(), "a personal token dies with its user");
    assert_eq!(s.list_tokens().await.unwrap(), vec![admin.clone()]);
    s.delete_token(admin.id).await.unwrap();
    assert!(matches!(s.delete_token(admin.id).await, Err(StoreError::NotFound { .. })));
    assert!(s.list_tokens().await.unwrap().is_empty());
}
