//! The console's separation of duties, for package managers (the ManagePackages task, as the
//! Graph API's `incompatibleAccessPackages` and `incompatibleGroups` writes): every package of
//! the viewer's catalogs with what it is incompatible with, and one package's page to add and
//! remove incompatible packages and groups (`packages::add_incompatible_package` and the rest)
//! with the current violations: people holding an active assignment of the package and also one
//! of an incompatible package, or membership of an incompatible group. Violations are computed
//! from existing store reads; nothing here writes except through those use cases.

use std::collections::{BTreeSet, HashMap};

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use steward_app::AppError;
use steward_app::auth::{CatalogCap, CatalogScope};
use steward_app::packages;
use steward_app::query::{ACCESS_PACKAGES, ASSIGNMENTS, ListQuery, MAX_TOP, Relation};
use steward_domain::ids::{AccessPackageId, GroupId, UserId};
use steward_domain::package::AccessPackage;
use steward_domain::role::Task;
use steward_odata::{QueryOptions, SearchTerm};

use super::assignments::{
    Choice, PAGE, Pager, link, message_of, newest_page, one_group, page_number, typed, users_by_id,
};
use crate::AppState;
use crate::portal::{
    Layout, Viewer, app_error_page, field, form_status, form_viewer, page_viewer, path_id, render, see_other,
};

const BASE: &str = "/admin/separation-of-duties";
/// The most assignments of one package the violations are looked for among.
const HOLDERS_MAX: u32 = 10 * MAX_TOP;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list))
        .route("/admin/separation-of-duties/{id}", get(show))
        .route("/admin/separation-of-duties/{id}/incompatible-packages", post(add_package))
        .route("/admin/separation-of-duties/{id}/incompatible-packages/{other}/remove", post(remove_package))
        .route("/admin/separation-of-duties/{id}/incompatible-groups", post(add_group))
        .route("/admin/separation-of-duties/{id}/incompatible-groups/{group}/remove", post(remove_group))
}

/// The name of a package the viewer may read; of one they may not, only that it exists.
async fn package_label(state: &AppState, readable: &CatalogScope, id: AccessPackageId) -> String {
    match state.services.store.get_package(id).await {
        Ok(Some(p)) if readable.includes(p.catalog_id) => p.display_name.as_str().to_owned(),
        Ok(Some(_)) => "(an access package in a catalog you cannot read)".to_owned(),
        _ => id.to_string(),
    }
}

async fn group_label(state: &AppState, id: GroupId) -> String {
    match state.services.store.get_group(id).await {
        Ok(Some(g)) => g.display_name.as_str().to_owned(),
        _ => id.to_string(),
    }
}

// ---- Every package ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    search: Option<String>,
    page: Option<String>,
}

pub(crate) struct Row {
    id: String,
    name: String,
    packages: Vec<String>,
    groups: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/sod.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    total: u64,
    pager: Pager,
    search: String,
}

async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = Query::<ListParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let search = typed(params.search.as_deref());
    let page = page_number(params.page.as_deref());
    match list_page(&state, &v, &search, page).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn list_page(state: &AppState, v: &Viewer, search: &str, page: u32) -> Result<ListPage, AppError> {
    let s = &state.services;
    let scope = v.principal.catalogs_for(Task::ManagePackages)?;
    let readable = v.principal.catalogs_for(Task::ReadCatalog)?;
    let options = QueryOptions {
        search: (!search.is_empty()).then(|| SearchTerm { property: None, value: search.to_owned() }),
        top: Some(PAGE),
        skip: Some(page.saturating_sub(1).saturating_mul(PAGE)),
        count: true,
        ..QueryOptions::default()
    };
    let found = packages::list_packages(s, &scope, &ListQuery::from_options(&ACCESS_PACKAGES, &options)?).await?;
    let mut rows = Vec::new();
    for p in &found.items {
        let (others, groups) = s.store.incompatibilities(p.id).await?;
        let mut row =
            Row { id: p.id.to_string(), name: p.display_name.as_str().to_owned(), packages: vec![], groups: vec![] };
        for o in others {
            row.packages.push(package_label(state, &readable, o).await);
        }
        for g in groups {
            row.groups.push(group_label(state, g).await);
        }
        rows.push(row);
    }
    let total = found.count.unwrap_or(rows.len() as u64);
    Ok(ListPage {
        layout: v.layout("admin"),
        pager: Pager::new(page, rows.len(), total, |n| {
            link(BASE, &[("search", search.to_owned()), ("page", if n > 1 { n.to_string() } else { String::new() })])
        }),
        rows,
        total,
        search: search.to_owned(),
    })
}

