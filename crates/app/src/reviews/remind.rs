//! Halfway through each stage of an instance (a `ReviewReminder` job queued when the stage
//! begins): decisions whose reviewers are all gone (deleted from the directory, or their
//! accounts disabled) go to the fallback reviewers, and, when the definition asks for
//! reminders, every reviewer with undecided decisions is reminded (an audit event per reviewer
//! now; mail comes with the notifications).

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use steward_domain::audit::Activity;
use steward_domain::directory::User;
use steward_domain::ids::{AccessPackageId, CatalogId, ReviewDefinitionId, ReviewInstanceId, UserId};
use steward_domain::review::{Decision, ReviewDecision, ReviewStatus};

use super::review_event;
use super::reviewers::Resolver;
use super::schedule::changed;
use crate::jobs::{Job, JobKind, NewJob};
use crate::lifecycle::Actor;
use crate::ports::Batch;
use crate::{AppError, Services};

/// The job that reminds and escalates halfway between `stage_start` and `stage_end`.
pub(crate) fn job(
    definition: ReviewDefinitionId,
    instance: ReviewInstanceId,
    stage: u32,
    stage_start: Timestamp,
    stage_end: Timestamp,
) -> NewJob {
    let half = stage_end.duration_since(stage_start) / 2;
    let at = stage_start.checked_add(half).unwrap_or(stage_start);
    let once = format!("review-reminder:{instance}:{stage}");
    NewJob { singleton: Some(once), ..NewJob::now(JobKind::ReviewReminder { definition, instance, stage }, at) }
}

/// Runs one `ReviewReminder` job; does nothing when the instance has moved on meanwhile.
pub(crate) async fn run(
    s: &Services,
    job: &Job,
    owner: &str,
    (definition, instance, stage): (ReviewDefinitionId, ReviewInstanceId, u32),
) -> Result<(), AppError> {
    let now = s.clock.now();
    let current = match (s.store.get_review_definition(definition).await?, s.store.get_review_instance(instance).await?)
    {
        (Some(d), Some(i)) if i.status == ReviewStatus::InProgress && i.stage == stage => Some((d, i)),
        _ => None,
    };
    let Some((d, i)) = current else {
        return Ok(s.store.finish_job(job.id, owner, &Batch::default()).await?);
    };
    // The undecided decisions of this stage, in pages.
    let mut open: Vec<ReviewDecision> = Vec::new();
    let mut after = None;
    loop {
        let chunk = s.store.review_decisions_of(i.id, after, super::CHUNK).await?;
        let Some(last) = chunk.last() else { break };
        after = Some(last.id);
        open.extend(chunk.into_iter().filter(|x| x.stage == stage && x.decision == Decision::NotReviewed));
    }
    let mut reviewer_ids: Vec<UserId> = open.iter().flat_map(|x| x.reviewers.iter().copied()).collect();
    reviewer_ids.sort_unstable();
    reviewer_ids.dedup();
    let present: HashSet<UserId> =
        s.store.users_by_id(&reviewer_ids).await?.into_iter().filter(|u| u.account_enabled).map(|u| u.id).collect();
    let mut batch = Batch::default();
    // Escalation: to the fallback reviewers of the stage, resolved for the person reviewed.
    let (primary, fallback) = d.reviewers_of(usize::try_from(stage).unwrap_or(usize::MAX));
    let stranded: Vec<&ReviewDecision> =
        open.iter().filter(|x| !x.reviewers.is_empty() && x.reviewers.iter().all(|r| !present.contains(r))).collect();
    let mut reviewers_now: HashMap<_, Vec<UserId>> = open.iter().map(|x| (x.id, x.reviewers.clone())).collect();
    if !stranded.is_empty() && !fallback.is_empty() && !primary.is_empty() {
        let principals: HashMap<UserId, User> = s
            .store
            .users_by_id(&stranded.iter().map(|x| x.principal_id).collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let packages: Vec<AccessPackageId> = stranded.iter().map(|x| x.access_package_id).collect();
        let catalogs: HashMap<AccessPackageId, CatalogId> =
            s.store.packages_by_id(&packages).await?.into_iter().map(|p| (p.id, p.catalog_id)).collect();
        let mut resolver = Resolver::default();
        for x in stranded {
            let (Some(principal), Some(catalog)) =
                (principals.get(&x.principal_id), catalogs.get(&x.access_package_id))
            else {
                continue;
            };
            let to = resolver.resolve(s, fallback, &[], principal, *catalog).await?;
            let to: Vec<UserId> = to.into_iter().filter(|u| *u != principal.id).collect();
            if to.is_empty() || to == x.reviewers {
                continue;
            }
            let mut y = x.clone();
            y.reviewers = to.clone();
            reviewers_now.insert(x.id, to.clone());
            batch.events.push(
                review_event(Activity::SendAccessReviewReminder, &Actor::System, "User", principal.id, i.id, now)
                    .with_detail(format!(
                        "The reviewers of {}'s access are gone; the fallback reviewers decide it now.",
                        principal.display_name.as_str()
                    )),
            );
            batch.review_decisions.push(changed(y, x.last_modified_date_time, now));
        }
    }
    if d.input.settings.reminder_notifications_enabled {
        let mut pending: BTreeMap<UserId, usize> = BTreeMap::new();
        for r in reviewers_now.values().flatten() {
            *pending.entry(*r).or_default() += 1;
        }
        for (r, n) in pending {
            batch.events.push(
                review_event(Activity::SendAccessReviewReminder, &Actor::System, "User", r, i.id, now).with_detail(
                    format!(
                        "Reminder: {n} decisions to review in '{}' by {}.",
                        steward_domain::text::clip(&d.input.display_name, 80),
                        steward_domain::time::format_datetime(i.stage_end)
                    ),
                ),
            );
        }
    }
    Ok(s.store.finish_job(job.id, owner, &batch).await?)
}
