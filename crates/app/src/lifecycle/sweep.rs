//! What the clock makes due, swept by one process at a time (the sweep is a singleton job):
//! approval escalations and timeouts, scheduled starts, expiries, the deletion of blocked
//! guests, access reviews opening and ending (`crate::reviews::sweep`), notices the clock
//! brings (`crate::notify::timers`). Each item is its own decision; one that changed meanwhile
//! is left for the next sweep.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use steward_domain::approval::{self, Timer};
use steward_domain::assignment::Assignment;
use steward_domain::audit::Activity;
use steward_domain::enums::RequestState;
use steward_domain::ids::AccessPackageId;
use steward_domain::request::{AssignmentRequest, RequestStatus};

use super::requests::deny;
use super::{
    Actor, approvers, assignment_event, changed, end_access, end_only, request_event, separation, start_access,
};
use crate::jobs::{Job, JobKind, NewJob};
use crate::ports::{Batch, RoleGrant};
use crate::{AppError, Services, StoreError};

/// How many due requests and ending assignments one sweep takes on.
pub const BATCH: u32 = 16_000;
/// How often the sweep runs when nothing is left over.
pub const EVERY: SignedDuration = SignedDuration::from_secs(1);
/// Expiries written per transaction.
const EXPIRIES_PER_WRITE: usize = 1_000;
/// Expiry transactions in flight at once.
const WRITERS: usize = 8;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub requests: usize,
    pub expired: usize,
    /// Governed guests deleted as planned.
    pub guests_deleted: usize,
    /// Access review instances opened and stages ended.
    pub reviews: crate::reviews::Swept,
}

pub(crate) async fn run(s: &Services, job: &Job, owner: &str) -> Result<Swept, AppError> {
    let now = s.clock.now();
    let (swept, more) = pass(s, now).await?;
    crate::reconcile::queue_due(s, now).await?;
    // Portal sign-ins and sessions that have ended (a read when none has).
    if let Err(e) = crate::sessions::sweep(s, now).await {
        tracing::warn!(error = %e, "ended portal sessions could not be deleted; will retry");
    }
    let next = if more { now } else { now.saturating_add(EVERY).unwrap_or(now) };
    s.store.finish_job(job.id, owner, &Batch { jobs: vec![NewJob::sweep(next)], ..Batch::default() }).await?;
    Ok(swept)
}

/// One pass over what is due at `now`; also says whether more was left for the next pass.
/// The sweep job calls it; so does the expiry benchmark, to time it alone.
pub async fn pass(s: &Services, now: Timestamp) -> Result<(Swept, bool), AppError> {
    let mut swept = Swept::default();
    let due = s.store.due_requests(now, BATCH).await?;
    let mut more = due.len() >= BATCH as usize;
    for r in due {
        let id = r.id;
        match on_due_request(s, r, now).await {
            Ok(()) => swept.requests += 1,
            Err(e) => tracing::warn!(request = %id, error = %e, "a due request could not be handled; will retry"),
        }
    }
    // Custom extensions that run 14 days and one day before assignments end.
    if let Err(e) = super::callouts::queue_expiry_stages(s, now).await {
        tracing::warn!(error = %e, "expiry callouts could not be queued; will retry");
    }
    let ending = s.store.ending_assignments(now, BATCH).await?;
    more |= ending.len() >= BATCH as usize;
    let mut grants: HashMap<AccessPackageId, Vec<RoleGrant>> = HashMap::new();
    for a in &ending {
        if let std::collections::hash_map::Entry::Vacant(e) = grants.entry(a.access_package_id) {
            e.insert(s.store.package_grants(a.access_package_id).await?);
        }
    }
    let grants = Arc::new(grants);
    // Chunks are written up to `WRITERS` at a time: while one transaction waits on the
    // database, the next is being built and sent.
    let mut chunks = ending.chunks(EXPIRIES_PER_WRITE).map(<[_]>::to_vec);
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < WRITERS {
            let Some(chunk) = chunks.next() else { break };
            let (s, grants) = (s.clone(), grants.clone());
            running.spawn(async move { expire(&s, &chunk, &grants, now).await });
        }
        match running.join_next().await {
            Some(Ok(Ok((n, left)))) => {
                swept.expired += n;
                more |= left;
            }
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(e)) => return Err(StoreError::Internal(format!("an expiry task ended abnormally: {e}")).into()),
            None => break,
        }
    }
    // Access reviews: instances whose time came open, stages whose time ran out end.
    match crate::reviews::sweep(s, now).await {
        Ok(r) => swept.reviews = r,
        Err(e) => tracing::warn!(error = %e, "access reviews could not be swept; will retry"),
    }
    // Notices the clock brings: expiry warnings, approval reminders, reviews ending, the digest.
    crate::notify::timers::queue(s, now).await;
    // Guests blocked since their last assignment ended, whose deletion has come.
    match super::guests::delete_due(s, now).await {
        Ok(n) => swept.guests_deleted = n,
        Err(e) => tracing::warn!(error = %e, "external users due for deletion could not be deleted; will retry"),
    }
    Ok((swept, more))
}

