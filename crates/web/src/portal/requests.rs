//! My requests (for me or made by me), one request's timeline (submitted, each approval stage
//! with who decided, when and why, delivery per resource) and its Cancel form.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use steward_app::AppError;
use steward_app::lifecycle::requests::{self, RequestsOf};
use steward_app::query::{ASSIGNMENT_REQUESTS, ListQuery};
use steward_domain::approval::StageStatus;
use steward_domain::assignment::DeliveryState;
use steward_domain::enums::RequestState;
use steward_domain::ids::RequestId;
use steward_domain::request::AssignmentRequest;
use steward_odata::{OrderBy, QueryOptions};

use super::{Layout, Viewer, When};
use crate::AppState;

pub(crate) struct RequestRow {
    id: String,
    package: String,
    kind: String,
    state: String,
    created: When,
    for_someone_else: Option<String>,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<RequestRow>,
}

/// Newest first, at most `top`.
pub(crate) fn newest(top: u32) -> Result<ListQuery, AppError> {
    let options = QueryOptions {
        orderby: vec![OrderBy { path: vec!["createdDateTime".into()], descending: true }],
        top: Some(top),
        ..QueryOptions::default()
    };
    ListQuery::from_options(&ASSIGNMENT_REQUESTS, &options)
}

/// A request type in words.
pub(crate) fn kind(r: &AssignmentRequest) -> &'static str {
    use steward_domain::enums::RequestType as T;
    match r.request_type {
        T::UserAdd | T::AdminAdd | T::OnBehalfAdd => "Access",
        T::UserUpdate | T::AdminUpdate => "Extension",
        T::UserRemove | T::AdminRemove | T::SystemRemove => "Removal",
        _ => "Change",
    }
}

/// A request's state in words.
pub(crate) fn state_text(s: RequestState) -> &'static str {
    match s {
        RequestState::Submitted => "Submitted",
        RequestState::PendingApproval => "Waiting for approval",
        RequestState::Delivering => "Being delivered",
        RequestState::Delivered => "Delivered",
        RequestState::PartiallyDelivered => "Partly delivered",
        RequestState::DeliveryFailed => "Delivery failed",
        RequestState::Denied => "Denied",
        RequestState::Scheduled => "Scheduled",
        RequestState::Canceled => "Cancelled",
        _ => "Other",
    }
}

pub(crate) async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match list_page(&state, &v).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("requests"))),
    }
}

async fn list_page(state: &AppState, v: &Viewer) -> Result<ListPage, AppError> {
    let s = &state.services;
    let mut all = requests::list_my_requests(s, v.me, RequestsOf::Target, newest(100)?).await?.items;
    for r in requests::list_my_requests(s, v.me, RequestsOf::CreatedBy, newest(100)?).await?.items {
        if !all.iter().any(|a| a.id == r.id) {
            all.push(r);
        }
    }
    all.sort_by(|a, b| b.created_date_time.cmp(&a.created_date_time).then(b.id.to_string().cmp(&a.id.to_string())));
    let mut rows = Vec::new();
    for r in all {
        rows.push(RequestRow {
            id: r.id.to_string(),
            package: super::package_name(state, r.access_package_id).await,
            kind: kind(&r).to_owned(),
            state: state_text(r.state).to_owned(),
            created: When::of(r.created_date_time),
            for_someone_else: if r.target_id == v.id() {
                None
            } else {
                Some(super::user_name(state, r.target_id).await)
            },
        });
    }
    Ok(ListPage { layout: v.layout("requests"), rows })
}

pub(crate) struct Step {
    title: String,
    when: Option<When>,
    lines: Vec<String>,
}

#[derive(Template)]
#[template(path = "request.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    package: String,
    package_id: String,
    kind: String,
    state: String,
    banner: Option<String>,
    next: String,
    steps: Vec<Step>,
    cancellable: bool,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DetailParams {
    submitted: Option<String>,
    existing: Option<String>,
}

fn stage_status(s: StageStatus) -> &'static str {
    match s {
        StageStatus::NotStarted => "not started",
        StageStatus::InProgress => "waiting for a decision",
        StageStatus::Escalated => "escalated, waiting for a decision",
        StageStatus::Completed => "completed",
        StageStatus::Expired => "timed out (nobody decided in time)",
        StageStatus::Skipped => "skipped",
    }
}

