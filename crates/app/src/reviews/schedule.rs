//! What the clock does to access reviews (called by the lifecycle's sweep): opens the instances
//! whose time came, with one decision per assignment in scope at that moment, and ends stages
//! and instances whose time ran out (decisions moving to the next stage, unanswered ones taking
//! the default decision, the results applied when the settings say so). Each opening is one
//! `Batch`, written on the version of the definition read, so two processes sweeping at once
//! open an instance exactly once.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use steward_domain::assignment::Assignment;
use steward_domain::audit::Activity;
use steward_domain::directory::User;
use steward_domain::eligibility::{self, Facts};
use steward_domain::enums::{AllowedTargetScope, UserType};
use steward_domain::ids::{PolicyId, ReviewDecisionId, ReviewInstanceId, UserId};
use steward_domain::policy::AssignmentPolicy;
use steward_domain::review::{
    self, ApplyResult, Decision, Recommendation, ReviewDecision, ReviewDefinition, ReviewInstance, ReviewStatus,
};
use steward_domain::time::next_modified;
use steward_odata::CmpOp;

use super::reviewers::Resolver;
use super::{CHUNK, INSTANCE, review_event};
use crate::lifecycle::Actor;
use crate::ports::{Batch, Put};
use crate::query::{ASSIGNMENTS, Cond, ListQuery, Value};
use crate::{AppError, Services};

/// Definitions opened and instances ended per sweep.
const PER_SWEEP: u32 = 16;

/// What one sweep did to access reviews.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub opened: usize,
    pub ended: usize,
}

/// Opens the instances due at `now` and ends the stages that ran out. An item another process
/// handled meanwhile (a conflict) is left; any other failure is logged and retried next time.
pub async fn sweep(s: &Services, now: Timestamp) -> Result<Swept, AppError> {
    let mut swept = Swept::default();
    for d in s.store.due_review_definitions(now, PER_SWEEP).await? {
        let id = d.id;
        match open(s, d, now).await {
            Ok(_) => swept.opened += 1,
            Err(AppError::Conflict(_)) => {}
            Err(e) => tracing::warn!(definition = %id, error = %e, "an access review could not be opened; will retry"),
        }
    }
    for i in s.store.ending_review_instances(now, PER_SWEEP).await? {
        let id = i.id;
        match end(s, i, now).await {
            Ok(()) => swept.ended += 1,
            Err(AppError::Conflict(_)) => {}
            Err(e) => tracing::warn!(instance = %id, error = %e, "an access review stage could not end; will retry"),
        }
    }
    Ok(swept)
}

fn days(n: u32) -> SignedDuration {
    SignedDuration::from_hours(24 * i64::from(n))
}

