//! Automatic assignment: a policy whose `automaticRequestSettings` ask for it keeps its
//! assignments in step with its `attributeRuleMembers` rule. People who start to match are
//! assigned (systemAdd); people who stop matching lose the access (systemRemove), at once or
//! after the policy's grace period. Runs as a job per policy, queued when the policy is
//! written, when the directory changes, and by the sweep every hour.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use steward_domain::audit::Activity;
use steward_domain::eligibility::{self, Facts};
use steward_domain::enums::{RequestState, RequestType};
use steward_domain::ids::{PolicyId, RequestId, UserId};
use steward_domain::policy::AssignmentPolicy;
use steward_domain::request::{AssignmentRequest, RequestDetail, RequestStatus};
use steward_domain::schedule;

use super::{Actor, end_access, request_event, separation, start_access};
use crate::jobs::{Job, JobKind, NewJob};
use crate::ports::{Batch, Put};
use crate::query::{ASSIGNMENTS, ListQuery, POLICIES, USERS};
use crate::{AppError, Services, StoreError};

/// How often every automatic policy is re-evaluated even without a change.
pub const FULL_PASS_EVERY: SignedDuration = SignedDuration::from_secs(3_600);

/// Whether a policy assigns automatically.
pub fn is_automatic(p: &AssignmentPolicy) -> bool {
    p.settings.automatic_request_settings.as_ref().is_some_and(|a| a.request_access_for_allowed_targets)
}

