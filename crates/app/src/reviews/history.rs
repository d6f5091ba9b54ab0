//! Access review history reports (Graph's `/identityGovernance/accessReviews/historyDefinitions`):
//! an auditor's one-time report of the decisions of the reviews that ran in a period, made at
//! once when the definition is created and kept as CSV with its one instance
//! (`steward_domain::review_history` parses the body, selects the decisions and writes the CSV).
//!
//! Who may: Steward administrators only. A report reaches across every review definition (its
//! scopes name definitions, not catalogs), so letting a catalog reader create one would need
//! every report cut down to their catalogs; until that is wanted, the simplest honest rule is
//! that reports, their instances and their downloads are an administrator's.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use steward_domain::DomainError;
use steward_domain::audit::Activity;
use steward_domain::ids::{AccessPackageId, ReviewDefinitionId, UserId};
use steward_domain::review::ReviewDecision;
use steward_domain::review_history::{HistoryInput, HistoryRow, HistoryScope, report_csv};
use steward_domain::time::format_datetime;
use steward_odata::CmpOp;

use super::{CHUNK, review_event};
use crate::auth::Principal;
use crate::ports::Page;
use crate::query::{Cond, ListQuery, REVIEW_DEFINITIONS, REVIEW_INSTANCES, Value as QValue};
use crate::{AppError, Services};

/// Audit target type of a history definition.
pub const HISTORY_DEFINITION: &str = "AccessReviewHistoryDefinition";
/// How long a report may be downloaded after it ran (Graph's `expirationDateTime`).
pub const EXPIRES_AFTER_DAYS: i64 = 30;

pub use steward_domain::ids::{HistoryDefinitionId, HistoryInstanceId};

/// Graph's `accessReviewHistoryStatus`. Steward makes a report at once, so what it stores is
/// `done`; the others are read back for completeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryStatus {
    Done,
    InProgress,
    Error,
    Requested,
}

impl HistoryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::InProgress => "inprogress",
            Self::Error => "error",
            Self::Requested => "requested",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        [Self::Done, Self::InProgress, Self::Error, Self::Requested]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                DomainError::invalid(format!("'{}' is not a history status.", steward_domain::text::clip(s, 40)))
            })
    }
}

/// A history definition as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryDefinition {
    pub id: HistoryDefinitionId,
    pub input: HistoryInput,
    pub status: HistoryStatus,
    /// The user who created it; none for an administrator token.
    pub created_by: Option<UserId>,
    pub created_date_time: Timestamp,
}

/// One run of a definition (its report is stored beside it and read only to download).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryInstance {
    pub id: HistoryInstanceId,
    pub definition_id: HistoryDefinitionId,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub run_at: Timestamp,
    pub fulfilled_at: Option<Timestamp>,
    pub expiration_at: Timestamp,
    pub status: HistoryStatus,
}

/// A definition's input as Graph's JSON, the body `HistoryInput::parse` reads back into the same
/// input: what the store keeps.
pub fn input_body(i: &HistoryInput) -> Value {
    json!({
        "displayName": i.display_name,
        "decisions": i.decisions.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "reviewHistoryPeriodStartDateTime": format_datetime(i.period_start),
        "reviewHistoryPeriodEndDateTime": format_datetime(i.period_end),
        "scopes": i.scopes.iter().map(scope_json).collect::<Vec<_>>(),
    })
}

/// One of a definition's scopes in Graph's shape (`accessReviewQueryScope`).
pub fn scope_json(s: &HistoryScope) -> Value {
    json!({"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": s.query(),
        "queryType": "MicrosoftGraph", "queryRoot": null})
}

fn check_admin(p: &Principal) -> Result<crate::lifecycle::Actor, AppError> {
    Ok(p.admin()?.actor())
}

