//! `requestable_packages` (the indexed path behind `filterByCurrentUser(on='allowedRequestor')`)
//! against the evaluation it replaced: every policy checked in memory with
//! `eligibility::target_allowed`, in scope and allowing self-add. A seeded random mix of users
//! (members and guests, enabled and disabled), groups and policies (every scope, requestor
//! settings absent, on and off, subject sets of every kind with ids in odd spellings, shared,
//! invalid and regex rules, connected organizations named or not, configured or proposed), then
//! policies updated and deleted and organizations changed; for each user the set of packages,
//! paged with filters, orders and counts, must be exactly the old answer, whichever shape the
//! store's condition takes (package ids listed, or each package tested).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use steward_app::Store;
use steward_app::query::ACCESS_PACKAGES;
use steward_domain::connected;
use steward_domain::directory::User;
use steward_domain::eligibility::{self, Facts, Membership};
use steward_domain::enums::ConnectedOrganizationState;
use steward_domain::enums::{AllowedTargetScope, UserType};
use steward_domain::ids::{AccessPackageId, GroupId, PolicyId};
use steward_domain::package::AccessPackage;
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_store::SqlStore;

use crate::fixtures::{at, audit, catalog_named, enc, group, name, package, query, user};

/// xorshift64*: a deterministic source for the mix, no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The evaluation `requestable_packages` used before the index: in scope, self-add allowed
/// (absent requestor settings allow it), and a target by `target_allowed`.
fn old_may_self_request(
    p: &AssignmentPolicy,
    user: &User,
    groups: &[GroupId],
    organization: Option<Membership>,
) -> bool {
    p.settings.allowed_target_scope != AllowedTargetScope::NotSpecified
        && p.settings.requestor_settings.as_ref().is_none_or(|r| r.enable_targets_to_self_add_access)
        && eligibility::target_allowed(&p.settings, Facts { user, groups, organization }).allowed
}

/// The user's connected organization as the evaluation reads it: the one their email's domain
/// belongs to now (guests only).
async fn membership(s: &SqlStore, user: &User) -> Option<Membership> {
    let domain = connected::external_domain(user)?;
    s.organization_of_domain(&domain)
        .await
        .unwrap()
        .map(|o| Membership { id: o.id, configured: o.state == ConnectedOrganizationState::Configured })
}

