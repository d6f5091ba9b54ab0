//! Custom extensions in the request lifecycle: calling a policy's extension when a request or
//! an assignment reaches a stage, holding a request for a launch-and-wait extension until it
//! calls back (`resume`) or its time runs out, and the callout job that signs and posts one
//! call. A call is queued in the `Batch` of the change that reached the stage, so it happens
//! exactly when that change does; the HTTP itself goes through the `CalloutSender` port.

use std::collections::HashMap;

use jiff::Timestamp;
use steward_domain::assignment::Assignment;
use steward_domain::audit::Activity;
use steward_domain::duration::GraphDuration;
use steward_domain::enums::{CalloutStatus, CustomExtensionStage, RequestType};
use steward_domain::extension::{self, Callout, CalloutInstance, PackageInfo, Resume, StageExtension, TargetInfo};
use steward_domain::ids::{AssignmentId, CalloutInstanceId, CustomExtensionId, PolicyId, RequestId};
use steward_domain::request::{AssignmentRequest, RequestStatus};

use super::requests::{after_approval, approved, begin_approval, deny, needs_approval};
use super::{Actor, changed, request_event, require_request, separation};
use crate::auth::Principal;
use crate::extensions::{self, CalloutError, Outgoing};
use crate::jobs::{Job, JobKind, NewJob};
use crate::ports::{Batch, Put};
use crate::{AppError, Services, StoreError, WRITE_ATTEMPTS};
use steward_domain::role::Task;

/// Expiry stages, with how long before the end each runs.
const EXPIRY_STAGES: [(CustomExtensionStage, i64); 2] = [
    (CustomExtensionStage::AssignmentFourteenDaysBeforeExpiration, 14),
    (CustomExtensionStage::AssignmentOneDayBeforeExpiration, 1),
];
/// Assignments a sweep queues expiry callouts for, per stage.
const EXPIRY_BATCH: u32 = 1_000;

/// What a callout job is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub instance: CalloutInstanceId,
    pub extension: CustomExtensionId,
    pub stage: CustomExtensionStage,
    pub request: Option<RequestId>,
    pub assignment: Option<AssignmentId>,
}

fn job(spec: Spec, now: Timestamp) -> NewJob {
    let Spec { instance, extension, stage, request, assignment } = spec;
    NewJob::now(JobKind::Callout { instance, extension, stage, request, assignment }, now)
}

/// The policy's stage settings, as a request keeps them.
pub(crate) async fn snapshot_of(s: &Services, policy: Option<PolicyId>) -> Result<Vec<StageExtension>, AppError> {
    Ok(match policy {
        Some(p) => s
            .store
            .get_policy(p)
            .await?
            .map(|p| extension::snapshot(&p.settings.custom_extension_stage_settings))
            .unwrap_or_default(),
        None => Vec::new(),
    })
}

