//! The console's assignments: the assignments of the catalogs whose assignments the viewer
//! manages (filtered by package, catalog, state and target name, 25 a page, or all of them as
//! CSV), Remove (an `adminRemove` request) and Assign directly (`adminAdd`), both through
//! `requests::submit` as the Graph API's `assignmentRequests` does. It also holds the small
//! helpers the other operations pages share (paging links, people and groups found by name,
//! the dates of date inputs); it never writes to the store itself.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde::Deserialize;
use steward_app::AppError;
use steward_app::auth::CatalogScope;
use steward_app::directory;
use steward_app::lifecycle::requests::{self, RequestInput};
use steward_app::query::{
    ACCESS_PACKAGES, ASSIGNMENTS, CATALOGS, Cond, GROUPS, ListQuery, MAX_TOP, POLICIES, Schema, USERS, Value,
};
use steward_app::{catalogs, packages, policies};
use steward_domain::assignment::Assignment;
use steward_domain::directory::{Group, User};
use steward_domain::enums::{AssignmentState, ExpirationPatternType, RequestType};
use steward_domain::ids::{AccessPackageId, AssignmentId, CatalogId, GroupId, PolicyId, UserId};
use steward_domain::policy::ExpirationPattern;
use steward_domain::role::Task;
use steward_domain::schedule::Schedule;
use steward_odata::{OrderBy, QueryOptions, SearchTerm};

use crate::AppState;
use crate::portal::{
    Layout, Viewer, When, app_error_page, date_input, form_status, form_viewer, page_viewer, render, see_other,
};

/// Rows a page, on every list of the console's operations pages.
pub(super) const PAGE: u32 = 25;
/// The most rows one CSV export holds.
const CSV_MAX: usize = 50_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/assignments", get(list))
        .route("/admin/assignments.csv", get(export))
        .route("/admin/assignments/assign", post(assign))
        .route("/admin/assignments/{id}/remove", post(remove))
}

// ---- Helpers shared by the operations pages -------------------------------------------------

/// What a query string's values encode: all but RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Text percent-encoded for a query string.
pub(super) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// A link from a path and its query pairs (empty values left out).
pub(super) fn link(path: &str, pairs: &[(&str, String)]) -> String {
    let q: Vec<String> = pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", enc(v))).collect();
    if q.is_empty() { path.to_owned() } else { format!("{path}?{}", q.join("&")) }
}

/// The links to the previous and next page of a list.
pub(super) struct Pager {
    pub page: u32,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// Page `page` showing `shown` rows of `total`; `to(n)` links page `n`.
    pub fn new(page: u32, shown: usize, total: u64, to: impl Fn(u32) -> String) -> Self {
        let seen = u64::from(page.saturating_sub(1)) * u64::from(PAGE) + shown as u64;
        Self {
            page,
            previous: (page > 1).then(|| to(page - 1)),
            next: (seen < total).then(|| to(page.saturating_add(1))),
        }
    }
}

/// A page number from a query string: 1 when absent or not a number.
pub(super) fn page_number(s: Option<&str>) -> u32 {
    s.and_then(|p| p.trim().parse::<u32>().ok()).unwrap_or(1).clamp(1, 10_000)
}

/// An option of a `<select>`.
pub(super) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Text a person typed into a filter: trimmed, at most 200 characters.
pub(super) fn typed(s: Option<&str>) -> String {
    s.unwrap_or("").trim().chars().take(200).collect()
}

/// The message of an app error as a form shows it: the app's text, except for failures that
/// are not the viewer's to fix (logged where they happened, never shown).
pub(super) fn message_of(e: &AppError) -> String {
    match e {
        AppError::Store(_) => "Something went wrong; try again in a moment.".to_owned(),
        e => e.to_string(),
    }
}