fn rules(users: &[User]) -> Vec<String> {
    vec![
        r#"user.department -eq "sales""#.into(),
        r#"user.city -startsWith "SEA" -and user.userType -eq "Member""#.into(),
        r#"user.department -in ["Finance", "ÄRZTE"]"#.into(),
        r#"-not (user.department -eq "Sales")"#.into(),
        r#"user.city -match "^[SZ]""#.into(),
        r#"user.accountEnabled -eq false"#.into(),
        r#"user.department -eq"#.into(),
        r#"user.jobTitle -eq null -or user.userType -eq "Guest""#.into(),
        format!(r#"user.objectId -eq "{}""#, users[3].id.to_string().to_uppercase()),
        format!(r#"user.objectId -in ["{}", "{}"]"#, users[5].id, users[8].id),
    ]
}

fn subject_set(rng: &mut Rng, users: &[User], groups: &[GroupId], rules: &[String], orgs: &[String]) -> Value {
    match rng.below(11) {
        0 | 1 => {
            let u = rng.pick(users).id;
            let id = match rng.below(5) {
                0 => u.to_string().to_uppercase(),
                1 => format!("{{{u}}}"),
                2 => "u-not-a-guid".into(),
                _ => u.to_string(),
            };
            json!({"@odata.type": "#microsoft.graph.singleUser", "userId": id})
        }
        2 | 3 => {
            let g = *rng.pick(groups);
            let id = match rng.below(5) {
                0 => g.to_string().to_uppercase(),
                1 => format!("{{{g}}}"),
                2 => GroupId::new().to_string(),
                _ => g.to_string(),
            };
            json!({"@odata.type": "#microsoft.graph.groupMembers", "groupId": id})
        }
        4..=6 => json!({"@odata.type": "#microsoft.graph.attributeRuleMembers", "membershipRule": rng.pick(rules)}),
        7 => json!({"@odata.type": "#microsoft.graph.attributeRuleMembers", "description": "no rule"}),
        _ => {
            json!({"@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": rng.pick(orgs)})
        }
    }
}

fn settings(rng: &mut Rng, users: &[User], groups: &[GroupId], rules: &[String], orgs: &[String]) -> PolicySettings {
    let scope = *rng.pick(AllowedTargetScope::ALL);
    let mut v = json!({"allowedTargetScope": scope.as_str()});
    let specific = matches!(
        scope,
        AllowedTargetScope::SpecificDirectoryUsers | AllowedTargetScope::SpecificConnectedOrganizationUsers
    );
    if specific || rng.chance(20) {
        let n = 1 + rng.below(4);
        v["specificAllowedTargets"] =
            Value::Array((0..n).map(|_| subject_set(rng, users, groups, rules, orgs)).collect());
    }
    match rng.below(3) {
        0 => {}
        1 => v["requestorSettings"] = json!({"enableTargetsToSelfAddAccess": true}),
        _ => {
            v["requestorSettings"] =
                json!({"enableTargetsToSelfAddAccess": false, "enableTargetsToSelfRemoveAccess": true})
        }
    }
    serde_json::from_value(v).unwrap()
}

/// The old answer for `user`: ids of the packages with a policy admitting them.
async fn expected(s: &SqlStore, packages: &[AccessPackage], user: &User) -> BTreeSet<AccessPackageId> {
    let groups = s.groups_of(user.id).await.unwrap();
    let organization = membership(s, user).await;
    let mut out = BTreeSet::new();
    for p in packages {
        for policy in s.policies_of_package(p.id).await.unwrap() {
            if old_may_self_request(&policy, user, &groups, organization) {
                out.insert(p.id);
            }
        }
    }
    out
}

/// Pages through `requestable_packages` with `options` (a `$top` small enough for several
/// pages), checking the count on every page; returns the ids in the order served.
async fn served(s: &SqlStore, user: &User, options: &str) -> Vec<AccessPackageId> {
    let mut q = query(&ACCESS_PACKAGES, options);
    let mut ids = Vec::new();
    let mut count = None;
    loop {
        let page = s.requestable_packages(user, &q).await.unwrap();
        ids.extend(page.items.iter().map(|p| p.id));
        if q.count {
            assert!(page.count.is_some(), "{options}: $count asked for");
            count = count.or(page.count);
            assert_eq!(page.count, count, "{options}: the count stays the same on every page");
        }
        match page.next {
            Some(next) => {
                q.after = Some(next);
                q.known_count = page.count;
            }
            None => break,
        }
    }
    if let Some(c) = count {
        assert_eq!(c, ids.len() as u64, "{options}: @odata.count is the number of rows served");
    }
    ids
}

/// Checks every user on both shapes of the condition: package ids listed (a limit no user
/// reaches) and each package tested (a limit of 0), and with the default limit.
async fn check_everyone(s: &SqlStore, users: &[User], packages: &[AccessPackage], round: &str) -> usize {
    let mut proper = 0;
    for limit in [Some(0), Some(1_000_000), None] {
        let s = match limit {
            Some(n) => s.clone().with_requestable_list(n),
            None => s.clone(),
        };
        proper = check_users(&s, users, packages, &format!("{round}, list limit {limit:?}")).await;
    }
    proper
}

async fn check_users(s: &SqlStore, users: &[User], packages: &[AccessPackage], round: &str) -> usize {
    let mut proper = 0;
    for u in users {
        let want = expected(s, packages, u).await;
        if !want.is_empty() && want.len() < packages.len() {
            proper += 1;
        }
        let all = served(s, u, "$top=7&$count=true").await;
        let got: BTreeSet<AccessPackageId> = all.iter().copied().collect();
        assert_eq!(got.len(), all.len(), "{round}: no package is served twice");
        assert_eq!(
            got, want,
            "{round}: packages for {} ({:?}, enabled {})",
            u.display_name, u.user_type, u.account_enabled
        );

        // The caller's own filter and order apply on top.
        let filtered = served(
            s,
            u,
            &format!(
                "$filter={}&$orderby=displayName desc&$top=5&$count=true",
                enc("contains(displayName,'1') and isHidden eq false")
            ),
        )
        .await;
        let want_filtered: Vec<AccessPackageId> = {
            let mut v: Vec<&AccessPackage> = packages
                .iter()
                .filter(|p| want.contains(&p.id) && p.display_name.as_str().contains('1') && !p.is_hidden)
                .collect();
            v.sort_by(|a, b| b.display_name.as_str().cmp(a.display_name.as_str()).then(b.id.cmp(&a.id)));
            v.into_iter().map(|p| p.id).collect()
        };
        assert_eq!(filtered, want_filtered, "{round}: filtered and ordered for {}", u.display_name);
    }
    proper
}

pub async fn requestable_packages_agree_with_the_old_evaluation(s: SqlStore) {
    let mut rng = Rng(0x5EED_0A11_0BED_2026);
    let departments = ["Sales", "sales", "Finance", "Ärzte", "Engineering"];
    let cities = ["Seattle", "Zürich", "sydney", "Oslo"];
    // Connected organizations: one configured, one proposed; users' mail in their domains, in a
    // domain of none, or at home.
    let fabrikam = crate::external::organization("Fabrikam", &["fabrikam.com"], 1);
    let mut woodgrove = crate::external::organization("Woodgrove", &["woodgrove.example", "wood.example"], 2);
    woodgrove.state = ConnectedOrganizationState::Proposed;
    for o in [&fabrikam, &woodgrove] {
        s.insert_connected_organization(o, &audit()).await.unwrap();
    }
    let org_ids = vec![
        fabrikam.id.to_string(),
        woodgrove.id.to_string().to_uppercase(),
        format!("{{{}}}", woodgrove.id),
        "x".into(),
    ];
    let domains = ["fabrikam.com", "woodgrove.example", "wood.example", "elsewhere.example", "contoso.com"];
    let mut users = Vec::new();
    for i in 0..24 {
        let mut u = user(&format!("user{i:02}@contoso.com"));
        u.mail = Some(format!("user{i:02}@{}", rng.pick(&domains)));
        u.user_type = if rng.chance(30) { UserType::Guest } else { UserType::Member };
        u.account_enabled = !rng.chance(15);
        u.department = (!rng.chance(15)).then(|| (*rng.pick(&departments)).to_owned());
        u.city = (!rng.chance(15)).then(|| (*rng.pick(&cities)).to_owned());
        u.job_title = rng.chance(50).then(|| "Engineer".to_owned());
        s.insert_user(&u).await.unwrap();
        users.push(u);
    }
    // Users 0 and 1 are certain to be an enabled member and an enabled guest, both with a
    // Fabrikam mail.
    for (i, ty) in [(0, UserType::Member), (1, UserType::Guest)] {
        users[i].user_type = ty;
        users[i].account_enabled = true;
        users[i].mail = Some(format!("user{i:02}@fabrikam.com"));
        s.update_user(&users[i]).await.unwrap();
    }
    let mut groups = Vec::new();
    for i in 0..6 {
        let g = group(&format!("Group {i}"));
        s.insert_group(&g).await.unwrap();
        for u in &users {
            if rng.chance(30) {
                s.add_member(g.id, u.id).await.unwrap();
            }
        }
        groups.push(g.id);
    }
    let rules = rules(&users);

    let c = catalog_named("Requestable");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let mut packages = Vec::new();
    for i in 0..48 {
        let mut p = package(c.id, &format!("Package {i:02}"), None, at(i));
        p.is_hidden = i % 7 == 0;
        s.insert_package(&p, &audit()).await.unwrap();
        packages.push(p);
    }
    let mut policies = Vec::new();
    for i in 0..110 {
        // Some packages get no policy, some several.
        let pkg = &packages[rng.below(packages.len() - 4)];
        let p = AssignmentPolicy {
            id: PolicyId::new(),
            access_package_id: pkg.id,
            catalog_id: c.id,
            display_name: name(&format!("Policy {i}")),
            description: None,
            settings: settings(&mut rng, &users, &groups, &rules, &org_ids),
            created_date_time: at(1000 + i),
            modified_date_time: at(1000 + i),
        };
        s.insert_policy(&p, &audit()).await.unwrap();
        policies.push(p);
    }
    let proper = check_everyone(&s, &users, &packages, "inserted").await;
    assert!(proper >= 12, "only {proper} of {} users may request some but not all packages", users.len());

    // Rewrite a third of the policies (targets, rules and scopes change) and delete a few; the
    // index must follow, and rules no longer used must no longer admit anyone.
    for (i, p) in policies.iter_mut().enumerate() {
        if i % 3 == 0 {
            let mut changed = p.clone();
            changed.settings = settings(&mut rng, &users, &groups, &rules, &org_ids);
            changed.modified_date_time = at(5000 + i as i64);
            s.update_policy(&changed, p.modified_date_time, &audit()).await.unwrap();
            *p = changed;
        }
    }
    for p in policies.iter().filter(|_| rng.chance(10)) {
        s.delete_policy(p.id, &audit()).await.unwrap();
    }
    // A rule no other policy uses: matched while the policy has it, forgotten after.
    let lone: PolicySettings = serde_json::from_value(json!({"allowedTargetScope": "specificDirectoryUsers",
        "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.attributeRuleMembers",
            "membershipRule": format!(r#"user.objectId -eq "{}""#, users[0].id)}]}))
    .unwrap();
    let last = packages.last().unwrap();
    let mut lone = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: last.id,
        catalog_id: c.id,
        display_name: name("Lone rule"),
        description: None,
        settings: lone,
        created_date_time: at(9000),
        modified_date_time: at(9000),
    };
    s.insert_policy(&lone, &audit()).await.unwrap();
    assert!(served(&s, &users[0], "$top=100").await.contains(&last.id));
    check_everyone(&s, &users, &packages, "updated").await;
    let before = lone.modified_date_time;
    lone.settings.allowed_target_scope = AllowedTargetScope::AllExternalUsers;
    lone.modified_date_time = at(9001);
    s.update_policy(&lone, before, &audit()).await.unwrap();
    assert!(!served(&s, &users[0], "$top=100").await.contains(&last.id), "a member is not an external user");
    assert!(served(&s, &users[1], "$top=100").await.contains(&last.id), "a guest is");
    s.delete_policy(lone.id, &audit()).await.unwrap();
    check_everyone(&s, &users, &packages, "deleted").await;

    // Group membership is read at request time.
    let g = groups[0];
    let members = s.member_ids(g).await.unwrap();
    for m in &members {
        s.remove_member(g, *m).await.unwrap();
    }
    for u in users.iter().take(10) {
        if !members.contains(&u.id) {
            s.add_member(g, u.id).await.unwrap();
        }
    }
    check_everyone(&s, &users, &packages, "members changed").await;

    // Connected organizations are read at request time: a guest of a configured one may request
    // under allConfiguredConnectedOrganizationUsers, a member with the same domain may not.
    let configured_only: PolicySettings =
        serde_json::from_value(json!({"allowedTargetScope": "allConfiguredConnectedOrganizationUsers"})).unwrap();
    let p = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: last.id,
        catalog_id: c.id,
        display_name: name("Configured organizations"),
        description: None,
        settings: configured_only,
        created_date_time: at(9100),
        modified_date_time: at(9100),
    };
    s.insert_policy(&p, &audit()).await.unwrap();
    assert!(served(&s, &users[1], "$top=100").await.contains(&last.id), "a guest of Fabrikam");
    assert!(!served(&s, &users[0], "$top=100").await.contains(&last.id), "a member with a Fabrikam mail");
    check_everyone(&s, &users, &packages, "configured organizations").await;
    // A proposed organization configured, a domain moved to another organization.
    let mut configured = woodgrove.clone();
    configured.state = ConnectedOrganizationState::Configured;
    configured.modified_date_time = at(20_000);
    s.update_connected_organization(&configured, woodgrove.modified_date_time, &audit()).await.unwrap();
    check_everyone(&s, &users, &packages, "an organization configured").await;
    let mut moved = fabrikam.clone();
    moved.identity_sources = connected::parse_sources(&json!([
        {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "elsewhere.example"}
    ]))
    .unwrap();
    moved.modified_date_time = at(20_001);
    s.update_connected_organization(&moved, fabrikam.modified_date_time, &audit()).await.unwrap();
    assert!(!served(&s, &users[1], "$top=100").await.contains(&last.id), "fabrikam.com belongs to nobody now");
    check_everyone(&s, &users, &packages, "a domain moved").await;
}

/// `requestable_catalogs`: the catalogs of exactly the packages `requestable_packages` serves
/// (the query's filter applied), by display name, at most `limit`; and `count_requestable`,
/// their number up to a cap; whichever shape the store's condition takes.
pub async fn requestable_catalogs_are_those_of_the_requestable_packages(s: SqlStore) {
    let member = user("member@contoso.com");
    let mut guest = user("guest@fabrikam.com");
    guest.user_type = UserType::Guest;
    let mut disabled = user("gone@contoso.com");
    disabled.account_enabled = false;
    for u in [&member, &guest, &disabled] {
        s.insert_user(u).await.unwrap();
    }
    let team = group("Team");
    s.insert_group(&team).await.unwrap();
    s.add_member(team.id, member.id).await.unwrap();
    s.add_member(team.id, disabled.id).await.unwrap();
    // Catalog names sort differently from their creation order.
    let names = ["Echo", "Delta", "Charlie", "Bravo", "Alpha"];
    let mut catalogs = Vec::new();
    for n in names {
        let c = catalog_named(n);
        s.insert_catalog(&c, None, &audit()).await.unwrap();
        catalogs.push(c);
    }
    // Echo: members; Delta: guests; Charlie: members, hidden packages only; Bravo: the team;
    // Alpha: packages without a policy.
    let scopes: [(&str, bool, Option<Value>); 5] = [
        ("allMemberUsers", false, None),
        ("allExternalUsers", false, None),
        ("allMemberUsers", true, None),
        (
            "specificDirectoryUsers",
            false,
            Some(json!([{"@odata.type": "#microsoft.graph.groupMembers", "groupId": team.id.to_string()}])),
        ),
        ("", false, None),
    ];
    let mut n = 0;
    for (c, (scope, hidden, targets)) in catalogs.iter().zip(scopes) {
        for _ in 0..3 {
            n += 1;
            let mut p = package(c.id, &format!("Package {n:02}"), None, at(n));
            p.is_hidden = hidden;
            s.insert_package(&p, &audit()).await.unwrap();
            if scope.is_empty() {
                continue;
            }
            let mut v = json!({"allowedTargetScope": scope});
            if let Some(t) = &targets {
                v["specificAllowedTargets"] = t.clone();
            }
            let policy = AssignmentPolicy {
                id: PolicyId::new(),
                access_package_id: p.id,
                catalog_id: c.id,
                display_name: name("Policy"),
                description: None,
                settings: serde_json::from_value(v).unwrap(),
                created_date_time: at(100 + n),
                modified_date_time: at(100 + n),
            };
            s.insert_policy(&policy, &audit()).await.unwrap();
        }
    }
    let visible = query(&ACCESS_PACKAGES, "$filter=isHidden eq false");
    let everything = query(&ACCESS_PACKAGES, "");
    let names_of = |cs: Vec<steward_domain::catalog::Catalog>| -> Vec<String> {
        cs.into_iter().map(|c| c.display_name.as_str().to_owned()).collect()
    };
    for limit in [Some(0), Some(1_000_000), None] {
        let s = match limit {
            Some(n) => s.clone().with_requestable_list(n),
            None => s.clone(),
        };
        let shape = format!("list limit {limit:?}");
        assert_eq!(
            names_of(s.requestable_catalogs(&member, &visible, 10).await.unwrap()),
            ["Bravo", "Echo"],
            "{shape}"
        );
        assert_eq!(
            names_of(s.requestable_catalogs(&member, &everything, 10).await.unwrap()),
            ["Bravo", "Charlie", "Echo"],
            "{shape}: hidden packages count without the filter"
        );
        assert_eq!(names_of(s.requestable_catalogs(&member, &visible, 1).await.unwrap()), ["Bravo"], "{shape}");
        assert_eq!(names_of(s.requestable_catalogs(&guest, &visible, 10).await.unwrap()), ["Delta"], "{shape}");
        assert!(s.requestable_catalogs(&disabled, &everything, 10).await.unwrap().is_empty(), "{shape}");
        // Counted up to a cap: Echo's and Bravo's 6 visible packages, Charlie's 3 hidden ones.
        assert_eq!(s.count_requestable(&member, &visible, 100).await.unwrap(), 6, "{shape}");
        assert_eq!(s.count_requestable(&member, &everything, 100).await.unwrap(), 9, "{shape}");
        assert_eq!(s.count_requestable(&member, &visible, 4).await.unwrap(), 4, "{shape}: capped");
        let named = query(&ACCESS_PACKAGES, "$filter=isHidden eq false and displayName eq 'Package 01'");
        assert_eq!(s.count_requestable(&member, &named, 100).await.unwrap(), 1, "{shape}: the filter applies");
        assert_eq!(s.count_requestable(&guest, &visible, 100).await.unwrap(), 3, "{shape}");
        assert_eq!(s.count_requestable(&disabled, &everything, 100).await.unwrap(), 0, "{shape}");
        // The same catalogs as the packages served, page by page.
        let served = served(&s, &member, "$filter=isHidden eq false&$top=2").await;
        let mut from_packages: Vec<String> = Vec::new();
        for id in served {
            let p = s.get_package(id).await.unwrap().unwrap();
            let c = s.get_catalog(p.catalog_id).await.unwrap().unwrap();
            from_packages.push(c.display_name.as_str().to_owned());
        }
        from_packages.sort();
        from_packages.dedup();
        assert_eq!(from_packages, ["Bravo", "Echo"], "{shape}");
    }
    let other = query(&steward_app::query::USERS, "");
    assert!(s.requestable_catalogs(&member, &other, 10).await.is_err(), "a query over another collection");
    assert!(s.count_requestable(&member, &other, 10).await.is_err(), "a query over another collection");
}