async fn names(state: &AppState, ids: &[steward_domain::ids::UserId]) -> String {
    let mut out = Vec::new();
    for id in ids {
        out.push(super::user_name(state, *id).await);
    }
    out.join(", ")
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: RequestId,
    banner: Option<String>,
    error: Option<String>,
) -> Result<DetailPage, AppError> {
    let s = &state.services;
    let r = requests::get_request(s, &v.principal, id).await?;
    let package = super::package_name(state, r.access_package_id).await;
    let mut steps = Vec::new();
    let mut lines = Vec::new();
    match r.requestor_id {
        Some(by) if by == r.target_id => lines.push(format!("By {}.", super::user_name(state, by).await)),
        Some(by) => lines.push(format!(
            "By {} for {}.",
            super::user_name(state, by).await,
            super::user_name(state, r.target_id).await
        )),
        None => lines.push(format!("By an administrator for {}.", super::user_name(state, r.target_id).await)),
    }
    if let Some(j) = &r.detail.justification {
        lines.push(format!("Justification: {j}"));
    }
    lines.extend(super::answers_of(state, &r).await);
    if let Some(start) = r.detail.schedule.start_date_time {
        lines.push(format!("Asked to start on {}.", When::day(start).text));
    }
    if let Some(end) = r.detail.schedule.expiration.as_ref().and_then(|e| e.end_date_time) {
        lines.push(format!("Asked to end on {}.", When::day(end).text));
    }
    steps.push(Step { title: "Submitted".into(), when: Some(When::of(r.created_date_time)), lines });
    let mut waiting_for = None;
    for (i, st) in r.detail.stages.iter().enumerate() {
        let mut lines = Vec::new();
        for d in &st.decisions {
            let who = super::user_name(state, d.by).await;
            let what = if d.approve { "Approved" } else { "Denied" };
            let why = d.justification.as_deref().map(|j| format!(": {j}")).unwrap_or_default();
            lines.push(format!("{what} by {who} on {}{why}", When::of(d.at).text));
        }
        if matches!(st.status, StageStatus::InProgress | StageStatus::Escalated) {
            let who = names(state, &st.approvers).await;
            lines.push(format!("Approvers: {who}."));
            if let Some(at) = st.deny_at {
                lines.push(format!("Denied automatically if nobody decides by {}.", When::of(at).text));
            }
            waiting_for = Some(who);
        }
        steps.push(Step {
            title: format!("Approval stage {}: {}", i + 1, stage_status(st.status)),
            when: st.completed.or(st.started).map(When::of),
            lines,
        });
    }
    if let Some(aid) = r.assignment_id {
        let grants = s.store.package_grants(r.access_package_id).await?;
        let mut lines = Vec::new();
        for d in s.store.deliveries(aid).await? {
            let what = grants
                .iter()
                .find(|g| g.role_id == d.resource_role_id)
                .map(|g| format!("{} of {}", g.role_name, g.resource_name))
                .unwrap_or_else(|| d.resource_role_id.to_string());
            let state = match d.state {
                DeliveryState::Pending => "pending",
                DeliveryState::Done => "done",
                DeliveryState::Failed => "failed",
                #[allow(unreachable_patterns)]
                _ => "other",
            };
            let detail = d.detail.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
            lines.push(format!("{what}: {state}{detail}"));
        }
        if !lines.is_empty() {
            steps.push(Step { title: "Delivery".into(), when: None, lines });
        }
    }
    if let Some(reason) = &r.detail.reason {
        steps.push(Step {
            title: "Outcome".into(),
            when: r.completed_date_time.map(When::of),
            lines: vec![reason.clone()],
        });
    }
    let next = match r.state {
        RequestState::PendingApproval => match waiting_for {
            Some(who) => format!("{who} will approve or deny it. You will see the decision here."),
            None => "It waits for approval.".into(),
        },
        RequestState::Submitted => "It is being processed.".into(),
        RequestState::Scheduled => "Access starts on the date asked for.".into(),
        RequestState::Delivering => "Access is being granted in the connected systems.".into(),
        RequestState::Delivered => "Done. The access is listed under Access.".into(),
        RequestState::PartiallyDelivered | RequestState::DeliveryFailed => {
            "Some access could not be granted; an administrator can retry.".into()
        }
        RequestState::Denied => "The request was denied.".into(),
        RequestState::Canceled => "The request was cancelled.".into(),
        _ => String::new(),
    };
    let mine = r.target_id == v.id() || r.requestor_id == Some(v.id());
    Ok(DetailPage {
        layout: v.layout("requests"),
        id: r.id.to_string(),
        package,
        package_id: r.access_package_id.to_string(),
        kind: kind(&r).to_owned(),
        state: state_text(r.state).to_owned(),
        banner,
        next,
        steps,
        cancellable: mine && r.can_cancel(),
        error,
    })
}

pub(crate) async fn show(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: RequestId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let params = Query::<DetailParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let banner = if params.submitted.is_some() {
        Some("Your request was submitted.".to_owned())
    } else if params.existing.is_some() {
        Some("You already have an open request for this package; here it is.".to_owned())
    } else {
        None
    };
    match detail_page(&state, &v, id, banner, None).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("requests"))),
    }
}

pub(crate) async fn cancel(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let id: RequestId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let back = format!("/requests/{id}");
    let (_, _, v) = match super::form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match requests::cancel(&state.services, &v.principal, id).await {
        Ok(()) => super::see_other(&format!("/requests/{id}")),
        Err(e @ (AppError::Conflict(_) | AppError::Forbidden(_))) => {
            let status = super::form_status(&e);
            match detail_page(&state, &v, id, None, Some(e.to_string())).await {
                Ok(p) => super::render(status, &p),
                Err(e) => super::app_error_page(e, Some(v.layout("requests"))),
            }
        }
        Err(e) => super::app_error_page(e, Some(v.layout("requests"))),
    }
}
