//! `/v1.0/identityGovernance/accessReviews`: access review definitions of access package
//! assignments, their instances, the decisions in them (with `filterByCurrentUser(on='reviewer')`
//! for reviewers) and the instance actions (`batchRecordDecisions`, `acceptRecommendations`,
//! `applyDecisions`, `resetDecisions`, `sendReminder`, `stop`), in Graph's shapes. Handlers read
//! HTTP and render; `steward_app::reviews` decides who may and what happens.

use std::collections::HashMap;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use steward_app::auth::Principal;
use steward_app::ports::Page;
use steward_app::query::{ListQuery, REVIEW_DECISIONS, REVIEW_DEFINITIONS, REVIEW_INSTANCES};
use steward_app::reviews::{self, BatchItem};
use steward_domain::directory::User;
use steward_domain::ids::{AccessPackageId, PolicyId, ReviewDecisionId, ReviewDefinitionId, ReviewInstanceId, UserId};
use steward_domain::review::{
    Decision, DefinitionInput, Recording, ReviewDecision, ReviewDefinition, ReviewInstance, Reviewer,
};
use steward_domain::time::format_datetime;
use steward_odata::ExpandItem;

use crate::AppState;
use crate::api::Api;
use crate::auth::{Caller, ManagesPackages, May, Reads};
use crate::body::{Body, require_json};
use crate::error::ApiError;
use crate::odata::{Cx, GraphEntity, OData, check_shape, entity_response, page_response};
use crate::routes::lifecycle::function_call;
use crate::routes::{no_body, no_content, path_id};

type R = Result<Response, ApiError>;

const DEFINITIONS: &str = "identityGovernance/accessReviews/definitions";

pub fn api() -> Api {
    Api::new()
        .tag("accessReviews")
        .list(
            "/v1.0/identityGovernance/accessReviews/definitions",
            list_definitions,
            "List access review definitions (of the catalogs the caller may read)",
        )
        .create(
            "/v1.0/identityGovernance/accessReviews/definitions",
            create_definition,
            "Create an access review of access package assignments: scope, reviewers, stages, recurrence, settings",
        )
        .get(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}",
            get_definition,
            "Get an access review definition; also filterByCurrentUser(on='reviewer')",
        )
        .put(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}",
            replace_definition,
            "Replace an access review definition",
        )
        .patch(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}",
            patch_definition,
            "Update an access review definition: the properties given replace the current ones",
        )
        .delete(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}",
            delete_definition,
            "Delete an access review definition with its instances and decisions",
        )
        .action(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/stop",
            stop_definition,
            "Stop an access review: no more instances; those in progress end now",
        )
        .list(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances",
            list_instances,
            "List the instances of an access review",
        )
        .get(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}",
            get_instance,
            "Get an instance of an access review; also filterByCurrentUser(on='reviewer')",
        )
        .list(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/stages",
            list_stages,
            "List the stages of a multi-stage instance, with their times, status and reviewers",
        )
        .list(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/decisions",
            list_decisions,
            "List the decisions of an instance ($filter=decision eq 'Deny', …)",
        )
        .get(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/decisions/{decision}",
            get_decision,
            "Get a decision; also filterByCurrentUser(on='reviewer'): the caller's decisions to make",
        )
        .patch(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/decisions/{decision}",
            record_decision,
            "Record a decision (Approve, Deny, DontKnow) with a justification: the decision's reviewers only",
        )
        .action(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/batchRecordDecisions",
            batch_record,
            "Record the caller's decisions about a principal and/or a resource at once",
        )
        .action(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/acceptRecommendations",
            accept_recommendations,
            "The caller's undecided decisions take their recommendation",
        )
        .action(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/applyDecisions",
            apply_decisions,
            "Apply the decisions of an ended instance: denied assignments are removed (systemRemove)",
        )
        .action(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/resetDecisions",
            reset_decisions,
            "Reset the decisions of the current stage to NotReviewed",
        )
        .action(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/sendReminder",
            send_reminder,
            "Remind the reviewers who have decisions left to make",
        )
        .action(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/stop",
            stop_instance,
            "End an instance now (unanswered decisions take the default; applied when the settings say so)",
        )
        .list(
            "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/contactedReviewers",
            contacted_reviewers,
            "List the reviewers asked to review the instance's decisions",
        )
}