// ---- One package -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct DetailParams {
    page: Option<String>,
    notice: Option<String>,
}

pub(crate) struct Linked {
    id: String,
    name: String,
    /// Whether the viewer may open it in the console.
    readable: bool,
}

pub(crate) struct Violation {
    person: String,
    upn: String,
    conflict: String,
}

/// Errors of the page's forms, next to the fields they concern.
#[derive(Default)]
pub(crate) struct Errors {
    package: Option<String>,
    group: Option<String>,
}

#[derive(Template)]
#[template(path = "console/sod_package.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    name: String,
    declared: Vec<Linked>,
    declared_by: Vec<Linked>,
    groups: Vec<Linked>,
    choices: Vec<Choice>,
    group_typed: String,
    violations: Vec<Violation>,
    violations_total: u64,
    truncated: bool,
    pager: Pager,
    notice: Option<String>,
    errors: Errors,
}

/// The package, if the viewer manages the packages of some catalog and may read its catalog.
async fn managed_package(state: &AppState, v: &Viewer, id: AccessPackageId) -> Result<AccessPackage, AppError> {
    let scope = v.principal.catalogs_for(Task::ManagePackages)?;
    packages::get_package(&state.services, &scope, id).await
}

/// The capability to change the package's incompatibilities, as the API checks it.
async fn manage(state: &AppState, v: &Viewer, id: AccessPackageId) -> Result<CatalogCap, AppError> {
    v.principal.may_somewhere(Task::ManagePackages)?;
    let p = packages::require_package(&state.services, id).await?;
    v.principal.in_catalog(p.catalog_id, Task::ManagePackages)
}

/// The targets of the active assignments of `package` (up to `HOLDERS_MAX`), and whether
/// there were more.
async fn holders(state: &AppState, package: AccessPackageId) -> Result<(Vec<UserId>, bool), AppError> {
    let mut out = Vec::new();
    let mut page = 1;
    let terms = vec![format!("accessPackage/id eq '{package}'"), "state ne 'expired'".to_owned()];
    loop {
        let found = state.services.store.list_assignments(&newest_page(&ASSIGNMENTS, &terms, page, MAX_TOP)?).await?;
        let n = found.items.len();
        out.extend(found.items.into_iter().map(|a| a.target_id));
        if n < MAX_TOP as usize {
            return Ok((out, false));
        }
        if out.len() >= HOLDERS_MAX as usize {
            return Ok((out, true));
        }
        page += 1;
    }
}

/// The people who break the package's separation of duties, with what they also hold, by name.
async fn violations(
    state: &AppState,
    readable: &CatalogScope,
    package: AccessPackageId,
) -> Result<(Vec<(UserId, String)>, bool), AppError> {
    let s = &state.services;
    let (others, groups) = s.store.incompatibilities(package).await?;
    let mut found: Vec<(UserId, String)> = Vec::new();
    let mut truncated = false;
    for other in others {
        // Active assignments of `package` whose target actively holds `other` too, as
        // `assignments/additionalAccess` finds them.
        let q = ListQuery::all(&ASSIGNMENTS)
            .scoped("accessPackage/id", package)?
            .related(Relation::TargetsHoldingPackage, other);
        let page = s.store.list_assignments(&q).await?;
        truncated |= page.items.len() >= MAX_TOP as usize;
        let label = package_label(state, readable, other).await;
        let mut seen = BTreeSet::new();
        for a in page.items {
            if seen.insert(a.target_id) {
                found.push((a.target_id, format!("also holds access package {label}")));
            }
        }
    }
    if !groups.is_empty() {
        let (targets, cut) = holders(state, package).await?;
        truncated |= cut;
        let targets: BTreeSet<UserId> = targets.into_iter().collect();
        for g in groups {
            let label = group_label(state, g).await;
            for member in s.store.member_ids(g).await? {
                if targets.contains(&member) {
                    found.push((member, format!("is a member of group {label}")));
                }
            }
        }
    }
    Ok((found, truncated))
}

