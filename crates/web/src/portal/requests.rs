//! My requests (for me or made by me), one request's timeline (submitted, each approval stage
//! with who decided, when and why, delivery per resource) and its Cancel form.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use steward_app::AppError;
use steward_app::lifecycle::requests::{self, RequestsOf};
use steward_app::query::{ASSIGNMENT_REQUESTS, ListQuery};
use steward_domain::approval::StageStatus;
use steward_domain::assignment::{DeliveryState, GrantAction};
use steward_domain::enums::RequestState;
use steward_domain::ids::{AccessPackageId, PolicyId, RequestId, UserId};
use steward_domain::package::AccessPackage;
use steward_domain::policy::{AssignmentPolicy, Question};
use steward_domain::request::AssignmentRequest;
use steward_odata::{OrderBy, QueryOptions};

use super::{Layout, Viewer, When};
use crate::AppState;

/// What the rows of a list page name (packages, people, what packages grant, policies), read
/// with one query per kind for the whole page rather than one or more per row: a page of 100
/// requests costs four reads, not four hundred.
#[derive(Default)]
pub(crate) struct Names {
    packages: HashMap<AccessPackageId, AccessPackage>,
    users: HashMap<UserId, String>,
    grants: HashMap<AccessPackageId, Vec<String>>,
    policies: HashMap<PolicyId, AssignmentPolicy>,
}

/// The distinct ids of `ids` not yet in `known`.
fn unknown<T: Copy + Eq + Hash, V>(ids: Vec<T>, known: &HashMap<T, V>) -> Vec<T> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| !known.contains_key(id) && seen.insert(*id)).collect()
}

impl Names {
    pub(crate) async fn read_packages(&mut self, state: &AppState, ids: Vec<AccessPackageId>) -> Result<(), AppError> {
        let ids = unknown(ids, &self.packages);
        if !ids.is_empty() {
            self.packages.extend(state.services.store.packages_by_id(&ids).await?.into_iter().map(|p| (p.id, p)));
        }
        Ok(())
    }

    pub(crate) async fn read_users(&mut self, state: &AppState, ids: Vec<UserId>) -> Result<(), AppError> {
        let ids = unknown(ids, &self.users);
        if !ids.is_empty() {
            let found = state.services.store.users_by_id(&ids).await?;
            self.users.extend(found.into_iter().map(|u| (u.id, u.display_name.as_str().to_owned())));
        }
        Ok(())
    }

    pub(crate) async fn read_grants(&mut self, state: &AppState, ids: Vec<AccessPackageId>) -> Result<(), AppError> {
        let ids = unknown(ids, &self.grants);
        if ids.is_empty() {
            return Ok(());
        }
        for id in &ids {
            self.grants.insert(*id, Vec::new());
        }
        for (package, g) in state.services.store.package_grants_of(&ids).await? {
            self.grants.entry(package).or_default().push(format!("{} of {}", g.role_name, g.resource_name));
        }
        Ok(())
    }

    pub(crate) async fn read_policies(&mut self, state: &AppState, ids: Vec<PolicyId>) -> Result<(), AppError> {
        let ids = unknown(ids, &self.policies);
        if !ids.is_empty() {
            self.policies.extend(state.services.store.policies_by_id(&ids).await?.into_iter().map(|p| (p.id, p)));
        }
        Ok(())
    }

    /// The display name of a package, or its id (as `super::package_name`).
    pub(crate) fn package(&self, id: AccessPackageId) -> String {
        self.packages.get(&id).map_or_else(|| id.to_string(), |p| p.display_name.as_str().to_owned())
    }

    /// The display name of a user (as `super::user_name`).
    pub(crate) fn user(&self, id: UserId) -> String {
        self.users.get(&id).cloned().unwrap_or_else(|| "(a removed user)".to_owned())
    }

    /// What a package grants, in words (as `super::grants_of`).
    pub(crate) fn grants(&self, id: AccessPackageId) -> Vec<String> {
        self.grants.get(&id).cloned().unwrap_or_default()
    }

    pub(crate) fn policy(&self, id: Option<PolicyId>) -> Option<&AssignmentPolicy> {
        id.and_then(|id| self.policies.get(&id))
    }