/// A rendered Graph object: its JSON built here, serialized as is.
#[derive(Debug, Clone)]
struct View<const K: u8>(Value);

impl<const K: u8> Serialize for View<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

const DEF: u8 = 0;
const INST: u8 = 1;
const DEC: u8 = 2;
const REV: u8 = 3;
const STAGE: u8 = 4;

fn no_nav(nav: &str) -> ApiError {
    ApiError::bad_request(format!("Navigation property '{nav}' cannot be expanded."))
}

macro_rules! entity {
    ($k:ident, $ty:literal, [$($prop:literal),* $(,)?]) => {
        #[async_trait]
        impl GraphEntity for View<$k> {
            const TYPE: &'static str = $ty;
            const PROPS: &'static [&'static str] = &[$($prop),*];
            const NAVS: &'static [&'static str] = &[];
            fn check_expand(nav: &'static str, _item: &ExpandItem) -> Result<(), ApiError> {
                Err(no_nav(nav))
            }
            async fn expand(&self, _cx: &Cx<'_>, nav: &'static str, _item: &ExpandItem) -> Result<Value, ApiError> {
                Err(no_nav(nav))
            }
        }
    };
}

entity!(
    DEF,
    "accessReviewScheduleDefinition",
    [
        "displayName",
        "descriptionForAdmins",
        "descriptionForReviewers",
        "scope",
        "instanceEnumerationScope",
        "reviewers",
        "fallbackReviewers",
        "settings",
        "stageSettings",
        "status",
        "createdBy",
        "createdDateTime",
        "lastModifiedDateTime",
        "additionalNotificationRecipients",
    ]
);
entity!(
    INST,
    "accessReviewInstance",
    ["startDateTime", "endDateTime", "status", "scope", "reviewers", "fallbackReviewers",]
);
entity!(
    DEC,
    "accessReviewInstanceDecisionItem",
    [
        "accessReviewId",
        "decision",
        "justification",
        "recommendation",
        "recommendationReason",
        "applyResult",
        "appliedBy",
        "appliedDateTime",
        "reviewedBy",
        "reviewedDateTime",
        "principal",
        "resource",
        "principalLink",
        "resourceLink",
        "stage",
    ]
);
entity!(REV, "accessReviewReviewer", ["displayName", "userPrincipalName", "createdDateTime"]);
entity!(STAGE, "accessReviewStage", ["startDateTime", "endDateTime", "status", "reviewers", "fallbackReviewers"]);

fn reviewers_json(r: &[Reviewer]) -> Value {
    Value::Array(r.iter().map(Reviewer::to_graph).collect())
}

fn identity(u: Option<&User>, id: Option<UserId>) -> Value {
    match (u, id) {
        (Some(u), _) => json!({"@odata.type": "#microsoft.graph.userIdentity", "id": u.id,
            "displayName": u.display_name.as_str(), "userPrincipalName": u.user_principal_name}),
        (None, Some(id)) => json!({"@odata.type": "#microsoft.graph.userIdentity", "id": id,
            "displayName": null, "userPrincipalName": null}),
        (None, None) => Value::Null,
    }
}

async fn definition_view(st: &AppState, d: &ReviewDefinition) -> Result<View<DEF>, ApiError> {
    let by = match d.created_by {
        Some(u) => st.services.store.get_user(u).await.map_err(steward_app::AppError::from)?,
        None => None,
    };
    let i = &d.input;
    Ok(View(json!({
        "id": d.id,
        "displayName": i.display_name,
        "descriptionForAdmins": i.description_for_admins,
        "descriptionForReviewers": i.description_for_reviewers,
        "scope": i.scope.to_graph(),
        "instanceEnumerationScope": null,
        "reviewers": reviewers_json(&i.reviewers),
        "fallbackReviewers": reviewers_json(&i.fallback_reviewers),
        "settings": i.settings.to_graph(),
        "stageSettings": i.stages.iter().map(|s| s.to_graph()).collect::<Vec<_>>(),
        "status": d.status.as_str(),
        "createdBy": identity(by.as_ref(), d.created_by),
        "createdDateTime": format_datetime(d.created_date_time),
        "lastModifiedDateTime": format_datetime(d.last_modified_date_time),
        "additionalNotificationRecipients": [],
    })))
}

