//! The console's requests: the assignment requests of the catalogs whose assignments the viewer
//! manages (filtered by state, package and the requestor's or target's name, 25 a page), one
//! request with its status and the reasons for it (each approval stage with who decided and
//! why, delivery per resource, failures, the outcome, its audit events), and Reprocess and
//! Cancel where the Graph API offers them (`requests::reprocess`, `requests::cancel`).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use steward_app::AppError;
use steward_app::lifecycle::requests;
use steward_app::packages;
use steward_app::query::{ACCESS_PACKAGES, ASSIGNMENT_REQUESTS, Cond, MAX_TOP};
use steward_domain::audit::Initiator;
use steward_domain::enums::{RequestState, RequestType};
use steward_domain::ids::{AccessPackageId, RequestId, UserId};
use steward_domain::request::AssignmentRequest;
use steward_domain::role::Task;

use super::assignments::{
    Choice, PAGE, Pager, any_of, link, message_of, newest_page, page_number, people_matching, typed, users_by_id,
};
use crate::AppState;
use crate::portal::requests::{Step, approval_steps, delivery_step, state_text};
use crate::portal::{
    Layout, Viewer, When, app_error_page, form_status, form_viewer, page_viewer, path_id, render, see_other,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/requests", get(list))
        .route("/admin/requests/{id}", get(show))
        .route("/admin/requests/{id}/reprocess", post(reprocess))
        .route("/admin/requests/{id}/cancel", post(cancel))
}

/// A request's type in words.
fn kind(t: RequestType) -> &'static str {
    match t {
        RequestType::UserAdd => "Requested by the user",
        RequestType::OnBehalfAdd => "Requested on behalf",
        RequestType::AdminAdd => "Assigned directly",
        RequestType::SystemAdd => "Assigned automatically",
        RequestType::UserUpdate | RequestType::AdminUpdate | RequestType::SystemUpdate => "Extension",
        RequestType::UserRemove => "Removed by the user",
        RequestType::AdminRemove => "Removed by a manager",
        RequestType::SystemRemove => "Removed automatically",
        RequestType::NotSpecified | RequestType::UnknownFutureValue => "Other",
    }
}

/// The states the list filters on.
const STATES: &[RequestState] = &[
    RequestState::Submitted,
    RequestState::PendingApproval,
    RequestState::Scheduled,
    RequestState::Delivering,
    RequestState::Delivered,
    RequestState::PartiallyDelivered,
    RequestState::DeliveryFailed,
    RequestState::Denied,
    RequestState::Canceled,
];

#[derive(Debug, Default, Deserialize)]
struct Params {
    state: Option<String>,
    package: Option<String>,
    person: Option<String>,
    page: Option<String>,
}

struct Filters {
    state: Option<RequestState>,
    package: Option<AccessPackageId>,
    person: String,
    page: u32,
}

impl Filters {
    fn of(p: &Params) -> Self {
        Self {
            state: p.state.as_deref().and_then(|s| STATES.iter().copied().find(|st| st.as_str() == s.trim())),
            package: p.package.as_deref().and_then(|s| s.trim().parse().ok()),
            person: typed(p.person.as_deref()),
            page: page_number(p.page.as_deref()),
        }
    }

    fn link(&self, page: u32) -> String {
        link(
            "/admin/requests",
            &[
                ("state", self.state.map(|s| s.as_str().to_owned()).unwrap_or_default()),
                ("package", self.package.map(|p| p.to_string()).unwrap_or_default()),
                ("person", self.person.clone()),
                ("page", if page > 1 { page.to_string() } else { String::new() }),
            ],
        )
    }
}

pub(crate) struct Row {
    id: String,
    package: String,
    kind: &'static str,
    state: &'static str,
    target: String,
    requestor: String,
    created: When,
}

#[derive(Template)]
#[template(path = "console/requests.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    total: u64,
    pager: Pager,
    states: Vec<Choice>,
    packages: Vec<Choice>,
    person: String,
}

