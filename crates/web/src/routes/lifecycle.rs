//! The request lifecycle over HTTP: `assignmentRequests` (submit, list, get, cancel,
//! reprocess, resume, `filterByCurrentUser`), `assignments` (list, get, reprocess,
//! `filterByCurrentUser`, `additionalAccess`) and `accessPackageAssignmentApprovals` (stages
//! and decisions).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use steward_app::auth::Principal;
use steward_app::lifecycle::approvals;
use steward_app::lifecycle::requests::{self, RequestInput, RequestsOf};
use steward_app::ports::Page;
use steward_app::query::{ASSIGNMENT_REQUESTS, ASSIGNMENTS, ListQuery};
use steward_domain::approval::ReviewResult;
use steward_domain::ids::{AccessPackageId, ApprovalStageId, AssignmentId, RequestId};
use steward_domain::request::Answer;
use steward_domain::schedule::Schedule;

use crate::AppState;
use crate::api::Api;
use crate::auth::{Admin, Caller, ManagesAssignments, May};
use crate::body::Body;
use crate::error::ApiError;
use crate::odata::{Cx, OData, check_shape, count_response, entity_response, page_response};
use crate::routes::{no_body, no_content, path_id};
use crate::views::{ApprovalView, AssignmentView, RequestView, StageView};
use steward_domain::role::Task;

type R = Result<Response, ApiError>;

const REQUESTS: &str = "identityGovernance/entitlementManagement/assignmentRequests";
const ASSIGNMENTS_SET: &str = "identityGovernance/entitlementManagement/assignments";
const APPROVALS: &str = "identityGovernance/entitlementManagement/accessPackageAssignmentApprovals";

pub fn api() -> Api {
    Api::new()
        .tag("assignmentRequests")
        .list("/v1.0/identityGovernance/entitlementManagement/assignmentRequests", list_requests, "List assignment requests")
        .create(
            "/v1.0/identityGovernance/entitlementManagement/assignmentRequests",
            create_request,
            "Request access (userAdd, onBehalfAdd), extend it (userUpdate, adminUpdate), remove it (userRemove, adminRemove) or assign directly (adminAdd)",
        )
        .count("/v1.0/identityGovernance/entitlementManagement/assignmentRequests/$count", count_requests, "Count assignment requests")
        .get(
            "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}",
            get_request,
            "Get an assignment request; also filterByCurrentUser(on='target'|'createdBy'|'approver')",
        )
        .delete(
            "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}",
            delete_request,
            "Delete a request that has ended (delivered, denied, cancelled, failed)",
        )
        .action("/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}/cancel", cancel, "Cancel a request that is not yet delivered")
        .accepted("/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}/reprocess", reprocess_request, "Retry the failed deliveries of a request")
        .action("/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}/resume", resume, "Resume a request waiting for a custom extension")
        .tag("assignments")
        .list("/v1.0/identityGovernance/entitlementManagement/assignments", list_assignments, "List assignments")
        .count("/v1.0/identityGovernance/entitlementManagement/assignments/$count", count_assignments, "Count assignments")
        .get(
            "/v1.0/identityGovernance/entitlementManagement/assignments/{id}",
            get_assignment,
            "Get an assignment; also filterByCurrentUser(on='target'|'createdBy') and additionalAccess(accessPackageId,incompatibleAccessPackageId)",
        )
        .accepted("/v1.0/identityGovernance/entitlementManagement/assignments/{id}/reprocess", reprocess_assignment, "Retry the failed deliveries of an assignment")
        .get(
            "/v1.0/steward/assignments/{id}/deliveries",
            assignment_deliveries,
            "Where each resource role of an assignment stands in its target system: pending (with the attempts so far and why the last failed), done or failed (with the reason)",
        )
        .tag("accessPackages")
        .create(
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/getApplicablePolicyRequirements",
            applicable_policy_requirements,
            "What the calling user must provide to request the package, per applicable policy",
        )
        .get(
            "/v1.0/steward/accessPackages/{id}/explanation",
            explanation,
            "Beyond Graph: may a user request this package, under which policy, who approves, and if not, why (?userId=, default the caller)",
        )
        .get(
            "/v1.0/steward/separationOfDuties/violations",
            violations,
            "Beyond Graph: active assignments that break a separation-of-duties rule (an incompatible package or group)",
        )
        .tag("approvals")
        .list(
            "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals",
            list_approvals,
            "Not listable as a whole: answers 400 pointing to filterByCurrentUser(on='approver')",
        )
        .get(
            "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}",
            get_approval,
            "Get the approval of a request (its id is the request's); also filterByCurrentUser(on='approver')",
        )
        .list("/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}/stages", list_stages, "List an approval's stages")
        .get("/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}/stages/{stage}", get_stage, "Get an approval stage")
        .patch(
            "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}/stages/{stage}",
            decide,
            "Approve or deny a stage (reviewResult Approve or Deny, with a justification)",
        )
}

