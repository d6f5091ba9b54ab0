//! Applying an ended instance's final decisions: a decision whose outcome is removal ends its
//! assignment through the normal removal flow (`lifecycle::requests::system_removal`: a
//! `systemRemove` request, the revocation in every target system, the audit events), the
//! others keep it; each decision records its `applyResult`, who applied it and when. A chunk of
//! decisions per transaction, read in bulk (assignments, grants, open requests), so a large
//! instance applies in a few seconds.

use std::collections::HashMap;

use jiff::Timestamp;
use steward_domain::assignment::Assignment;
use steward_domain::audit::Activity;
use steward_domain::extension::StageExtension;
use steward_domain::ids::{AccessPackageId, PolicyId, ReviewDefinitionId, ReviewInstanceId, UserId};
use steward_domain::request::AssignmentRequest;
use steward_domain::review::{
    self, ApplyResult, Outcome, ReviewDecision, ReviewDefinition, ReviewInstance, ReviewStatus,
};
use steward_domain::role::Task;
use steward_domain::time::next_modified;

use super::schedule::{AsyncChunk, changed, walk};
use super::{DECISION, INSTANCE, managed_instance, review_event};
use crate::auth::Principal;
use crate::lifecycle::Actor;
use crate::ports::{Batch, Put, RoleGrant};
use crate::query::{ASSIGNMENT_REQUESTS, Cond, ListQuery, Value};
use crate::{AppError, Services};

/// Applies the decisions of an ended instance (`POST …/instances/{id}/applyDecisions`);
/// applying an applied instance again does nothing.
pub async fn apply_decisions(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    id: ReviewInstanceId,
) -> Result<(), AppError> {
    let (d, i, actor) = managed_instance(s, p, definition, id, Task::ManagePackages).await?;
    match i.status {
        ReviewStatus::Completed | ReviewStatus::Applying => apply_instance(s, &d, i, &actor, s.clock.now()).await,
        ReviewStatus::Applied => Ok(()),
        ReviewStatus::InProgress | ReviewStatus::NotStarted => Err(AppError::Conflict(
            "The access review instance is still in progress: its decisions are applied once it has ended (stop it \
             to end it now)."
                .into(),
        )),
    }
}

/// What applying reads once for many decisions.
struct Applying {
    d: ReviewDefinition,
    by: Option<UserId>,
    actor: Actor,
    grants: HashMap<AccessPackageId, Vec<RoleGrant>>,
    extensions: HashMap<PolicyId, Vec<StageExtension>>,
    /// Per package, the open requests by target (an extension waiting for approval ends with
    /// the assignment).
    open: HashMap<AccessPackageId, HashMap<UserId, AssignmentRequest>>,
    removed: usize,
}

