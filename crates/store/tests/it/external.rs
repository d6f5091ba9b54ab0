//! External users in the store: connected organizations (a domain belongs to one at most, a
//! policy naming one keeps it, their sponsors), the tenant's settings, and the lifecycle of the
//! guests Steward governs (invited with an assignment's batch, blocked only once their last
//! assignment has ended, reinstated by a new one, deleted only when blocked and due).

use serde_json::json;
use steward_app::Store;
use steward_app::ports::{Batch, GuestWrite, Put};
use steward_app::query::{CONNECTED_ORGANIZATIONS, Relation, USERS};
use steward_domain::assignment::Assignment;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::connected::{self, ConnectedOrganization, Email, SponsorKind};
use steward_domain::enums::{
    AssignmentState, ConnectedOrganizationState, ExternalUserLifecycleAction, SubjectLifecycle, UserType,
};
use steward_domain::external::{Block, EntitlementSettings, GuestInvitation};
use steward_domain::ids::{AssignmentId, ConnectedOrganizationId, PolicyId, UserId};
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_domain::schedule::Window;
use steward_store::SqlStore;

use crate::fixtures::{
    assert_conflict, assert_not_found, assert_rule_conflict, at, audit, catalog_named, enc, name, package, query, user,
};

pub fn organization(display: &str, domains: &[&str], created: i64) -> ConnectedOrganization {
    let sources =
        json!(domains
        .iter()
        .map(|d| json!({"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": d, "displayName": d}))
        .collect::<Vec<_>>());
    ConnectedOrganization {
        id: ConnectedOrganizationId::new(),
        display_name: name(display),
        description: Some(format!("{display} partners")),
        identity_sources: connected::parse_sources(&sources).unwrap(),
        state: ConnectedOrganizationState::Configured,
        created_date_time: at(created),
        modified_date_time: at(created),
    }
}

fn event(activity: Activity, correlation: &str) -> AuditEvent {
    AuditEvent::new(at(0), activity, Initiator::System, "User", correlation, correlation)
}

fn policy_naming(pkg: &steward_domain::package::AccessPackage, orgs: &[&str], created: i64) -> AssignmentPolicy {
    let targets: Vec<_> = orgs
        .iter()
        .map(|o| json!({"@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": o}))
        .collect();
    let settings: PolicySettings = serde_json::from_value(
        json!({"allowedTargetScope": "specificConnectedOrganizationUsers", "specificAllowedTargets": targets}),
    )
    .unwrap();
    AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        display_name: name("Partners"),
        description: None,
        settings,
        created_date_time: at(created),
        modified_date_time: at(created),
    }
}

