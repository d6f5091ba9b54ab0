//! Access reviews of access package assignments (Graph's `accessReviewScheduleDefinition`,
//! `accessReviewInstance`, `accessReviewInstanceDecisionItem`): what a definition reviews (its
//! scope over assignments), who reviews (reviewer scopes, self-review when none), when (a
//! recurrence Graph supports: weekly or absolute-monthly, so quarterly, semi-annual and annual
//! too), the rules of a decision (who may record which value, when), the recommendation for a
//! decision, and what applying a decision does to the assignment. Pure: time is passed in.

use jiff::civil::Date;
use jiff::{Span, Timestamp, ToSpan};
use serde_json::{Map, Value, json};

use crate::DomainError;
use crate::duration::GraphDuration;
use crate::ids::{
    AccessPackageId, AssignmentId, CatalogId, GroupId, PolicyId, ReviewDecisionId, ReviewDefinitionId,
    ReviewInstanceId, UserId,
};
use crate::text::clip;

/// The base of the assignment queries a definition's scope names.
pub const ASSIGNMENTS_QUERY: &str = "/identityGovernance/entitlementManagement/accessPackageAssignments";
/// Longest display name and descriptions kept.
pub const DESCRIPTION_MAX: usize = 4_000;
/// Graph uses at most 256 characters of `descriptionForReviewers` (it goes into emails).
pub const REVIEWER_DESCRIPTION_MAX: usize = 256;
/// Most reviewer scopes one definition (or stage) may name.
pub const REVIEWERS_MAX: usize = 25;
/// Most stages of a multi-stage review.
pub const STAGES_MAX: usize = 3;
/// Longest an instance may run.
pub const DURATION_DAYS_MAX: u32 = 365;
/// Longest justification kept.
pub const JUSTIFICATION_MAX: usize = 4_000;
/// Look-back of recommendations when the definition names none.
pub const DEFAULT_LOOK_BACK_DAYS: i64 = 30;

/// Which assignments a definition reviews: those of a package, a policy, or a catalog's
/// packages, optionally only those of guests. At least one of package, policy and catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssignmentScope {
    pub package: Option<AccessPackageId>,
    pub policy: Option<PolicyId>,
    pub catalog: Option<CatalogId>,
    pub guests_only: bool,
}

impl AssignmentScope {
    /// Parses the `query` of an `accessReviewQueryScope` over assignments: a conjunction of
    /// `accessPackageId eq '<id>'`, `assignmentPolicyId eq '<id>'`,
    /// `accessPackage/catalog/id eq '<id>'` and `target/userType eq 'Guest'`, parenthesised
    /// or not, as Entra writes it for the reviews its policies create.
    pub fn parse(query: &str) -> Result<Self, DomainError> {
        let unsupported = || {
            DomainError::invalid(format!(
                "The scope's query '{}' is not supported; use {ASSIGNMENTS_QUERY}?$filter=(accessPackageId eq \
                 '<id>' and assignmentPolicyId eq '<id>'), with accessPackage/catalog/id eq '<id>' and \
                 target/userType eq 'Guest' also allowed.",
                clip(query, 200)
            ))
        };
        let rest = query.trim().strip_prefix(ASSIGNMENTS_QUERY).ok_or_else(unsupported)?;
        let filter =
            rest.strip_prefix("?$filter=").or_else(|| rest.strip_prefix("?filter=")).ok_or_else(unsupported)?;
        let decoded = percent_decode(filter);
        let mut inner = decoded.trim();
        while let Some(s) = inner.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            inner = s.trim();
        }
        let mut scope = Self::default();
        for clause in split_and(inner) {
            let clause = clause.trim().trim_start_matches('(').trim_end_matches(')').trim();
            let (field, value) = clause.split_once(" eq ").ok_or_else(unsupported)?;
            let value = value.trim().strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).ok_or_else(unsupported)?;
            match field.trim() {
                "accessPackageId" | "accessPackage/id" => scope.package = Some(value.parse()?),
                "assignmentPolicyId" | "assignmentPolicy/id" => scope.policy = Some(value.parse()?),
                "accessPackage/catalog/id" | "catalogId" => scope.catalog = Some(value.parse()?),
                "target/userType" | "userType" if value.eq_ignore_ascii_case("guest") => scope.guests_only = true,
                _ => return Err(unsupported()),
            }
        }
        if scope.package.is_none() && scope.policy.is_none() && scope.catalog.is_none() {
            return Err(DomainError::invalid(
                "The scope must name an access package, an assignment policy or a catalog (accessPackageId, \
                 assignmentPolicyId or accessPackage/catalog/id).",
            ));
        }
        Ok(scope)
    }

    /// The query in canonical form, as it is returned.
    pub fn query(&self) -> String {
        let mut clauses = Vec::new();
        if let Some(p) = self.package {
            clauses.push(format!("accessPackageId eq '{p}'"));
        }
        if let Some(p) = self.policy {
            clauses.push(format!("assignmentPolicyId eq '{p}'"));
        }
        if let Some(c) = self.catalog {
            clauses.push(format!("accessPackage/catalog/id eq '{c}'"));
        }
        if self.guests_only {
            clauses.push("target/userType eq 'Guest'".to_owned());
        }
        format!("{ASSIGNMENTS_QUERY}?$filter=({})", clauses.join(" and "))
    }

    /// Graph's `accessReviewQueryScope` for it.
    pub fn to_graph(&self) -> Value {
        json!({"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": self.query(),
               "queryType": "MicrosoftGraph", "queryRoot": null})
    }
}

/// Splits on ` and ` outside quotes (values are GUIDs and `Guest`, so never contain it).
fn split_and(s: &str) -> Vec<&str> {
    s.split(" and ").collect()
}