/// `path in (ids)`: rows whose Guid property `path` is one of `ids` (none: no row).
pub(super) fn any_of(schema: &'static Schema, path: &str, ids: &[String]) -> Result<Cond, AppError> {
    let field = schema.field(path).ok_or_else(|| AppError::Invalid(format!("'{path}' cannot be filtered on.")))?;
    if ids.is_empty() {
        return Ok(Cond::Const(false));
    }
    Ok(Cond::In { field, values: ids.iter().map(|i| Value::Text(i.clone())).collect(), lower: false })
}

/// A page of `schema` newest first, with `filter` (OData, built here from checked values).
pub(super) fn newest_page(
    schema: &'static Schema,
    filter: &[String],
    page: u32,
    top: u32,
) -> Result<ListQuery, AppError> {
    let filter = if filter.is_empty() { None } else { Some(steward_odata::parse_filter(&filter.join(" and "))?) };
    let options = QueryOptions {
        filter,
        orderby: vec![OrderBy { path: vec!["createdDateTime".into()], descending: true }],
        top: Some(top),
        skip: Some(page.saturating_sub(1).saturating_mul(top)),
        count: true,
        ..QueryOptions::default()
    };
    ListQuery::from_options(schema, &options)
}

/// The directory users whose name, user principal name or email contains `term` (at most
/// `top`), read as the viewer reads the directory.
pub(super) async fn people_matching(state: &AppState, v: &Viewer, term: &str, top: u32) -> Result<Vec<User>, AppError> {
    let cap = v.principal.directory_reader()?;
    let options = QueryOptions {
        search: Some(SearchTerm { property: None, value: term.to_owned() }),
        top: Some(top),
        ..QueryOptions::default()
    };
    let q = ListQuery::from_options(&USERS, &options)?;
    Ok(directory::list_users(&state.services, cap, &q).await?.items)
}

/// The one directory user `text` names (an id, a user principal name, or a name or email only
/// one user matches), or why there is not exactly one.
pub(super) async fn one_person(state: &AppState, v: &Viewer, text: &str) -> Result<Result<User, String>, AppError> {
    let text = text.trim();
    let cap = v.principal.directory_reader()?;
    if let Ok(id) = text.parse::<UserId>() {
        return Ok(match directory::get_user(&state.services, cap, id).await {
            Ok(u) => Ok(u),
            Err(AppError::NotFound { .. }) => Err(format!("No user has the id {id}.")),
            Err(e) => return Err(e),
        });
    }
    if text.contains('@')
        && let Some(u) = state.services.store.user_by_upn(text).await?
    {
        return Ok(Ok(u));
    }
    let found = people_matching(state, v, text, 6).await?;
    let exact: Vec<&User> = found.iter().filter(|u| u.display_name.as_str().eq_ignore_ascii_case(text)).collect();
    Ok(match (found.as_slice(), exact.as_slice()) {
        ([], _) => Err(format!("Nobody in the directory matches '{text}'.")),
        ([one], _) => Ok(one.clone()),
        (_, [one]) => Ok((*one).clone()),
        (many, _) => {
            let names: Vec<String> = many
                .iter()
                .take(5)
                .map(|u| format!("{} ({})", u.display_name.as_str(), u.user_principal_name))
                .collect();
            let more = if many.len() > 5 { ", …" } else { "" };
            Err(format!(
                "Several people match '{text}': {}{more}. Type the user principal name of the one you mean.",
                names.join(", ")
            ))
        }
    })
}

