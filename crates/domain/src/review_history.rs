//! Access review history reports (Graph's `accessReviewHistoryDefinition` and
//! `accessReviewHistoryInstance`): which decisions an auditor asks for (a period, the decision
//! values, which review definitions), parsed from Graph's body with clear errors, and the
//! report itself as CSV, one line per decision.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::DomainError;
use crate::ids::ReviewDefinitionId;
use crate::review::{Decision, ReviewDecision};
use crate::text::{DISPLAY_NAME_MAX, clip};
use crate::time::{format_datetime, parse_datetime};

/// The path a history definition's scope names review definitions by.
pub const DEFINITIONS_QUERY: &str = "/identityGovernance/accessReviews/definitions";
/// Longest period a report may cover.
pub const PERIOD_DAYS_MAX: i64 = 5 * 366;

/// Which decisions a report lists (Graph's `accessReviewHistoryDecisionFilter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionFilter {
    Approve,
    Deny,
    NotReviewed,
    DontKnow,
    /// Decisions nobody was asked for: Steward always asks someone, so this selects nothing.
    NotNotified,
}

impl DecisionFilter {
    pub const ALL: [Self; 5] = [Self::Approve, Self::Deny, Self::NotReviewed, Self::DontKnow, Self::NotNotified];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::NotReviewed => "notReviewed",
            Self::DontKnow => "dontKnow",
            Self::NotNotified => "notNotified",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL.into_iter().find(|d| d.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            DomainError::invalid(format!(
                "'{}' is not a decision filter; expected approve, deny, notReviewed, dontKnow or notNotified.",
                clip(s, 64)
            ))
        })
    }

    /// Whether a final decision of this value is listed.
    pub fn selects(self, d: Decision) -> bool {
        matches!(
            (self, d),
            (Self::Approve, Decision::Approve)
                | (Self::Deny, Decision::Deny)
                | (Self::NotReviewed, Decision::NotReviewed)
                | (Self::DontKnow, Decision::DontKnow)
        )
    }
}

/// The review definitions a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    /// Every review definition (Steward's all review access package assignments).
    All,
    /// One definition (`/identityGovernance/accessReviews/definitions/{id}`).
    Definition(ReviewDefinitionId),
}

impl HistoryScope {
    /// Parses the `query` of one of `scopes`.
    fn parse(query: &str) -> Result<Self, DomainError> {
        let q = query.trim().trim_start_matches("/v1.0");
        let Some(rest) = q.strip_prefix(DEFINITIONS_QUERY) else {
            return Err(DomainError::invalid(format!(
                "The history scope '{}' is not supported; use {DEFINITIONS_QUERY} (every review, with an optional \
                 $filter such as contains(scope/query, 'accessPackageAssignments')) or {DEFINITIONS_QUERY}/<id>.",
                clip(query, 200)
            )));
        };
        if rest.is_empty() || rest.starts_with('?') {
            return Ok(Self::All);
        }
        let id = rest.trim_start_matches('/');
        Ok(Self::Definition(id.parse()?))
    }

    pub fn query(&self) -> String {
        match self {
            Self::All => DEFINITIONS_QUERY.to_owned(),
            Self::Definition(id) => format!("{DEFINITIONS_QUERY}/{id}"),
        }
    }

    /// Whether decisions of definition `d` are in scope.
    pub fn covers(&self, d: ReviewDefinitionId) -> bool {
        match self {
            Self::All => true,
            Self::Definition(id) => *id == d,
        }
    }
}

/// A history definition's body, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryInput {
    pub display_name: String,
    /// Empty: every decision value.
    pub decisions: Vec<DecisionFilter>,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// Empty: every definition.
    pub scopes: Vec<HistoryScope>,
}

