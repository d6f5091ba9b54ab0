//! Assignment policies: who may request an access package, how requests are approved, how
//! long access lasts and what requestors are asked, in Graph's shapes, with the checks that
//! make a policy coherent before it is stored. Acting on a policy (requests, approvals,
//! automatic assignment) belongs to the request lifecycle, not here.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DomainError;
use crate::duration::GraphDuration;
use crate::enums::{AllowedTargetScope, ApproverInformationVisibility, ExpirationPatternType};
use crate::ids::{AccessPackageId, CatalogId, PolicyId};
use crate::text::DisplayName;

/// A set of people (or service principals): who may request, who approves, who reviews.
/// Polymorphic on the wire: `@odata.type` says which kind, and must be present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@odata.type")]
pub enum SubjectSet {
    #[serde(rename = "#microsoft.graph.singleUser", rename_all = "camelCase")]
    SingleUser { user_id: Option<String>, description: Option<String> },
    #[serde(rename = "#microsoft.graph.groupMembers", rename_all = "camelCase")]
    GroupMembers { group_id: Option<String>, description: Option<String> },
    #[serde(rename = "#microsoft.graph.requestorManager", rename_all = "camelCase")]
    RequestorManager { manager_level: Option<i32> },
    #[serde(rename = "#microsoft.graph.targetManager", rename_all = "camelCase")]
    TargetManager { manager_level: Option<i32> },
    #[serde(rename = "#microsoft.graph.internalSponsors")]
    InternalSponsors {},
    #[serde(rename = "#microsoft.graph.externalSponsors")]
    ExternalSponsors {},
    #[serde(rename = "#microsoft.graph.targetUserSponsors")]
    TargetUserSponsors {},
    #[serde(rename = "#microsoft.graph.connectedOrganizationMembers", rename_all = "camelCase")]
    ConnectedOrganizationMembers { connected_organization_id: Option<String>, description: Option<String> },
    #[serde(rename = "#microsoft.graph.attributeRuleMembers", rename_all = "camelCase")]
    AttributeRuleMembers { membership_rule: Option<String>, description: Option<String> },
    #[serde(rename = "#microsoft.graph.singleServicePrincipal", rename_all = "camelCase")]
    SingleServicePrincipal { service_principal_id: Option<String>, description: Option<String> },
}

/// The `@odata.type` names of every polymorphic value a policy holds, in canonical spelling.
pub const POLYMORPHIC_TYPES: &[&str] = &[
    "#microsoft.graph.singleUser",
    "#microsoft.graph.groupMembers",
    "#microsoft.graph.requestorManager",
    "#microsoft.graph.targetManager",
    "#microsoft.graph.internalSponsors",
    "#microsoft.graph.externalSponsors",
    "#microsoft.graph.targetUserSponsors",
    "#microsoft.graph.connectedOrganizationMembers",
    "#microsoft.graph.attributeRuleMembers",
    "#microsoft.graph.singleServicePrincipal",
    "#microsoft.graph.accessPackageTextInputQuestion",
    "#microsoft.graph.accessPackageMultipleChoiceQuestion",
];

/// Rewrites every `@odata.type` in `v` that names a known type, with or without `#` and in
/// any letter case, to its canonical spelling, so the typed model can match it exactly.
pub fn canonicalize_types(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(t)) = m.get_mut("@odata.type") {
                let bare = t.strip_prefix('#').unwrap_or(t);
                if let Some(c) =
                    POLYMORPHIC_TYPES.iter().find(|c| c.get(1..).is_some_and(|c| c.eq_ignore_ascii_case(bare)))
                {
                    *t = (*c).to_owned();
                }
            }
            m.values_mut().for_each(canonicalize_types);
        }
        Value::Array(a) => a.iter_mut().for_each(canonicalize_types),
        _ => {}
    }
}

