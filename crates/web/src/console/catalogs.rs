//! The console's catalogs: the catalogs the viewer may read (searchable, 25 a page) with the
//! "New catalog" form for catalog creators, and one catalog's page: its details (edited by those
//! who may edit it), its resources (a directory group found by name and added, a resource
//! removed) and its access packages ("New access package"). Every action calls the use case the
//! Graph API route calls (`routes::em`), with the capability that route checks, taken from the
//! signed-in viewer's roles; nothing here decides who may do what.
//!
//! Also what the console's catalog, package and policy pages share: field errors (`Errors`),
//! pages of lists (`Pager`), the notices shown after a redirect.
//!
//! Form fields: new catalog and catalog details `name`, `description`, `state` (`published` |
//! `unpublished`), `external` (checkbox), `version` (the details' modification time, so a stale
//! form is refused); add a group `group` (its id, from the search `group_search`); new access
//! package `name`, `description`, `hidden` (checkbox).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use steward_app::AppError;
use steward_app::auth::CatalogCap;
use steward_app::catalogs::{self, CatalogPatch, NewCatalog, NewResourceRequest, ResourceRef};
use steward_app::directory;
use steward_app::packages::{self, NewPackage};
use steward_app::query::{ACCESS_PACKAGES, CATALOGS, GROUPS, ListQuery, RESOURCE_ROLES, RESOURCES, Schema};
use steward_domain::catalog::{Catalog, ORIGIN_AAD_GROUP};
use steward_domain::enums::{CatalogState, RequestType};
use steward_domain::ids::{CatalogId, ResourceId};
use steward_domain::role::Task;
use steward_domain::text::DisplayName;
use steward_odata::{QueryOptions, SearchTerm};

use super::packages::PackageForm;
use crate::AppState;
use crate::portal::{
    Layout, Viewer, When, app_error_page, field, form_status, form_viewer, page_viewer, path_id, render, see_other,
};

/// Rows a page of a list.
pub(super) const PAGE: u32 = 25;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/catalogs", get(list).post(create))
        .route("/admin/catalogs/{id}", get(show).post(update))
        .route("/admin/catalogs/{id}/resources", post(add_group))
        .route("/admin/catalogs/{id}/resources/{rid}/remove", post(remove_resource))
        .route("/admin/catalogs/{id}/packages", post(create_package))
}

// ------------------------------------------------------------------ shared by the console pages

/// A form's errors: each next to the field it concerns (by the field's `name`), or at the top.
#[derive(Default)]
pub(super) struct Errors {
    pub general: Option<String>,
    fields: Vec<(String, String)>,
}

impl Errors {
    /// The error of field `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, m)| m.as_str())
    }
    /// Records an error on field `name`; the first one a field gets is kept.
    pub fn set(&mut self, name: impl Into<String>, message: impl Into<String>) {
        let name = name.into();
        if self.get(&name).is_none() {
            self.fields.push((name, message.into()));
        }
    }
    /// Records an error shown at the top of the form; the first one is kept.
    pub fn top(&mut self, message: impl Into<String>) {
        if self.general.is_none() {
            self.general = Some(message.into());
        }
    }
    pub fn any(&self) -> bool {
        self.general.is_some() || !self.fields.is_empty()
    }
}

/// The text of an app error as a form shows it (never a store's detail).
pub(super) fn message(e: &AppError) -> String {
    match e {
        AppError::Store(_) | AppError::Upstream(_) => "Something went wrong; try again in a moment.".to_owned(),
        e => e.to_string(),
    }
}

/// Errors a form cannot show next to a field: the caller may not do this, or the object is gone.
pub(super) fn refusal(e: &AppError) -> bool {
    matches!(e, AppError::Forbidden(_) | AppError::NotFound { .. } | AppError::Unauthenticated(_))
}

/// The status of a re-rendered form after the app refused what it asked.
pub(super) fn refused_status(e: &AppError) -> StatusCode {
    match form_status(e) {
        StatusCode::NOT_FOUND => StatusCode::UNPROCESSABLE_ENTITY,
        s => s,
    }
}

