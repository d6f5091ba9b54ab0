//! Assignment requests: what someone asked for (add, extend or remove access to a package),
//! the answers and schedule they gave, and the request's state machine from submission
//! through approval and delivery to its end. Pure: time comes in as a parameter.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::approval::StageRecord;
use crate::enums::{RequestState, RequestType};
use crate::ids::{AccessPackageId, AssignmentId, CatalogId, PolicyId, RequestId, UserId};
use crate::policy::Question;
use crate::schedule::{Schedule, Window};

/// Longest justification accepted, in characters.
pub const JUSTIFICATION_MAX: usize = 4_000;
/// Longest answer accepted when its question sets no lower limit, in characters.
pub const ANSWER_MAX: usize = 4_000;

/// Graph's free-text `status` of a request: the detail behind its `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    Accepted,
    PendingApproval,
    PendingApprovalEscalated,
    /// Approved, waiting for its scheduled start.
    PendingNotBefore,
    Delivering,
    Delivered,
    PartiallyDelivered,
    DeliveryFailed,
    Denied,
    /// An approval stage or a custom extension's callback timed out.
    TimedOut,
    Canceled,
    /// A launch-and-wait custom extension was called; the request goes on when it calls back.
    WaitingForCallback,
}

impl RequestStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "Accepted",
            Self::PendingApproval => "PendingApproval",
            Self::PendingApprovalEscalated => "PendingApprovalEscalated",
            Self::PendingNotBefore => "PendingNotBefore",
            Self::Delivering => "Delivering",
            Self::Delivered => "Delivered",
            Self::PartiallyDelivered => "PartiallyDelivered",
            Self::DeliveryFailed => "DeliveryFailed",
            Self::Denied => "Denied",
            Self::TimedOut => "TimedOut",
            Self::Canceled => "Canceled",
            Self::WaitingForCallback => "WaitingForCallback",
        }
    }
}

impl std::str::FromStr for RequestStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [RequestStatus; 12] = [
            RequestStatus::Accepted,
            RequestStatus::PendingApproval,
            RequestStatus::PendingApprovalEscalated,
            RequestStatus::PendingNotBefore,
            RequestStatus::Delivering,
            RequestStatus::Delivered,
            RequestStatus::PartiallyDelivered,
            RequestStatus::DeliveryFailed,
            RequestStatus::Denied,
            RequestStatus::TimedOut,
            RequestStatus::Canceled,
            RequestStatus::WaitingForCallback,
        ];
        ALL.into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DomainError::invalid(format!("'{}' is not a request status.", crate::text::clip(s, 64))))
    }
}

/// An answer to one of the policy's questions. On the wire an `accessPackageAnswerString`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub question_id: String,
    pub value: String,
    pub display_value: Option<String>,
}

/// One assignment request.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentRequest {
    pub id: RequestId,
    pub request_type: RequestType,
    pub state: RequestState,
    pub status: RequestStatus,
    pub access_package_id: AccessPackageId,
    pub catalog_id: CatalogId,
    pub policy_id: Option<PolicyId>,
    /// Who the access is for.
    pub target_id: UserId,
    /// Who asked: the target, someone on their behalf, or `None` for an administrator token
    /// or the system.
    pub requestor_id: Option<UserId>,
    /// The assignment this request created, extends or removes.
    pub assignment_id: Option<AssignmentId>,
    pub detail: RequestDetail,
    pub created_date_time: Timestamp,
    pub completed_date_time: Option<Timestamp>,
    /// Changes on every write; the store's optimistic-concurrency token.
    pub modified_date_time: Timestamp,
    /// The next moment the clock must look at this request (stage escalation or timeout,
    /// scheduled start), if any.
    pub due: Option<Timestamp>,
}

/// The parts of a request that are read and written as a whole.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestDetail {
    pub justification: Option<String>,
    pub answers: Vec<Answer>,
    /// The schedule as asked for.
    pub schedule: Schedule,
    /// The window granted (adds) or the new window (extensions), once decided.
    pub window: Option<Window>,
    pub stages: Vec<StageRecord>,
    /// Why the request ended the way it did, in plain words (denial, failure, conflict).
    pub reason: Option<String>,
    /// Resource deliveries that failed, per resource, for `partiallyDelivered`/`deliveryFailed`.
    pub failures: Vec<String>,
    /// The custom extensions of the policy's stages, as they were when the request was submitted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<crate::extension::StageExtension>,
    /// The launch-and-wait callout the request waits for (status `WaitingForCallback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<crate::ids::CalloutInstanceId>,
    /// The person the request is for, when they are not in the directory yet: they become a
    /// guest (`target_id` is the id they will get) when the request's access starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<crate::external::GuestInvitation>,
}

