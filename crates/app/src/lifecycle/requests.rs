//! Submitting assignment requests (add, extend, remove; by users, on behalf, by administrators),
//! reading them, cancelling and reprocessing them, and explaining who may request a package.

use jiff::Timestamp;
use steward_domain::approval::{self, Outcome, StageRecord};
use steward_domain::assignment::{Assignment, DeliveryState, GrantAction};
use steward_domain::audit::Activity;
use steward_domain::directory::User;
use steward_domain::eligibility::{self, Facts, Verdict};
use steward_domain::enums::{AllowedTargetScope, AssignmentState, CustomExtensionStage, RequestState, RequestType};
use steward_domain::ids::{AccessPackageId, AssignmentId, CatalogId, PolicyId, RequestId, UserId};
use steward_domain::package::AccessPackage;
use steward_domain::policy::{AssignmentPolicy, RequestorSettings};
use steward_domain::request::{self, Answer, AssignmentRequest, RequestDetail, RequestStatus};
use steward_domain::role::Task;
use steward_domain::schedule::{self, Schedule};

use super::{
    Actor, approvers, callouts, changed, end_access, request_event, require_request, separation, start_access,
};
use crate::auth::{CatalogScope, Principal, UserCap};
use crate::identity::SignInFacts;
use crate::jobs::{JobKind, NewJob};
use crate::packages::require_package;
use crate::ports::{Batch, Page, Put};
use crate::query::{ListQuery, Relation};
use crate::{AppError, Services, StoreError, WRITE_ATTEMPTS};

/// What a client submits.
#[derive(Debug, Clone, Default)]
pub struct RequestInput {
    pub request_type: Option<RequestType>,
    pub access_package_id: Option<AccessPackageId>,
    pub policy_id: Option<PolicyId>,
    pub target_id: Option<UserId>,
    pub assignment_id: Option<AssignmentId>,
    pub justification: Option<String>,
    pub answers: Vec<Answer>,
    pub schedule: Option<Schedule>,
    /// `adminAdd` only, instead of `target_id` (Graph's `assignment.target.email`): the user with
    /// this email, or someone not in the directory yet, invited as a guest of the connected
    /// organization of the email's domain when the request is approved.
    pub target_email: Option<String>,
    /// With `target_email`: the display name an invited guest gets (`assignment.target.displayName`).
    pub target_display_name: Option<String>,
}

/// Submits a request. Administrators add, extend and remove anyone's access directly; users
/// request for themselves (or on behalf of others where a policy allows it).
pub async fn submit(s: &Services, caller: &Principal, input: RequestInput) -> Result<AssignmentRequest, AppError> {
    if let Principal::External { email, name, sign_in } = caller {
        return request_as_external(s, email, name.as_deref(), Some(sign_in), input).await;
    }
    let kind = input.request_type.unwrap_or(match caller {
        Principal::User { .. } | Principal::External { .. } => RequestType::UserAdd,
        Principal::Admin { .. } | Principal::Service { .. } => RequestType::AdminAdd,
    });
    let manager = || caller.may_somewhere(Task::ManageAssignments).map(|()| Who::Manager(caller));
    match kind {
        RequestType::AdminAdd => {
            caller.may_somewhere(Task::ManageAssignments)?;
            admin_add(s, caller, input).await
        }
        RequestType::UserAdd => user_add(s, caller.user()?, caller.sign_in(), input, false).await,
        RequestType::OnBehalfAdd => user_add(s, caller.user()?, caller.sign_in(), input, true).await,
        RequestType::AdminUpdate => update(s, manager()?, input).await,
        RequestType::UserUpdate => update(s, Who::User(caller.user()?), input).await,
        RequestType::AdminRemove => remove(s, manager()?, input).await,
        RequestType::UserRemove => remove(s, Who::User(caller.user()?), input).await,
        other => Err(AppError::Invalid(format!(
            "requestType {other} cannot be submitted; use userAdd, userUpdate, userRemove, onBehalfAdd, adminAdd, \
             adminUpdate or adminRemove."
        ))),
    }
}

/// Who changes an assignment: someone managing the package's assignments (checked against the
/// package's catalog once it is known), or the assigned user themselves.
enum Who<'a> {
    Manager(&'a Principal),
    User(UserCap),
}

impl Who<'_> {
    fn actor(&self) -> Actor {
        match self {
            Self::Manager(p) => p.actor(),
            Self::User(u) => Actor::User(u.id()),
        }
    }
    /// For a manager: the check that they manage assignments in the package's catalog.
    fn check(&self, catalog: CatalogId) -> Result<(), AppError> {
        match self {
            Self::Manager(p) => p.in_catalog(catalog, Task::ManageAssignments).map(|_| ()),
            Self::User(_) => Ok(()),
        }
    }
}

async fn require_user(s: &Services, id: UserId) -> Result<User, AppError> {
    s.store.get_user(id).await?.ok_or_else(|| AppError::not_found("user", id))
}

fn requestor_settings(p: &AssignmentPolicy) -> RequestorSettings {
    // A policy without requestor settings lets its targets add, extend and remove their own access.
    p.settings.requestor_settings.clone().unwrap_or(RequestorSettings {
        enable_targets_to_self_add_access: true,
        enable_targets_to_self_update_access: true,
        enable_targets_to_self_remove_access: true,
        ..Default::default()
    })
}

pub(crate) fn needs_approval(p: &AssignmentPolicy, add: bool) -> bool {
    p.settings.request_approval_settings.as_ref().is_some_and(|a| {
        (if add { a.is_approval_required_for_add } else { a.is_approval_required_for_update }) && !a.stages.is_empty()
    })
}

fn justification_required(p: &AssignmentPolicy) -> bool {
    p.settings.request_approval_settings.as_ref().is_some_and(|a| a.is_requestor_justification_required)
}

