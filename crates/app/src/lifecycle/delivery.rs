//! Delivery: one job grants or revokes one resource role of one assignment through the
//! connector of the role's origin system, outside any transaction; its outcome (the
//! delivery's state, the assignment's and the request's roll-up, audit events) is then
//! written together with the job's removal. Transient failures retry with backoff.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use steward_domain::assignment::{self, Assignment, Delivery, DeliveryState, GrantAction};
use steward_domain::audit::Activity;
use steward_domain::directory::User;
use steward_domain::enums::{AssignmentState, CustomExtensionStage, RequestState};
use steward_domain::ids::{AccessPackageId, AssignmentId, GroupId, JobId, RequestId, ResourceRoleId, UserId};
use steward_domain::request::{AssignmentRequest, RequestStatus};

use super::{Actor, assignment_event, changed, request_event, separation};
use crate::connector::{Connector, ConnectorError};
use crate::jobs::{Job, JobKind};
use crate::ports::{Batch, Put, RoleGrant};
use crate::{AppError, Services, StoreError};

/// Attempts before a transiently failing delivery is given up as failed.
pub const MAX_ATTEMPTS: u32 = 8;

/// The wait before attempt `attempts + 1`: 2, 4, 8, … seconds, at most an hour.
pub fn backoff(attempts: u32) -> SignedDuration {
    SignedDuration::from_secs(2_i64.saturating_pow(attempts.clamp(1, 12)).min(3_600))
}

enum Result_ {
    Done(Option<String>),
    Failed(String),
    Retry(String),
}