/// `%27` and `%20` and the like, as clients sometimes send the query encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes.get(i), hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (Some(b'%'), Some(b)) => {
                out.push(b);
                i += 3;
            }
            (Some(b), _) => {
                out.push(*b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who reviews (or who is contacted when they cannot): Graph's `accessReviewReviewerScope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewer {
    /// `/users/{id}`.
    User(UserId),
    /// `/groups/{id}/transitiveMembers` (or `/members`).
    GroupMembers(GroupId),
    /// `/groups/{id}/owners`.
    GroupOwners(GroupId),
    /// `./manager` with query root `decisions`: the manager of the person whose access is
    /// reviewed.
    Manager,
    /// `./accessPackage/catalog/owners` with query root `decisions`: the owners of the
    /// reviewed package's catalog.
    CatalogOwners,
    /// `./accessPackage/managers` with query root `decisions`: the access package managers of
    /// the reviewed package's catalog.
    PackageManagers,
}

impl Reviewer {
    /// Parses an `accessReviewReviewerScope`: `query`, with `queryRoot` for the relative ones.
    pub fn parse(v: &Value) -> Result<Self, DomainError> {
        let query = v.get("query").and_then(Value::as_str).unwrap_or("").trim();
        let root = v.get("queryRoot").and_then(Value::as_str).unwrap_or("").trim();
        let bad = || {
            DomainError::invalid(format!(
                "The reviewer query '{}' is not supported; use /users/<id>, /groups/<id>/transitiveMembers, \
                 /groups/<id>/owners, or ./manager, ./accessPackage/catalog/owners or ./accessPackage/managers \
                 with queryRoot 'decisions'.",
                clip(query, 200)
            ))
        };
        if let Some(rel) = query.strip_prefix("./") {
            if !root.is_empty() && !root.eq_ignore_ascii_case("decisions") {
                return Err(DomainError::invalid(format!(
                    "A relative reviewer query needs queryRoot 'decisions', not '{}'.",
                    clip(root, 64)
                )));
            }
            return match rel {
                "manager" => Ok(Self::Manager),
                "accessPackage/catalog/owners" => Ok(Self::CatalogOwners),
                "accessPackage/managers" => Ok(Self::PackageManagers),
                _ => Err(bad()),
            };
        }
        let parts: Vec<&str> = query.trim_start_matches("/v1.0").trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["users", id] => Ok(Self::User(id.parse()?)),
            ["groups", id, "transitiveMembers" | "members"] => Ok(Self::GroupMembers(id.parse()?)),
            ["groups", id, "owners"] => Ok(Self::GroupOwners(id.parse()?)),
            _ => Err(bad()),
        }
    }

    /// Graph's form.
    pub fn to_graph(&self) -> Value {
        let (query, root) = match self {
            Self::User(u) => (format!("/users/{u}"), None),
            Self::GroupMembers(g) => (format!("/groups/{g}/transitiveMembers"), None),
            Self::GroupOwners(g) => (format!("/groups/{g}/owners"), None),
            Self::Manager => ("./manager".to_owned(), Some("decisions")),
            Self::CatalogOwners => ("./accessPackage/catalog/owners".to_owned(), Some("decisions")),
            Self::PackageManagers => ("./accessPackage/managers".to_owned(), Some("decisions")),
        };
        json!({"query": query, "queryType": "MicrosoftGraph", "queryRoot": root})
    }

    fn parse_all(v: Option<&Value>, what: &str) -> Result<Vec<Self>, DomainError> {
        let list = match v {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(DomainError::invalid(format!("'{what}' must be a list of reviewer scopes."))),
        };
        if list.len() > REVIEWERS_MAX {
            return Err(DomainError::invalid(format!("'{what}' may name at most {REVIEWERS_MAX} reviewer scopes.")));
        }
        list.iter().map(Self::parse).collect()
    }
}

/// What a reviewer decides, or `NotReviewed` before anyone has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    NotReviewed,
    Approve,
    Deny,
    DontKnow,
}

impl Decision {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotReviewed => "NotReviewed",
            Self::Approve => "Approve",
            Self::Deny => "Deny",
            Self::DontKnow => "DontKnow",
        }
    }

    /// Parses what a reviewer may record: Approve, Deny or DontKnow (any letter case).
    pub fn parse_recordable(s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "approve" => Ok(Self::Approve),
            "deny" => Ok(Self::Deny),
            "dontknow" => Ok(Self::DontKnow),
            _ => Err(DomainError::invalid(format!(
                "'{}' is not a decision a reviewer can record; use Approve, Deny or DontKnow.",
                clip(s, 64)
            ))),
        }
    }

    /// Parses any stored or filtered value.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.trim().eq_ignore_ascii_case("notreviewed") {
            return Ok(Self::NotReviewed);
        }
        Self::parse_recordable(s).map_err(|_| {
            DomainError::invalid(format!(
                "'{}' is not a decision; expected Approve, Deny, DontKnow or NotReviewed.",
                clip(s, 64)
            ))
        })
    }
}

/// The system's suggestion to the reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recommendation {
    Approve,
    Deny,
    NoInfoAvailable,
}

impl Recommendation {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "Approve",
            Self::Deny => "Deny",
            Self::NoInfoAvailable => "NoInfoAvailable",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "Approve" => Ok(Self::Approve),
            "Deny" => Ok(Self::Deny),
            "NoInfoAvailable" => Ok(Self::NoInfoAvailable),
            _ => Err(DomainError::invalid(format!("'{}' is not a recommendation.", clip(s, 64)))),
        }
    }
}

/// What applying a decision did (Graph's `applyResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyResult {
    New,
    AppliedSuccessfully,
    AppliedWithUnknownFailure,
    AppliedSuccessfullyButObjectNotFound,
    ApplyNotSupported,
}

impl ApplyResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::AppliedSuccessfully => "AppliedSuccessfully",
            Self::AppliedWithUnknownFailure => "AppliedWithUnknownFailure",
            Self::AppliedSuccessfullyButObjectNotFound => "AppliedSuccessfullyButObjectNotFound",
            Self::ApplyNotSupported => "ApplyNotSupported",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        [
            Self::New,
            Self::AppliedSuccessfully,
            Self::AppliedWithUnknownFailure,
            Self::AppliedSuccessfullyButObjectNotFound,
            Self::ApplyNotSupported,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| DomainError::invalid(format!("'{}' is not an apply result.", clip(s, 64))))
    }
}

/// The status of a definition or an instance (Graph's strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewStatus {
    NotStarted,
    InProgress,
    Completed,
    /// Being applied (the instance ended; its decisions are applied).
    Applying,
    Applied,
}

impl ReviewStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "NotStarted",
            Self::InProgress => "InProgress",
            Self::Completed => "Completed",
            Self::Applying => "Applying",
            Self::Applied => "Applied",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        [Self::NotStarted, Self::InProgress, Self::Completed, Self::Applying, Self::Applied]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "'{}' is not a review status; expected NotStarted, InProgress, Completed, Applying or Applied.",
                    clip(s, 64)
                ))
            })
    }
}