fn instance_view(d: &ReviewDefinition, i: &ReviewInstance) -> View<INST> {
    let (reviewers, fallback) = d.reviewers_of(usize::try_from(i.stage).unwrap_or(0));
    View(json!({
        "id": i.id,
        "startDateTime": format_datetime(i.start),
        "endDateTime": format_datetime(i.end),
        "status": i.status.as_str(),
        "scope": d.input.scope.to_graph(),
        "reviewers": reviewers_json(reviewers),
        "fallbackReviewers": reviewers_json(fallback),
    }))
}

/// The names decisions show, read in bulk for a page.
struct Names {
    users: HashMap<UserId, User>,
    packages: HashMap<AccessPackageId, String>,
    policies: HashMap<PolicyId, String>,
}

async fn names_of(st: &AppState, items: &[ReviewDecision]) -> Result<Names, ApiError> {
    let store = &st.services.store;
    let mut uids: Vec<UserId> =
        items.iter().flat_map(|x| [Some(x.principal_id), x.reviewed_by, x.applied_by]).flatten().collect();
    uids.sort_unstable();
    uids.dedup();
    let mut pkgs: Vec<AccessPackageId> = items.iter().map(|x| x.access_package_id).collect();
    pkgs.sort_unstable();
    pkgs.dedup();
    let mut pols: Vec<PolicyId> = items.iter().filter_map(|x| x.policy_id).collect();
    pols.sort_unstable();
    pols.dedup();
    let err = steward_app::AppError::from;
    Ok(Names {
        users: store.users_by_id(&uids).await.map_err(err)?.into_iter().map(|u| (u.id, u)).collect(),
        packages: store
            .packages_by_id(&pkgs)
            .await
            .map_err(err)?
            .into_iter()
            .map(|p| (p.id, p.display_name.as_str().to_owned()))
            .collect(),
        policies: store
            .policies_by_id(&pols)
            .await
            .map_err(err)?
            .into_iter()
            .map(|p| (p.id, p.display_name.as_str().to_owned()))
            .collect(),
    })
}

fn decision_view(od: &OData, n: &Names, x: &ReviewDecision) -> View<DEC> {
    let ts = |t: Option<jiff::Timestamp>| t.map(format_datetime);
    let base = od.base();
    View(json!({
        "id": x.id,
        "accessReviewId": x.instance_id,
        "decision": x.decision.as_str(),
        "justification": x.justification,
        "recommendation": x.recommendation.as_str(),
        "recommendationReason": x.recommendation_reason,
        "applyResult": x.apply_result.as_str(),
        "appliedBy": identity(x.applied_by.and_then(|u| n.users.get(&u)), x.applied_by),
        "appliedDateTime": ts(x.applied_at),
        "reviewedBy": identity(x.reviewed_by.and_then(|u| n.users.get(&u)), x.reviewed_by),
        "reviewedDateTime": ts(x.reviewed_at),
        "principal": identity(n.users.get(&x.principal_id), Some(x.principal_id)),
        "resource": {
            "@odata.type": "#microsoft.graph.accessReviewInstanceDecisionItemAccessPackageAssignmentPolicyResource",
            "id": x.policy_id,
            "displayName": x.policy_id.and_then(|p| n.policies.get(&p)),
            "type": "accessPackageAssignmentPolicy",
            "accessPackageId": x.access_package_id,
            "accessPackageDisplayName": n.packages.get(&x.access_package_id),
        },
        "principalLink": format!("{base}/v1.0/users/{}", x.principal_id),
        "resourceLink": x.policy_id.map(|p| format!("{base}/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{p}")),
        "stage": x.stage,
    }))
}

fn decisions_set(d: ReviewDefinitionId, i: ReviewInstanceId) -> String {
    format!("{DEFINITIONS}('{d}')/instances('{i}')/decisions")
}

