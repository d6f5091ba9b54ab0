//! The request lifecycle end to end through the use cases, on each backend: approval stages,
//! delivery into the built-in directory, timeouts, extension, removal, scheduled start,
//! expiry, separation of duties, and concurrency (two approvers, three workers). Time moves
//! by a manual clock, never by sleeping.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use steward_app::auth::Principal;
use steward_app::lifecycle::approvals;
use steward_app::lifecycle::requests::{self, RequestInput};
use steward_app::lifecycle::worker::Worker;
use steward_app::ports::{ManualClock, Put};
use steward_app::{AppError, Services, Store};
use steward_domain::approval::StageStatus;
use steward_domain::assignment::Assignment;
use steward_domain::catalog::{self, Catalog, ResourceRequest};
use steward_domain::directory::{Group, User};
use steward_domain::enums::{AssignmentState, CatalogState, CatalogType, RequestState, RequestType, UserType};
use steward_domain::ids::{
    AccessPackageId, AssignmentId, CatalogId, GroupId, PolicyId, ResourceRequestId, ResourceRoleScopeId, TokenId,
    UserId,
};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::policy::{AssignmentPolicy, PolicySettings, canonicalize_types};
use steward_domain::request::{Answer, AssignmentRequest};
use steward_domain::schedule::Window;
use steward_domain::text::DisplayName;
use steward_store::SqlStore;

use crate::fixtures::audit;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const START: &str = "2031-03-01T09:00:00Z";

struct World {
    s: Services,
    clock: Arc<ManualClock>,
    worker: Worker,
    catalog: Catalog,
    /// The group the package grants membership of.
    group: Group,
    package: AccessPackage,
    alice: User,
    manager: User,
    approver: User,
}

fn user(name: &str, dept: &str, manager: Option<UserId>) -> User {
    User {
        id: UserId::new(),
        display_name: DisplayName::parse(name).unwrap(),
        user_principal_name: format!("{name}@contoso.com"),
        mail: Some(format!("{name}@contoso.com")),
        user_type: UserType::Member,
        account_enabled: true,
        department: Some(dept.into()),
        job_title: None,
        company_name: None,
        employee_id: None,
        city: None,
        country: None,
        created_date_time: t(START),
        manager,
    }
}

fn group(name: &str) -> Group {
    Group {
        id: GroupId::new(),
        display_name: DisplayName::parse(name).unwrap(),
        description: None,
        mail_nickname: name.to_lowercase(),
        mail_enabled: false,
        security_enabled: true,
        created_date_time: t(START),
    }
}

/// Adds a group to a catalog as a resource (with its Member and Owner roles), as an
/// administrator's resource request would.
async fn add_group_resource(s: &SqlStore, catalog: CatalogId, g: &Group) -> catalog::GroupResource {
    let added = catalog::group_resource(catalog, g, t(START));
    let rr = ResourceRequest {
        id: ResourceRequestId::new(),
        catalog_id: catalog,
        resource_id: Some(added.resource.id),
        request_type: RequestType::AdminAdd,
        state: RequestState::Delivered,
        created_date_time: t(START),
    };
    s.add_resource(&added, &rr, &audit()).await.unwrap();
    added
}

async fn package_granting(s: &SqlStore, catalog: CatalogId, name: &str, g: &Group) -> AccessPackage {
    let now = t(START);
    let added = add_group_resource(s, catalog, g).await;
    let p = AccessPackage {
        id: AccessPackageId::new(),
        catalog_id: catalog,
        display_name: DisplayName::parse(name).unwrap(),
        description: None,
        is_hidden: false,
        created_date_time: now,
        modified_date_time: now,
    };
    s.insert_package(&p, &audit()).await.unwrap();
    let member = added.roles.iter().find(|r| r.display_name == "Member").unwrap();
    s.add_role_scope(
        &ResourceRoleScope {
            id: ResourceRoleScopeId::new(),
            access_package_id: p.id,
            role_id: member.id,
            scope_id: added.scope.id,
            created_date_time: now,
        },
        &audit(),
    )
    .await
    .unwrap();
    p
}

async fn policy(s: &SqlStore, pkg: &AccessPackage, settings: serde_json::Value) -> AssignmentPolicy {
    let mut v = settings;
    canonicalize_types(&mut v);
    let mut settings: PolicySettings = serde_json::from_value(v).unwrap();
    settings.check().unwrap();
    let p = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        display_name: DisplayName::parse("Policy").unwrap(),
        description: None,
        settings,
        created_date_time: t(START),
        modified_date_time: t(START),
    };
    s.insert_policy(&p, &audit()).await.unwrap();
    p
}

async fn world(s: SqlStore) -> World {
    let clock = Arc::new(ManualClock::new(t(START)));
    let services = Services::new(Arc::new(s.clone()), clock.clone());
    let catalog = Catalog {
        id: CatalogId::new(),
        display_name: DisplayName::parse("Sales").unwrap(),
        description: None,
        catalog_type: CatalogType::UserManaged,
        state: CatalogState::Published,
        is_externally_visible: false,
        created_date_time: t(START),
        modified_date_time: t(START),
    };
    s.insert_catalog(&catalog, None, &audit()).await.unwrap();
    let manager = user("manager", "Sales", None);
    let approver = user("approver", "Security", None);
    let alice = user("alice", "Sales", Some(manager.id));
    for u in [&manager, &approver, &alice] {
        s.insert_user(u).await.unwrap();
    }
    let group = group("SugarLearning Prod");
    s.insert_group(&group).await.unwrap();
    let package = package_granting(&s, catalog.id, "SugarLearning Prod Contributor", &group).await;
    let worker = Worker::new(services.clone(), "worker-1");
    worker.ensure_sweep().await.unwrap();
    World { s: services, clock, worker, catalog, group, package, alice, manager, approver }
}

fn as_user(u: &User) -> Principal {
    Principal::User { user: u.id, token: Some(TokenId::new()), grants: Default::default(), sign_in: None }
}
fn admin() -> Principal {
    Principal::Admin { token: None }
}