/// Whether `target` may be assigned through `policy`, and why.
pub async fn verdict(s: &Services, policy: &AssignmentPolicy, target: &User) -> Result<Verdict, AppError> {
    let groups = s.store.groups_of(target.id).await?;
    let organization = crate::connected_orgs::membership_of(s, target).await?;
    Ok(eligibility::target_allowed(&policy.settings, Facts { user: target, groups: &groups, organization }))
}

/// The policy a user's request for `package` falls under: the named one if it lets them in,
/// else the most specific of the package's policies that does (reference §5).
pub async fn choose_policy(
    s: &Services,
    pkg: &AccessPackage,
    target: &User,
    named: Option<PolicyId>,
) -> Result<AssignmentPolicy, AppError> {
    let policies = s.store.policies_of_package(pkg.id).await?;
    let groups = if policies.iter().any(|p| eligibility::target_needs_groups(&p.settings)) {
        s.store.groups_of(target.id).await?
    } else {
        Vec::new()
    };
    // For someone a request invites, `target` is the guest they will be: their email's domain
    // places them in its connected organization as it would once they exist.
    let organization = crate::connected_orgs::membership_of(s, target).await?;
    let facts = Facts { user: target, groups: &groups, organization };
    if let Some(id) = named {
        let p = policies.into_iter().find(|p| p.id == id).ok_or_else(|| {
            AppError::Invalid(format!("Assignment policy '{id}' is not a policy of access package '{}'.", pkg.id))
        })?;
        let v = eligibility::target_allowed(&p.settings, facts);
        return if v.allowed {
            Ok(p)
        } else {
            Err(AppError::Forbidden(format!(
                "The policy '{}' does not allow this request: {}.",
                p.display_name, v.reason
            )))
        };
    }
    let mut reasons = Vec::new();
    let mut best: Option<(u8, AssignmentPolicy)> = None;
    for p in policies {
        let v = eligibility::target_allowed(&p.settings, facts);
        if !v.allowed {
            reasons.push(format!("{}: {}", p.display_name, v.reason));
            continue;
        }
        let rank = eligibility::specificity(p.settings.allowed_target_scope);
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, p));
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| {
        AppError::Forbidden(if reasons.is_empty() {
            format!("Access package '{}' has no policy under which it can be requested.", pkg.display_name)
        } else {
            format!("No policy of access package '{}' allows this request ({}).", pkg.display_name, reasons.join("; "))
        })
    })
}

async fn package_and_policy(
    s: &Services,
    input: &RequestInput,
) -> Result<(AccessPackage, Option<AssignmentPolicy>), AppError> {
    let pkg_id = match (input.access_package_id, input.policy_id) {
        (Some(p), _) => p,
        (None, Some(pol)) => {
            s.store
                .get_policy(pol)
                .await?
                .ok_or_else(|| AppError::not_found("assignment policy", pol))?
                .access_package_id
        }
        (None, None) => {
            return Err(AppError::Invalid(
                "The request needs assignment.accessPackageId (the package to request).".into(),
            ));
        }
    };
    let pkg = require_package(s, pkg_id).await?;
    let policy = match input.policy_id {
        Some(id) => {
            let p = s.store.get_policy(id).await?.ok_or_else(|| AppError::not_found("assignment policy", id))?;
            if p.access_package_id != pkg.id {
                return Err(AppError::Invalid(format!(
                    "Assignment policy '{id}' is not a policy of access package '{}'.",
                    pkg.id
                )));
            }
            Some(p)
        }
        None => None,
    };
    Ok((pkg, policy))
}

/// Refuses a second open request or an existing assignment for the same target and package.
async fn check_not_duplicate(s: &Services, target: UserId, pkg: &AccessPackage) -> Result<(), AppError> {
    if let Some(r) = s.store.open_request(target, pkg.id).await? {
        return Err(AppError::Conflict(format!(
            "The target already has an open request ({}) for access package '{}'.",
            r.id, pkg.display_name
        )));
    }
    if let Some(a) = s.store.active_assignment(target, pkg.id).await? {
        return Err(AppError::Conflict(format!(
            "The target already has access package '{}' (assignment {}); extend it with an update request instead.",
            pkg.display_name, a.id
        )));
    }
    Ok(())
}

fn new_request(
    kind: RequestType,
    pkg: &AccessPackage,
    policy: &AssignmentPolicy,
    target: UserId,
    requestor: Option<UserId>,
    detail: RequestDetail,
    now: Timestamp,
) -> AssignmentRequest {
    AssignmentRequest {
        id: RequestId::new(),
        request_type: kind,
        state: RequestState::Submitted,
        status: RequestStatus::Accepted,
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        policy_id: Some(policy.id),
        target_id: target,
        requestor_id: requestor,
        assignment_id: None,
        detail: RequestDetail {
            extensions: steward_domain::extension::snapshot(&policy.settings.custom_extension_stage_settings),
            ..detail
        },
        created_date_time: now,
        completed_date_time: None,
        modified_date_time: now,
        due: None,
    }
}