/// What the forms held, shown again with their errors.
#[derive(Default)]
struct Typed {
    package: String,
    group: String,
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: AccessPackageId,
    page: u32,
    notice: Option<String>,
    errors: Errors,
    typed: Typed,
) -> Result<DetailPage, AppError> {
    let s = &state.services;
    let p = managed_package(state, v, id).await?;
    let readable = v.principal.catalogs_for(Task::ReadCatalog)?;
    // Both directions, whichever catalog the other package is in: an incompatibility counts
    // (and can be removed) even where the viewer cannot read the other package.
    let linked = |o: &AccessPackage| {
        let readable = readable.includes(o.catalog_id);
        Linked {
            id: o.id.to_string(),
            name: if readable {
                o.display_name.as_str().to_owned()
            } else {
                "(an access package in a catalog you cannot read)".to_owned()
            },
            readable,
        }
    };
    let related = |relation| ListQuery::all(&ACCESS_PACKAGES).related(relation, id);
    let declared: Vec<Linked> =
        s.store.list_packages(&related(Relation::IncompatiblePackages)).await?.items.iter().map(linked).collect();
    let declared_by: Vec<Linked> =
        s.store.list_packages(&related(Relation::PackagesIncompatibleWith)).await?.items.iter().map(linked).collect();
    let group_ids = s.store.incompatible_groups(id).await?;
    let mut groups = Vec::new();
    for g in group_ids {
        groups.push(Linked { id: g.to_string(), name: group_label(state, g).await, readable: true });
    }
    let choices = packages::list_packages(s, &readable, &ListQuery::all(&ACCESS_PACKAGES))
        .await?
        .items
        .into_iter()
        .filter(|o| o.id != id && !declared.iter().any(|d| d.id == o.id.to_string()))
        .map(|o| Choice {
            selected: typed.package == o.id.to_string(),
            value: o.id.to_string(),
            label: o.display_name.as_str().to_owned(),
        })
        .collect();
    let (all, truncated) = violations(state, &readable, id).await?;
    let total = all.len() as u64;
    let shown: Vec<(UserId, String)> = all
        .into_iter()
        .skip((page.saturating_sub(1) as usize).saturating_mul(PAGE as usize))
        .take(PAGE as usize)
        .collect();
    let users = users_by_id(state, &shown.iter().map(|(u, _)| *u).collect::<Vec<_>>()).await?;
    let names: HashMap<UserId, (String, String)> =
        users.into_iter().map(|(k, u)| (k, (u.display_name.as_str().to_owned(), u.user_principal_name))).collect();
    let violations: Vec<Violation> = shown
        .into_iter()
        .map(|(u, conflict)| {
            let (person, upn) =
                names.get(&u).cloned().unwrap_or_else(|| ("(a removed user)".to_owned(), String::new()));
            Violation { person, upn, conflict }
        })
        .collect();
    Ok(DetailPage {
        layout: v.layout("admin"),
        id: id.to_string(),
        name: p.display_name.as_str().to_owned(),
        declared,
        declared_by,
        groups,
        choices,
        group_typed: typed.group,
        pager: Pager::new(page, violations.len(), total, |n| {
            link(&format!("{BASE}/{id}"), &[("page", if n > 1 { n.to_string() } else { String::new() })])
        }),
        violations,
        violations_total: total,
        truncated,
        notice,
        errors,
    })
}