async fn reload(w: &World, r: &AssignmentRequest) -> AssignmentRequest {
    w.s.store.get_request(r.id).await.unwrap().unwrap()
}

async fn members(w: &World, g: GroupId) -> Vec<UserId> {
    w.s.store.member_ids(g).await.unwrap()
}

fn add(pkg: AccessPackageId) -> RequestInput {
    RequestInput { request_type: Some(RequestType::UserAdd), access_package_id: Some(pkg), ..Default::default() }
}

fn two_stage_policy(security: GroupId) -> serde_json::Value {
    json!({
        "allowedTargetScope": "allMemberUsers",
        "expiration": {"type": "afterDuration", "duration": "P30D"},
        "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfUpdateAccess": true,
            "enableTargetsToSelfRemoveAccess": true, "allowCustomAssignmentSchedule": true},
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "isApprovalRequiredForUpdate": true,
            "isRequestorJustificationRequired": true, "stages": [
            {"durationBeforeAutomaticDenial": "P14D", "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]},
            {"durationBeforeAutomaticDenial": "P14D", "isApproverJustificationRequired": true,
             "primaryApprovers": [{"@odata.type": "#microsoft.graph.groupMembers", "groupId": security.to_string()}]}
        ]},
        "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": "ticket", "text": "Ticket?",
            "isRequired": true, "regexPattern": "[A-Z]+-[0-9]+"}]
    })
}