/// Places an error of a name-and-description form (catalog, package) next to its field.
pub(super) fn place_named(e: &AppError, errors: &mut Errors) {
    let m = message(e);
    if m.contains("displayName") {
        errors.set("name", m);
    } else if m.contains("description") {
        errors.set("description", m);
    } else {
        errors.top(m);
    }
}

/// Whether checkbox `name` was ticked.
pub(super) fn ticked(fields: &[(String, String)], name: &str) -> bool {
    field(fields, name) == Some("on")
}

/// A text field as typed (empty when absent).
pub(super) fn text(fields: &[(String, String)], name: &str) -> String {
    field(fields, name).unwrap_or("").to_owned()
}

/// Optional text: `None` when blank.
pub(super) fn optional(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// What was typed in a search box, bounded.
pub(super) fn search_text(s: Option<&str>) -> String {
    s.unwrap_or("").trim().chars().take(200).collect()
}

/// The ETag of an object modified at `version` (Unix microseconds, as forms carry it).
pub(super) fn version_tag(version: &str) -> Option<String> {
    version.parse::<i64>().ok().map(|us| steward_domain::time::etag(steward_domain::time::from_micros(us)))
}

/// Page `page` (from 1) of `schema`'s rows matching `search`, with their count.
pub(super) fn page_query(schema: &'static Schema, search: &str, page: u32) -> Result<ListQuery, AppError> {
    let options = QueryOptions {
        search: (!search.is_empty()).then(|| SearchTerm { property: None, value: search.to_owned() }),
        top: Some(PAGE),
        skip: Some(page.saturating_sub(1).saturating_mul(PAGE)),
        count: true,
        ..QueryOptions::default()
    };
    ListQuery::from_options(schema, &options)
}

/// Up to `top` rows of `schema` matching `search`.
pub(super) fn search_query(schema: &'static Schema, search: &str, top: u32) -> Result<ListQuery, AppError> {
    let options = QueryOptions {
        search: Some(SearchTerm { property: None, value: search.to_owned() }),
        top: Some(top),
        ..QueryOptions::default()
    };
    ListQuery::from_options(schema, &options)
}

/// Where a list is, and links to the pages around it.
pub(super) struct Pager {
    pub page: u32,
    pub total: u64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `link(n)` is the address of page `n`; `shown` rows are on page `page` of `total`.
    pub fn new(page: u32, shown: usize, total: u64, link: impl Fn(u32) -> String) -> Self {
        let through = u64::from(page.saturating_sub(1)) * u64::from(PAGE) + shown as u64;
        Self {
            page,
            total,
            previous: (page > 1).then(|| link(page - 1)),
            next: (through < total).then(|| link(page + 1)),
        }
    }
    /// Whether the list has more than one page.
    pub fn paged(&self) -> bool {
        self.previous.is_some() || self.next.is_some()
    }
}

/// `path?k=v&…` with the non-empty parameters, percent-encoded.
pub(super) fn link(path: &str, params: &[(&str, String)]) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let q: Vec<String> = params.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", enc(v))).collect();
    if q.is_empty() { path.to_owned() } else { format!("{path}?{}", q.join("&")) }
}

/// The notice a page shows after the redirect of a form that succeeded (`?notice=…`).
pub(super) fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "catalog-created" => "The catalog was created. Add the resources its access packages will grant.",
        "saved" => "Your changes were saved.",
        "group-added" => "The group was added to the catalog.",
        "resource-removed" => "The resource was removed from the catalog.",
        "package-created" => {
            "The access package was created. Add the resource roles it grants, then a policy saying who may \
             request it."
        }
        "role-added" => "The resource role was added to the access package.",
        "role-removed" => "The resource role was removed from the access package.",
        "policy-created" => "The policy was created.",
        "policy-saved" => "The policy was saved.",
        "policy-deleted" => "The policy was deleted.",
        _ => return None,
    })
}

/// A catalog's state in words.
fn state_text(s: CatalogState) -> &'static str {
    match s {
        CatalogState::Published => "Published",
        CatalogState::Unpublished => "Unpublished",
        CatalogState::UnknownFutureValue => "Unknown",
    }
}

