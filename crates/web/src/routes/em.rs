//! `/v1.0/identityGovernance/entitlementManagement`: catalogs, their resources and resource
//! requests, access packages, resource role scopes and incompatibilities.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use steward_app::auth::{CatalogCap, CatalogScope, Principal};
use steward_app::catalogs::{self, CatalogPatch, NewCatalog, NewResourceRequest, ResourceRef};
use steward_app::directory;
use steward_app::packages::{self, NewPackage, PackagePatch, RoleRef, ScopeRef};
use steward_app::query::{
    ACCESS_PACKAGES, CATALOGS, GROUPS, RESOURCE_REQUESTS, RESOURCE_ROLES, RESOURCE_SCOPES, RESOURCES, ROLE_SCOPES,
    Relation,
};
use steward_domain::catalog::{Catalog, Resource, ResourceRequest, ResourceRole, ResourceScope};
use steward_domain::directory::Group;
use steward_domain::enums::RequestType;
use steward_domain::ids::{AccessPackageId, CatalogId, GroupId, ResourceId};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::role::Task;

use crate::AppState;
use crate::api::Api;
use crate::auth::{Caller, Creator, Edits, ManagesPackages, May, Reads};
use crate::body::{Body, ref_target};
use crate::error::ApiError;
use crate::odata::{Cx, OData, check_shape, count_response, entity_response, if_match, page_response};
use crate::routes::{no_content, path_id};

type R = Result<Response, ApiError>;

const EM: &str = "identityGovernance/entitlementManagement";

pub fn api() -> Api {
    Api::new()
        .tag("catalogs")
        .list("/v1.0/identityGovernance/entitlementManagement/catalogs", list_catalogs, "List catalogs")
        .create("/v1.0/identityGovernance/entitlementManagement/catalogs", create_catalog, "Create a catalog")
        .count("/v1.0/identityGovernance/entitlementManagement/catalogs/$count", count_catalogs, "Count catalogs")
        .get("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}", get_catalog, "Get a catalog")
        .patch("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}", update_catalog, "Update a catalog")
        .delete("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}", delete_catalog, "Delete an empty catalog")
        .list("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/accessPackages", catalog_packages, "List a catalog's access packages")
        .list("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resources", catalog_resources, "List a catalog's resources")
        .get("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resources/{rid}", catalog_resource, "Get a catalog resource")
        .list("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resourceRoles", catalog_roles, "List the roles of a catalog's resources")
        .list("/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resourceScopes", catalog_scopes, "List the scopes of a catalog's resources")
        .tag("resources")
        .list("/v1.0/identityGovernance/entitlementManagement/resources", list_resources, "List resources of all catalogs")
        .list("/v1.0/identityGovernance/entitlementManagement/resourceRequests", list_resource_requests, "List resource requests")
        .create("/v1.0/identityGovernance/entitlementManagement/resourceRequests", create_resource_request, "Add a resource to a catalog or remove it (adminAdd, adminRemove)")
        .tag("accessPackages")
        .list("/v1.0/identityGovernance/entitlementManagement/accessPackages", list_packages, "List access packages")
        .create("/v1.0/identityGovernance/entitlementManagement/accessPackages", create_package, "Create an access package")
        .count("/v1.0/identityGovernance/entitlementManagement/accessPackages/$count", count_packages, "Count access packages")
        .get("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}", get_package, "Get an access package")
        .patch("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}", update_package, "Update an access package")
        .delete("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}", delete_package, "Delete an access package")
        .list("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes", list_role_scopes, "List an access package's resource role scopes")
        .create("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes", add_role_scope, "Grant a resource role through the access package")
        .get("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes/{rrs}", get_role_scope, "Get a resource role scope")
        .delete("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes/{rrs}", remove_role_scope, "Remove a resource role scope")
        .list("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleAccessPackages", list_incompatible_packages, "List incompatible access packages")
        .action("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleAccessPackages/$ref", add_incompatible_package, "Add an incompatible access package")
        .delete("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleAccessPackages/{other}/$ref", remove_incompatible_package, "Remove an incompatible access package")
        .list("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleGroups", list_incompatible_groups, "List incompatible groups")
        .action("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleGroups/$ref", add_incompatible_group, "Add an incompatible group")
        .delete("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleGroups/{group}/$ref", remove_incompatible_group, "Remove an incompatible group")
        .list("/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/accessPackagesIncompatibleWith", list_packages_incompatible_with, "List the access packages that declare this one incompatible")
}