/// A function call in a path segment: `name(key='value',key2='value2')`. The comma between
/// parameters may be missing (the Python SDK drops it) and parameters may come in any order.
pub fn function_call(segment: &str) -> Option<(&str, Vec<(String, String)>)> {
    let open = segment.find('(')?;
    let name = segment.get(..open)?;
    let inner = segment.get(open + 1..)?.strip_suffix(')')?;
    let mut args = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest.get(..eq)?.trim().trim_start_matches(',').trim().to_owned();
        rest = rest.get(eq + 1..)?.trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut out = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        out.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    out.push(c);
                }
            }
            value = out;
            rest = quoted.get(end?..)?.trim_start().trim_start_matches(',').trim_start();
        } else {
            let stop = rest.find(',').unwrap_or(rest.len());
            value = rest.get(..stop)?.trim().to_owned();
            rest = rest.get(stop..)?.trim_start_matches(',').trim_start();
        }
        args.push((key, value));
    }
    Some((name, args))
}

fn arg<'a>(args: &'a [(String, String)], name: &str) -> Option<&'a str> {
    args.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn bad_function(segment: &str, allowed: &str) -> ApiError {
    ApiError::bad_request(format!(
        "'{}' is not a valid function here; use {allowed}.",
        steward_domain::text::clip(segment, 80)
    ))
}

async fn request_page(
    st: &AppState,
    p: &Principal,
    od: &OData,
    q: &ListQuery,
    page: Page<steward_domain::request::AssignmentRequest>,
) -> R {
    let items = RequestView::build_all(&st.services, page.items).await?;
    let page = Page { items, count: page.count, next: page.next };
    page_response(&Cx::new(&st.services, p), od, q, page, REQUESTS).await
}

async fn list_requests(State(st): State<AppState>, May(p, scope, _): May<ManagesAssignments>, od: OData) -> R {
    check_shape::<RequestView>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&ASSIGNMENT_REQUESTS)?;
    let page = requests::list_requests(&st.services, &scope, &q).await?;
    request_page(&st, &p, &od, &q, page).await
}

async fn count_requests(State(st): State<AppState>, May(_, scope, _): May<ManagesAssignments>, od: OData) -> R {
    let mut q = od.list_query(&ASSIGNMENT_REQUESTS)?;
    (q.count, q.top) = (true, 1);
    Ok(count_response(requests::list_requests(&st.services, &scope, &q).await?.count.unwrap_or(0)))
}

/// The `assignment` (or beta `accessPackageAssignment`) object of a request body.
struct AssignmentRef {
    id: Option<AssignmentId>,
    package: Option<AccessPackageId>,
    policy: Option<steward_domain::ids::PolicyId>,
    target: Option<steward_domain::ids::UserId>,
    /// `target.email` (with its `displayName`) when the target has no objectId: someone who
    /// may not be in the directory yet.
    target_email: Option<(String, Option<String>)>,
}

fn nav_object_id<T: std::str::FromStr<Err = steward_domain::DomainError>>(
    b: &mut Body,
    name: &str,
    entity: &'static str,
    keys: &[&str],
) -> Result<Option<T>, ApiError> {
    let Some(mut nb) = b.opt_object(name, entity)? else { return Ok(None) };
    let mut found = None;
    for k in keys {
        if let Some(v) = nb.opt_id(k)? {
            found = Some(v);
        }
    }
    nb.ignore(&["displayName", "email", "principalName", "subjectType", "description"]);
    nb.finish()?;
    Ok(found)
}