async fn decision_page(
    st: &AppState,
    p: &Principal,
    od: &OData,
    q: &ListQuery,
    page: Page<ReviewDecision>,
    set: &str,
) -> R {
    let names = names_of(st, &page.items).await?;
    let items = page.items.iter().map(|x| decision_view(od, &names, x)).collect();
    let page = Page { items, count: page.count, next: page.next };
    page_response(&Cx::new(&st.services, p), od, q, page, set).await
}

/// `filterByCurrentUser(on='reviewer')` in a key segment: `Some(())` when it is that call.
fn reviewer_function(segment: &str) -> Result<bool, ApiError> {
    let Some((name, args)) = function_call(segment) else { return Ok(false) };
    let on = args.iter().find(|(k, _)| k.eq_ignore_ascii_case("on")).map(|(_, v)| v.as_str());
    if name.eq_ignore_ascii_case("filterByCurrentUser") && on.is_some_and(|v| v.eq_ignore_ascii_case("reviewer")) {
        Ok(true)
    } else {
        Err(ApiError::bad_request(format!(
            "'{}' is not a valid function here; use filterByCurrentUser(on='reviewer').",
            steward_domain::text::clip(segment, 80)
        )))
    }
}

fn me(p: &Principal) -> Result<UserId, ApiError> {
    Ok(p.user()?.id())
}

/// A body that must be a JSON object of Graph type `graph_type` (`@odata.type` optional, and
/// checked when given), as a map for the domain to parse.
pub(crate) fn typed_object(
    headers: &HeaderMap,
    bytes: &Bytes,
    graph_type: &str,
) -> Result<Map<String, Value>, ApiError> {
    require_json(headers, bytes)?;
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}.")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::invalid_model(format!("The body must be a JSON object describing an {graph_type}.")));
    };
    if let Some(Value::String(t)) = map.get("@odata.type") {
        let t = t.strip_prefix('#').unwrap_or(t);
        if !t.eq_ignore_ascii_case(&format!("microsoft.graph.{graph_type}")) {
            return Err(ApiError::invalid_model(format!(
                "@odata.type '{}' is not valid here; expected '#microsoft.graph.{graph_type}'.",
                steward_domain::text::clip(t, 120)
            )));
        }
    }
    Ok(map)
}

/// A definition body, parsed by the domain (which names what is wrong).
fn definition_input(headers: &HeaderMap, bytes: &Bytes) -> Result<DefinitionInput, ApiError> {
    let map = typed_object(headers, bytes, "accessReviewScheduleDefinition")?;
    Ok(DefinitionInput::parse(&map).map_err(steward_app::AppError::from)?)
}

async fn list_definitions(State(st): State<AppState>, May(p, scope, _): May<Reads>, od: OData) -> R {
    check_shape::<View<DEF>>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&REVIEW_DEFINITIONS)?;
    let page = reviews::list_definitions(&st.services, &scope, &q).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for d in &page.items {
        items.push(definition_view(&st, d).await?);
    }
    let page = Page { items, count: page.count, next: page.next };
    page_response(&Cx::new(&st.services, &p), &od, &q, page, DEFINITIONS).await
}

async fn create_definition(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let input = definition_input(&headers, &bytes)?;
    let d = reviews::create_definition(&st.services, &p, input).await?;
    let view = definition_view(&st, &d).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::CREATED, DEFINITIONS).await
}

async fn get_definition(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    if reviewer_function(&id)? {
        check_shape::<View<DEF>>(od.options.select.as_ref(), &od.options.expand)?;
        let me = me(&p)?;
        let q = od.list_query(&REVIEW_DEFINITIONS)?;
        let mut items = Vec::new();
        for d in reviews::list_my_definitions(&st.services, me).await? {
            items.push(definition_view(&st, &d).await?);
        }
        let page = Page { items, count: None, next: None };
        return page_response(&Cx::new(&st.services, &p), &od, &q, page, DEFINITIONS).await;
    }
    let d = reviews::get_definition(&st.services, &p, path_id(&id)?).await?;
    let view = definition_view(&st, &d).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::OK, DEFINITIONS).await
}

