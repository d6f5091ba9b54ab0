//! From the audit trail to notices: each round reads the events chained since the cursor
//! (`BATCH` at most), reads what they are about in bulk (`Facts`: the requests, assignments,
//! policies, packages, users, review instances), turns each event into drafts with the pure
//! `plan`, renders them for their recipients, and queues them with the cursor's move in one
//! transaction. Which moment makes which mail is `plan`'s table.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use steward_domain::approval::{ReviewResult, StageStatus};
use steward_domain::assignment::Assignment;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::directory::User;
use steward_domain::ids::{AccessPackageId, AssignmentId, PolicyId, RequestId, ReviewInstanceId, UserId};
use steward_domain::notification::NotificationKind as K;
use steward_domain::package::AccessPackage;
use steward_domain::policy::AssignmentPolicy;
use steward_domain::request::{self, AssignmentRequest};
use steward_domain::review::{Decision, ReviewInstance};

use super::compose::{Draft, RequestTopic, ReviewTopic, Topic};
use crate::ports::RoleGrant;
use crate::{AppError, Services};

/// Most audit events one round turns into notices.
pub const BATCH: u32 = 500;

const REQUEST: &str = "AccessPackageAssignmentRequest";
const ASSIGNMENT: &str = "AccessPackageAssignment";

/// An access review as its reviewers' mails need it.
#[derive(Debug, Clone)]
pub struct ReviewFacts {
    pub instance: ReviewInstance,
    pub name: String,
    /// `mailNotificationsEnabled`: whether reviewers hear that it started or ends soon.
    pub mail: bool,
    /// Each reviewer's undecided decisions at the stage under way.
    pub pending: BTreeMap<UserId, usize>,
}

/// What the events of a round are about, read in bulk.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub requests: HashMap<RequestId, AssignmentRequest>,
    pub assignments: HashMap<AssignmentId, Assignment>,
    pub policies: HashMap<PolicyId, AssignmentPolicy>,
    pub packages: HashMap<AccessPackageId, AccessPackage>,
    pub grants: HashMap<AccessPackageId, Vec<RoleGrant>>,
    pub users: HashMap<UserId, User>,
    pub reviews: HashMap<ReviewInstanceId, ReviewFacts>,
}

impl Facts {
    /// Reads the packages, policies and users of `requests` and `assignments` (plus `more`
    /// users) into these facts.
    pub(crate) async fn read_around(
        &mut self,
        s: &Services,
        more: impl IntoIterator<Item = UserId>,
    ) -> Result<(), AppError> {
        let mut packages: HashSet<AccessPackageId> = HashSet::new();
        let mut policies: HashSet<PolicyId> = HashSet::new();
        let mut users: HashSet<UserId> = more.into_iter().collect();
        for r in self.requests.values() {
            packages.insert(r.access_package_id);
            policies.extend(r.policy_id);
            users.insert(r.target_id);
            users.extend(r.requestor_id);
            for st in &r.detail.stages {
                users.extend(st.approvers.iter().copied());
                users.extend(st.decisions.iter().map(|d| d.by));
            }
        }
        for a in self.assignments.values() {
            packages.insert(a.access_package_id);
            policies.extend(a.policy_id);
            users.insert(a.target_id);
        }
        for r in self.reviews.values() {
            users.extend(r.pending.keys().copied());
        }
        let packages: Vec<_> = packages.into_iter().filter(|p| !self.packages.contains_key(p)).collect();
        if !packages.is_empty() {
            for (p, g) in s.store.package_grants_of(&packages).await? {
                self.grants.entry(p).or_default().push(g);
            }
            self.packages.extend(s.store.packages_by_id(&packages).await?.into_iter().map(|p| (p.id, p)));
        }
        let policies: Vec<_> = policies.into_iter().filter(|p| !self.policies.contains_key(p)).collect();
        if !policies.is_empty() {
            self.policies.extend(s.store.policies_by_id(&policies).await?.into_iter().map(|p| (p.id, p)));
        }
        let users: Vec<_> = users.into_iter().filter(|u| !self.users.contains_key(u)).collect();
        if !users.is_empty() {
            self.users.extend(s.store.users_by_id(&users).await?.into_iter().map(|u| (u.id, u)));
        }
        Ok(())
    }

