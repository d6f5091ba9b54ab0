//! My assignments, active, starting later (approved requests waiting for their start date) and
//! expired, with their dates; Extend (a `userUpdate` request, where the policy lets targets
//! extend) and Remove (`userRemove`, where it lets them remove).

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use steward_app::AppError;
use steward_app::lifecycle::requests::{self, RequestInput, RequestsOf};
use steward_app::query::{ASSIGNMENT_REQUESTS, ASSIGNMENTS, ListQuery};
use steward_domain::enums::ExpirationPatternType;
use steward_domain::enums::RequestType;
use steward_domain::ids::AssignmentId;
use steward_domain::policy::ExpirationPattern;
use steward_domain::schedule::Schedule;
use steward_odata::{OrderBy, QueryOptions};

use super::{Layout, Viewer, When};
use crate::AppState;

pub(crate) struct AccessRow {
    id: String,
    package: String,
    package_id: String,
    status: String,
    start: When,
    end: Option<When>,
    ended: Option<When>,
    grants: Vec<String>,
    can_extend: bool,
    custom_end: bool,
    can_remove: bool,
    error: Option<String>,
}

/// Approved access that starts on a later date (a request `scheduled` for the viewer).
pub(crate) struct UpcomingRow {
    request_id: String,
    package: String,
    package_id: String,
    start: When,
    end: Option<When>,
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    layout: Layout,
    active: Vec<AccessRow>,
    upcoming: Vec<UpcomingRow>,
    expired: Vec<AccessRow>,
    banner: Option<String>,
}

async fn access_page(
    state: &AppState,
    v: &Viewer,
    error: Option<(AssignmentId, String)>,
    banner: Option<String>,
) -> Result<AccessPage, AppError> {
    let s = &state.services;
    let options = QueryOptions {
        orderby: vec![OrderBy { path: vec!["createdDateTime".into()], descending: true }],
        top: Some(200),
        ..QueryOptions::default()
    };
    // As `assignments/filterByCurrentUser(on='target')`.
    let q = ListQuery::from_options(&ASSIGNMENTS, &options)?.scoped("target/objectId", v.id())?;
    let (mut active, mut expired) = (Vec::new(), Vec::new());
    let all = s.store.list_assignments(&q).await?.items;
    // Approved, waiting for the start date asked for: no assignment exists yet.
    let scheduled = steward_odata::parse_query("$filter=state eq 'scheduled'&$orderby=createdDateTime desc&$top=50")
        .map_err(AppError::from)
        .and_then(|o| ListQuery::from_options(&ASSIGNMENT_REQUESTS, &o))?;
    let scheduled = requests::list_my_requests(s, v.me, RequestsOf::Target, scheduled).await?.items;
    let mut names = super::requests::Names::default();
    let packages = all.iter().map(|a| a.access_package_id).chain(scheduled.iter().map(|r| r.access_package_id));
    names.read_packages(state, packages.collect()).await?;
    names.read_grants(state, all.iter().filter(|a| a.is_active()).map(|a| a.access_package_id).collect()).await?;
    names.read_policies(state, all.iter().filter_map(|a| a.policy_id).collect()).await?;
    for a in all {
        let policy = names.policy(a.policy_id);
        let settings = policy.and_then(|p| p.settings.requestor_settings.as_ref());
        let is_active = a.is_active();
        let row = AccessRow {
            id: a.id.to_string(),
            package: names.package(a.access_package_id),
            package_id: a.access_package_id.to_string(),
            status: a.status.clone(),
            start: When::day(a.window.start),
            end: a.window.end.map(When::day),
            ended: a.expired_date_time.map(When::day),
            grants: if is_active { names.grants(a.access_package_id) } else { Vec::new() },
            // A policy without requestor settings lets its targets extend and remove.
            can_extend: is_active
                && policy.is_some()
                && settings.is_none_or(|r| r.enable_targets_to_self_update_access),
            custom_end: settings.is_none_or(|r| r.allow_custom_assignment_schedule),
            can_remove: is_active && settings.is_none_or(|r| r.enable_targets_to_self_remove_access),
            error: error.as_ref().filter(|(id, _)| *id == a.id).map(|(_, m)| m.clone()),
        };
        if is_active { active.push(row) } else { expired.push(row) }
    }
    let upcoming = scheduled
        .iter()
        .filter_map(|r| {
            let w = r.detail.window?;
            Some(UpcomingRow {
                request_id: r.id.to_string(),
                package: names.package(r.access_package_id),
                package_id: r.access_package_id.to_string(),
                start: When::day(w.start),
                end: w.end.map(When::day),
            })
        })
        .collect();
    Ok(AccessPage { layout: v.layout("access"), active, upcoming, expired, banner })
}

pub(crate) async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let banner =
        parts.uri.query().is_some_and(|q| q.contains("removed=1")).then(|| "Your access was removed.".to_owned());
    match access_page(&state, &v, None, banner).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("access"))),
    }
}

async fn change(state: &AppState, v: &Viewer, id: AssignmentId, input: RequestInput, removal: bool) -> Response {
    let s = &state.services;
    match requests::submit(s, &v.principal, input).await {
        Ok(_) if removal => super::see_other("/access?removed=1"),
        Ok(r) => super::see_other(&format!("/requests/{}?submitted=1", r.id)),
        Err(e @ AppError::NotFound { .. }) => super::app_error_page(e, Some(v.layout("access"))),
        Err(e) => {
            let status = super::form_status(&e);
            let message = match &e {
                AppError::Store(_) | AppError::Upstream(_) => "Something went wrong; try again in a moment.".to_owned(),
                e => e.to_string(),
            };
            match access_page(state, v, Some((id, message)), None).await {
                Ok(p) => super::render(status, &p),
                Err(e) => super::app_error_page(e, Some(v.layout("access"))),
            }
        }
    }
}

pub(crate) async fn extend(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (_, fields, v) = match super::form_viewer(&state, req, "/access").await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id: AssignmentId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let end = super::field(&fields, "end").map(str::trim).filter(|e| !e.is_empty());
    let schedule = match end {
        None => None,
        Some(text) => {
            let end = match super::date_input(text, true) {
                Ok(Some(end)) => end,
                Ok(None) => return super::see_other("/access"),
                Err(message) => {
                    return match access_page(&state, &v, Some((id, message)), None).await {
                        Ok(p) => super::render(StatusCode::UNPROCESSABLE_ENTITY, &p),
                        Err(e) => super::app_error_page(e, Some(v.layout("access"))),
                    };
                }
            };
            Some(Schedule {
                start_date_time: None,
                expiration: Some(ExpirationPattern {
                    kind: Some(ExpirationPatternType::AfterDateTime),
                    duration: None,
                    end_date_time: Some(end),
                }),
            })
        }
    };
    let input = RequestInput {
        request_type: Some(RequestType::UserUpdate),
        assignment_id: Some(id),
        justification: super::field(&fields, "justification").map(str::to_owned).filter(|j| !j.trim().is_empty()),
        schedule,
        ..RequestInput::default()
    };
    change(&state, &v, id, input, false).await
}

pub(crate) async fn remove(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (_, _, v) = match super::form_viewer(&state, req, "/access").await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id: AssignmentId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let input = RequestInput {
        request_type: Some(RequestType::UserRemove),
        assignment_id: Some(id),
        ..RequestInput::default()
    };
    change(&state, &v, id, input, true).await
}