// ------------------------------------------------------------------ the list of catalogs

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    search: Option<String>,
    page: Option<u32>,
}

struct CatalogRow {
    id: String,
    name: String,
    description: String,
    state: &'static str,
    external: bool,
}

/// What the catalog forms (new, details) hold.
struct CatalogForm {
    name: String,
    description: String,
    published: bool,
    external: bool,
    version: String,
}

impl CatalogForm {
    fn new() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            published: true,
            external: false,
            version: String::new(),
        }
    }

    fn of(c: &Catalog) -> Self {
        Self {
            name: c.display_name.as_str().to_owned(),
            description: c.description.clone().unwrap_or_default(),
            published: c.state == CatalogState::Published,
            external: c.is_externally_visible,
            version: steward_domain::time::to_micros(c.modified_date_time).to_string(),
        }
    }

    fn read(fields: &[(String, String)]) -> Self {
        Self {
            name: text(fields, "name"),
            description: text(fields, "description"),
            published: field(fields, "state") != Some("unpublished"),
            external: ticked(fields, "external"),
            version: text(fields, "version"),
        }
    }

    fn state(&self) -> CatalogState {
        if self.published { CatalogState::Published } else { CatalogState::Unpublished }
    }
}

#[derive(Template)]
#[template(path = "console/catalogs.html")]
struct ListPage {
    layout: Layout,
    search: String,
    rows: Vec<CatalogRow>,
    pager: Pager,
    may_create: bool,
    form: CatalogForm,
    errors: Errors,
}

async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = Query::<ListParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let search = search_text(params.search.as_deref());
    let page = params.page.unwrap_or(1).clamp(1, 10_000);
    match list_page(&state, &v, &search, page, CatalogForm::new(), Errors::default()).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    search: &str,
    page: u32,
    form: CatalogForm,
    errors: Errors,
) -> Result<ListPage, AppError> {
    let may_create = v.principal.catalog_creator().is_ok();
    // As `GET /catalogs`: the catalogs of the viewer's catalog roles; a catalog creator who
    // holds none yet still gets the page, for its form.
    let (rows, total) = match v.principal.catalogs_for(Task::ReadCatalog) {
        Ok(scope) => {
            let found = catalogs::list_catalogs(&state.services, &scope, &page_query(&CATALOGS, search, page)?).await?;
            let total = found.count.unwrap_or(found.items.len() as u64);
            let rows = found
                .items
                .into_iter()
                .map(|c| CatalogRow {
                    id: c.id.to_string(),
                    name: c.display_name.as_str().to_owned(),
                    description: c.description.unwrap_or_default(),
                    state: state_text(c.state),
                    external: c.is_externally_visible,
                })
                .collect::<Vec<_>>();
            (rows, total)
        }
        Err(_) if may_create => (Vec::new(), 0),
        Err(e) => return Err(e),
    };
    let pager = Pager::new(page, rows.len(), total, |n| {
        link("/admin/catalogs", &[("search", search.to_owned()), ("page", n.to_string())])
    });
    Ok(ListPage { layout: v.layout("admin"), search: search.to_owned(), rows, pager, may_create, form, errors })
}