fn set(name: &str) -> String {
    format!("{EM}/{name}")
}

// ---------------------------------------------------------------- catalogs

async fn list_catalogs(State(st): State<AppState>, May(p, scope, _): May<Reads>, od: OData) -> R {
    check_shape::<Catalog>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&CATALOGS)?;
    let page = catalogs::list_catalogs(&st.services, &scope, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set("catalogs")).await
}

async fn count_catalogs(State(st): State<AppState>, May(_, scope, _): May<Reads>, od: OData) -> R {
    let mut q = od.list_query(&CATALOGS)?;
    (q.count, q.top) = (true, 1);
    Ok(count_response(catalogs::list_catalogs(&st.services, &scope, &q).await?.count.unwrap_or(0)))
}

const READ_ONLY: &[&str] = &["id", "createdDateTime", "modifiedDateTime"];

async fn create_catalog(
    State(st): State<AppState>,
    Creator(p, cap): Creator,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let mut b = Body::parse(&headers, &bytes, "accessPackageCatalog")?;
    let new = NewCatalog {
        display_name: b.req_name()?,
        description: b.nullable_str("description")?,
        state: b.opt_enum("state")?,
        is_externally_visible: b.opt_bool("isExternallyVisible")?,
    };
    // catalogType is decided by Steward (userManaged); a client echoing it back is tolerated.
    b.ignore(&["catalogType"]);
    b.ignore(READ_ONLY);
    b.finish()?;
    let c = catalogs::create_catalog(&st.services, cap, new).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &c, StatusCode::CREATED, &set("catalogs")).await
}

async fn get_catalog(State(st): State<AppState>, may: May<Reads>, od: OData, Path(id): Path<String>) -> R {
    let p = &may.0;
    let c = catalogs::get_catalog(&st.services, may.in_catalog(path_id(&id)?)?).await?;
    entity_response(&Cx::new(&st.services, p), &od, &c, StatusCode::OK, &set("catalogs")).await
}

async fn update_catalog(
    State(st): State<AppState>,
    may: May<Edits>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let cap = may.in_catalog(path_id(&id)?)?;
    let mut b = Body::parse(&headers, &bytes, "accessPackageCatalog")?;
    let patch = CatalogPatch {
        display_name: b.opt_name()?,
        description: b.patch_str("description")?,
        state: b.opt_enum("state")?,
        is_externally_visible: b.opt_bool("isExternallyVisible")?,
    };
    b.ignore(&["catalogType"]);
    b.ignore(READ_ONLY);
    b.finish()?;
    catalogs::update_catalog(&st.services, cap, patch, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

async fn delete_catalog(State(st): State<AppState>, may: May<Edits>, Path(id): Path<String>, headers: HeaderMap) -> R {
    catalogs::delete_catalog(&st.services, may.in_catalog(path_id(&id)?)?, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

/// The capability to read catalog `id`, which must exist.
async fn in_catalog(st: &AppState, may: &May<Reads>, id: &str) -> Result<CatalogCap, ApiError> {
    let cap = may.in_catalog(path_id(id)?)?;
    catalogs::get_catalog(&st.services, cap).await?;
    Ok(cap)
}

async fn catalog_packages(State(st): State<AppState>, may: May<Reads>, od: OData, Path(id): Path<String>) -> R {
    check_shape::<AccessPackage>(od.options.select.as_ref(), &od.options.expand)?;
    let cap = in_catalog(&st, &may, &id).await?;
    let q = od.list_query(&ACCESS_PACKAGES)?.scoped("catalog/id", cap.catalog())?;
    let page = packages::list_packages(&st.services, &cap.scope(), &q).await?;
    let p = may.0;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set("accessPackages")).await
}

async fn catalog_resources(State(st): State<AppState>, may: May<Reads>, od: OData, Path(id): Path<String>) -> R {
    check_shape::<Resource>(od.options.select.as_ref(), &od.options.expand)?;
    let cap = in_catalog(&st, &may, &id).await?;
    let cid = cap.catalog();
    let q = od.list_query(&RESOURCES)?.scoped("catalog/id", cid)?;
    let page = catalogs::list_resources(&st.services, &cap.scope(), &q).await?;
    let p = may.0;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set(&format!("catalogs('{cid}')/resources"))).await
}

async fn catalog_resource(
    State(st): State<AppState>,
    may: May<Reads>,
    od: OData,
    Path((id, rid)): Path<(String, String)>,
) -> R {
    let cap = in_catalog(&st, &may, &id).await?;
    let cid = cap.catalog();
    let rid: ResourceId = path_id(&rid)?;
    let r = catalogs::get_resource(&st.services, &may.1, rid).await?;
    let p = may.0;
    if r.catalog_id != cid {
        return Err(ApiError::not_found(format!("resource '{rid}' was not found in catalog '{cid}'.")));
    }
    entity_response(&Cx::new(&st.services, &p), &od, &r, StatusCode::OK, &set(&format!("catalogs('{cid}')/resources")))
        .await
}

async fn catalog_roles(State(st): State<AppState>, may: May<Reads>, od: OData, Path(id): Path<String>) -> R {
    check_shape::<ResourceRole>(od.options.select.as_ref(), &od.options.expand)?;
    let cap = in_catalog(&st, &may, &id).await?;
    let cid = cap.catalog();
    let q = od.list_query(&RESOURCE_ROLES)?;
    let page = catalogs::list_resource_roles(&st.services, cap, &q).await?;
    let p = may.0;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set(&format!("catalogs('{cid}')/resourceRoles"))).await
}

async fn catalog_scopes(State(st): State<AppState>, may: May<Reads>, od: OData, Path(id): Path<String>) -> R {
    check_shape::<ResourceScope>(od.options.select.as_ref(), &od.options.expand)?;
    let cap = in_catalog(&st, &may, &id).await?;
    let cid = cap.catalog();
    let q = od.list_query(&RESOURCE_SCOPES)?;
    let page = catalogs::list_resource_scopes(&st.services, cap, &q).await?;
    let p = may.0;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set(&format!("catalogs('{cid}')/resourceScopes"))).await
}