    /// A request's answers as "question: answer" (as `super::answers_of`), its policy read
    /// with `read_policies` beforehand.
    pub(crate) fn answers(&self, r: &AssignmentRequest) -> Vec<String> {
        let policy = self.policy(r.policy_id);
        let text = |id: &str| {
            policy
                .iter()
                .flat_map(|p| p.settings.questions.iter())
                .map(|q| match q {
                    Question::TextInput { base, .. } | Question::MultipleChoice { base, .. } => base,
                })
                .find(|b| b.id.as_deref() == Some(id))
                .and_then(|b| b.text.clone())
                .unwrap_or_else(|| id.to_owned())
        };
        r.detail
            .answers
            .iter()
            .map(|a| format!("{} {}", text(&a.question_id), a.display_value.as_deref().unwrap_or(&a.value)))
            .collect()
    }
}

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
    all.sort_by(|a, b| b.created_date_time.cmp(&a.created_date_time).then(b.id.cmp(&a.id)));
    let mut names = Names::default();
    names.read_packages(state, all.iter().map(|r| r.access_package_id).collect()).await?;
    names.read_users(state, all.iter().map(|r| r.target_id).filter(|t| *t != v.id()).collect()).await?;
    let rows = all
        .into_iter()
        .map(|r| RequestRow {
            id: r.id.to_string(),
            package: names.package(r.access_package_id),
            kind: kind(&r).to_owned(),
            state: state_text(r.state).to_owned(),
            created: When::of(r.created_date_time),
            for_someone_else: (r.target_id != v.id()).then(|| names.user(r.target_id)),
        })
        .collect();
    Ok(ListPage { layout: v.layout("requests"), rows })
}

/// One step of a request's timeline.
pub(crate) struct Step {
    pub(crate) title: String,
    pub(crate) when: Option<When>,
    pub(crate) lines: Vec<String>,
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

/// An approval stage's status in words.
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

async fn names(state: &AppState, ids: &[UserId]) -> String {
    let mut out = Vec::new();
    for id in ids {
        out.push(super::user_name(state, *id).await);
    }
    out.join(", ")
}

/// A request's approval stages as timeline steps (who decided, when and why; who may decide a
/// stage still open and when it times out), with the approvers the request waits for, if any.
/// The portal's and the console's timelines both show these.
pub(crate) async fn approval_steps(state: &AppState, r: &AssignmentRequest) -> (Vec<Step>, Option<String>) {
    let mut steps = Vec::new();
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
    (steps, waiting_for)
}

/// The delivery of a request's assignment, one line per resource role and action (grant or
/// removal) with its outcome, attempts and the connector's message; none before there is any.
pub(crate) async fn delivery_step(state: &AppState, r: &AssignmentRequest) -> Result<Option<Step>, AppError> {
    let s = &state.services;
    let Some(aid) = r.assignment_id else { return Ok(None) };
    let grants = s.store.package_grants(r.access_package_id).await?;
    let mut lines = Vec::new();
    for d in s.store.deliveries(aid).await? {
        let what = grants
            .iter()
            .find(|g| g.role_id == d.resource_role_id)
            .map_or_else(|| d.resource_role_id.to_string(), |g| format!("{} of {}", g.role_name, g.resource_name));
        let action = match d.action {
            GrantAction::Grant => "grant",
            GrantAction::Revoke => "removal",
        };
        let outcome = match d.state {
            DeliveryState::Pending => "pending",
            DeliveryState::Done => "done",
            DeliveryState::Failed => "failed",
        };
        let attempts = if d.attempts > 1 { format!(", {} attempts", d.attempts) } else { String::new() };
        let detail = d.detail.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        lines.push(format!("{what} ({action}): {outcome}{attempts}{detail}"));
    }
    Ok((!lines.is_empty()).then(|| Step { title: "Delivery, per resource".into(), when: None, lines }))
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
    let (stages, waiting_for) = approval_steps(state, &r).await;
    steps.extend(stages);
    steps.extend(delivery_step(state, &r).await?);
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