/// Runs one delivery job held by `owner`.
pub(crate) async fn run(
    s: &Services,
    job: &Job,
    owner: &str,
    assignment_id: AssignmentId,
    role: ResourceRoleId,
    action: GrantAction,
    request: Option<RequestId>,
) -> Result<(), AppError> {
    let Some(a) = s.store.get_assignment(assignment_id).await? else {
        s.store.finish_job(job.id, owner, &Batch::default()).await?;
        return Ok(());
    };
    let grant = s.store.role_grant(role).await?;
    let user = match grant {
        Some(_) => s.store.get_user(a.target_id).await?,
        None => None,
    };
    let (outcome, took) = attempt(s, &a, grant.as_ref(), user.as_ref(), action, job.attempts, None).await?;
    let now = s.clock.now();
    let connection = connection_label(grant.as_ref());
    let (state, detail) = match outcome {
        Result_::Retry(why) => {
            tracing::warn!(job = %job.id, attempts = job.attempts, error = %why, "delivery failed; retrying");
            crate::metrics::delivery_retried(&connection);
            give_back(s, owner, job, now, &why).await;
            return Ok(());
        }
        Result_::Done(d) => (DeliveryState::Done, d),
        Result_::Failed(why) => (DeliveryState::Failed, Some(why)),
    };
    let all = s.store.deliveries(a.id).await?;
    let req = match request {
        Some(r) => s.store.get_request(r).await?,
        None => None,
    };
    let mut batch = Batch::default();
    let done = Done { role, action, state, detail, attempts: job.attempts };
    record(&a, req, all, grant.as_ref(), done, now, &mut batch);
    match s.store.finish_job(job.id, owner, &batch).await {
        Ok(()) => {
            crate::metrics::delivery_ended(&connection, state == DeliveryState::Failed, took);
            Ok(())
        }
        // Another delivery of the same assignment wrote first: run again on fresh rows (the
        // connector call is idempotent).
        Err(StoreError::Conflict(m)) if m.contains("changed by someone else") => {
            s.store.retry_job(job.id, owner, now, &m).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs delivery jobs of different assignments together, as one round trip for each kind of
/// row they read and one transaction for all their outcomes, instead of a dozen round trips
/// and a commit per job: connector calls run up to `parallel` at a time in between.
///
/// Returns the jobs to run again one by one with `run`, because a row they would write
/// changed meanwhile or a lease was lost (their connector calls are idempotent). `Err` when
/// the database failed before anything was written: every job is then given back.
pub(crate) async fn run_wave(s: &Services, owner: &str, jobs: Vec<Job>, parallel: usize) -> Result<Vec<Job>, AppError> {
    let mut specs = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let JobKind::Deliver { assignment, role, action, request } = job.kind {
            specs.push((job, assignment, role, action, request));
        }
    }
    let ids: Vec<AssignmentId> = specs.iter().map(|w| w.1).collect();
    let assignments: HashMap<AssignmentId, Assignment> =
        s.store.assignments_by_id(&ids).await?.into_iter().map(|a| (a.id, a)).collect();
    let roles: BTreeSet<ResourceRoleId> = specs.iter().map(|w| w.2).collect();
    let roles: Vec<ResourceRoleId> = roles.into_iter().collect();
    let grants: HashMap<ResourceRoleId, RoleGrant> =
        s.store.role_grants(&roles).await?.into_iter().map(|g| (g.role_id, g)).collect();
    let targets: BTreeSet<UserId> = assignments.values().map(|a| a.target_id).collect();
    let targets: Vec<UserId> = targets.into_iter().collect();
    let users: HashMap<UserId, User> = s.store.users_by_id(&targets).await?.into_iter().map(|u| (u.id, u)).collect();
    let mut declared: HashMap<AccessPackageId, Arc<Declared>> = HashMap::new();
    for (_, aid, _, action, _) in &specs {
        if let Some(a) = assignments.get(aid).filter(|a| *action == GrantAction::Grant && a.is_active())
            && !declared.contains_key(&a.access_package_id)
        {
            let d = s.store.incompatibilities(a.access_package_id).await?;
            declared.insert(a.access_package_id, Arc::new(d));
        }
    }

    let mut outcomes: Vec<Option<Result<Result_, AppError>>> = specs.iter().map(|_| None).collect();
    // How long each delivery's connector call took (a call of several grants: all of it).
    let mut took: Vec<Option<Duration>> = specs.iter().map(|_| None).collect();

    // Grants: the checks, then each connector once with all of its grants.
    let mut calls: Vec<(Arc<dyn Connector>, Vec<usize>)> = Vec::new();
    for (k, (_, aid, role, action, _)) in specs.iter().enumerate() {
        let Some(a) = assignments.get(aid).filter(|_| *action == GrantAction::Grant) else { continue };
        let (grant, user) = (grants.get(role), users.get(&a.target_id));
        let d = declared.get(&a.access_package_id).map(Arc::as_ref);
        let step = before_call(s, a, grant, user, GrantAction::Grant, d).await;
        let slot = outcomes.get_mut(k);
        match (step, slot) {
            (Ok(Step::Call(c)), _) => match calls.iter_mut().find(|(known, _)| Arc::ptr_eq(known, &c)) {
                Some((_, ks)) => ks.push(k),
                None => calls.push((c, vec![k])),
            },
            (Ok(Step::Decided(r)), Some(slot)) => *slot = Some(Ok(r)),
            (Err(e), Some(slot)) => *slot = Some(Err(e)),
            (_, None) => {}
        }
    }
    for (connector, ks) in calls {
        let mut items = Vec::with_capacity(ks.len());
        let mut kept = Vec::with_capacity(ks.len());
        for k in ks {
            let Some((job, aid, role, _, _)) = specs.get(k) else { continue };
            let a = assignments.get(aid);
            if let (Some(g), Some(u)) = (grants.get(role), a.and_then(|a| users.get(&a.target_id))) {
                items.push((g, u));
                kept.push((k, job.attempts));
            }
        }
        let started = Instant::now();
        let results = connector.grant_all(&items).await;
        let elapsed = started.elapsed();
        for ((k, attempts), r) in kept.into_iter().zip(results) {
            if let Some(slot) = outcomes.get_mut(k) {
                *slot = Some(Ok(outcome(r, attempts)));
            }
            if let Some(slot) = took.get_mut(k) {
                *slot = Some(elapsed);
            }
        }
    }

    // Revokes (and anything else): one by one, up to `parallel` at once.
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    loop {
        while running.len() < parallel.max(1) {
            let Some((job, aid, role, action, _)) = specs.get(next) else { break };
            if *action != GrantAction::Grant
                && let Some(a) = assignments.get(aid).cloned()
            {
                let (s, grant) = (s.clone(), grants.get(role).cloned());
                let user = users.get(&a.target_id).cloned();
                let d = declared.get(&a.access_package_id).cloned();
                let (action, attempts, k) = (*action, job.attempts, next);
                running.spawn(async move {
                    let r = attempt(&s, &a, grant.as_ref(), user.as_ref(), action, attempts, d.as_deref()).await;
                    (k, r)
                });
            }
            next += 1;
        }
        match running.join_next().await {
            Some(Ok((k, r))) => {
                let (r, call) = match r {
                    Ok((r, call)) => (Ok(r), call),
                    Err(e) => (Err(e), None),
                };
                if let Some(slot) = outcomes.get_mut(k) {
                    *slot = Some(r);
                }
                if let Some(slot) = took.get_mut(k) {
                    *slot = call;
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "a delivery task ended abnormally; its lease will run out"),
            None => break,
        }
    }

    let now = s.clock.now();
    let reached: Vec<AssignmentId> = specs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Some(Ok(Result_::Done(_) | Result_::Failed(_)))))
        .map(|(w, _)| w.1)
        .collect();
    let mut all: HashMap<AssignmentId, Vec<Delivery>> = HashMap::new();
    for d in s.store.deliveries_of(&reached).await? {
        all.entry(d.assignment_id).or_default().push(d);
    }
    let wanted: Vec<RequestId> = specs.iter().filter(|w| reached.contains(&w.1)).filter_map(|w| w.4).collect();
    let mut requests: HashMap<RequestId, AssignmentRequest> =
        s.store.requests_by_id(&wanted).await?.into_iter().map(|r| (r.id, r)).collect();

    let mut batch = Batch::default();
    let mut finished: Vec<Job> = Vec::new();
    // (connection, failed, call time) of each delivery written, observed once it is.
    let mut ended: Vec<(String, bool, Option<Duration>)> = Vec::new();
    for (((job, aid, role, action, request), outcome), call) in specs.into_iter().zip(outcomes).zip(took) {
        let Some(a) = assignments.get(&aid) else {
            finished.push(job); // the assignment is gone: nothing to deliver
            continue;
        };
        let connection = connection_label(grants.get(&role));
        let (state, detail) = match outcome {
            None => continue, // the task panicked: the lease runs out and the job comes back
            Some(Err(e)) => {
                give_back(s, owner, &job, now, &e.to_string()).await;
                continue;
            }
            Some(Ok(Result_::Retry(why))) => {
                tracing::warn!(job = %job.id, attempts = job.attempts, error = %why, "delivery failed; retrying");
                crate::metrics::delivery_retried(&connection);
                give_back(s, owner, &job, now, &why).await;
                continue;
            }
            Some(Ok(Result_::Done(d))) => (DeliveryState::Done, d),
            Some(Ok(Result_::Failed(why))) => (DeliveryState::Failed, Some(why)),
        };
        ended.push((connection, state == DeliveryState::Failed, call));
        let req = request.and_then(|r| requests.remove(&r));
        let done = Done { role, action, state, detail, attempts: job.attempts };
        record(a, req, all.remove(&aid).unwrap_or_default(), grants.get(&role), done, now, &mut batch);
        finished.push(job);
    }
    if finished.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<JobId> = finished.iter().map(|j| j.id).collect();
    match s.store.finish_jobs(&ids, owner, &batch).await {
        Ok(()) => {
            for (connection, failed, call) in ended {
                crate::metrics::delivery_ended(&connection, failed, call);
            }
            Ok(Vec::new())
        }
        Err(StoreError::Conflict(m)) => {
            tracing::debug!(jobs = ids.len(), reason = %m, "a delivery round conflicted; running its jobs one by one");
            Ok(finished)
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs a `RevokeEnded` job: one pending revoke delivery and one `Deliver` job per role each
/// ended assignment's package grants, written with the job's removal. An assignment that is
/// gone or active again (it cannot be: ended is final) is skipped.
pub(crate) async fn queue_revocations(
    s: &Services,
    job: &Job,
    owner: &str,
    ids: &[AssignmentId],
) -> Result<(), AppError> {
    let now = s.clock.now();
    let mut grants: HashMap<AccessPackageId, Vec<RoleGrant>> = HashMap::new();
    let mut batch = Batch::default();
    let ended: Vec<Assignment> = s.store.assignments_by_id(ids).await?.into_iter().filter(|a| !a.is_active()).collect();
    // Expired without a request: the policy's extension for the removal stage is told.
    super::callouts::queue_removed(s, &ended, now, &mut batch).await?;
    for a in ended {
        if let std::collections::hash_map::Entry::Vacant(e) = grants.entry(a.access_package_id) {
            e.insert(s.store.package_grants(a.access_package_id).await?);
        }
        for g in grants.get(&a.access_package_id).map(Vec::as_slice).unwrap_or_default() {
            super::queue_delivery(&a, g, GrantAction::Revoke, None, now, &mut batch);
        }
    }
    s.store.finish_job(job.id, owner, &batch).await?;
    Ok(())
}

/// Gives a job back to run again after its backoff; a delivery's pending row then says why
/// and after how many attempts, so a request stuck in `delivering` tells what it waits for.
pub(crate) async fn give_back(s: &Services, owner: &str, job: &Job, now: Timestamp, why: &str) {
    let at = now.saturating_add(backoff(job.attempts)).unwrap_or(now);
    if let Err(e) = s.store.retry_job(job.id, owner, at, why).await {
        tracing::warn!(job = %job.id, error = %e, "could not give the job back; its lease will run out");
        return;
    }
    if let JobKind::Deliver { assignment, role, action, .. } = &job.kind {
        let pending = Delivery {
            assignment_id: *assignment,
            resource_role_id: *role,
            action: *action,
            state: DeliveryState::Pending,
            attempts: job.attempts,
            detail: Some(format!("retrying after attempt {}: {why}", job.attempts)),
        };
        if let Err(e) = s.store.note_delivery_retry(&pending).await {
            tracing::debug!(job = %job.id, error = %e, "could not note why the delivery is retried");
        }
    }
}

/// A package's declared incompatibilities, as `Store::incompatibilities` returns them.
type Declared = (Vec<AccessPackageId>, Vec<GroupId>);

/// What one delivery attempt came to.
struct Done {
    role: ResourceRoleId,
    action: GrantAction,
    state: DeliveryState,
    detail: Option<String>,
    attempts: u32,
}

/// Adds what one finished delivery changes to `batch`: its delivery row, an audit event, the
/// assignment's roll-up and, when no delivery of its request is pending any more, the
/// request's completion. `all` is every delivery of the assignment as stored.
fn record(
    a: &Assignment,
    req: Option<AssignmentRequest>,
    mut all: Vec<Delivery>,
    grant: Option<&RoleGrant>,
    done: Done,
    now: Timestamp,
    batch: &mut Batch,
) {
    let Done { role, action, state, detail, attempts } = done;
    let this = Delivery { assignment_id: a.id, resource_role_id: role, action, state, attempts, detail };
    match all.iter_mut().find(|d| d.resource_role_id == role && d.action == action) {
        Some(d) => *d = this.clone(),
        None => all.push(this.clone()),
    }
    let activity = match (action, this.state) {
        (GrantAction::Grant, DeliveryState::Done) => Some(Activity::FulfillResource),
        (GrantAction::Revoke, DeliveryState::Done) => Some(Activity::RemoveResource),
        _ => None,
    };
    let name = grant.map_or_else(|| role.to_string(), |g| format!("{} of {}", g.role_name, g.resource_name));
    let mut ev = assignment_event(a, req.as_ref(), activity.unwrap_or(Activity::Failed), &Actor::System, now)
        .with_detail(format!("{action:?} {name}: {}", this.detail.as_deref().unwrap_or("done")));
    if activity.is_none() {
        ev = ev.failed();
    }
    batch.deliveries.push(this);
    batch.events.push(ev);
    if action == GrantAction::Grant && a.is_active() {
        let state = assignment::rollup(&all);
        if state != a.state {
            let mut a2 = a.clone();
            a2.state = state;
            a2.status = assignment::status_of(state).to_owned();
            a2.modified_date_time = steward_domain::time::next_modified(a.modified_date_time, now);
            batch.assignments.push(Put::Changed { row: a2, read_at: a.modified_date_time });
        }
    }
    if let Some(r) = req.filter(|r| r.state == RequestState::Delivering) {
        complete_request(r, &all, action, now, batch);
    }
}

/// Where a delivery stands before its connector is called.
enum Step {
    /// Decided without calling the connector.
    Decided(Result_),
    /// To be done by this connector.
    Call(Arc<dyn Connector>),
}

/// The checks before a delivery's connector call: the role and user still exist, a grant's
/// assignment is still active and breaks no separation of duties, a revoke's role is not
/// granted by another assignment as well, and a connector serves the role.
async fn before_call(
    s: &Services,
    a: &Assignment,
    grant: Option<&RoleGrant>,
    user: Option<&User>,
    action: GrantAction,
    declared: Option<&Declared>,
) -> Result<Step, AppError> {
    let Some(grant) = grant else {
        return Ok(Step::Decided(match action {
            GrantAction::Grant => Result_::Failed("The resource role no longer exists.".into()),
            GrantAction::Revoke => Result_::Done(Some("The resource role no longer exists.".into())),
        }));
    };
    if user.is_none() {
        return Ok(Step::Decided(match action {
            GrantAction::Grant => Result_::Failed("The target user no longer exists.".into()),
            GrantAction::Revoke => Result_::Done(Some("The target user no longer exists.".into())),
        }));
    }
    match action {
        GrantAction::Grant => {
            if !a.is_active() {
                return Ok(Step::Decided(Result_::Done(Some("The assignment ended before delivery.".into()))));
            }
            let conflict = match declared {
                Some(d) => separation::find_given(s, a.target_id, a.access_package_id, d).await?,
                None => separation::find(s, a.target_id, a.access_package_id).await?,
            };
            if let Some(conflict) = conflict {
                return Ok(Step::Decided(Result_::Failed(conflict)));
            }
        }
        GrantAction::Revoke => {
            if s.store.role_held_elsewhere(a.target_id, grant.role_id, a.id).await? {
                return Ok(Step::Decided(Result_::Done(Some(
                    "Kept: another active assignment grants the same role.".into(),
                ))));
            }
        }
    }
    Ok(match s.connectors.for_origin(&grant.origin_system) {
        Some(c) => Step::Call(c.clone()),
        None => Step::Decided(Result_::Failed(format!("No connector serves origin system '{}'.", grant.origin_system))),
    })
}

/// What a connector's answer means for the delivery, given how often it was tried.
fn outcome(r: Result<(), ConnectorError>, attempts: u32) -> Result_ {
    match r {
        Ok(()) => Result_::Done(None),
        Err(ConnectorError::Transient(m)) if attempts < MAX_ATTEMPTS => Result_::Retry(m),
        Err(ConnectorError::Transient(m)) => Result_::Failed(format!("{m} (gave up after {attempts} attempts)")),
        Err(ConnectorError::Permanent(m)) => Result_::Failed(m),
    }
}

/// One delivery, with how long its connector call took (`None`: decided without one).
async fn attempt(
    s: &Services,
    a: &Assignment,
    grant: Option<&RoleGrant>,
    user: Option<&User>,
    action: GrantAction,
    attempts: u32,
    declared: Option<&Declared>,
) -> Result<(Result_, Option<Duration>), AppError> {
    let connector = match before_call(s, a, grant, user, action, declared).await? {
        Step::Decided(r) => return Ok((r, None)),
        Step::Call(c) => c,
    };
    let (Some(grant), Some(user)) = (grant, user) else {
        return Ok((Result_::Failed("The delivery lost its role or user.".into()), None));
    };
    let started = Instant::now();
    let r = match action {
        GrantAction::Grant => connector.grant(grant, user).await,
        GrantAction::Revoke => connector.revoke(grant, user).await,
    };
    Ok((outcome(r, attempts), Some(started.elapsed())))
}

/// The `connection` label of a delivery's metrics: the connection its role's resource comes
/// from, `directory` for the built-in directory. Bounded by the connections configured.
fn connection_label(grant: Option<&RoleGrant>) -> String {
    match grant {
        Some(g) if g.origin_system.eq_ignore_ascii_case(steward_domain::catalog::ORIGIN_AAD_GROUP) => {
            crate::metrics::DIRECTORY.to_owned()
        }
        Some(g) => steward_domain::connection::split_origin_id(&g.resource_origin_id)
            .map_or_else(|| "other".to_owned(), |(c, _)| c.to_string()),
        // The role is gone: the delivery fails (a grant) or is done (a revoke) without a call.
        None => "unknown".to_owned(),
    }
}

/// Completes a delivering request once none of its deliveries of `action` is pending.
fn complete_request(r: AssignmentRequest, all: &[Delivery], action: GrantAction, now: Timestamp, batch: &mut Batch) {
    let mine: Vec<&Delivery> = all.iter().filter(|d| d.action == action).collect();
    if mine.iter().any(|d| d.state == DeliveryState::Pending) {
        return;
    }
    let read_at = r.modified_date_time;
    let mut r2 = r;
    let failures: Vec<String> = mine
        .iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .map(|d| format!("{}: {}", d.resource_role_id, d.detail.as_deref().unwrap_or("failed")))
        .collect();
    let (state, status, activity) = match action {
        GrantAction::Revoke => (RequestState::Delivered, RequestStatus::Delivered, Activity::Fulfill),
        GrantAction::Grant => {
            let owned: Vec<Delivery> = mine.iter().map(|d| (*d).clone()).collect();
            match assignment::rollup(&owned) {
                AssignmentState::Delivered => (RequestState::Delivered, RequestStatus::Delivered, Activity::Fulfill),
                AssignmentState::PartiallyDelivered => {
                    (RequestState::PartiallyDelivered, RequestStatus::PartiallyDelivered, Activity::PartiallyFulfill)
                }
                _ => (RequestState::DeliveryFailed, RequestStatus::DeliveryFailed, Activity::Failed),
            }
        }
    };
    r2.detail.failures = failures;
    r2.set(state, status, now);
    // Access given (or taken): the policy's extension for that stage is told, fire-and-forget.
    match (action, state) {
        (GrantAction::Grant, RequestState::Delivered | RequestState::PartiallyDelivered) => {
            super::callouts::queue(&r2, CustomExtensionStage::AssignmentRequestGranted, now, batch);
        }
        (GrantAction::Revoke, _) => {
            super::callouts::queue(&r2, CustomExtensionStage::AssignmentRequestRemoved, now, batch);
        }
        _ => {}
    }
    let mut ev = request_event(&r2, activity, &Actor::System, now);
    if activity == Activity::Failed {
        ev = ev.failed();
    }
    batch.events.push(ev);
    batch.requests.push(changed(r2, read_at, now));
}

#[cfg(test)]
mod tests {
    use steward_domain::ids::ConnectionId;

    use super::*;

    fn grant(origin_system: &str, resource_origin_id: &str) -> RoleGrant {
        RoleGrant {
            role_id: ResourceRoleId::new(),
            role_name: "Member".into(),
            role_origin_id: "Member_x".into(),
            origin_system: origin_system.into(),
            resource_origin_id: resource_origin_id.into(),
            resource_name: "Readers".into(),
        }
    }

    #[test]
    fn the_connection_label_names_a_connection_never_an_object() {
        let c = ConnectionId::new();
        let origin = steward_domain::connection::origin_id(c, "cn=Readers,ou=groups,dc=example,dc=test");
        assert_eq!(connection_label(Some(&grant("LdapGroup", &origin))), c.to_string());
        assert_eq!(connection_label(Some(&grant("AadGroup", &GroupId::new().to_string()))), "directory");
        assert_eq!(connection_label(Some(&grant("SomethingElse", "cn=Readers"))), "other");
        assert_eq!(connection_label(None), "unknown");
    }
}