async fn create(State(state): State<AppState>, req: Request) -> Response {
    let (_, fields, v) = match form_viewer(&state, req, "/admin/catalogs").await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // As `POST /catalogs`: administrators and catalog creators.
    let cap = match v.principal.catalog_creator() {
        Ok(cap) => cap,
        Err(e) => return app_error_page(e, Some(v.layout("admin"))),
    };
    let form = CatalogForm::read(&fields);
    let mut errors = Errors::default();
    let status = match DisplayName::parse(form.name.clone()) {
        Err(e) => {
            errors.set("name", e.to_string());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Ok(display_name) => {
            let new = NewCatalog {
                display_name,
                description: optional(&form.description),
                state: Some(form.state()),
                is_externally_visible: Some(form.external),
            };
            match catalogs::create_catalog(&state.services, cap, new).await {
                Ok(c) => return see_other(&format!("/admin/catalogs/{}?notice=catalog-created", c.id)),
                Err(e) => {
                    place_named(&e, &mut errors);
                    refused_status(&e)
                }
            }
        }
    };
    match list_page(&state, &v, "", 1, form, errors).await {
        Ok(p) => render(status, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

// ------------------------------------------------------------------ one catalog

#[derive(Debug, Default, Deserialize)]
struct ShowParams {
    group_search: Option<String>,
    resources_page: Option<u32>,
    packages_page: Option<u32>,
    notice: Option<String>,
}

struct ResourceRow {
    id: String,
    name: String,
    origin: String,
    roles: String,
}

struct GroupRow {
    id: String,
    name: String,
    description: String,
    added: bool,
}

struct PackageRow {
    id: String,
    name: String,
    description: String,
    hidden: bool,
}

/// What a catalog page shows besides the catalog: what was typed in its forms and their errors.
struct Forms {
    notice: Option<&'static str>,
    edit: Option<CatalogForm>,
    edit_errors: Errors,
    group_search: String,
    group_error: Option<String>,
    resource_error: Option<String>,
    package: PackageForm,
    package_errors: Errors,
    resources_page: u32,
    packages_page: u32,
}

impl Default for Forms {
    fn default() -> Self {
        Self {
            notice: None,
            edit: None,
            edit_errors: Errors::default(),
            group_search: String::new(),
            group_error: None,
            resource_error: None,
            package: PackageForm::default(),
            package_errors: Errors::default(),
            resources_page: 1,
            packages_page: 1,
        }
    }
}

#[derive(Template)]
#[template(path = "console/catalog.html")]
struct CatalogPage {
    layout: Layout,
    id: String,
    name: String,
    description: String,
    state: &'static str,
    external: bool,
    created: When,
    may_edit: bool,
    may_manage: bool,
    edit: CatalogForm,
    resources: Vec<ResourceRow>,
    resources_pager: Pager,
    /// Groups found by the search, when there was one.
    groups: Option<Vec<GroupRow>>,
    packages: Vec<PackageRow>,
    packages_pager: Pager,
    f: Forms,
}

async fn catalog_page(state: &AppState, v: &Viewer, cid: CatalogId, mut f: Forms) -> Result<CatalogPage, AppError> {
    let s = &state.services;
    // As `GET /catalogs/{id}` and its collections: a role that reads this catalog.
    let cap = v.principal.in_catalog(cid, Task::ReadCatalog)?;
    let c = catalogs::get_catalog(s, cap).await?;
    let may_edit = v.principal.in_catalog(cid, Task::EditCatalog).is_ok();
    let may_manage = v.principal.in_catalog(cid, Task::ManagePackages).is_ok();

    let q = page_query(&RESOURCES, "", f.resources_page)?.scoped("catalog/id", cid)?;
    let found = catalogs::list_resources(s, &cap.scope(), &q).await?;
    let total = found.count.unwrap_or(found.items.len() as u64);
    let mut resources = Vec::new();
    for r in found.items {
        let roles = ListQuery::all(&RESOURCE_ROLES).scoped("resource/id", r.id)?;
        let roles = catalogs::list_resource_roles(s, cap, &roles).await?;
        resources.push(ResourceRow {
            id: r.id.to_string(),
            name: r.display_name,
            origin: r.origin_system,
            roles: roles.items.into_iter().map(|r| r.display_name).collect::<Vec<_>>().join(", "),
        });
    }
    let packages_page = f.packages_page;
    let resources_pager = Pager::new(f.resources_page, resources.len(), total, |n| {
        link(
            &format!("/admin/catalogs/{cid}"),
            &[("resources_page", n.to_string()), ("packages_page", packages_page.to_string())],
        )
    });

    let groups = if may_edit && !f.group_search.is_empty() {
        Some(find_groups(state, v, cap, &f.group_search).await?)
    } else {
        None
    };

    let q = page_query(&ACCESS_PACKAGES, "", f.packages_page)?.scoped("catalog/id", cid)?;
    let found = packages::list_packages(s, &cap.scope(), &q).await?;
    let total = found.count.unwrap_or(found.items.len() as u64);
    let packages: Vec<PackageRow> = found
        .items
        .into_iter()
        .map(|p| PackageRow {
            id: p.id.to_string(),
            name: p.display_name.as_str().to_owned(),
            description: p.description.unwrap_or_default(),
            hidden: p.is_hidden,
        })
        .collect();
    let resources_page = f.resources_page;
    let packages_pager = Pager::new(f.packages_page, packages.len(), total, |n| {
        link(
            &format!("/admin/catalogs/{cid}"),
            &[("resources_page", resources_page.to_string()), ("packages_page", n.to_string())],
        )
    });
    let edit = f.edit.take().unwrap_or_else(|| CatalogForm::of(&c));
    Ok(CatalogPage {
        layout: v.layout("admin"),
        id: cid.to_string(),
        name: c.display_name.as_str().to_owned(),
        description: c.description.clone().unwrap_or_default(),
        state: state_text(c.state),
        external: c.is_externally_visible,
        created: When::of(c.created_date_time),
        may_edit,
        may_manage,
        edit,
        resources,
        resources_pager,
        groups,
        packages,
        packages_pager,
        f,
    })
}

/// The directory groups whose name matches `search`, and whether each is in the catalog already.
async fn find_groups(state: &AppState, v: &Viewer, cap: CatalogCap, search: &str) -> Result<Vec<GroupRow>, AppError> {
    let s = &state.services;
    let found = directory::list_groups(s, v.principal.directory_reader()?, &search_query(&GROUPS, search, 10)?).await?;
    let q = ListQuery::all(&RESOURCES).scoped("catalog/id", cap.catalog())?;
    let present: Vec<String> = catalogs::list_resources(s, &cap.scope(), &q)
        .await?
        .items
        .into_iter()
        .filter(|r| r.origin_system == ORIGIN_AAD_GROUP)
        .map(|r| r.origin_id)
        .collect();
    Ok(found
        .items
        .into_iter()
        .map(|g| GroupRow {
            added: present.contains(&g.id.to_string()),
            id: g.id.to_string(),
            name: g.display_name.as_str().to_owned(),
            description: g.description.unwrap_or_default(),
        })
        .collect())
}

/// The catalog page, or the page that says why not.
async fn respond(state: &AppState, v: &Viewer, cid: CatalogId, status: StatusCode, f: Forms) -> Response {
    match catalog_page(state, v, cid, f).await {
        Ok(p) => render(status, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn show(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let cid: CatalogId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let params = Query::<ShowParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let f = Forms {
        notice: notice(params.notice.as_deref()),
        group_search: search_text(params.group_search.as_deref()),
        resources_page: params.resources_page.unwrap_or(1).clamp(1, 10_000),
        packages_page: params.packages_page.unwrap_or(1).clamp(1, 10_000),
        ..Forms::default()
    };
    respond(&state, &v, cid, StatusCode::OK, f).await
}

/// A catalog form's POST: the catalog, the viewer (CSRF checked) and the capability for `task`
/// in the catalog, or the page to answer instead.
async fn posted(
    state: &AppState,
    id: &str,
    req: Request,
    task: Task,
) -> Result<(CatalogId, Vec<(String, String)>, Viewer, CatalogCap), Response> {
    let cid: CatalogId = path_id(id).map_err(|r| *r)?;
    let (_, fields, v) = form_viewer(state, req, &format!("/admin/catalogs/{cid}")).await.map_err(|r| *r)?;
    // As the API: no role for the task anywhere, or none in this catalog, is a 403.
    match v.principal.in_catalog(cid, task) {
        Ok(cap) => Ok((cid, fields, v, cap)),
        Err(e) => Err(app_error_page(e, Some(v.layout("admin")))),
    }
}

async fn update(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (cid, fields, v, cap) = match posted(&state, &id, req, Task::EditCatalog).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let form = CatalogForm::read(&fields);
    let mut errors = Errors::default();
    let status = match DisplayName::parse(form.name.clone()) {
        Err(e) => {
            errors.set("name", e.to_string());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Ok(name) => {
            let patch = CatalogPatch {
                display_name: Some(name),
                description: Some(optional(&form.description)),
                state: Some(form.state()),
                is_externally_visible: Some(form.external),
            };
            let tag = version_tag(&form.version);
            match catalogs::update_catalog(&state.services, cap, patch, tag.as_deref()).await {
                Ok(_) => return see_other(&format!("/admin/catalogs/{cid}?notice=saved")),
                Err(e) if refusal(&e) => return app_error_page(e, Some(v.layout("admin"))),
                Err(e) => {
                    place_named(&e, &mut errors);
                    refused_status(&e)
                }
            }
        }
    };
    respond(&state, &v, cid, status, Forms { edit: Some(form), edit_errors: errors, ..Forms::default() }).await
}

async fn add_group(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (cid, fields, v, cap) = match posted(&state, &id, req, Task::EditCatalog).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let search = search_text(field(&fields, "group_search"));
    let group = text(&fields, "group");
    let result = if group.trim().is_empty() {
        Err(AppError::Invalid("Choose a group to add.".into()))
    } else {
        // As `POST /resourceRequests` with adminAdd of a directory group (`demo.rs` does the same).
        let r = NewResourceRequest {
            request_type: RequestType::AdminAdd,
            catalog_id: cid,
            resource: ResourceRef {
                id: None,
                origin_id: Some(group.trim().to_owned()),
                origin_system: Some(ORIGIN_AAD_GROUP.to_owned()),
            },
        };
        catalogs::request_resource(&state.services, cap, r).await
    };
    match result {
        Ok(_) => see_other(&format!("/admin/catalogs/{cid}?notice=group-added")),
        Err(e @ AppError::Forbidden(_)) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => {
            let f = Forms { group_search: search, group_error: Some(message(&e)), ..Forms::default() };
            respond(&state, &v, cid, refused_status(&e), f).await
        }
    }
}

async fn remove_resource(
    State(state): State<AppState>,
    Path((id, rid)): Path<(String, String)>,
    req: Request,
) -> Response {
    let rid: ResourceId = match path_id(&rid) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let (cid, _, v, cap) = match posted(&state, &id, req, Task::EditCatalog).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // As `POST /resourceRequests` with adminRemove.
    let r = NewResourceRequest {
        request_type: RequestType::AdminRemove,
        catalog_id: cid,
        resource: ResourceRef { id: Some(rid), origin_id: None, origin_system: None },
    };
    match catalogs::request_resource(&state.services, cap, r).await {
        Ok(_) => see_other(&format!("/admin/catalogs/{cid}?notice=resource-removed")),
        Err(e) if refusal(&e) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => {
            let f = Forms { resource_error: Some(message(&e)), ..Forms::default() };
            respond(&state, &v, cid, refused_status(&e), f).await
        }
    }
}

async fn create_package(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    // As `POST /accessPackages`: managing packages in the catalog.
    let (cid, fields, v, cap) = match posted(&state, &id, req, Task::ManagePackages).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let form = PackageForm::read(&fields);
    let mut errors = Errors::default();
    let status = match DisplayName::parse(form.name.clone()) {
        Err(e) => {
            errors.set("name", e.to_string());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Ok(display_name) => {
            let new = NewPackage {
                display_name,
                description: optional(&form.description),
                is_hidden: Some(form.hidden),
                catalog_id: cid,
            };
            match packages::create_package(&state.services, cap, new).await {
                Ok(p) => return see_other(&format!("/admin/packages/{}?notice=package-created", p.id)),
                Err(e) if refusal(&e) => return app_error_page(e, Some(v.layout("admin"))),
                Err(e) => {
                    place_named(&e, &mut errors);
                    refused_status(&e)
                }
            }
        }
    };
    respond(&state, &v, cid, status, Forms { package: form, package_errors: errors, ..Forms::default() }).await
}