async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = Query::<Params>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    match list_page(&state, &v, &Filters::of(&params)).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn list_page(state: &AppState, v: &Viewer, f: &Filters) -> Result<ListPage, AppError> {
    let s = &state.services;
    let scope = v.principal.catalogs_for(Task::ManageAssignments)?;
    let mut terms = Vec::new();
    if let Some(st) = f.state {
        terms.push(format!("state eq '{}'", st.as_str()));
    }
    if let Some(p) = f.package {
        terms.push(format!("accessPackage/id eq '{p}'"));
    }
    let mut q = newest_page(&ASSIGNMENT_REQUESTS, &terms, f.page, PAGE)?;
    if !f.person.is_empty() {
        let ids: Vec<String> =
            people_matching(state, v, &f.person, MAX_TOP).await?.iter().map(|u| u.id.to_string()).collect();
        q = q.and(Cond::Or(vec![
            any_of(&ASSIGNMENT_REQUESTS, "requestor/objectId", &ids)?,
            any_of(&ASSIGNMENT_REQUESTS, "assignment/target/objectId", &ids)?,
        ]));
    }
    let found = requests::list_requests(s, &scope, &q).await?;
    let packages =
        packages::list_packages(s, &scope, &steward_app::query::ListQuery::all(&ACCESS_PACKAGES)).await?.items;
    let people: Vec<UserId> =
        found.items.iter().flat_map(|r| std::iter::once(r.target_id).chain(r.requestor_id)).collect();
    let users = users_by_id(state, &people).await?;
    let name = |id: UserId| {
        users.get(&id).map_or_else(|| "(a removed user)".to_owned(), |u| u.display_name.as_str().to_owned())
    };
    let rows: Vec<Row> = found
        .items
        .iter()
        .map(|r| Row {
            id: r.id.to_string(),
            package: packages
                .iter()
                .find(|p| p.id == r.access_package_id)
                .map_or_else(|| r.access_package_id.to_string(), |p| p.display_name.as_str().to_owned()),
            kind: kind(r.request_type),
            state: state_text(r.state),
            target: name(r.target_id),
            requestor: r.requestor_id.map_or_else(|| "An administrator or Steward".to_owned(), name),
            created: When::of(r.created_date_time),
        })
        .collect();
    let total = found.count.unwrap_or(rows.len() as u64);
    Ok(ListPage {
        layout: v.layout("admin"),
        pager: Pager::new(f.page, rows.len(), total, |n| f.link(n)),
        rows,
        total,
        states: STATES
            .iter()
            .map(|st| Choice {
                value: st.as_str().to_owned(),
                label: state_text(*st).to_owned(),
                selected: f.state == Some(*st),
            })
            .collect(),
        packages: packages
            .iter()
            .map(|p| Choice {
                value: p.id.to_string(),
                label: p.display_name.as_str().to_owned(),
                selected: f.package == Some(p.id),
            })
            .collect(),
        person: f.person.clone(),
    })
}

// ---- One request -----------------------------------------------------------------------------

