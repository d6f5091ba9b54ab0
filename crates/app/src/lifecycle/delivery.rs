//! Delivery: one job grants or revokes one resource role of one assignment through the
//! connector of the role's origin system, outside any transaction; its outcome (the
//! delivery's state, the assignment's and the request's roll-up, audit events) is then
//! written together with the job's removal. Transient failures retry with backoff.

use jiff::{SignedDuration, Timestamp};
use steward_domain::assignment::{self, Assignment, Delivery, DeliveryState, GrantAction};
use steward_domain::audit::Activity;
use steward_domain::enums::{AssignmentState, RequestState};
use steward_domain::ids::{AssignmentId, RequestId, ResourceRoleId};
use steward_domain::request::{AssignmentRequest, RequestStatus};

use super::{Actor, assignment_event, changed, request_event, separation};
use crate::connector::ConnectorError;
use crate::jobs::Job;
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
    let outcome = attempt(s, &a, grant.as_ref(), action, job.attempts).await?;
    let now = s.clock.now();
    let detail = match outcome {
        Result_::Retry(why) => {
            tracing::warn!(job = %job.id, attempts = job.attempts, error = %why, "delivery failed; retrying");
            s.store.retry_job(job.id, owner, now.saturating_add(backoff(job.attempts)).unwrap_or(now), &why).await?;
            return Ok(());
        }
        Result_::Done(d) => (DeliveryState::Done, d),
        Result_::Failed(why) => (DeliveryState::Failed, Some(why)),
    };
    let mut batch = Batch::default();
    let this = Delivery {
        assignment_id: a.id,
        resource_role_id: role,
        action,
        state: detail.0,
        attempts: job.attempts,
        detail: detail.1.clone(),
    };
    let mut all = s.store.deliveries(a.id).await?;
    match all.iter_mut().find(|d| d.resource_role_id == role && d.action == action) {
        Some(d) => *d = this.clone(),
        None => all.push(this.clone()),
    }
    batch.deliveries.push(this.clone());
    let req = match request {
        Some(r) => s.store.get_request(r).await?,
        None => None,
    };
    let activity = match (action, this.state) {
        (GrantAction::Grant, DeliveryState::Done) => Some(Activity::FulfillResource),
        (GrantAction::Revoke, DeliveryState::Done) => Some(Activity::RemoveResource),
        _ => None,
    };
    let name = grant.as_ref().map_or_else(|| role.to_string(), |g| format!("{} of {}", g.role_name, g.resource_name));
    let mut ev = assignment_event(&a, req.as_ref(), activity.unwrap_or(Activity::Failed), &Actor::System, now)
        .with_detail(format!("{action:?} {name}: {}", detail.1.as_deref().unwrap_or("done")));
    if activity.is_none() {
        ev = ev.failed();
    }
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
        complete_request(r, &all, action, now, &mut batch);
    }
    match s.store.finish_job(job.id, owner, &batch).await {
        Ok(()) => Ok(()),
        // Another delivery of the same assignment wrote first: run again on fresh rows (the
        // connector call is idempotent).
        Err(StoreError::Conflict(m)) if m.contains("changed by someone else") => {
            s.store.retry_job(job.id, owner, now, &m).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn attempt(
    s: &Services,
    a: &Assignment,
    grant: Option<&RoleGrant>,
    action: GrantAction,
    attempts: u32,
) -> Result<Result_, AppError> {
    let Some(grant) = grant else {
        return Ok(match action {
            GrantAction::Grant => Result_::Failed("The resource role no longer exists.".into()),
            GrantAction::Revoke => Result_::Done(Some("The resource role no longer exists.".into())),
        });
    };
    let Some(user) = s.store.get_user(a.target_id).await? else {
        return Ok(match action {
            GrantAction::Grant => Result_::Failed("The target user no longer exists.".into()),
            GrantAction::Revoke => Result_::Done(Some("The target user no longer exists.".into())),
        });
    };
    match action {
        GrantAction::Grant => {
            if !a.is_active() {
                return Ok(Result_::Done(Some("The assignment ended before delivery.".into())));
            }
            if let Some(conflict) = separation::find(s, a.target_id, a.access_package_id).await? {
                return Ok(Result_::Failed(conflict));
            }
        }
        GrantAction::Revoke => {
            if s.store.role_held_elsewhere(a.target_id, grant.role_id, a.id).await? {
                return Ok(Result_::Done(Some("Kept: another active assignment grants the same role.".into())));
            }
        }
    }
    let Some(connector) = s.connectors.for_origin(&grant.origin_system) else {
        return Ok(Result_::Failed(format!("No connector serves origin system '{}'.", grant.origin_system)));
    };
    let r = match action {
        GrantAction::Grant => connector.grant(grant, &user).await,
        GrantAction::Revoke => connector.revoke(grant, &user).await,
    };
    Ok(match r {
        Ok(()) => Result_::Done(None),
        Err(ConnectorError::Transient(m)) if attempts < MAX_ATTEMPTS => Result_::Retry(m),
        Err(ConnectorError::Transient(m)) => Result_::Failed(format!("{m} (gave up after {attempts} attempts)")),
        Err(ConnectorError::Permanent(m)) => Result_::Failed(m),
    })
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
    let mut ev = request_event(&r2, activity, &Actor::System, now);
    if activity == Activity::Failed {
        ev = ev.failed();
    }
    batch.events.push(ev);
    batch.requests.push(changed(r2, read_at, now));
}
