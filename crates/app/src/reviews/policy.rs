//! The access review an assignment policy's `reviewSettings` (Graph's
//! `accessPackageAssignmentReviewSettings`) asks for: read into a definition over that policy's
//! assignments (`input_of_policy`, checked before the policy is written, so bad settings are a
//! 400 and nothing is written), and kept in step when the policy is created, replaced or deleted
//! (`sync`, `policy_deleted`). Turning reviews off stops the definition, keeping its history.

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use steward_domain::audit::Activity;
use steward_domain::duration::GraphDuration;
use steward_domain::ids::PolicyId;
use steward_domain::policy::AssignmentPolicy;
use steward_domain::review::{ASSIGNMENTS_QUERY, DefinitionInput, ReviewStatus};
use steward_domain::text::clip;
use steward_domain::time::next_modified;

use super::{DEFINITION, new_definition, replaced, review_event};
use crate::lifecycle::Actor;
use crate::ports::{Batch, Put};
use crate::{AppError, Services};

fn invalid(m: impl Into<String>) -> AppError {
    AppError::Invalid(format!("reviewSettings: {}", m.into()))
}

/// A subject set as a reviewer scope.
fn reviewer_of(set: &Value) -> Result<Value, AppError> {
    let ty = set.get("@odata.type").and_then(Value::as_str).unwrap_or("");
    let ty = ty.trim_start_matches('#').trim_start_matches("microsoft.graph.");
    let id = |k: &str| {
        set.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("a {ty} reviewer needs '{k}'.")))
    };
    match ty.to_ascii_lowercase().as_str() {
        "singleuser" => Ok(json!({"query": format!("/users/{}", id("userId")?), "queryType": "MicrosoftGraph"})),
        "groupmembers" => Ok(json!({"query": format!("/groups/{}/transitiveMembers", id("groupId")?),
            "queryType": "MicrosoftGraph"})),
        "requestormanager" | "targetmanager" => {
            Ok(json!({"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}))
        }
        other => Err(invalid(format!(
            "'{}' cannot review access; use singleUser, groupMembers or requestorManager.",
            clip(other, 64)
        ))),
    }
}

fn reviewers_of(v: Option<&Value>, what: &str) -> Result<Vec<Value>, AppError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(reviewer_of).collect(),
        Some(_) => Err(invalid(format!("'{what}' must be a list of subject sets."))),
    }
}

/// The definition a policy's `reviewSettings` ask for, or `None` when reviews are off (absent,
/// null, or `isEnabled` false).
pub fn input_of_policy(p: &AssignmentPolicy) -> Result<Option<DefinitionInput>, AppError> {
    let Some(Value::Object(rs)) = p.settings.review_settings.as_ref() else { return Ok(None) };
    if !rs.get("isEnabled").and_then(Value::as_bool).unwrap_or(false) {
        return Ok(None);
    }
    let flag = |k: &str| rs.get(k).and_then(Value::as_bool).unwrap_or(false);
    let self_review = flag("isSelfReview");
    let primary = if self_review { Vec::new() } else { reviewers_of(rs.get("primaryReviewers"), "primaryReviewers")? };
    if !self_review && primary.is_empty() {
        return Err(invalid("name at least one of primaryReviewers, or set isSelfReview."));
    }
    let fallback = reviewers_of(rs.get("fallbackReviewers"), "fallbackReviewers")?;
    let (enabled, default) = match rs.get("expirationBehavior").and_then(Value::as_str).unwrap_or("keepAccess") {
        b if b.eq_ignore_ascii_case("keepAccess") => (false, "Approve"),
        b if b.eq_ignore_ascii_case("removeAccess") => (true, "Deny"),
        b if b.eq_ignore_ascii_case("acceptAccessRecommendation") => (true, "Recommendation"),
        other => {
            return Err(invalid(format!(
                "expirationBehavior '{}' is not one of keepAccess, removeAccess, acceptAccessRecommendation.",
                clip(other, 64)
            )));
        }
    };
    let schedule = rs.get("schedule").filter(|v| !v.is_null());
    let start_day = schedule
        .and_then(|s| s.get("startDateTime"))
        .and_then(Value::as_str)
        .map(|s| steward_domain::time::parse_datetime(s).map_err(|e| invalid(format!("schedule.startDateTime: {e}"))))
        .transpose()?
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string());
    let days = match schedule.and_then(|s| s.get("expiration")).and_then(|e| e.get("duration")).and_then(Value::as_str)
    {
        Some(d) => {
            let secs = GraphDuration::parse(d).map_err(|e| invalid(format!("schedule.expiration.duration: {e}")))?;
            (secs.as_signed().as_secs() / 86_400).max(1)
        }
        None => 14,
    };
    let mut recurrence = schedule.and_then(|s| s.get("recurrence")).filter(|v| !v.is_null()).cloned();
    if let (Some(Value::Object(r)), Some(day)) = (recurrence.as_mut(), start_day.as_ref()) {
        let range = r.entry("range").or_insert_with(|| json!({"type": "noEnd"}));
        if let Value::Object(range) = range
            && !range.contains_key("startDate")
        {
            range.insert("startDate".into(), Value::String(day.clone()));
        }
    }
    let body = json!({
        "displayName": format!("Review of {}", clip(p.display_name.as_str(), 200)),
        "descriptionForReviewers": "Does this person still need this access package?",
        "scope": {"@odata.type": "#microsoft.graph.accessReviewQueryScope", "queryType": "MicrosoftGraph",
            "query": format!("{ASSIGNMENTS_QUERY}?$filter=(accessPackageId eq '{}' and assignmentPolicyId eq '{}')",
                p.access_package_id, p.id)},
        "reviewers": primary,
        "fallbackReviewers": fallback,
        "settings": {
            "instanceDurationInDays": days,
            "defaultDecisionEnabled": enabled,
            "defaultDecision": default,
            "autoApplyDecisionsEnabled": true,
            "recommendationsEnabled": flag("isRecommendationEnabled"),
            "justificationRequiredOnApproval": flag("isReviewerJustificationRequired"),
            "recurrence": recurrence,
        },
    });
    let Value::Object(map) = body else { return Ok(None) };
    let map: Map<String, Value> = map;
    let mut input = DefinitionInput::parse(&map).map_err(|e| invalid(e.to_string()))?;
    input.scope.catalog = Some(p.catalog_id);
    Ok(Some(input))
}