/// The whole walk: two stages (manager, then a group), justification, answers, a custom
/// schedule; delivered into the group; extended; removed by the user.
pub async fn two_stage_approval_delivers_into_the_group(s: SqlStore) {
    let w = world(s.clone()).await;
    let security = group("Security approvers");
    s.insert_group(&security).await.unwrap();
    s.add_member(security.id, w.approver.id).await.unwrap();
    policy(&s, &w.package, two_stage_policy(security.id)).await;

    // Bad input changes nothing.
    let mut bad = add(w.package.id);
    bad.answers = vec![Answer { question_id: "ticket".into(), value: "ABC-1".into(), display_value: None }];
    let e = requests::submit(&w.s, &as_user(&w.alice), bad.clone()).await.unwrap_err();
    assert!(matches!(e, AppError::Invalid(ref m) if m.contains("justification")), "{e:?}");
    bad.justification = Some("Quarterly close".into());
    bad.answers[0].value = "nope".into();
    let e = requests::submit(&w.s, &as_user(&w.alice), bad.clone()).await.unwrap_err();
    assert!(matches!(e, AppError::Invalid(ref m) if m.contains("pattern")), "{e:?}");
    bad.answers[0].value = "ABC-1".into();
    bad.schedule = Some(
        serde_json::from_value(json!({"startDateTime": "2031-03-05T00:00:00Z",
        "expiration": {"endDateTime": "2031-06-01T00:00:00Z"}}))
        .unwrap(),
    );
    let e = requests::submit(&w.s, &as_user(&w.alice), bad.clone()).await.unwrap_err();
    assert!(matches!(e, AppError::Invalid(ref m) if m.contains("later than the policy allows")), "{e:?}");
    assert!(w.s.store.open_request(w.alice.id, w.package.id).await.unwrap().is_none());

    let mut good = bad;
    good.schedule = Some(
        serde_json::from_value(json!({"startDateTime": START,
        "expiration": {"endDateTime": "2031-03-20T00:00:00Z"}}))
        .unwrap(),
    );
    let r = requests::submit(&w.s, &as_user(&w.alice), good).await.unwrap();
    assert_eq!(r.state, RequestState::PendingApproval);
    assert_eq!(r.detail.stages[0].approvers, vec![w.manager.id]);
    // A second request while one is open is refused.
    let again = requests::submit(&w.s, &as_user(&w.alice), {
        let mut i = add(w.package.id);
        i.justification = Some("x".into());
        i.answers = vec![Answer { question_id: "ticket".into(), value: "A-1".into(), display_value: None }];
        i
    })
    .await;
    assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");

    // The requestor cannot approve; a stranger is not an approver.
    let s0 = r.detail.stages[0].id;
    let e = approvals::decide(&w.s, as_user(&w.alice).user().unwrap(), None, r.id, s0, true, None).await.unwrap_err();
    assert!(matches!(e, AppError::Forbidden(_)), "{e:?}");
    let e =
        approvals::decide(&w.s, as_user(&w.approver).user().unwrap(), None, r.id, s0, true, None).await.unwrap_err();
    assert!(matches!(e, AppError::Forbidden(_) | AppError::NotFound { .. }), "{e:?}");
    approvals::decide(&w.s, as_user(&w.manager).user().unwrap(), None, r.id, s0, true, None).await.unwrap();
    let e = approvals::decide(&w.s, as_user(&w.manager).user().unwrap(), None, r.id, s0, true, None).await.unwrap_err();
    assert!(matches!(e, AppError::Conflict(_)), "a second decision is a conflict: {e:?}");
    let r = reload(&w, &r).await;
    assert_eq!(r.detail.stages[1].approvers, vec![w.approver.id]);
    let s1 = r.detail.stages[1].id;
    let e =
        approvals::decide(&w.s, as_user(&w.approver).user().unwrap(), None, r.id, s1, true, None).await.unwrap_err();
    assert!(matches!(e, AppError::Invalid(_)), "stage 2 needs a justification: {e:?}");
    approvals::decide(&w.s, as_user(&w.approver).user().unwrap(), None, r.id, s1, true, Some("ok".into()))
        .await
        .unwrap();
    let r = reload(&w, &r).await;
    assert_eq!(r.state, RequestState::Delivering);
    assert!(members(&w, w.group.id).await.is_empty(), "nothing is delivered before the job runs");
    w.worker.drain(10).await.unwrap();
    let r = reload(&w, &r).await;
    assert_eq!(r.state, RequestState::Delivered, "{:?}", r.detail);
    assert_eq!(members(&w, w.group.id).await, vec![w.alice.id]);
    let a = w.s.store.get_assignment(r.assignment_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(a.state, AssignmentState::Delivered);
    assert_eq!(a.window, Window { start: t(START), end: Some(t("2031-03-20T00:00:00Z")) });
    let events: Vec<_> = w.s.store.events_of(&r.id.to_string()).await.unwrap().iter().map(|e| e.activity).collect();
    use steward_domain::audit::Activity::*;
    for want in [UserRequestsAssignment, ApprovalStageCompleted, Approve, ReadyToFulfill, FulfillResource, Fulfill] {
        assert!(events.contains(&want), "{want:?} missing from {events:?}");
    }
    // A delivered request cannot be cancelled.
    let e = requests::cancel(&w.s, &as_user(&w.alice), r.id).await.unwrap_err();
    assert!(matches!(e, AppError::Conflict(_)), "{e:?}");

    // Extension: through both stages again, never past the policy's 30 days from now.
    w.clock.advance(SignedDuration::from_hours(24 * 10));
    let ext = requests::submit(
        &w.s,
        &as_user(&w.alice),
        RequestInput {
            request_type: Some(RequestType::UserUpdate),
            assignment_id: Some(a.id),
            justification: Some("still needed".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ext.state, RequestState::PendingApproval);
    approvals::decide(&w.s, as_user(&w.manager).user().unwrap(), None, ext.id, ext.detail.stages[0].id, true, None)
        .await
        .unwrap();
    let ext = reload(&w, &ext).await;
    approvals::decide(
        &w.s,
        as_user(&w.approver).user().unwrap(),
        None,
        ext.id,
        ext.detail.stages[1].id,
        true,
        Some("y".into()),
    )
    .await
    .unwrap();
    let a2 = w.s.store.get_assignment(a.id).await.unwrap().unwrap();
    assert_eq!(a2.window.end, Some(t("2031-04-10T09:00:00Z")), "30 days from the extension");
    assert_eq!(reload(&w, &ext).await.state, RequestState::Delivered);

    // Self-removal revokes the membership.
    let rm = requests::submit(
        &w.s,
        &as_user(&w.alice),
        RequestInput { request_type: Some(RequestType::UserRemove), assignment_id: Some(a.id), ..Default::default() },
    )
    .await
    .unwrap();
    w.worker.drain(10).await.unwrap();
    assert_eq!(reload(&w, &rm).await.state, RequestState::Delivered);
    assert!(members(&w, w.group.id).await.is_empty());
    let a3 = w.s.store.get_assignment(a.id).await.unwrap().unwrap();
    assert_eq!(a3.state, AssignmentState::Expired);
    assert_eq!(a3.status, "Removed");
}

/// Denial, timeout and escalation.
pub async fn denial_timeout_and_escalation(s: SqlStore) {
    let w = world(s.clone()).await;
    let bob = user("bob", "Sales", Some(w.manager.id));
    s.insert_user(&bob).await.unwrap();
    policy(&s, &w.package, json!({
        "allowedTargetScope": "allMemberUsers",
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [
            {"durationBeforeAutomaticDenial": "P4D", "isEscalationEnabled": true, "durationBeforeEscalation": "P1D",
             "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager"}],
             "escalationApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": w.approver.id.to_string()}]}
        ]}
    })).await;
    // Denied by the manager, with the reason kept.
    let r = requests::submit(&w.s, &as_user(&w.alice), add(w.package.id)).await.unwrap();
    approvals::decide(
        &w.s,
        as_user(&w.manager).user().unwrap(),
        None,
        r.id,
        r.detail.stages[0].id,
        false,
        Some("not now".into()),
    )
    .await
    .unwrap();
    let r = reload(&w, &r).await;
    assert_eq!(r.state, RequestState::Denied);
    assert_eq!(r.detail.reason.as_deref(), Some("not now"));

    // Escalated after a day, timed out after four.
    let r = requests::submit(&w.s, &as_user(&bob), add(w.package.id)).await.unwrap();
    w.clock.advance(SignedDuration::from_hours(25));
    w.worker.drain(10).await.unwrap();
    let r = reload(&w, &r).await;
    assert_eq!(r.detail.stages[0].status, StageStatus::Escalated);
    assert_eq!(r.detail.stages[0].approvers, vec![w.approver.id]);
    w.clock.advance(SignedDuration::from_hours(24 * 3));
    w.worker.drain(10).await.unwrap();
    let r = reload(&w, &r).await;
    assert_eq!(r.state, RequestState::Denied);
    assert_eq!(r.status.as_str(), "TimedOut");
    assert!(members(&w, w.group.id).await.is_empty());
}