/// Expires one chunk in one transaction, or one by one should any of them have changed since
/// it was read (an extension, a removal); says how many expired and whether any was left.
async fn expire(
    s: &Services,
    chunk: &[Assignment],
    grants: &HashMap<AccessPackageId, Vec<RoleGrant>>,
    now: Timestamp,
) -> Result<(usize, bool), AppError> {
    let ending = |a: &Assignment, batch: &mut Batch| {
        let g = grants.get(&a.access_package_id).map(Vec::as_slice).unwrap_or_default();
        end_access(a, g, "Expired", None, now, batch);
        batch.events.push(assignment_event(a, None, Activity::Expire, &Actor::System, now));
    };
    // Together: each assignment ends with its audit event, and one job queues all of their
    // revocations (`RevokeEnded`), so the sweep writes two rows per expiry, not four.
    let mut batch = Batch::default();
    for a in chunk {
        end_only(a, "Expired", now, &mut batch);
        batch.events.push(assignment_event(a, None, Activity::Expire, &Actor::System, now));
    }
    batch.jobs.push(NewJob::now(JobKind::RevokeEnded { assignments: chunk.iter().map(|a| a.id).collect() }, now));
    let targets: Vec<_> = chunk.iter().map(|a| a.target_id).collect();
    super::guests::access_ended(s, &targets, now, &mut batch).await?;
    match s.store.apply(&batch).await {
        Ok(()) => return Ok((chunk.len(), false)),
        Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let (mut expired, mut left) = (0, false);
    for a in chunk {
        let mut one = Batch::default();
        ending(a, &mut one);
        super::callouts::queue_removed(s, std::slice::from_ref(a), now, &mut one).await?;
        super::guests::access_ended(s, &[a.target_id], now, &mut one).await?;
        match s.store.apply(&one).await {
            Ok(()) => expired += 1,
            Err(StoreError::Conflict(_)) => left = true,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((expired, left))
}

async fn on_due_request(s: &Services, r: AssignmentRequest, now: Timestamp) -> Result<(), AppError> {
    let read_at = r.modified_date_time;
    let mut req = r;
    let mut batch = Batch::default();
    if req.is_open() && req.status == RequestStatus::WaitingForCallback {
        match req.detail.waiting {
            Some(instance) => super::callouts::time_out(s, &mut req, instance, now, &mut batch).await?,
            None => req.due = None,
        }
        batch.requests.insert(0, changed(req, read_at, now));
        return match s.store.apply(&batch).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let mut timed_out = None;
    match req.state {
        RequestState::PendingApproval => match approval::due(&req.detail.stages, now) {
            Timer::TimeOut(i) => {
                timed_out = Some(req.created_date_time);
                approval::time_out(&mut req.detail.stages, i, now);
                deny(
                    &mut req,
                    RequestStatus::TimedOut,
                    &format!("Approval stage {} timed out.", i + 1),
                    now,
                    &mut batch,
                );
            }
            Timer::Escalate(i) => {
                let stages = match req.policy_id {
                    Some(p) => s.store.get_policy(p).await?.and_then(|p| p.settings.request_approval_settings),
                    None => None,
                }
                .map(|a| a.stages)
                .unwrap_or_default();
                let people = match stages.get(i) {
                    Some(cfg) => approvers::resolve_stage(s, &req, cfg, true).await?,
                    None => Vec::new(),
                };
                approval::escalate(&mut req.detail.stages, i, people);
                req.status = RequestStatus::PendingApprovalEscalated;
                req.due = approval::next_due(&req.detail.stages);
                batch.events.push(
                    request_event(&req, Activity::ApprovalStageCompleted, &Actor::System, now)
                        .with_detail(format!("Approval stage {} escalated.", i + 1)),
                );
            }
            Timer::Idle => req.due = approval::next_due(&req.detail.stages),
        },
        RequestState::Scheduled if req.detail.window.is_some_and(|w| w.start <= now) => {
            if let Some(conflict) = separation::find(s, req.target_id, req.access_package_id).await? {
                deny(&mut req, RequestStatus::Denied, &conflict, now, &mut batch);
            } else if super::guests::prepare_target(s, &mut req, now, &mut batch).await? {
                let grants = s.store.package_grants(req.access_package_id).await?;
                start_access(&mut req, &grants, &Actor::System, now, &mut batch)?;
            }
        }
        RequestState::Scheduled => req.due = req.detail.window.map(|w| w.start),
        _ => req.due = None,
    }
    batch.requests.insert(0, changed(req, read_at, now));
    match s.store.apply(&batch).await {
        Ok(()) => {
            if let Some(created) = timed_out {
                crate::metrics::approval_ended(crate::metrics::ApprovalEnd::TimedOut, created, now);
            }
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