/// Keeps the policy's review in step with `input` (what `input_of_policy` read): creates it,
/// replaces its content, or stops it when reviews were turned off.
pub(crate) async fn sync(
    s: &Services,
    actor: &Actor,
    p: &AssignmentPolicy,
    input: Option<DefinitionInput>,
) -> Result<(), AppError> {
    let existing = s.store.review_definition_of_policy(p.id).await?;
    let now = s.clock.now();
    let (row, activity, detail) = match (existing, input) {
        (None, None) => return Ok(()),
        (None, Some(i)) => {
            let mut d = new_definition(i, None, now);
            d.policy_id = Some(p.id);
            let detail = crate::audit::named(&d.input.display_name);
            (Put::New(d), Activity::CreateAccessReview, detail)
        }
        (Some(d), Some(i)) if d.input == i => return Ok(()),
        (Some(d), Some(i)) => {
            let row = replaced(&d, i, now);
            (
                Put::Changed { row, read_at: d.last_modified_date_time },
                Activity::UpdateAccessReview,
                policy_detail(p.id),
            )
        }
        (Some(d), None) if d.status == ReviewStatus::Completed => return Ok(()),
        (Some(d), None) => {
            let mut row = d.clone();
            row.status = ReviewStatus::Completed;
            row.next_start = None;
            row.last_modified_date_time = next_modified(d.last_modified_date_time, now);
            (Put::Changed { row, read_at: d.last_modified_date_time }, Activity::StopAccessReview, policy_detail(p.id))
        }
    };
    let id = row.row().id;
    let event = review_event(activity, actor, DEFINITION, id, id, now).with_detail(detail);
    s.store.apply(&Batch { review_definitions: vec![row], events: vec![event], ..Batch::default() }).await?;
    Ok(())
}

fn policy_detail(p: PolicyId) -> String {
    format!("Kept in step with the reviewSettings of assignment policy {p}.")
}

/// The policy is gone: so is its review, with its instances and decisions.
pub(crate) async fn policy_deleted(s: &Services, actor: &Actor, p: PolicyId, now: Timestamp) -> Result<(), AppError> {
    if let Some(d) = s.store.review_definition_of_policy(p).await? {
        let event = review_event(Activity::DeleteAccessReview, actor, DEFINITION, d.id, d.id, now)
            .with_detail(format!("Its assignment policy {p} was deleted."));
        s.store.delete_review_definition(d.id, &event).await?;
    }
    Ok(())
}
