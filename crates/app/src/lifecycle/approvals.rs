//! Approvals: an approver's decision on a stage, the stage that follows, and the end of the
//! approval (approved → scheduled or delivering; denied). Two approvers deciding at once:
//! the request's version makes exactly one write win; the other re-reads and gets 409.

use steward_domain::approval::{self, DecisionError, Outcome};
use steward_domain::audit::Activity;
use steward_domain::enums::RequestState;
use steward_domain::ids::{ApprovalStageId, RequestId};
use steward_domain::request::{AssignmentRequest, RequestStatus};
use steward_domain::role::Task;

use super::requests::{approved, deny, extend};
use super::{Actor, approvers, changed, request_event, require_request, separation};
use crate::auth::{Principal, UserCap};
use crate::identity::SignInFacts;
use crate::metrics::ApprovalEnd;
use crate::ports::{Batch, Page};
use crate::query::ListQuery;
use crate::{AppError, Services, StoreError, WRITE_ATTEMPTS};

/// An approval as Graph shows it: the request's id and its stages, seen by one caller.
#[derive(Debug, Clone)]
pub struct ApprovalView {
    pub request: AssignmentRequest,
    pub viewer: Option<steward_domain::ids::UserId>,
}

/// The approval of a request: visible to its approvers, its target and requestor, and whoever
/// manages the assignments of its catalog.
pub async fn get_approval(s: &Services, caller: &Principal, id: RequestId) -> Result<ApprovalView, AppError> {
    let r = require_request(s, id).await?;
    let viewer = caller.user_id();
    let visible = caller.grants().allows_in(r.catalog_id, Task::ManageAssignments)
        || viewer.is_some_and(|u| {
            r.target_id == u || r.requestor_id == Some(u) || r.detail.stages.iter().any(|st| st.approvers.contains(&u))
        });
    if !visible || r.detail.stages.is_empty() {
        return Err(AppError::not_found("approval", id));
    }
    Ok(ApprovalView { request: r, viewer })
}

/// The requests `me` is asked to approve (`filterByCurrentUser(on='approver')`).
pub async fn my_approvals(s: &Services, me: UserCap, q: ListQuery) -> Result<Page<ApprovalView>, AppError> {
    let page = super::requests::list_my_requests(s, me, super::requests::RequestsOf::Approver, q).await?;
    Ok(Page {
        items: page.items.into_iter().map(|request| ApprovalView { request, viewer: Some(me.id()) }).collect(),
        count: page.count,
        next: page.next,
    })
}

fn decision_error(e: DecisionError) -> AppError {
    match e {
        DecisionError::UnknownStage => AppError::not_found("approval stage", "(on this request)"),
        DecisionError::NotOpen(_) | DecisionError::AlreadyDecided => AppError::Conflict(e.to_string()),
        DecisionError::NotApprover | DecisionError::OwnRequest => AppError::Forbidden(e.to_string()),
        DecisionError::JustificationRequired => AppError::Invalid(e.to_string()),
    }
}

/// Records `me`'s decision on stage `stage` of request `id`.
/// The stage of `r` that waits for `me`: open, `me` among its approvers, not yet decided by
/// `me`.
pub fn waiting_stage(
    r: &AssignmentRequest,
    me: steward_domain::ids::UserId,
) -> Option<(usize, &approval::StageRecord)> {
    r.detail.stages.iter().enumerate().find(|(_, st)| {
        matches!(st.status, approval::StageStatus::InProgress | approval::StageStatus::Escalated)
            && st.approvers.contains(&me)
            && !st.decisions.iter().any(|d| d.by == me)
    })
}