// ---------------------------------------------------------------- resources

async fn list_resources(State(st): State<AppState>, May(p, scope, _): May<Reads>, od: OData) -> R {
    check_shape::<Resource>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&RESOURCES)?;
    let page = catalogs::list_resources(&st.services, &scope, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set("resources")).await
}

async fn list_resource_requests(State(st): State<AppState>, May(p, scope, _): May<Reads>, od: OData) -> R {
    check_shape::<ResourceRequest>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&RESOURCE_REQUESTS)?;
    let page = catalogs::list_resource_requests(&st.services, &scope, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set("resourceRequests")).await
}

/// `{"id": "..."}` of a navigation in a body.
fn nav_id<T: std::str::FromStr<Err = steward_domain::DomainError>>(
    b: &mut Body,
    name: &str,
    entity: &'static str,
) -> Result<Option<T>, ApiError> {
    match b.opt_object(name, entity)? {
        None => Ok(None),
        Some(mut nb) => {
            let id = nb.opt_id("id")?;
            nb.ignore(&[
                "displayName",
                "description",
                "createdDateTime",
                "modifiedDateTime",
                "state",
                "catalogType",
                "isExternallyVisible",
                "isHidden",
            ]);
            nb.finish()?;
            Ok(id)
        }
    }
}

async fn create_resource_request(
    State(st): State<AppState>,
    may: May<Edits>,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let mut b = Body::parse(&headers, &bytes, "accessPackageResourceRequest")?;
    let request_type: RequestType = b
        .opt_enum("requestType")?
        .ok_or_else(|| ApiError::invalid_model("Property 'requestType' is required: adminAdd or adminRemove."))?;
    let catalog_id: CatalogId = nav_id(&mut b, "catalog", "accessPackageCatalog")?
        .ok_or_else(|| ApiError::invalid_model("Property 'catalog' with its 'id' is required."))?;
    let mut rb = b.opt_object("resource", "accessPackageResource")?.ok_or_else(|| {
        ApiError::invalid_model("Property 'resource' is required (originId and originSystem, or id).")
    })?;
    let resource = ResourceRef {
        id: rb.opt_id("id")?,
        origin_id: rb.opt_str("originId")?,
        origin_system: rb.opt_str("originSystem")?,
    };
    rb.ignore(&[
        "displayName",
        "description",
        "resourceType",
        "url",
        "attributes",
        "createdDateTime",
        "modifiedDateTime",
    ]);
    rb.finish()?;
    b.ignore(&["id", "state", "createdDateTime", "justification"]);
    b.finish()?;
    let cap = may.in_catalog(catalog_id)?;
    let r = catalogs::request_resource(&st.services, cap, NewResourceRequest { request_type, catalog_id, resource })
        .await?;
    entity_response(&Cx::new(&st.services, &may.0), &od, &r, StatusCode::CREATED, &set("resourceRequests")).await
}

