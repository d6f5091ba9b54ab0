//! Notices the clock brings rather than an audit event, queued by the sweep: expiry warnings
//! (`expiry_warning_days` before an assignment ends), approval reminders (a day before an open
//! stage escalates or times out), reviews ending (two days before an access review ends) and the
//! administrators' digest (failed deliveries and reconciliation drift, at most once a day).
//!
//! Each timer keeps a watermark in the store: how far ahead it has looked. A pass looks at the
//! stretch after it up to `now` plus the timer's lead and moves the watermark with the notices
//! it queued, in one transaction (compare-and-set), so each moment is considered once; notice
//! ids are derived from what they are about, so a stretch looked at twice still mails once. A
//! timer's first pass only sets its watermark: what already lay within its lead when notices
//! were switched on is not mailed about.

use jiff::{SignedDuration, Timestamp};
use steward_domain::approval::StageStatus;
use steward_domain::audit::Activity;
use steward_domain::enums::RequestState;
use steward_domain::ids::UserId;
use steward_domain::notification::NotificationKind as K;
use steward_domain::role::Role;
use steward_domain::time::to_micros;

use super::compose::{DigestTopic, Draft, RequestTopic, Topic};
use super::derive::{Facts, review_topic, stage_deadline};
use crate::ports::RoleAssignmentFilter;
use steward_odata::CmpOp;

use crate::query::{Cond, DIRECTORY_AUDITS, ListQuery, REVIEW_INSTANCES, Sort, Value};
use crate::{AppError, Services};

/// Most items one timer takes on per pass; the rest wait for the next.
pub const BATCH: u32 = 500;
/// How long before an open approval stage escalates or times out its approvers are reminded.
pub const REMIND_BEFORE: SignedDuration = SignedDuration::from_hours(24);
/// A stage that began less than this long before its reminder is due gets none: its
/// "action required" is still fresh.
const REMIND_AFTER_AT_LEAST: SignedDuration = SignedDuration::from_hours(12);
/// How long before an access review ends its reviewers hear so.
pub const REVIEW_ENDING_BEFORE: SignedDuration = SignedDuration::from_hours(48);
/// The administrators' digest comes at most this often.
pub const DIGEST_EVERY: SignedDuration = SignedDuration::from_hours(24);
/// Most lines of each kind in one digest.
const DIGEST_LINES: usize = 50;

/// Queues what is due at `now`; returns how many notices were queued. Nothing without a
/// mailer. Each timer's trouble is logged and left for the next sweep.
pub async fn queue(s: &Services, now: Timestamp) -> usize {
    if s.mailer.is_none() {
        return 0;
    }
    let mut n = 0;
    let mut days = s.notify.expiry_warning_days.clone();
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    for d in days {
        match expiry(s, d, now).await {
            Ok(k) => n += k,
            Err(e) => tracing::warn!(days = d, error = %e, "expiry warnings could not be queued; will retry"),
        }
    }
    for (what, r) in [
        ("approval reminders", approval_reminders(s, now).await),
        ("reviews ending", reviews_ending(s, now).await),
        ("the administrators' digest", digest(s, now).await),
    ] {
        match r {
            Ok(k) => n += k,
            Err(e) => tracing::warn!(error = %e, "{what} could not be queued; will retry"),
        }
    }
    n
}

/// Where timer `name` looks now: `(watermark, from, until)` for the stretch `(from, until]`,
/// or `None` when there is nothing to look at (the first pass sets the watermark to `until`).
async fn stretch(
    s: &Services,
    name: &str,
    now: Timestamp,
    lead: SignedDuration,
) -> Result<Option<(Timestamp, Timestamp, Timestamp)>, AppError> {
    let until = now.saturating_add(lead).unwrap_or(now);
    match s.store.notify_timer(name).await? {
        None => {
            s.store.queue_timer_notices(name, None, until, &[]).await?;
            Ok(None)
        }
        Some(w) if w >= until => Ok(None),
        // What ended before now is past warning.
        Some(w) => Ok(Some((w, w.max(now), until))),
    }
}