/// What an unanswered decision becomes when the instance ends, if `defaultDecisionEnabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultDecision {
    Approve,
    Deny,
    Recommendation,
    /// Nothing: unanswered stays NotReviewed (and is kept).
    None,
}

impl DefaultDecision {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "Approve",
            Self::Deny => "Deny",
            Self::Recommendation => "Recommendation",
            Self::None => "None",
        }
    }

    fn parse(s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "approve" => Ok(Self::Approve),
            "deny" => Ok(Self::Deny),
            "recommendation" => Ok(Self::Recommendation),
            "none" | "" => Ok(Self::None),
            _ => Err(DomainError::invalid(format!(
                "'{}' is not a default decision; use Approve, Deny, Recommendation or None.",
                clip(s, 64)
            ))),
        }
    }
}

/// How often instances open (Graph's `patternedRecurrence`, as far as access reviews support
/// it: `weekly` or `absoluteMonthly` with an interval; a range with no end, an end date or a
/// number of occurrences). No recurrence: one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    pub pattern: Pattern,
    /// The first review day.
    pub start: Date,
    pub end: RangeEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Every `interval` weeks.
    Weekly { interval: u32 },
    /// Every `interval` months (3: quarterly, 6: semi-annual, 12: annual) on `day_of_month`
    /// (the last day of shorter months).
    AbsoluteMonthly { interval: u32, day_of_month: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    NoEnd,
    /// The last day an instance may start.
    EndDate(Date),
    Numbered(u32),
}

impl Recurrence {
    /// Parses a `patternedRecurrence`; `None` for a one-time review (no recurrence, or a pattern
    /// of null). Patterns access reviews do not support (daily, relativeMonthly, yearly) are
    /// refused with what is.
    pub fn parse(v: Option<&Value>) -> Result<Option<Self>, DomainError> {
        let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(None) };
        let pattern = match v.get("pattern") {
            None | Some(Value::Null) => return Ok(None),
            Some(p) => p,
        };
        let kind = pattern.get("type").and_then(Value::as_str).unwrap_or("");
        let interval =
            match pattern.get("interval") {
                None | Some(Value::Null) => 1,
                Some(i) => i.as_u64().filter(|i| (1..=99).contains(i)).and_then(|i| u32::try_from(i).ok()).ok_or_else(
                    || DomainError::invalid("The recurrence's interval must be a whole number from 1 to 99."),
                )?,
            };
        let range = v.get("range").filter(|r| !r.is_null());
        let start = match range.and_then(|r| r.get("startDate")).and_then(Value::as_str) {
            Some(d) => parse_date(d, "range.startDate")?,
            None => {
                return Err(DomainError::invalid(
                    "A recurring review needs recurrence.range.startDate, its first review day (YYYY-MM-DD).",
                ));
            }
        };
        let pattern = match kind.to_ascii_lowercase().as_str() {
            "weekly" => Pattern::Weekly { interval },
            "absolutemonthly" => {
                let day = match pattern.get("dayOfMonth") {
                    None | Some(Value::Null) => start.day(),
                    Some(d) => match d.as_u64() {
                        Some(0) => start.day(),
                        Some(d @ 1..=31) => i8::try_from(d).unwrap_or(1),
                        _ => return Err(DomainError::invalid("recurrence.pattern.dayOfMonth must be from 1 to 31.")),
                    },
                };
                Pattern::AbsoluteMonthly { interval, day_of_month: u8::try_from(day).unwrap_or(1) }
            }
            other => {
                return Err(DomainError::invalid(format!(
                    "The recurrence pattern '{}' is not supported for access reviews; use weekly or absoluteMonthly \
                     (interval 3 for quarterly, 6 for semi-annual, 12 for annual).",
                    clip(other, 64)
                )));
            }
        };
        let end = match range.and_then(|r| r.get("type")).and_then(Value::as_str).unwrap_or("noEnd") {
            t if t.eq_ignore_ascii_case("noEnd") => RangeEnd::NoEnd,
            t if t.eq_ignore_ascii_case("endDate") => {
                let d = range.and_then(|r| r.get("endDate")).and_then(Value::as_str).ok_or_else(|| {
                    DomainError::invalid("A recurrence range of type endDate needs range.endDate (YYYY-MM-DD).")
                })?;
                let end = parse_date(d, "range.endDate")?;
                if end < start {
                    return Err(DomainError::invalid("The recurrence's endDate is before its startDate."));
                }
                RangeEnd::EndDate(end)
            }
            t if t.eq_ignore_ascii_case("numbered") => {
                let n = range
                    .and_then(|r| r.get("numberOfOccurrences"))
                    .and_then(Value::as_u64)
                    .filter(|n| (1..=1_000).contains(n))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        DomainError::invalid("A numbered recurrence needs numberOfOccurrences from 1 to 1000.")
                    })?;
                RangeEnd::Numbered(n)
            }
            other => {
                return Err(DomainError::invalid(format!(
                    "The recurrence range type '{}' is not supported; use noEnd, endDate or numbered.",
                    clip(other, 64)
                )));
            }
        };
        Ok(Some(Self { pattern, start, end }))
    }

    /// The day occurrence `n` (0: the first) starts, if the range has it.
    pub fn occurrence(&self, n: u32) -> Option<Date> {
        if let RangeEnd::Numbered(count) = self.end
            && n >= count
        {
            return None;
        }
        let day = match self.pattern {
            Pattern::Weekly { interval } => {
                let weeks = i64::from(interval).checked_mul(i64::from(n))?;
                self.start.checked_add(weeks.checked_mul(7)?.days()).ok()?
            }
            Pattern::AbsoluteMonthly { interval, day_of_month } => {
                let months = i64::from(interval).checked_mul(i64::from(n))?;
                let first = self.start.first_of_month().checked_add(Span::new().try_months(months).ok()?).ok()?;
                let day = i8::try_from(day_of_month).ok()?.min(first.days_in_month());
                first.with().day(day).build().ok()?
            }
        };
        match self.end {
            RangeEnd::EndDate(end) if day > end => None,
            _ => Some(day),
        }
    }

    /// Graph's `patternedRecurrence`.
    pub fn to_graph(&self) -> Value {
        let pattern = match self.pattern {
            Pattern::Weekly { interval } => json!({"type": "weekly", "interval": interval}),
            Pattern::AbsoluteMonthly { interval, day_of_month } => {
                json!({"type": "absoluteMonthly", "interval": interval, "dayOfMonth": day_of_month})
            }
        };
        let range = match self.end {
            RangeEnd::NoEnd => json!({"type": "noEnd", "startDate": self.start.to_string()}),
            RangeEnd::EndDate(d) => {
                json!({"type": "endDate", "startDate": self.start.to_string(), "endDate": d.to_string()})
            }
            RangeEnd::Numbered(n) => {
                json!({"type": "numbered", "startDate": self.start.to_string(), "numberOfOccurrences": n})
            }
        };
        json!({"pattern": pattern, "range": range})
    }
}

