//! The console's access package page: the package's details (edited by those who manage the
//! catalog's packages), the resource roles it grants (add one of the catalog's resources' roles,
//! remove one: `packages::add_role_scope` / `remove_role_scope`), its policies in plain words
//! with links to the policy editor (`console::policies`), and a link to its separation of duties.
//! Reading needs a role that reads the package's catalog, changing needs one that manages its
//! packages: the checks of the Graph API's `accessPackages` routes (`routes::em`).
//!
//! Form fields: details `name`, `description`, `hidden` (checkbox), `version` (the package's
//! modification time, so a stale form is refused); add a role `role` (a resource role id of the
//! catalog).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use steward_app::AppError;
use steward_app::auth::CatalogCap;
use steward_app::packages::{self, PackagePatch, RoleRef, ScopeRef};
use steward_app::query::{ListQuery, POLICIES, RESOURCE_ROLES, ROLE_SCOPES};
use steward_app::{catalogs, policies};
use steward_domain::ids::{AccessPackageId, ResourceId, ResourceRoleId, ResourceRoleScopeId};
use steward_domain::package::AccessPackage;
use steward_domain::role::Task;
use steward_domain::text::DisplayName;

use super::catalogs::{
    Errors, message, notice, optional, place_named, refusal, refused_status, text, ticked, version_tag,
};
use crate::AppState;
use crate::portal::{Layout, Viewer, app_error_page, field, form_viewer, page_viewer, path_id, render, see_other};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/packages/{id}", get(show).post(update))
        .route("/admin/packages/{id}/roles", post(add_role))
        .route("/admin/packages/{id}/roles/{rrs}/remove", post(remove_role))
}

/// What the package forms (new, details) hold.
#[derive(Default)]
pub(super) struct PackageForm {
    pub name: String,
    pub description: String,
    pub hidden: bool,
    pub version: String,
}

impl PackageForm {
    pub fn read(fields: &[(String, String)]) -> Self {
        Self {
            name: text(fields, "name"),
            description: text(fields, "description"),
            hidden: ticked(fields, "hidden"),
            version: text(fields, "version"),
        }
    }

    fn of(p: &AccessPackage) -> Self {
        Self {
            name: p.display_name.as_str().to_owned(),
            description: p.description.clone().unwrap_or_default(),
            hidden: p.is_hidden,
            version: steward_domain::time::to_micros(p.modified_date_time).to_string(),
        }
    }
}

struct RoleRow {
    id: String,
    role: String,
    resource: String,
    origin: String,
}

struct RoleOption {
    id: String,
    text: String,
}

struct PolicyRow {
    id: String,
    name: String,
    summary: String,
}