fn assignment_ref(b: &mut Body) -> Result<AssignmentRef, ApiError> {
    let mut a = match b.opt_object("assignment", "accessPackageAssignment")? {
        Some(a) => a,
        None => match b.opt_object("accessPackageAssignment", "accessPackageAssignment")? {
            Some(a) => a,
            None => {
                return Ok(AssignmentRef { id: None, package: None, policy: None, target: None, target_email: None });
            }
        },
    };
    let id = a.opt_id("id")?;
    let mut package = a.opt_id("accessPackageId")?.or(a.opt_id("access_package_id")?);
    if let Some(p) = nav_object_id(&mut a, "accessPackage", "accessPackage", &["id"])? {
        package = Some(p);
    }
    let mut policy = a.opt_id("assignmentPolicyId")?.or(a.opt_id("assignment_policy_id")?);
    if let Some(p) = nav_object_id(&mut a, "assignmentPolicy", "accessPackageAssignmentPolicy", &["id"])? {
        policy = Some(p);
    }
    let mut target = a.opt_id("targetId")?.or(a.opt_id("target_id")?);
    let mut target_email = None;
    if let Some(mut t) = a.opt_object("target", "accessPackageSubject")? {
        for k in ["objectId", "id"] {
            if let Some(v) = t.opt_id(k)? {
                target = Some(v);
            }
        }
        let email = t.opt_str("email")?;
        let display_name = t.nullable_str("displayName")?;
        if let Some(kind) = t.opt_str("subjectType")?
            && !kind.eq_ignore_ascii_case("user")
        {
            return Err(ApiError::invalid_model(format!(
                "target.subjectType '{}' is not supported: only users are assigned.",
                steward_domain::text::clip(&kind, 40)
            )));
        }
        if target.is_none() {
            target_email = email.map(|e| (e, display_name));
        }
        t.ignore(&["principalName", "subjectLifecycle", "onPremisesSecurityIdentifier"]);
        t.finish()?;
    }
    a.ignore(&["state", "status", "schedule", "expiredDateTime", "customExtensionCalloutInstances"]);
    a.finish()?;
    Ok(AssignmentRef { id, package, policy, target, target_email })
}

fn answers(v: Option<Value>) -> Result<Vec<Answer>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Value::Array(items) = v else {
        return Err(ApiError::invalid_model("Property 'answers' must be an array of accessPackageAnswerString."));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(mut m) = item else {
            return Err(ApiError::invalid_model("Each answer must be an object."));
        };
        if let Some(t) = m.get("@odata.type").and_then(Value::as_str) {
            let bare = t.strip_prefix('#').unwrap_or(t);
            if !bare.eq_ignore_ascii_case("microsoft.graph.accessPackageAnswerString") {
                return Err(ApiError::invalid_model(format!(
                    "Answer type '{}' is not supported; send '#microsoft.graph.accessPackageAnswerString'.",
                    steward_domain::text::clip(t, 80)
                )));
            }
        }
        let value = match m.remove("value") {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => String::new(),
            Some(_) => return Err(ApiError::invalid_model("An answer's 'value' must be a string.")),
        };
        let question_id = m
            .remove("answeredQuestion")
            .and_then(|q| q.get("id").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| ApiError::invalid_model("Each answer needs answeredQuestion with the question's id."))?;
        let display_value = m.remove("displayValue").and_then(|v| v.as_str().map(str::to_owned));
        out.push(Answer { question_id, value, display_value });
    }
    Ok(out)
}

fn schedule(v: Option<Value>) -> Result<Option<Schedule>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| ApiError::invalid_model(format!("Property 'schedule' is not a valid schedule: {e}."))),
        Some(_) => Err(ApiError::invalid_model("Property 'schedule' must be an object.")),
    }
}