/// The one group `text` names (an id, or a name only one group matches), or why not.
pub(super) async fn one_group(state: &AppState, v: &Viewer, text: &str) -> Result<Result<Group, String>, AppError> {
    let text = text.trim();
    let cap = v.principal.directory_reader()?;
    if let Ok(id) = text.parse::<GroupId>() {
        return Ok(match directory::get_group(&state.services, cap, id).await {
            Ok(g) => Ok(g),
            Err(AppError::NotFound { .. }) => Err(format!("No group has the id {id}.")),
            Err(e) => return Err(e),
        });
    }
    let options = QueryOptions {
        search: Some(SearchTerm { property: None, value: text.to_owned() }),
        top: Some(6),
        ..QueryOptions::default()
    };
    let found = directory::list_groups(&state.services, cap, &ListQuery::from_options(&GROUPS, &options)?).await?.items;
    let exact: Vec<&Group> = found.iter().filter(|g| g.display_name.as_str().eq_ignore_ascii_case(text)).collect();
    Ok(match (found.as_slice(), exact.as_slice()) {
        ([], _) => Err(format!("No group matches '{text}'.")),
        ([one], _) => Ok(one.clone()),
        (_, [one]) => Ok((*one).clone()),
        (many, _) => {
            let names: Vec<&str> = many.iter().take(5).map(|g| g.display_name.as_str()).collect();
            Err(format!("Several groups match '{text}': {}. Type the group's full name or its id.", names.join(", ")))
        }
    })
}

/// An assignment's state in words.
pub(super) fn assignment_state(s: AssignmentState) -> &'static str {
    match s {
        AssignmentState::Delivering => "Being delivered",
        AssignmentState::PartiallyDelivered => "Partly delivered",
        AssignmentState::Delivered => "Delivered",
        AssignmentState::Expired => "Expired",
        AssignmentState::DeliveryFailed => "Delivery failed",
        AssignmentState::UnknownFutureValue => "Other",
    }
}

// ---- The list and its filters ---------------------------------------------------------------

/// The states the list filters on: `active` is every state but expired.
const STATES: &[(&str, &str)] = &[
    ("active", "Active (not expired)"),
    ("delivered", "Delivered"),
    ("delivering", "Being delivered"),
    ("partiallyDelivered", "Partly delivered"),
    ("deliveryFailed", "Delivery failed"),
    ("expired", "Expired"),
];

#[derive(Debug, Default, Deserialize)]
struct Params {
    package: Option<String>,
    catalog: Option<String>,
    state: Option<String>,
    target: Option<String>,
    page: Option<String>,
    notice: Option<String>,
}

/// The list's filters, parsed: what cannot be parsed is no filter.
#[derive(Debug, Clone, Default)]
struct Filters {
    package: Option<AccessPackageId>,
    catalog: Option<CatalogId>,
    state: Option<&'static str>,
    target: String,
    page: u32,
}

impl Filters {
    fn parse(
        package: Option<&str>,
        catalog: Option<&str>,
        state: Option<&str>,
        target: Option<&str>,
        page: Option<&str>,
    ) -> Self {
        Self {
            package: package.and_then(|p| p.trim().parse().ok()),
            catalog: catalog.and_then(|c| c.trim().parse().ok()),
            state: state.and_then(|s| STATES.iter().find(|(v, _)| *v == s.trim()).map(|(v, _)| *v)),
            target: typed(target),
            page: page_number(page),
        }
    }

    fn from_params(p: &Params) -> Self {
        Self::parse(
            p.package.as_deref(),
            p.catalog.as_deref(),
            p.state.as_deref(),
            p.target.as_deref(),
            p.page.as_deref(),
        )
    }

    /// From the hidden fields a form carries to come back to the same list.
    fn from_fields(fields: &[(String, String)]) -> Self {
        use crate::portal::field;
        Self::parse(
            field(fields, "package"),
            field(fields, "catalog"),
            field(fields, "state"),
            field(fields, "target"),
            field(fields, "page"),
        )
    }

    fn pairs(&self, page: u32) -> Vec<(&'static str, String)> {
        vec![
            ("package", self.package.map(|p| p.to_string()).unwrap_or_default()),
            ("catalog", self.catalog.map(|c| c.to_string()).unwrap_or_default()),
            ("state", self.state.unwrap_or_default().to_owned()),
            ("target", self.target.clone()),
            ("page", if page > 1 { page.to_string() } else { String::new() }),
        ]
    }

    fn link(&self, path: &str, page: u32) -> String {
        link(path, &self.pairs(page))
    }