/// Creates a history definition and runs its report at once (`POST …/historyDefinitions`):
/// the definition and its one instance, status `done`, fulfilled now and downloadable for
/// `EXPIRES_AFTER_DAYS`.
pub async fn create(
    s: &Services,
    p: &Principal,
    input: HistoryInput,
) -> Result<(HistoryDefinition, HistoryInstance), AppError> {
    let actor = check_admin(p)?;
    let now = s.clock.now();
    let report = report(s, &input).await?;
    let d = HistoryDefinition {
        id: HistoryDefinitionId::new(),
        status: HistoryStatus::Done,
        created_by: p.user_id(),
        created_date_time: now,
        input,
    };
    let i = HistoryInstance {
        id: HistoryInstanceId::new(),
        definition_id: d.id,
        period_start: d.input.period_start,
        period_end: d.input.period_end,
        run_at: now,
        fulfilled_at: Some(now),
        expiration_at: now.checked_add(SignedDuration::from_hours(24 * EXPIRES_AFTER_DAYS)).unwrap_or(now),
        status: HistoryStatus::Done,
    };
    let event = review_event(Activity::CreateAccessReview, &actor, HISTORY_DEFINITION, d.id, d.id, now)
        .with_detail(crate::audit::named(&d.input.display_name));
    s.store.insert_review_history(&d, &i, &report, &event).await?;
    Ok((d, i))
}

/// The definition (404 when there is none).
pub async fn get_definition(
    s: &Services,
    p: &Principal,
    id: HistoryDefinitionId,
) -> Result<HistoryDefinition, AppError> {
    check_admin(p)?;
    s.store
        .get_review_history_definition(id)
        .await?
        .ok_or_else(|| AppError::not_found("access review history definition", id))
}

/// The definitions `q` selects (`REVIEW_HISTORY_DEFINITIONS`).
pub async fn list_definitions(s: &Services, p: &Principal, q: &ListQuery) -> Result<Page<HistoryDefinition>, AppError> {
    check_admin(p)?;
    Ok(s.store.list_review_history_definitions(q).await?)
}

/// Deletes a definition with its instances and their reports.
pub async fn delete_definition(s: &Services, p: &Principal, id: HistoryDefinitionId) -> Result<(), AppError> {
    let actor = check_admin(p)?;
    let d = get_definition(s, p, id).await?;
    let event = review_event(Activity::DeleteAccessReview, &actor, HISTORY_DEFINITION, id, id, s.clock.now())
        .with_detail(crate::audit::named(&d.input.display_name));
    Ok(s.store.delete_review_history_definition(id, &event).await?)
}

/// A definition's instances, earliest run first.
pub async fn list_instances(
    s: &Services,
    p: &Principal,
    id: HistoryDefinitionId,
) -> Result<(HistoryDefinition, Vec<HistoryInstance>), AppError> {
    let d = get_definition(s, p, id).await?;
    let instances = s.store.review_history_instances(id).await?;
    Ok((d, instances))
}

/// One instance of a definition (404 when it belongs to another).
pub async fn get_instance(
    s: &Services,
    p: &Principal,
    id: HistoryDefinitionId,
    instance: HistoryInstanceId,
) -> Result<HistoryInstance, AppError> {
    check_admin(p)?;
    match s.store.get_review_history_instance(instance).await? {
        Some(i) if i.definition_id == id => Ok(i),
        _ => Err(AppError::not_found("access review history instance", instance)),
    }
}

/// An instance's report as CSV (404 when the instance belongs to another definition; 409 once
/// it expired: the definition is there to see, and a new report of the same period is made by
/// creating it again).
pub async fn download(
    s: &Services,
    p: &Principal,
    id: HistoryDefinitionId,
    instance: HistoryInstanceId,
) -> Result<(HistoryInstance, String), AppError> {
    check_admin(p)?;
    match s.store.review_history_report(instance).await? {
        Some((i, _)) if i.definition_id == id && i.expiration_at <= s.clock.now() => Err(AppError::Conflict(format!(
            "This report expired at {}; create a new history definition for the period.",
            format_datetime(i.expiration_at)
        ))),
        Some((i, csv)) if i.definition_id == id => Ok((i, csv)),
        _ => Err(AppError::not_found("access review history instance", instance)),
    }
}