impl AssignmentRequest {
    /// Whether the request still runs (not yet in a final state).
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            RequestState::Submitted
                | RequestState::PendingApproval
                | RequestState::Scheduled
                | RequestState::Delivering
        )
    }

    /// Whether `cancel` is allowed: before delivery starts, or after delivery failed.
    pub fn can_cancel(&self) -> bool {
        matches!(
            self.state,
            RequestState::Submitted
                | RequestState::PendingApproval
                | RequestState::Scheduled
                | RequestState::DeliveryFailed
        )
    }

    pub fn set(&mut self, state: RequestState, status: RequestStatus, now: Timestamp) {
        self.state = state;
        self.status = status;
        if !self.is_open() && self.completed_date_time.is_none() {
            self.completed_date_time = Some(now);
        }
        if !self.is_open() {
            self.due = None;
        }
    }

    /// The custom extension the request runs at `stage`, if its policy named one.
    pub fn extension_at(&self, stage: crate::enums::CustomExtensionStage) -> Option<crate::ids::CustomExtensionId> {
        self.detail.extensions.iter().find(|e| e.stage == stage).map(|e| e.extension)
    }

    /// Whether this is a request to add access (rather than extend or remove it).
    pub fn is_add(&self) -> bool {
        is_add(self.request_type)
    }
}

pub fn is_add(t: RequestType) -> bool {
    matches!(t, RequestType::UserAdd | RequestType::AdminAdd | RequestType::SystemAdd | RequestType::OnBehalfAdd)
}
pub fn is_update(t: RequestType) -> bool {
    matches!(t, RequestType::UserUpdate | RequestType::AdminUpdate | RequestType::SystemUpdate)
}
pub fn is_remove(t: RequestType) -> bool {
    matches!(t, RequestType::UserRemove | RequestType::AdminRemove | RequestType::SystemRemove)
}

/// Checks a justification against the policy: present when required, not too long.
pub fn check_justification(justification: Option<&str>, required: bool) -> Result<Option<String>, DomainError> {
    let j = justification.map(str::trim).filter(|j| !j.is_empty());
    if required && j.is_none() {
        return Err(DomainError::invalid("The policy requires a justification for this request."));
    }
    if let Some(j) = j
        && j.chars().count() > JUSTIFICATION_MAX
    {
        return Err(DomainError::invalid(format!("The justification is longer than {JUSTIFICATION_MAX} characters.")));
    }
    Ok(j.map(str::to_owned))
}

/// Checks answers against the policy's questions: every required question answered, no answer
/// to a question the policy does not ask, text answers matching their pattern, choices among
/// the offered values. Returns the answers in question order, each with its display value.
pub fn check_answers(questions: &[Question], answers: Vec<Answer>) -> Result<Vec<Answer>, DomainError> {
    let mut remaining = answers;
    let mut checked = Vec::with_capacity(remaining.len());
    for (n, q) in questions.iter().enumerate() {
        let base = q.base();
        let id = base.id.as_deref().unwrap_or_default();
        let label = base.text.as_deref().unwrap_or(id);
        let found: Vec<Answer> = {
            let (mine, rest): (Vec<_>, Vec<_>) = remaining.into_iter().partition(|a| a.question_id == id);
            remaining = rest;
            mine
        };
        if found.len() > 1 {
            return Err(DomainError::invalid(format!("Question {} ('{label}') is answered more than once.", n + 1)));
        }
        let Some(mut answer) = found.into_iter().next().filter(|a| !a.value.trim().is_empty()) else {
            if base.is_required {
                return Err(DomainError::invalid(format!("Question {} ('{label}') requires an answer.", n + 1)));
            }
            continue;
        };
        match q {
            Question::TextInput { regex_pattern, is_single_line_question, .. } => {
                if answer.value.chars().count() > ANSWER_MAX {
                    return Err(DomainError::invalid(format!(
                        "The answer to question {} ('{label}') is longer than {ANSWER_MAX} characters.",
                        n + 1
                    )));
                }
                if *is_single_line_question && answer.value.contains(['\n', '\r']) {
                    return Err(DomainError::invalid(format!(
                        "The answer to question {} ('{label}') must be a single line.",
                        n + 1
                    )));
                }
                if let Some(p) = regex_pattern.as_deref().filter(|p| !p.is_empty()) {
                    let re = answer_pattern(p)?;
                    if !re.is_match(&answer.value) {
                        return Err(DomainError::invalid(format!(
                            "The answer to question {} ('{label}') does not match the required pattern {p}.",
                            n + 1
                        )));
                    }
                }
                answer.display_value = Some(answer.value.clone());
            }
            Question::MultipleChoice { choices, is_multiple_selection_allowed, .. } => {
                let picked: Vec<&str> = if *is_multiple_selection_allowed {
                    answer.value.split(',').map(str::trim).filter(|v| !v.is_empty()).collect()
                } else {
                    vec![answer.value.as_str()]
                };
                let mut shown = Vec::new();
                for v in picked {
                    let Some(c) = choices.iter().find(|c| c.actual_value == v) else {
                        let allowed: Vec<&str> = choices.iter().map(|c| c.actual_value.as_str()).collect();
                        return Err(DomainError::invalid(format!(
                            "'{}' is not a choice of question {} ('{label}'); choose one of: {}.",
                            crate::text::clip(v, 64),
                            n + 1,
                            allowed.join(", ")
                        )));
                    };
                    shown.push(c.text.clone().unwrap_or_else(|| c.actual_value.clone()));
                }
                answer.display_value = Some(shown.join(", "));
            }
        }
        checked.push(answer);
    }
    if let Some(extra) = remaining.first() {
        return Err(DomainError::invalid(format!(
            "The answer to question '{}' does not belong to any question of the policy.",
            crate::text::clip(&extra.question_id, 64)
        )));
    }
    Ok(checked)
}