async fn create_request(
    State(st): State<AppState>,
    Caller(p): Caller,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let mut b = Body::parse(&headers, &bytes, "accessPackageAssignmentRequest")?;
    let request_type = b.opt_enum("requestType")?;
    let justification = b.nullable_str("justification")?;
    let ans = answers(b.take("answers"))?;
    let sched = schedule(b.take("schedule"))?;
    let a = assignment_ref(&mut b)?;
    b.ignore(&[
        "id",
        "state",
        "status",
        "createdDateTime",
        "completedDateTime",
        "parameters",
        "customExtensionCalloutInstances",
    ]);
    b.finish()?;
    let input = RequestInput {
        request_type,
        access_package_id: a.package,
        policy_id: a.policy,
        target_id: a.target,
        assignment_id: a.id,
        justification,
        answers: ans,
        schedule: sched,
        target_display_name: a.target_email.as_ref().and_then(|(_, n)| n.clone()),
        target_email: a.target_email.map(|(e, _)| e),
    };
    let r = requests::submit(&st.services, &p, input).await?;
    let view = RequestView::build(&st.services, r).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::CREATED, REQUESTS).await
}

async fn get_request(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    if let Some((name, args)) = function_call(&id) {
        if !name.eq_ignore_ascii_case("filterByCurrentUser") {
            return Err(bad_function(&id, "filterByCurrentUser(on='target'|'createdBy'|'approver')"));
        }
        let on = match arg(&args, "on").map(str::to_ascii_lowercase).as_deref() {
            Some("target") => RequestsOf::Target,
            Some("createdby") => RequestsOf::CreatedBy,
            Some("approver") => RequestsOf::Approver,
            _ => return Err(bad_function(&id, "filterByCurrentUser(on='target'|'createdBy'|'approver')")),
        };
        let me = p.user()?;
        check_shape::<RequestView>(od.options.select.as_ref(), &od.options.expand)?;
        let q = od.list_query(&ASSIGNMENT_REQUESTS)?;
        let page = requests::list_my_requests(&st.services, me, on, q.clone()).await?;
        return request_page(&st, &p, &od, &q, page).await;
    }
    let r = requests::get_request(&st.services, &p, path_id(&id)?).await?;
    let view = RequestView::build(&st.services, r).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::OK, REQUESTS).await
}

async fn delete_request(State(st): State<AppState>, May(p, ..): May<ManagesAssignments>, Path(id): Path<String>) -> R {
    requests::delete_request(&st.services, &p, path_id(&id)?).await?;
    Ok(no_content())
}

async fn list_approvals(Caller(_): Caller) -> R {
    Err(ApiError::bad_request(
        "Approvals are listed per approver: use accessPackageAssignmentApprovals/filterByCurrentUser(on='approver').",
    ))
}

async fn cancel(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    no_body(&headers, &bytes)?;
    requests::cancel(&st.services, &p, path_id(&id)?).await?;
    Ok(no_content())
}

async fn reprocess_request(
    State(st): State<AppState>,
    May(p, ..): May<ManagesAssignments>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    no_body(&headers, &bytes)?;
    requests::reprocess(&st.services, &p, path_id(&id)?).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A launch-and-wait custom extension calls back, with an administrator token or a token
/// holding the assignment manager role of the request's catalog.
async fn resume(
    State(st): State<AppState>,
    May(p, ..): May<ManagesAssignments>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: RequestId = path_id(&id)?;
    requests::manages_request(&st.services, &p, id).await?;
    crate::body::require_json(&headers, &bytes)?;
    if bytes.is_empty() {
        return Err(ApiError::invalid_model("A JSON body with source, type and data is required."));
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}.")))?;
    let body = steward_domain::extension::Resume::parse(&v)?;
    steward_app::lifecycle::callouts::resume(&st.services, &p, id, body).await?;
    Ok(no_content())
}

async fn assignment_page(
    st: &AppState,
    p: &Principal,
    od: &OData,
    q: &ListQuery,
    page: Page<steward_domain::assignment::Assignment>,
) -> R {
    let page =
        Page { items: AssignmentView::build_all(&st.services, page.items).await?, count: page.count, next: page.next };
    page_response(&Cx::new(&st.services, p), od, q, page, ASSIGNMENTS_SET).await
}

async fn list_assignments(State(st): State<AppState>, May(p, scope, _): May<ManagesAssignments>, od: OData) -> R {
    check_shape::<AssignmentView>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&ASSIGNMENTS)?.within(&scope, "accessPackage/catalog/id")?;
    let page = st.services.store.list_assignments(&q).await.map_err(steward_app::AppError::from)?;
    assignment_page(&st, &p, &od, &q, page).await
}