fn parse_date(s: &str, what: &str) -> Result<Date, DomainError> {
    let day = s.get(..10).unwrap_or(s);
    day.parse::<Date>()
        .map_err(|_| DomainError::invalid(format!("recurrence.{what} '{}' is not a date (YYYY-MM-DD).", clip(s, 64))))
}

/// A definition's settings (Graph's `accessReviewScheduleSettings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub mail_notifications_enabled: bool,
    pub reminder_notifications_enabled: bool,
    pub justification_required_on_approval: bool,
    pub default_decision_enabled: bool,
    pub default_decision: DefaultDecision,
    pub instance_duration_in_days: u32,
    pub auto_apply_decisions_enabled: bool,
    pub recommendations_enabled: bool,
    pub recommendation_look_back: GraphDuration,
    pub decision_histories_for_reviewers_enabled: bool,
    pub recurrence: Option<Recurrence>,
}

impl Settings {
    /// Parses `settings`; unknown members are ignored, as Graph's clients send more than it
    /// acts on (`applyActions`, `recommendationInsightSettings`).
    pub fn parse(v: &Value) -> Result<Self, DomainError> {
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let days = match v.get("instanceDurationInDays") {
            None | Some(Value::Null) => 14,
            Some(d) => d
                .as_u64()
                .filter(|d| (1..=u64::from(DURATION_DAYS_MAX)).contains(d))
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| {
                    DomainError::invalid(format!(
                        "settings.instanceDurationInDays must be a whole number of days from 1 to {DURATION_DAYS_MAX}."
                    ))
                })?,
        };
        let look_back = match v.get("recommendationLookBackDuration").and_then(Value::as_str) {
            None => GraphDuration::from_secs(DEFAULT_LOOK_BACK_DAYS * 86_400),
            Some(s) => {
                let d = GraphDuration::parse(s)?;
                if d.as_signed().as_secs() <= 0 {
                    return Err(DomainError::invalid("settings.recommendationLookBackDuration must be positive."));
                }
                d
            }
        };
        let recurrence = Recurrence::parse(v.get("recurrence"))?;
        if let Some(r) = &recurrence {
            let period_days = match r.pattern {
                Pattern::Weekly { interval } => 7 * interval,
                Pattern::AbsoluteMonthly { interval, .. } => 28 * interval,
            };
            if days > period_days {
                return Err(DomainError::invalid(format!(
                    "settings.instanceDurationInDays ({days}) is longer than the recurrence leaves between \
                     reviews (at most {period_days} days)."
                )));
            }
        }
        Ok(Self {
            mail_notifications_enabled: flag("mailNotificationsEnabled"),
            reminder_notifications_enabled: flag("reminderNotificationsEnabled"),
            justification_required_on_approval: flag("justificationRequiredOnApproval"),
            default_decision_enabled: flag("defaultDecisionEnabled"),
            default_decision: DefaultDecision::parse(v.get("defaultDecision").and_then(Value::as_str).unwrap_or(""))?,
            instance_duration_in_days: days,
            auto_apply_decisions_enabled: flag("autoApplyDecisionsEnabled"),
            recommendations_enabled: flag("recommendationsEnabled"),
            recommendation_look_back: look_back,
            decision_histories_for_reviewers_enabled: flag("decisionHistoriesForReviewersEnabled"),
            recurrence,
        })
    }

    pub fn to_graph(&self) -> Value {
        json!({
            "mailNotificationsEnabled": self.mail_notifications_enabled,
            "reminderNotificationsEnabled": self.reminder_notifications_enabled,
            "justificationRequiredOnApproval": self.justification_required_on_approval,
            "defaultDecisionEnabled": self.default_decision_enabled,
            "defaultDecision": self.default_decision.as_str(),
            "instanceDurationInDays": self.instance_duration_in_days,
            "autoApplyDecisionsEnabled": self.auto_apply_decisions_enabled,
            "recommendationsEnabled": self.recommendations_enabled,
            "recommendationLookBackDuration": self.recommendation_look_back.to_string(),
            "decisionHistoriesForReviewersEnabled": self.decision_histories_for_reviewers_enabled,
            "recurrence": self.recurrence.as_ref().map(Recurrence::to_graph),
            "applyActions": [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}],
        })
    }

    /// What an unanswered decision counts as when its instance ends.
    pub fn unanswered(&self, recommendation: Recommendation) -> Decision {
        if !self.default_decision_enabled {
            return Decision::NotReviewed;
        }
        match self.default_decision {
            DefaultDecision::Approve => Decision::Approve,
            DefaultDecision::Deny => Decision::Deny,
            DefaultDecision::Recommendation => match recommendation {
                Recommendation::Approve => Decision::Approve,
                Recommendation::Deny => Decision::Deny,
                Recommendation::NoInfoAvailable => Decision::NotReviewed,
            },
            DefaultDecision::None => Decision::NotReviewed,
        }
    }
}

/// One stage of a multi-stage review (Graph's `accessReviewStageSettings`).
#[derive(Debug, Clone, PartialEq)]
pub struct StageSettings {
    pub stage_id: String,
    pub depends_on: Vec<String>,
    pub duration_in_days: u32,
    /// Decisions of this stage that go on to the next; the others are final.
    pub moves_on: Vec<Decision>,
    pub reviewers: Vec<Reviewer>,
    pub fallback_reviewers: Vec<Reviewer>,
    pub recommendations_enabled: bool,
}

