//! Custom extensions: written with their audit event and sealed secret (read apart), changed
//! only on the version read, refused deletion while a policy's stage settings name them; a
//! policy cannot name a missing one. Callout instances: inserted and changed in a `Batch` (a
//! stale change conflicts), read by request and by assignment; the expiry search finds the
//! assignments whose policy runs an extension at the stage, until an instance of it exists.

use jiff::SignedDuration;
use serde_json::json;
use steward_app::ports::{Batch, Put};
use steward_app::{Store, StoreError};
use steward_domain::assignment::Assignment;
use steward_domain::duration::GraphDuration;
use steward_domain::enums::{AssignmentState, CalloutStatus, CustomExtensionStage};
use steward_domain::extension::{
    CallbackConfiguration, CalloutInstance, ClientConfiguration, Configuration, CustomExtension, Endpoint,
    ExtensionKind,
};
use steward_domain::ids::{AssignmentId, CalloutInstanceId, CatalogId, CustomExtensionId, PolicyId, RequestId, UserId};
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_domain::schedule::Window;
use steward_store::SqlStore;

use crate::fixtures::{assert_conflict, assert_not_found, at, audit, catalog_named, name, package};

fn extension(catalog: CatalogId, display: &str, kind: ExtensionKind, waits: bool) -> CustomExtension {
    CustomExtension {
        id: CustomExtensionId::new(),
        catalog_id: catalog,
        kind,
        display_name: name(display),
        description: Some("checks".into()),
        config: Configuration {
            endpoint: Endpoint { target_url: "https://hooks.example.test/steward".into() },
            client: ClientConfiguration { timeout_in_milliseconds: 5000, maximum_retries: 2 },
            callback: waits.then(|| CallbackConfiguration { timeout_duration: GraphDuration::from_secs(3600) }),
        },
        created_date_time: at(1),
        last_modified_date_time: at(1),
    }
}

fn policy_naming(
    pkg: &steward_domain::package::AccessPackage,
    stages: &[(&str, CustomExtensionId)],
) -> AssignmentPolicy {
    let settings: Vec<_> =
        stages.iter().map(|(stage, x)| json!({"stage": stage, "customExtension": {"id": x.to_string()}})).collect();
    let mut settings: PolicySettings = serde_json::from_value(json!({
        "allowedTargetScope": "allMemberUsers",
        "customExtensionStageSettings": settings,
    }))
    .unwrap();
    settings.check().unwrap();
    AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        display_name: name("With extensions"),
        description: None,
        settings,
        created_date_time: at(2),
        modified_date_time: at(2),
    }
}