async fn show(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: AccessPackageId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let params = Query::<DetailParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let notice = match params.notice.as_deref() {
        Some("added") => Some("The incompatibility was added.".to_owned()),
        Some("removed") => Some("The incompatibility was removed.".to_owned()),
        _ => None,
    };
    let page = page_number(params.page.as_deref());
    match detail_page(&state, &v, id, page, notice, Errors::default(), Typed::default()).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

/// What a form of the page asked for.
enum Change {
    AddPackage(String),
    RemovePackage(String),
    AddGroup(String),
    RemoveGroup(String),
}

async fn change(
    state: AppState,
    id: String,
    req: Request,
    change: impl FnOnce(&[(String, String)]) -> Change,
) -> Response {
    let id: AccessPackageId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let back = format!("{BASE}/{id}");
    let (_, fields, v) = match form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let cap = match manage(&state, &v, id).await {
        Ok(cap) => cap,
        Err(e) => return app_error_page(e, Some(v.layout("admin"))),
    };
    let what = change(&fields);
    let typed = match &what {
        Change::AddPackage(p) => Typed { package: p.clone(), group: String::new() },
        Change::AddGroup(g) => Typed { package: String::new(), group: g.clone() },
        _ => Typed::default(),
    };
    let (status, errors) = match apply(&state, &v, cap, id, what).await {
        Ok(notice) => return see_other(&format!("{back}?notice={notice}")),
        Err(Err(e)) => return app_error_page(e, Some(v.layout("admin"))),
        Err(Ok(x)) => x,
    };
    match detail_page(&state, &v, id, 1, None, errors, typed).await {
        Ok(p) => render(status, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

/// Carries out a change: the notice to show, or the status and errors to show the page again
/// with (nothing written), or an error for an error page.
async fn apply(
    state: &AppState,
    v: &Viewer,
    cap: CatalogCap,
    id: AccessPackageId,
    what: Change,
) -> Result<&'static str, Result<(StatusCode, Errors), AppError>> {
    let s = &state.services;
    let mut errors = Errors::default();
    let invalid = |errors: Errors| Err(Ok((StatusCode::UNPROCESSABLE_ENTITY, errors)));
    let result = match what {
        Change::AddPackage(text) => {
            let text = text.trim();
            if text.is_empty() {
                errors.package = Some("Choose the access package that is incompatible with this one.".into());
                return invalid(errors);
            }
            let Ok(other) = text.parse::<AccessPackageId>() else {
                errors.package = Some("Choose the incompatible access package from the list.".into());
                return invalid(errors);
            };
            match packages::add_incompatible_package(s, cap, id, other).await {
                Ok(()) => return Ok("added"),
                Err(e) => {
                    let status = match &e {
                        AppError::NotFound { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                        e => form_status(e),
                    };
                    (status, e, true)
                }
            }
        }
        Change::AddGroup(text) => {
            let text = text.trim();
            if text.is_empty() {
                errors.group = Some("Type the name or id of the incompatible group.".into());
                return invalid(errors);
            }
            let group = match one_group(state, v, text).await {
                Ok(Ok(g)) => g,
                Ok(Err(m)) => {
                    errors.group = Some(m);
                    return invalid(errors);
                }
                Err(e) => return Err(Err(e)),
            };
            match packages::add_incompatible_group(s, cap, id, group.id).await {
                Ok(()) => return Ok("added"),
                Err(e) => {
                    let status = match &e {
                        AppError::NotFound { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                        e => form_status(e),
                    };
                    (status, e, false)
                }
            }
        }
        Change::RemovePackage(other) => {
            let Ok(other) = other.parse::<AccessPackageId>() else {
                return Err(Err(AppError::not_found("access package", other)));
            };
            match packages::remove_incompatible_package(s, cap, id, other).await {
                Ok(()) => return Ok("removed"),
                Err(e) => (form_status(&e), e, true),
            }
        }
        Change::RemoveGroup(group) => {
            let Ok(group) = group.parse::<GroupId>() else {
                return Err(Err(AppError::not_found("group", group)));
            };
            match packages::remove_incompatible_group(s, cap, id, group).await {
                Ok(()) => return Ok("removed"),
                Err(e) => (form_status(&e), e, false),
            }
        }
    };
    let (status, e, about_package) = result;
    if matches!(e, AppError::Store(_) | AppError::Forbidden(_)) {
        return Err(Err(e));
    }
    if about_package {
        errors.package = Some(message_of(&e));
    } else {
        errors.group = Some(message_of(&e));
    }
    Err(Ok((status, errors)))
}

async fn add_package(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    change(state, id, req, |f| Change::AddPackage(field(f, "package").unwrap_or("").to_owned())).await
}

async fn remove_package(
    State(state): State<AppState>,
    Path((id, other)): Path<(String, String)>,
    req: Request,
) -> Response {
    change(state, id, req, |_| Change::RemovePackage(other)).await
}

async fn add_group(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    change(state, id, req, |f| Change::AddGroup(field(f, "group").unwrap_or("").to_owned())).await
}

async fn remove_group(
    State(state): State<AppState>,
    Path((id, group)): Path<(String, String)>,
    req: Request,
) -> Response {
    change(state, id, req, |_| Change::RemoveGroup(group)).await
}
