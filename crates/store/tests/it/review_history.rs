//! Access review history reports in the store: a definition written with its one instance, its
//! report and its audit event in one transaction (nothing written when a part fails), read
//! back as written, listed with filters (the display name folded), its instances with and
//! without the report, and deleted with them by cascade.

use jiff::Timestamp;
use serde_json::json;
use steward_app::Store;
use steward_app::query::REVIEW_HISTORY_DEFINITIONS;
use steward_app::reviews::history::{
    HistoryDefinition, HistoryDefinitionId, HistoryInstance, HistoryInstanceId, HistoryStatus,
};
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::ids::{ReviewDefinitionId, UserId};
use steward_domain::review_history::HistoryInput;
use steward_store::SqlStore;

use crate::fixtures::*;

fn definition(name: &str, created: Timestamp, scoped: Option<ReviewDefinitionId>) -> HistoryDefinition {
    let scopes = match scoped {
        Some(d) => json!([{"query": format!("/identityGovernance/accessReviews/definitions/{d}")}]),
        None => json!([{"query": "/identityGovernance/accessReviews/definitions"}]),
    };
    let body = json!({"displayName": name, "decisions": ["approve", "deny", "notReviewed"],
        "reviewHistoryPeriodStartDateTime": "2030-01-01T00:00:00Z",
        "reviewHistoryPeriodEndDateTime": "2030-04-01T00:00:00.5Z", "scopes": scopes});
    HistoryDefinition {
        id: HistoryDefinitionId::new(),
        input: HistoryInput::parse(body.as_object().unwrap()).unwrap(),
        status: HistoryStatus::Done,
        created_by: Some(UserId::new()),
        created_date_time: created,
    }
}

fn instance(d: &HistoryDefinition) -> HistoryInstance {
    HistoryInstance {
        id: HistoryInstanceId::new(),
        definition_id: d.id,
        period_start: d.input.period_start,
        period_end: d.input.period_end,
        run_at: d.created_date_time,
        fulfilled_at: Some(d.created_date_time),
        expiration_at: d.created_date_time.saturating_add(jiff::SignedDuration::from_hours(30 * 24)).unwrap(),
        status: HistoryStatus::Done,
    }
}

fn event(target: impl ToString) -> AuditEvent {
    let t = target.to_string();
    AuditEvent::new(at(0), Activity::CreateAccessReview, Initiator::System, "AccessReviewHistoryDefinition", &t, &t)
}

const REPORT: &str = "Review,Decision\r\n\"Ledger, Q1\",Deny\r\n'=SUM(A1),Approve\r\n";

pub async fn history_reports_round_trip(s: SqlStore) {
    let d = definition("Äudit of Q1", at(1), None);
    let i = instance(&d);
    s.insert_review_history(&d, &i, REPORT, &event(d.id)).await.unwrap();
    assert_eq!(s.get_review_history_definition(d.id).await.unwrap(), Some(d.clone()), "the input parses back equal");
    assert_eq!(s.get_review_history_instance(i.id).await.unwrap(), Some(i.clone()));
    assert_eq!(s.review_history_report(i.id).await.unwrap(), Some((i.clone(), REPORT.to_owned())));
    assert_eq!(s.review_history_instances(d.id).await.unwrap(), vec![i.clone()]);
    assert_eq!(s.events_of(&d.id.to_string()).await.unwrap().len(), 1, "the event came with the report");
    assert_eq!(s.get_review_history_definition(HistoryDefinitionId::new()).await.unwrap(), None);
    assert_eq!(s.get_review_history_instance(HistoryInstanceId::new()).await.unwrap(), None);
    assert_eq!(s.review_history_report(HistoryInstanceId::new()).await.unwrap(), None);

    // Ids are unique; a failed write leaves nothing behind, its event included.
    let twin = HistoryDefinition { id: d.id, ..definition("Twin", at(2), None) };
    assert_conflict(s.insert_review_history(&twin, &instance(&twin), "", &event("twin")).await, "a taken id");
    let other = definition("Other", at(3), Some(ReviewDefinitionId::new()));
    let clash = HistoryInstance { id: i.id, ..instance(&other) };
    assert_conflict(s.insert_review_history(&other, &clash, "", &event(other.id)).await, "a taken instance id");
    assert_eq!(s.get_review_history_definition(other.id).await.unwrap(), None, "the definition was rolled back");
    assert!(s.events_of(&other.id.to_string()).await.unwrap().is_empty(), "and its event");
    s.insert_review_history(&other, &instance(&other), REPORT, &event(other.id)).await.unwrap();
    let third = definition("third report", at(4), None);
    s.insert_review_history(&third, &instance(&third), "", &event(third.id)).await.unwrap();

    // Lists: by creation by default; filters on the folded display name, status, creation.
    let names = async |q: &str| -> Vec<String> {
        let page = s.list_review_history_definitions(&query(&REVIEW_HISTORY_DEFINITIONS, q)).await.unwrap();
        page.items.iter().map(|d| d.input.display_name.clone()).collect()
    };
    assert_eq!(names("").await, vec!["Äudit of Q1", "Other", "third report"]);
    assert_eq!(names("$orderby=displayName").await, vec!["Other", "third report", "Äudit of Q1"], "bytewise");
    assert_eq!(names("$filter=contains(displayName,'äUDIT')").await, vec!["Äudit of Q1"]);
    assert_eq!(
        names("$filter=status eq 'done' and createdDateTime ge 2030-03-18T00:00:00.000003Z").await,
        vec!["Other", "third report"]
    );
    assert_eq!(names(&format!("$filter=createdBy/id eq '{}'", d.created_by.unwrap())).await, vec!["Äudit of Q1"]);
    let counted =
        s.list_review_history_definitions(&query(&REVIEW_HISTORY_DEFINITIONS, "$top=2&$count=true")).await.unwrap();
    assert_eq!((counted.items.len(), counted.count, counted.next.is_some()), (2, Some(3), true));

    // Deleting a definition takes its instances and reports; a second delete finds nothing.
    let delete = event(d.id);
    s.delete_review_history_definition(d.id, &delete).await.unwrap();
    assert_eq!(s.get_review_history_definition(d.id).await.unwrap(), None);
    assert_eq!(s.get_review_history_instance(i.id).await.unwrap(), None);
    assert_eq!(s.review_history_report(i.id).await.unwrap(), None);
    assert!(s.review_history_instances(d.id).await.unwrap().is_empty());
    assert_eq!(s.events_of(&d.id.to_string()).await.unwrap().len(), 2, "the deletion is recorded");
    assert_not_found(s.delete_review_history_definition(d.id, &event(d.id)).await, "a deleted definition");
    assert_eq!(names("").await, vec!["Other", "third report"]);
}