    /// Reads an instance of an access review with its reviewers' undecided decisions.
    pub(crate) async fn read_review(&mut self, s: &Services, id: ReviewInstanceId) -> Result<(), AppError> {
        if self.reviews.contains_key(&id) {
            return Ok(());
        }
        let Some(instance) = s.store.get_review_instance(id).await? else { return Ok(()) };
        let Some(d) = s.store.get_review_definition(instance.definition_id).await? else { return Ok(()) };
        let mut pending: BTreeMap<UserId, usize> = BTreeMap::new();
        let mut after = None;
        loop {
            let chunk = s.store.review_decisions_of(id, after, crate::reviews::CHUNK).await?;
            let Some(last) = chunk.last() else { break };
            after = Some(last.id);
            for x in chunk.iter().filter(|x| x.stage == instance.stage && x.decision == Decision::NotReviewed) {
                for r in &x.reviewers {
                    *pending.entry(*r).or_default() += 1;
                }
            }
        }
        let facts = ReviewFacts {
            name: d.input.display_name.clone(),
            mail: d.input.settings.mail_notifications_enabled,
            instance,
            pending,
        };
        self.reviews.insert(id, facts);
        Ok(())
    }

    fn name(&self, u: UserId) -> Option<String> {
        self.users.get(&u).map(|u| u.display_name.as_str().to_owned())
    }

    fn package_name(&self, p: AccessPackageId) -> String {
        self.packages.get(&p).map_or_else(|| "an access package".to_owned(), |p| p.display_name.as_str().to_owned())
    }

    /// "Resource (Role)" for each role the package grants.
    fn resources(&self, p: AccessPackageId) -> Vec<String> {
        self.grants
            .get(&p)
            .map(|gs| gs.iter().map(|g| format!("{} ({})", g.resource_name, g.role_name)).collect())
            .unwrap_or_default()
    }

    /// A request's failure (`<role id>: <why>`) with the role named as the package grants it.
    fn failure(&self, p: AccessPackageId, failure: &str) -> String {
        let named = failure.split_once(": ").and_then(|(role, why)| {
            let role = role.parse::<steward_domain::ids::ResourceRoleId>().ok()?;
            let g = self.grants.get(&p)?.iter().find(|g| g.role_id == role)?;
            Some(format!("{} ({}): {why}", g.resource_name, g.role_name))
        });
        named.unwrap_or_else(|| failure.to_owned())
    }

    /// A request as its mails tell it (stage, decider and reason left for the caller).
    pub(crate) fn request_topic(&self, r: &AssignmentRequest) -> RequestTopic {
        let target = self
            .name(r.target_id)
            .or_else(|| r.detail.guest.as_ref().map(|g| g.email.clone()))
            .unwrap_or_else(|| "someone".to_owned());
        let on_behalf_of = r.requestor_id.filter(|q| *q != r.target_id).and_then(|q| self.name(q));
        RequestTopic {
            request: r.id,
            package: self.package_name(r.access_package_id),
            package_id: r.access_package_id,
            target,
            on_behalf_of,
            extension: request::is_update(r.request_type),
            justification: r.detail.justification.clone(),
            stage: None,
            by: None,
            reason: None,
            resources: Vec::new(),
            start: r.detail.window.map(|w| w.start),
            end: r.detail.window.and_then(|w| w.end),
            deadline: None,
        }
    }
}

/// The people a request's requestor mails go to: its target, and whoever asked for them.
fn requestors(r: &AssignmentRequest) -> Vec<UserId> {
    let mut v = vec![r.target_id];
    if let Some(q) = r.requestor_id.filter(|q| *q != r.target_id) {
        v.push(q);
    }
    v
}

fn drafts_to(
    kind: K,
    source: &str,
    people: impl IntoIterator<Item = UserId>,
    policy: Option<PolicyId>,
    topic: &Topic,
) -> Vec<Draft> {
    people.into_iter().map(|to| Draft { kind, source: source.to_owned(), to, policy, topic: topic.clone() }).collect()
}