pub async fn connected_organizations_round_trip(s: SqlStore) {
    let fabrikam = organization("Fabrikam", &["fabrikam.com", "fabrikam.example"], 1);
    s.insert_connected_organization(&fabrikam, &audit()).await.unwrap();
    assert_eq!(s.get_connected_organization(fabrikam.id).await.unwrap(), Some(fabrikam.clone()));
    let mut woodgrove = organization("Woodgrove", &["woodgrove.example"], 2);
    woodgrove.state = ConnectedOrganizationState::Proposed;
    woodgrove.description = None;
    s.insert_connected_organization(&woodgrove, &audit()).await.unwrap();

    // A domain belongs to one organization: named, with its owner, and nothing is written.
    let taken = organization("Copycat", &["other.example", "FABRIKAM.com"], 3);
    match s.insert_connected_organization(&taken, &audit()).await {
        Err(steward_app::StoreError::Rule(steward_domain::DomainError::Conflict(m))) => {
            assert!(m.contains("fabrikam.com") && m.contains("Fabrikam"), "{m}")
        }
        other => panic!("expected a conflict naming the domain, got {other:?}"),
    }
    assert_eq!(s.get_connected_organization(taken.id).await.unwrap(), None);
    assert_eq!(s.organization_of_domain("other.example").await.unwrap(), None, "no key of the refused one stays");

    assert_eq!(s.organization_of_domain("fabrikam.example").await.unwrap().map(|o| o.id), Some(fabrikam.id));
    assert_eq!(s.organization_of_domain("woodgrove.example").await.unwrap().map(|o| o.id), Some(woodgrove.id));
    assert_eq!(s.organization_of_domain("contoso.com").await.unwrap(), None);

    // Lists filter, order, search and count like every collection.
    let page = s.list_connected_organizations(&query(&CONNECTED_ORGANIZATIONS, "$count=true")).await.unwrap();
    assert_eq!(page.items.iter().map(|o| o.id).collect::<Vec<_>>(), vec![fabrikam.id, woodgrove.id]);
    assert_eq!(page.count, Some(2));
    let q = query(&CONNECTED_ORGANIZATIONS, &format!("$filter={}", enc("state eq 'proposed'")));
    assert_eq!(s.list_connected_organizations(&q).await.unwrap().items, vec![woodgrove.clone()]);
    let q = query(&CONNECTED_ORGANIZATIONS, &format!("$filter={}", enc("startswith(displayName,'fab')")));
    assert_eq!(s.list_connected_organizations(&q).await.unwrap().items.len(), 1);
    let q = query(&CONNECTED_ORGANIZATIONS, "$search=\"PARTNERS\"&$orderby=displayName desc");
    assert_eq!(s.list_connected_organizations(&q).await.unwrap().items, vec![fabrikam.clone()]);

    // Updates land on the version read; the keys follow the identity sources.
    let mut moved = fabrikam.clone();
    moved.identity_sources = connected::parse_sources(&json!([
        {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "fabrikam.com"},
        {"@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": "3f1c2d3e-0000-4000-8000-00000000000b"}
    ]))
    .unwrap();
    moved.modified_date_time = at(10);
    s.update_connected_organization(&moved, fabrikam.modified_date_time, &audit()).await.unwrap();
    assert_eq!(s.organization_of_domain("fabrikam.example").await.unwrap(), None, "the dropped domain is free");
    assert_conflict(
        s.update_connected_organization(&moved, fabrikam.modified_date_time, &audit()).await,
        "a stale update",
    );
    let mut grab = woodgrove.clone();
    grab.identity_sources = moved.identity_sources.clone();
    grab.modified_date_time = at(11);
    assert_rule_conflict(
        s.update_connected_organization(&grab, woodgrove.modified_date_time, &audit()).await,
        "a taken domain",
    );
    assert_eq!(s.get_connected_organization(woodgrove.id).await.unwrap(), Some(woodgrove.clone()), "unchanged");
    assert_not_found(
        s.update_connected_organization(&organization("Ghost", &["ghost.example"], 1), at(1), &audit()).await,
        "a missing organization",
    );

    // Sponsors: users of the directory, linked once each, gone with the user.
    let alice = user("alice@contoso.com");
    let bob = user("bob@fabrikam.com");
    s.insert_user(&alice).await.unwrap();
    s.insert_user(&bob).await.unwrap();
    s.add_organization_sponsor(moved.id, SponsorKind::Internal, alice.id, &audit()).await.unwrap();
    s.add_organization_sponsor(moved.id, SponsorKind::External, bob.id, &audit()).await.unwrap();
    assert_conflict(
        s.add_organization_sponsor(moved.id, SponsorKind::Internal, alice.id, &audit()).await,
        "the same sponsor twice",
    );
    assert_not_found(
        s.add_organization_sponsor(moved.id, SponsorKind::Internal, UserId::new(), &audit()).await,
        "a missing user",
    );
    assert_not_found(
        s.add_organization_sponsor(ConnectedOrganizationId::new(), SponsorKind::Internal, alice.id, &audit()).await,
        "a missing organization",
    );
    assert_eq!(s.organization_sponsors(moved.id, SponsorKind::Internal).await.unwrap(), vec![alice.id]);
    assert_eq!(s.organization_sponsors(moved.id, SponsorKind::External).await.unwrap(), vec![bob.id]);
    let internal = query(&USERS, "").related(Relation::InternalSponsors, moved.id);
    assert_eq!(s.list_users(&internal).await.unwrap().items, vec![alice.clone()]);
    let external = query(&USERS, "").related(Relation::ExternalSponsors, moved.id);
    assert_eq!(s.list_users(&external).await.unwrap().items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![bob.id]);
    s.remove_organization_sponsor(moved.id, SponsorKind::External, bob.id, &audit()).await.unwrap();
    assert_not_found(
        s.remove_organization_sponsor(moved.id, SponsorKind::External, bob.id, &audit()).await,
        "a sponsor no more",
    );
    s.delete_user(alice.id).await.unwrap();
    assert!(s.organization_sponsors(moved.id, SponsorKind::Internal).await.unwrap().is_empty());

    // A policy naming an organization keeps it; a policy cannot name a missing one.
    let c = catalog_named("Partners");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let pkg = package(c.id, "Partner portal", None, at(20));
    s.insert_package(&pkg, &audit()).await.unwrap();
    let ghost = ConnectedOrganizationId::new().to_string();
    assert_not_found(
        s.insert_policy(&policy_naming(&pkg, &[&ghost], 21), &audit()).await,
        "a policy naming a missing organization",
    );
    let upper = moved.id.to_string().to_uppercase();
    let p = policy_naming(&pkg, &[&upper, "not-a-guid"], 22);
    s.insert_policy(&p, &audit()).await.unwrap();
    assert_rule_conflict(s.delete_connected_organization(moved.id, &audit()).await, "an organization a policy names");
    assert!(s.get_connected_organization(moved.id).await.unwrap().is_some());
    let mut other = p.clone();
    other.settings = policy_naming(&pkg, &[&woodgrove.id.to_string()], 0).settings;
    other.modified_date_time = at(23);
    s.update_policy(&other, p.modified_date_time, &audit()).await.unwrap();
    assert_rule_conflict(s.delete_connected_organization(woodgrove.id, &audit()).await, "now this one is named");
    s.delete_connected_organization(moved.id, &audit()).await.unwrap();
    assert_eq!(s.get_connected_organization(moved.id).await.unwrap(), None);
    assert_eq!(s.organization_of_domain("fabrikam.com").await.unwrap(), None, "its keys went with it");
    assert_not_found(s.delete_connected_organization(moved.id, &audit()).await, "deleted twice");
    s.delete_policy(other.id, &audit()).await.unwrap();
    s.delete_connected_organization(woodgrove.id, &audit()).await.unwrap();
    // The freed domain can be taken again.
    s.insert_connected_organization(&organization("Fabrikam again", &["fabrikam.com"], 30), &audit()).await.unwrap();
}