/// The open requests of a package, by target: one paged read instead of one per assignment.
async fn open_requests(s: &Services, package: AccessPackageId) -> Result<HashMap<UserId, AssignmentRequest>, AppError> {
    let mut q = ListQuery::all(&ASSIGNMENT_REQUESTS).scoped("accessPackage/id", package)?;
    if let Some(field) = ASSIGNMENT_REQUESTS.field("state") {
        let values = ["submitted", "pendingApproval", "scheduled", "delivering"]
            .into_iter()
            .map(|v| Value::Text(v.to_owned()))
            .collect();
        q = q.and(Cond::In { field, values, lower: false });
    }
    let mut out = HashMap::new();
    loop {
        let page = s.store.list_requests(&q).await?;
        for r in page.items.into_iter().filter(AssignmentRequest::is_open) {
            out.insert(r.target_id, r);
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

impl Applying {
    async fn remove(
        &mut self,
        s: &Services,
        a: &Assignment,
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<(), AppError> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.grants.entry(a.access_package_id) {
            e.insert(s.store.package_grants(a.access_package_id).await?);
            self.open.insert(a.access_package_id, open_requests(s, a.access_package_id).await?);
        }
        let extensions = match a.policy_id {
            Some(pid) => {
                if let std::collections::hash_map::Entry::Vacant(e) = self.extensions.entry(pid) {
                    e.insert(crate::lifecycle::callouts::snapshot_of(s, Some(pid)).await?);
                }
                self.extensions.get(&pid).cloned().unwrap_or_default()
            }
            None => Vec::new(),
        };
        let grants = self.grants.get(&a.access_package_id).map(Vec::as_slice).unwrap_or_default();
        let open = self.open.get_mut(&a.access_package_id).and_then(|m| m.remove(&a.target_id));
        let reason =
            format!("Denied in access review '{}'.", steward_domain::text::clip(&self.d.input.display_name, 80));
        crate::lifecycle::requests::system_removal(a, &reason, grants, extensions, open, now, batch);
        Ok(())
    }
}

#[async_trait::async_trait]
impl AsyncChunk for Applying {
    async fn chunk(
        &mut self,
        s: &Services,
        decisions: &[ReviewDecision],
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<(), AppError> {
        let todo: Vec<&ReviewDecision> = decisions.iter().filter(|x| x.apply_result == ApplyResult::New).collect();
        if todo.is_empty() {
            return Ok(());
        }
        let ids: Vec<_> = todo.iter().map(|x| x.assignment_id).collect();
        let assignments: HashMap<_, Assignment> =
            s.store.assignments_by_id(&ids).await?.into_iter().map(|a| (a.id, a)).collect();
        let mut ended = Vec::new();
        for x in todo {
            let mut y = x.clone();
            y.applied_by = self.by;
            y.applied_at = Some(now);
            y.apply_result = match review::outcome(x.decision) {
                Outcome::Keep => ApplyResult::AppliedSuccessfully,
                Outcome::Remove => match assignments.get(&x.assignment_id).filter(|a| a.is_active()) {
                    Some(a) => {
                        self.remove(s, a, now, batch).await?;
                        ended.push(a.target_id);
                        self.removed += 1;
                        batch.events.push(
                            review_event(
                                Activity::ApplyAccessReviewDecision,
                                &self.actor,
                                DECISION,
                                x.id,
                                x.instance_id,
                                now,
                            )
                            .with_detail(format!(
                                "{}: assignment {} of user {} removed.",
                                x.decision.as_str(),
                                a.id,
                                a.target_id
                            )),
                        );
                        ApplyResult::AppliedSuccessfully
                    }
                    None => ApplyResult::AppliedSuccessfullyButObjectNotFound,
                },
            };
            batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
        }
        crate::lifecycle::guests::access_ended(s, &ended, now, batch).await?;
        Ok(())
    }
}

/// Applies an ended instance's decisions, a chunk at a time (each chunk with the instance, so
/// two appliers cannot both apply one decision), then marks it Applied.
pub(crate) async fn apply_instance(
    s: &Services,
    d: &ReviewDefinition,
    mut inst: ReviewInstance,
    actor: &Actor,
    now: Timestamp,
) -> Result<(), AppError> {
    let by = match actor {
        Actor::User(u) => Some(*u),
        Actor::Admin(_) | Actor::System => None,
    };
    inst.status = ReviewStatus::Applying;
    let applying = Applying {
        d: d.clone(),
        by,
        actor: actor.clone(),
        grants: HashMap::new(),
        extensions: HashMap::new(),
        open: HashMap::new(),
        removed: 0,
    };
    let (walked, applying) = walk(s, inst, now, applying).await?;
    let read_at = walked.last_modified_date_time;
    let mut done = walked;
    done.status = ReviewStatus::Applied;
    done.last_modified_date_time = next_modified(read_at, now);
    let event = review_event(Activity::ApplyAccessReviewDecision, actor, INSTANCE, done.id, done.id, now)
        .with_detail(format!("Decisions applied: {} assignments removed.", applying.removed));
    let batch =
        Batch { review_instances: vec![Put::Changed { row: done, read_at }], events: vec![event], ..Batch::default() };
    Ok(s.store.apply(&batch).await?)
}