/// The watermark after a page of items ordered by `at`: `until` when the page was not full,
/// else just before the page's last moment, so items sharing it are looked at again (their
/// notices' ids make that harmless); the last moment itself when the whole page shares it.
fn next_watermark(ats: &[Timestamp], until: Timestamp) -> Timestamp {
    match (ats.first(), ats.last()) {
        (Some(first), Some(last)) if ats.len() >= BATCH as usize => {
            if first == last {
                *last
            } else {
                last.checked_sub(SignedDuration::from_micros(1)).unwrap_or(*last)
            }
        }
        _ => until,
    }
}

async fn expiry(s: &Services, days: u32, now: Timestamp) -> Result<usize, AppError> {
    let name = format!("expiry:{days}d");
    let lead = SignedDuration::from_hours(24 * i64::from(days));
    let Some((w, from, until)) = stretch(s, &name, now, lead).await? else { return Ok(0) };
    let ending = s.store.assignments_ending_between(from, until, BATCH).await?;
    let ats: Vec<Timestamp> = ending.iter().filter_map(|a| a.window.end).collect();
    let mut facts = Facts { assignments: ending.iter().map(|a| (a.id, a.clone())).collect(), ..Facts::default() };
    facts.read_around(s, []).await?;
    let drafts: Vec<Draft> = ending
        .iter()
        .filter_map(|a| {
            let end = a.window.end?;
            let package = facts
                .packages
                .get(&a.access_package_id)
                .map_or_else(|| "an access package".to_owned(), |p| p.display_name.as_str().to_owned());
            Some(Draft {
                kind: K::ExpiryWarning,
                source: format!("expiry:{}:{days}:{}", a.id, to_micros(end)),
                to: a.target_id,
                policy: a.policy_id,
                topic: Topic::Access { package, package_id: a.access_package_id, end, removed: false },
            })
        })
        .collect();
    let notices = super::notices(s, &drafts, &facts.users, &facts.policies, now);
    let n = notices.len();
    s.store.queue_timer_notices(&name, Some(w), next_watermark(&ats, until), &notices).await?;
    Ok(n)
}

async fn approval_reminders(s: &Services, now: Timestamp) -> Result<usize, AppError> {
    let name = "approvalReminder";
    let Some((w, from, until)) = stretch(s, name, now, REMIND_BEFORE).await? else { return Ok(0) };
    let due = s.store.requests_due_between(from, until, BATCH).await?;
    let ats: Vec<Timestamp> = due.iter().filter_map(|r| r.due).collect();
    let mut facts = Facts {
        requests: due.iter().filter(|r| r.state == RequestState::PendingApproval).map(|r| (r.id, r.clone())).collect(),
        ..Facts::default()
    };
    facts.read_around(s, []).await?;
    let mut drafts = Vec::new();
    for r in facts.requests.values() {
        let of = r.detail.stages.len();
        for (i, st) in r.detail.stages.iter().enumerate() {
            let deadline = stage_deadline(st);
            let open = matches!(st.status, StageStatus::InProgress | StageStatus::Escalated);
            let settled =
                st.started.is_some_and(|t| deadline.is_some_and(|d| d.duration_since(t) >= REMIND_AFTER_AT_LEAST));
            if !open || !settled || deadline != r.due {
                continue;
            }
            let Some(d) = deadline else { continue };
            let topic = RequestTopic { stage: Some((i + 1, of)), deadline: Some(d), ..facts.request_topic(r) };
            for a in st.approvers.iter().filter(|a| !st.decisions.iter().any(|x| x.by == **a)) {
                drafts.push(Draft {
                    kind: K::ApprovalReminder,
                    source: format!("reminder:{}:{}", st.id, to_micros(d)),
                    to: *a,
                    policy: r.policy_id,
                    topic: Topic::Request(Box::new(topic.clone())),
                });
            }
        }
    }
    let notices = super::notices(s, &drafts, &facts.users, &facts.policies, now);
    let n = notices.len();
    s.store.queue_timer_notices(name, Some(w), next_watermark(&ats, until), &notices).await?;
    Ok(n)
}