fn governed_assignment(user: UserId, pkg: &steward_domain::package::AccessPackage) -> Assignment {
    Assignment {
        id: AssignmentId::new(),
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        policy_id: None,
        target_id: user,
        state: AssignmentState::Delivered,
        status: "Delivered".into(),
        window: Window { start: at(0), end: None },
        expired_date_time: None,
        created_date_time: at(0),
        modified_date_time: at(0),
    }
}

pub async fn guest_lifecycle_in_the_store(s: SqlStore) {
    // Settings: the defaults until written, then as written.
    assert_eq!(s.entitlement_settings().await.unwrap(), EntitlementSettings::default());
    let only_block = EntitlementSettings {
        external_user_lifecycle_action: ExternalUserLifecycleAction::BlockSignIn,
        duration_until_external_user_deleted_after_blocked: steward_domain::duration::GraphDuration::from_secs(3600),
    };
    s.put_entitlement_settings(&only_block, &audit()).await.unwrap();
    assert_eq!(s.entitlement_settings().await.unwrap(), only_block);
    s.put_entitlement_settings(&EntitlementSettings::default(), &audit()).await.unwrap();
    assert_eq!(s.entitlement_settings().await.unwrap(), EntitlementSettings::default());

    let org = organization("Fabrikam", &["fabrikam.com"], 1);
    s.insert_connected_organization(&org, &audit()).await.unwrap();
    let inv = GuestInvitation::new(&Email::parse("Jane@Fabrikam.com").unwrap(), Some("Jane"), org.id).unwrap();
    let jane = inv.user(at(5));
    let invited = event(Activity::InviteExternalUser, "invite");
    let batch = Batch {
        guests: vec![GuestWrite::Invite {
            user: Box::new(jane.clone()),
            record: inv.record(at(5)),
            event: invited.clone(),
        }],
        ..Batch::default()
    };
    s.apply(&batch).await.unwrap();
    assert_eq!(s.get_user(jane.id).await.unwrap(), Some(jane.clone()));
    assert_eq!(s.get_user(jane.id).await.unwrap().unwrap().user_type, UserType::Guest);
    let record = s.get_external_user(jane.id).await.unwrap().unwrap();
    assert_eq!((record.lifecycle, record.connected_organization_id), (SubjectLifecycle::Governed, Some(org.id)));
    assert_eq!(s.events_of("invite").await.unwrap(), vec![invited]);
    assert_conflict(s.apply(&batch).await, "the same guest invited twice");

    // Found by email, as userPrincipalName or mail, whatever the case.
    assert_eq!(s.user_by_email("jane@fabrikam.com").await.unwrap().map(|u| u.id), Some(jane.id));
    let mut mailed = user("j.doe_fabrikam.com#EXT#@contoso.com");
    mailed.user_type = UserType::Guest;
    mailed.mail = Some("J.Doe@Fabrikam.com".into());
    s.insert_user(&mailed).await.unwrap();
    assert_eq!(s.user_by_email("j.doe@FABRIKAM.com").await.unwrap().map(|u| u.id), Some(mailed.id));
    assert_eq!(s.user_by_email("nobody@fabrikam.com").await.unwrap(), None);
    assert_eq!(s.get_external_user(mailed.id).await.unwrap(), None, "not invited by Steward: not governed");
    assert_eq!(s.governed_unblocked(&[jane.id, mailed.id, UserId::new()]).await.unwrap(), vec![jane.id]);

    // Not blocked while an assignment is active.
    let c = catalog_named("Partners");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let pkg = package(c.id, "Partner portal", None, at(6));
    s.insert_package(&pkg, &audit()).await.unwrap();
    let a = governed_assignment(jane.id, &pkg);
    s.apply(&Batch { assignments: vec![Put::New(a.clone())], ..Batch::default() }).await.unwrap();
    let block = Block { at: at(100), delete_at: Some(at(200)) };
    let blocked_event = event(Activity::BlockExternalUser, "block");
    assert!(!s.block_external_user(jane.id, &block, &blocked_event).await.unwrap(), "an active assignment");
    assert!(!s.block_external_user(mailed.id, &block, &audit()).await.unwrap(), "not governed");
    let mut ended = a.clone();
    ended.end("Removed", at(50));
    ended.modified_date_time = at(50);
    s.apply(&Batch {
        assignments: vec![Put::Changed { row: ended, read_at: a.modified_date_time }],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert!(s.block_external_user(jane.id, &block, &blocked_event).await.unwrap());
    assert!(!s.get_user(jane.id).await.unwrap().unwrap().account_enabled, "sign-in blocked");
    let record = s.get_external_user(jane.id).await.unwrap().unwrap();
    assert_eq!((record.blocked_at, record.delete_at), (Some(at(100)), Some(at(200))));
    assert!(!s.block_external_user(jane.id, &block, &audit()).await.unwrap(), "blocked once");
    assert_eq!(s.events_of("block").await.unwrap().len(), 1);
    assert!(s.governed_unblocked(&[jane.id]).await.unwrap().is_empty());

    // Deleted only when due.
    assert!(s.external_users_due(at(199), 10).await.unwrap().is_empty());
    assert_eq!(s.external_users_due(at(200), 10).await.unwrap(), vec![jane.id]);
    assert!(!s.delete_external_user(jane.id, at(199), &audit()).await.unwrap(), "not yet");

    // A new assignment reinstates: unblocked, deletion cancelled, recorded once.
    let again = governed_assignment(jane.id, &pkg);
    let unblocked = event(Activity::UnblockExternalUser, "unblock");
    let reinstate = |a: &Assignment| Batch {
        guests: vec![GuestWrite::Reinstate { user: jane.id, event: unblocked.clone() }],
        assignments: vec![Put::New(a.clone())],
        ..Batch::default()
    };
    s.apply(&reinstate(&again)).await.unwrap();
    assert!(s.get_user(jane.id).await.unwrap().unwrap().account_enabled);
    let record = s.get_external_user(jane.id).await.unwrap().unwrap();
    assert_eq!((record.blocked_at, record.delete_at), (None, None));
    assert!(s.external_users_due(at(1_000), 10).await.unwrap().is_empty());
    assert!(!s.delete_external_user(jane.id, at(1_000), &audit()).await.unwrap(), "no longer blocked");
    // Reinstating someone not blocked records nothing.
    let mut third = governed_assignment(jane.id, &pkg);
    third.access_package_id = {
        let p2 = package(c.id, "Second", None, at(7));
        s.insert_package(&p2, &audit()).await.unwrap();
        p2.id
    };
    s.apply(&reinstate(&third)).await.unwrap();
    assert_eq!(s.events_of("unblock").await.unwrap().len(), 1);

    // Blocked again once both have ended, then deleted when due, with what hung on the user.
    for a in [&again, &third] {
        let mut ended = a.clone();
        ended.end("Expired", at(300));
        ended.modified_date_time = at(300);
        s.apply(&Batch {
            assignments: vec![Put::Changed { row: ended, read_at: a.modified_date_time }],
            ..Batch::default()
        })
        .await
        .unwrap();
    }
    let block = Block { at: at(300), delete_at: Some(at(1_300)) };
    assert!(s.block_external_user(jane.id, &block, &audit()).await.unwrap());
    let deleted_event = event(Activity::DeleteExternalUser, "delete");
    let due = block.delete_at.unwrap();
    assert!(s.delete_external_user(jane.id, due, &deleted_event).await.unwrap());
    assert_eq!(s.get_user(jane.id).await.unwrap(), None);
    assert_eq!(s.get_external_user(jane.id).await.unwrap(), None, "the record goes with the user");
    assert_eq!(s.events_of("delete").await.unwrap(), vec![deleted_event]);
    assert!(!s.delete_external_user(jane.id, due, &audit()).await.unwrap(), "deleted once");
    let late = governed_assignment(jane.id, &pkg);
    assert_conflict(s.apply(&reinstate(&late)).await, "reinstating a deleted guest");
    assert!(s.get_assignment(late.id).await.unwrap().is_none(), "nothing of that batch was written");

    // Invited again later: the same id, a new record.
    s.apply(&Batch {
        guests: vec![GuestWrite::Invite {
            user: Box::new(inv.user(at(400))),
            record: inv.record(at(400)),
            event: audit(),
        }],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert!(s.get_external_user(jane.id).await.unwrap().is_some_and(|r| r.blocked_at.is_none()));
}