/// The mails one audit event makes, given what it is about as it stands now:
///
/// | event | mail | to |
/// |---|---|---|
/// | any event of a request at the moment a stage started, the stage still open | actionRequired | its approvers who have not decided |
/// | ApprovalStageCompleted "… escalated", the stage still open | escalated | its (escalation) approvers |
/// | ApprovalStageCompleted, a stage approved that is not the last | stageApproved | requestors |
/// | Approve | requestApproved | requestors |
/// | Deny | requestDenied (with the reason) | requestors |
/// | TimedOut | requestTimedOut | requestors |
/// | Cancel | requestCancelled | approvers of the stages open when cancelled |
/// | UserRequestsAssignment / UserRequestsExtension that waits for approval | requestSubmitted | requestors |
/// | ReadyToFulfill / Fulfill by Steward of a request whose start was in the future | scheduledStart | requestors |
/// | Fulfill of an add or extension | accessDelivered (listing the resources) | requestors |
/// | Fulfill of a removal | accessEnded | target |
/// | PartiallyFulfill / Failed of a request | deliveryFailed | requestors |
/// | Expire of an assignment | accessEnded | target |
/// | AccessReviewInstanceStarted (mail on) | reviewStarted | reviewers with decisions |
/// | SendAccessReviewReminder to a reviewer | reviewReminder | that reviewer |
///
/// "Requestors" are the target and, for a request on their behalf, the one who asked.
pub fn plan(e: &AuditEvent, f: &Facts) -> Vec<Draft> {
    let source = e.id.to_string();
    let mut out = Vec::new();
    if e.target_type == REQUEST {
        let Some(r) = e.target_id.parse::<RequestId>().ok().and_then(|id| f.requests.get(&id)) else {
            return out;
        };
        let base = f.request_topic(r);
        let of = r.detail.stages.len();
        let policy = r.policy_id;
        // A stage that started with this event, and is still waiting for its approvers.
        for (i, st) in r.detail.stages.iter().enumerate() {
            if st.started == Some(e.at) && st.status == StageStatus::InProgress {
                let undecided = st.approvers.iter().copied().filter(|a| !st.decisions.iter().any(|d| d.by == *a));
                let topic = RequestTopic { stage: Some((i + 1, of)), deadline: stage_deadline(st), ..base.clone() };
                out.extend(drafts_to(
                    K::ActionRequired,
                    &format!("stage:{}", st.id),
                    undecided,
                    policy,
                    &Topic::Request(Box::new(topic)),
                ));
            }
        }
        let by = match &e.initiator {
            Initiator::User(u) => u.parse::<UserId>().ok().and_then(|u| f.name(u)),
            _ => None,
        };
        let to_requestors = |kind: K, topic: RequestTopic| {
            drafts_to(kind, &source, requestors(r), policy, &Topic::Request(Box::new(topic)))
        };
        match e.activity {
            Activity::ApprovalStageCompleted if e.detail.as_deref().is_some_and(|d| d.contains("escalated")) => {
                for (i, st) in r.detail.stages.iter().enumerate().filter(|(_, st)| st.status == StageStatus::Escalated)
                {
                    let undecided = st.approvers.iter().copied().filter(|a| !st.decisions.iter().any(|d| d.by == *a));
                    let topic = RequestTopic { stage: Some((i + 1, of)), deadline: stage_deadline(st), ..base.clone() };
                    out.extend(drafts_to(
                        K::Escalated,
                        &format!("escalated:{}", st.id),
                        undecided,
                        policy,
                        &Topic::Request(Box::new(topic)),
                    ));
                }
            }
            Activity::ApprovalStageCompleted => {
                let done = r.detail.stages.iter().enumerate().find(|(i, st)| {
                    st.completed == Some(e.at) && st.review_result == ReviewResult::Approve && i + 1 < of
                });
                if let Some((i, st)) = done {
                    let by = st.deciding().and_then(|d| f.name(d.by)).or(by);
                    out.extend(to_requestors(K::StageApproved, RequestTopic { stage: Some((i + 1, of)), by, ..base }));
                }
            }
            Activity::Approve => {
                let by = r.detail.stages.last().and_then(|st| st.deciding()).and_then(|d| f.name(d.by)).or(by);
                out.extend(to_requestors(K::RequestApproved, RequestTopic { by, ..base }));
            }
            Activity::Deny => {
                let reason = e.detail.clone().or_else(|| r.detail.reason.clone());
                out.extend(to_requestors(K::RequestDenied, RequestTopic { by, reason, ..base }));
            }
            Activity::TimedOut => out.extend(to_requestors(K::RequestTimedOut, base)),
            Activity::Cancel => {
                // Stages that had started and were still waiting when the request was cancelled.
                for st in r.detail.stages.iter().filter(|st| st.started.is_some() && st.completed.is_none()) {
                    let undecided = st.approvers.iter().copied().filter(|a| !st.decisions.iter().any(|d| d.by == *a));
                    out.extend(drafts_to(
                        K::RequestCancelled,
                        &source,
                        undecided,
                        policy,
                        &Topic::Request(Box::new(base.clone())),
                    ));
                }
            }
            Activity::UserRequestsAssignment | Activity::UserRequestsExtension if !r.detail.stages.is_empty() => {
                out.extend(to_requestors(K::RequestSubmitted, base));
            }
            Activity::ReadyToFulfill | Activity::Fulfill => {
                let future_start = r.detail.window.is_some_and(|w| w.start > r.created_date_time && w.start <= e.at);
                if e.initiator == Initiator::System && future_start && r.is_add() {
                    out.extend(drafts_to(
                        K::ScheduledStart,
                        &format!("start:{}", r.id),
                        requestors(r),
                        policy,
                        &Topic::Request(Box::new(base.clone())),
                    ));
                }
                if e.activity == Activity::Fulfill {
                    if request::is_remove(r.request_type) {
                        let topic = Topic::Access {
                            package: base.package.clone(),
                            package_id: base.package_id,
                            end: e.at,
                            removed: true,
                        };
                        out.extend(drafts_to(K::AccessEnded, &source, [r.target_id], policy, &topic));
                    } else {
                        let resources = f.resources(r.access_package_id);
                        out.extend(to_requestors(K::AccessDelivered, RequestTopic { resources, ..base }));
                    }
                }
            }
            Activity::PartiallyFulfill | Activity::Failed if !request::is_remove(r.request_type) => {
                let resources = r.detail.failures.iter().map(|x| f.failure(r.access_package_id, x)).collect();
                out.extend(to_requestors(
                    K::DeliveryFailed,
                    RequestTopic { resources, reason: r.detail.reason.clone(), ..base },
                ));
            }
            _ => {}
        }
        return out;
    }
    if e.target_type == ASSIGNMENT && e.activity == Activity::Expire {
        if let Some(a) = e.target_id.parse::<AssignmentId>().ok().and_then(|id| f.assignments.get(&id)) {
            let topic = Topic::Access {
                package: f.package_name(a.access_package_id),
                package_id: a.access_package_id,
                end: a.window.end.unwrap_or(e.at),
                removed: false,
            };
            out.extend(drafts_to(K::AccessEnded, &source, [a.target_id], a.policy_id, &topic));
        }
        return out;
    }
    match e.activity {
        Activity::AccessReviewInstanceStarted => {
            if let Some(r) = e.target_id.parse::<ReviewInstanceId>().ok().and_then(|id| f.reviews.get(&id))
                && r.mail
            {
                for (who, n) in &r.pending {
                    let topic = Topic::Review(review_topic(r, *n));
                    out.push(Draft { kind: K::ReviewStarted, source: source.clone(), to: *who, policy: None, topic });
                }
            }
        }
        // A reminder names its reviewer as the target; the event telling that decisions went
        // to the fallback reviewers names the person reviewed, and is no reminder.
        Activity::SendAccessReviewReminder
            if !e.detail.as_deref().is_some_and(|d| d.starts_with("The reviewers of")) =>
        {
            let review = e.correlation_id.parse::<ReviewInstanceId>().ok().and_then(|id| f.reviews.get(&id));
            if let (Some(r), Ok(who)) = (review, e.target_id.parse::<UserId>())
                && let Some(n) = r.pending.get(&who).copied().filter(|n| *n > 0)
            {
                let topic = Topic::Review(review_topic(r, n));
                out.push(Draft { kind: K::ReviewReminder, source, to: who, policy: None, topic });
            }
        }
        _ => {}
    }
    out
}