async fn count_assignments(State(st): State<AppState>, May(_, scope, _): May<ManagesAssignments>, od: OData) -> R {
    let mut q = od.list_query(&ASSIGNMENTS)?.within(&scope, "accessPackage/catalog/id")?;
    (q.count, q.top) = (true, 1);
    let page = st.services.store.list_assignments(&q).await.map_err(steward_app::AppError::from)?;
    Ok(count_response(page.count.unwrap_or(0)))
}

async fn get_assignment(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    if let Some((name, args)) = function_call(&id) {
        check_shape::<AssignmentView>(od.options.select.as_ref(), &od.options.expand)?;
        let q = od.list_query(&ASSIGNMENTS)?;
        let q = if name.eq_ignore_ascii_case("filterByCurrentUser") {
            let me = p.user()?;
            match arg(&args, "on").map(str::to_ascii_lowercase).as_deref() {
                Some("target") => q.scoped("target/objectId", me.id())?,
                Some("createdby") => q.related(steward_app::query::Relation::AssignmentsRequestedBy, me.id()),
                _ => return Err(bad_function(&id, "filterByCurrentUser(on='target'|'createdBy')")),
            }
        } else if name.eq_ignore_ascii_case("additionalAccess") {
            let scope = p.catalogs_for(Task::ManageAssignments)?;
            let (Some(a), Some(b)) = (arg(&args, "accessPackageId"), arg(&args, "incompatibleAccessPackageId")) else {
                return Err(bad_function(&id, "additionalAccess(accessPackageId='…',incompatibleAccessPackageId='…')"));
            };
            let a: AccessPackageId = path_id(a)?;
            let b: AccessPackageId = path_id(b)?;
            if a == b {
                return Err(ApiError::bad_request("accessPackageId and incompatibleAccessPackageId must differ."));
            }
            q.scoped("accessPackage/id", a)?
                .related(steward_app::query::Relation::TargetsHoldingPackage, b)
                .within(&scope, "accessPackage/catalog/id")?
        } else {
            return Err(bad_function(&id, "filterByCurrentUser(on=…) or additionalAccess(…)"));
        };
        let page = st.services.store.list_assignments(&q).await.map_err(steward_app::AppError::from)?;
        return assignment_page(&st, &p, &od, &q, page).await;
    }
    let aid: AssignmentId = path_id(&id)?;
    let a = st
        .services
        .store
        .get_assignment(aid)
        .await
        .map_err(steward_app::AppError::from)?
        .filter(|a| may_see_assignment(&p, a))
        .ok_or_else(|| ApiError::from(steward_app::AppError::not_found("assignment", aid)))?;
    let view = AssignmentView::build_all(&st.services, vec![a]).await?.into_iter().next();
    let view = view.ok_or_else(|| ApiError::from(steward_app::AppError::not_found("assignment", aid)))?;
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::OK, ASSIGNMENTS_SET).await
}