/// The names a report shows, read in bulk and kept across chunks of decisions.
#[derive(Default)]
struct Names {
    users: HashMap<UserId, (String, String)>,
    packages: HashMap<AccessPackageId, String>,
    definitions: HashMap<ReviewDefinitionId, String>,
}

impl Names {
    async fn read(&mut self, s: &Services, decisions: &[ReviewDecision]) -> Result<(), AppError> {
        let mut users: Vec<UserId> = decisions
            .iter()
            .flat_map(|d| [Some(d.principal_id), d.reviewed_by, d.applied_by])
            .flatten()
            .filter(|u| !self.users.contains_key(u))
            .collect();
        users.sort_unstable();
        users.dedup();
        if !users.is_empty() {
            for u in s.store.users_by_id(&users).await? {
                self.users.insert(u.id, (u.display_name.as_str().to_owned(), u.user_principal_name));
            }
        }
        let mut packages: Vec<AccessPackageId> =
            decisions.iter().map(|d| d.access_package_id).filter(|p| !self.packages.contains_key(p)).collect();
        packages.sort_unstable();
        packages.dedup();
        if !packages.is_empty() {
            for p in s.store.packages_by_id(&packages).await? {
                self.packages.insert(p.id, p.display_name.as_str().to_owned());
            }
        }
        Ok(())
    }

    /// Reads the names of the review definitions `ids` not read yet, a page at a time.
    async fn read_definitions(&mut self, s: &Services, ids: &[ReviewDefinitionId]) -> Result<(), AppError> {
        let mut missing: Vec<ReviewDefinitionId> =
            ids.iter().copied().filter(|d| !self.definitions.contains_key(d)).collect();
        missing.sort_unstable();
        missing.dedup();
        let Some(field) = REVIEW_DEFINITIONS.field("id") else { return Ok(()) };
        for chunk in missing.chunks(200) {
            let values = chunk.iter().map(|d| QValue::Text(d.to_string())).collect();
            let q = ListQuery::all(&REVIEW_DEFINITIONS).and(Cond::In { field, values, lower: false });
            for d in s.store.list_review_definitions(&q).await?.items {
                self.definitions.insert(d.id, d.input.display_name);
            }
        }
        Ok(())
    }

    fn user(&self, u: Option<UserId>) -> (&str, &str) {
        u.and_then(|u| self.users.get(&u)).map_or(("", ""), |(n, upn)| (n.as_str(), upn.as_str()))
    }
}

/// The instances of reviews that overlap the period (started before its end and ended after its
/// start), of the definitions the scopes name: one query over `REVIEW_INSTANCES`, paged.
fn overlapping(input: &HistoryInput) -> Result<ListQuery, AppError> {
    let field = |path: &str| {
        REVIEW_INSTANCES
            .field(path)
            .ok_or_else(|| AppError::Invalid(format!("Access review instances cannot be filtered by {path}.")))
    };
    let micros = |t: Timestamp| QValue::Int(steward_domain::time::to_micros(t));
    let mut terms = vec![
        Cond::Cmp { field: field("startDateTime")?, op: CmpOp::Lt, value: micros(input.period_end), lower: false },
        Cond::Cmp { field: field("endDateTime")?, op: CmpOp::Gt, value: micros(input.period_start), lower: false },
    ];
    let named: Vec<QValue> = input
        .scopes
        .iter()
        .filter_map(|s| match s {
            HistoryScope::Definition(d) => Some(QValue::Text(d.to_string())),
            HistoryScope::All => None,
        })
        .collect();
    if !input.scopes.is_empty() && !input.scopes.contains(&HistoryScope::All) {
        terms.push(Cond::In { field: field("definition/id")?, values: named, lower: false });
    }
    Ok(ListQuery::all(&REVIEW_INSTANCES).and(Cond::And(terms)))
}