impl HistoryInput {
    /// Parses `POST …/historyDefinitions`. One-time reports only: a `scheduleSettings` with a
    /// recurrence is refused with what is supported.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, DomainError> {
        let display_name = match body.get("displayName") {
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= DISPLAY_NAME_MAX => s.clone(),
            Some(Value::String(s)) if !s.trim().is_empty() => {
                return Err(DomainError::invalid(format!(
                    "'displayName' may be at most {DISPLAY_NAME_MAX} characters."
                )));
            }
            _ => return Err(DomainError::invalid("'displayName' is required.")),
        };
        let time = |k: &str| -> Result<Timestamp, DomainError> {
            match body.get(k) {
                Some(Value::String(s)) => parse_datetime(s),
                _ => Err(DomainError::invalid(format!(
                    "'{k}' is required (a date and time, such as 2026-01-01T00:00:00Z)."
                ))),
            }
        };
        let period_start = time("reviewHistoryPeriodStartDateTime")?;
        let period_end = time("reviewHistoryPeriodEndDateTime")?;
        if period_end <= period_start {
            return Err(DomainError::invalid(
                "'reviewHistoryPeriodEndDateTime' must be after 'reviewHistoryPeriodStartDateTime'.",
            ));
        }
        if period_end.duration_since(period_start).as_secs() > PERIOD_DAYS_MAX * 86_400 {
            return Err(DomainError::invalid(format!("A report covers at most {PERIOD_DAYS_MAX} days.")));
        }
        let decisions = match body.get("decisions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                a.iter().map(|d| DecisionFilter::parse(d.as_str().unwrap_or(""))).collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => return Err(DomainError::invalid("'decisions' must be a list of decision filters.")),
        };
        let scopes = match body.get("scopes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|s| match s.get("query").and_then(Value::as_str) {
                    Some(q) => HistoryScope::parse(q),
                    None => Err(DomainError::invalid("Each of 'scopes' needs a 'query'.")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(DomainError::invalid("'scopes' must be a list of accessReviewQueryScope.")),
        };
        if body.get("scheduleSettings").is_some_and(|s| !s.is_null()) {
            return Err(DomainError::invalid(
                "Recurring history reports (scheduleSettings) are not supported; create a one-time report for the \
                 period you need.",
            ));
        }
        Ok(Self { display_name, decisions, period_start, period_end, scopes })
    }

    /// Whether a final decision of definition `definition`, on an instance that ran from
    /// `start` to `end`, belongs in the report: the instance overlaps the period, the
    /// definition is in scope and the decision value is asked for.
    pub fn selects(&self, definition: ReviewDefinitionId, start: Timestamp, end: Timestamp, d: Decision) -> bool {
        start < self.period_end
            && end > self.period_start
            && (self.scopes.is_empty() || self.scopes.iter().any(|s| s.covers(definition)))
            && (self.decisions.is_empty() || self.decisions.iter().any(|f| f.selects(d)))
    }
}

/// One line of a report: a decision with the names an auditor reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow<'a> {
    pub review: &'a str,
    pub instance_start: Timestamp,
    pub instance_end: Timestamp,
    pub decision: &'a ReviewDecision,
    pub principal_name: &'a str,
    pub principal_upn: &'a str,
    pub package_name: &'a str,
    pub reviewed_by_name: &'a str,
    pub applied_by_name: &'a str,
}

const HEADER: &[&str] = &[
    "Review",
    "Review definition id",
    "Instance id",
    "Instance start",
    "Instance end",
    "Principal",
    "Principal user principal name",
    "Principal id",
    "Access package",
    "Access package id",
    "Assignment id",
    "Decision",
    "Justification",
    "Reviewed by",
    "Reviewed",
    "Recommendation",
    "Recommendation reason",
    "Apply result",
    "Applied by",
    "Applied",
];