    /// The filters as OData terms.
    fn terms(&self) -> Vec<String> {
        let mut terms = Vec::new();
        if let Some(p) = self.package {
            terms.push(format!("accessPackage/id eq '{p}'"));
        }
        if let Some(c) = self.catalog {
            terms.push(format!("accessPackage/catalog/id eq '{c}'"));
        }
        match self.state {
            Some("active") => terms.push("state ne 'expired'".to_owned()),
            Some(s) => terms.push(format!("state eq '{s}'")),
            None => {}
        }
        terms
    }
}

/// A page (`top` rows from page `page`) of the filtered assignments within `scope`.
async fn find(
    state: &AppState,
    v: &Viewer,
    scope: &CatalogScope,
    f: &Filters,
    page: u32,
    top: u32,
) -> Result<steward_app::ports::Page<Assignment>, AppError> {
    let mut q = newest_page(&ASSIGNMENTS, &f.terms(), page, top)?.within(scope, "accessPackage/catalog/id")?;
    if !f.target.is_empty() {
        let ids: Vec<String> =
            people_matching(state, v, &f.target, MAX_TOP).await?.iter().map(|u| u.id.to_string()).collect();
        q = q.and(any_of(&ASSIGNMENTS, "target/objectId", &ids)?);
    }
    Ok(state.services.store.list_assignments(&q).await?)
}

/// Names of the packages, catalogs and policies of `scope`, for the filters and the rows.
struct Names {
    packages: Vec<(AccessPackageId, CatalogId, String)>,
    catalogs: Vec<(CatalogId, String)>,
}

impl Names {
    async fn of(state: &AppState, scope: &CatalogScope) -> Result<Self, AppError> {
        let s = &state.services;
        let packages = packages::list_packages(s, scope, &ListQuery::all(&ACCESS_PACKAGES))
            .await?
            .items
            .into_iter()
            .map(|p| (p.id, p.catalog_id, p.display_name.as_str().to_owned()))
            .collect();
        let catalogs = catalogs::list_catalogs(s, scope, &ListQuery::all(&CATALOGS))
            .await?
            .items
            .into_iter()
            .map(|c| (c.id, c.display_name.as_str().to_owned()))
            .collect();
        Ok(Self { packages, catalogs })
    }

    fn package(&self, id: AccessPackageId) -> String {
        self.packages.iter().find(|(p, _, _)| *p == id).map_or_else(|| id.to_string(), |(_, _, n)| n.clone())
    }

    fn catalog(&self, id: CatalogId) -> String {
        self.catalogs.iter().find(|(c, _)| *c == id).map_or_else(|| id.to_string(), |(_, n)| n.clone())
    }
}

/// The users of `ids`, by id.
pub(super) async fn users_by_id(state: &AppState, ids: &[UserId]) -> Result<HashMap<UserId, User>, AppError> {
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    Ok(state.services.store.users_by_id(&unique).await?.into_iter().map(|u| (u.id, u)).collect())
}

pub(crate) struct Row {
    id: String,
    target: String,
    target_upn: String,
    package: String,
    package_id: String,
    catalog: String,
    catalog_id: String,
    state: &'static str,
    status: String,
    start: When,
    end: Option<When>,
    ended: Option<When>,
    active: bool,
    error: Option<String>,
}

/// A policy to assign under, grouped by its package in the form's select.
pub(crate) struct PolicyGroup {
    package: String,
    policies: Vec<Choice>,
}

/// What the person typed into the Assign directly form, kept when it is shown again.
#[derive(Default)]
pub(crate) struct AssignForm {
    policy: String,
    user: String,
    start: String,
    end: String,
    justification: String,
}

/// Errors of the Assign directly form, next to the fields they concern.
#[derive(Default)]
pub(crate) struct AssignErrors {
    general: Option<String>,
    policy: Option<String>,
    user: Option<String>,
    period: Option<String>,
    justification: Option<String>,
}

impl AssignErrors {
    fn any(&self) -> bool {
        self.general.is_some()
            || self.policy.is_some()
            || self.user.is_some()
            || self.period.is_some()
            || self.justification.is_some()
    }