/// Reaches `stage` of `req`: queues the call of the extension its policy runs there. For a
/// launch-and-wait extension the request also stops here: status `WaitingForCallback`, the
/// waiting instance written, `due` when the wait runs out. Returns whether the request waits.
pub(crate) async fn fire(
    s: &Services,
    req: &mut AssignmentRequest,
    stage: CustomExtensionStage,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<bool, AppError> {
    let Some(xid) = req.extension_at(stage) else { return Ok(false) };
    let spec = Spec {
        instance: CalloutInstanceId::new(),
        extension: xid,
        stage,
        request: Some(req.id),
        assignment: req.assignment_id,
    };
    batch.jobs.push(job(spec, now));
    let wait = s.store.get_extension(xid).await?.and_then(|x| x.wait_at(stage));
    let Some(wait) = wait else { return Ok(false) };
    batch.callouts.push(Put::New(CalloutInstance {
        id: spec.instance,
        extension_id: xid,
        request_id: Some(req.id),
        assignment_id: req.assignment_id,
        stage,
        status: CalloutStatus::WaitingForCallback,
        detail: Some("The custom extension is being called.".into()),
        created_date_time: now,
        modified_date_time: now,
    }));
    req.status = RequestStatus::WaitingForCallback;
    req.detail.waiting = Some(spec.instance);
    req.due = Some(now.saturating_add(wait.as_signed()).unwrap_or(now));
    Ok(true)
}

/// Queues the fire-and-forget call of `req`'s extension at `stage` (stages after access was
/// given or taken: nothing waits there), reading nothing.
pub(crate) fn queue(req: &AssignmentRequest, stage: CustomExtensionStage, now: Timestamp, batch: &mut Batch) {
    if let Some(extension) = req.extension_at(stage) {
        let spec = Spec {
            instance: CalloutInstanceId::new(),
            extension,
            stage,
            request: Some(req.id),
            assignment: req.assignment_id,
        };
        batch.jobs.push(job(spec, now));
    }
}

/// Queues the `assignmentRequestRemoved` calls of assignments that ended without a request
/// (expiries), by their policies' settings; one read per policy.
pub(crate) async fn queue_removed(
    s: &Services,
    ended: &[Assignment],
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    let mut policies: HashMap<PolicyId, Option<CustomExtensionId>> = HashMap::new();
    for a in ended {
        let Some(pid) = a.policy_id else { continue };
        if let std::collections::hash_map::Entry::Vacant(e) = policies.entry(pid) {
            let x = s
                .store
                .get_policy(pid)
                .await?
                .and_then(|p| p.settings.extension_at(CustomExtensionStage::AssignmentRequestRemoved));
            e.insert(x);
        }
        if let Some(Some(extension)) = policies.get(&pid) {
            let spec = Spec {
                instance: CalloutInstanceId::new(),
                extension: *extension,
                stage: CustomExtensionStage::AssignmentRequestRemoved,
                request: None,
                assignment: Some(a.id),
            };
            batch.jobs.push(job(spec, now));
        }
    }
    Ok(())
}

/// Queues the expiry stages' calls that came due: once per assignment and stage (the job is a
/// singleton until it writes the instance, which the store's search then sees).
pub(crate) async fn queue_expiry_stages(s: &Services, now: Timestamp) -> Result<usize, AppError> {
    let mut queued = 0;
    for (stage, days) in EXPIRY_STAGES {
        let until = now.saturating_add(jiff::SignedDuration::from_hours(24 * days)).unwrap_or(now);
        let found = s.store.nearing_expiry(stage, now, until, EXPIRY_BATCH).await?;
        if found.is_empty() {
            continue;
        }
        let mut batch = Batch::default();
        for (a, extension) in &found {
            let spec = Spec {
                instance: CalloutInstanceId::new(),
                extension: *extension,
                stage,
                request: None,
                assignment: Some(a.id),
            };
            let mut j = job(spec, now);
            j.singleton = Some(format!("callout:{}:{stage}:{extension}", a.id));
            batch.jobs.push(j);
        }
        s.store.apply(&batch).await?;
        queued += found.len();
    }
    Ok(queued)
}

/// What one call came to.
enum Outcome {
    Sent(String),
    Retry(String),
    Failed(String),
}

/// Runs a callout job held by `owner`: signs and posts the payload, then records the outcome
/// with the job's removal. A launch-and-wait call that cannot be made denies its request.
pub(crate) async fn run(s: &Services, job: &Job, owner: &str, spec: Spec) -> Result<(), AppError> {
    let waiting = s.store.get_callout(spec.instance).await?;
    if waiting.as_ref().is_some_and(|i| i.status != CalloutStatus::WaitingForCallback) {
        // Called back, timed out or failed already: nothing left to send.
        s.store.finish_job(job.id, owner, &Batch::default()).await?;
        return Ok(());
    }
    let request = match spec.request {
        Some(r) => s.store.get_request(r).await?,
        None => None,
    };
    let still_waits = |r: &AssignmentRequest| r.is_open() && r.detail.waiting == Some(spec.instance);
    let outcome = match (&waiting, &request) {
        (Some(_), Some(r)) if !still_waits(r) => Outcome::Failed("The request ended before the call was made.".into()),
        _ => attempt(s, &spec, waiting.is_some(), request.as_ref(), job.attempts).await?,
    };
    let now = s.clock.now();
    let mut batch = Batch::default();
    let (status, detail) = match outcome {
        Outcome::Retry(why) => {
            tracing::warn!(job = %job.id, attempts = job.attempts, error = %why, "custom extension call failed; retrying");
            super::delivery::give_back(s, owner, job, now, &why).await;
            return Ok(());
        }
        Outcome::Sent(detail) => (CalloutStatus::CalloutSent, detail),
        Outcome::Failed(why) => {
            tracing::warn!(job = %job.id, extension = %spec.extension, error = %why, "custom extension call failed");
            (CalloutStatus::CalloutFailed, why)
        }
    };
    match waiting {
        Some(i) => {
            let mut row = i.clone();
            row.detail = Some(detail.clone());
            if status == CalloutStatus::CalloutFailed {
                row.status = status;
                if let Some(r) = request.filter(still_waits) {
                    let read_at = r.modified_date_time;
                    let mut r = r;
                    r.detail.waiting = None;
                    let reason = format!("The custom extension could not be called: {detail}");
                    deny(&mut r, RequestStatus::Denied, &reason, now, &mut batch);
                    batch.requests.push(changed(r, read_at, now));
                }
            }
            row.modified_date_time = steward_domain::time::next_modified(i.modified_date_time, now);
            batch.callouts.push(Put::Changed { row, read_at: i.modified_date_time });
        }
        None => batch.callouts.push(Put::New(CalloutInstance {
            id: spec.instance,
            extension_id: spec.extension,
            request_id: spec.request,
            assignment_id: spec.assignment.or(request.as_ref().and_then(|r| r.assignment_id)),
            stage: spec.stage,
            status,
            detail: Some(detail),
            created_date_time: now,
            modified_date_time: now,
        })),
    }
    match s.store.finish_job(job.id, owner, &batch).await {
        Ok(()) => Ok(()),
        // The instance or the request changed meanwhile (a callback came): look again.
        Err(StoreError::Conflict(m)) if m.contains("changed by someone else") => {
            s.store.retry_job(job.id, owner, now, &m).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// One signed POST of the callout.
async fn attempt(
    s: &Services,
    spec: &Spec,
    waits: bool,
    request: Option<&AssignmentRequest>,
    attempts: u32,
) -> Result<Outcome, AppError> {
    let Some(x) = s.store.get_extension(spec.extension).await? else {
        return Ok(Outcome::Failed("The custom extension no longer exists.".into()));
    };
    let Some(sender) = s.callouts.as_ref() else {
        return Ok(Outcome::Failed("This server has no way to send custom extension callouts.".into()));
    };
    let secret = match extensions::signing_secret(s, &x).await {
        Ok(secret) => secret,
        Err(why) => return Ok(Outcome::Failed(format!("The callout cannot be signed: {why}."))),
    };
    let assignment_id = spec.assignment.or(request.and_then(|r| r.assignment_id));
    let assignment = match assignment_id {
        Some(a) => s.store.get_assignment(a).await?,
        None => None,
    };
    let (package, target, policy) = match (request, &assignment) {
        (Some(r), _) => (r.access_package_id, r.target_id, r.policy_id),
        (None, Some(a)) => (a.access_package_id, a.target_id, a.policy_id),
        (None, None) => return Ok(Outcome::Failed("The request or assignment no longer exists.".into())),
    };
    let pkg = s.store.get_package(package).await?;
    let user = s.store.get_user(target).await?;
    let now = s.clock.now();
    let wait = waits.then(|| {
        x.config.callback.map(|c| c.timeout_duration).unwrap_or_else(|| {
            let left = request.and_then(|r| r.due).map(|d| d.duration_since(now).as_secs());
            GraphDuration::from_secs(left.unwrap_or(0).max(0))
        })
    });
    let callout = Callout {
        stage: spec.stage,
        instance: spec.instance,
        extension: &x,
        request: request.map(|r| (r.id, r.request_type)),
        assignment: assignment_id,
        package: PackageInfo {
            id: package,
            display_name: pkg.as_ref().map(|p| p.display_name.as_str().to_owned()).unwrap_or_default(),
            catalog_id: pkg.as_ref().map_or(x.catalog_id, |p| p.catalog_id),
            policy_id: policy,
        },
        target: user.map(|u| TargetInfo {
            id: u.id.to_string(),
            user_principal_name: u.user_principal_name.clone(),
            display_name: u.display_name.as_str().to_owned(),
        }),
        expiration: assignment.as_ref().and_then(|a| a.window.end),
        wait,
    };
    let body = serde_json::to_vec(&extension::payload(&callout))
        .map_err(|e| AppError::Invalid(format!("the callout payload cannot be encoded: {e}")))?;
    let signature = extension::signature(secret.key(), now.as_second(), &body)?;
    let out = Outgoing {
        url: &x.config.endpoint.target_url,
        body: &body,
        signature: &signature,
        timeout: std::time::Duration::from_millis(u64::from(x.config.client.timeout_in_milliseconds)),
    };
    Ok(match sender.send(&out).await {
        Ok(status) if waits => Outcome::Sent(format!("Called (HTTP {status}); waiting for the callback.")),
        Ok(status) => Outcome::Sent(format!("Called (HTTP {status}).")),
        Err(CalloutError::Transient(m)) if attempts <= x.config.client.maximum_retries => Outcome::Retry(m),
        Err(CalloutError::Transient(m)) => Outcome::Failed(format!("{m} (gave up after {attempts} attempts)")),
        Err(CalloutError::Permanent(m)) => Outcome::Failed(m),
    })
}

/// A launch-and-wait extension calls back (`POST …/assignmentRequests/{id}/resume`): the
/// waiting instance is marked `callbackReceived` and the request goes on from its stage, or is
/// denied when the callback says `denied`. A second callback of the same instance is a 409.
/// The caller manages the assignments of the request's catalog (an administrator, or a
/// role-scoped token given to the extension's endpoint).
pub async fn resume(s: &Services, caller: &Principal, id: RequestId, body: Resume) -> Result<(), AppError> {
    caller.may_somewhere(Task::ManageAssignments)?;
    let actor = caller.actor();
    for _ in 0..WRITE_ATTEMPTS {
        let r = require_request(s, id).await?;
        caller.in_catalog(r.catalog_id, Task::ManageAssignments)?;
        let i = s
            .store
            .get_callout(body.instance)
            .await?
            .filter(|i| i.request_id == Some(id))
            .ok_or_else(|| AppError::not_found("custom extension stage instance", body.instance))?;
        if let Some(stage) = body.stage.filter(|st| *st != i.stage) {
            return Err(AppError::Invalid(format!(
                "Custom extension stage instance {} belongs to stage {}, not {stage}.",
                i.id, i.stage
            )));
        }
        if i.status != CalloutStatus::WaitingForCallback {
            return Err(AppError::Conflict(format!(
                "Custom extension stage instance {} is {} already: a callback is taken once.",
                i.id, i.status
            )));
        }
        if !r.is_open() || r.detail.waiting != Some(i.id) {
            return Err(AppError::Conflict(format!(
                "The request is {} and no longer waits for custom extension stage instance {}.",
                r.state, i.id
            )));
        }
        let now = s.clock.now();
        let read_at = r.modified_date_time;
        let mut req = r.clone();
        let mut batch = Batch::default();
        let mut row = i.clone();
        row.status = CalloutStatus::CallbackReceived;
        row.detail = Some(body.detail.clone().unwrap_or_else(|| {
            if body.denied { "The custom extension denied the request.".into() } else { "Resumed.".into() }
        }));
        row.modified_date_time = steward_domain::time::next_modified(i.modified_date_time, now);
        batch.callouts.push(Put::Changed { row, read_at: i.modified_date_time });
        req.detail.waiting = None;
        req.due = None;
        let said = match (&body.source, body.denied) {
            (Some(src), true) => format!("{} denied by {src}", i.stage),
            (Some(src), false) => format!("{} resumed by {src}", i.stage),
            (None, true) => format!("{} denied", i.stage),
            (None, false) => format!("{} resumed", i.stage),
        };
        batch.events.push(request_event(&req, Activity::CustomExtensionCallback, &actor, now).with_detail(said));
        if body.denied {
            let reason = body.detail.clone().unwrap_or_else(|| "A custom extension denied the request.".into());
            deny(&mut req, RequestStatus::Denied, &reason, now, &mut batch);
            if let Some(e) = batch.events.last_mut() {
                e.initiator = actor.initiator();
            }
        } else {
            go_on(s, &mut req, i.stage, &actor, now, &mut batch).await?;
        }
        batch.requests.insert(0, changed(req, read_at, now));
        match s.store.apply(&batch).await {
            Ok(()) => return Ok(()),
            // The request or the instance changed meanwhile (a timeout, another callback): look again.
            Err(StoreError::Conflict(m)) if m.contains("changed by someone else") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Conflict("The request kept changing while the callback was being recorded; try again.".into()))
}

/// Moves a resumed request on from the stage it waited at.
async fn go_on(
    s: &Services,
    req: &mut AssignmentRequest,
    stage: CustomExtensionStage,
    actor: &Actor,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    // Access may have changed while the request waited.
    if let Some(conflict) = separation::find(s, req.target_id, req.access_package_id).await? {
        deny(req, RequestStatus::Denied, &conflict, now, batch);
        return Ok(());
    }
    match stage {
        CustomExtensionStage::AssignmentRequestCreated => {
            req.status = RequestStatus::Accepted;
            let policy = match req.policy_id {
                Some(p) => s.store.get_policy(p).await?,
                None => None,
            };
            let Some(policy) = policy else {
                deny(req, RequestStatus::Denied, "The request's policy no longer exists.", now, batch);
                return Ok(());
            };
            if req.request_type == RequestType::AdminAdd {
                approved(s, req, actor, now, batch).await
            } else if needs_approval(&policy, true) {
                begin_approval(s, req, &policy, now, batch).await
            } else {
                batch.events.push(request_event(req, Activity::AutoApprove, &Actor::System, now));
                approved(s, req, actor, now, batch).await
            }
        }
        _ => after_approval(s, req, actor, now, batch).await,
    }
}

/// The wait of a request for its extension's callback has run out: the instance is marked
/// `callbackTimedOut` and the request denied (status `TimedOut`).
pub(crate) async fn time_out(
    s: &Services,
    req: &mut AssignmentRequest,
    instance: CalloutInstanceId,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    let mut name = "The custom extension".to_owned();
    if let Some(i) = s.store.get_callout(instance).await? {
        if let Some(x) = s.store.get_extension(i.extension_id).await? {
            name = format!("Custom extension '{}'", x.display_name);
        }
        if i.status == CalloutStatus::WaitingForCallback {
            let mut row = i.clone();
            row.status = CalloutStatus::CallbackTimedOut;
            row.detail = Some("No callback came in time.".into());
            row.modified_date_time = steward_domain::time::next_modified(i.modified_date_time, now);
            batch.callouts.push(Put::Changed { row, read_at: i.modified_date_time });
        }
    }
    req.detail.waiting = None;
    let reason = format!("{name} did not call back in time (callbackTimedOut); the request is denied.");
    deny(req, RequestStatus::TimedOut, &reason, now, batch);
    Ok(())
}