async fn admin_add(s: &Services, caller: &Principal, input: RequestInput) -> Result<AssignmentRequest, AppError> {
    if input.target_id.is_none() && input.target_email.is_none() {
        return Err(AppError::Invalid(
            "adminAdd needs assignment.targetId (the user to assign), or assignment.target.email for someone \
             who may not be in the directory yet."
                .into(),
        ));
    }
    let (pkg, policy) = package_and_policy(s, &input).await?;
    let cap = caller.in_catalog(pkg.catalog_id, Task::ManageAssignments)?;
    let who = match (input.target_id, input.target_email.as_deref()) {
        (Some(id), _) => super::guests::Target::of(s, require_user(s, id).await?).await?,
        (None, Some(email)) => super::guests::by_email(s, email, input.target_display_name.as_deref()).await?,
        (None, None) => return Err(AppError::Invalid("adminAdd needs assignment.targetId.".into())),
    };
    let target = &who.user;
    let policy = match policy {
        Some(p) => p,
        None => {
            let mut all = s.store.policies_of_package(pkg.id).await?;
            if all.len() != 1 {
                return Err(AppError::Invalid(format!(
                    "adminAdd needs assignment.assignmentPolicyId: access package '{}' has {} policies.",
                    pkg.display_name,
                    all.len()
                )));
            }
            all.remove(0)
        }
    };
    if who.invitation.is_some() {
        // Administrators assign anyone in the directory directly; someone they invite must be
        // someone the policy admits (a user of a connected organization it is scoped to).
        let facts = Facts { user: target, groups: &[], organization: who.organization };
        let v = eligibility::target_allowed(&policy.settings, facts);
        if !v.allowed {
            return Err(AppError::Forbidden(format!(
                "'{}' is not in the directory and the policy '{}' does not admit them as a guest: {}.",
                target.user_principal_name, policy.display_name, v.reason
            )));
        }
    }
    check_not_duplicate(s, target.id, &pkg).await?;
    separation::check(s, target.id, pkg.id).await?;
    let now = s.clock.now();
    let window = schedule::window_for_add(policy.settings.expiration.as_ref(), input.schedule.as_ref(), true, now)?;
    // Administrators assign directly: answers are optional, but those given must be valid.
    let answers = if input.answers.is_empty() {
        Vec::new()
    } else {
        request::check_answers(&policy.settings.questions, input.answers)?
    };
    let detail = RequestDetail {
        justification: request::check_justification(input.justification.as_deref(), false)?,
        answers,
        schedule: input.schedule.unwrap_or_default(),
        window: Some(window),
        guest: who.invitation.clone(),
        ..Default::default()
    };
    let actor = cap.actor();
    let mut req = new_request(RequestType::AdminAdd, &pkg, &policy, target.id, None, detail, now);
    let mut batch = Batch::default();
    batch.events.push(request_event(&req, Activity::AdminAssigns, &actor, now));
    if !callouts::fire(s, &mut req, CustomExtensionStage::AssignmentRequestCreated, now, &mut batch).await? {
        approved(s, &mut req, &actor, now, &mut batch).await?;
    }
    batch.requests.insert(0, Put::New(req.clone()));
    s.store.apply(&batch).await?;
    Ok(req)
}

async fn user_add(
    s: &Services,
    me: UserCap,
    facts: Option<&SignInFacts>,
    input: RequestInput,
    on_behalf: bool,
) -> Result<AssignmentRequest, AppError> {
    let target_id = match (on_behalf, input.target_id) {
        (false, None) => me.id(),
        (false, Some(t)) if t == me.id() => t,
        (false, Some(_)) => {
            return Err(AppError::Invalid(
                "userAdd requests access for the caller; to request for someone else use onBehalfAdd.".into(),
            ));
        }
        (true, Some(t)) => t,
        (true, None) => return Err(AppError::Invalid("onBehalfAdd needs assignment.targetId.".into())),
    };
    if input.target_email.is_some() {
        return Err(AppError::Invalid(
            "Only adminAdd names its target by email (assignment.target.email); userAdd is for the caller and \
             onBehalfAdd names a directory user by assignment.targetId."
                .into(),
        ));
    }
    let target = super::guests::Target::of(s, require_user(s, target_id).await?).await?;
    add_for(s, me.id(), target, input, on_behalf, facts).await
}

/// A request by someone who signed in through an identity provider and is not a directory user
/// (the sign-in layer vouches for `email`): a `userAdd` for themselves, under the policy named
/// or else the most specific that admits a guest of the connected organization of their
/// email's domain (refused when it belongs to none). They become a guest, governed by Steward,
/// when the request is approved, in the transaction of their assignment. A guest already in the
/// directory with that email requests as themselves; the email of a member is refused (a
/// member signs in as the member).
pub async fn request_as_external(
    s: &Services,
    email: &str,
    display_name: Option<&str>,
    facts: Option<&SignInFacts>,
    input: RequestInput,
) -> Result<AssignmentRequest, AppError> {
    if input.request_type.is_some_and(|t| t != RequestType::UserAdd)
        || input.target_id.is_some()
        || input.target_email.is_some()
    {
        return Err(AppError::Invalid("An external requestor asks for themselves: a userAdd without a target.".into()));
    }
    let target = super::guests::by_email(s, email, display_name).await?;
    if target.invitation.is_none() && target.user.user_type != steward_domain::enums::UserType::Guest {
        return Err(AppError::Forbidden(format!(
            "'{}' is the email of a member of the directory, who signs in as that member to request access.",
            steward_domain::text::clip(email, 120)
        )));
    }
    add_for(s, target.user.id, target, input, false, facts).await
}