impl SubjectSet {
    /// Whether this kind of set can name approvers (as opposed to requestors only).
    pub fn can_approve(&self) -> bool {
        matches!(
            self,
            Self::SingleUser { .. }
                | Self::GroupMembers { .. }
                | Self::RequestorManager { .. }
                | Self::TargetManager { .. }
                | Self::InternalSponsors {}
                | Self::ExternalSponsors {}
                | Self::TargetUserSponsors {}
        )
    }
}

/// When an assignment ends.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExpirationPattern {
    #[serde(rename = "type")]
    pub kind: Option<ExpirationPatternType>,
    pub duration: Option<GraphDuration>,
    #[serde(with = "crate::time::serde_opt_ts")]
    pub end_date_time: Option<Timestamp>,
}

/// Who may ask, and for what.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestorSettings {
    pub enable_targets_to_self_add_access: bool,
    pub enable_targets_to_self_update_access: bool,
    pub enable_targets_to_self_remove_access: bool,
    pub allow_custom_assignment_schedule: bool,
    pub enable_on_behalf_requestors_to_add_access: bool,
    pub enable_on_behalf_requestors_to_update_access: bool,
    pub enable_on_behalf_requestors_to_remove_access: bool,
    pub on_behalf_requestors: Vec<SubjectSet>,
}

/// One approval stage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApprovalStage {
    pub duration_before_automatic_denial: Option<GraphDuration>,
    pub is_approver_justification_required: bool,
    pub is_escalation_enabled: bool,
    pub duration_before_escalation: Option<GraphDuration>,
    pub primary_approvers: Vec<SubjectSet>,
    pub fallback_primary_approvers: Vec<SubjectSet>,
    pub escalation_approvers: Vec<SubjectSet>,
    pub fallback_escalation_approvers: Vec<SubjectSet>,
    pub approver_information_visibility: Option<ApproverInformationVisibility>,
    /// Beyond Graph: approvals needed to complete the stage (default 1). Graph clients that
    /// do not know it never send it and never see it unless it was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
}

/// Whether and how requests are approved.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApprovalSettings {
    pub is_approval_required_for_add: bool,
    pub is_approval_required_for_update: bool,
    pub is_requestor_justification_required: bool,
    pub stages: Vec<ApprovalStage>,
}

/// A text in one language.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalizedText {
    pub language_code: String,
    pub text: String,
}

/// One choice of a multiple-choice question.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Choice {
    pub actual_value: String,
    pub text: Option<String>,
    pub localizations: Vec<LocalizedText>,
}

/// What every question has.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QuestionBase {
    pub id: Option<String>,
    pub text: Option<String>,
    pub is_required: bool,
    pub is_answer_editable: bool,
    pub sequence: Option<i32>,
    pub localizations: Vec<LocalizedText>,
}

/// A question requestors answer. Polymorphic: `@odata.type` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@odata.type")]
pub enum Question {
    #[serde(rename = "#microsoft.graph.accessPackageTextInputQuestion", rename_all = "camelCase")]
    TextInput {
        #[serde(flatten)]
        base: QuestionBase,
        #[serde(default)]
        is_single_line_question: bool,
        #[serde(default)]
        regex_pattern: Option<String>,
    },
    #[serde(rename = "#microsoft.graph.accessPackageMultipleChoiceQuestion", rename_all = "camelCase")]
    MultipleChoice {
        #[serde(flatten)]
        base: QuestionBase,
        #[serde(default)]
        choices: Vec<Choice>,
        #[serde(default)]
        is_multiple_selection_allowed: bool,
    },
}

impl Question {
    pub fn base(&self) -> &QuestionBase {
        match self {
            Self::TextInput { base, .. } | Self::MultipleChoice { base, .. } => base,
        }
    }
    pub fn base_mut(&mut self) -> &mut QuestionBase {
        match self {
            Self::TextInput { base, .. } | Self::MultipleChoice { base, .. } => base,
        }
    }
}

/// Present on automatic-assignment policies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutomaticRequestSettings {
    pub request_access_for_allowed_targets: bool,
    pub remove_access_when_target_leaves_allowed_targets: bool,
    pub grace_period_before_access_removal: Option<GraphDuration>,
}