async fn replace_definition(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: ReviewDefinitionId = path_id(&id)?;
    let input = definition_input(&headers, &bytes)?;
    reviews::replace_definition(&st.services, &p, id, input).await?;
    Ok(no_content())
}

/// PATCH: the body's properties merged over the definition as it reads now, then replaced
/// (written on the version the replacement reads).
async fn patch_definition(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: ReviewDefinitionId = path_id(&id)?;
    require_json(&headers, &bytes)?;
    let patch: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}.")))?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::invalid_model(
            "The body must be a JSON object of accessReviewScheduleDefinition properties.",
        ));
    };
    let current = reviews::get_definition(&st.services, &p, id).await?;
    let View(Value::Object(mut merged)) = definition_view(&st, &current).await? else {
        return Err(ApiError::invalid_model("The access review definition could not be read."));
    };
    merged.extend(patch);
    let input = DefinitionInput::parse(&merged).map_err(steward_app::AppError::from)?;
    reviews::replace_definition(&st.services, &p, id, input).await?;
    Ok(no_content())
}

async fn delete_definition(State(st): State<AppState>, May(p, ..): May<ManagesPackages>, Path(id): Path<String>) -> R {
    reviews::delete_definition(&st.services, &p, path_id(&id)?).await?;
    Ok(no_content())
}

async fn stop_definition(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: ReviewDefinitionId = path_id(&id)?;
    no_body(&headers, &bytes)?;
    reviews::stop_definition(&st.services, &p, id).await?;
    Ok(no_content())
}

async fn list_instances(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    check_shape::<View<INST>>(od.options.select.as_ref(), &od.options.expand)?;
    let id: ReviewDefinitionId = path_id(&id)?;
    let q = od.list_query(&REVIEW_INSTANCES)?;
    let d = reviews::get_definition(&st.services, &p, id).await?;
    let page = reviews::list_instances(&st.services, &p, id, &q).await?;
    let items = page.items.iter().map(|i| instance_view(&d, i)).collect();
    let page = Page { items, count: page.count, next: page.next };
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &format!("{DEFINITIONS}('{id}')/instances")).await
}

async fn get_instance(
    State(st): State<AppState>,
    Caller(p): Caller,
    od: OData,
    Path((id, instance)): Path<(String, String)>,
) -> R {
    let id: ReviewDefinitionId = path_id(&id)?;
    let set = format!("{DEFINITIONS}('{id}')/instances");
    if reviewer_function(&instance)? {
        check_shape::<View<INST>>(od.options.select.as_ref(), &od.options.expand)?;
        let me = me(&p)?;
        let q = od.list_query(&REVIEW_INSTANCES)?;
        let items = reviews::my_reviews(&st.services, me)
            .await?
            .iter()
            .filter(|r| r.definition.id == id)
            .map(|r| instance_view(&r.definition, &r.instance))
            .collect();
        let page = Page { items, count: None, next: None };
        return page_response(&Cx::new(&st.services, &p), &od, &q, page, &set).await;
    }
    let (d, i) = reviews::get_instance(&st.services, &p, id, path_id(&instance)?).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &instance_view(&d, &i), StatusCode::OK, &set).await
}

/// The stages of a multi-stage instance (none for a single-stage review): each runs after the
/// one before for its duration; those before the current one are completed, those after it
/// have not started.
async fn list_stages(
    State(st): State<AppState>,
    Caller(p): Caller,
    od: OData,
    Path((id, instance)): Path<(String, String)>,
) -> R {
    check_shape::<View<STAGE>>(od.options.select.as_ref(), &od.options.expand)?;
    let id: ReviewDefinitionId = path_id(&id)?;
    let (d, i) = reviews::get_instance(&st.services, &p, id, path_id(&instance)?).await?;
    let mut start = i.start;
    let mut items: Vec<View<STAGE>> = Vec::new();
    for (k, stage) in d.input.stages.iter().enumerate() {
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        let end = start
            .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(stage.duration_in_days)))
            .unwrap_or(start);
        let status = match k.cmp(&i.stage) {
            std::cmp::Ordering::Less => "Completed",
            std::cmp::Ordering::Equal => i.status.as_str(),
            std::cmp::Ordering::Greater => "NotStarted",
        };
        items.push(View(json!({
            "id": stage.stage_id,
            "startDateTime": format_datetime(start),
            "endDateTime": format_datetime(if k == i.stage { i.stage_end } else { end }),
            "status": status,
            "reviewers": reviewers_json(&stage.reviewers),
            "fallbackReviewers": reviewers_json(&stage.fallback_reviewers),
        })));
        start = end;
    }
    let q = ListQuery::all(&REVIEW_INSTANCES);
    let page = Page { items, count: None, next: None };
    let set = format!("{DEFINITIONS}('{id}')/instances('{}')/stages", i.id);
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set).await
}

