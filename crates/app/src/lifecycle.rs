//! The request lifecycle's use cases: submitting requests, approving them stage by stage,
//! delivering access through connectors, and what the clock makes due (escalations,
//! timeouts, scheduled starts, expiries). Every decision is one `Batch`: state change, audit
//! events and delivery jobs commit together.

pub mod approvals;
mod approvers;
pub mod automatic;
pub mod callouts;
pub mod conditions;
pub mod delivery;
pub mod guests;
pub mod requests;
mod separation;
pub mod sweep;
pub mod worker;

use jiff::Timestamp;
use steward_domain::assignment::{Assignment, Delivery, DeliveryState, GrantAction};
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::enums::{AssignmentState, RequestState};
use steward_domain::ids::{AssignmentId, RequestId, UserId};
use steward_domain::request::{AssignmentRequest, RequestStatus};

use crate::jobs::{JobKind, NewJob};
use crate::ports::{Batch, Put, RoleGrant};
use crate::{AppError, Services};

/// Who causes a change, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An administrator token, by label.
    Admin(String),
    /// A directory user.
    User(UserId),
    /// Steward itself.
    System,
}

impl Actor {
    pub fn initiator(&self) -> Initiator {
        match self {
            Self::Admin(label) => Initiator::App(label.clone()),
            Self::User(u) => Initiator::User(u.to_string()),
            Self::System => Initiator::System,
        }
    }
}

const REQUEST: &str = "AccessPackageAssignmentRequest";
const ASSIGNMENT: &str = "AccessPackageAssignment";

/// An audit event about a request, correlated by the request's id.
pub(crate) fn request_event(r: &AssignmentRequest, activity: Activity, actor: &Actor, now: Timestamp) -> AuditEvent {
    AuditEvent::new(now, activity, actor.initiator(), REQUEST, r.id, r.id)
}

/// An audit event about an assignment, correlated by the request behind it when there is one.
pub(crate) fn assignment_event(
    a: &Assignment,
    correlation: Option<&AssignmentRequest>,
    activity: Activity,
    actor: &Actor,
    now: Timestamp,
) -> AuditEvent {
    let corr = correlation.map_or_else(|| a.id.to_string(), |r| r.id.to_string());
    AuditEvent::new(now, activity, actor.initiator(), ASSIGNMENT, a.id, corr)
}

/// Starts access for an approved add request whose start has come: the assignment, one
/// pending delivery and one job per resource role, all in `batch`. A package that grants
/// nothing is delivered at once.
pub(crate) fn start_access(
    req: &mut AssignmentRequest,
    grants: &[RoleGrant],
    actor: &Actor,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<Assignment, AppError> {
    let window = req.detail.window.ok_or_else(|| AppError::Invalid("The request has no schedule to start.".into()))?;
    let mut a = Assignment {
        id: AssignmentId::new(),
        access_package_id: req.access_package_id,
        catalog_id: req.catalog_id,
        policy_id: req.policy_id,
        target_id: req.target_id,
        state: AssignmentState::Delivering,
        status: "Delivering".to_owned(),
        window,
        expired_date_time: None,
        created_date_time: now,
        modified_date_time: now,
    };
    req.assignment_id = Some(a.id);
    req.due = None;
    if grants.is_empty() {
        a.state = AssignmentState::Delivered;
        a.status = "Delivered".to_owned();
        req.set(RequestState::Delivered, RequestStatus::Delivered, now);
        batch.events.push(request_event(req, Activity::Fulfill, &Actor::System, now));
        callouts::queue(req, steward_domain::enums::CustomExtensionStage::AssignmentRequestGranted, now, batch);
    } else {
        req.set(RequestState::Delivering, RequestStatus::Delivering, now);
        batch.events.push(request_event(req, Activity::ReadyToFulfill, actor, now));
        for g in grants {
            queue_delivery(&a, g, GrantAction::Grant, Some(req.id), now, batch);
        }
    }
    batch.assignments.push(Put::New(a.clone()));
    Ok(a)
}

/// Ends an assignment at `now` (`status` is `Expired` or `Removed`) and queues the revocation
/// of each resource role it granted. `request` is the removal request, if any, which the last
/// revocation completes.
pub(crate) fn end_access(
    a: &Assignment,
    grants: &[RoleGrant],
    status: &str,
    request: Option<&AssignmentRequest>,
    now: Timestamp,
    batch: &mut Batch,
) {
    for g in grants {
        queue_delivery(a, g, GrantAction::Revoke, request.map(|r| r.id), now, batch);
    }
    end_only(a, status, now, batch);
}

/// Ends an assignment without queueing its revocations (the caller queues them otherwise).
pub(crate) fn end_only(a: &Assignment, status: &str, now: Timestamp, batch: &mut Batch) {
    let mut ended = a.clone();
    ended.end(status, now);
    ended.modified_date_time = steward_domain::time::next_modified(a.modified_date_time, now);
    batch.assignments.push(Put::Changed { row: ended, read_at: a.modified_date_time });
}

/// A pending delivery (grant or revoke) of one role of an assignment, and the job that
/// carries it out.
pub(crate) fn queue_delivery(
    a: &Assignment,
    g: &RoleGrant,
    action: GrantAction,
    request: Option<RequestId>,
    now: Timestamp,
    batch: &mut Batch,
) {
    batch.deliveries.push(Delivery {
        assignment_id: a.id,
        resource_role_id: g.role_id,
        action,
        state: DeliveryState::Pending,
        attempts: 0,
        detail: None,
    });
    batch.jobs.push(NewJob::now(JobKind::Deliver { assignment: a.id, role: g.role_id, action, request }, now));
}

/// A request to write back after a change: bumps its version and remembers the one read.
pub(crate) fn changed(mut r: AssignmentRequest, read_at: Timestamp, now: Timestamp) -> Put<AssignmentRequest> {
    r.modified_date_time = steward_domain::time::next_modified(read_at, now);
    Put::Changed { row: r, read_at }
}

pub(crate) async fn require_request(
    s: &Services,
    id: steward_domain::ids::RequestId,
) -> Result<AssignmentRequest, AppError> {
    s.store.get_request(id).await?.ok_or_else(|| AppError::not_found("assignment request", id))
}