/// The settings of a policy: everything a client writes but its name and description.
/// Unknown properties are refused, so a misspelt setting is not silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySettings {
    /// Without it a policy is for direct assignment by administrators only.
    #[serde(default = "not_specified")]
    pub allowed_target_scope: AllowedTargetScope,
    #[serde(default)]
    pub specific_allowed_targets: Vec<SubjectSet>,
    #[serde(default)]
    pub expiration: Option<ExpirationPattern>,
    #[serde(default)]
    pub requestor_settings: Option<RequestorSettings>,
    #[serde(default)]
    pub request_approval_settings: Option<ApprovalSettings>,
    #[serde(default)]
    pub questions: Vec<Question>,
    #[serde(default)]
    pub automatic_request_settings: Option<AutomaticRequestSettings>,
    /// Stored and returned now; acted on by access reviews.
    #[serde(default)]
    pub review_settings: Option<Value>,
    /// Graph's `isAssignmentNotificationDisabled` and Steward's `disabledNotifications`
    /// (`notification::PolicySwitches`), checked by `check`, acted on by notifications.
    #[serde(default)]
    pub notification_settings: Option<Value>,
    /// Which catalog custom extension runs at which stage (one per stage); the application
    /// checks that each exists in the policy's catalog and fits its stage.
    #[serde(default)]
    pub custom_extension_stage_settings: Vec<crate::extension::StageSetting>,
    /// Steward's conditional requirements at request and approval time (not in Graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_requirements: Option<crate::condition::ConditionalRequirements>,
}

fn not_specified() -> AllowedTargetScope {
    AllowedTargetScope::NotSpecified
}

/// An assignment policy of one access package.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentPolicy {
    pub id: PolicyId,
    #[serde(skip)]
    pub access_package_id: AccessPackageId,
    #[serde(skip)]
    pub catalog_id: CatalogId,
    pub display_name: DisplayName,
    pub description: Option<String>,
    #[serde(flatten)]
    pub settings: PolicySettings,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
    #[serde(with = "crate::time::serde_ts")]
    pub modified_date_time: Timestamp,
}

fn positive(d: Option<GraphDuration>, what: &str) -> Result<(), DomainError> {
    match d {
        Some(d) if d.as_signed().is_negative() || d.as_signed().is_zero() => {
            Err(DomainError::invalid(format!("{what} must be longer than zero; got {d}.")))
        }
        _ => Ok(()),
    }
}