/// Makes the report: every decision `input.selects` of the instances overlapping the period,
/// with the decision as it stands now (final once the instance ended; an instance still in
/// progress shows what is decided so far), walked `CHUNK` decisions at a time, names read in
/// bulk per chunk. Lines follow the instances' start and then the decisions' ids.
async fn report(s: &Services, input: &HistoryInput) -> Result<String, AppError> {
    let mut names = Names::default();
    let mut out = String::new();
    let mut q = overlapping(input)?;
    loop {
        let page = s.store.list_review_instances(&q).await?;
        let defs: Vec<ReviewDefinitionId> = page.items.iter().map(|i| i.definition_id).collect();
        names.read_definitions(s, &defs).await?;
        for inst in &page.items {
            let mut after = None;
            loop {
                let chunk = s.store.review_decisions_of(inst.id, after, CHUNK).await?;
                let Some(last) = chunk.last() else { break };
                after = Some(last.id);
                let full = chunk.len() >= usize::try_from(CHUNK).unwrap_or(usize::MAX);
                let kept: Vec<ReviewDecision> = chunk
                    .into_iter()
                    .filter(|d| input.selects(inst.definition_id, inst.start, inst.end, d.decision))
                    .collect();
                names.read(s, &kept).await?;
                let review = names.definitions.get(&inst.definition_id).map_or("", String::as_str);
                let rows: Vec<HistoryRow<'_>> = kept
                    .iter()
                    .map(|d| {
                        let (principal_name, principal_upn) = names.user(Some(d.principal_id));
                        HistoryRow {
                            review,
                            instance_start: inst.start,
                            instance_end: inst.end,
                            decision: d,
                            principal_name,
                            principal_upn,
                            package_name: names.packages.get(&d.access_package_id).map_or("", String::as_str),
                            reviewed_by_name: names.user(d.reviewed_by).0,
                            // Applied with no user: by Steward itself (or an administrator token).
                            applied_by_name: match (d.applied_by, d.applied_at) {
                                (Some(u), _) => names.user(Some(u)).0,
                                (None, Some(_)) => "Steward",
                                (None, None) => "",
                            },
                        }
                    })
                    .collect();
                append(&mut out, &rows);
                if !full {
                    break;
                }
            }
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    if out.is_empty() {
        out = report_csv(&[]);
    }
    Ok(out)
}

/// Appends rows to a report being written: `report_csv` writes its header first, which only
/// the report's first lines keep.
fn append(out: &mut String, rows: &[HistoryRow<'_>]) {
    if rows.is_empty() {
        return;
    }
    let csv = report_csv(rows);
    if out.is_empty() {
        out.push_str(&csv);
    } else if let Some((_, body)) = csv.split_once("\r\n") {
        out.push_str(body);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_stored_body_parses_back_into_the_same_input() {
        let def = ReviewDefinitionId::new();
        let body = json!({"displayName": "Q3", "decisions": ["deny", "NotReviewed"],
            "reviewHistoryPeriodStartDateTime": "2031-01-01T00:00:00Z", "reviewHistoryPeriodEndDateTime": "2031-04-01T00:00:00Z",
            "scopes": [{"query": format!("/identityGovernance/accessReviews/definitions/{def}")}]});
        let input = HistoryInput::parse(body.as_object().unwrap()).unwrap();
        let back = HistoryInput::parse(input_body(&input).as_object().unwrap()).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn ids_and_statuses_read_back() {
        let id = HistoryDefinitionId::new();
        assert_eq!(id.to_string().parse::<HistoryDefinitionId>().unwrap(), id);
        assert!("nope".parse::<HistoryInstanceId>().unwrap_err().to_string().contains("history instance"));
        for s in ["done", "inprogress", "error", "requested"] {
            assert_eq!(HistoryStatus::parse(s).unwrap().as_str(), s);
        }
    }
}