/// Not part of Graph: per-resource delivery of one assignment, for its administrators and its
/// target user.
async fn assignment_deliveries(State(st): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> R {
    let aid: AssignmentId = path_id(&id)?;
    let store = &st.services.store;
    let a = store
        .get_assignment(aid)
        .await
        .map_err(steward_app::AppError::from)?
        .filter(|a| may_see_assignment(&p, a))
        .ok_or_else(|| ApiError::from(steward_app::AppError::not_found("assignment", aid)))?;
    let all = store.deliveries(a.id).await.map_err(steward_app::AppError::from)?;
    let roles: Vec<_> = all.iter().map(|d| d.resource_role_id).collect();
    let grants = store.role_grants(&roles).await.map_err(steward_app::AppError::from)?;
    let value: Vec<Value> = all
        .iter()
        .map(|d| {
            let g = grants.iter().find(|g| g.role_id == d.resource_role_id);
            serde_json::json!({
                "resourceRole": {
                    "id": d.resource_role_id.to_string(),
                    "displayName": g.map(|g| g.role_name.as_str()),
                    "originId": g.map(|g| g.role_origin_id.as_str()),
                },
                "resource": {
                    "displayName": g.map(|g| g.resource_name.as_str()),
                    "originSystem": g.map(|g| g.origin_system.as_str()),
                },
                "action": d.action,
                "state": d.state,
                "attempts": d.attempts,
                "detail": d.detail,
            })
        })
        .collect();
    Ok(crate::odata::json_response(StatusCode::OK, serde_json::json!({ "value": value })))
}

/// Whoever manages the assignments of its catalog, and its target.
fn may_see_assignment(p: &Principal, a: &steward_domain::assignment::Assignment) -> bool {
    p.grants().allows_in(a.catalog_id, Task::ManageAssignments) || p.user_id() == Some(a.target_id)
}

async fn reprocess_assignment(
    State(st): State<AppState>,
    May(p, ..): May<ManagesAssignments>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    no_body(&headers, &bytes)?;
    requests::reprocess_assignment(&st.services, &p, path_id(&id)?).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn get_approval(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    if let Some((name, args)) = function_call(&id) {
        let on = arg(&args, "on").unwrap_or_default();
        if !name.eq_ignore_ascii_case("filterByCurrentUser") || !on.eq_ignore_ascii_case("approver") {
            return Err(bad_function(&id, "filterByCurrentUser(on='approver')"));
        }
        let me = p.user()?;
        check_shape::<ApprovalView>(od.options.select.as_ref(), &od.options.expand)?;
        let q = od.list_query(&ASSIGNMENT_REQUESTS)?;
        let page = approvals::my_approvals(&st.services, me, q.clone()).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for a in page.items.iter().filter(|a| !a.request.detail.stages.is_empty()) {
            items.push(ApprovalView::build(&st.services, &a.request, a.viewer).await?);
        }
        let page = Page { items, count: page.count, next: page.next };
        return page_response(&Cx::new(&st.services, &p), &od, &q, page, APPROVALS).await;
    }
    let a = approvals::get_approval(&st.services, &p, path_id(&id)?).await?;
    let view = ApprovalView::build(&st.services, &a.request, a.viewer).await?;
    // Graph answers GET approval with its stages inline (approval-get), though `stages` is a
    // navigation property: the SDK's `approval.stages` is what approvers read. Unless the
    // caller shaped the response with $select or $expand, expand them.
    let mut od = od;
    if od.options.select.is_none() && od.options.expand.is_empty() {
        od.options.expand.push(steward_odata::ExpandItem { path: "stages".into(), ..Default::default() });
    }
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::OK, APPROVALS).await
}

async fn list_stages(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    check_shape::<StageView>(od.options.select.as_ref(), &od.options.expand)?;
    let a = approvals::get_approval(&st.services, &p, path_id(&id)?).await?;
    let view = ApprovalView::build(&st.services, &a.request, a.viewer).await?;
    let q = ListQuery::all(&ASSIGNMENT_REQUESTS);
    let page = Page { items: view.stages().to_vec(), count: Some(view.stages().len() as u64), next: None };
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &format!("{APPROVALS}('{id}')/stages")).await
}

async fn get_stage(
    State(st): State<AppState>,
    Caller(p): Caller,
    od: OData,
    Path((id, stage)): Path<(String, String)>,
) -> R {
    let a = approvals::get_approval(&st.services, &p, path_id(&id)?).await?;
    let view = ApprovalView::build(&st.services, &a.request, a.viewer).await?;
    let stage_id: ApprovalStageId = path_id(&stage)?;
    let s = view
        .stages()
        .iter()
        .find(|s| s.id() == stage_id.to_string())
        .ok_or_else(|| ApiError::from(steward_app::AppError::not_found("approval stage", stage_id)))?;
    entity_response(&Cx::new(&st.services, &p), &od, s, StatusCode::OK, &format!("{APPROVALS}('{id}')/stages")).await
}