pub async fn custom_extensions_round_trip(s: SqlStore) {
    let c = catalog_named("Extensions");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let zeta = extension(c.id, "Zeta", ExtensionKind::RequestWorkflow, true);
    let alpha = extension(c.id, "Alpha", ExtensionKind::AssignmentWorkflow, false);
    s.insert_extension(&zeta, "v1:sealed-zeta", &audit()).await.unwrap();
    s.insert_extension(&alpha, "v1:sealed-alpha", &audit()).await.unwrap();
    assert_eq!(s.get_extension(zeta.id).await.unwrap(), Some(zeta.clone()));
    assert_eq!(s.get_extension(CustomExtensionId::new()).await.unwrap(), None);
    let names: Vec<String> =
        s.extensions_of_catalog(c.id).await.unwrap().iter().map(|x| x.display_name.as_str().to_owned()).collect();
    assert_eq!(names, ["Alpha", "Zeta"]);
    assert_eq!(s.extension_secret(zeta.id).await.unwrap().as_deref(), Some("v1:sealed-zeta"));
    assert_eq!(s.extension_secret(CustomExtensionId::new()).await.unwrap(), None);
    let orphan = extension(CatalogId::new(), "Orphan", ExtensionKind::RequestWorkflow, false);
    assert_not_found(s.insert_extension(&orphan, "v1:x", &audit()).await, "an extension of a missing catalog");

    // Changed on the version read only; the secret stays.
    let mut zeta2 = zeta.clone();
    zeta2.config.callback = None;
    zeta2.display_name = name("Zeta two");
    zeta2.last_modified_date_time = at(10);
    s.update_extension(&zeta2, zeta.last_modified_date_time, &audit()).await.unwrap();
    assert_eq!(s.get_extension(zeta.id).await.unwrap(), Some(zeta2.clone()));
    assert_eq!(s.extension_secret(zeta.id).await.unwrap().as_deref(), Some("v1:sealed-zeta"));
    let mut stale = zeta2.clone();
    stale.last_modified_date_time = at(11);
    assert_conflict(s.update_extension(&stale, zeta.last_modified_date_time, &audit()).await, "a stale update");
    assert_not_found(s.update_extension(&orphan, at(1), &audit()).await, "an update of a missing extension");

    // A policy names it: it stays until the policy lets go of it.
    let pkg = package(c.id, "Package", None, at(2));
    s.insert_package(&pkg, &audit()).await.unwrap();
    let p = policy_naming(&pkg, &[("assignmentRequestCreated", zeta.id)]);
    s.insert_policy(&p, &audit()).await.unwrap();
    assert_eq!(s.extension_uses(zeta.id).await.unwrap(), [(p.id, CustomExtensionStage::AssignmentRequestCreated)]);
    assert!(s.extension_uses(alpha.id).await.unwrap().is_empty());
    let e = s.delete_extension(zeta.id, &audit()).await.unwrap_err();
    assert!(matches!(&e, StoreError::Rule(d) if d.to_string().contains("assignment policy")), "{e:?}");
    assert!(s.get_extension(zeta.id).await.unwrap().is_some(), "still there");
    let missing = policy_naming(&pkg, &[("assignmentRequestGranted", CustomExtensionId::new())]);
    assert_not_found(s.insert_policy(&missing, &audit()).await, "a policy naming a missing extension");
    assert_eq!(s.get_policy(missing.id).await.unwrap(), None);
    let mut updated = p.clone();
    updated.settings.custom_extension_stage_settings[0].custom_extension.id = CustomExtensionId::new();
    updated.modified_date_time = at(3);
    assert_not_found(s.update_policy(&updated, p.modified_date_time, &audit()).await, "an update naming a missing one");
    assert_eq!(s.get_policy(p.id).await.unwrap(), Some(p.clone()), "the failed update changed nothing");
    let mut released = p.clone();
    released.settings.custom_extension_stage_settings.clear();
    released.modified_date_time = at(4);
    s.update_policy(&released, p.modified_date_time, &audit()).await.unwrap();
    assert!(s.extension_uses(zeta.id).await.unwrap().is_empty());
    s.delete_extension(zeta.id, &audit()).await.unwrap();
    assert_eq!(s.get_extension(zeta.id).await.unwrap(), None);
    assert_not_found(s.delete_extension(zeta.id, &audit()).await, "a second delete");

    // Deleting a policy releases what it named.
    let q = policy_naming(&pkg, &[("assignmentFourteenDaysBeforeExpiration", alpha.id)]);
    s.insert_policy(&q, &audit()).await.unwrap();
    assert_eq!(s.extension_uses(alpha.id).await.unwrap().len(), 1);
    s.delete_policy(q.id, &audit()).await.unwrap();
    s.delete_extension(alpha.id, &audit()).await.unwrap();
}

fn assignment(
    pkg: &steward_domain::package::AccessPackage,
    policy: PolicyId,
    end: Option<jiff::Timestamp>,
) -> Assignment {
    Assignment {
        id: AssignmentId::new(),
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        policy_id: Some(policy),
        target_id: UserId::new(),
        state: AssignmentState::Delivered,
        status: "Delivered".into(),
        window: Window { start: at(0), end },
        expired_date_time: None,
        created_date_time: at(0),
        modified_date_time: at(0),
    }
}