impl StageSettings {
    fn parse(v: &Value, n: usize) -> Result<Self, DomainError> {
        let stage_id = match v.get("stageId") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(DomainError::invalid(format!("stageSettings[{n}] needs a stageId."))),
        };
        let depends_on = match v.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(_) => return Err(DomainError::invalid(format!("stageSettings[{n}].dependsOn must be a list."))),
        };
        let duration_in_days = v
            .get("durationInDays")
            .and_then(Value::as_u64)
            .filter(|d| (1..=u64::from(DURATION_DAYS_MAX)).contains(d))
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "stageSettings[{n}].durationInDays must be a whole number of days from 1 to {DURATION_DAYS_MAX}."
                ))
            })?;
        let moves_on = match v.get("decisionsThatWillMoveToNextStage") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| {
                    Decision::parse(d.as_str().unwrap_or("")).map_err(|e| {
                        DomainError::invalid(format!("stageSettings[{n}].decisionsThatWillMoveToNextStage: {e}"))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(DomainError::invalid(format!(
                    "stageSettings[{n}].decisionsThatWillMoveToNextStage must be a list."
                )));
            }
        };
        Ok(Self {
            stage_id,
            depends_on,
            duration_in_days,
            moves_on,
            reviewers: Reviewer::parse_all(v.get("reviewers"), "reviewers")?,
            fallback_reviewers: Reviewer::parse_all(v.get("fallbackReviewers"), "fallbackReviewers")?,
            recommendations_enabled: v.get("recommendationsEnabled").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    pub fn to_graph(&self) -> Value {
        json!({
            "stageId": self.stage_id,
            "dependsOn": self.depends_on,
            "durationInDays": self.duration_in_days,
            "decisionsThatWillMoveToNextStage": self.moves_on.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            "reviewers": self.reviewers.iter().map(Reviewer::to_graph).collect::<Vec<_>>(),
            "fallbackReviewers": self.fallback_reviewers.iter().map(Reviewer::to_graph).collect::<Vec<_>>(),
            "recommendationsEnabled": self.recommendations_enabled,
        })
    }
}

/// What a client sends to create or replace a definition, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionInput {
    pub display_name: String,
    pub description_for_admins: Option<String>,
    pub description_for_reviewers: Option<String>,
    pub scope: AssignmentScope,
    /// Empty: every person reviews their own access.
    pub reviewers: Vec<Reviewer>,
    pub fallback_reviewers: Vec<Reviewer>,
    pub settings: Settings,
    /// Empty: one stage, with `reviewers`.
    pub stages: Vec<StageSettings>,
}

impl DefinitionInput {
    /// Parses a definition body (`POST` and `PUT …/definitions`).
    pub fn parse(body: &Map<String, Value>) -> Result<Self, DomainError> {
        let text = |k: &str, max: usize| -> Result<Option<String>, DomainError> {
            match body.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
                Some(Value::String(_)) => Err(DomainError::invalid(format!("'{k}' may be at most {max} characters."))),
                Some(_) => Err(DomainError::invalid(format!("'{k}' must be a string."))),
            }
        };
        let display_name = text("displayName", crate::text::DISPLAY_NAME_MAX)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| DomainError::invalid("'displayName' is required."))?;
        let scope = match body.get("scope") {
            Some(Value::Object(s)) => {
                let query = s.get("query").and_then(Value::as_str).ok_or_else(|| {
                    DomainError::invalid(
                        "'scope' must be an accessReviewQueryScope with a 'query' over access package assignments.",
                    )
                })?;
                AssignmentScope::parse(query)?
            }
            _ => {
                return Err(DomainError::invalid(
                    "'scope' is required: an accessReviewQueryScope whose query selects access package assignments.",
                ));
            }
        };
        let settings = match body.get("settings") {
            Some(v @ Value::Object(_)) => Settings::parse(v)?,
            None | Some(Value::Null) => return Err(DomainError::invalid("'settings' is required.")),
            Some(_) => return Err(DomainError::invalid("'settings' must be an object.")),
        };
        let stages = match body.get("stageSettings") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                a.iter().enumerate().map(|(n, s)| StageSettings::parse(s, n)).collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => return Err(DomainError::invalid("'stageSettings' must be a list.")),
        };
        check_stages(&stages)?;
        let input = Self {
            display_name,
            description_for_admins: text("descriptionForAdmins", DESCRIPTION_MAX)?,
            description_for_reviewers: text("descriptionForReviewers", REVIEWER_DESCRIPTION_MAX)?,
            scope,
            reviewers: Reviewer::parse_all(body.get("reviewers"), "reviewers")?,
            fallback_reviewers: Reviewer::parse_all(body.get("fallbackReviewers"), "fallbackReviewers")?,
            settings,
            stages,
        };
        Ok(input)
    }

    /// Whether people review their own access (no reviewers named, in the definition or in
    /// the first stage).
    pub fn is_self_review(&self) -> bool {
        match self.stages.first() {
            Some(s) => s.reviewers.is_empty(),
            None => self.reviewers.is_empty(),
        }
    }
}

/// Stage ids are unique; each stage but the first depends on the one before (Graph's
/// reviews run their stages in sequence); at most `STAGES_MAX`.
fn check_stages(stages: &[StageSettings]) -> Result<(), DomainError> {
    if stages.len() > STAGES_MAX {
        return Err(DomainError::invalid(format!("A review has at most {STAGES_MAX} stages.")));
    }
    for (i, s) in stages.iter().enumerate() {
        if stages.iter().take(i).any(|o| o.stage_id == s.stage_id) {
            return Err(DomainError::invalid(format!("Two stages have stageId '{}'.", clip(&s.stage_id, 64))));
        }
        let expected: Vec<&str> = stages.get(i.wrapping_sub(1)).map(|p| p.stage_id.as_str()).into_iter().collect();
        let given: Vec<&str> = s.depends_on.iter().map(String::as_str).collect();
        if i > 0 && given != expected {
            return Err(DomainError::invalid(format!(
                "Stage '{}' must depend on the stage before it ('{}'): stages run one after another.",
                clip(&s.stage_id, 64),
                expected.first().copied().unwrap_or("")
            )));
        }
        if i == 0 && !s.depends_on.is_empty() {
            return Err(DomainError::invalid(format!(
                "The first stage ('{}') cannot depend on another.",
                clip(&s.stage_id, 64)
            )));
        }
    }
    Ok(())
}

/// What a reviewer asks to record on one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub decision: Decision,
    pub justification: Option<String>,
}