// ---------------------------------------------------------------- access packages

async fn list_packages(State(st): State<AppState>, May(p, scope, _): May<Reads>, od: OData) -> R {
    check_shape::<AccessPackage>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&ACCESS_PACKAGES)?;
    let page = packages::list_packages(&st.services, &scope, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &set("accessPackages")).await
}

async fn count_packages(State(st): State<AppState>, May(_, scope, _): May<Reads>, od: OData) -> R {
    let mut q = od.list_query(&ACCESS_PACKAGES)?;
    (q.count, q.top) = (true, 1);
    Ok(count_response(packages::list_packages(&st.services, &scope, &q).await?.count.unwrap_or(0)))
}

async fn create_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let mut b = Body::parse(&headers, &bytes, "accessPackage")?;
    let display_name = b.req_name()?;
    let description = b.nullable_str("description")?;
    let is_hidden = b.opt_bool("isHidden")?;
    let catalog_id = match nav_id(&mut b, "catalog", "accessPackageCatalog")? {
        Some(c) => c,
        // The beta API's flat property, still sent by older scripts.
        None => b
            .opt_id("catalogId")?
            .ok_or_else(|| ApiError::invalid_model("Property 'catalog' with its 'id' is required."))?,
    };
    b.ignore(READ_ONLY);
    b.finish()?;
    let cap = may.in_catalog(catalog_id)?;
    let ap =
        packages::create_package(&st.services, cap, NewPackage { display_name, description, is_hidden, catalog_id })
            .await?;
    entity_response(&Cx::new(&st.services, &may.0), &od, &ap, StatusCode::CREATED, &set("accessPackages")).await
}

async fn get_package(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    if crate::routes::lifecycle::function_call(&id).is_some() {
        return crate::routes::lifecycle::requestable_packages(&st, &p, &od, &id).await;
    }
    let ap = packages::get_package(&st.services, &p.catalogs_for(Task::ReadCatalog)?, path_id(&id)?).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &ap, StatusCode::OK, &set("accessPackages")).await
}

async fn update_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, id).await?;
    let mut b = Body::parse(&headers, &bytes, "accessPackage")?;
    let patch = PackagePatch {
        display_name: b.opt_name()?,
        description: b.patch_str("description")?,
        is_hidden: b.opt_bool("isHidden")?,
        catalog_id: nav_id(&mut b, "catalog", "accessPackageCatalog")?,
    };
    b.ignore(READ_ONLY);
    b.finish()?;
    packages::update_package(&st.services, cap, id, patch, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

async fn delete_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> R {
    let id: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, id).await?;
    packages::delete_package(&st.services, cap, id, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

/// Package `id`, which the caller must be able to read.
async fn in_package(st: &AppState, scope: &CatalogScope, id: &str) -> Result<AccessPackageId, ApiError> {
    let pid: AccessPackageId = path_id(id)?;
    packages::get_package(&st.services, scope, pid).await?;
    Ok(pid)
}

async fn list_role_scopes(
    State(st): State<AppState>,
    May(p, scope, _): May<Reads>,
    od: OData,
    Path(id): Path<String>,
) -> R {
    check_shape::<ResourceRoleScope>(od.options.select.as_ref(), &od.options.expand)?;
    let pid: AccessPackageId = path_id(&id)?;
    let q = od.list_query(&ROLE_SCOPES)?;
    let page = packages::list_role_scopes(&st.services, &scope, pid, &q).await?;
    page_response(
        &Cx::new(&st.services, &p),
        &od,
        &q,
        page,
        &set(&format!("accessPackages('{pid}')/resourceRoleScopes")),
    )
    .await
}

async fn add_role_scope(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    od: OData,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let pid: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, pid).await?;
    let p = &may.0;
    let mut b = Body::parse(&headers, &bytes, "accessPackageResourceRoleScope")?;
    let mut rb = b
        .opt_object("role", "accessPackageResourceRole")?
        .ok_or_else(|| ApiError::invalid_model("Property 'role' is required."))?;
    let role = RoleRef {
        id: rb.opt_id("id")?,
        origin_id: rb.opt_str("originId")?,
        resource_id: nav_id(&mut rb, "resource", "accessPackageResource")?,
    };
    rb.ignore(&["originSystem", "displayName", "description", "type"]);
    rb.finish()?;
    let scope = match b.opt_object("scope", "accessPackageResourceScope")? {
        None => ScopeRef::default(),
        Some(mut sb) => {
            let s = ScopeRef { id: sb.opt_id("id")?, origin_id: sb.opt_str("originId")? };
            sb.ignore(&["originSystem", "displayName", "description", "isRootScope"]);
            sb.finish()?;
            s
        }
    };
    b.ignore(&["id", "createdDateTime"]);
    b.finish()?;
    let rrs = packages::add_role_scope(&st.services, cap, pid, role, scope).await?;
    entity_response(
        &Cx::new(&st.services, p),
        &od,
        &rrs,
        StatusCode::CREATED,
        &set(&format!("accessPackages('{pid}')/resourceRoleScopes")),
    )
    .await
}

async fn get_role_scope(
    State(st): State<AppState>,
    May(p, scope, _): May<Reads>,
    od: OData,
    Path((id, rrs)): Path<(String, String)>,
) -> R {
    let pid: AccessPackageId = path_id(&id)?;
    let r = packages::get_role_scope(&st.services, &scope, pid, path_id(&rrs)?).await?;
    entity_response(
        &Cx::new(&st.services, &p),
        &od,
        &r,
        StatusCode::OK,
        &set(&format!("accessPackages('{pid}')/resourceRoleScopes")),
    )
    .await
}

async fn remove_role_scope(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path((id, rrs)): Path<(String, String)>,
) -> R {
    let pid: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, pid).await?;
    packages::remove_role_scope(&st.services, cap, pid, path_id(&rrs)?).await?;
    Ok(no_content())
}