async fn decide(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path((id, stage)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let me = p.user()?;
    let mut b = Body::parse(&headers, &bytes, "approvalStage")?;
    let result = b.req_str("reviewResult")?;
    let approve = ReviewResult::parse_decision(&result).ok_or_else(|| {
        ApiError::invalid_model(format!(
            "reviewResult '{}' is not valid; send Approve or Deny.",
            steward_domain::text::clip(&result, 40)
        ))
    })?;
    let justification = b.nullable_str("justification")?;
    b.ignore(&["id", "assignedToMe", "displayName", "reviewedBy", "reviewedDateTime", "status"]);
    b.finish()?;
    approvals::decide(&st.services, me, p.sign_in(), path_id(&id)?, path_id(&stage)?, approve, justification).await?;
    Ok(no_content())
}

/// `accessPackages/filterByCurrentUser(on='allowedRequestor')`.
pub async fn requestable_packages(st: &AppState, p: &Principal, od: &OData, segment: &str) -> R {
    let Some((name, args)) = function_call(segment) else {
        return Err(bad_function(segment, "filterByCurrentUser(on='allowedRequestor')"));
    };
    let on = arg(&args, "on").unwrap_or_default();
    if !name.eq_ignore_ascii_case("filterByCurrentUser") || !on.eq_ignore_ascii_case("allowedRequestor") {
        return Err(bad_function(segment, "filterByCurrentUser(on='allowedRequestor')"));
    }
    let me = p.user()?;
    check_shape::<steward_domain::package::AccessPackage>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&steward_app::query::ACCESS_PACKAGES)?;
    let page = requests::requestable_packages(&st.services, me, q.clone()).await?;
    page_response(&Cx::new(&st.services, p), od, &q, page, "identityGovernance/entitlementManagement/accessPackages")
        .await
}

async fn applicable_policy_requirements(
    State(st): State<AppState>,
    Caller(p): Caller,
    od: OData,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let me = p.user()?;
    no_body(&headers, &bytes)?;
    let policies = requests::applicable_policies(&st.services, me, path_id(&id)?).await?;
    let value: Vec<Value> = policies
        .iter()
        .map(|pol| {
            let (add, update) = requests::approval_required(pol);
            let (justification, custom) = requests::requestor_requirements(pol);
            serde_json::json!({
                "policyId": pol.id.to_string(),
                "policyDisplayName": pol.display_name.as_str(),
                "policyDescription": pol.description,
                "isApprovalRequiredForAdd": add,
                "isApprovalRequiredForUpdate": update,
                "isRequestorJustificationRequired": justification,
                "allowCustomAssignmentSchedule": custom,
                "questions": pol.settings.questions,
                "schedule": pol.settings.expiration.as_ref().map(|e| serde_json::json!({"expiration": e, "startDateTime": null, "recurrence": null})),
            })
        })
        .collect();
    Ok(crate::odata::json_response(
        StatusCode::OK,
        serde_json::json!({
            "@odata.context": format!(
                "{}/v1.0/$metadata#Collection(microsoft.graph.accessPackageAssignmentRequestRequirements)",
                od.base()
            ),
            "value": value,
        }),
    ))
}