impl PolicySettings {
    /// Makes the settings coherent or says what is wrong: targets for specific scopes, an
    /// expiration whose type matches its fields, stages with approvers where approval is
    /// required, escalation that comes before denial, questions with text and choices. Gives
    /// questions without an id a new one.
    pub fn check(&mut self) -> Result<(), DomainError> {
        use AllowedTargetScope as S;
        let specific = matches!(
            self.allowed_target_scope,
            S::SpecificDirectoryUsers | S::SpecificConnectedOrganizationUsers | S::SpecificDirectoryServicePrincipals
        );
        if specific && self.specific_allowed_targets.is_empty() {
            return Err(DomainError::invalid(format!(
                "allowedTargetScope {} needs at least one entry in specificAllowedTargets.",
                self.allowed_target_scope
            )));
        }
        if let Some(e) = &self.expiration {
            check_expiration(e)?;
        }
        if let Some(a) = &self.request_approval_settings {
            if (a.is_approval_required_for_add || a.is_approval_required_for_update) && a.stages.is_empty() {
                return Err(DomainError::invalid(
                    "Approval is required, so requestApprovalSettings.stages needs at least one stage.",
                ));
            }
            for (i, s) in a.stages.iter().enumerate() {
                check_stage(i + 1, s)?;
            }
        }
        if let Some(r) = &self.requestor_settings
            && (r.enable_on_behalf_requestors_to_add_access
                || r.enable_on_behalf_requestors_to_update_access
                || r.enable_on_behalf_requestors_to_remove_access)
            && r.on_behalf_requestors.is_empty()
        {
            return Err(DomainError::invalid(
                "On-behalf requests are enabled, so requestorSettings.onBehalfRequestors must name who may make them.",
            ));
        }
        if let Some(c) = &self.conditional_requirements {
            c.check()?;
        }
        if let Some(auto) = &self.automatic_request_settings {
            let rule_based =
                self.specific_allowed_targets.iter().any(|t| matches!(t, SubjectSet::AttributeRuleMembers { .. }));
            if auto.request_access_for_allowed_targets && !rule_based {
                return Err(DomainError::invalid(
                    "An automatic assignment policy needs an attributeRuleMembers entry in specificAllowedTargets.",
                ));
            }
            if auto.grace_period_before_access_removal.is_some_and(|d| d.as_signed().is_negative()) {
                return Err(DomainError::invalid(
                    "automaticRequestSettings.gracePeriodBeforeAccessRemoval must not be negative.",
                ));
            }
        }
        for t in &self.specific_allowed_targets {
            match t {
                SubjectSet::AttributeRuleMembers { membership_rule: None, .. } => {
                    return Err(DomainError::invalid("attributeRuleMembers needs a membershipRule."));
                }
                // A rule that cannot be evaluated is refused when written, with the parser's
                // position, rather than admitting nobody later without a word.
                SubjectSet::AttributeRuleMembers { membership_rule: Some(text), .. } => {
                    crate::rule::MembershipRule::parse(text).map_err(|e| {
                        DomainError::invalid(format!("attributeRuleMembers.membershipRule is not valid: {e}"))
                    })?;
                }
                _ => {}
            }
        }
        for (i, q) in self.questions.iter_mut().enumerate() {
            check_question(i + 1, q)?;
        }
        crate::notification::PolicySwitches::parse(self.notification_settings.as_ref())?;
        crate::extension::check_stage_settings(&mut self.custom_extension_stage_settings)
    }

    /// The extension that runs at `stage`, if any.
    pub fn extension_at(&self, stage: crate::enums::CustomExtensionStage) -> Option<crate::ids::CustomExtensionId> {
        self.custom_extension_stage_settings.iter().find(|s| s.stage == stage).map(|s| s.custom_extension.id)
    }
}

fn check_expiration(e: &ExpirationPattern) -> Result<(), DomainError> {
    use ExpirationPatternType as T;
    let kind = e.kind.unwrap_or(match (e.duration, e.end_date_time) {
        (Some(_), _) => T::AfterDuration,
        (None, Some(_)) => T::AfterDateTime,
        (None, None) => T::NoExpiration,
    });
    match kind {
        T::AfterDuration if e.duration.is_none() || e.end_date_time.is_some() => {
            Err(DomainError::invalid("expiration of type afterDuration needs a duration and no endDateTime."))
        }
        T::AfterDateTime if e.end_date_time.is_none() || e.duration.is_some() => {
            Err(DomainError::invalid("expiration of type afterDateTime needs an endDateTime and no duration."))
        }
        T::NoExpiration if e.duration.is_some() || e.end_date_time.is_some() => {
            Err(DomainError::invalid("expiration of type noExpiration takes neither duration nor endDateTime."))
        }
        _ => positive(e.duration, "expiration.duration"),
    }
}