    /// Places an error of the app next to the field its text is about.
    fn place(&mut self, e: &AppError) {
        let message = message_of(e);
        let lower = message.to_lowercase();
        if lower.contains("justification") {
            self.justification = Some(message);
        } else if lower.contains("schedule") || lower.contains(" end") || lower.contains("start") {
            self.period = Some(message);
        } else if lower.contains("policy") || lower.contains("policies") {
            self.policy = Some(message);
        } else if lower.contains("target") || lower.contains("user") {
            self.user = Some(message);
        } else {
            self.general = Some(message);
        }
    }
}

#[derive(Template)]
#[template(path = "console/assignments.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    total: u64,
    pager: Pager,
    packages: Vec<Choice>,
    catalogs: Vec<Choice>,
    states: Vec<Choice>,
    target: String,
    /// The filters, as hidden fields of the forms, to come back to the same list.
    hidden: Vec<(&'static str, String)>,
    csv: String,
    notice: Option<String>,
    error: Option<String>,
    policies: Vec<PolicyGroup>,
    form: AssignForm,
    errors: AssignErrors,
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    f: &Filters,
    notice: Option<String>,
    row_error: Option<(AssignmentId, String)>,
    form: AssignForm,
    errors: AssignErrors,
) -> Result<ListPage, AppError> {
    let s = &state.services;
    let scope = v.principal.catalogs_for(Task::ManageAssignments)?;
    let names = Names::of(state, &scope).await?;
    let found = find(state, v, &scope, f, f.page, PAGE).await?;
    let users = users_by_id(state, &found.items.iter().map(|a| a.target_id).collect::<Vec<_>>()).await?;
    let mut error = None;
    if let Some((id, m)) = &row_error
        && !found.items.iter().any(|a| a.id == *id)
    {
        error = Some(m.clone());
    }
    let rows: Vec<Row> = found
        .items
        .iter()
        .map(|a| {
            let user = users.get(&a.target_id);
            Row {
                id: a.id.to_string(),
                target: user.map_or_else(|| "(a removed user)".to_owned(), |u| u.display_name.as_str().to_owned()),
                target_upn: user.map(|u| u.user_principal_name.clone()).unwrap_or_default(),
                package: names.package(a.access_package_id),
                package_id: a.access_package_id.to_string(),
                catalog: names.catalog(a.catalog_id),
                catalog_id: a.catalog_id.to_string(),
                state: assignment_state(a.state),
                status: a.status.clone(),
                start: When::of(a.window.start),
                end: a.window.end.map(When::of),
                ended: a.expired_date_time.map(When::of),
                active: a.is_active(),
                error: row_error.as_ref().filter(|(id, _)| *id == a.id).map(|(_, m)| m.clone()),
            }
        })
        .collect();
    let total = found.count.unwrap_or(rows.len() as u64);
    let pager = Pager::new(f.page, rows.len(), total, |n| f.link("/admin/assignments", n));
    // Policies to assign under, by package.
    let mut groups: Vec<PolicyGroup> = Vec::new();
    let all = policies::list_policies(s, &scope, &ListQuery::all(&POLICIES)).await?.items;
    for (pid, _, pname) in &names.packages {
        let mine: Vec<Choice> = all
            .iter()
            .filter(|p| p.access_package_id == *pid)
            .map(|p| Choice {
                value: p.id.to_string(),
                label: format!("{pname}: {}", p.display_name.as_str()),
                selected: form.policy == p.id.to_string(),
            })
            .collect();
        if !mine.is_empty() {
            groups.push(PolicyGroup { package: pname.clone(), policies: mine });
        }
    }
    Ok(ListPage {
        layout: v.layout("admin"),
        rows,
        total,
        pager,
        packages: names
            .packages
            .iter()
            .map(|(id, _, n)| Choice { value: id.to_string(), label: n.clone(), selected: f.package == Some(*id) })
            .collect(),
        catalogs: names
            .catalogs
            .iter()
            .map(|(id, n)| Choice { value: id.to_string(), label: n.clone(), selected: f.catalog == Some(*id) })
            .collect(),
        states: STATES
            .iter()
            .map(|(val, label)| Choice {
                value: (*val).to_owned(),
                label: (*label).to_owned(),
                selected: f.state == Some(*val),
            })
            .collect(),
        target: f.target.clone(),
        hidden: f.pairs(f.page).into_iter().filter(|(_, val)| !val.is_empty()).collect(),
        csv: f.link("/admin/assignments.csv", 1),
        notice,
        error,
        policies: groups,
        form,
        errors,
    })
}