/// A user's add request (`userAdd`, or `onBehalfAdd` by `requestor`) for `target`.
async fn add_for(
    s: &Services,
    requestor: UserId,
    who: super::guests::Target,
    input: RequestInput,
    on_behalf: bool,
    facts: Option<&SignInFacts>,
) -> Result<AssignmentRequest, AppError> {
    let target = &who.user;
    let (pkg, named) = package_and_policy(s, &input).await?;
    let policy = choose_policy(s, &pkg, target, named.map(|p| p.id)).await?;
    super::conditions::require(&policy, super::conditions::Moment::Request, facts, s.clock.now())?;
    let settings = requestor_settings(&policy);
    if on_behalf {
        let requestor = require_user(s, requestor).await?;
        let groups = s.store.groups_of(requestor.id).await?;
        let organization = crate::connected_orgs::membership_of(s, &requestor).await?;
        let v = eligibility::on_behalf_allowed(
            &policy.settings,
            Facts { user: &requestor, groups: &groups, organization },
            target.manager,
        );
        if !v.allowed {
            return Err(AppError::Forbidden(format!(
                "This request on behalf of another user is not allowed: {}.",
                v.reason
            )));
        }
    } else if !settings.enable_targets_to_self_add_access {
        return Err(AppError::Forbidden(format!(
            "The policy '{}' does not let users request this access for themselves.",
            policy.display_name
        )));
    }
    separation::check(s, target.id, pkg.id).await?;
    let now = s.clock.now();
    let justification = request::check_justification(input.justification.as_deref(), justification_required(&policy))?;
    let answers = request::check_answers(&policy.settings.questions, input.answers)?;
    let window = schedule::window_for_add(
        policy.settings.expiration.as_ref(),
        input.schedule.as_ref(),
        settings.allow_custom_assignment_schedule,
        now,
    )?;
    let detail = RequestDetail {
        justification,
        answers,
        schedule: input.schedule.unwrap_or_default(),
        window: Some(window),
        guest: who.invitation.clone(),
        ..Default::default()
    };
    let kind = if on_behalf { RequestType::OnBehalfAdd } else { RequestType::UserAdd };
    let actor = Actor::User(requestor);
    let mut req = new_request(kind, &pkg, &policy, target.id, Some(requestor), detail, now);
    let mut batch = Batch::default();
    batch.events.push(request_event(&req, Activity::UserRequestsAssignment, &actor, now));
    if callouts::fire(s, &mut req, CustomExtensionStage::AssignmentRequestCreated, now, &mut batch).await? {
        // A launch-and-wait extension decides first; approval starts when it calls back.
    } else if needs_approval(&policy, true) {
        begin_approval(s, &mut req, &policy, now, &mut batch).await?;
    } else {
        batch.events.push(request_event(&req, Activity::AutoApprove, &Actor::System, now));
        approved(s, &mut req, &actor, now, &mut batch).await?;
    }
    batch.requests.insert(0, Put::New(req.clone()));
    apply_unless_duplicate(s, &batch, target.id, &pkg).await?;
    Ok(req)
}