/// What a package page shows besides the package: what was typed in its forms and the errors.
#[derive(Default)]
pub(super) struct Forms {
    pub notice: Option<&'static str>,
    pub edit: Option<PackageForm>,
    pub edit_errors: Errors,
    pub role_error: Option<String>,
    pub policy_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/package.html")]
struct PackagePage {
    layout: Layout,
    id: String,
    name: String,
    description: String,
    hidden: bool,
    catalog_id: String,
    catalog_name: String,
    may_manage: bool,
    edit: PackageForm,
    roles: Vec<RoleRow>,
    options: Vec<RoleOption>,
    policies: Vec<PolicyRow>,
    f: Forms,
}

#[derive(Debug, Default, Deserialize)]
struct ShowParams {
    notice: Option<String>,
}

async fn package_page(
    state: &AppState,
    v: &Viewer,
    pid: AccessPackageId,
    mut f: Forms,
) -> Result<PackagePage, AppError> {
    let s = &state.services;
    // As `GET /accessPackages/{id}` and its collections: a role that reads its catalog.
    let scope = v.principal.catalogs_for(Task::ReadCatalog)?;
    let pkg = packages::get_package(s, &scope, pid).await?;
    let cap = v.principal.in_catalog(pkg.catalog_id, Task::ReadCatalog)?;
    let catalog = catalogs::get_catalog(s, cap).await?;
    let may_manage = v.principal.in_catalog(pkg.catalog_id, Task::ManagePackages).is_ok();

    let mut names: Vec<(ResourceId, String, String)> = Vec::new();
    let mut roles = Vec::new();
    let mut granted: Vec<ResourceRoleId> = Vec::new();
    for rrs in packages::list_role_scopes(s, &scope, pid, &ListQuery::all(&ROLE_SCOPES)).await?.items {
        let role = packages::get_resource_role(s, &scope, rrs.role_id).await?;
        let (resource, origin) = resource_name(state, &scope, &mut names, role.resource_id).await?;
        granted.push(role.id);
        roles.push(RoleRow { id: rrs.id.to_string(), role: role.display_name, resource, origin });
    }
    let mut options = Vec::new();
    if may_manage {
        for role in catalogs::list_resource_roles(s, cap, &ListQuery::all(&RESOURCE_ROLES)).await?.items {
            if granted.contains(&role.id) {
                continue;
            }
            let (resource, origin) = resource_name(state, &scope, &mut names, role.resource_id).await?;
            options.push(RoleOption {
                id: role.id.to_string(),
                text: format!("{} of {resource} ({origin})", role.display_name),
            });
        }
        options.sort_by_key(|o| o.text.to_lowercase());
    }
    let mut rows = Vec::new();
    let q = ListQuery::all(&POLICIES).scoped("accessPackage/id", pid)?;
    for p in policies::list_policies(s, &scope, &q).await?.items {
        rows.push(PolicyRow {
            id: p.id.to_string(),
            name: p.display_name.as_str().to_owned(),
            summary: super::policies::describe(state, &p.settings).await.summary,
        });
    }
    let edit = f.edit.take().unwrap_or_else(|| PackageForm::of(&pkg));
    Ok(PackagePage {
        layout: v.layout("admin"),
        id: pid.to_string(),
        name: pkg.display_name.as_str().to_owned(),
        description: pkg.description.clone().unwrap_or_default(),
        hidden: pkg.is_hidden,
        catalog_id: catalog.id.to_string(),
        catalog_name: catalog.display_name.as_str().to_owned(),
        may_manage,
        edit,
        roles,
        options,
        policies: rows,
        f,
    })
}

/// A resource's name and origin system, read once per page.
async fn resource_name(
    state: &AppState,
    scope: &steward_app::auth::CatalogScope,
    names: &mut Vec<(ResourceId, String, String)>,
    id: ResourceId,
) -> Result<(String, String), AppError> {
    if let Some((_, n, o)) = names.iter().find(|(r, _, _)| *r == id) {
        return Ok((n.clone(), o.clone()));
    }
    let r = catalogs::get_resource(&state.services, scope, id).await?;
    names.push((id, r.display_name.clone(), r.origin_system.clone()));
    Ok((r.display_name, r.origin_system))
}

/// The package page, or the page that says why not.
pub(super) async fn respond(
    state: &AppState,
    v: &Viewer,
    pid: AccessPackageId,
    status: StatusCode,
    f: Forms,
) -> Response {
    match package_page(state, v, pid, f).await {
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
    let pid: AccessPackageId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let params = Query::<ShowParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let f = Forms { notice: notice(params.notice.as_deref()), ..Forms::default() };
    respond(&state, &v, pid, StatusCode::OK, f).await
}

/// The capability to manage the packages of package `pid`'s catalog, checked as the API's
/// `May<ManagesPackages>` and `in_package` check it: no such role anywhere is a 403, a package
/// that does not exist a 404, a package of another catalog a 403.
pub(super) async fn managing(state: &AppState, v: &Viewer, pid: AccessPackageId) -> Result<CatalogCap, AppError> {
    v.principal.may_somewhere(Task::ManagePackages)?;
    let pkg = packages::require_package(&state.services, pid).await?;
    v.principal.in_catalog(pkg.catalog_id, Task::ManagePackages)
}

/// A package form's POST: the package, the fields and the viewer (CSRF checked) with the
/// capability to manage it, or the page to answer instead.
async fn posted(
    state: &AppState,
    id: &str,
    req: Request,
) -> Result<(AccessPackageId, Vec<(String, String)>, Viewer, CatalogCap), Response> {
    let pid: AccessPackageId = path_id(id).map_err(|r| *r)?;
    let (_, fields, v) = form_viewer(state, req, &format!("/admin/packages/{pid}")).await.map_err(|r| *r)?;
    match managing(state, &v, pid).await {
        Ok(cap) => Ok((pid, fields, v, cap)),
        Err(e) => Err(app_error_page(e, Some(v.layout("admin")))),
    }
}

async fn update(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (pid, fields, v, cap) = match posted(&state, &id, req).await {
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
        Ok(name) => {
            let patch = PackagePatch {
                display_name: Some(name),
                description: Some(optional(&form.description)),
                is_hidden: Some(form.hidden),
                catalog_id: None,
            };
            let tag = version_tag(&form.version);
            match packages::update_package(&state.services, cap, pid, patch, tag.as_deref()).await {
                Ok(_) => return see_other(&format!("/admin/packages/{pid}?notice=saved")),
                Err(e) if refusal(&e) => return app_error_page(e, Some(v.layout("admin"))),
                Err(e) => {
                    place_named(&e, &mut errors);
                    refused_status(&e)
                }
            }
        }
    };
    respond(&state, &v, pid, status, Forms { edit: Some(form), edit_errors: errors, ..Forms::default() }).await
}

async fn add_role(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (pid, fields, v, cap) = match posted(&state, &id, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match field(&fields, "role").and_then(|r| r.parse::<ResourceRoleId>().ok()) {
        None => Err(AppError::Invalid("Choose the resource role to add.".into())),
        // As `POST /accessPackages/{id}/resourceRoleScopes` naming the role by id, on the
        // resource's root scope.
        Some(role) => {
            let role = RoleRef { id: Some(role), origin_id: None, resource_id: None };
            packages::add_role_scope(&state.services, cap, pid, role, ScopeRef::default()).await
        }
    };
    match result {
        Ok(_) => see_other(&format!("/admin/packages/{pid}?notice=role-added")),
        Err(e @ AppError::Forbidden(_)) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => {
            let f = Forms { role_error: Some(message(&e)), ..Forms::default() };
            respond(&state, &v, pid, refused_status(&e), f).await
        }
    }
}

async fn remove_role(State(state): State<AppState>, Path((id, rrs)): Path<(String, String)>, req: Request) -> Response {
    let rrs: ResourceRoleScopeId = match path_id(&rrs) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let (pid, _, v, cap) = match posted(&state, &id, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match packages::remove_role_scope(&state.services, cap, pid, rrs).await {
        Ok(()) => see_other(&format!("/admin/packages/{pid}?notice=role-removed")),
        Err(e) if refusal(&e) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => {
            let f = Forms { role_error: Some(message(&e)), ..Forms::default() };
            respond(&state, &v, pid, refused_status(&e), f).await
        }
    }
}