async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = Query::<Params>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let notice = match params.notice.as_deref() {
        Some("removed") => Some("The assignment is being removed: an adminRemove request was submitted.".to_owned()),
        _ => None,
    };
    let f = Filters::from_params(&params);
    match list_page(&state, &v, &f, notice, None, AssignForm::default(), AssignErrors::default()).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

// ---- CSV -------------------------------------------------------------------------------------

const CSV_HEADER: &[&str] = &[
    "Target",
    "Target user principal name",
    "Access package",
    "Catalog",
    "State",
    "Status",
    "Start",
    "End",
    "Ended",
    "Assignment id",
    "Target id",
    "Access package id",
];

async fn export(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = Query::<Params>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    match csv(&state, &v, &Filters::from_params(&params)).await {
        Ok(body) => {
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
            h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"assignments.csv\""));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn csv(state: &AppState, v: &Viewer, f: &Filters) -> Result<String, AppError> {
    let scope = v.principal.catalogs_for(Task::ManageAssignments)?;
    let names = Names::of(state, &scope).await?;
    let mut out = steward_domain::csv::line(CSV_HEADER);
    let mut written = 0usize;
    let mut page = 1u32;
    let time = |t: Option<Timestamp>| t.map(steward_domain::time::format_datetime).unwrap_or_default();
    loop {
        let found = find(state, v, &scope, f, page, MAX_TOP).await?;
        let users = users_by_id(state, &found.items.iter().map(|a| a.target_id).collect::<Vec<_>>()).await?;
        for a in &found.items {
            let user = users.get(&a.target_id);
            out.push_str(&steward_domain::csv::line(&[
                user.map_or("", |u| u.display_name.as_str()),
                user.map_or("", |u| u.user_principal_name.as_str()),
                &names.package(a.access_package_id),
                &names.catalog(a.catalog_id),
                a.state.as_str(),
                &a.status,
                &time(Some(a.window.start)),
                &time(a.window.end),
                &time(a.expired_date_time),
                &a.id.to_string(),
                &a.target_id.to_string(),
                &a.access_package_id.to_string(),
            ]));
        }
        written += found.items.len();
        if found.items.len() < MAX_TOP as usize || written >= CSV_MAX {
            break;
        }
        page += 1;
    }
    Ok(out)
}

// ---- Remove and Assign directly ---------------------------------------------------------------

async fn remove(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let id: AssignmentId = match crate::portal::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let (_, fields, v) = match form_viewer(&state, req, "/admin/assignments").await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let f = Filters::from_fields(&fields);
    let input = RequestInput {
        request_type: Some(RequestType::AdminRemove),
        assignment_id: Some(id),
        ..RequestInput::default()
    };
    match requests::submit(&state.services, &v.principal, input).await {
        Ok(_) => {
            let mut pairs = f.pairs(f.page);
            pairs.push(("notice", "removed".to_owned()));
            see_other(&link("/admin/assignments", &pairs))
        }
        Err(e @ (AppError::NotFound { .. } | AppError::Forbidden(_))) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => {
            let status = form_status(&e);
            let row = Some((id, message_of(&e)));
            match list_page(&state, &v, &f, None, row, AssignForm::default(), AssignErrors::default()).await {
                Ok(p) => render(status, &p),
                Err(e) => app_error_page(e, Some(v.layout("admin"))),
            }
        }
    }
}

fn read_form(fields: &[(String, String)]) -> AssignForm {
    use crate::portal::field;
    let get = |name: &str| field(fields, name).unwrap_or("").to_owned();
    AssignForm {
        policy: get("policy"),
        user: get("user"),
        start: get("start"),
        end: get("end"),
        justification: get("justification"),
    }
}

async fn assign(State(state): State<AppState>, req: Request) -> Response {
    let (_, fields, v) = match form_viewer(&state, req, "/admin/assignments").await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // Refused before anything is looked at, as the API refuses a caller without the role.
    if let Err(e) = v.principal.catalogs_for(Task::ManageAssignments) {
        return app_error_page(e, Some(v.layout("admin")));
    }
    let f = Filters::from_fields(&fields);
    let form = read_form(&fields);
    let (status, errors) = match submit_assignment(&state, &v, &form).await {
        Ok(Ok(to)) => return see_other(&to),
        Ok(Err(x)) => x,
        Err(e) => return app_error_page(e, Some(v.layout("admin"))),
    };
    match list_page(&state, &v, &f, None, None, form, errors).await {
        Ok(p) => render(status, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

/// Submits the Assign directly form: where to go next, or the status and errors to show the
/// form again with (nothing written).
async fn submit_assignment(
    state: &AppState,
    v: &Viewer,
    form: &AssignForm,
) -> Result<Result<String, (StatusCode, AssignErrors)>, AppError> {
    let mut errors = AssignErrors::default();
    let policy = match form.policy.trim() {
        "" => {
            errors.policy = Some("Choose the access package and policy to assign.".into());
            None
        }
        p => match p.parse::<PolicyId>() {
            Ok(p) => Some(p),
            Err(_) => {
                errors.policy = Some("Choose the access package and policy to assign from the list.".into());
                None
            }
        },
    };
    let target = if form.user.trim().is_empty() {
        errors.user = Some("Type the name, email or user principal name of the person to assign.".into());
        None
    } else {
        match one_person(state, v, &form.user).await? {
            Ok(u) => Some(u),
            Err(m) => {
                errors.user = Some(m);
                None
            }
        }
    };
    let (start, end) = match (date_input(&form.start, false), date_input(&form.end, true)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(m), _) | (_, Err(m)) => {
            errors.period = Some(m);
            (None, None)
        }
    };
    let (Some(policy), Some(target)) = (policy, target) else {
        return Ok(Err((StatusCode::UNPROCESSABLE_ENTITY, errors)));
    };
    if errors.any() {
        return Ok(Err((StatusCode::UNPROCESSABLE_ENTITY, errors)));
    }
    let schedule = (start.is_some() || end.is_some()).then(|| Schedule {
        start_date_time: start,
        expiration: end.map(|end| ExpirationPattern {
            kind: Some(ExpirationPatternType::AfterDateTime),
            duration: None,
            end_date_time: Some(end),
        }),
    });
    let input = RequestInput {
        request_type: Some(RequestType::AdminAdd),
        policy_id: Some(policy),
        target_id: Some(target.id),
        justification: Some(form.justification.clone()).filter(|j| !j.trim().is_empty()),
        schedule,
        ..RequestInput::default()
    };
    match requests::submit(&state.services, &v.principal, input).await {
        Ok(r) => Ok(Ok(format!("/admin/requests/{}?notice=assigned", r.id))),
        Err(e @ AppError::NotFound { kind: "assignment policy", .. }) => {
            errors.policy = Some(message_of(&e));
            Ok(Err((StatusCode::UNPROCESSABLE_ENTITY, errors)))
        }
        Err(e @ AppError::Store(_)) => Err(e),
        Err(e) => {
            let status = form_status(&e);
            errors.place(&e);
            Ok(Err((status, errors)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_leave_out_empty_values_and_encode_the_rest() {
        assert_eq!(link("/x", &[("a", String::new()), ("b", "c d&e".into())]), "/x?b=c%20d%26e");
        assert_eq!(link("/x", &[("a", String::new())]), "/x");
    }
}