/// A question's pattern, matched against the whole answer (as Graph does).
pub fn answer_pattern(p: &str) -> Result<regex::Regex, DomainError> {
    regex::RegexBuilder::new(&format!("^(?:{p})$")).size_limit(1 << 20).build().map_err(|e| {
        DomainError::invalid(format!("regexPattern '{}' is not a valid pattern: {e}", crate::text::clip(p, 64)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Choice, QuestionBase};

    fn text_q(id: &str, required: bool, pattern: Option<&str>) -> Question {
        Question::TextInput {
            base: QuestionBase {
                id: Some(id.into()),
                text: Some(id.into()),
                is_required: required,
                ..Default::default()
            },
            is_single_line_question: true,
            regex_pattern: pattern.map(str::to_owned),
        }
    }
    fn choice_q(id: &str, values: &[&str]) -> Question {
        Question::MultipleChoice {
            base: QuestionBase { id: Some(id.into()), text: Some(id.into()), is_required: true, ..Default::default() },
            choices: values
                .iter()
                .map(|v| Choice { actual_value: (*v).into(), text: Some(v.to_uppercase()), localizations: vec![] })
                .collect(),
            is_multiple_selection_allowed: false,
        }
    }
    fn a(q: &str, v: &str) -> Answer {
        Answer { question_id: q.into(), value: v.into(), display_value: None }
    }

    #[test]
    fn answers_are_checked_against_their_questions() {
        let qs = [text_q("ticket", true, Some("[A-Z]{3}-[0-9]+")), choice_q("env", &["dev", "prod"])];
        let ok = check_answers(&qs, vec![a("env", "prod"), a("ticket", "ABC-12")]).unwrap();
        assert_eq!(ok[0].question_id, "ticket");
        assert_eq!(ok[1].display_value.as_deref(), Some("PROD"));
        let e = check_answers(&qs, vec![a("env", "prod")]).unwrap_err().to_string();
        assert!(e.contains("requires an answer"), "{e}");
        let e = check_answers(&qs, vec![a("ticket", "ABC-12x"), a("env", "prod")]).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
        let e = check_answers(&qs, vec![a("ticket", "ABC-1"), a("env", "test")]).unwrap_err().to_string();
        assert!(e.contains("not a choice"), "{e}");
        let e = check_answers(&qs, vec![a("ticket", "ABC-1"), a("env", "dev"), a("zzz", "1")]).unwrap_err().to_string();
        assert!(e.contains("does not belong"), "{e}");
        let e = check_answers(&qs, vec![a("ticket", "ABC-1\nx"), a("env", "dev")]).unwrap_err().to_string();
        assert!(e.contains("single line"), "{e}");
    }

    #[test]
    fn justification_is_required_only_when_the_policy_says_so() {
        assert_eq!(check_justification(None, false).unwrap(), None);
        assert!(check_justification(Some("   "), true).is_err());
        assert_eq!(check_justification(Some(" why "), true).unwrap().as_deref(), Some("why"));
    }
}