impl Recording {
    /// Checks a recording against the definition's settings: Approve needs a justification
    /// when the settings say so; justifications have a length limit.
    pub fn check(&self, settings: &Settings) -> Result<(), DomainError> {
        let justified = self.justification.as_deref().is_some_and(|j| !j.trim().is_empty());
        if self.decision == Decision::Approve && settings.justification_required_on_approval && !justified {
            return Err(DomainError::invalid("This review requires a justification to approve."));
        }
        if self.justification.as_deref().is_some_and(|j| j.chars().count() > JUSTIFICATION_MAX) {
            return Err(DomainError::invalid(format!(
                "The justification may be at most {JUSTIFICATION_MAX} characters."
            )));
        }
        Ok(())
    }
}

/// Whether a decision recorded at one stage goes on to the next.
pub fn moves_to_next_stage(decision: Decision, stage: &StageSettings) -> bool {
    stage.moves_on.contains(&decision)
}

/// What happens to the reviewed assignment when a decision is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The assignment is removed (request type systemRemove).
    Remove,
    /// Nothing changes.
    Keep,
}

/// The outcome of a final decision: Deny removes, everything else keeps.
pub fn outcome(final_decision: Decision) -> Outcome {
    match final_decision {
        Decision::Deny => Outcome::Remove,
        Decision::Approve | Decision::DontKnow | Decision::NotReviewed => Outcome::Keep,
    }
}

/// What the system knows of the reviewed person when the instance opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// Their last sign-in to Steward, if any was recorded.
    pub last_sign_in: Option<Timestamp>,
    /// When they last used the resource, where a connector can tell.
    pub last_use: Option<Timestamp>,
    /// Whether they still meet the policy's requestor scope (its attributes, groups).
    pub still_eligible: bool,
}

/// The recommendation for one decision, with its reason in words: Deny for a person who has
/// not signed in to Steward nor used the resource within the look-back period, or who no
/// longer meets the policy; Approve otherwise.
pub fn recommend(activity: Activity, look_back: GraphDuration, now: Timestamp) -> (Recommendation, String) {
    if !activity.still_eligible {
        return (
            Recommendation::Deny,
            "No longer meets the policy's requirements for who may have this access.".to_owned(),
        );
    }
    let since = now.checked_sub(look_back.as_signed()).unwrap_or(now);
    let days = look_back.as_signed().as_secs() / 86_400;
    let last = activity.last_sign_in.max(activity.last_use);
    match last {
        Some(t) if t >= since => (Recommendation::Approve, format!("Active within the last {days} days.")),
        Some(t) => (
            Recommendation::Deny,
            format!("Inactive: not signed in for more than {days} days (last on {}).", t.strftime("%Y-%m-%d")),
        ),
        None => (Recommendation::Deny, format!("Inactive: no sign-in recorded in the last {days} days.")),
    }
}

/// When an instance opening on `day` (its first review day) starts and ends: midnight UTC of
/// that day, plus the duration.
pub fn instance_window(day: Date, duration_days: u32) -> Option<(Timestamp, Timestamp)> {
    let start = day.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    let end = start.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(duration_days))).ok()?;
    Some((start, end))
}

/// A stored definition: what was asked for, and where its schedule stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewDefinition {
    pub id: ReviewDefinitionId,
    pub input: DefinitionInput,
    /// The assignment policy whose `reviewSettings` created it and keeps it in step, if any.
    pub policy_id: Option<PolicyId>,
    /// NotStarted (before its first instance), InProgress (instances open, or more to come),
    /// Completed (stopped, or its recurrence has ended).
    pub status: ReviewStatus,
    pub created_by: Option<UserId>,
    pub created_date_time: Timestamp,
    pub last_modified_date_time: Timestamp,
    /// The occurrence the next instance opens for (0: the first).
    pub next_occurrence: u32,
    /// When that instance opens; none when no more will.
    pub next_start: Option<Timestamp>,
}

impl ReviewDefinition {
    /// When occurrence `n` opens: its recurrence's day, or, for a one-time review, `created`
    /// (occurrence 0 only).
    pub fn start_of(&self, n: u32, created: Timestamp) -> Option<Timestamp> {
        match &self.input.settings.recurrence {
            Some(r) => r.occurrence(n).and_then(|d| instance_window(d, 1)).map(|(s, _)| s),
            None => (n == 0).then_some(created),
        }
    }

    /// How long an instance runs: the stages one after another, or the instance duration.
    pub fn duration_days(&self) -> u32 {
        if self.input.stages.is_empty() {
            self.input.settings.instance_duration_in_days
        } else {
            self.input.stages.iter().map(|s| s.duration_in_days).sum()
        }
    }

    /// The reviewers and fallback reviewers of stage `stage` (0 when the review has no stages).
    pub fn reviewers_of(&self, stage: usize) -> (&[Reviewer], &[Reviewer]) {
        match self.input.stages.get(stage) {
            Some(s) => (&s.reviewers, &s.fallback_reviewers),
            None => (&self.input.reviewers, &self.input.fallback_reviewers),
        }
    }

    /// How many stages an instance goes through (at least one).
    pub fn stage_count(&self) -> usize {
        self.input.stages.len().max(1)
    }
}

/// One occurrence of a review over the assignments in scope when it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewInstance {
    pub id: ReviewInstanceId,
    pub definition_id: ReviewDefinitionId,
    pub occurrence: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    /// InProgress while reviewers decide; Completed when it ended or was stopped (decisions
    /// still to apply); Applied once they were.
    pub status: ReviewStatus,
    /// The stage under way (0 for a single-stage review).
    pub stage: u32,
    /// When the stage under way ends.
    pub stage_end: Timestamp,
    pub last_modified_date_time: Timestamp,
}

/// A stage's decision kept when the decision went on to the next stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDecision {
    pub stage: u32,
    pub decision: Decision,
    pub justification: Option<String>,
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<Timestamp>,
}

/// The decision on one assignment in one instance; at a multi-stage review it carries the
/// earlier stages' decisions in `history` and is decided again at each stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewDecision {
    pub id: ReviewDecisionId,
    pub instance_id: ReviewInstanceId,
    pub definition_id: ReviewDefinitionId,
    pub assignment_id: AssignmentId,
    /// Whose access is reviewed.
    pub principal_id: UserId,
    pub access_package_id: AccessPackageId,
    pub policy_id: Option<PolicyId>,
    /// The stage it is at.
    pub stage: u32,
    /// Who may decide it at this stage (resolved when the stage began; the fallback reviewers
    /// when the primary ones resolved to nobody).
    pub reviewers: Vec<UserId>,
    pub decision: Decision,
    pub justification: Option<String>,
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<Timestamp>,
    pub recommendation: Recommendation,
    pub recommendation_reason: Option<String>,
    pub apply_result: ApplyResult,
    pub applied_by: Option<UserId>,
    pub applied_at: Option<Timestamp>,
    pub history: Vec<StageDecision>,
    pub last_modified_date_time: Timestamp,
}