/// Every automatic policy.
pub async fn automatic_policies(s: &Services) -> Result<Vec<AssignmentPolicy>, AppError> {
    let mut out = Vec::new();
    let mut q = ListQuery::all(&POLICIES);
    loop {
        let page = s.store.list_policies(&q).await?;
        out.extend(page.items.into_iter().filter(is_automatic));
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// The jobs that re-evaluate `policies` now.
pub fn reconcile_jobs(policies: &[AssignmentPolicy], now: Timestamp) -> Vec<NewJob> {
    policies.iter().map(|p| NewJob::now(JobKind::Reconcile { policy: p.id }, now)).collect()
}

/// Queues a re-evaluation of every automatic policy (after a directory change).
pub async fn directory_changed(s: &Services) -> Result<(), AppError> {
    let policies = automatic_policies(s).await?;
    if policies.is_empty() {
        return Ok(());
    }
    let jobs = reconcile_jobs(&policies, s.clock.now());
    s.store.apply(&Batch { jobs, ..Batch::default() }).await?;
    Ok(())
}

/// Queues a re-evaluation of one policy, when it is automatic (after it was written).
pub async fn policy_changed(s: &Services, policy: &AssignmentPolicy) -> Result<(), AppError> {
    if is_automatic(policy) {
        let jobs = reconcile_jobs(std::slice::from_ref(policy), s.clock.now());
        s.store.apply(&Batch { jobs, ..Batch::default() }).await?;
    }
    Ok(())
}

/// Who is in the policy's scope now, by id. Rule sets are answered by the store in SQL
/// (exactly as the in-memory evaluator would); other scopes are checked user by user.
async fn in_scope(s: &Services, p: &AssignmentPolicy) -> Result<HashSet<UserId>, AppError> {
    use steward_domain::enums::AllowedTargetScope as S;
    use steward_domain::policy::SubjectSet;
    let sets = &p.settings.specific_allowed_targets;
    let rules_only = matches!(p.settings.allowed_target_scope, S::SpecificDirectoryUsers)
        && !sets.is_empty()
        && sets.iter().all(|t| matches!(t, SubjectSet::AttributeRuleMembers { membership_rule: Some(_), .. }));
    if rules_only {
        let mut out = HashSet::new();
        for t in sets {
            if let SubjectSet::AttributeRuleMembers { membership_rule: Some(text), .. } = t {
                let rule = steward_domain::rule::MembershipRule::parse(text)?;
                out.extend(s.store.users_matching(&rule).await?);
            }
        }
        // Disabled accounts are never targets.
        let mut q = ListQuery::all(&USERS).and(crate::query::Cond::Cmp {
            field: USERS.field("accountEnabled").ok_or_else(|| AppError::Invalid("no accountEnabled field".into()))?,
            op: steward_odata::CmpOp::Eq,
            value: crate::query::Value::Bool(false),
            lower: false,
        });
        loop {
            let page = s.store.list_users(&q).await?;
            for u in &page.items {
                out.remove(&u.id);
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return Ok(out),
            }
        }
    }
    let mut out = HashSet::new();
    let mut q = ListQuery::all(&USERS);
    loop {
        let page = s.store.list_users(&q).await?;
        for u in &page.items {
            let groups = if sets.iter().any(|t| matches!(t, SubjectSet::GroupMembers { .. })) {
                s.store.groups_of(u.id).await?
            } else {
                Vec::new()
            };
            let organization = crate::connected_orgs::membership_of(s, u).await?;
            if eligibility::target_allowed(&p.settings, Facts { user: u, groups: &groups, organization }).allowed {
                out.insert(u.id);
            }
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// What one reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub added: usize,
    pub removed: usize,
}

pub(crate) async fn run(s: &Services, job: &Job, owner: &str, policy: PolicyId) -> Result<Reconciled, AppError> {
    let done = reconcile(s, policy).await?;
    s.store.finish_job(job.id, owner, &Batch::default()).await?;
    Ok(done)
}

/// Brings one automatic policy's assignments in step with its rule.
pub async fn reconcile(s: &Services, policy: PolicyId) -> Result<Reconciled, AppError> {
    let mut done = Reconciled::default();
    let Some(p) = s.store.get_policy(policy).await? else { return Ok(done) };
    if !is_automatic(&p) {
        return Ok(done);
    }
    let wanted = in_scope(s, &p).await?;
    let mut held = HashSet::new();
    let mut q = ListQuery::all(&ASSIGNMENTS).scoped("assignmentPolicy/id", p.id)?;
    let mut current = Vec::new();
    loop {
        let page = s.store.list_assignments(&q).await?;
        current.extend(page.items.into_iter().filter(|a| a.is_active()));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    let now = s.clock.now();
    let settings = p.settings.automatic_request_settings.clone().unwrap_or_default();
    let grants = s.store.package_grants(p.access_package_id).await?;
    for a in &current {
        held.insert(a.target_id);
        if wanted.contains(&a.target_id) || !settings.remove_access_when_target_leaves_allowed_targets {
            continue;
        }
        let mut batch = Batch::default();
        match settings.grace_period_before_access_removal.filter(|g| g.as_signed() > SignedDuration::ZERO) {
            // Within the grace period the assignment only ends earlier; expiry removes it.
            Some(grace) => {
                let end = now.saturating_add(grace.as_signed()).unwrap_or(now);
                if a.window.end.is_some_and(|e| e <= end) {
                    continue;
                }
                let mut shortened = a.clone();
                shortened.window.end = Some(end);
                shortened.modified_date_time = steward_domain::time::next_modified(a.modified_date_time, now);
                batch.events.push(
                    super::assignment_event(&shortened, None, Activity::SystemRemovesRequest, &Actor::System, now)
                        .with_detail(format!(
                            "The user no longer matches the policy's rule; access ends at {} after the grace period.",
                            steward_domain::time::format_datetime(end)
                        )),
                );
                batch.assignments.push(Put::Changed { row: shortened, read_at: a.modified_date_time });
            }
            None => {
                let mut req = system_request(&p, a.target_id, RequestType::SystemRemove, now);
                req.assignment_id = Some(a.id);
                req.state = RequestState::Delivering;
                req.status = RequestStatus::Delivering;
                req.detail.reason = Some("The user no longer matches the policy's rule.".into());
                if grants.is_empty() {
                    req.set(RequestState::Delivered, RequestStatus::Delivered, now);
                }
                end_access(a, &grants, "Removed", Some(&req), now, &mut batch);
                super::guests::access_ended(s, &[a.target_id], now, &mut batch).await?;
                batch.events.push(request_event(&req, Activity::SystemRemovesRequest, &Actor::System, now));
                batch.requests.insert(0, Put::New(req));
            }
        }
        match s.store.apply(&batch).await {
            Ok(()) => done.removed += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut newcomers: Vec<UserId> = wanted.difference(&held).copied().collect();
    newcomers.sort_unstable();
    for target in newcomers {
        if s.store.open_request(target, p.access_package_id).await?.is_some()
            || s.store.active_assignment(target, p.access_package_id).await?.is_some()
            || separation::find(s, target, p.access_package_id).await?.is_some()
        {
            continue;
        }
        let mut req = system_request(&p, target, RequestType::SystemAdd, now);
        req.detail.window = Some(schedule::window_for_add(p.settings.expiration.as_ref(), None, false, now)?);
        let mut batch = Batch::default();
        batch.events.push(request_event(&req, Activity::SystemCreatesRequest, &Actor::System, now));
        // A blocked governed guest the rule admits again is reinstated with the assignment.
        super::guests::prepare_target(s, &mut req, now, &mut batch).await?;
        start_access(&mut req, &grants, &Actor::System, now, &mut batch)?;
        batch.requests.insert(0, Put::New(req));
        match s.store.apply(&batch).await {
            Ok(()) => done.added += 1,
            // Someone else assigned them meanwhile (another process, an administrator).
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

fn system_request(p: &AssignmentPolicy, target: UserId, kind: RequestType, now: Timestamp) -> AssignmentRequest {
    AssignmentRequest {
        id: RequestId::new(),
        request_type: kind,
        state: RequestState::Submitted,
        status: RequestStatus::Accepted,
        access_package_id: p.access_package_id,
        catalog_id: p.catalog_id,
        policy_id: Some(p.id),
        target_id: target,
        requestor_id: None,
        assignment_id: None,
        // Automatic requests pass no created or approved stage; the policy's extensions for
        // granted and removed run as for any request.
        detail: RequestDetail {
            extensions: steward_domain::extension::snapshot(&p.settings.custom_extension_stage_settings),
            ..RequestDetail::default()
        },
        created_date_time: now,
        completed_date_time: None,
        modified_date_time: now,
        due: None,
    }
}