pub(crate) struct EventRow {
    when: When,
    what: String,
    who: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/request.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    package: String,
    package_id: String,
    catalog: String,
    catalog_id: String,
    kind: &'static str,
    request_type: String,
    state: &'static str,
    status: String,
    target: String,
    requestor: String,
    policy: String,
    submitted: When,
    completed: Option<When>,
    justification: String,
    answers: Vec<String>,
    sections: Vec<Step>,
    failures: Vec<String>,
    reason: Option<String>,
    events: Vec<EventRow>,
    can_reprocess: bool,
    can_cancel: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DetailParams {
    notice: Option<String>,
}

/// The request, if the viewer manages the assignments of its catalog; as not found otherwise,
/// so the console shows nothing of requests elsewhere.
async fn managed_request(state: &AppState, v: &Viewer, id: RequestId) -> Result<AssignmentRequest, AppError> {
    let scope = v.principal.catalogs_for(Task::ManageAssignments)?;
    let r = requests::get_request(&state.services, &v.principal, id).await?;
    if !scope.includes(r.catalog_id) {
        return Err(AppError::not_found("assignment request", id));
    }
    Ok(r)
}

/// Who started an audited change, in words.
pub(super) async fn initiator(state: &AppState, i: &Initiator) -> String {
    match i {
        Initiator::User(id) => match id.parse::<UserId>() {
            Ok(u) => crate::portal::user_name(state, u).await,
            Err(_) => id.clone(),
        },
        Initiator::App(label) => label.clone(),
        Initiator::System => "Steward".to_owned(),
    }
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: RequestId,
    notice: Option<String>,
    error: Option<String>,
) -> Result<DetailPage, AppError> {
    let s = &state.services;
    let r = managed_request(state, v, id).await?;
    let user = |id: UserId| crate::portal::user_name(state, id);
    let (mut sections, _) = approval_steps(state, &r).await;
    sections.extend(delivery_step(state, &r).await?);
    let mut events = Vec::new();
    for e in s.store.events_of(&r.id.to_string()).await? {
        events.push(EventRow {
            when: When::of(e.at),
            what: e.activity.display_name().to_owned(),
            who: initiator(state, &e.initiator).await,
            detail: e.detail.clone().unwrap_or_default(),
        });
    }
    let policy = match r.policy_id {
        Some(p) => s.store.get_policy(p).await?.map(|p| p.display_name.as_str().to_owned()).unwrap_or_default(),
        None => String::new(),
    };
    let catalog =
        s.store.get_catalog(r.catalog_id).await?.map(|c| c.display_name.as_str().to_owned()).unwrap_or_default();
    Ok(DetailPage {
        layout: v.layout("admin"),
        id: r.id.to_string(),
        package: crate::portal::package_name(state, r.access_package_id).await,
        package_id: r.access_package_id.to_string(),
        catalog,
        catalog_id: r.catalog_id.to_string(),
        kind: kind(r.request_type),
        request_type: r.request_type.as_str().to_owned(),
        state: state_text(r.state),
        status: r.status.as_str().to_owned(),
        target: {
            let name = user(r.target_id).await;
            match s.store.get_user(r.target_id).await? {
                Some(u) => format!("{name} ({})", u.user_principal_name),
                None => name,
            }
        },
        requestor: match r.requestor_id {
            Some(u) => user(u).await,
            None => "An administrator or Steward".to_owned(),
        },
        policy,
        submitted: When::of(r.created_date_time),
        completed: r.completed_date_time.map(When::of),
        justification: r.detail.justification.clone().unwrap_or_default(),
        answers: crate::portal::answers_of(state, &r).await,
        sections,
        failures: r.detail.failures.clone(),
        reason: r.detail.reason.clone(),
        events,
        can_reprocess: matches!(r.state, RequestState::DeliveryFailed | RequestState::PartiallyDelivered),
        can_cancel: r.can_cancel(),
        notice,
        error,
    })
}

async fn show(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: RequestId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let params = Query::<DetailParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let notice = match params.notice.as_deref() {
        Some("assigned") => Some("Assigned: an adminAdd request was submitted.".to_owned()),
        Some("reprocessed") => Some("The failed deliveries are being retried.".to_owned()),
        Some("cancelled") => Some("The request was cancelled.".to_owned()),
        _ => None,
    };
    match detail_page(&state, &v, id, notice, None).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

/// What the detail page's actions do.
#[derive(Clone, Copy)]
enum Action {
    Reprocess,
    Cancel,
}

async fn act(state: AppState, id: String, req: Request, action: Action) -> Response {
    let id: RequestId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let back = format!("/admin/requests/{id}");
    let (_, _, v) = match form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // As the page: a request outside the viewer's catalogs is not found.
    if let Err(e) = managed_request(&state, &v, id).await {
        return app_error_page(e, Some(v.layout("admin")));
    }
    let done = match action {
        Action::Reprocess => requests::reprocess(&state.services, &v.principal, id).await.map(|()| "reprocessed"),
        Action::Cancel => requests::cancel(&state.services, &v.principal, id).await.map(|()| "cancelled"),
    };
    match done {
        Ok(notice) => see_other(&format!("/admin/requests/{id}?notice={notice}")),
        Err(e @ (AppError::NotFound { .. } | AppError::Forbidden(_))) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => match detail_page(&state, &v, id, None, Some(message_of(&e))).await {
            Ok(p) => render(form_status(&e), &p),
            Err(e) => app_error_page(e, Some(v.layout("admin"))),
        },
    }
}

async fn reprocess(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    act(state, id, req, Action::Reprocess).await
}

async fn cancel(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    act(state, id, req, Action::Cancel).await
}