/// Administrators assign and remove directly; a scheduled start waits; expiry revokes.
pub async fn admin_assignment_schedule_and_expiry(s: SqlStore) {
    let w = world(s.clone()).await;
    let p = policy(
        &s,
        &w.package,
        json!({"allowedTargetScope": "notSpecified",
        "expiration": {"type": "afterDuration", "duration": "P7D"}}),
    )
    .await;
    // A user may not request under an admin-only policy.
    let e = requests::submit(&w.s, &as_user(&w.alice), add(w.package.id)).await.unwrap_err();
    assert!(matches!(e, AppError::Forbidden(_)), "{e:?}");
    // Nor use adminAdd.
    let e = requests::submit(
        &w.s,
        &as_user(&w.alice),
        RequestInput {
            request_type: Some(RequestType::AdminAdd),
            access_package_id: Some(w.package.id),
            target_id: Some(w.alice.id),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AppError::Forbidden(_)), "{e:?}");

    let direct = RequestInput {
        request_type: Some(RequestType::AdminAdd),
        access_package_id: Some(w.package.id),
        policy_id: Some(p.id),
        target_id: Some(w.alice.id),
        ..Default::default()
    };
    let r = requests::submit(&w.s, &admin(), direct.clone()).await.unwrap();
    w.worker.drain(10).await.unwrap();
    assert_eq!(reload(&w, &r).await.state, RequestState::Delivered);
    assert_eq!(members(&w, w.group.id).await, vec![w.alice.id]);
    let rm = requests::submit(
        &w.s,
        &admin(),
        RequestInput {
            request_type: Some(RequestType::AdminRemove),
            assignment_id: reload(&w, &r).await.assignment_id,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    w.worker.drain(10).await.unwrap();
    assert_eq!(reload(&w, &rm).await.state, RequestState::Delivered);
    assert!(members(&w, w.group.id).await.is_empty());

    // Scheduled two days out: nothing until the clock gets there.
    let mut later = direct;
    later.schedule = Some(serde_json::from_value(json!({"startDateTime": "2031-03-03T09:00:00Z"})).unwrap());
    let r = requests::submit(&w.s, &admin(), later).await.unwrap();
    assert_eq!(r.state, RequestState::Scheduled);
    w.worker.drain(10).await.unwrap();
    assert!(members(&w, w.group.id).await.is_empty());
    w.clock.set(t("2031-03-03T09:00:00Z"));
    w.worker.drain(10).await.unwrap();
    let r = reload(&w, &r).await;
    assert_eq!(r.state, RequestState::Delivered, "{:?}", r.detail);
    assert_eq!(members(&w, w.group.id).await, vec![w.alice.id]);
    let a = w.s.store.get_assignment(r.assignment_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(a.window.end, Some(t("2031-03-10T09:00:00Z")));
    // Expiry at the end of the window revokes.
    w.clock.set(t("2031-03-10T09:00:00Z"));
    w.worker.drain(10).await.unwrap();
    let a = w.s.store.get_assignment(a.id).await.unwrap().unwrap();
    assert_eq!(a.state, AssignmentState::Expired);
    assert!(members(&w, w.group.id).await.is_empty());

    // A user deleted from the directory loses every access first.
    let leaver = user("leaver", "Sales", None);
    s.insert_user(&leaver).await.unwrap();
    let r = requests::submit(
        &w.s,
        &admin(),
        RequestInput {
            request_type: Some(RequestType::AdminAdd),
            access_package_id: Some(w.package.id),
            policy_id: Some(p.id),
            target_id: Some(leaver.id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    w.worker.drain(10).await.unwrap();
    let aid = reload(&w, &r).await.assignment_id.unwrap();
    steward_app::directory::delete_user(&w.s, steward_app::auth::local_operator(), leaver.id).await.unwrap();
    w.worker.drain(10).await.unwrap();
    let a = w.s.store.get_assignment(aid).await.unwrap().unwrap();
    assert_eq!((a.state, a.status.as_str()), (AssignmentState::Expired, "Removed"));
    assert!(w.s.store.active_assignments_of(leaver.id).await.unwrap().is_empty());
}

/// Incompatible packages and groups refuse a request, naming the conflict.
pub async fn separation_of_duties_refuses(s: SqlStore) {
    let w = world(s.clone()).await;
    let other_group = group("Payments");
    s.insert_group(&other_group).await.unwrap();
    let other = package_granting(&s, w.catalog.id, "Payments approver", &other_group).await;
    policy(&s, &w.package, json!({"allowedTargetScope": "allMemberUsers"})).await;
    policy(&s, &other, json!({"allowedTargetScope": "allMemberUsers"})).await;
    s.add_incompatible_package(w.package.id, other.id, &audit()).await.unwrap();
    requests::submit(&w.s, &as_user(&w.alice), add(other.id)).await.unwrap();
    w.worker.drain(10).await.unwrap();
    // Declared on the other side: still refused (both directions).
    let e = requests::submit(&w.s, &as_user(&w.alice), add(w.package.id)).await.unwrap_err();
    assert!(matches!(e, AppError::Unprocessable(ref m) if m.contains("Payments approver")), "{e:?}");
    let barred = group("Auditors");
    s.insert_group(&barred).await.unwrap();
    s.add_member(barred.id, w.manager.id).await.unwrap();
    s.add_incompatible_group(w.package.id, barred.id, &audit()).await.unwrap();
    let e = requests::submit(&w.s, &as_user(&w.manager), add(w.package.id)).await.unwrap_err();
    assert!(matches!(e, AppError::Unprocessable(ref m) if m.contains("Auditors")), "{e:?}");
    assert!(w.s.store.open_request(w.manager.id, w.package.id).await.unwrap().is_none());
    assert!(s.sod_violations(100).await.unwrap().is_empty());
    // A rule added after the fact: the existing overlap is listed, both ways round.
    let third = group("Treasury");
    s.insert_group(&third).await.unwrap();
    s.add_member(third.id, w.alice.id).await.unwrap();
    s.add_incompatible_group(other.id, third.id, &audit()).await.unwrap();
    let v = s.sod_violations(100).await.unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].conflict, steward_app::ports::Conflicting::Group(third.id));
    assert_eq!(v[0].target, w.alice.id);
}

/// Two approvers deciding the same requests at once: exactly one decision each.
pub async fn two_approvers_decide_each_request_once(s: SqlStore) {
    let w = world(s.clone()).await;
    let approvers = group("Approvers");
    s.insert_group(&approvers).await.unwrap();
    let second = user("second", "Security", None);
    s.insert_user(&second).await.unwrap();
    s.add_member(approvers.id, w.approver.id).await.unwrap();
    s.add_member(approvers.id, second.id).await.unwrap();
    policy(&s, &w.package, json!({"allowedTargetScope": "allMemberUsers",
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [
            {"primaryApprovers": [{"@odata.type": "#microsoft.graph.groupMembers", "groupId": approvers.id.to_string()}]}]}
    })).await;
    let mut reqs = Vec::new();
    for i in 0..100 {
        let u = user(&format!("u{i}"), "Sales", None);
        s.insert_user(&u).await.unwrap();
        reqs.push(requests::submit(&w.s, &as_user(&u), add(w.package.id)).await.unwrap());
    }
    let decide_all = |who: UserId, approve: bool| {
        let s = w.s.clone();
        let reqs = reqs.clone();
        tokio::spawn(async move {
            let me =
                Principal::User { user: who, token: Some(TokenId::new()), grants: Default::default(), sign_in: None }
                    .user()
                    .unwrap();
            let mut won = 0;
            for r in reqs {
                match approvals::decide(&s, me, None, r.id, r.detail.stages[0].id, approve, None).await {
                    Ok(()) => won += 1,
                    Err(AppError::Conflict(_)) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            won
        })
    };
    let (a, b) = tokio::join!(decide_all(w.approver.id, true), decide_all(second.id, false));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 100, "every request got exactly one decision ({a} approvals, {b} denials)");
    let mut approved = 0;
    for r in &reqs {
        let r = reload(&w, r).await;
        assert_eq!(r.detail.stages[0].decisions.len(), 1, "{:?}", r.detail.stages[0]);
        if r.state != RequestState::Denied {
            approved += 1;
        }
    }
    assert_eq!(approved, a);
}

/// Three workers share the queue: every expiring assignment expires once and its membership
/// is revoked once.
pub async fn three_workers_expire_each_assignment_once(s: SqlStore) {
    let w = world(s.clone()).await;
    let p = policy(
        &s,
        &w.package,
        json!({"allowedTargetScope": "allMemberUsers",
        "expiration": {"type": "afterDuration", "duration": "P1D"}}),
    )
    .await;
    let n = 300;
    let now = t(START);
    let end = t("2031-03-02T09:00:00Z");
    let mut batch = steward_app::ports::Batch::default();
    let mut ids = Vec::new();
    for i in 0..n {
        let u = user(&format!("e{i}"), "Sales", None);
        s.insert_user(&u).await.unwrap();
        s.add_member(w.group.id, u.id).await.unwrap();
        let a = Assignment {
            id: AssignmentId::new(),
            access_package_id: w.package.id,
            catalog_id: w.catalog.id,
            policy_id: Some(p.id),
            target_id: u.id,
            state: AssignmentState::Delivered,
            status: "Delivered".into(),
            window: Window { start: now, end: Some(end) },
            expired_date_time: None,
            created_date_time: now,
            modified_date_time: now,
        };
        ids.push(a.id);
        batch.assignments.push(Put::New(a));
    }
    s.apply(&batch).await.unwrap();
    assert_eq!(members(&w, w.group.id).await.len(), n);
    w.clock.set(end);
    let workers: Vec<_> = (0..3).map(|i| Worker::new(w.s.clone(), format!("w{i}"))).collect();
    let runs: Vec<_> =
        workers.into_iter().map(|wk| tokio::spawn(async move { wk.drain(200).await.unwrap() })).collect();
    for r in runs {
        r.await.unwrap();
    }
    w.worker.drain(200).await.unwrap();
    assert!(members(&w, w.group.id).await.is_empty());
    for id in &ids {
        let a = w.s.store.get_assignment(*id).await.unwrap().unwrap();
        assert_eq!(a.state, AssignmentState::Expired);
        let ev = w.s.store.events_of(&id.to_string()).await.unwrap();
        let expiries = ev.iter().filter(|e| e.activity == steward_domain::audit::Activity::Expire).count();
        assert_eq!(expiries, 1, "assignment {id} expired {expiries} times");
    }
    assert_eq!(w.s.store.pending_jobs().await.unwrap(), 1, "only the sweep is left");
}

/// A worker round runs the deliveries of different assignments side by side and those of one
/// assignment in turn: 20 people request a package granting two groups (40 jobs, more than
/// one round claims); every request ends delivered once, with both memberships.
pub async fn a_round_delivers_many_assignments_side_by_side(s: SqlStore) {
    let w = world(s.clone()).await;
    let second = group("Second group");
    s.insert_group(&second).await.unwrap();
    let added = add_group_resource(&s, w.catalog.id, &second).await;
    let member = added.roles.iter().find(|r| r.display_name == "Member").unwrap();
    s.add_role_scope(
        &ResourceRoleScope {
            id: ResourceRoleScopeId::new(),
            access_package_id: w.package.id,
            role_id: member.id,
            scope_id: added.scope.id,
            created_date_time: t(START),
        },
        &audit(),
    )
    .await
    .unwrap();
    policy(&s, &w.package, json!({"allowedTargetScope": "allMemberUsers"})).await;
    let mut submitted = Vec::new();
    for i in 0..20 {
        let u = user(&format!("p{i}"), "Sales", None);
        s.insert_user(&u).await.unwrap();
        let r = requests::submit(&w.s, &as_user(&u), add(w.package.id)).await.unwrap();
        assert_eq!(r.state, RequestState::Delivering);
        submitted.push((u.id, r));
    }
    assert!(w.worker.run_once().await.unwrap() > 0);
    w.worker.drain(10).await.unwrap();
    let (first, second_members) = (members(&w, w.group.id).await, members(&w, second.id).await);
    for (u, r) in &submitted {
        let r = reload(&w, r).await;
        assert_eq!(r.state, RequestState::Delivered, "request {}", r.id);
        let a = w.s.store.get_assignment(r.assignment_id.unwrap()).await.unwrap().unwrap();
        assert_eq!(a.state, AssignmentState::Delivered);
        assert!(first.contains(u) && second_members.contains(u), "{u} is in both groups");
        let ev = w.s.store.events_of(&r.id.to_string()).await.unwrap();
        let count = |a: steward_domain::audit::Activity| ev.iter().filter(|e| e.activity == a).count();
        assert_eq!(count(steward_domain::audit::Activity::Fulfill), 1, "request {} fulfilled once", r.id);
        assert_eq!(count(steward_domain::audit::Activity::FulfillResource), 2, "two resources for {}", r.id);
    }
    assert_eq!(w.s.store.pending_jobs().await.unwrap(), 1, "only the sweep is left");
}

/// An automatic-assignment policy follows its rule: matching people are assigned, a changed
/// department adds or removes access.
pub async fn automatic_assignment_follows_the_rule(s: SqlStore) {
    use steward_app::directory::{self, UserPatch};
    use steward_app::policies::{self, PolicyInput};
    let w = world(s.clone()).await;
    let mut v = json!({"allowedTargetScope": "specificDirectoryUsers",
        "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.attributeRuleMembers",
            "membershipRule": "(user.department -eq \"Sales\") -and (user.accountEnabled -eq true)"}],
        "automaticRequestSettings": {"requestAccessForAllowedTargets": true, "removeAccessWhenTargetLeavesAllowedTargets": true}});
    canonicalize_types(&mut v);
    let settings: PolicySettings = serde_json::from_value(v).unwrap();
    let cap = steward_app::auth::local_operator();
    let manage = cap.in_catalog(w.catalog.id, steward_domain::role::Task::ManagePackages);
    let input =
        PolicyInput { display_name: DisplayName::parse("Sales, automatically").unwrap(), description: None, settings };
    policies::create_policy(&w.s, manage, w.package.id, input).await.unwrap();
    w.worker.drain(20).await.unwrap();
    let mut want = vec![w.alice.id, w.manager.id];
    want.sort();
    assert_eq!(members(&w, w.group.id).await, want, "the two Sales users are assigned and delivered");

    let to_sales = UserPatch { department: Some(Some("sales".into())), ..Default::default() };
    directory::update_user(&w.s, cap, w.approver.id, to_sales).await.unwrap();
    w.worker.drain(20).await.unwrap();
    assert!(members(&w, w.group.id).await.contains(&w.approver.id), "matching is case-insensitive, as in Entra");

    let away = UserPatch { department: Some(Some("Marketing".into())), ..Default::default() };
    directory::update_user(&w.s, cap, w.alice.id, away).await.unwrap();
    w.worker.drain(20).await.unwrap();
    let now_members = members(&w, w.group.id).await;
    assert!(!now_members.contains(&w.alice.id), "alice left Sales and lost the access");
    assert_eq!(now_members.len(), 2);
    let a = w.s.store.active_assignment(w.alice.id, w.package.id).await.unwrap();
    assert!(a.is_none());
}

/// The job runner's bulk reads return exactly the rows that exist among the ids asked for, and
/// `finish_jobs` writes all of a round's effects or none: with one lease lost, no job is
/// removed and no event is written.
pub async fn bulk_reads_and_finishing_jobs_together(s: SqlStore) {
    let w = world(s.clone()).await;
    policy(&s, &w.package, json!({"allowedTargetScope": "allMemberUsers"})).await;
    let mut reqs = Vec::new();
    for i in 0..3 {
        let u = user(&format!("bulk{i}"), "Sales", None);
        s.insert_user(&u).await.unwrap();
        reqs.push(requests::submit(&w.s, &as_user(&u), add(w.package.id)).await.unwrap());
    }
    let aids: Vec<AssignmentId> = reqs.iter().map(|r| r.assignment_id.unwrap()).collect();
    let mut asked = aids.clone();
    asked.push(AssignmentId::new());
    let got = s.assignments_by_id(&asked).await.unwrap();
    assert_eq!(got.len(), 3);
    assert!(aids.iter().all(|a| got.iter().any(|g| g.id == *a)));
    let targets: Vec<UserId> = got.iter().map(|a| a.target_id).chain([UserId::new()]).collect();
    assert_eq!(s.users_by_id(&targets).await.unwrap().len(), 3);
    let rids: Vec<_> = reqs.iter().map(|r| r.id).collect();
    assert_eq!(s.requests_by_id(&rids).await.unwrap().len(), 3);
    assert!(s.requests_by_id(&[]).await.unwrap().is_empty());
    let deliveries = s.deliveries_of(&aids).await.unwrap();
    assert_eq!(deliveries.len(), 3, "one pending grant per assignment");
    let roles: Vec<_> = deliveries.iter().map(|d| d.resource_role_id).collect();
    let grants = s.role_grants(&roles[..1]).await.unwrap();
    assert_eq!(grants.len(), 1);
    // A retried delivery says why while it is pending; a finished one is left alone.
    let mut noted = deliveries[0].clone();
    (noted.attempts, noted.detail) = (3, Some("retrying after attempt 3: unreachable".into()));
    s.note_delivery_retry(&noted).await.unwrap();
    let again = s.deliveries(noted.assignment_id).await.unwrap();
    assert_eq!((again[0].attempts, again[0].detail.as_deref()), (3, Some("retrying after attempt 3: unreachable")));
    assert_eq!(again[0].state, steward_domain::assignment::DeliveryState::Pending);
    // Pending grants are in flight: neither missing from the target nor unexpected in it.
    let holders = s.role_holders(roles[0]).await.unwrap();
    assert!(holders.granted.is_empty(), "{holders:?}");
    assert_eq!(holders.in_flight.len(), 3, "{holders:?}");
    assert_eq!(grants[0].resource_origin_id, w.group.id.to_string());

    let now = steward_app::Clock::now(w.clock.as_ref());
    let later = now.saturating_add(SignedDuration::from_secs(60)).unwrap();
    let jobs = s.claim_jobs("runner-a", now, later, 100).await.unwrap();
    let delivers: Vec<_> = jobs.iter().filter(|j| j.kind.name() == "deliver").map(|j| j.id).collect();
    assert_eq!(delivers.len(), 3);
    let event = steward_domain::audit::AuditEvent::new(
        now,
        steward_domain::audit::Activity::Fulfill,
        steward_domain::audit::Initiator::System,
        "AccessPackageAssignmentRequest",
        "bulk",
        "bulk-correlation",
    );
    let batch = steward_app::ports::Batch { events: vec![event], ..Default::default() };
    let before = s.pending_jobs().await.unwrap();
    let lost = s.finish_jobs(&delivers, "runner-b", &batch).await;
    assert!(matches!(lost, Err(steward_app::StoreError::Conflict(_))), "{lost:?}");
    let mut one_lost = delivers.clone();
    one_lost.push(steward_domain::ids::JobId::new());
    assert!(matches!(s.finish_jobs(&one_lost, "runner-a", &batch).await, Err(steward_app::StoreError::Conflict(_))));
    assert_eq!(s.pending_jobs().await.unwrap(), before, "no job removed");
    assert!(s.events_of("bulk-correlation").await.unwrap().is_empty(), "no event written");
    s.finish_jobs(&delivers, "runner-a", &batch).await.unwrap();
    assert_eq!(s.pending_jobs().await.unwrap(), before - 3);
    assert_eq!(s.events_of("bulk-correlation").await.unwrap().len(), 1);
}

/// The built-in directory grants a round's memberships in bulk, and one by one where the bulk
/// statement could not add everything: an existing membership is fine, a role whose group is
/// gone or malformed fails alone.
pub async fn directory_connector_grants_in_bulk(s: SqlStore) {
    use steward_app::connector::Connector as _;
    use steward_app::connector::DirectoryConnector;
    let w = world(s.clone()).await;
    let other = group("Other");
    s.insert_group(&other).await.unwrap();
    let people: Vec<User> = (0..3).map(|i| user(&format!("bulkg{i}"), "Sales", None)).collect();
    for u in &people {
        s.insert_user(u).await.unwrap();
    }
    s.add_member(other.id, people[0].id).await.unwrap();
    let role = |g: &str| steward_app::ports::RoleGrant {
        role_id: steward_domain::ids::ResourceRoleId::new(),
        role_name: "Member".into(),
        role_origin_id: format!("Member_{g}"),
        origin_system: "AadGroup".into(),
        resource_origin_id: g.into(),
        resource_name: "g".into(),
    };
    let (main, second, gone, bad) =
        (role(&w.group.id.to_string()), role(&other.id.to_string()), role(&GroupId::new().to_string()), role("nope"));
    let c = DirectoryConnector::new(Arc::new(s.clone()));
    let all_new: Vec<_> = people.iter().map(|u| (&main, u)).collect();
    let r = c.grant_all(&all_new).await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(members(&w, w.group.id).await.len(), 3);
    let mixed = vec![(&second, &people[0]), (&second, &people[1]), (&gone, &people[2]), (&bad, &people[2])];
    let r = c.grant_all(&mixed).await;
    assert!(r[0].is_ok() && r[1].is_ok(), "{r:?}");
    assert!(r[2].is_err() && r[3].is_err(), "{r:?}");
    assert_eq!(members(&w, other.id).await.len(), 2);
    assert_eq!(s.add_group_links(&[(other.id, people[2].id), (other.id, people[2].id)], false).await.unwrap(), 1);
}

/// `role_held_elsewhere` sees another active assignment granting the same role, whichever
/// package it comes from, and nothing else: not the assignment excepted, not another user's,
/// not another role.
pub async fn a_role_held_through_another_package_is_seen(s: SqlStore) {
    let w = world(s.clone()).await;
    let g = group("Shared");
    s.insert_group(&g).await.unwrap();
    let added = add_group_resource(&s, w.catalog.id, &g).await;
    let member = added.roles.iter().find(|r| r.display_name == "Member").unwrap();
    let mut packages = Vec::new();
    for name in ["Shared one", "Shared two"] {
        let p = AccessPackage {
            id: AccessPackageId::new(),
            catalog_id: w.catalog.id,
            display_name: DisplayName::parse(name).unwrap(),
            description: None,
            is_hidden: false,
            created_date_time: t(START),
            modified_date_time: t(START),
        };
        s.insert_package(&p, &audit()).await.unwrap();
        let rrs = ResourceRoleScope {
            id: ResourceRoleScopeId::new(),
            access_package_id: p.id,
            role_id: member.id,
            scope_id: added.scope.id,
            created_date_time: t(START),
        };
        s.add_role_scope(&rrs, &audit()).await.unwrap();
        policy(&s, &p, json!({"allowedTargetScope": "allMemberUsers"})).await;
        packages.push(p);
    }
    let one = requests::submit(&w.s, &as_user(&w.alice), add(packages[0].id)).await.unwrap();
    let a1 = one.assignment_id.unwrap();
    assert!(!s.role_held_elsewhere(w.alice.id, member.id, a1).await.unwrap(), "only the excepted one");
    let two = requests::submit(&w.s, &as_user(&w.alice), add(packages[1].id)).await.unwrap();
    let a2 = two.assignment_id.unwrap();
    assert!(s.role_held_elsewhere(w.alice.id, member.id, a1).await.unwrap());
    assert!(s.role_held_elsewhere(w.alice.id, member.id, a2).await.unwrap());
    assert!(!s.role_held_elsewhere(w.manager.id, member.id, a1).await.unwrap(), "someone else's");
    let other_role = added.roles.iter().find(|r| r.display_name != "Member").unwrap();
    assert!(!s.role_held_elsewhere(w.alice.id, other_role.id, a1).await.unwrap(), "another role");
}

/// A process leases the jobs it queued by id (the ids its store reports as they commit): only
/// those that are due and free, in the order they are due, each to one claimer; a lease that
/// ran out makes a job claimable again. A worker handed those ids delivers without searching.
pub async fn jobs_are_leased_by_id(s: SqlStore) {
    use steward_app::jobs::{JobKind, NewJob};
    use steward_app::lifecycle::worker::LocalJobs;
    use steward_domain::ids::JobId;
    let local = Arc::new(LocalJobs::default());
    let seen = Arc::new(std::sync::Mutex::new(Vec::<JobId>::new()));
    let hooked = {
        let (local, seen) = (local.clone(), seen.clone());
        s.clone().on_jobs_queued(move |ids| {
            seen.lock().unwrap().extend_from_slice(ids);
            local.queued(ids);
        })
    };
    let w = world(hooked.clone()).await;
    policy(&s, &w.package, json!({"allowedTargetScope": "allMemberUsers"})).await;
    let now = steward_app::Clock::now(w.clock.as_ref());
    let later = now.saturating_add(SignedDuration::from_secs(60)).unwrap();
    seen.lock().unwrap().clear(); // the sweep `world` queued
    let mut asked = Vec::new();
    for i in 0..3 {
        let u = user(&format!("byid{i}"), "Sales", None);
        s.insert_user(&u).await.unwrap();
        requests::submit(&w.s, &as_user(&u), add(w.package.id)).await.unwrap();
        asked.extend(seen.lock().unwrap().drain(..));
    }
    assert_eq!(asked.len(), 3, "one delivery job per request, reported by the store");
    let future = NewJob { run_at: later, ..NewJob::now(JobKind::Sweep, now) };
    let not_due = future.id;
    hooked.apply(&steward_app::ports::Batch { jobs: vec![future], ..Default::default() }).await.unwrap();
    asked.push(not_due);
    asked.push(JobId::new());
    asked.reverse();

    let got = s.claim_jobs_by_id("runner-a", &asked, now, later).await.unwrap();
    let ids: Vec<JobId> = got.iter().map(|j| j.id).collect();
    let mut due = asked[2..].to_vec();
    due.sort_unstable();
    assert_eq!(ids, due, "the three due jobs, in the order they are due (same time: by id)");
    assert!(got.iter().all(|j| j.attempts == 1 && j.kind.name() == "deliver"));
    assert!(s.claim_jobs_by_id("runner-b", &asked, now, later).await.unwrap().is_empty(), "leased to runner-a");
    let searched = s.claim_jobs("runner-b", now, later, 100).await.unwrap();
    assert!(searched.iter().all(|j| !ids.contains(&j.id)), "the search skips them too");
    let after = later.saturating_add(SignedDuration::from_secs(1)).unwrap();
    let again = s.claim_jobs_by_id("runner-b", &ids, after, after).await.unwrap();
    assert_eq!(again.len(), 3, "a lease that ran out frees the job");
    assert!(again.iter().all(|j| j.attempts == 2));
    assert!(s.claim_jobs_by_id("runner-b", &[], now, later).await.unwrap().is_empty());

    // A worker holding the ids of a new request's job leases and delivers it.
    let u = user("byid-worker", "Sales", None);
    s.insert_user(&u).await.unwrap();
    let r = requests::submit(&w.s, &as_user(&u), add(w.package.id)).await.unwrap();
    let worker = Worker::new(w.s.clone(), "worker-local").with_local_jobs(local.clone());
    worker.drain(5).await.unwrap();
    assert_eq!(reload(&w, &r).await.state, RequestState::Delivered);
    assert!(members(&w, w.group.id).await.contains(&u.id));

    // Ids that lead nowhere (run already, or unknown) do not hide due work from a round that
    // would not have searched: it searches after all.
    let fresh = Arc::new(LocalJobs::default());
    let worker = Worker::new(w.s.clone(), "worker-stale").with_local_jobs(fresh.clone());
    worker.drain(5).await.unwrap(); // round 0 and on: whatever is due now
    let plain = Services::new(Arc::new(s.clone()), w.clock.clone()); // queues without telling `fresh`
    let u = user("byid-stale", "Sales", None);
    s.insert_user(&u).await.unwrap();
    let r = requests::submit(&plain, &as_user(&u), add(w.package.id)).await.unwrap();
    fresh.queued(&[JobId::new(), ids[0]]);
    assert!(worker.run_once().await.unwrap() > 0, "the round searched and found the delivery");
    assert_eq!(reload(&w, &r).await.state, RequestState::Delivered);
}

/// Changed requests in one batch are written together, each only if unchanged since it was
/// read: one stale row refuses the whole batch and writes nothing.
pub async fn changed_requests_are_written_together(s: SqlStore) {
    let w = world(s.clone()).await;
    policy(&s, &w.package, json!({"allowedTargetScope": "allMemberUsers", "requestApprovalSettings": {
        "isApprovalRequiredForAdd": true,
        "stages": [{"durationBeforeAutomaticDenial": "P7D",
                    "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": w.approver.id.to_string()}]}]
    }}))
    .await;
    let mut reqs = Vec::new();
    for i in 0..3 {
        let u = user(&format!("together{i}"), "Sales", None);
        s.insert_user(&u).await.unwrap();
        reqs.push(requests::submit(&w.s, &as_user(&u), add(w.package.id)).await.unwrap());
    }
    let now = steward_app::Clock::now(w.clock.as_ref()).saturating_add(SignedDuration::from_secs(1)).unwrap();
    let changed = |r: &AssignmentRequest, read_at: Timestamp| {
        let mut row = r.clone();
        row.detail.justification = Some("changed together".into());
        row.modified_date_time = now;
        Put::Changed { row, read_at }
    };
    let stale = reqs[0].modified_date_time.saturating_sub(SignedDuration::from_secs(1)).unwrap();
    let batch = steward_app::ports::Batch {
        requests: vec![changed(&reqs[0], stale), changed(&reqs[1], reqs[1].modified_date_time)],
        ..Default::default()
    };
    assert!(matches!(s.apply(&batch).await, Err(steward_app::StoreError::Conflict(_))));
    for r in &reqs {
        assert_eq!(reload(&w, r).await.detail.justification, r.detail.justification, "nothing written");
    }
    let batch = steward_app::ports::Batch {
        requests: reqs.iter().map(|r| changed(r, r.modified_date_time)).collect(),
        ..Default::default()
    };
    s.apply(&batch).await.unwrap();
    for r in &reqs {
        let now_r = reload(&w, r).await;
        assert_eq!(now_r.detail.justification.as_deref(), Some("changed together"));
        assert_eq!(now_r.modified_date_time, now);
    }
    assert_eq!(s.open_request(reqs[2].target_id, w.package.id).await.unwrap().map(|r| r.id), Some(reqs[2].id));
}