async fn violations(State(st): State<AppState>, Admin(..): Admin) -> R {
    let limit = 10_000;
    let found = st.services.store.sod_violations(limit).await.map_err(steward_app::AppError::from)?;
    let value: Vec<Value> = found
        .iter()
        .map(|v| {
            let (kind, id) = match v.conflict {
                steward_app::ports::Conflicting::Package(p) => ("accessPackage", p.to_string()),
                steward_app::ports::Conflicting::Group(g) => ("group", g.to_string()),
            };
            serde_json::json!({
                "targetId": v.target.to_string(),
                "assignmentId": v.assignment.to_string(),
                "accessPackageId": v.package.to_string(),
                "conflictsWith": {"type": kind, "id": id},
            })
        })
        .collect();
    Ok(crate::odata::json_response(
        StatusCode::OK,
        serde_json::json!({"truncated": found.len() as u32 >= limit, "value": value}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExplainQuery {
    user_id: Option<String>,
}

async fn explanation(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    axum::extract::Query(eq): axum::extract::Query<ExplainQuery>,
) -> R {
    let user = match (&p, eq.user_id) {
        (_, Some(u)) => {
            let u: steward_domain::ids::UserId = path_id(&u)?;
            // Users may ask about themselves; administrators about anyone.
            if p.user_id() != Some(u) {
                p.admin()?;
            }
            u
        }
        (Principal::User { user, .. }, None) => *user,
        (Principal::External { .. }, None) => {
            return Err(steward_app::AppError::Forbidden(
                "Someone not yet in the directory may only request access; explanations open once they are a guest."
                    .into(),
            )
            .into());
        }
        (Principal::Admin { .. } | Principal::Service { .. }, None) => {
            return Err(ApiError::bad_request("Name the user to explain for with ?userId=…"));
        }
    };
    let e = requests::explain(&st.services, user, path_id(&id)?).await?;
    let mut stages = Vec::new();
    for (i, people) in e.approvers.iter().enumerate() {
        let mut names = Vec::new();
        for u in people {
            let name = st
                .services
                .store
                .get_user(*u)
                .await
                .map_err(steward_app::AppError::from)?
                .map(|u| u.display_name.as_str().to_owned());
            names.push(serde_json::json!({"id": u.to_string(), "displayName": name}));
        }
        stages.push(serde_json::json!({"stage": i + 1, "approvers": names}));
    }
    let summary = explanation_summary(&e);
    Ok(crate::odata::json_response(
        StatusCode::OK,
        serde_json::json!({
            "userId": user.to_string(),
            "accessPackageId": id,
            "allowed": e.allowed,
            "summary": summary,
            "policy": e.policy.as_ref().map(|p| serde_json::json!({"id": p.id.to_string(), "displayName": p.display_name.as_str()})),
            "approvalStages": stages,
            "blockedBy": e.blocked_by,
            "policies": e.policies.iter().map(|(p, v)| serde_json::json!({
                "id": p.id.to_string(), "displayName": p.display_name.as_str(), "allowed": v.allowed, "reason": v.reason,
            })).collect::<Vec<_>>(),
        }),
    ))
}

/// The explanation in one sentence, as `GET …/accessPackages/{id}/explanation` and the portal
/// give it.
pub(crate) fn explanation_summary(e: &requests::Explanation) -> String {
    match (&e.policy, &e.blocked_by) {
        (_, Some(b)) => format!("No: {b}"),
        (Some(pol), None) if e.approvers.is_empty() => {
            format!("Yes, under policy '{}', without approval.", pol.display_name)
        }
        (Some(pol), None) => {
            format!("Yes, under policy '{}', after {} approval stage(s).", pol.display_name, e.approvers.len())
        }
        (None, None) => format!(
            "No policy lets this user request the package: {}.",
            e.policies.iter().map(|(p, v)| format!("{}: {}", p.display_name, v.reason)).collect::<Vec<_>>().join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::function_call;

    #[test]
    fn function_calls_parse_with_or_without_the_comma() {
        let (n, a) = function_call("filterByCurrentUser(on='approver')").unwrap();
        assert_eq!((n, a), ("filterByCurrentUser", vec![("on".into(), "approver".into())]));
        let want =
            vec![("accessPackageId".to_owned(), "A".to_owned()), ("incompatibleAccessPackageId".into(), "B".into())];
        assert_eq!(
            function_call("additionalAccess(accessPackageId='A',incompatibleAccessPackageId='B')").unwrap().1,
            want
        );
        assert_eq!(
            function_call("additionalAccess(accessPackageId='A'incompatibleAccessPackageId='B')").unwrap().1,
            want
        );
        assert_eq!(function_call("f(x='it''s')").unwrap().1, vec![("x".into(), "it's".into())]);
        assert!(function_call("f(x='open").is_none());
        assert!(function_call("plain-id").is_none());
    }
}