pub async fn decide(
    s: &Services,
    me: UserCap,
    facts: Option<&SignInFacts>,
    id: RequestId,
    stage: ApprovalStageId,
    approve: bool,
    justification: Option<String>,
) -> Result<(), AppError> {
    for _ in 0..WRITE_ATTEMPTS {
        let r = require_request(s, id).await?;
        if !r.detail.stages.iter().any(|st| st.approvers.contains(&me.id()))
            && r.target_id != me.id()
            && r.requestor_id != Some(me.id())
        {
            return Err(AppError::not_found("approval", id));
        }
        let now = s.clock.now();
        if r.detail.stages.iter().any(|st| st.approvers.contains(&me.id()))
            && let Some(pid) = r.policy_id
            && let Some(policy) = s.store.get_policy(pid).await?
        {
            super::conditions::require(&policy, super::conditions::Moment::Approval, facts, now)?;
        }
        let read_at = r.modified_date_time;
        let mut req = r.clone();
        let parties: Vec<_> = [Some(req.target_id), req.requestor_id].into_iter().flatten().collect();
        let outcome =
            approval::decide(&mut req.detail.stages, stage, me.id(), &parties, approve, justification.clone(), now)
                .map_err(decision_error)?;
        let actor = Actor::User(me.id());
        let mut batch = Batch::default();
        advance(s, &mut req, outcome, &actor, now, &mut batch).await?;
        // The approval ended: every stage approved, or denied (by this decision, or because
        // the next stage found nobody to ask, or by separation of duties after approval).
        let ended = match (outcome, req.state) {
            (_, RequestState::Denied) => Some(ApprovalEnd::Denied),
            (Outcome::Approved, _) => Some(ApprovalEnd::Approved),
            _ => None,
        };
        let created = req.created_date_time;
        batch.requests.insert(0, changed(req, read_at, now));
        match s.store.apply(&batch).await {
            Ok(()) => {
                if let Some(end) = ended {
                    crate::metrics::approval_ended(end, created, now);
                }
                return Ok(());
            }
            // Someone else wrote the request meanwhile: decide again on what it is now.
            Err(StoreError::Conflict(m)) if m.contains("changed by someone else") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Conflict("The request kept changing while the decision was being recorded; try again.".into()))
}

/// Moves a request on after a stage outcome: start the next stage, finish approval, or deny.
pub(crate) async fn advance(
    s: &Services,
    req: &mut AssignmentRequest,
    outcome: Outcome,
    actor: &Actor,
    now: jiff::Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    match outcome {
        Outcome::Recorded => {}
        Outcome::NextStage(i) => {
            batch.events.push(request_event(req, Activity::ApprovalStageCompleted, actor, now));
            let policy = match req.policy_id {
                Some(p) => s.store.get_policy(p).await?,
                None => None,
            };
            let stages =
                policy.and_then(|p| p.settings.request_approval_settings.map(|a| a.stages)).unwrap_or_default();
            let Some(cfg) = stages.get(i) else {
                deny(
                    req,
                    RequestStatus::Denied,
                    "The policy's approval stages changed; the request cannot continue.",
                    now,
                    batch,
                );
                return Ok(());
            };
            let people = approvers::resolve_stage(s, req, cfg, false).await?;
            if approval::start_stage(&mut req.detail.stages, &stages, i, people, now) == Outcome::Denied {
                deny(
                    req,
                    RequestStatus::Denied,
                    &format!("No approver could be found for approval stage {}.", i + 1),
                    now,
                    batch,
                );
            }
            req.due = approval::next_due(&req.detail.stages);
        }
        Outcome::Approved => {
            batch.events.push(request_event(req, Activity::Approve, actor, now));
            req.due = None;
            if req.is_add() {
                // Separation of duties is checked again: access may have changed while waiting.
                if let Some(conflict) = separation::find(s, req.target_id, req.access_package_id).await? {
                    deny(req, RequestStatus::Denied, &conflict, now, batch);
                    return Ok(());
                }
                approved(s, req, actor, now, batch).await?;
            } else {
                let aid =
                    req.assignment_id.ok_or_else(|| AppError::Conflict("The extension has no assignment.".into()))?;
                match s.store.get_assignment(aid).await? {
                    Some(a) if a.is_active() => extend(req, &a, actor, now, batch)?,
                    _ => deny(
                        req,
                        RequestStatus::Denied,
                        "The assignment ended before the extension was approved.",
                        now,
                        batch,
                    ),
                }
            }
        }
        Outcome::Denied => {
            let reason = req
                .detail
                .stages
                .iter()
                .find_map(|st| st.decisions.iter().find(|d| !d.approve))
                .and_then(|d| d.justification.clone())
                .unwrap_or_else(|| "An approver denied the request.".into());
            deny(req, RequestStatus::Denied, &reason, now, batch);
            // The deny was the approver's own act.
            if let Some(e) = batch.events.last_mut() {
                e.initiator = actor.initiator();
            }
        }
    }
    Ok(())
}