async fn reviews_ending(s: &Services, now: Timestamp) -> Result<usize, AppError> {
    let name = "reviewEnding";
    let Some((w, from, until)) = stretch(s, name, now, REVIEW_ENDING_BEFORE).await? else { return Ok(0) };
    let field = |path: &str| {
        REVIEW_INSTANCES.field(path).ok_or_else(|| {
            AppError::Store(crate::StoreError::Internal(format!("no {path} in the access review instances' schema")))
        })
    };
    let (end, status, id) = (field("endDateTime")?, field("status")?, field("id")?);
    let mut q = ListQuery::all(&REVIEW_INSTANCES).and(Cond::And(vec![
        Cond::Cmp { field: status, op: CmpOp::Eq, value: Value::Text("InProgress".into()), lower: false },
        Cond::Cmp { field: end, op: CmpOp::Gt, value: Value::Int(to_micros(from)), lower: false },
        Cond::Cmp { field: end, op: CmpOp::Le, value: Value::Int(to_micros(until)), lower: false },
    ]));
    q.order = vec![Sort { field: end, descending: false }, Sort { field: id, descending: false }];
    q.top = BATCH;
    let page = s.store.list_review_instances(&q).await?;
    let ats: Vec<Timestamp> = page.items.iter().map(|i| i.end).collect();
    let mut facts = Facts::default();
    let mut drafts = Vec::new();
    for inst in &page.items {
        facts.read_review(s, inst.id).await?;
        let Some(r) = facts.reviews.get(&inst.id) else { continue };
        if !r.mail {
            continue;
        }
        for (who, n) in r.pending.iter().filter(|(_, n)| **n > 0) {
            let mut topic = review_topic(r, *n);
            topic.end = inst.end;
            drafts.push(Draft {
                kind: K::ReviewEnding,
                source: format!("review-ending:{}", inst.id),
                to: *who,
                policy: None,
                topic: Topic::Review(topic),
            });
        }
    }
    facts.read_around(s, []).await?;
    let notices = super::notices(s, &drafts, &facts.users, &facts.policies, now);
    let n = notices.len();
    s.store.queue_timer_notices(name, Some(w), next_watermark(&ats, until), &notices).await?;
    Ok(n)
}

/// The failed deliveries of `[since, until)` (the next digest starts where this one ends), as
/// "what failed (assignment)", at most `DIGEST_LINES`, and how many more there were.
async fn failed_deliveries(s: &Services, since: Timestamp, until: Timestamp) -> Result<(Vec<String>, usize), AppError> {
    let field = |path: &str| {
        DIRECTORY_AUDITS.field(path).ok_or_else(|| {
            AppError::Store(crate::StoreError::Internal(format!("no {path} in the audit trail's schema")))
        })
    };
    let (at, name, result) = (field("activityDateTime")?, field("activityDisplayName")?, field("result")?);
    let mut q = ListQuery::all(&DIRECTORY_AUDITS).and(Cond::And(vec![
        Cond::Cmp { field: at, op: CmpOp::Ge, value: Value::Int(to_micros(since)), lower: false },
        Cond::Cmp { field: at, op: CmpOp::Lt, value: Value::Int(to_micros(until)), lower: false },
        Cond::Cmp {
            field: name,
            op: CmpOp::Eq,
            value: Value::Text(Activity::Failed.display_name().into()),
            lower: false,
        },
        Cond::Cmp { field: result, op: CmpOp::Eq, value: Value::Text("failure".into()), lower: false },
    ]));
    q.top = crate::query::MAX_TOP;
    let page = s.store.list_audit_events(&q).await?;
    // The per-resource events say what failed; the request's own event only that it did.
    let lines: Vec<String> = page
        .items
        .iter()
        .filter(|e| e.target_type == "AccessPackageAssignment")
        .map(|e| format!("{} (assignment {})", e.detail.as_deref().unwrap_or("a delivery failed"), e.target_id))
        .collect();
    let total = lines.len();
    Ok((lines.into_iter().take(DIGEST_LINES).collect(), total.saturating_sub(DIGEST_LINES)))
}

