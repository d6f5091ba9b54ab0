//! SCIM provisioning's side of the store (migration 0009): users and groups with their SCIM
//! attributes, writes that land only on the version they read and record their events, and
//! lists compiled from resolved SCIM filters, sorted and paged, agreeing with Rust's own
//! reading of each filter on both databases (non-ASCII and case included).

use steward_app::Store;
use steward_app::scim::filter;
use steward_app::scim::query::{ResourceKind, ScimField, ScimQuery, resolve};
use steward_app::scim::{ScimGroup, ScimUser};
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::ids::UserId;
use steward_store::SqlStore;

use crate::fixtures::*;

fn event(activity: Activity, target: impl ToString) -> AuditEvent {
    let t = target.to_string();
    AuditEvent::new(at(5), activity, Initiator::App("scim-client".into()), "User", &t, &t)
}

fn scim_user(upn: &str) -> ScimUser {
    ScimUser {
        user: user(upn),
        external_id: Some(format!("ext-{upn}")),
        given_name: Some("Given".into()),
        family_name: Some("Family".into()),
        formatted_name: Some("Given Family".into()),
        user_type: Some("Employee".into()),
        version: 0,
        modified: t("2030-01-02T03:04:05.123456Z"),
    }
}

fn scim_group(name: &str, members: Vec<UserId>) -> ScimGroup {
    let mut members = members;
    members.sort();
    ScimGroup { group: group(name), external_id: Some(format!("g-{name}")), members, version: 0, modified: at(3) }
}

fn all(filter: Option<&str>, kind: ResourceKind) -> ScimQuery {
    ScimQuery {
        filter: filter.map(|f| resolve(kind, &filter::parse(f).unwrap()).unwrap()),
        sort: None,
        descending: false,
        offset: 0,
        limit: 1000,
    }
}

pub async fn scim_users_round_trip(s: SqlStore) {
    let mut u = scim_user("ada@contoso.example");
    s.insert_scim_user(&u, &[event(Activity::AddUser, u.user.id)]).await.unwrap();
    assert_eq!(s.scim_user(u.user.id).await.unwrap().unwrap(), u, "every field back, to the microsecond");
    assert_eq!(s.get_user(u.user.id).await.unwrap().unwrap(), u.user, "the same user through Graph's read");
    assert!(s.scim_user(UserId::new()).await.unwrap().is_none());
    let mut dup = scim_user("ADA@contoso.EXAMPLE");
    assert_conflict(s.insert_scim_user(&dup, &[event(Activity::AddUser, dup.user.id)]).await, "userName ignores case");
    assert!(s.events_of(&dup.user.id.to_string()).await.unwrap().is_empty(), "a refused write records nothing");

    // An update lands on the version it read and bumps it; a stale one changes nothing.
    u.user.account_enabled = false;
    u.given_name = Some("Ádá".into());
    u.external_id = None;
    u.modified = at(10);
    assert!(s.update_scim_user(&u, 0, &[event(Activity::UpdateUser, u.user.id)]).await.unwrap());
    let got = s.scim_user(u.user.id).await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(ScimUser { version: 0, ..got.clone() }, u);
    let mut stale = u.clone();
    stale.user.job_title = Some("Nope".into());
    assert!(!s.update_scim_user(&stale, 0, &[event(Activity::UpdateUser, u.user.id)]).await.unwrap());
    assert_eq!(s.scim_user(u.user.id).await.unwrap().unwrap(), got, "the stale update changed nothing");
    // Graph's writes bump the version too.
    s.update_user(&got.user).await.unwrap();
    assert!(!s.update_scim_user(&u, 1, &[]).await.unwrap(), "Graph's write came first");
    assert_eq!(s.scim_user(u.user.id).await.unwrap().unwrap().version, 2);
    // A taken userName, and a user that is not there.
    dup.user.user_principal_name = "bob@contoso.example".into();
    s.insert_scim_user(&dup, &[]).await.unwrap();
    let mut thief = u.clone();
    thief.user.user_principal_name = "BOB@contoso.example".into();
    assert_conflict(s.update_scim_user(&thief, 2, &[]).await, "an update to a taken userName");
    assert_not_found(s.update_scim_user(&scim_user("ghost@x.io"), 0, &[]).await, "an unknown user");
    // A manager that does not exist is named.
    let mut orphan = scim_user("orphan@contoso.example");
    orphan.user.manager = Some(UserId::new());
    assert_not_found(s.insert_scim_user(&orphan, &[]).await, "a missing manager");

    let events = s.events_of(&u.user.id.to_string()).await.unwrap();
    let kinds: Vec<Activity> = events.iter().map(|e| e.activity).collect();
    assert_eq!(kinds, [Activity::AddUser, Activity::UpdateUser], "stale and refused writes recorded nothing");
    s.delete_scim_user(u.user.id, &event(Activity::DeleteUser, u.user.id)).await.unwrap();
    assert!(s.scim_user(u.user.id).await.unwrap().is_none());
    assert_not_found(s.delete_scim_user(u.user.id, &event(Activity::DeleteUser, u.user.id)).await, "deleted twice");
    assert_eq!(s.events_of(&u.user.id.to_string()).await.unwrap().len(), 3);
}