pub async fn callout_instances_and_expiry_search(s: SqlStore) {
    let c = catalog_named("Expiry");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let x = extension(c.id, "Reminder", ExtensionKind::AssignmentWorkflow, false);
    s.insert_extension(&x, "v1:sealed", &audit()).await.unwrap();
    let pkg = package(c.id, "Package", None, at(2));
    s.insert_package(&pkg, &audit()).await.unwrap();
    let p = policy_naming(&pkg, &[("assignmentFourteenDaysBeforeExpiration", x.id)]);
    s.insert_policy(&p, &audit()).await.unwrap();
    let other = steward_domain::ids::PolicyId::new();
    let now = at(1_000_000);
    let day = SignedDuration::from_hours(24);
    let in_days = |d: i64| now.checked_add(day * i32::try_from(d).unwrap()).unwrap();
    let soon = assignment(&pkg, p.id, Some(in_days(3)));
    let sooner = assignment(&pkg, p.id, Some(in_days(1)));
    let later = assignment(&pkg, p.id, Some(in_days(30)));
    let forever = assignment(&pkg, p.id, None);
    let elsewhere = assignment(&pkg, other, Some(in_days(2)));
    let mut ended = assignment(&pkg, p.id, Some(in_days(5)));
    ended.state = AssignmentState::Expired;
    let batch = Batch {
        assignments: [&soon, &sooner, &later, &forever, &elsewhere, &ended]
            .iter()
            .map(|a| Put::New((*a).clone()))
            .collect(),
        ..Batch::default()
    };
    s.apply(&batch).await.unwrap();

    let stage = CustomExtensionStage::AssignmentFourteenDaysBeforeExpiration;
    let found = s.nearing_expiry(stage, now, in_days(14), 100).await.unwrap();
    let ids: Vec<_> = found.iter().map(|(a, x)| (a.id, *x)).collect();
    assert_eq!(
        ids,
        [(sooner.id, x.id), (soon.id, x.id)],
        "earliest end first, only this policy's, active, within 14 days"
    );
    assert_eq!(found[0].0, sooner);
    assert_eq!(s.nearing_expiry(stage, now, in_days(14), 1).await.unwrap().len(), 1, "limited");
    let one_day = CustomExtensionStage::AssignmentOneDayBeforeExpiration;
    assert!(s.nearing_expiry(one_day, now, in_days(1), 100).await.unwrap().is_empty(), "no policy runs that stage");

    // An instance of the stage ends the search for that assignment.
    let request = RequestId::new();
    let first = CalloutInstance {
        id: CalloutInstanceId::new(),
        extension_id: x.id,
        request_id: None,
        assignment_id: Some(sooner.id),
        stage,
        status: CalloutStatus::CalloutSent,
        detail: Some("Called (HTTP 202).".into()),
        created_date_time: at(5),
        modified_date_time: at(5),
    };
    let waiting = CalloutInstance {
        id: CalloutInstanceId::new(),
        request_id: Some(request),
        assignment_id: None,
        stage: CustomExtensionStage::AssignmentRequestCreated,
        status: CalloutStatus::WaitingForCallback,
        detail: None,
        created_date_time: at(6),
        modified_date_time: at(6),
        ..first.clone()
    };
    s.apply(&Batch { callouts: vec![Put::New(first.clone()), Put::New(waiting.clone())], ..Batch::default() })
        .await
        .unwrap();
    let found = s.nearing_expiry(stage, now, in_days(14), 100).await.unwrap();
    assert_eq!(found.iter().map(|(a, _)| a.id).collect::<Vec<_>>(), [soon.id]);
    assert_eq!(s.get_callout(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(s.get_callout(CalloutInstanceId::new()).await.unwrap(), None);
    assert_eq!(s.callouts_of_assignments(&[sooner.id, soon.id]).await.unwrap(), std::slice::from_ref(&first));
    assert_eq!(s.callouts_of_requests(&[request, RequestId::new()]).await.unwrap(), std::slice::from_ref(&waiting));
    assert!(s.callouts_of_requests(&[]).await.unwrap().is_empty());

    // Changed only on the version read.
    let mut received = waiting.clone();
    received.status = CalloutStatus::CallbackReceived;
    received.detail = Some("ok".into());
    received.modified_date_time = at(7);
    let change = |row: &CalloutInstance| Batch {
        callouts: vec![Put::Changed { row: row.clone(), read_at: waiting.modified_date_time }],
        ..Batch::default()
    };
    s.apply(&change(&received)).await.unwrap();
    assert_eq!(s.get_callout(waiting.id).await.unwrap(), Some(received.clone()));
    let mut again = received.clone();
    again.status = CalloutStatus::CallbackTimedOut;
    again.modified_date_time = at(8);
    let e = s.apply(&change(&again)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("changed by someone else")), "{e:?}");
    assert_eq!(s.get_callout(waiting.id).await.unwrap(), Some(received));
}