async fn list_decisions(
    State(st): State<AppState>,
    May(p, ..): May<Reads>,
    od: OData,
    Path((id, instance)): Path<(String, String)>,
) -> R {
    check_shape::<View<DEC>>(od.options.select.as_ref(), &od.options.expand)?;
    let (id, instance): (ReviewDefinitionId, ReviewInstanceId) = (path_id(&id)?, path_id(&instance)?);
    let q = od.list_query(&REVIEW_DECISIONS)?;
    let page = reviews::list_decisions(&st.services, &p, id, instance, &q).await?;
    decision_page(&st, &p, &od, &q, page, &decisions_set(id, instance)).await
}

async fn get_decision(
    State(st): State<AppState>,
    Caller(p): Caller,
    od: OData,
    Path((id, instance, decision)): Path<(String, String, String)>,
) -> R {
    let (id, instance): (ReviewDefinitionId, ReviewInstanceId) = (path_id(&id)?, path_id(&instance)?);
    let set = decisions_set(id, instance);
    if reviewer_function(&decision)? {
        check_shape::<View<DEC>>(od.options.select.as_ref(), &od.options.expand)?;
        let me = me(&p)?;
        let q = od.list_query(&REVIEW_DECISIONS)?;
        let page = reviews::list_my_decisions(&st.services, me, Some((id, instance)), &q).await?;
        return decision_page(&st, &p, &od, &q, page, &set).await;
    }
    let x = reviews::get_decision(&st.services, &p, id, instance, path_id(&decision)?).await?;
    let names = names_of(&st, std::slice::from_ref(&x)).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &decision_view(&od, &names, &x), StatusCode::OK, &set).await
}

/// `decision` of a body: Approve, Deny or DontKnow (400 otherwise).
fn decision_of(v: Option<Value>) -> Result<Decision, ApiError> {
    match v {
        Some(Value::String(s)) => Ok(Decision::parse_recordable(&s).map_err(steward_app::AppError::from)?),
        None | Some(Value::Null) => {
            Err(ApiError::invalid_model("Property 'decision' is required: Approve, Deny or DontKnow."))
        }
        Some(_) => Err(ApiError::invalid_model("Property 'decision' must be a string: Approve, Deny or DontKnow.")),
    }
}