pub async fn scim_groups_round_trip(s: SqlStore) {
    let users: Vec<ScimUser> = (0..3).map(|i| scim_user(&format!("m{i}@contoso.example"))).collect();
    for u in &users {
        s.insert_scim_user(u, &[]).await.unwrap();
    }
    let ids: Vec<UserId> = users.iter().map(|u| u.user.id).collect();
    let mut g = scim_group("Sales", ids[..2].to_vec());
    s.insert_scim_group(&g, &[event(Activity::AddGroup, g.group.id)]).await.unwrap();
    assert_eq!(s.scim_group(g.group.id).await.unwrap().unwrap(), g, "members sorted, every field back");
    assert_eq!(s.get_group(g.group.id).await.unwrap().unwrap(), g.group);

    // Members added and removed with the group's change, on the version read.
    g.group.display_name = name("Sales EU");
    g.external_id = None;
    g.members = sorted(vec![ids[1], ids[2]]);
    assert!(
        s.update_scim_group(&g, &[ids[2]], &[ids[0]], 0, &[event(Activity::UpdateGroup, g.group.id)]).await.unwrap()
    );
    let got = s.scim_group(g.group.id).await.unwrap().unwrap();
    assert_eq!(ScimGroup { version: 0, ..got.clone() }, g);
    assert_eq!(got.version, 1);
    assert!(!s.update_scim_group(&g, &[ids[0]], &[], 0, &[]).await.unwrap(), "a stale version");
    assert_eq!(s.member_ids(g.group.id).await.unwrap().len(), 2, "the stale write added no member");
    // A member that is not a user is named, and nothing of the write stays.
    let ghost = UserId::new();
    assert_not_found(s.update_scim_group(&g, &[ghost], &[ids[1]], 1, &[]).await, "a missing member");
    assert_eq!(s.scim_group(g.group.id).await.unwrap().unwrap(), got, "nothing half-written");
    assert_not_found(s.insert_scim_group(&scim_group("Ghosts", vec![ghost]), &[]).await, "a missing member");

    // Lists of groups carry their members.
    let other = scim_group("Other", vec![ids[0]]);
    s.insert_scim_group(&other, &[]).await.unwrap();
    let page = s.scim_groups(&all(None, ResourceKind::Group)).await.unwrap();
    assert_eq!(page.total, 2);
    assert!(page.items.iter().any(|x| x.group.id == other.group.id && x.members == vec![ids[0]]));
    let q = all(Some(&format!("members[value eq \"{}\"]", ids[2].to_string().to_uppercase())), ResourceKind::Group);
    assert_eq!(s.scim_groups(&q).await.unwrap().items.iter().map(|x| x.group.id).collect::<Vec<_>>(), [g.group.id]);
    let q = all(Some(&format!("not (members[value eq \"{}\"])", ids[0])), ResourceKind::Group);
    assert_eq!(s.scim_groups(&q).await.unwrap().items.iter().map(|x| x.group.id).collect::<Vec<_>>(), [g.group.id]);

    // A group that is a catalog's resource stays; others go, with their event.
    let (_, held, _) = catalog_with_group(&s, "Cat", "Held").await;
    assert_rule_conflict(
        s.delete_scim_group(held.id, &event(Activity::DeleteGroup, held.id)).await,
        "held by a catalog",
    );
    s.delete_scim_group(g.group.id, &event(Activity::DeleteGroup, g.group.id)).await.unwrap();
    assert!(s.scim_group(g.group.id).await.unwrap().is_none());
    assert_not_found(s.delete_scim_group(g.group.id, &event(Activity::DeleteGroup, g.group.id)).await, "twice");
    let kinds: Vec<Activity> = s.events_of(&g.group.id.to_string()).await.unwrap().iter().map(|e| e.activity).collect();
    assert_eq!(kinds, [Activity::AddGroup, Activity::UpdateGroup, Activity::DeleteGroup]);
    assert!(s.events_of(&held.id.to_string()).await.unwrap().is_empty());
}

