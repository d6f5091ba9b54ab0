//! The approval of one assignment request: its stages in order, who may decide each, the
//! decisions taken, escalation and timeout. Approvers arrive resolved to user ids (the
//! application looks up managers, group members and sponsors); this module only decides.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ids::{ApprovalStageId, UserId};
use crate::policy::ApprovalStage;

/// Where a stage stands. On the wire these are Graph's `approvalStage.status` strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageStatus {
    NotStarted,
    InProgress,
    /// Handed to the escalation approvers after `durationBeforeEscalation`.
    Escalated,
    Completed,
    /// Nobody decided within `durationBeforeAutomaticDenial`.
    Expired,
    /// An earlier stage denied or the request was cancelled: this stage never ran.
    Skipped,
}

impl StageStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "NotStarted",
            Self::InProgress => "InProgress",
            Self::Escalated => "Escalated",
            Self::Completed => "Completed",
            Self::Expired => "Expired",
            Self::Skipped => "Skipped",
        }
    }
    pub const fn is_open(self) -> bool {
        matches!(self, Self::InProgress | Self::Escalated)
    }
}

/// A stage's result, as Graph's `approvalStage.reviewResult` strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewResult {
    NotReviewed,
    Approve,
    Deny,
}

impl ReviewResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotReviewed => "NotReviewed",
            Self::Approve => "Approve",
            Self::Deny => "Deny",
        }
    }
    /// Reads what clients send: `Approve`/`Approved`, `Deny`/`Denied`, any letter case.
    pub fn parse_decision(s: &str) -> Option<bool> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("approve") || s.eq_ignore_ascii_case("approved") {
            Some(true)
        } else if s.eq_ignore_ascii_case("deny") || s.eq_ignore_ascii_case("denied") {
            Some(false)
        } else {
            None
        }
    }
}

/// One approver's decision on a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub by: UserId,
    pub at: Timestamp,
    pub approve: bool,
    pub justification: Option<String>,
}

/// One stage of a request's approval, as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    pub id: ApprovalStageId,
    pub status: StageStatus,
    pub review_result: ReviewResult,
    /// Who may decide now: the primary approvers (or their fallbacks), after escalation the
    /// escalation approvers (or theirs). Never the target or the requestor.
    pub approvers: Vec<UserId>,
    pub decisions: Vec<Decision>,
    /// Approvals needed to complete the stage (Graph: always 1).
    pub quorum: u32,
    pub justification_required: bool,
    pub started: Option<Timestamp>,
    /// When the stage is handed to the escalation approvers, if escalation is on.
    pub escalate_at: Option<Timestamp>,
    /// When the stage denies by itself, if it has a timeout.
    pub deny_at: Option<Timestamp>,
    pub completed: Option<Timestamp>,
}

impl StageRecord {
    /// A stage not started yet, from its policy settings.
    pub fn planned(settings: &ApprovalStage) -> Self {
        Self {
            id: ApprovalStageId::new(),
            status: StageStatus::NotStarted,
            review_result: ReviewResult::NotReviewed,
            approvers: Vec::new(),
            decisions: Vec::new(),
            quorum: settings.quorum.unwrap_or(1).max(1),
            justification_required: settings.is_approver_justification_required,
            started: None,
            escalate_at: None,
            deny_at: None,
            completed: None,
        }
    }

    /// The deciding decision: the deny, or the last approval that completed the stage.
    pub fn deciding(&self) -> Option<&Decision> {
        match self.review_result {
            ReviewResult::NotReviewed => None,
            ReviewResult::Deny => self.decisions.iter().find(|d| !d.approve),
            ReviewResult::Approve => self.decisions.last(),
        }
    }

    pub fn approvals(&self) -> usize {
        self.decisions.iter().filter(|d| d.approve).count()
    }
}

/// Why a decision cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("The approval stage was not found on this request.")]
    UnknownStage,
    #[error("This stage is not open for decisions: it is {0}.")]
    NotOpen(&'static str),
    #[error("The caller is not an approver of this stage.")]
    NotApprover,
    #[error("The caller already decided this stage.")]
    AlreadyDecided,
    #[error("A requestor or target cannot approve their own request.")]
    OwnRequest,
    #[error("This stage requires a justification from the approver.")]
    JustificationRequired,
}

/// What a decision led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded; the stage needs more approvals (quorum).
    Recorded,
    /// The stage is complete and stage `next` (an index) must start.
    NextStage(usize),
    /// Every stage approved.
    Approved,
    /// The request is denied.
    Denied,
}