fn check_stage(n: usize, s: &ApprovalStage) -> Result<(), DomainError> {
    if s.primary_approvers.is_empty() {
        return Err(DomainError::invalid(format!("Approval stage {n} needs at least one primaryApprovers entry.")));
    }
    let lists = [
        ("primaryApprovers", &s.primary_approvers),
        ("fallbackPrimaryApprovers", &s.fallback_primary_approvers),
        ("escalationApprovers", &s.escalation_approvers),
        ("fallbackEscalationApprovers", &s.fallback_escalation_approvers),
    ];
    for (name, list) in lists {
        if let Some(bad) = list.iter().find(|a| !a.can_approve()) {
            return Err(DomainError::invalid(format!("Approval stage {n}: {bad:?} cannot be used in {name}.")));
        }
    }
    positive(s.duration_before_automatic_denial, &format!("Approval stage {n}: durationBeforeAutomaticDenial"))?;
    if s.quorum == Some(0) {
        return Err(DomainError::invalid(format!("Approval stage {n}: quorum must be at least 1.")));
    }
    if s.is_escalation_enabled {
        if s.escalation_approvers.is_empty() {
            return Err(DomainError::invalid(format!(
                "Approval stage {n} enables escalation but names no escalationApprovers."
            )));
        }
        positive(s.duration_before_escalation, &format!("Approval stage {n}: durationBeforeEscalation"))?;
        if let (Some(esc), Some(deny)) = (s.duration_before_escalation, s.duration_before_automatic_denial)
            && esc >= deny
        {
            return Err(DomainError::invalid(format!(
                "Approval stage {n}: durationBeforeEscalation ({esc}) must be shorter than durationBeforeAutomaticDenial ({deny})."
            )));
        }
    }
    Ok(())
}