/// Holders first seen in `[since, until)` in a connection's target whom Steward did not grant
/// the role there.
async fn new_drift(s: &Services, since: Timestamp, until: Timestamp) -> Result<(Vec<String>, usize), AppError> {
    let mut lines = Vec::new();
    for c in s.store.list_connections().await? {
        let drift: Vec<_> =
            s.store.drift(c.id).await?.into_iter().filter(|d| d.first_seen > since && d.first_seen <= until).collect();
        if drift.is_empty() {
            continue;
        }
        let roles: Vec<_> = drift.iter().map(|d| d.resource_role_id).collect();
        let grants = s.store.role_grants(&roles).await?;
        for d in drift {
            let role = grants
                .iter()
                .find(|g| g.role_id == d.resource_role_id)
                .map_or_else(|| d.resource_role_id.to_string(), |g| format!("{} of {}", g.role_name, g.resource_name));
            lines.push(format!("{} holds {role} in {}", d.holder, c.display_name.as_str()));
        }
    }
    let total = lines.len();
    Ok((lines.into_iter().take(DIGEST_LINES).collect(), total.saturating_sub(DIGEST_LINES)))
}

async fn digest(s: &Services, now: Timestamp) -> Result<usize, AppError> {
    let name = "adminDigest";
    let Some(w) = s.store.notify_timer(name).await? else {
        s.store.queue_timer_notices(name, None, now, &[]).await?;
        return Ok(0);
    };
    if now < w.saturating_add(DIGEST_EVERY).unwrap_or(w) {
        return Ok(0);
    }
    let (failures, more_failures) = failed_deliveries(s, w, now).await?;
    let (drift, more_drift) = new_drift(s, w, now).await?;
    let mut drafts = Vec::new();
    let mut facts = Facts::default();
    if !(failures.is_empty() && drift.is_empty()) {
        let filter = RoleAssignmentFilter { role: Some(Role::Administrator), ..RoleAssignmentFilter::default() };
        let mut admins: Vec<UserId> =
            s.store.list_role_assignments(&filter).await?.into_iter().map(|a| a.principal).collect();
        admins.sort_unstable();
        admins.dedup();
        let topic = Topic::Digest(DigestTopic { since: w, until: now, failures, more_failures, drift, more_drift });
        let day = now.strftime("%Y-%m-%d").to_string();
        drafts = admins
            .iter()
            .map(|a| Draft {
                kind: K::AdminDigest,
                source: format!("digest:{day}"),
                to: *a,
                policy: None,
                topic: topic.clone(),
            })
            .collect();
        facts.read_around(s, admins).await?;
    }
    let notices = super::notices(s, &drafts, &facts.users, &facts.policies, now);
    let n = notices.len();
    s.store.queue_timer_notices(name, Some(w), now, &notices).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_moves_the_watermark_just_before_its_last_moment() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let until = t(1_000);
        assert_eq!(next_watermark(&[t(1), t(2)], until), until);
        let mut full: Vec<Timestamp> = (0..BATCH as i64).map(|i| t(10 + i / 10)).collect();
        let last = *full.last().unwrap();
        assert_eq!(next_watermark(&full, until), last.checked_sub(SignedDuration::from_micros(1)).unwrap());
        full.iter_mut().for_each(|x| *x = t(5));
        assert_eq!(next_watermark(&full, until), t(5), "progress even when a page shares one moment");
    }
}