/// Starts stage `index` at `now` with its resolved approvers. An empty approver list means
/// nobody can decide: the stage is left to time out, or denies at once without a timeout.
pub fn start_stage(
    stages: &mut [StageRecord],
    settings: &[ApprovalStage],
    index: usize,
    approvers: Vec<UserId>,
    now: Timestamp,
) -> Outcome {
    let (Some(stage), Some(cfg)) = (stages.get_mut(index), settings.get(index)) else { return Outcome::Approved };
    stage.status = StageStatus::InProgress;
    stage.started = Some(now);
    stage.approvers = approvers;
    let after = |d: Option<crate::duration::GraphDuration>| {
        d.map(|d| now.saturating_add(d.as_signed().max(SignedDuration::ZERO)).unwrap_or(Timestamp::MAX))
    };
    stage.deny_at = after(cfg.duration_before_automatic_denial);
    stage.escalate_at = if cfg.is_escalation_enabled { after(cfg.duration_before_escalation) } else { None };
    if stage.approvers.is_empty() && stage.deny_at.is_none() && stage.escalate_at.is_none() {
        stage.status = StageStatus::Expired;
        stage.review_result = ReviewResult::Deny;
        stage.completed = Some(now);
        skip_rest(stages, index + 1);
        return Outcome::Denied;
    }
    Outcome::Recorded
}

/// The index of the stage that is open now, if any.
pub fn open_stage(stages: &[StageRecord]) -> Option<usize> {
    stages.iter().position(|s| s.status.is_open())
}

/// Records `by`'s decision on stage `stage_id`. `parties` are the request's target and
/// requestor, who never decide on it.
pub fn decide(
    stages: &mut [StageRecord],
    stage_id: ApprovalStageId,
    by: UserId,
    parties: &[UserId],
    approve: bool,
    justification: Option<String>,
    now: Timestamp,
) -> Result<Outcome, DecisionError> {
    let index = stages.iter().position(|s| s.id == stage_id).ok_or(DecisionError::UnknownStage)?;
    let stage = stages.get_mut(index).ok_or(DecisionError::UnknownStage)?;
    if !stage.status.is_open() {
        return Err(DecisionError::NotOpen(stage.status.as_str()));
    }
    if parties.contains(&by) {
        return Err(DecisionError::OwnRequest);
    }
    if !stage.approvers.contains(&by) {
        return Err(DecisionError::NotApprover);
    }
    if stage.decisions.iter().any(|d| d.by == by) {
        return Err(DecisionError::AlreadyDecided);
    }
    let justification = justification.filter(|j| !j.trim().is_empty());
    if stage.justification_required && justification.is_none() {
        return Err(DecisionError::JustificationRequired);
    }
    stage.decisions.push(Decision { by, at: now, approve, justification });
    if !approve {
        stage.review_result = ReviewResult::Deny;
        stage.status = StageStatus::Completed;
        stage.completed = Some(now);
        skip_rest(stages, index + 1);
        return Ok(Outcome::Denied);
    }
    if (stage.approvals() as u64) < u64::from(stage.quorum) {
        return Ok(Outcome::Recorded);
    }
    stage.review_result = ReviewResult::Approve;
    stage.status = StageStatus::Completed;
    stage.completed = Some(now);
    Ok(if index + 1 < stages.len() { Outcome::NextStage(index + 1) } else { Outcome::Approved })
}

/// What the clock asks of the open stage at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Nothing is due.
    Idle,
    /// Hand stage `index` to its escalation approvers.
    Escalate(usize),
    /// Stage `index` timed out: the request is denied.
    TimeOut(usize),
}

pub fn due(stages: &[StageRecord], now: Timestamp) -> Timer {
    let Some(i) = open_stage(stages) else { return Timer::Idle };
    let Some(s) = stages.get(i) else { return Timer::Idle };
    if s.deny_at.is_some_and(|t| t <= now) {
        Timer::TimeOut(i)
    } else if s.status == StageStatus::InProgress && s.escalate_at.is_some_and(|t| t <= now) {
        Timer::Escalate(i)
    } else {
        Timer::Idle
    }
}