/// Writes a new request's batch, refusing a second open request or assignment for one target
/// and package. The store's unique keys refuse a second open request, and a second active
/// assignment when the batch creates one, so only a batch that creates none (an approval to
/// wait for, a future start) needs the two reads up front; a refusal is explained by them.
async fn apply_unless_duplicate(
    s: &Services,
    batch: &Batch,
    target: UserId,
    pkg: &AccessPackage,
) -> Result<(), AppError> {
    if !batch.assignments.iter().any(|a| matches!(a, Put::New(_))) {
        check_not_duplicate(s, target, pkg).await?;
    }
    match s.store.apply(batch).await {
        Ok(()) => Ok(()),
        Err(e @ StoreError::Conflict(_)) => {
            check_not_duplicate(s, target, pkg).await?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Plans the policy's stages and starts the first.
pub(crate) async fn begin_approval(
    s: &Services,
    req: &mut AssignmentRequest,
    policy: &AssignmentPolicy,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    let stages = policy.settings.request_approval_settings.as_ref().map(|a| a.stages.clone()).unwrap_or_default();
    req.detail.stages = stages.iter().map(StageRecord::planned).collect();
    req.set(RequestState::PendingApproval, RequestStatus::PendingApproval, now);
    let first = stages.first().ok_or_else(|| AppError::Invalid("The policy has no approval stage.".into()))?;
    let people = approvers::resolve_stage(s, req, first, false).await?;
    if approval::start_stage(&mut req.detail.stages, &stages, 0, people, now) == Outcome::Denied {
        deny(req, RequestStatus::Denied, "No approver could be found for approval stage 1.", now, batch);
    }
    req.due = approval::next_due(&req.detail.stages);
    Ok(())
}

pub(crate) fn deny(
    req: &mut AssignmentRequest,
    status: RequestStatus,
    reason: &str,
    now: Timestamp,
    batch: &mut Batch,
) {
    approval::skip_rest(&mut req.detail.stages, 0);
    req.detail.reason = Some(reason.to_owned());
    req.set(RequestState::Denied, status, now);
    let activity = if status == RequestStatus::TimedOut { Activity::TimedOut } else { Activity::Deny };
    batch.events.push(request_event(req, activity, &Actor::System, now).with_detail(reason));
}

/// An add request is approved: its policy's extension for the approved stage is called (and,
/// if it is launch-and-wait, the request waits for it); then it waits for its start, or its
/// access starts now.
pub(crate) async fn approved(
    s: &Services,
    req: &mut AssignmentRequest,
    actor: &Actor,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    if callouts::fire(s, req, CustomExtensionStage::AssignmentRequestApproved, now, batch).await? {
        return Ok(());
    }
    after_approval(s, req, actor, now, batch).await
}

/// After approval (and its extension): the request waits for its start, or access starts now.
pub(crate) async fn after_approval(
    s: &Services,
    req: &mut AssignmentRequest,
    actor: &Actor,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    let window = req.detail.window.ok_or_else(|| AppError::Invalid("The request has no schedule.".into()))?;
    if window.start > now {
        req.set(RequestState::Scheduled, RequestStatus::PendingNotBefore, now);
        req.due = Some(window.start);
        batch.events.push(request_event(req, Activity::ScheduleFuture, actor, now));
        return Ok(());
    }
    if !super::guests::prepare_target(s, req, now, batch).await? {
        return Ok(());
    }
    let grants = s.store.package_grants(req.access_package_id).await?;
    start_access(req, &grants, actor, now, batch)?;
    Ok(())
}

async fn target_assignment(s: &Services, input: &RequestInput, target: Option<UserId>) -> Result<Assignment, AppError> {
    let a = match (input.assignment_id, input.access_package_id, target) {
        (Some(id), _, _) => s.store.get_assignment(id).await?.ok_or_else(|| AppError::not_found("assignment", id))?,
        (None, Some(pkg), Some(t)) => s.store.active_assignment(t, pkg).await?.ok_or_else(|| {
            AppError::Invalid(format!("The target has no active assignment to access package '{pkg}'."))
        })?,
        _ => return Err(AppError::Invalid("The request needs assignment.id (the assignment to change).".into())),
    };
    if !a.is_active() {
        return Err(AppError::Conflict(format!("Assignment '{}' has already ended.", a.id)));
    }
    Ok(a)
}

async fn update(s: &Services, who: Who<'_>, input: RequestInput) -> Result<AssignmentRequest, AppError> {
    let me = match &who {
        Who::User(u) => Some(u.id()),
        Who::Manager(..) => None,
    };
    let a = target_assignment(s, &input, me).await?;
    who.check(a.catalog_id)?;
    if me.is_some_and(|m| m != a.target_id) {
        return Err(AppError::Forbidden("Users can extend only their own assignments.".into()));
    }
    let pkg = require_package(s, a.access_package_id).await?;
    let policy_id =
        a.policy_id.ok_or_else(|| AppError::Conflict("The assignment's policy no longer exists.".into()))?;
    let policy =
        s.store.get_policy(policy_id).await?.ok_or_else(|| AppError::not_found("assignment policy", policy_id))?;
    let settings = requestor_settings(&policy);
    let now = s.clock.now();
    let user_call = me.is_some();
    if user_call {
        if !settings.enable_targets_to_self_update_access {
            return Err(AppError::Forbidden(format!(
                "The policy '{}' does not let users extend their access.",
                policy.display_name
            )));
        }
        let target = require_user(s, a.target_id).await?;
        let v = verdict(s, &policy, &target).await?;
        if !v.allowed {
            return Err(AppError::Forbidden(format!(
                "An extension needs the target to still be in the policy's scope: {}.",
                v.reason
            )));
        }
    }
    if let Some(open) = s.store.open_request(a.target_id, a.access_package_id).await? {
        return Err(AppError::Conflict(format!(
            "The target already has an open request ({}) for this package.",
            open.id
        )));
    }
    let custom = !user_call || settings.allow_custom_assignment_schedule;
    let window = schedule::window_for_extension(
        a.window,
        policy.settings.expiration.as_ref(),
        input.schedule.as_ref(),
        custom,
        now,
    )?;
    let justification =
        request::check_justification(input.justification.as_deref(), user_call && justification_required(&policy))?;
    let answers = if input.answers.is_empty() {
        Vec::new()
    } else {
        request::check_answers(&policy.settings.questions, input.answers)?
    };
    let kind = if user_call { RequestType::UserUpdate } else { RequestType::AdminUpdate };
    let detail = RequestDetail {
        justification,
        answers,
        schedule: input.schedule.unwrap_or_default(),
        window: Some(window),
        ..Default::default()
    };
    let actor = who.actor();
    let mut req = new_request(kind, &pkg, &policy, a.target_id, me, detail, now);
    req.assignment_id = Some(a.id);
    let mut batch = Batch::default();
    let activity = if user_call { Activity::UserRequestsExtension } else { Activity::AdminUpdatesAssignment };
    batch.events.push(request_event(&req, activity, &actor, now));
    if user_call && needs_approval(&policy, false) {
        begin_approval(s, &mut req, &policy, now, &mut batch).await?;
    } else {
        extend(&mut req, &a, &actor, now, &mut batch)?;
    }
    batch.requests.insert(0, Put::New(req.clone()));
    s.store.apply(&batch).await?;
    Ok(req)
}

/// Applies an approved extension: the assignment's window moves; nothing needs delivering.
pub(crate) fn extend(
    req: &mut AssignmentRequest,
    a: &Assignment,
    actor: &Actor,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    let window = req.detail.window.ok_or_else(|| AppError::Invalid("The extension has no schedule.".into()))?;
    let mut extended = a.clone();
    extended.window = window;
    extended.modified_date_time = steward_domain::time::next_modified(a.modified_date_time, now);
    batch.assignments.push(Put::Changed { row: extended.clone(), read_at: a.modified_date_time });
    req.set(RequestState::Delivered, RequestStatus::Delivered, now);
    batch.events.push(super::assignment_event(&extended, Some(req), Activity::Extend, actor, now));
    Ok(())
}

async fn remove(s: &Services, who: Who<'_>, input: RequestInput) -> Result<AssignmentRequest, AppError> {
    let me = match &who {
        Who::User(u) => Some(u.id()),
        Who::Manager(..) => None,
    };
    let a = target_assignment(s, &input, me).await?;
    who.check(a.catalog_id)?;
    if me.is_some_and(|m| m != a.target_id) {
        return Err(AppError::Forbidden("Users can remove only their own assignments.".into()));
    }
    let pkg = require_package(s, a.access_package_id).await?;
    let policy = match a.policy_id {
        Some(p) => s.store.get_policy(p).await?,
        None => None,
    };
    if me.is_some() && !policy.as_ref().map(requestor_settings).is_some_and(|r| r.enable_targets_to_self_remove_access)
    {
        return Err(AppError::Forbidden("The assignment's policy does not let users remove their own access.".into()));
    }
    let now = s.clock.now();
    let kind = if me.is_some() { RequestType::UserRemove } else { RequestType::AdminRemove };
    let actor = who.actor();
    let mut req = AssignmentRequest {
        id: RequestId::new(),
        request_type: kind,
        state: RequestState::Delivering,
        status: RequestStatus::Delivering,
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        policy_id: a.policy_id,
        target_id: a.target_id,
        requestor_id: me,
        assignment_id: Some(a.id),
        detail: RequestDetail {
            justification: request::check_justification(input.justification.as_deref(), false)?,
            extensions: policy
                .as_ref()
                .map(|p| steward_domain::extension::snapshot(&p.settings.custom_extension_stage_settings))
                .unwrap_or_default(),
            ..Default::default()
        },
        created_date_time: now,
        completed_date_time: None,
        modified_date_time: now,
        due: None,
    };
    let mut batch = Batch::default();
    let activity = if me.is_some() { Activity::UserRequestsRemoval } else { Activity::AdminRemoves };
    batch.events.push(request_event(&req, activity, &actor, now));
    // A pending request for the same package (an extension) ends with the assignment.
    if let Some(mut open) = s.store.open_request(a.target_id, a.access_package_id).await? {
        let read_at = open.modified_date_time;
        approval::skip_rest(&mut open.detail.stages, 0);
        open.detail.reason = Some("The assignment was removed.".into());
        open.set(RequestState::Canceled, RequestStatus::Canceled, now);
        batch.requests.push(changed(open, read_at, now));
    }
    let grants = s.store.package_grants(a.access_package_id).await?;
    if grants.is_empty() {
        req.set(RequestState::Delivered, RequestStatus::Delivered, now);
        callouts::queue(&req, CustomExtensionStage::AssignmentRequestRemoved, now, &mut batch);
    }
    end_access(&a, &grants, "Removed", Some(&req), now, &mut batch);
    super::guests::access_ended(s, &[a.target_id], now, &mut batch).await?;
    batch.requests.insert(0, Put::New(req.clone()));
    s.store.apply(&batch).await?;
    Ok(req)
}

/// Who may see a request: whoever manages the assignments of its catalog; its target and
/// requestor; its approvers.
fn may_see(caller: &Principal, r: &AssignmentRequest) -> bool {
    if caller.grants().allows_in(r.catalog_id, Task::ManageAssignments) {
        return true;
    }
    caller.user_id().is_some_and(|user| {
        r.target_id == user
            || r.requestor_id == Some(user)
            || r.detail.stages.iter().any(|st| st.approvers.contains(&user))
    })
}

pub async fn get_request(s: &Services, caller: &Principal, id: RequestId) -> Result<AssignmentRequest, AppError> {
    let r = require_request(s, id).await?;
    if !may_see(caller, &r) {
        // Indistinguishable from a request that does not exist.
        return Err(AppError::not_found("assignment request", id));
    }
    Ok(r)
}

/// The requests of the catalogs whose assignments the caller manages.
pub async fn list_requests(
    s: &Services,
    scope: &CatalogScope,
    q: &ListQuery,
) -> Result<Page<AssignmentRequest>, AppError> {
    Ok(s.store.list_requests(&q.clone().within(scope, "accessPackage/catalog/id")?).await?)
}

/// `filterByCurrentUser(on=…)` over requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestsOf {
    Target,
    CreatedBy,
    Approver,
}

pub async fn list_my_requests(
    s: &Services,
    me: UserCap,
    on: RequestsOf,
    q: ListQuery,
) -> Result<Page<AssignmentRequest>, AppError> {
    let q = match on {
        RequestsOf::Target => q.scoped("assignment/target/objectId", me.id())?,
        RequestsOf::CreatedBy => q.scoped("requestor/objectId", me.id())?,
        RequestsOf::Approver => q.related(Relation::RequestsToApprove, me.id()),
    };
    Ok(s.store.list_requests(&q).await?)
}

/// Cancels a request that has not been delivered (or whose delivery failed). Its target,
/// its requestor and administrators may.
pub async fn cancel(s: &Services, caller: &Principal, id: RequestId) -> Result<(), AppError> {
    for _ in 0..WRITE_ATTEMPTS {
        let r = require_request(s, id).await?;
        let allowed = caller.grants().allows_in(r.catalog_id, Task::ManageAssignments)
            || caller.user_id().is_some_and(|user| r.target_id == user || r.requestor_id == Some(user));
        if !allowed {
            return Err(if may_see(caller, &r) {
                AppError::Forbidden(
                    "Only the requestor, the target or a manager of the catalog's assignments can cancel a request."
                        .into(),
                )
            } else {
                AppError::not_found("assignment request", id)
            });
        }
        if !r.can_cancel() {
            return Err(AppError::Conflict(format!(
                "The request is {}; only a request that is not yet delivered (or whose delivery failed) can be cancelled.",
                r.state
            )));
        }
        let now = s.clock.now();
        let read_at = r.modified_date_time;
        let mut r2 = r.clone();
        approval::skip_rest(&mut r2.detail.stages, 0);
        r2.set(RequestState::Canceled, RequestStatus::Canceled, now);
        let actor = caller.actor();
        let mut batch = Batch::default();
        batch.events.push(request_event(&r2, Activity::Cancel, &actor, now));
        if r.is_add()
            && let Some(aid) = r.assignment_id
            && let Some(a) = s.store.get_assignment(aid).await?
            && a.is_active()
        {
            let grants = s.store.package_grants(a.access_package_id).await?;
            end_access(&a, &grants, "Removed", None, now, &mut batch);
            super::guests::access_ended(s, &[a.target_id], now, &mut batch).await?;
        }
        batch.requests.push(changed(r2, read_at, now));
        match s.store.apply(&batch).await {
            Ok(()) => return Ok(()),
            Err(crate::StoreError::Conflict(m)) if m.contains("changed by someone else") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Conflict("The request kept changing while it was being cancelled; try again.".into()))
}

/// The check that the caller manages the assignments of the request's catalog (before a
/// handler reads a body it would otherwise refuse to act on).
pub async fn manages_request(s: &Services, caller: &Principal, id: RequestId) -> Result<(), AppError> {
    caller.may_somewhere(Task::ManageAssignments)?;
    let r = require_request(s, id).await?;
    caller.in_catalog(r.catalog_id, Task::ManageAssignments).map(|_| ())
}

/// Retries the failed deliveries of a request that is `deliveryFailed` or `partiallyDelivered`.
pub async fn reprocess(s: &Services, caller: &Principal, id: RequestId) -> Result<(), AppError> {
    caller.may_somewhere(Task::ManageAssignments)?;
    let r = require_request(s, id).await?;
    caller.in_catalog(r.catalog_id, Task::ManageAssignments)?;
    if !matches!(r.state, RequestState::DeliveryFailed | RequestState::PartiallyDelivered) {
        return Err(AppError::Conflict(format!(
            "Only a request that is deliveryFailed or partiallyDelivered can be reprocessed; this one is {}.",
            r.state
        )));
    }
    let aid = r.assignment_id.ok_or_else(|| AppError::Conflict("The request has no assignment to deliver.".into()))?;
    let a = s.store.get_assignment(aid).await?.ok_or_else(|| AppError::not_found("assignment", aid))?;
    let now = s.clock.now();
    let mut batch = retry_failed(s, &a, Some(r.id), now).await?;
    let read_at = r.modified_date_time;
    let mut r2 = r;
    r2.detail.failures.clear();
    r2.set(RequestState::Delivering, RequestStatus::Delivering, now);
    r2.completed_date_time = None;
    batch.requests.push(changed(r2, read_at, now));
    s.store.apply(&batch).await?;
    Ok(())
}

/// Retries the failed grants of an assignment (`assignments/{id}/reprocess`).
pub async fn reprocess_assignment(s: &Services, caller: &Principal, id: AssignmentId) -> Result<(), AppError> {
    caller.may_somewhere(Task::ManageAssignments)?;
    let a = s.store.get_assignment(id).await?.ok_or_else(|| AppError::not_found("assignment", id))?;
    caller.in_catalog(a.catalog_id, Task::ManageAssignments)?;
    if !matches!(a.state, AssignmentState::DeliveryFailed | AssignmentState::PartiallyDelivered) {
        return Err(AppError::Conflict(format!(
            "Only an assignment that is deliveryFailed or partiallyDelivered can be reprocessed; this one is {}.",
            a.state
        )));
    }
    let now = s.clock.now();
    let batch = retry_failed(s, &a, None, now).await?;
    s.store.apply(&batch).await?;
    Ok(())
}

async fn retry_failed(
    s: &Services,
    a: &Assignment,
    request: Option<RequestId>,
    now: Timestamp,
) -> Result<Batch, AppError> {
    let mut batch = Batch::default();
    for mut d in s.store.deliveries(a.id).await? {
        if d.state == DeliveryState::Failed && d.action == GrantAction::Grant {
            d.state = DeliveryState::Pending;
            d.attempts = 0;
            d.detail = None;
            batch.jobs.push(NewJob::now(
                JobKind::Deliver { assignment: a.id, role: d.resource_role_id, action: d.action, request },
                now,
            ));
            batch.deliveries.push(d);
        }
    }
    let mut a2 = a.clone();
    a2.state = AssignmentState::Delivering;
    a2.status = "Delivering".into();
    a2.modified_date_time = steward_domain::time::next_modified(a.modified_date_time, now);
    batch.assignments.push(Put::Changed { row: a2, read_at: a.modified_date_time });
    Ok(batch)
}

/// The answer to "may this user request this package, under which policy, and who approves?".
#[derive(Debug, Clone)]
pub struct Explanation {
    pub allowed: bool,
    pub policy: Option<AssignmentPolicy>,
    /// Per policy: its name and the verdict.
    pub policies: Vec<(AssignmentPolicy, Verdict)>,
    /// Per stage of the chosen policy: who would approve.
    pub approvers: Vec<Vec<UserId>>,
    /// Separation-of-duties conflict or existing access that stands in the way.
    pub blocked_by: Option<String>,
}

/// Explains, for `user` and `package`, whether a request can be made and what would happen.
pub async fn explain(s: &Services, user: UserId, package: AccessPackageId) -> Result<Explanation, AppError> {
    let pkg = require_package(s, package).await?;
    let target = require_user(s, user).await?;
    let mut policies = Vec::new();
    for p in s.store.policies_of_package(pkg.id).await? {
        let mut v = verdict(s, &p, &target).await?;
        if v.allowed && !requestor_settings(&p).enable_targets_to_self_add_access {
            v = Verdict { allowed: false, reason: "the policy does not let users request for themselves".into() };
        }
        policies.push((p, v));
    }
    let chosen = policies
        .iter()
        .filter(|(p, v)| v.allowed && p.settings.allowed_target_scope != AllowedTargetScope::NotSpecified)
        .max_by_key(|(p, _)| eligibility::specificity(p.settings.allowed_target_scope))
        .map(|(p, _)| p.clone());
    let mut approvers = Vec::new();
    if let Some(p) = &chosen
        && needs_approval(p, true)
    {
        let probe = new_request(
            RequestType::UserAdd,
            &pkg,
            p,
            target.id,
            Some(target.id),
            RequestDetail::default(),
            s.clock.now(),
        );
        for st in p.settings.request_approval_settings.iter().flat_map(|a| a.stages.iter()) {
            approvers.push(approvers::resolve_stage(s, &probe, st, false).await?);
        }
    }
    let mut blocked_by = separation::find(s, target.id, pkg.id).await?;
    if blocked_by.is_none() && s.store.active_assignment(target.id, pkg.id).await?.is_some() {
        blocked_by = Some("The user already has this access package.".into());
    }
    Ok(Explanation {
        allowed: chosen.is_some() && blocked_by.is_none(),
        policy: chosen,
        policies,
        approvers,
        blocked_by,
    })
}

/// The packages `me` may request (`accessPackages/filterByCurrentUser(on='allowedRequestor')`),
/// filtered, ordered and paged by `q`: those with a policy for which
/// `eligibility::self_request_allowed` holds. The store answers from facts it indexes with each
/// policy (see `Store::requestable_packages`), not by evaluating every policy here.
pub async fn requestable_packages(s: &Services, me: UserCap, q: ListQuery) -> Result<Page<AccessPackage>, AppError> {
    let user = require_user(s, me.id()).await?;
    Ok(s.store.requestable_packages(&user, &q).await?)
}

/// The policies of `package` under which `me` may request it, most specific first
/// (`getApplicablePolicyRequirements`).
pub async fn applicable_policies(
    s: &Services,
    me: UserCap,
    package: AccessPackageId,
) -> Result<Vec<AssignmentPolicy>, AppError> {
    let pkg = require_package(s, package).await?;
    let user = require_user(s, me.id()).await?;
    let groups = s.store.groups_of(user.id).await?;
    let organization = crate::connected_orgs::membership_of(s, &user).await?;
    let mut out = Vec::new();
    for p in s.store.policies_of_package(pkg.id).await? {
        if eligibility::self_request_allowed(&p.settings, Facts { user: &user, groups: &groups, organization }) {
            out.push(p);
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(eligibility::specificity(p.settings.allowed_target_scope)));
    Ok(out)
}

/// Whether a policy asks for approval of new requests, and of extensions.
pub fn approval_required(p: &AssignmentPolicy) -> (bool, bool) {
    (needs_approval(p, true), needs_approval(p, false))
}

/// Whether a policy requires a justification, and allows a custom schedule.
pub fn requestor_requirements(p: &AssignmentPolicy) -> (bool, bool) {
    (justification_required(p), requestor_settings(p).allow_custom_assignment_schedule)
}

/// Ends every active assignment of a user who is leaving the directory (`systemRemove`), so
/// their access is revoked in every target before the user row goes.
pub async fn remove_all_access(s: &Services, user: UserId) -> Result<usize, AppError> {
    remove_all_access_because(s, user, "The user was deleted from the directory.").await
}

/// `remove_all_access`, recording `reason` on the removal requests (a deletion, a
/// deactivation by SCIM provisioning).
pub async fn remove_all_access_because(s: &Services, user: UserId, reason: &str) -> Result<usize, AppError> {
    let mut n = 0;
    for a in s.store.active_assignments_of(user).await? {
        let now = s.clock.now();
        let extensions = callouts::snapshot_of(s, a.policy_id).await?;
        let grants = s.store.package_grants(a.access_package_id).await?;
        let open = s.store.open_request(a.target_id, a.access_package_id).await?;
        let mut batch = Batch::default();
        system_removal(&a, reason, &grants, extensions, open, now, &mut batch);
        s.store.apply(&batch).await?;
        n += 1;
    }
    Ok(n)
}

/// Writes into `batch` the removal of an active assignment by Steward itself (request type
/// `systemRemove`, with `reason`): the removal request (delivered at once when the package
/// grants nothing), its audit event, the cancellation of the target's `open` request for the
/// package (an extension waiting for approval ends with the assignment), the ended assignment
/// and the revocation of each of its `grants`. `extensions` are the custom extensions the
/// assignment's policy runs at each stage. Pure: the caller reads what it needs (once for many
/// assignments, when it removes many) and applies the batch. Returns the removal request.
pub(crate) fn system_removal(
    a: &Assignment,
    reason: &str,
    grants: &[crate::ports::RoleGrant],
    extensions: Vec<steward_domain::extension::StageExtension>,
    open: Option<AssignmentRequest>,
    now: Timestamp,
    batch: &mut Batch,
) -> AssignmentRequest {
    let mut req = AssignmentRequest {
        id: RequestId::new(),
        request_type: RequestType::SystemRemove,
        state: RequestState::Delivering,
        status: RequestStatus::Delivering,
        access_package_id: a.access_package_id,
        catalog_id: a.catalog_id,
        policy_id: a.policy_id,
        target_id: a.target_id,
        requestor_id: None,
        assignment_id: Some(a.id),
        detail: RequestDetail { reason: Some(reason.to_owned()), extensions, ..Default::default() },
        created_date_time: now,
        completed_date_time: None,
        modified_date_time: now,
        due: None,
    };
    if grants.is_empty() {
        req.set(RequestState::Delivered, RequestStatus::Delivered, now);
        callouts::queue(&req, CustomExtensionStage::AssignmentRequestRemoved, now, batch);
    }
    batch.events.push(request_event(&req, Activity::SystemRemovesRequest, &Actor::System, now));
    if let Some(mut open) = open {
        let read_at = open.modified_date_time;
        approval::skip_rest(&mut open.detail.stages, 0);
        open.detail.reason = Some(reason.to_owned());
        open.set(RequestState::Canceled, RequestStatus::Canceled, now);
        batch.requests.push(changed(open, read_at, now));
    }
    end_access(a, grants, "Removed", Some(&req), now, batch);
    batch.requests.insert(0, Put::New(req.clone()));
    req
}

/// Deletes an ended request (Graph: only completed, denied or cancelled ones).
pub async fn delete_request(s: &Services, caller: &Principal, id: RequestId) -> Result<(), AppError> {
    caller.may_somewhere(Task::ManageAssignments)?;
    let r = require_request(s, id).await?;
    let cap = caller.in_catalog(r.catalog_id, Task::ManageAssignments)?;
    let now = s.clock.now();
    let event = request_event(&r, Activity::DeleteRequest, &cap.actor(), now);
    Ok(s.store.delete_request(id, &event).await?)
}