impl ReviewDecision {
    /// Whether `user` may decide it now.
    pub fn is_reviewer(&self, user: UserId) -> bool {
        self.reviewers.contains(&user)
    }

    /// Records a reviewer's decision (checked against the settings); replaces an earlier one of
    /// the same stage, as Graph lets reviewers change their mind until the instance ends.
    pub fn record(
        &mut self,
        by: UserId,
        r: &Recording,
        settings: &Settings,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        r.check(settings)?;
        self.decision = r.decision;
        self.justification = r.justification.clone().filter(|j| !j.trim().is_empty());
        self.reviewed_by = Some(by);
        self.reviewed_at = Some(now);
        self.last_modified_date_time = now;
        Ok(())
    }

    /// Back to NotReviewed (`resetDecisions`).
    pub fn reset(&mut self, now: Timestamp) {
        self.decision = Decision::NotReviewed;
        self.justification = None;
        self.reviewed_by = None;
        self.reviewed_at = None;
        self.last_modified_date_time = now;
    }

    /// Moves it to the next stage with its reviewers, keeping this stage's decision.
    pub fn advance(&mut self, reviewers: Vec<UserId>, now: Timestamp) {
        self.history.push(StageDecision {
            stage: self.stage,
            decision: self.decision,
            justification: self.justification.take(),
            reviewed_by: self.reviewed_by.take(),
            reviewed_at: self.reviewed_at.take(),
        });
        self.stage = self.stage.saturating_add(1);
        self.reviewers = reviewers;
        self.decision = Decision::NotReviewed;
        self.last_modified_date_time = now;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const P: &str = "0190c3c4-7a5e-7000-8000-000000000001";
    const Q: &str = "0190c3c4-7a5e-7000-8000-000000000002";

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn the_scope_entra_writes_for_a_policy_parses_and_round_trips() {
        let q = format!("{ASSIGNMENTS_QUERY}?$filter=(accessPackageId eq '{P}' and assignmentPolicyId eq '{Q}')");
        let s = AssignmentScope::parse(&q).unwrap();
        assert_eq!(s.package.unwrap().to_string(), P);
        assert_eq!(s.policy.unwrap().to_string(), Q);
        assert_eq!(s.query(), q);
        let guests = AssignmentScope::parse(&format!(
            "{ASSIGNMENTS_QUERY}?$filter=accessPackage/catalog/id%20eq%20'{P}'%20and%20target/userType%20eq%20'Guest'"
        ))
        .unwrap();
        assert!(guests.guests_only && guests.catalog.is_some() && guests.package.is_none());
    }

    #[test]
    fn scopes_that_name_nothing_or_something_else_are_refused_with_what_is_supported() {
        for q in [
            "/groups/x/transitiveMembers",
            &format!("{ASSIGNMENTS_QUERY}?$filter=(state eq 'delivered')"),
            &format!("{ASSIGNMENTS_QUERY}?$filter=(target/userType eq 'Guest')"),
            &format!("{ASSIGNMENTS_QUERY}?$filter=(accessPackageId eq 'nope')"),
        ] {
            let e = AssignmentScope::parse(q).unwrap_err();
            assert!(matches!(e, DomainError::Invalid(_)), "{q}: {e}");
        }
    }

    #[test]
    fn reviewers_parse_from_graph_queries_and_back() {
        let manager = json!({"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"});
        assert_eq!(Reviewer::parse(&manager).unwrap(), Reviewer::Manager);
        assert_eq!(Reviewer::parse(&Reviewer::Manager.to_graph()).unwrap(), Reviewer::Manager);
        let user = json!({"query": format!("/v1.0/users/{P}"), "queryType": "MicrosoftGraph"});
        assert_eq!(Reviewer::parse(&user).unwrap(), Reviewer::User(P.parse().unwrap()));
        let owners = json!({"query": format!("/groups/{P}/owners")});
        assert_eq!(Reviewer::parse(&owners).unwrap(), Reviewer::GroupOwners(P.parse().unwrap()));
        assert!(Reviewer::parse(&json!({"query": "./manager", "queryRoot": "users"})).is_err());
        assert!(Reviewer::parse(&json!({"query": "/me"})).is_err());
    }

    #[test]
    fn quarterly_recurrence_lands_on_the_same_day_or_the_last_of_a_shorter_month() {
        let r = Recurrence::parse(Some(&json!({
            "pattern": {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 31},
            "range": {"type": "numbered", "startDate": "2026-01-31", "numberOfOccurrences": 4}
        })))
        .unwrap()
        .unwrap();
        let days: Vec<_> = (0..5).map(|n| r.occurrence(n)).collect();
        assert_eq!(
            days,
            vec![
                Some(date("2026-01-31")),
                Some(date("2026-04-30")),
                Some(date("2026-07-31")),
                Some(date("2026-10-31")),
                None
            ]
        );
        let weekly = Recurrence::parse(Some(&json!({
            "pattern": {"type": "weekly", "interval": 2},
            "range": {"type": "endDate", "startDate": "2026-12-01", "endDate": "2026-12-29"}
        })))
        .unwrap()
        .unwrap();
        assert_eq!(weekly.occurrence(2), Some(date("2026-12-29")));
        assert_eq!(weekly.occurrence(3), None);
        assert_eq!(Recurrence::parse(Some(&weekly.to_graph())).unwrap().unwrap(), weekly);
    }

    #[test]
    fn recurrence_patterns_reviews_do_not_support_are_refused() {
        for t in ["daily", "relativeMonthly", "absoluteYearly", "relativeYearly"] {
            let e = Recurrence::parse(Some(&json!({"pattern": {"type": t, "interval": 1},
                "range": {"type": "noEnd", "startDate": "2026-12-01"}})))
            .unwrap_err();
            assert!(e.to_string().contains("not supported"), "{t}: {e}");
        }
        assert!(Recurrence::parse(Some(&json!({"pattern": {"type": "weekly"}}))).is_err(), "no start date");
        assert!(
            Recurrence::parse(Some(&json!({"pattern": {"type": "weekly", "interval": 0},
            "range": {"startDate": "2026-12-01"}})))
            .is_err()
        );
        assert_eq!(Recurrence::parse(None).unwrap(), None);
        assert_eq!(Recurrence::parse(Some(&json!({"pattern": null, "range": null}))).unwrap(), None);
    }

    fn body(extra: Value) -> Map<String, Value> {
        let mut b = json!({
            "displayName": "Quarterly review",
            "scope": {"@odata.type": "#microsoft.graph.accessReviewQueryScope",
                      "query": format!("{ASSIGNMENTS_QUERY}?$filter=(accessPackageId eq '{P}')"), "queryType": "MicrosoftGraph"},
            "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
            "settings": {"instanceDurationInDays": 14, "defaultDecisionEnabled": true, "defaultDecision": "Deny",
                         "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 3},
                                        "range": {"type": "noEnd", "startDate": "2026-12-01"}}}
        });
        if let (Some(b), Value::Object(e)) = (b.as_object_mut(), extra) {
            b.extend(e);
        }
        b.as_object().unwrap().clone()
    }