async fn record_decision(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path((id, instance, decision)): Path<(String, String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let (id, instance, decision): (ReviewDefinitionId, ReviewInstanceId, ReviewDecisionId) =
        (path_id(&id)?, path_id(&instance)?, path_id(&decision)?);
    let mut b = Body::parse(&headers, &bytes, "accessReviewInstanceDecisionItem")?;
    let value = decision_of(b.take("decision"))?;
    let justification = b.nullable_str("justification")?;
    b.ignore(&["id", "accessReviewId", "recommendation", "applyResult", "reviewedBy", "reviewedDateTime"]);
    b.finish()?;
    let recording = Recording { decision: value, justification };
    reviews::record(&st.services, &p, id, instance, decision, recording).await?;
    Ok(no_content())
}

fn batch_item(v: Value) -> Result<BatchItem, ApiError> {
    let mut b = Body::from_value(v, "accessReviewInstance")?;
    let decision = decision_of(b.take("decision"))?;
    let justification = b.nullable_str("justification")?;
    let principal: Option<UserId> = match b.nullable_str("principalId")? {
        Some(s) => Some(path_id(&s)?),
        None => None,
    };
    let resource = b.nullable_str("resourceId")?;
    b.finish()?;
    Ok(BatchItem { decision, justification, principal, resource })
}

/// Graph's body (`{decision, justification, principalId, resourceId}`), or several of them as
/// `{"decisions": [...]}` (Steward's extension), recorded together or not at all.
async fn batch_record(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path((id, instance)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let (id, instance): (ReviewDefinitionId, ReviewInstanceId) = (path_id(&id)?, path_id(&instance)?);
    require_json(&headers, &bytes)?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}.")))?;
    let items = match v {
        Value::Object(mut m) if m.contains_key("decisions") => match m.remove("decisions") {
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= 1_000 => {
                if !m.is_empty() {
                    return Err(ApiError::invalid_model("With 'decisions', the body holds nothing else."));
                }
                list.into_iter().map(batch_item).collect::<Result<Vec<_>, _>>()?
            }
            _ => return Err(ApiError::invalid_model("'decisions' must be a list of 1 to 1000 decisions.")),
        },
        other => vec![batch_item(other)?],
    };
    reviews::batch_record(&st.services, &p, id, instance, &items).await?;
    Ok(no_content())
}

async fn accept_recommendations(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path((id, instance)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let (id, instance) = (path_id(&id)?, path_id(&instance)?);
    no_body(&headers, &bytes)?;
    reviews::accept_recommendations(&st.services, &p, id, instance).await?;
    Ok(no_content())
}

/// The administrators' actions on an instance: each a POST with no body, answered 204.
#[derive(Clone, Copy)]
enum InstanceAction {
    Apply,
    Reset,
    Remind,
    Stop,
}

async fn instance_action(
    st: &AppState,
    p: &Principal,
    (id, instance): (String, String),
    (headers, bytes): (HeaderMap, Bytes),
    action: InstanceAction,
) -> R {
    let (id, instance) = (path_id(&id)?, path_id(&instance)?);
    no_body(&headers, &bytes)?;
    let s = &st.services;
    match action {
        InstanceAction::Apply => reviews::apply_decisions(s, p, id, instance).await?,
        InstanceAction::Reset => reviews::reset_decisions(s, p, id, instance).await?,
        InstanceAction::Remind => {
            reviews::send_reminder(s, p, id, instance).await?;
        }
        InstanceAction::Stop => reviews::stop_instance(s, p, id, instance).await?,
    }
    Ok(no_content())
}

async fn apply_decisions(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    instance_action(&st, &p, ids, (headers, bytes), InstanceAction::Apply).await
}

async fn reset_decisions(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    instance_action(&st, &p, ids, (headers, bytes), InstanceAction::Reset).await
}

async fn send_reminder(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    instance_action(&st, &p, ids, (headers, bytes), InstanceAction::Remind).await
}

async fn stop_instance(
    State(st): State<AppState>,
    May(p, ..): May<ManagesPackages>,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    instance_action(&st, &p, ids, (headers, bytes), InstanceAction::Stop).await
}

async fn contacted_reviewers(
    State(st): State<AppState>,
    May(p, ..): May<Reads>,
    od: OData,
    Path((id, instance)): Path<(String, String)>,
) -> R {
    check_shape::<View<REV>>(od.options.select.as_ref(), &od.options.expand)?;
    let (id, instance): (ReviewDefinitionId, ReviewInstanceId) = (path_id(&id)?, path_id(&instance)?);
    let users = reviews::contacted_reviewers(&st.services, &p, id, instance).await?;
    let items: Vec<View<REV>> = users
        .iter()
        .map(|u| {
            View(json!({"id": u.id, "displayName": u.display_name.as_str(),
                "userPrincipalName": u.user_principal_name, "createdDateTime": null}))
        })
        .collect();
    let q = ListQuery::all(&REVIEW_DECISIONS);
    let page = Page { items, count: None, next: None };
    let set = format!("{DEFINITIONS}('{id}')/instances('{instance}')/contactedReviewers");
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set).await
}
