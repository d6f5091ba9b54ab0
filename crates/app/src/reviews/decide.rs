//! Decisions in an instance: reading them (the catalog's readers all of them, reviewers their
//! own), recording one or many (only a reviewer of the decision at its current stage, while the
//! stage runs), accepting recommendations, and what managers do to an instance in progress
//! (reset its decisions, remind its reviewers, stop it), and who was asked to review.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use steward_domain::audit::Activity;
use steward_domain::directory::User;
use steward_domain::ids::{ReviewDecisionId, ReviewDefinitionId, ReviewInstanceId, UserId};
use steward_domain::review::{
    Decision, Recommendation, Recording, ReviewDecision, ReviewDefinition, ReviewInstance, ReviewStatus,
};
use steward_domain::role::Task;

use super::schedule::{AsyncChunk, changed, walk};
use super::{
    DECISION, DECISION_INSTANCE, INSTANCE, managed_instance, require_definition, require_instance, review_event,
};
use crate::auth::Principal;
use crate::lifecycle::Actor;
use crate::ports::{Batch, Page};
use crate::query::{ListQuery, REVIEW_DECISIONS, Relation};
use crate::{AppError, Services, StoreError};

fn reviewer_only() -> AppError {
    AppError::Forbidden(
        "Only a reviewer of this decision at its current stage may record it; the caller is not one.".into(),
    )
}

fn me_of(p: &Principal) -> Result<UserId, AppError> {
    p.user_id().ok_or_else(|| {
        AppError::Forbidden(
            "Decisions are recorded by reviewers, who are directory users; an administrator or service token is not \
             one."
                .into(),
        )
    })
}

/// Refuses a recording on an instance that is not taking decisions now (409).
fn check_running(i: &ReviewInstance, now: Timestamp) -> Result<(), AppError> {
    if i.status != ReviewStatus::InProgress || now >= i.stage_end {
        return Err(AppError::Conflict(format!(
            "The access review instance is not in progress (status {}{}); decisions can no longer be recorded.",
            i.status.as_str(),
            if i.status == ReviewStatus::InProgress { ", its stage has ended" } else { "" }
        )));
    }
    Ok(())
}

fn lost(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(_) => AppError::Conflict(
            "The decision changed while it was being recorded (another reviewer, or the review's stage ended); read it \
             again."
                .into(),
        ),
        other => other.into(),
    }
}

fn record_event(me: UserId, x: &ReviewDecision, now: Timestamp) -> steward_domain::audit::AuditEvent {
    review_event(Activity::RecordAccessReviewDecision, &Actor::User(me), DECISION, x.id, x.instance_id, now)
        .with_detail(format!(
            "{} on the access of user {} to access package {}.",
            x.decision.as_str(),
            x.principal_id,
            x.access_package_id
        ))
}

/// Records a reviewer's decision on one decision item (`PATCH …/decisions/{id}`).
pub async fn record(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
    id: ReviewDecisionId,
    recording: Recording,
) -> Result<ReviewDecision, AppError> {
    let me = me_of(p)?;
    let d = require_definition(s, definition).await?;
    let i = require_instance(s, &d, instance).await?;
    let x = match s.store.get_review_decision(id).await? {
        Some(x) if x.instance_id == i.id => x,
        _ => return Err(AppError::not_found("access review decision", id)),
    };
    if !x.is_reviewer(me) {
        return Err(reviewer_only());
    }
    let now = s.clock.now();
    check_running(&i, now)?;
    if x.stage != i.stage {
        return Err(AppError::Conflict("This decision is final: it did not move on to the current stage.".into()));
    }
    let mut y = x.clone();
    y.record(me, &recording, &d.input.settings, now)?;
    let event = record_event(me, &y, now);
    let batch = Batch {
        review_decisions: vec![changed(y.clone(), x.last_modified_date_time, now)],
        events: vec![event],
        ..Batch::default()
    };
    s.store.apply(&batch).await.map_err(lost)?;
    Ok(y)
}

/// One entry of `batchRecordDecisions`: the caller's decisions of the instance about this
/// principal and/or this resource (the access package's or the assignment policy's id), all of
/// them when neither is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub decision: Decision,
    pub justification: Option<String>,
    pub principal: Option<UserId>,
    pub resource: Option<String>,
}

impl BatchItem {
    fn matches(&self, x: &ReviewDecision) -> bool {
        self.principal.is_none_or(|p| p == x.principal_id)
            && self.resource.as_deref().is_none_or(|r| {
                r.eq_ignore_ascii_case(&x.access_package_id.to_string())
                    || x.policy_id.is_some_and(|p| r.eq_ignore_ascii_case(&p.to_string()))
            })
    }
}