async fn related_packages(
    st: &AppState,
    p: &Principal,
    scope: &CatalogScope,
    od: &OData,
    id: &str,
    rel: Relation,
) -> R {
    check_shape::<AccessPackage>(od.options.select.as_ref(), &od.options.expand)?;
    let pid = in_package(st, scope, id).await?;
    let q = od.list_query(&ACCESS_PACKAGES)?.related(rel, pid);
    let page = packages::list_packages(&st.services, scope, &q).await?;
    page_response(&Cx::new(&st.services, p), od, &q, page, &set("accessPackages")).await
}

async fn list_incompatible_packages(
    State(st): State<AppState>,
    May(p, scope, _): May<Reads>,
    od: OData,
    Path(id): Path<String>,
) -> R {
    related_packages(&st, &p, &scope, &od, &id, Relation::IncompatiblePackages).await
}

async fn list_packages_incompatible_with(
    State(st): State<AppState>,
    May(p, scope, _): May<Reads>,
    od: OData,
    Path(id): Path<String>,
) -> R {
    related_packages(&st, &p, &scope, &od, &id, Relation::PackagesIncompatibleWith).await
}

async fn add_incompatible_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let other: AccessPackageId = path_id(&ref_target(&headers, &bytes, "accessPackages")?)?;
    let pid: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, pid).await?;
    packages::add_incompatible_package(&st.services, cap, pid, other).await?;
    Ok(no_content())
}

async fn remove_incompatible_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path((id, other)): Path<(String, String)>,
) -> R {
    let pid: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, pid).await?;
    packages::remove_incompatible_package(&st.services, cap, pid, path_id(&other)?).await?;
    Ok(no_content())
}

async fn list_incompatible_groups(
    State(st): State<AppState>,
    May(p, scope, _): May<Reads>,
    od: OData,
    Path(id): Path<String>,
) -> R {
    check_shape::<Group>(od.options.select.as_ref(), &od.options.expand)?;
    let pid = in_package(&st, &scope, &id).await?;
    let q = od.list_query(&GROUPS)?.related(Relation::IncompatibleGroups, pid);
    let page = directory::list_groups(&st.services, p.directory_reader()?, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, "groups").await
}

async fn add_incompatible_group(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let gid: GroupId = path_id(&ref_target(&headers, &bytes, "groups")?)?;
    let pid: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, pid).await?;
    packages::add_incompatible_group(&st.services, cap, pid, gid).await?;
    Ok(no_content())
}

async fn remove_incompatible_group(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path((id, group)): Path<(String, String)>,
) -> R {
    let pid: AccessPackageId = path_id(&id)?;
    let cap = may.in_package(&st, pid).await?;
    packages::remove_incompatible_group(&st.services, cap, pid, path_id(&group)?).await?;
    Ok(no_content())
}