fn check_question(n: usize, q: &mut Question) -> Result<(), DomainError> {
    let base = q.base_mut();
    if base.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err(DomainError::invalid(format!("Question {n} needs a text.")));
    }
    if base.id.is_none() {
        base.id = Some(uuid::Uuid::now_v7().to_string());
    }
    if let Question::TextInput { regex_pattern: Some(p), .. } = q
        && !p.is_empty()
    {
        crate::request::answer_pattern(p).map_err(|e| DomainError::invalid(format!("Question {n}: {e}")))?;
    }
    if let Question::MultipleChoice { choices, .. } = q {
        if choices.is_empty() {
            return Err(DomainError::invalid(format!("Multiple-choice question {n} needs at least one choice.")));
        }
        if choices.iter().any(|c| c.actual_value.is_empty()) {
            return Err(DomainError::invalid(format!("Every choice of question {n} needs an actualValue.")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> Result<PolicySettings, String> {
        let mut v = v;
        canonicalize_types(&mut v);
        let mut s: PolicySettings = serde_json::from_value(v).map_err(|e| e.to_string())?;
        s.check().map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn the_sdk_body_of_the_reference_parses() {
        // What msgraph-sdk sends (graph-api.md §6.2), including Python timedelta strings.
        let s = settings(json!({
            "allowedTargetScope": "specificDirectoryUsers",
            "expiration": {"duration": "30 days, 0:00:00", "type": "afterDuration"},
            "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "isRequired": true, "sequence": 1, "text": "Why?", "isSingleLineQuestion": true}],
            "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "isApprovalRequiredForUpdate": true, "isRequestorJustificationRequired": true,
              "stages": [{"durationBeforeAutomaticDenial": "14 days, 0:00:00", "fallbackPrimaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": "u-fallback"}],
                          "isApproverJustificationRequired": true, "isEscalationEnabled": false, "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]},
                         {"durationBeforeAutomaticDenial": "14 days, 0:00:00", "primaryApprovers": [{"@odata.type": "microsoft.graph.SingleUser", "userId": "u-owner"}]}]},
            "requestorSettings": {"allowCustomAssignmentSchedule": true, "enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true, "enableTargetsToSelfUpdateAccess": true},
            "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.groupMembers", "description": "Sales team", "groupId": "g-1"}]
        }))
        .unwrap();
        assert_eq!(s.expiration.as_ref().unwrap().duration.unwrap().to_string(), "P30D");
        let stages = &s.request_approval_settings.as_ref().unwrap().stages;
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].primary_approvers, vec![SubjectSet::RequestorManager { manager_level: Some(1) }]);
        assert!(
            matches!(&stages[1].primary_approvers[0], SubjectSet::SingleUser { user_id: Some(u), .. } if u == "u-owner")
        );
        assert!(s.questions[0].base().id.is_some(), "questions get an id");
        let out = serde_json::to_value(&s).unwrap();
        assert_eq!(out["expiration"]["duration"], "P30D");
        assert_eq!(out["specificAllowedTargets"][0]["@odata.type"], "#microsoft.graph.groupMembers");
        assert_eq!(out["questions"][0]["@odata.type"], "#microsoft.graph.accessPackageTextInputQuestion");
        assert_eq!(out["questions"][0]["text"], "Why?");
    }

    #[test]
    fn polymorphic_values_need_a_known_odata_type() {
        let missing = settings(
            json!({"allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets": [{"userId": "u"}]}),
        );
        assert!(missing.unwrap_err().contains("@odata.type"));
        let unknown = settings(
            json!({"allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.everyone"}]}),
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn a_membership_rule_that_does_not_parse_is_refused_with_its_position() {
        let rule = |r: &str| {
            settings(json!({"allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets": [
                {"@odata.type": "#microsoft.graph.attributeRuleMembers", "membershipRule": r}]}))
        };
        let e = rule("(user.department -eq \"Sales\"").unwrap_err();
        assert!(e.contains("membershipRule is not valid") && e.contains("position"), "{e}");
        assert!(rule("user.shoeSize -eq \"42\"").is_err(), "unknown property");
        assert!(rule("(user.department -eq \"Sales\") -and (user.userType -eq \"Member\")").is_ok());
    }

    #[test]
    fn incoherent_settings_are_named() {
        for (body, needle) in [
            (json!({"allowedTargetScope": "specificDirectoryUsers"}), "specificAllowedTargets"),
            (json!({"allowedTargetScope": "allMemberUsers", "expiration": {"type": "afterDuration"}}), "afterDuration"),
            (
                json!({"allowedTargetScope": "allMemberUsers", "expiration": {"type": "afterDateTime", "duration": "P1D"}}),
                "afterDateTime",
            ),
            (json!({"allowedTargetScope": "allMemberUsers", "expiration": {"duration": "-P1D"}}), "longer than zero"),
            (
                json!({"allowedTargetScope": "allMemberUsers", "requestApprovalSettings": {"isApprovalRequiredForAdd": true}}),
                "stage",
            ),
            (
                json!({"allowedTargetScope": "allMemberUsers", "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [{}]}}),
                "primaryApprovers",
            ),
            (
                json!({"allowedTargetScope": "allMemberUsers", "requestApprovalSettings": {"stages": [{"primaryApprovers": [{"@odata.type": "#microsoft.graph.attributeRuleMembers", "membershipRule": "x"}]}]}}),
                "cannot be used",
            ),
            (
                json!({"allowedTargetScope": "allMemberUsers", "requestApprovalSettings": {"stages": [{"primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": "u"}], "isEscalationEnabled": true, "escalationApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": "e"}], "durationBeforeEscalation": "P14D", "durationBeforeAutomaticDenial": "P7D"}]}}),
                "shorter",
            ),
            (
                json!({"allowedTargetScope": "allMemberUsers", "questions": [{"@odata.type": "#microsoft.graph.accessPackageMultipleChoiceQuestion", "text": "Which?"}]}),
                "choice",
            ),
            (
                json!({"allowedTargetScope": "allMemberUsers", "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion"}]}),
                "text",
            ),
            (
                json!({"allowedTargetScope": "allMemberUsers", "automaticRequestSettings": {"requestAccessForAllowedTargets": true}}),
                "attributeRuleMembers",
            ),
            (
                json!({"allowedTargetScope": "allMemberUsers", "requestorSettings": {"enableOnBehalfRequestorsToAddAccess": true}}),
                "onBehalfRequestors",
            ),
        ] {
            let e = settings(body.clone()).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
        }
    }

    #[test]
    fn direct_assignment_policy_is_minimal() {
        let s = settings(json!({"allowedTargetScope": "notSpecified"})).unwrap();
        assert!(s.specific_allowed_targets.is_empty() && s.questions.is_empty());
        let s = settings(json!({"allowedTargetScope": "allMemberUsers", "expiration": {"type": "afterDateTime", "endDateTime": "2030-01-01T00:00:00+00:00"}})).unwrap();
        assert_eq!(serde_json::to_value(&s).unwrap()["expiration"]["endDateTime"], "2030-01-01T00:00:00Z");
    }
}