/// Users whose SCIM attributes vary (absent, empty-cased, non-ASCII), filtered by the store and
/// by Rust: the same users, on every operator.
pub async fn scim_filters_sorting_and_paging(s: SqlStore) {
    // userName, name.givenName, externalId, active, title
    type Spec<'a> = (&'a str, Option<&'a str>, Option<&'a str>, bool, Option<&'a str>);
    let specs: [Spec<'_>; 6] = [
        ("ada@x.io", Some("Ädä"), Some("E-1"), true, Some("Straße")),
        ("bob@x.io", Some("BOB"), Some("e-1"), false, None),
        ("cleo@x.io", None, None, true, Some("STRASSE")),
        ("dora@x.io", Some("dora"), Some("E-10"), true, Some("ß")),
        ("ÉMILE@x.io", Some("émile"), Some("X"), false, Some("")),
        ("finn@x.io", Some("Fínn"), None, true, Some("straße 1")),
    ];
    let mut users = Vec::new();
    for (i, (upn, given, ext, active, title)) in specs.into_iter().enumerate() {
        let mut u = scim_user(upn);
        u.given_name = given.map(str::to_owned);
        u.external_id = ext.map(str::to_owned);
        u.user.account_enabled = active;
        u.user.job_title = title.map(str::to_owned);
        u.modified = at(100 * i as i64);
        if i == 3 {
            u.user.manager = Some(users.iter().map(|x: &ScimUser| x.user.id).next().unwrap());
        }
        s.insert_scim_user(&u, &[]).await.unwrap();
        users.push(u);
    }
    let fold = |v: &Option<String>| v.as_ref().map(|x| x.to_lowercase());
    type Oracle = Box<dyn Fn(&ScimUser) -> bool + Send + Sync>;
    let cases: Vec<(&str, Oracle)> = vec![
        (r#"userName eq "émile@X.IO""#, Box::new(|u| u.user.user_principal_name == "ÉMILE@x.io")),
        (r#"name.givenName eq "ÄDÄ""#, Box::new(|u| u.given_name.as_deref() == Some("Ädä"))),
        (r#"name.givenName ne "bob""#, Box::new(move |u| fold(&u.given_name).as_deref() != Some("bob"))),
        (r#"name.givenName co "Í""#, Box::new(|u| u.given_name.as_deref() == Some("Fínn"))),
        (r#"name.givenName sw "d""#, Box::new(|u| u.given_name.as_deref() == Some("dora"))),
        (r#"name.givenName ew "ÄÄ""#, Box::new(|_| false)),
        (r#"name.givenName ew "DÄ""#, Box::new(|u| u.given_name.as_deref() == Some("Ädä"))),
        (r#"name.givenName pr"#, Box::new(|u| u.given_name.is_some())),
        (r#"not (name.givenName pr)"#, Box::new(|u| u.given_name.is_none())),
        (r#"externalId eq "E-1""#, Box::new(|u| u.external_id.as_deref() == Some("E-1"))),
        (r#"externalId sw "E-1""#, Box::new(|u| u.external_id.as_deref().is_some_and(|x| x.starts_with("E-1")))),
        (r#"externalId ne "E-1""#, Box::new(|u| u.external_id.as_deref() != Some("E-1"))),
        (r#"externalId gt "E""#, Box::new(|u| u.external_id.as_deref().is_some_and(|x| x > "E"))),
        (
            r#"title co "straße""#,
            Box::new(|u| u.user.job_title.as_deref().is_some_and(|x| x.to_lowercase().contains("straße"))),
        ),
        (r#"title pr"#, Box::new(|u| u.user.job_title.as_deref().is_some_and(|x| !x.is_empty()))),
        (
            r#"active eq false or title eq "ß""#,
            Box::new(|u| !u.user.account_enabled || u.user.job_title.as_deref() == Some("ß")),
        ),
        (
            r#"active eq true and not (externalId pr or title sw "s")"#,
            Box::new(|u| {
                u.user.account_enabled
                    && u.external_id.is_none()
                    && !u.user.job_title.as_deref().is_some_and(|x| x.to_lowercase().starts_with('s'))
            }),
        ),
        (r#"meta.lastModified ge "2030-03-18T00:00:00.0003Z""#, Box::new(|u| u.modified >= at(300))),
        (r#"meta.lastModified lt "2030-03-18T00:00:00.0001Z""#, Box::new(|u| u.modified < at(100))),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr"#,
            Box::new(|u| u.user.manager.is_some()),
        ),
        (r#"userType eq "employee""#, Box::new(|_| true)),
        (r#"emails.value ew "X.IO""#, Box::new(|_| true)),
    ];
    for (f, oracle) in cases {
        let page = s.scim_users(&all(Some(f), ResourceKind::User)).await.unwrap();
        let got = sorted(page.items.iter().map(|u| u.user.id).collect::<Vec<_>>());
        let want = sorted(users.iter().filter(|u| oracle(u)).map(|u| u.user.id).collect::<Vec<_>>());
        assert_eq!(got, want, "{f}");
        assert_eq!(page.total, want.len() as u64, "{f}");
    }

    // Sorted by a folded attribute, absent values last either way; paged with a total.
    let sorted_by = |descending: bool, offset: u64, limit: u64| ScimQuery {
        filter: None,
        sort: Some(ScimField::GivenName),
        descending,
        offset,
        limit,
    };
    let givens = |p: &steward_app::scim::query::ScimPage<ScimUser>| -> Vec<Option<String>> {
        p.items.iter().map(|u| u.given_name.clone()).collect()
    };
    let asc = s.scim_users(&sorted_by(false, 0, 10)).await.unwrap();
    let mut want: Vec<&ScimUser> = users.iter().collect();
    want.sort_by(|a, b| match (fold(&a.given_name), fold(&b.given_name)) {
        (Some(x), Some(y)) => bytes(&x, &y),
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, None) => a.user.id.to_string().cmp(&b.user.id.to_string()),
    });
    assert_eq!(givens(&asc), want.iter().map(|u| u.given_name.clone()).collect::<Vec<_>>());
    let desc = s.scim_users(&sorted_by(true, 0, 10)).await.unwrap();
    assert_eq!(desc.items.last().unwrap().given_name, None, "absent last when descending too");
    let page = s.scim_users(&sorted_by(false, 2, 2)).await.unwrap();
    assert_eq!((page.total, givens(&page)), (6, givens(&asc)[2..4].to_vec()));
    let none = s.scim_users(&sorted_by(false, 0, 0)).await.unwrap();
    assert_eq!((none.total, none.items.len()), (6, 0));
    let past = s.scim_users(&sorted_by(false, 6, 5)).await.unwrap();
    assert_eq!((past.total, past.items.len()), (6, 0));
}