    #[test]
    fn a_definition_body_parses_with_its_defaults_and_refuses_what_cannot_run() {
        let d = DefinitionInput::parse(&body(json!({}))).unwrap();
        assert!(!d.is_self_review());
        assert_eq!(d.settings.default_decision, DefaultDecision::Deny);
        assert_eq!(d.settings.recommendation_look_back.as_signed().as_secs(), 30 * 86_400);
        assert!(DefinitionInput::parse(&body(json!({"reviewers": []}))).unwrap().is_self_review());
        for (bad, says) in [
            (json!({"displayName": " "}), "displayName"),
            (json!({"scope": null}), "scope"),
            (json!({"settings": {"instanceDurationInDays": 0}}), "instanceDurationInDays"),
            (
                json!({"settings": {"instanceDurationInDays": 120,
                "recurrence": {"pattern": {"type": "weekly"}, "range": {"startDate": "2026-12-01"}}}}),
                "longer than",
            ),
            (json!({"settings": {"defaultDecision": "Maybe"}}), "default decision"),
            (
                json!({"stageSettings": [{"stageId": "1", "durationInDays": 3}, {"stageId": "2", "durationInDays": 3}]}),
                "depend",
            ),
        ] {
            let e = DefinitionInput::parse(&body(bad.clone())).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        let staged = DefinitionInput::parse(&body(json!({"stageSettings": [
            {"stageId": "1", "durationInDays": 3, "decisionsThatWillMoveToNextStage": ["NotReviewed", "Approve"],
             "reviewers": [{"query": "./manager", "queryRoot": "decisions"}]},
            {"stageId": "2", "dependsOn": ["1"], "durationInDays": 3,
             "reviewers": [{"query": format!("/users/{Q}")}]}]})))
        .unwrap();
        assert!(moves_to_next_stage(Decision::Approve, &staged.stages[0]));
        assert!(!moves_to_next_stage(Decision::Deny, &staged.stages[0]));
    }

    #[test]
    fn decisions_parse_strictly_and_approval_may_need_a_justification() {
        assert_eq!(Decision::parse_recordable("deny").unwrap(), Decision::Deny);
        assert!(Decision::parse_recordable("NotReviewed").is_err(), "reviewers cannot record NotReviewed");
        assert!(Decision::parse_recordable("Maybe").is_err());
        let mut settings = DefinitionInput::parse(&body(json!({}))).unwrap().settings;
        settings.justification_required_on_approval = true;
        let approve = Recording { decision: Decision::Approve, justification: None };
        assert!(approve.check(&settings).is_err());
        let deny = Recording { decision: Decision::Deny, justification: None };
        assert!(deny.check(&settings).is_ok());
    }

    #[test]
    fn unanswered_decisions_follow_the_default_and_only_deny_removes() {
        let mut s = DefinitionInput::parse(&body(json!({}))).unwrap().settings;
        assert_eq!(s.unanswered(Recommendation::Approve), Decision::Deny);
        s.default_decision = DefaultDecision::Recommendation;
        assert_eq!(s.unanswered(Recommendation::Approve), Decision::Approve);
        assert_eq!(s.unanswered(Recommendation::NoInfoAvailable), Decision::NotReviewed);
        s.default_decision_enabled = false;
        assert_eq!(s.unanswered(Recommendation::Deny), Decision::NotReviewed);
        assert_eq!(outcome(Decision::Deny), Outcome::Remove);
        assert_eq!(outcome(Decision::DontKnow), Outcome::Keep);
        assert_eq!(outcome(Decision::NotReviewed), Outcome::Keep);
    }

    #[test]
    fn inactive_or_no_longer_eligible_people_are_recommended_for_removal_with_the_reason() {
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let look_back = GraphDuration::from_secs(30 * 86_400);
        let recent = Activity {
            last_sign_in: Some("2026-11-20T00:00:00Z".parse().unwrap()),
            last_use: None,
            still_eligible: true,
        };
        assert_eq!(recommend(recent, look_back, now).0, Recommendation::Approve);
        let stale = Activity { last_sign_in: Some("2026-09-01T00:00:00Z".parse().unwrap()), ..recent };
        let (r, why) = recommend(stale, look_back, now);
        assert_eq!(r, Recommendation::Deny);
        assert!(why.contains("30 days") && why.contains("2026-09-01"), "{why}");
        let used = Activity { last_use: Some("2026-11-30T00:00:00Z".parse().unwrap()), ..stale };
        assert_eq!(recommend(used, look_back, now).0, Recommendation::Approve, "used the resource");
        let never = Activity { last_sign_in: None, last_use: None, still_eligible: true };
        assert_eq!(recommend(never, look_back, now).0, Recommendation::Deny);
        let moved = Activity { still_eligible: false, ..recent };
        let (r, why) = recommend(moved, look_back, now);
        assert_eq!(r, Recommendation::Deny);
        assert!(why.contains("No longer meets"), "{why}");
    }

    #[test]
    fn an_instance_runs_from_midnight_of_its_day_for_its_duration() {
        let (start, end) = instance_window(date("2026-12-01"), 14).unwrap();
        assert_eq!(start.to_string(), "2026-12-01T00:00:00Z");
        assert_eq!(end.to_string(), "2026-12-15T00:00:00Z");
    }
}