pub(crate) fn review_topic(r: &ReviewFacts, pending: usize) -> ReviewTopic {
    ReviewTopic {
        definition: r.instance.definition_id,
        instance: r.instance.id,
        name: r.name.clone(),
        pending,
        end: r.instance.stage_end,
    }
}

/// When an open stage escalates or, failing that, times out.
pub(crate) fn stage_deadline(st: &steward_domain::approval::StageRecord) -> Option<Timestamp> {
    match (st.escalate_at, st.deny_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads what `events` are about.
async fn read(s: &Services, events: &[(i64, AuditEvent)]) -> Result<Facts, AppError> {
    let mut requests: Vec<RequestId> = Vec::new();
    let mut assignments: Vec<AssignmentId> = Vec::new();
    let mut reviews: Vec<ReviewInstanceId> = Vec::new();
    let mut initiators: Vec<UserId> = Vec::new();
    for (_, e) in events {
        if e.target_type == REQUEST {
            requests.extend(e.target_id.parse::<RequestId>());
            if let Initiator::User(u) = &e.initiator {
                initiators.extend(u.parse::<UserId>());
            }
        } else if e.target_type == ASSIGNMENT && e.activity == Activity::Expire {
            assignments.extend(e.target_id.parse::<AssignmentId>());
        } else if e.activity == Activity::AccessReviewInstanceStarted {
            reviews.extend(e.target_id.parse::<ReviewInstanceId>());
        } else if e.activity == Activity::SendAccessReviewReminder {
            reviews.extend(e.correlation_id.parse::<ReviewInstanceId>());
        }
    }
    let mut f = Facts::default();
    requests.sort_unstable();
    requests.dedup();
    if !requests.is_empty() {
        f.requests = s.store.requests_by_id(&requests).await?.into_iter().map(|r| (r.id, r)).collect();
    }
    assignments.sort_unstable();
    assignments.dedup();
    if !assignments.is_empty() {
        f.assignments = s.store.assignments_by_id(&assignments).await?.into_iter().map(|a| (a.id, a)).collect();
    }
    reviews.sort_unstable();
    reviews.dedup();
    for id in reviews {
        f.read_review(s, id).await?;
    }
    f.read_around(s, initiators).await?;
    Ok(f)
}

/// Turns the events chained since the cursor into notices and queues them with the cursor's
/// move; returns how many events it read.
pub(crate) async fn pass(s: &Services, now: Timestamp) -> Result<usize, AppError> {
    let from = s.store.notify_cursor().await?;
    let events = s.store.chained_events(from, BATCH).await?;
    let Some(to) = events.last().map(|(seq, _)| *seq) else { return Ok(0) };
    let facts = read(s, &events).await?;
    let drafts: Vec<Draft> = events.iter().flat_map(|(_, e)| plan(e, &facts)).collect();
    let mut notices = super::notices(s, &drafts, &facts.users, &facts.policies, now);
    let switches = super::Switches::new(s, &facts.policies);
    notices.extend(crate::chat::notices(s, &drafts, |d| switches.allow(d), now).await?);
    if !s.store.queue_notices(&notices, from, to).await? {
        tracing::debug!(from, to, "another process turned these audit events into notices");
    }
    Ok(events.len())
}

/// Without a mailer: moves the cursor to the chain's head without deriving anything.
pub(crate) async fn skip(s: &Services) -> Result<(), AppError> {
    Ok(s.store.notify_cursor_to_head().await?)
}

#[cfg(test)]
mod tests {
    use steward_domain::approval::StageRecord;
    use steward_domain::enums::{RequestState, RequestType, UserType};
    use steward_domain::ids::{CatalogId, ResourceRoleId};
    use steward_domain::request::{RequestDetail, RequestStatus};
    use steward_domain::schedule::Window;
    use steward_domain::text::DisplayName;

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn user(name: &str) -> User {
        User {
            id: UserId::new(),
            display_name: DisplayName::parse(name).unwrap(),
            user_principal_name: format!("{name}@example.test"),
            mail: Some(format!("{name}@example.test")),
            user_type: UserType::Member,
            account_enabled: true,
            department: None,
            job_title: None,
            company_name: None,
            employee_id: None,
            city: None,
            country: None,
            created_date_time: t("2031-01-01T00:00:00Z"),
            manager: None,
        }
    }

    struct World {
        facts: Facts,
        ada: UserId,
        boss: UserId,
        bob: UserId,
        request: RequestId,
        role: ResourceRoleId,
    }

    /// Boss asked on Ada's behalf; Bob approves the one stage, which started at 09:00.
    fn world() -> World {
        let (ada, boss, bob) = (user("ada"), user("boss"), user("bob"));
        let package = AccessPackageId::new();
        let stage = StageRecord {
            id: steward_domain::ids::ApprovalStageId::new(),
            status: StageStatus::InProgress,
            review_result: ReviewResult::NotReviewed,
            approvers: vec![bob.id],
            decisions: Vec::new(),
            quorum: 1,
            justification_required: false,
            started: Some(t("2031-03-01T09:00:00Z")),
            escalate_at: None,
            deny_at: Some(t("2031-03-08T09:00:00Z")),
            completed: None,
        };
        let role = ResourceRoleId::new();
        let r = AssignmentRequest {
            id: RequestId::new(),
            request_type: RequestType::OnBehalfAdd,
            state: RequestState::PendingApproval,
            status: RequestStatus::PendingApproval,
            access_package_id: package,
            catalog_id: CatalogId::new(),
            policy_id: None,
            target_id: ada.id,
            requestor_id: Some(boss.id),
            assignment_id: None,
            detail: RequestDetail {
                window: Some(Window { start: t("2031-03-01T09:00:00Z"), end: None }),
                stages: vec![stage],
                failures: vec![format!("{role}: the group is gone")],
                ..RequestDetail::default()
            },
            created_date_time: t("2031-03-01T09:00:00Z"),
            completed_date_time: None,
            modified_date_time: t("2031-03-01T09:00:00Z"),
            due: None,
        };
        let grant = RoleGrant {
            role_id: role,
            role_name: "Member".into(),
            role_origin_id: "Member_g".into(),
            origin_system: "AadGroup".into(),
            resource_origin_id: "g".into(),
            resource_name: "Ledger users".into(),
        };
        let mut facts = Facts::default();
        facts.grants.insert(package, vec![grant]);
        let (ada_id, boss_id, bob_id, rid) = (ada.id, boss.id, bob.id, r.id);
        facts.users = [ada, boss, bob].into_iter().map(|u| (u.id, u)).collect();
        facts.requests.insert(r.id, r);
        World { facts, ada: ada_id, boss: boss_id, bob: bob_id, request: rid, role }
    }

    fn event(w: &World, activity: Activity, at: &str) -> AuditEvent {
        AuditEvent::new(t(at), activity, Initiator::System, REQUEST, w.request, w.request)
    }

    fn kinds(drafts: &[Draft]) -> Vec<(K, UserId)> {
        drafts.iter().map(|d| (d.kind, d.to)).collect()
    }

    #[test]
    fn the_event_a_stage_started_with_asks_its_approvers_and_tells_both_requestors() {
        let w = world();
        let d = plan(&event(&w, Activity::UserRequestsAssignment, "2031-03-01T09:00:00Z"), &w.facts);
        assert_eq!(
            kinds(&d),
            vec![(K::ActionRequired, w.bob), (K::RequestSubmitted, w.ada), (K::RequestSubmitted, w.boss)]
        );
        let Topic::Request(r) = &d[0].topic else { panic!("{d:?}") };
        assert_eq!((r.stage, r.deadline), (Some((1, 1)), Some(t("2031-03-08T09:00:00Z"))));
        assert_eq!(r.on_behalf_of.as_deref(), Some("boss"));
        assert!(d[0].source.starts_with("stage:"), "one notice per stage, whichever event of its moment");
        // A later event of the same request asks nobody again.
        let d = plan(&event(&w, Activity::ApprovalStageCompleted, "2031-03-02T09:00:00Z"), &w.facts);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn a_stage_decided_before_the_round_asks_nobody() {
        let mut w = world();
        if let Some(r) = w.facts.requests.get_mut(&w.request) {
            r.detail.stages[0].status = StageStatus::Completed;
        }
        let d = plan(&event(&w, Activity::UserRequestsAssignment, "2031-03-01T09:00:00Z"), &w.facts);
        assert_eq!(kinds(&d), vec![(K::RequestSubmitted, w.ada), (K::RequestSubmitted, w.boss)]);
    }

    #[test]
    fn a_failed_delivery_names_what_failed() {
        let w = world();
        let d = plan(&event(&w, Activity::Failed, "2031-03-02T09:00:00Z").failed(), &w.facts);
        assert_eq!(kinds(&d), vec![(K::DeliveryFailed, w.ada), (K::DeliveryFailed, w.boss)]);
        let Topic::Request(r) = &d[0].topic else { panic!("{d:?}") };
        assert_eq!(r.resources, vec!["Ledger users (Member): the group is gone".to_owned()]);
        assert_eq!(w.facts.failure(AccessPackageId::new(), &format!("{}: x", w.role)), format!("{}: x", w.role));
    }

    #[test]
    fn cancelling_tells_the_approvers_who_were_asked() {
        let mut w = world();
        if let Some(r) = w.facts.requests.get_mut(&w.request) {
            r.detail.stages[0].status = StageStatus::Skipped;
        }
        let d = plan(&event(&w, Activity::Cancel, "2031-03-02T09:00:00Z"), &w.facts);
        assert_eq!(kinds(&d), vec![(K::RequestCancelled, w.bob)]);
    }

    #[test]
    fn a_scheduled_start_is_told_once_before_delivery() {
        let mut w = world();
        if let Some(r) = w.facts.requests.get_mut(&w.request) {
            r.detail.stages.clear();
            r.detail.window = Some(Window { start: t("2031-03-05T00:00:00Z"), end: None });
        }
        let ready = plan(&event(&w, Activity::ReadyToFulfill, "2031-03-05T00:00:01Z"), &w.facts);
        let done = plan(&event(&w, Activity::Fulfill, "2031-03-05T00:00:02Z"), &w.facts);
        assert_eq!(kinds(&ready), vec![(K::ScheduledStart, w.ada), (K::ScheduledStart, w.boss)]);
        assert_eq!(ready[0].source, done[0].source, "the same notice from either event");
        assert_eq!(done.iter().filter(|d| d.kind == K::AccessDelivered).count(), 2);
        let Some(Draft { topic: Topic::Request(r), .. }) = done.iter().find(|d| d.kind == K::AccessDelivered) else {
            panic!("{done:?}")
        };
        assert_eq!(r.resources, vec!["Ledger users (Member)".to_owned()]);
    }

    #[test]
    fn events_about_other_things_mail_nobody() {
        let w = world();
        let mut e = event(&w, Activity::UpdatePackage, "2031-03-02T09:00:00Z");
        e.target_type = "AccessPackage".into();
        assert!(plan(&e, &w.facts).is_empty());
        let unknown = AuditEvent::new(
            t("2031-03-02T09:00:00Z"),
            Activity::Approve,
            Initiator::System,
            REQUEST,
            RequestId::new(),
            "x",
        );
        assert!(plan(&unknown, &w.facts).is_empty(), "a request not read mails nobody");
    }
}