/// The active assignments a scope selects now, read a page at a time.
async fn assignments_in(s: &Services, scope: &review::AssignmentScope) -> Result<Vec<Assignment>, AppError> {
    let mut q = ListQuery::all(&ASSIGNMENTS);
    if let Some(p) = scope.package {
        q = q.scoped("accessPackage/id", p)?;
    }
    if let Some(p) = scope.policy {
        q = q.scoped("assignmentPolicy/id", p)?;
    }
    if let Some(c) = scope.catalog {
        q = q.scoped("accessPackage/catalog/id", c)?;
    }
    if let Some(field) = ASSIGNMENTS.field("state") {
        q = q.and(Cond::Cmp { field, op: CmpOp::Ne, value: Value::Text("expired".into()), lower: false });
    }
    let mut out = Vec::new();
    loop {
        let page = s.store.list_assignments(&q).await?;
        out.extend(page.items.into_iter().filter(Assignment::is_active));
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Whether the user still meets the policy's target scope, as far as can be told without
/// reading their groups or organization (which would cost a read per person): the account is
/// enabled, and a member-only (guest-only) policy still sees a member (guest).
fn still_eligible(policy: Option<&AssignmentPolicy>, user: &User) -> bool {
    if !user.account_enabled {
        return false;
    }
    let Some(p) = policy else { return true };
    match p.settings.allowed_target_scope {
        AllowedTargetScope::AllMemberUsers
        | AllowedTargetScope::AllExternalUsers
        | AllowedTargetScope::AllDirectoryUsers => {
            eligibility::target_allowed(&p.settings, Facts { user, groups: &[], organization: None }).allowed
        }
        _ => true,
    }
}

/// Opens the definition's next instance: one decision per assignment in scope now, its
/// reviewers resolved for the first stage and its recommendation made; the definition's
/// schedule moves on. One batch, on the version of the definition read (`Conflict` when another
/// process opened it first). Returns the new instance's id.
pub(crate) async fn open(s: &Services, d: ReviewDefinition, now: Timestamp) -> Result<ReviewInstanceId, AppError> {
    let Some(start) = d.next_start else {
        return Err(AppError::Conflict("The access review has no instance to open.".into()));
    };
    let input = &d.input;
    // A scope whose package or policy has gone since reviews nothing.
    let assignments = match super::scope_of(s, &input.scope).await {
        Ok(_) => assignments_in(s, &input.scope).await?,
        Err(AppError::Invalid(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    let ids: Vec<UserId> = {
        let mut v: Vec<UserId> = assignments.iter().map(|a| a.target_id).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let users: HashMap<UserId, User> = s.store.users_by_id(&ids).await?.into_iter().map(|u| (u.id, u)).collect();
    let stage0 = input.stages.first();
    let recommendations = input.settings.recommendations_enabled || stage0.is_some_and(|st| st.recommendations_enabled);
    let signed_in: HashMap<UserId, Timestamp> =
        if recommendations { s.store.last_sign_ins(&ids).await?.into_iter().collect() } else { HashMap::new() };
    let policies: HashMap<PolicyId, AssignmentPolicy> = {
        let mut pids: Vec<PolicyId> = assignments.iter().filter_map(|a| a.policy_id).collect();
        pids.sort_unstable();
        pids.dedup();
        s.store.policies_by_id(&pids).await?.into_iter().map(|p| (p.id, p)).collect()
    };
    let instance_id = ReviewInstanceId::new();
    let end = start.checked_add(days(d.duration_days())).unwrap_or(start);
    let stage_end = match stage0 {
        Some(st) => start.checked_add(days(st.duration_in_days)).unwrap_or(end),
        None => end,
    };
    let (primary, fallback) = d.reviewers_of(0);
    let mut resolver = Resolver::default();
    let mut decisions = Vec::with_capacity(assignments.len());
    for a in &assignments {
        let Some(user) = users.get(&a.target_id) else { continue };
        if input.scope.guests_only && user.user_type != UserType::Guest {
            continue;
        }
        let reviewers = resolver.resolve(s, primary, fallback, user, a.catalog_id).await?;
        let (recommendation, reason) = if recommendations {
            let activity = review::Activity {
                last_sign_in: signed_in.get(&user.id).copied(),
                last_use: None,
                still_eligible: still_eligible(a.policy_id.and_then(|p| policies.get(&p)), user),
            };
            let (r, why) = review::recommend(activity, input.settings.recommendation_look_back, now);
            (r, Some(why))
        } else {
            (Recommendation::NoInfoAvailable, None)
        };
        decisions.push(Put::New(ReviewDecision {
            id: ReviewDecisionId::new(),
            instance_id,
            definition_id: d.id,
            assignment_id: a.id,
            principal_id: user.id,
            access_package_id: a.access_package_id,
            policy_id: a.policy_id,
            stage: 0,
            reviewers,
            decision: Decision::NotReviewed,
            justification: None,
            reviewed_by: None,
            reviewed_at: None,
            recommendation,
            recommendation_reason: reason,
            apply_result: ApplyResult::New,
            applied_by: None,
            applied_at: None,
            history: Vec::new(),
            last_modified_date_time: now,
        }));
    }
    let instance = ReviewInstance {
        id: instance_id,
        definition_id: d.id,
        occurrence: d.next_occurrence,
        start,
        end,
        status: ReviewStatus::InProgress,
        stage: 0,
        stage_end,
        last_modified_date_time: now,
    };
    let mut next = d.clone();
    next.next_occurrence = d.next_occurrence.saturating_add(1);
    next.next_start = next.start_of(next.next_occurrence, next.created_date_time);
    // Occurrences whose day passed while nothing swept are not opened late.
    let mut skipped = 0;
    while next.next_start.is_some_and(|t| t <= now) && skipped < 1_000 {
        next.next_occurrence = next.next_occurrence.saturating_add(1);
        next.next_start = next.start_of(next.next_occurrence, next.created_date_time);
        skipped += 1;
    }
    next.status = if next.next_start.is_some() { ReviewStatus::InProgress } else { ReviewStatus::Completed };
    next.last_modified_date_time = next_modified(d.last_modified_date_time, now);
    let event =
        review_event(Activity::AccessReviewInstanceStarted, &Actor::System, INSTANCE, instance_id, instance_id, now)
            .with_detail(format!(
                "Occurrence {} of '{}' over {} assignments, until {}.",
                instance.occurrence.saturating_add(1),
                steward_domain::text::clip(&input.display_name, 80),
                decisions.len(),
                steward_domain::time::format_datetime(end)
            ));
    let reminder = super::remind::job(d.id, instance_id, 0, start, stage_end);
    let batch = Batch {
        review_definitions: vec![Put::Changed { row: next, read_at: d.last_modified_date_time }],
        jobs: vec![reminder],
        review_instances: vec![Put::New(instance)],
        review_decisions: decisions,
        events: vec![event],
        ..Batch::default()
    };
    s.store.apply(&batch).await?;
    Ok(instance_id)
}

/// Ends the instance's current stage: on to the next stage, or the end of the instance.
pub(crate) async fn end(s: &Services, inst: ReviewInstance, now: Timestamp) -> Result<(), AppError> {
    let Some(d) = s.store.get_review_definition(inst.definition_id).await? else { return Ok(()) };
    let next = usize::try_from(inst.stage).unwrap_or(usize::MAX).saturating_add(1);
    if next < d.stage_count() { advance(s, &d, inst, next, now).await } else { finish(s, &d, inst, now).await }
}

/// Walks an instance's decisions a chunk at a time: `change` says what becomes of each (or
/// leaves it); each chunk is written with the instance (its version bumped), so the walk is
/// alone on the instance and a decision changed meanwhile fails the chunk. Returns the instance
/// as last written, and the handler (with what it counted).
pub(crate) async fn walk<F>(
    s: &Services,
    mut inst: ReviewInstance,
    now: Timestamp,
    mut change: F,
) -> Result<(ReviewInstance, F), AppError>
where
    F: AsyncChunk,
{
    let mut after: Option<ReviewDecisionId> = None;
    loop {
        let chunk = s.store.review_decisions_of(inst.id, after, CHUNK).await?;
        let Some(last) = chunk.last() else { return Ok((inst, change)) };
        after = Some(last.id);
        let mut batch = Batch::default();
        change.chunk(s, &chunk, now, &mut batch).await?;
        if batch.is_empty() {
            continue;
        }
        let read_at = inst.last_modified_date_time;
        inst.last_modified_date_time = next_modified(read_at, now);
        batch.review_instances.push(Put::Changed { row: inst.clone(), read_at });
        s.store.apply(&batch).await?;
    }
}

/// What a walk does to one chunk of decisions.
#[async_trait::async_trait]
pub(crate) trait AsyncChunk: Send {
    async fn chunk(
        &mut self,
        s: &Services,
        decisions: &[ReviewDecision],
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<(), AppError>;
}

/// A decision to write back: its version bumped, the one read remembered.
pub(crate) fn changed(mut row: ReviewDecision, read_at: Timestamp, now: Timestamp) -> Put<ReviewDecision> {
    row.last_modified_date_time = next_modified(read_at, now);
    Put::Changed { row, read_at }
}

struct Advance {
    d: ReviewDefinition,
    from: u32,
    to: usize,
    resolver: Resolver,
}

#[async_trait::async_trait]
impl AsyncChunk for Advance {
    async fn chunk(
        &mut self,
        s: &Services,
        decisions: &[ReviewDecision],
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<(), AppError> {
        let from = usize::try_from(self.from).unwrap_or(usize::MAX);
        let Some(settings) = self.d.input.stages.get(from) else { return Ok(()) };
        let moving: Vec<&ReviewDecision> = decisions
            .iter()
            .filter(|x| x.stage == self.from && review::moves_to_next_stage(x.decision, settings))
            .collect();
        let ids: Vec<UserId> = moving.iter().map(|x| x.principal_id).collect();
        let users: HashMap<UserId, User> = s.store.users_by_id(&ids).await?.into_iter().map(|u| (u.id, u)).collect();
        let packages: HashMap<_, _> = {
            let pids: Vec<_> = moving.iter().map(|x| x.access_package_id).collect();
            s.store.packages_by_id(&pids).await?.into_iter().map(|p| (p.id, p.catalog_id)).collect()
        };
        let (primary, fallback) = self.d.reviewers_of(self.to);
        // The decisions that do not move on are final: nobody is asked about them any more.
        for x in decisions.iter().filter(|x| x.stage == self.from && !review::moves_to_next_stage(x.decision, settings))
        {
            if !x.reviewers.is_empty() {
                let mut y = x.clone();
                y.reviewers.clear();
                batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
            }
        }
        for x in moving {
            let reviewers = match (users.get(&x.principal_id), packages.get(&x.access_package_id)) {
                (Some(u), Some(c)) => self.resolver.resolve(s, primary, fallback, u, *c).await?,
                _ => Vec::new(),
            };
            let mut y = x.clone();
            y.advance(reviewers, now);
            batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
        }
        Ok(())
    }
}

/// The stage `inst.stage` ended: the decisions its settings move on go to stage `to` with that
/// stage's reviewers; the others are final. Then the instance is at stage `to`.
async fn advance(
    s: &Services,
    d: &ReviewDefinition,
    inst: ReviewInstance,
    to: usize,
    now: Timestamp,
) -> Result<(), AppError> {
    let from = inst.stage;
    let (mut inst, _) = walk(s, inst, now, Advance { d: d.clone(), from, to, resolver: Resolver::default() }).await?;
    let read_at = inst.last_modified_date_time;
    let duration = d.input.stages.get(to).map_or(0, |st| st.duration_in_days);
    let stage_start = inst.stage_end.min(now);
    inst.stage = u32::try_from(to).unwrap_or(u32::MAX);
    inst.stage_end = inst.stage_end.checked_add(days(duration)).unwrap_or(inst.end).max(now);
    inst.last_modified_date_time = next_modified(read_at, now);
    let reminder = super::remind::job(d.id, inst.id, inst.stage, stage_start, inst.stage_end);
    let batch =
        Batch { review_instances: vec![Put::Changed { row: inst, read_at }], jobs: vec![reminder], ..Batch::default() };
    Ok(s.store.apply(&batch).await?)
}

struct Defaults {
    d: ReviewDefinition,
}

#[async_trait::async_trait]
impl AsyncChunk for Defaults {
    async fn chunk(
        &mut self,
        _s: &Services,
        decisions: &[ReviewDecision],
        now: Timestamp,
        batch: &mut Batch,
    ) -> Result<(), AppError> {
        for x in decisions.iter().filter(|x| x.decision == Decision::NotReviewed) {
            let taken = self.d.input.settings.unanswered(x.recommendation);
            if taken == Decision::NotReviewed {
                continue;
            }
            let mut y = x.clone();
            y.decision = taken;
            y.justification = Some(format!(
                "Not reviewed: the review's default decision ({}) was applied when it ended.",
                self.d.input.settings.default_decision.as_str()
            ));
            batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
        }
        Ok(())
    }
}

/// The instance's last stage ended (or it was stopped): unanswered decisions take the default
/// decision, the instance is completed, and its decisions are applied when the settings say so.
async fn finish(s: &Services, d: &ReviewDefinition, inst: ReviewInstance, now: Timestamp) -> Result<(), AppError> {
    let (mut inst, _) = walk(s, inst, now, Defaults { d: d.clone() }).await?;
    let read_at = inst.last_modified_date_time;
    inst.status = ReviewStatus::Completed;
    inst.last_modified_date_time = next_modified(read_at, now);
    let batch = Batch { review_instances: vec![Put::Changed { row: inst.clone(), read_at }], ..Batch::default() };
    s.store.apply(&batch).await?;
    if d.input.settings.auto_apply_decisions_enabled {
        super::apply::apply_instance(s, d, inst, &Actor::System, now).await?;
    }
    Ok(())
}

/// Stops an instance in progress now: it jumps to the end of its last stage, which then ends at
/// once (the sweep finishes it should this fail half-way).
pub(crate) async fn stop(s: &Services, actor: &Actor, inst: ReviewInstance, now: Timestamp) -> Result<(), AppError> {
    let Some(d) = s.store.get_review_definition(inst.definition_id).await? else { return Ok(()) };
    let read_at = inst.last_modified_date_time;
    let mut stopped = inst;
    stopped.stage = u32::try_from(d.stage_count().saturating_sub(1)).unwrap_or(0);
    stopped.stage_end = now;
    stopped.end = now.min(stopped.end);
    stopped.last_modified_date_time = next_modified(read_at, now);
    let event = review_event(Activity::StopAccessReview, actor, INSTANCE, stopped.id, stopped.id, now);
    let batch = Batch {
        review_instances: vec![Put::Changed { row: stopped.clone(), read_at }],
        events: vec![event],
        ..Batch::default()
    };
    s.store.apply(&batch).await?;
    finish(s, &d, stopped, now).await
}
