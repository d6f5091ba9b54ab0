//! What waits for my approval (`approvals::my_approvals`), with the requestor, their
//! justification and answers, what the package grants and when the stage times out; one
//! approval with the approve/deny form (`approvals::decide`), and what I decided before.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use steward_app::AppError;
use steward_app::lifecycle::approvals;
use steward_domain::approval::{StageRecord, StageStatus};
use steward_domain::ids::{ApprovalStageId, RequestId, UserId};
use steward_domain::request::AssignmentRequest;

use super::{Layout, Viewer, When};
use crate::AppState;

pub(crate) struct ApprovalRow {
    id: String,
    package: String,
    requestor: String,
    target: String,
    justification: String,
    answers: Vec<String>,
    grants: Vec<String>,
    submitted: When,
    times_out: Option<When>,
    stage: usize,
}

pub(crate) struct DecidedRow {
    id: String,
    package: String,
    target: String,
    decision: String,
    at: When,
    justification: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ListPage {
    layout: Layout,
    waiting: Vec<ApprovalRow>,
    decided: Vec<DecidedRow>,
    banner: Option<String>,
}

/// The stage that waits for `me`: open, `me` among its approvers, not yet decided by `me`.
fn waiting_stage(r: &AssignmentRequest, me: UserId) -> Option<(usize, &StageRecord)> {
    r.detail.stages.iter().enumerate().find(|(_, st)| {
        matches!(st.status, StageStatus::InProgress | StageStatus::Escalated)
            && st.approvers.contains(&me)
            && !st.decisions.iter().any(|d| d.by == me)
    })
}

async fn row(state: &AppState, r: &AssignmentRequest, stage: usize, st: &StageRecord) -> Result<ApprovalRow, AppError> {
    Ok(ApprovalRow {
        id: r.id.to_string(),
        package: super::package_name(state, r.access_package_id).await,
        requestor: match r.requestor_id {
            Some(u) => super::user_name(state, u).await,
            None => "An administrator".into(),
        },
        target: super::user_name(state, r.target_id).await,
        justification: r.detail.justification.clone().unwrap_or_default(),
        answers: super::answers_of(state, r).await,
        grants: super::grants_of(state, r.access_package_id).await?,
        submitted: When::of(r.created_date_time),
        times_out: st.deny_at.map(When::of),
        stage: stage + 1,
    })
}

async fn list_page(state: &AppState, v: &Viewer, banner: Option<String>) -> Result<ListPage, AppError> {
    let s = &state.services;
    let page = approvals::my_approvals(s, v.me, super::requests::newest(200)?).await?;
    let (mut waiting, mut decided) = (Vec::new(), Vec::new());
    for a in page.items {
        let r = &a.request;
        if let Some((i, st)) = waiting_stage(r, v.id()) {
            waiting.push(row(state, r, i, st).await?);
        }
        for d in r.detail.stages.iter().flat_map(|st| st.decisions.iter()).filter(|d| d.by == v.id()) {
            decided.push(DecidedRow {
                id: r.id.to_string(),
                package: super::package_name(state, r.access_package_id).await,
                target: super::user_name(state, r.target_id).await,
                decision: if d.approve { "Approved".into() } else { "Denied".into() },
                at: When::of(d.at),
                justification: d.justification.clone().unwrap_or_default(),
            });
        }
    }
    Ok(ListPage { layout: v.layout("approvals"), waiting, decided, banner })
}

pub(crate) async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let banner =
        parts.uri.query().is_some_and(|q| q.contains("decided=1")).then(|| "Your decision was recorded.".to_owned());
    match list_page(&state, &v, banner).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("approvals"))),
    }
}

#[derive(Template)]
#[template(path = "approval.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    package: String,
    state: String,
    waiting: Option<ApprovalRow>,
    stage_id: String,
    justification_required: bool,
    justification: String,
    error: Option<String>,
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: RequestId,
    justification: String,
    error: Option<String>,
) -> Result<DetailPage, AppError> {
    let a = approvals::get_approval(&state.services, &v.principal, id).await?;
    let r = &a.request;
    let (waiting, stage_id, justification_required) = match waiting_stage(r, v.id()) {
        Some((i, st)) => (Some(row(state, r, i, st).await?), st.id.to_string(), st.justification_required),
        None => (None, String::new(), false),
    };
    Ok(DetailPage {
        layout: v.layout("approvals"),
        id: r.id.to_string(),
        package: super::package_name(state, r.access_package_id).await,
        state: super::requests::state_text(r.state).to_owned(),
        waiting,
        stage_id,
        justification_required,
        justification,
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
    match detail_page(&state, &v, id, String::new(), None).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("approvals"))),
    }
}

pub(crate) async fn decide(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let id: RequestId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let back = format!("/approvals/{id}");
    let (_, fields, v) = match super::form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let justification = super::field(&fields, "justification").unwrap_or("").to_owned();
    let again = |status: StatusCode, message: String| {
        let state = state.clone();
        let justification = justification.clone();
        let v = &v;
        async move {
            match detail_page(&state, v, id, justification, Some(message)).await {
                Ok(p) => super::render(status, &p),
                Err(e) => super::app_error_page(e, Some(v.layout("approvals"))),
            }
        }
    };
    let approve = match super::field(&fields, "decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return again(StatusCode::UNPROCESSABLE_ENTITY, "Choose Approve or Deny.".into()).await,
    };
    let Some(stage) = super::field(&fields, "stage").and_then(|s| s.parse::<ApprovalStageId>().ok()) else {
        return again(StatusCode::UNPROCESSABLE_ENTITY, "This form is out of date; reload the page.".into()).await;
    };
    let why = Some(justification.clone()).filter(|j| !j.trim().is_empty());
    match approvals::decide(&state.services, v.me, v.principal.sign_in(), id, stage, approve, why).await {
        Ok(()) => super::see_other("/approvals?decided=1"),
        Err(e @ AppError::NotFound { .. }) => super::app_error_page(e, Some(v.layout("approvals"))),
        Err(e) => {
            let status = super::form_status(&e);
            let message = match &e {
                AppError::Store(_) | AppError::Upstream(_) => "Something went wrong; try again in a moment.".to_owned(),
                e => e.to_string(),
            };
            again(status, message).await
        }
    }
}