/// The next moment the open stage needs the clock, if any.
pub fn next_due(stages: &[StageRecord]) -> Option<Timestamp> {
    let s = stages.get(open_stage(stages)?)?;
    let escalate = if s.status == StageStatus::InProgress { s.escalate_at } else { None };
    match (escalate, s.deny_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Hands stage `index` to `approvers` (the escalation approvers).
pub fn escalate(stages: &mut [StageRecord], index: usize, approvers: Vec<UserId>) {
    if let Some(s) = stages.get_mut(index) {
        s.status = StageStatus::Escalated;
        s.escalate_at = None;
        s.approvers = approvers;
    }
}

/// Stage `index` timed out.
pub fn time_out(stages: &mut [StageRecord], index: usize, now: Timestamp) {
    if let Some(s) = stages.get_mut(index) {
        s.status = StageStatus::Expired;
        s.review_result = ReviewResult::Deny;
        s.completed = Some(now);
    }
    skip_rest(stages, index + 1);
}

/// Closes every stage that has not finished (on cancel, deny or timeout).
pub fn skip_rest(stages: &mut [StageRecord], from: usize) {
    for s in stages.iter_mut().skip(from) {
        if s.status == StageStatus::NotStarted || s.status.is_open() {
            s.status = StageStatus::Skipped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::GraphDuration;
    use crate::policy::SubjectSet;

    fn cfg(quorum: Option<u32>, deny_days: Option<i64>, escalate_days: Option<i64>) -> ApprovalStage {
        ApprovalStage {
            duration_before_automatic_denial: deny_days.map(|d| GraphDuration::from_secs(d * 86_400)),
            is_approver_justification_required: false,
            is_escalation_enabled: escalate_days.is_some(),
            duration_before_escalation: escalate_days.map(|d| GraphDuration::from_secs(d * 86_400)),
            primary_approvers: vec![SubjectSet::RequestorManager { manager_level: Some(1) }],
            fallback_primary_approvers: vec![],
            escalation_approvers: vec![],
            fallback_escalation_approvers: vec![],
            approver_information_visibility: None,
            quorum,
        }
    }
    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn stages_run_in_order_and_any_deny_ends_the_request() {
        let settings = [cfg(None, Some(14), None), cfg(None, Some(14), None)];
        let mut stages: Vec<_> = settings.iter().map(StageRecord::planned).collect();
        let (a, b, target) = (UserId::new(), UserId::new(), UserId::new());
        let now = t("2030-01-01T00:00:00Z");
        assert_eq!(start_stage(&mut stages, &settings, 0, vec![a], now), Outcome::Recorded);
        let s0 = stages[0].id;
        assert_eq!(decide(&mut stages, s0, b, &[target], true, None, now), Err(DecisionError::NotApprover));
        assert_eq!(decide(&mut stages, s0, a, &[target], true, None, now), Ok(Outcome::NextStage(1)));
        assert_eq!(decide(&mut stages, s0, a, &[target], true, None, now), Err(DecisionError::NotOpen("Completed")));
        start_stage(&mut stages, &settings, 1, vec![b], now);
        let s1 = stages[1].id;
        assert_eq!(decide(&mut stages, s1, b, &[target], false, None, now), Ok(Outcome::Denied));
        assert_eq!(stages[1].review_result, ReviewResult::Deny);
    }

    #[test]
    fn a_quorum_needs_that_many_distinct_approvals() {
        let settings = [cfg(Some(2), None, None)];
        let mut stages: Vec<_> = settings.iter().map(StageRecord::planned).collect();
        let (a, b) = (UserId::new(), UserId::new());
        let now = t("2030-01-01T00:00:00Z");
        start_stage(&mut stages, &settings, 0, vec![a, b], now);
        let id = stages[0].id;
        assert_eq!(decide(&mut stages, id, a, &[], true, None, now), Ok(Outcome::Recorded));
        assert_eq!(decide(&mut stages, id, a, &[], true, None, now), Err(DecisionError::AlreadyDecided));
        assert_eq!(decide(&mut stages, id, b, &[], true, None, now), Ok(Outcome::Approved));
    }

    #[test]
    fn the_requestor_never_approves_and_justification_is_enforced() {
        let mut c = cfg(None, None, None);
        c.is_approver_justification_required = true;
        let settings = [c];
        let mut stages: Vec<_> = settings.iter().map(StageRecord::planned).collect();
        let me = UserId::new();
        let now = t("2030-01-01T00:00:00Z");
        start_stage(&mut stages, &settings, 0, vec![me], now);
        let id = stages[0].id;
        assert_eq!(decide(&mut stages, id, me, &[me], true, None, now), Err(DecisionError::OwnRequest));
        let other = UserId::new();
        stages[0].approvers.push(other);
        assert_eq!(
            decide(&mut stages, id, other, &[me], true, Some("  ".into()), now),
            Err(DecisionError::JustificationRequired)
        );
        assert_eq!(decide(&mut stages, id, other, &[me], true, Some("ok".into()), now), Ok(Outcome::Approved));
    }

    #[test]
    fn escalation_comes_before_the_timeout() {
        let settings = [cfg(None, Some(4), Some(1))];
        let mut stages: Vec<_> = settings.iter().map(StageRecord::planned).collect();
        let now = t("2030-01-01T00:00:00Z");
        start_stage(&mut stages, &settings, 0, vec![UserId::new()], now);
        assert_eq!(next_due(&stages), Some(t("2030-01-02T00:00:00Z")));
        assert_eq!(due(&stages, t("2030-01-01T12:00:00Z")), Timer::Idle);
        assert_eq!(due(&stages, t("2030-01-02T00:00:00Z")), Timer::Escalate(0));
        let esc = UserId::new();
        escalate(&mut stages, 0, vec![esc]);
        assert_eq!(next_due(&stages), Some(t("2030-01-05T00:00:00Z")));
        assert_eq!(due(&stages, t("2030-01-05T00:00:00Z")), Timer::TimeOut(0));
        time_out(&mut stages, 0, t("2030-01-05T00:00:00Z"));
        assert_eq!(stages[0].status, StageStatus::Expired);
        assert_eq!(open_stage(&stages), None);
    }

    #[test]
    fn a_stage_nobody_can_decide_and_nothing_times_out_denies_at_once() {
        let settings = [cfg(None, None, None)];
        let mut stages: Vec<_> = settings.iter().map(StageRecord::planned).collect();
        let now = t("2030-01-01T00:00:00Z");
        assert_eq!(start_stage(&mut stages, &settings, 0, vec![], now), Outcome::Denied);
    }
}