/// The report: a header line, then one line per row.
pub fn report_csv(rows: &[HistoryRow<'_>]) -> String {
    let mut out = crate::csv::line(HEADER);
    let when = |t: Option<Timestamp>| t.map(format_datetime).unwrap_or_default();
    for r in rows {
        let d = r.decision;
        out.push_str(&crate::csv::line(&[
            r.review,
            &d.definition_id.to_string(),
            &d.instance_id.to_string(),
            &format_datetime(r.instance_start),
            &format_datetime(r.instance_end),
            r.principal_name,
            r.principal_upn,
            &d.principal_id.to_string(),
            r.package_name,
            &d.access_package_id.to_string(),
            &d.assignment_id.to_string(),
            d.decision.as_str(),
            d.justification.as_deref().unwrap_or(""),
            r.reviewed_by_name,
            &when(d.reviewed_at),
            d.recommendation.as_str(),
            d.recommendation_reason.as_deref().unwrap_or(""),
            d.apply_result.as_str(),
            r.applied_by_name,
            &when(d.applied_at),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;
    use crate::ids::{AccessPackageId, AssignmentId, ReviewDecisionId, ReviewInstanceId, UserId};
    use crate::review::{ApplyResult, Recommendation};

    fn body(extra: Value) -> Map<String, Value> {
        let mut b = json!({"displayName": "Last quarter", "decisions": ["approve", "deny", "notReviewed"],
            "reviewHistoryPeriodStartDateTime": "2026-07-01T00:00:00Z", "reviewHistoryPeriodEndDateTime": "2026-10-01T00:00:00Z",
            "scopes": [{"@odata.type": "#microsoft.graph.accessReviewQueryScope",
                        "query": "/identityGovernance/accessReviews/definitions?$filter=contains(scope/query, 'accessPackageAssignments')",
                        "queryType": "MicrosoftGraph"}]});
        if let (Some(b), Value::Object(e)) = (b.as_object_mut(), extra) {
            b.extend(e);
        }
        b.as_object().unwrap().clone()
    }

    #[test]
    fn a_one_time_report_parses_and_selects_by_period_scope_and_value() {
        let h = HistoryInput::parse(&body(json!({}))).unwrap();
        assert_eq!(h.scopes, vec![HistoryScope::All]);
        let def = ReviewDefinitionId::new();
        let (in_start, in_end) = ("2026-09-20T00:00:00Z".parse().unwrap(), "2026-10-04T00:00:00Z".parse().unwrap());
        assert!(h.selects(def, in_start, in_end, Decision::Deny), "overlaps the period's end");
        assert!(!h.selects(def, in_start, in_end, Decision::DontKnow), "not asked for");
        let after = "2026-10-01T00:00:00Z".parse().unwrap();
        assert!(!h.selects(def, after, "2026-10-15T00:00:00Z".parse().unwrap(), Decision::Deny));
        let one =
            HistoryInput::parse(&body(json!({"scopes": [{"query": format!("{DEFINITIONS_QUERY}/{def}")}]}))).unwrap();
        assert!(one.selects(def, in_start, in_end, Decision::Approve));
        assert!(!one.selects(ReviewDefinitionId::new(), in_start, in_end, Decision::Approve));
    }

    #[test]
    fn reports_that_cannot_be_made_are_refused_with_the_reason() {
        for (bad, says) in [
            (json!({"displayName": ""}), "displayName"),
            (json!({"reviewHistoryPeriodEndDateTime": "2026-06-01T00:00:00Z"}), "after"),
            (json!({"decisions": ["maybe"]}), "decision filter"),
            (json!({"scopes": [{"query": "/groups"}]}), "not supported"),
            (json!({"scheduleSettings": {"reportRange": "P1M"}}), "Recurring"),
        ] {
            let e = HistoryInput::parse(&body(bad.clone())).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_report_is_one_csv_line_per_decision_after_a_header() {
        let at: Timestamp = "2026-09-01T00:00:00Z".parse().unwrap();
        let d = ReviewDecision {
            id: ReviewDecisionId::new(),
            instance_id: ReviewInstanceId::new(),
            definition_id: ReviewDefinitionId::new(),
            assignment_id: AssignmentId::new(),
            principal_id: UserId::new(),
            access_package_id: AccessPackageId::new(),
            policy_id: None,
            stage: 0,
            reviewers: vec![],
            decision: Decision::Deny,
            justification: Some("Left, the team".into()),
            reviewed_by: None,
            reviewed_at: Some(at),
            recommendation: Recommendation::Deny,
            recommendation_reason: Some("Inactive".into()),
            apply_result: ApplyResult::AppliedSuccessfully,
            applied_by: None,
            applied_at: Some(at),
            history: vec![],
            last_modified_date_time: at,
        };
        let row = HistoryRow {
            review: "Ledger",
            instance_start: at,
            instance_end: at,
            decision: &d,
            principal_name: "Ann",
            principal_upn: "ann@contoso.example",
            package_name: "=Ledger",
            reviewed_by_name: "Mona",
            applied_by_name: "Steward",
        };
        let csv = report_csv(&[row]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].starts_with("Review,Review definition id"));
        assert!(
            lines[1].contains(",Deny,\"Left, the team\",Mona,2026-09-01T00:00:00Z,Deny,Inactive,AppliedSuccessfully")
        );
        assert!(lines[1].contains(",'=Ledger,"), "formulas are defused: {}", lines[1]);
    }
}