/// The caller's decisions in an instance (every page).
async fn mine(s: &Services, me: UserId, instance: ReviewInstanceId) -> Result<Vec<ReviewDecision>, AppError> {
    let mut q = ListQuery::all(&REVIEW_DECISIONS)
        .related(Relation::DecisionsToReview, me)
        .scoped(DECISION_INSTANCE, instance)?;
    let mut out = Vec::new();
    loop {
        let page = s.store.list_review_decisions(&q).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Records decisions in bulk (`batchRecordDecisions`). Two entries that would give one decision
/// different values are refused (400) before anything is written; naming a principal whose
/// decisions the caller does not review is refused (403). All or nothing.
pub async fn batch_record(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
    items: &[BatchItem],
) -> Result<usize, AppError> {
    let me = me_of(p)?;
    let d = require_definition(s, definition).await?;
    let i = require_instance(s, &d, instance).await?;
    for (n, a) in items.iter().enumerate() {
        for b in items.iter().skip(n + 1) {
            let same = a.principal == b.principal && a.resource == b.resource;
            let overlapping = same || (a.principal.is_some() && a.principal == b.principal);
            if overlapping && (a.decision != b.decision || a.justification != b.justification) {
                return Err(AppError::Invalid(format!(
                    "The batch gives the decisions about principal {} two different values ({} and {}).",
                    a.principal.map_or_else(|| "(any)".to_owned(), |p| p.to_string()),
                    a.decision.as_str(),
                    b.decision.as_str()
                )));
            }
        }
    }
    let now = s.clock.now();
    check_running(&i, now)?;
    let candidates: Vec<ReviewDecision> = if items.iter().all(|it| it.principal.is_some()) {
        let principals: Vec<UserId> = items.iter().filter_map(|it| it.principal).collect();
        s.store.review_decisions_of_principals(i.id, &principals).await?
    } else {
        mine(s, me, i.id).await?
    };
    let mut chosen: BTreeMap<ReviewDecisionId, (&BatchItem, &ReviewDecision)> = BTreeMap::new();
    for it in items {
        let matching: Vec<&ReviewDecision> =
            candidates.iter().filter(|x| x.stage == i.stage && it.matches(x)).collect();
        let theirs: Vec<&ReviewDecision> = matching.iter().copied().filter(|x| x.is_reviewer(me)).collect();
        if it.principal.is_some() && !matching.is_empty() && theirs.is_empty() {
            return Err(reviewer_only());
        }
        for x in theirs {
            if let Some((other, _)) = chosen.get(&x.id)
                && (other.decision != it.decision || other.justification != it.justification)
            {
                return Err(AppError::Invalid(format!(
                    "Two entries of the batch give decision {} different values ({} and {}).",
                    x.id,
                    other.decision.as_str(),
                    it.decision.as_str()
                )));
            }
            chosen.insert(x.id, (it, x));
        }
    }
    let mut batch = Batch::default();
    for (it, x) in chosen.values() {
        let mut y = (*x).clone();
        y.record(
            me,
            &Recording { decision: it.decision, justification: it.justification.clone() },
            &d.input.settings,
            now,
        )?;
        batch.events.push(record_event(me, &y, now));
        batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
    }
    let n = batch.review_decisions.len();
    if n > 0 {
        s.store.apply(&batch).await.map_err(lost)?;
    }
    Ok(n)
}

/// The caller's undecided decisions at the current stage take their recommendation
/// (`acceptRecommendations`); those without one stay undecided. Returns how many.
pub async fn accept_recommendations(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
) -> Result<usize, AppError> {
    let me = me_of(p)?;
    let d = require_definition(s, definition).await?;
    let i = require_instance(s, &d, instance).await?;
    let now = s.clock.now();
    check_running(&i, now)?;
    let mut batch = Batch::default();
    let theirs = mine(s, me, i.id).await?;
    if theirs.is_empty() {
        return Err(AppError::Forbidden(
            "The caller reviews no decision of this access review instance; there is nothing to accept.".into(),
        ));
    }
    for x in theirs {
        if x.stage != i.stage || x.decision != Decision::NotReviewed || !x.is_reviewer(me) {
            continue;
        }
        let decision = match x.recommendation {
            Recommendation::Approve => Decision::Approve,
            Recommendation::Deny => Decision::Deny,
            Recommendation::NoInfoAvailable => continue,
        };
        let why = x.recommendation_reason.clone().unwrap_or_else(|| "no reason recorded".to_owned());
        let recording = Recording { decision, justification: Some(format!("Accepted the recommendation: {why}")) };
        let mut y = x.clone();
        y.record(me, &recording, &d.input.settings, now)?;
        batch.events.push(record_event(me, &y, now));
        batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
    }
    let n = batch.review_decisions.len();
    if n > 0 {
        s.store.apply(&batch).await.map_err(lost)?;
    }
    Ok(n)
}

struct Reset;

#[async_trait::async_trait]
impl AsyncChunk for Reset {
    async fn chunk(
        &mut self,
        _s: &Services,
        decisions: &[ReviewDecision],
        now: jiff::Timestamp,
        batch: &mut Batch,
    ) -> Result<(), AppError> {
        for x in decisions.iter().filter(|x| x.decision != Decision::NotReviewed) {
            let mut y = x.clone();
            y.reset(now);
            batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
        }
        Ok(())
    }
}

/// Every decision of the instance's current stage back to NotReviewed (`resetDecisions`).
pub async fn reset_decisions(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
) -> Result<(), AppError> {
    let (_, i, actor) = managed_instance(s, p, definition, instance, Task::ManagePackages).await?;
    let now = s.clock.now();
    check_running(&i, now)?;
    let id = i.id;
    let stage = i.stage;
    let (walked, _) = walk(s, i, now, StageOnly { stage, inner: Reset }).await?;
    let event = review_event(Activity::ResetAccessReviewDecisions, &actor, INSTANCE, id, id, now);
    let read_at = walked.last_modified_date_time;
    let mut row = walked;
    row.last_modified_date_time = steward_domain::time::next_modified(read_at, now);
    let batch = Batch {
        review_instances: vec![crate::ports::Put::Changed { row, read_at }],
        events: vec![event],
        ..Batch::default()
    };
    Ok(s.store.apply(&batch).await?)
}

/// A chunk handler that only sees the decisions at `stage`.
struct StageOnly<C> {
    stage: u32,
    inner: C,
}

#[async_trait::async_trait]
impl<C: AsyncChunk> AsyncChunk for StageOnly<C> {
    async fn chunk(
        &mut self,
        s: &Services,
        decisions: &[ReviewDecision],
        now: jiff::Timestamp,
        batch: &mut Batch,
    ) -> Result<(), AppError> {
        let at: Vec<ReviewDecision> = decisions.iter().filter(|x| x.stage == self.stage).cloned().collect();
        self.inner.chunk(s, &at, now, batch).await
    }
}

/// Every decision of an instance, a chunk at a time, read only.
async fn each_decision<F: FnMut(&ReviewDecision)>(
    s: &Services,
    instance: ReviewInstanceId,
    mut f: F,
) -> Result<(), AppError> {
    let mut after = None;
    loop {
        let chunk = s.store.review_decisions_of(instance, after, super::CHUNK).await?;
        let Some(last) = chunk.last() else { return Ok(()) };
        after = Some(last.id);
        chunk.iter().for_each(&mut f);
    }
}

/// Reminds every reviewer who has undecided decisions at the current stage
/// (`sendReminder`): recorded as one audit event per reviewer (mail comes with notifications).
/// Returns how many were reminded.
pub async fn send_reminder(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
) -> Result<usize, AppError> {
    let (d, i, actor) = managed_instance(s, p, definition, instance, Task::ManagePackages).await?;
    let now = s.clock.now();
    check_running(&i, now)?;
    let mut pending: BTreeMap<UserId, usize> = BTreeMap::new();
    each_decision(s, i.id, |x| {
        if x.stage == i.stage && x.decision == Decision::NotReviewed {
            for r in &x.reviewers {
                *pending.entry(*r).or_default() += 1;
            }
        }
    })
    .await?;
    let events: Vec<_> = pending
        .iter()
        .map(|(r, n)| {
            review_event(Activity::SendAccessReviewReminder, &actor, "User", r, i.id, now).with_detail(format!(
                "{n} decisions to review in '{}' by {}.",
                steward_domain::text::clip(&d.input.display_name, 80),
                steward_domain::time::format_datetime(i.stage_end)
            ))
        })
        .collect();
    let n = events.len();
    if n > 0 {
        s.store.apply(&Batch { events, ..Batch::default() }).await?;
    }
    Ok(n)
}

/// Ends an instance in progress now (`POST …/instances/{id}/stop`).
pub async fn stop_instance(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
) -> Result<(), AppError> {
    let (_, i, actor) = managed_instance(s, p, definition, instance, Task::ManagePackages).await?;
    if i.status != ReviewStatus::InProgress {
        return Err(AppError::Conflict(format!(
            "The access review instance is not in progress (status {}); there is nothing to stop.",
            i.status.as_str()
        )));
    }
    super::schedule::stop(s, &actor, i, s.clock.now()).await
}

/// The people asked to review the instance's decisions (at any stage), by display name.
pub async fn contacted_reviewers(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
) -> Result<Vec<User>, AppError> {
    let (_, i, _) = managed_instance(s, p, definition, instance, Task::ReadCatalog).await?;
    let mut ids: BTreeSet<UserId> = BTreeSet::new();
    each_decision(s, i.id, |x| {
        ids.extend(x.reviewers.iter().copied());
        ids.extend(x.history.iter().filter_map(|h| h.reviewed_by));
        ids.extend(x.reviewed_by);
    })
    .await?;
    let ids: Vec<UserId> = ids.into_iter().collect();
    let mut users = s.store.users_by_id(&ids).await?;
    users.sort_by(|a, b| a.display_name.as_str().cmp(b.display_name.as_str()).then(a.id.cmp(&b.id)));
    Ok(users)
}

/// An instance's decisions, for a reader of the definition's catalog.
pub async fn list_decisions(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
    q: &ListQuery,
) -> Result<Page<ReviewDecision>, AppError> {
    let (_, i, _) = managed_instance(s, p, definition, instance, Task::ReadCatalog).await?;
    Ok(s.store.list_review_decisions(&q.clone().scoped(DECISION_INSTANCE, i.id)?).await?)
}

/// The decisions `me` reviews (`decisions/filterByCurrentUser(on='reviewer')`): of one instance,
/// or of every instance.
pub async fn list_my_decisions(
    s: &Services,
    me: UserId,
    within: Option<(ReviewDefinitionId, ReviewInstanceId)>,
    q: &ListQuery,
) -> Result<Page<ReviewDecision>, AppError> {
    let mut q = q.clone().related(Relation::DecisionsToReview, me);
    if let Some((definition, instance)) = within {
        let d = require_definition(s, definition).await?;
        let i = require_instance(s, &d, instance).await?;
        q = q.scoped(DECISION_INSTANCE, i.id)?;
    }
    Ok(s.store.list_review_decisions(&q).await?)
}

/// One decision, for a reader of the definition's catalog or one of its reviewers (now or at an
/// earlier stage).
pub async fn get_decision(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
    id: ReviewDecisionId,
) -> Result<ReviewDecision, AppError> {
    let d = require_definition(s, definition).await?;
    let i = require_instance(s, &d, instance).await?;
    let x = match s.store.get_review_decision(id).await? {
        Some(x) if x.instance_id == i.id => x,
        _ => return Err(AppError::not_found("access review decision", id)),
    };
    let reviewer = p.user_id().is_some_and(|u| {
        x.is_reviewer(u) || x.reviewed_by == Some(u) || x.history.iter().any(|h| h.reviewed_by == Some(u))
    });
    if !reviewer {
        managed_instance(s, p, definition, instance, Task::ReadCatalog).await?;
    }
    Ok(x)
}

/// One review a user has decisions in: what the portal's Reviews tab lists.
#[derive(Debug, Clone)]
pub struct MyReview {
    pub definition: ReviewDefinition,
    pub instance: ReviewInstance,
    /// The user's decisions in it at the current stage still undecided, and decided.
    pub to_review: usize,
    pub decided: usize,
}

/// The instances in which `me` reviews decisions now, those in progress first, then by end.
pub async fn my_reviews(s: &Services, me: UserId) -> Result<Vec<MyReview>, AppError> {
    let mut q = ListQuery::all(&REVIEW_DECISIONS).related(Relation::DecisionsToReview, me);
    let mut counts: HashMap<ReviewInstanceId, (usize, usize)> = HashMap::new();
    loop {
        let page = s.store.list_review_decisions(&q).await?;
        for x in page.items {
            let e = counts.entry(x.instance_id).or_default();
            if x.decision == Decision::NotReviewed {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    let mut out = Vec::new();
    for (iid, (to_review, decided)) in counts {
        let Some(instance) = s.store.get_review_instance(iid).await? else { continue };
        let Some(definition) = s.store.get_review_definition(instance.definition_id).await? else { continue };
        out.push(MyReview { definition, instance, to_review, decided });
    }
    out.sort_by_key(|r| (r.instance.status != ReviewStatus::InProgress, r.instance.end, r.instance.id));
    Ok(out)
}
