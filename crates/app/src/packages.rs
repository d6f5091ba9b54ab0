//! Use cases of access packages: create, change and delete them, grant resource roles through
//! role scopes, and declare separation of duties with incompatible packages and groups.

use steward_domain::audit::Activity;
use steward_domain::catalog::{ResourceRole, ResourceScope};
use steward_domain::ids::{
    AccessPackageId, CatalogId, GroupId, ResourceId, ResourceRoleId, ResourceRoleScopeId, ResourceScopeId,
};
use steward_domain::package::{self, AccessPackage, ResourceRoleScope};
use steward_domain::role::Task;
use steward_domain::text::{DESCRIPTION_MAX, DisplayName, bounded};
use steward_odata::CmpOp;

use crate::audit::{PACKAGE, admin_event, named, with_changes};
use crate::auth::{CatalogCap, CatalogScope};
use crate::catalogs::require_catalog;
use crate::ports::Page;
use crate::query::{Cond, ListQuery, RESOURCE_ROLES, RESOURCE_SCOPES, Schema, Value};
use crate::{AppError, Services};

#[derive(Debug, Clone)]
pub struct NewPackage {
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub is_hidden: Option<bool>,
    pub catalog_id: CatalogId,
}

#[derive(Debug, Clone, Default)]
pub struct PackagePatch {
    pub display_name: Option<DisplayName>,
    pub description: Option<Option<String>>,
    pub is_hidden: Option<bool>,
    /// A client may echo the package's catalog back; it must be the same one.
    pub catalog_id: Option<CatalogId>,
}

pub async fn create_package(s: &Services, cap: CatalogCap, new: NewPackage) -> Result<AccessPackage, AppError> {
    cap.require(Task::ManagePackages)?;
    cap.covers(new.catalog_id)?;
    require_catalog(s, new.catalog_id).await?;
    let now = s.clock.now();
    let p = AccessPackage {
        id: AccessPackageId::new(),
        catalog_id: new.catalog_id,
        display_name: new.display_name,
        description: bounded("description", new.description, DESCRIPTION_MAX)?,
        is_hidden: new.is_hidden.unwrap_or(false),
        created_date_time: now,
        modified_date_time: now,
    };
    let event = admin_event(cap, Activity::CreatePackage, PACKAGE, p.id, now).with_detail(format!(
        "{} in catalog {}",
        named(p.display_name.as_str()),
        p.catalog_id
    ));
    s.store.insert_package(&p, &event).await?;
    Ok(p)
}

pub async fn require_package(s: &Services, id: AccessPackageId) -> Result<AccessPackage, AppError> {
    s.store.get_package(id).await?.ok_or_else(|| AppError::not_found("access package", id))
}

pub async fn get_package(s: &Services, scope: &CatalogScope, id: AccessPackageId) -> Result<AccessPackage, AppError> {
    let p = require_package(s, id).await?;
    scope.check(p.catalog_id)?;
    Ok(p)
}

/// The packages of the catalogs the caller may read.
pub async fn list_packages(s: &Services, scope: &CatalogScope, q: &ListQuery) -> Result<Page<AccessPackage>, AppError> {
    Ok(s.store.list_packages(&q.clone().within(scope, "catalog/id")?).await?)
}

/// The package, if `cap` covers its catalog.
async fn package_in(s: &Services, cap: CatalogCap, id: AccessPackageId) -> Result<AccessPackage, AppError> {
    cap.require(Task::ManagePackages)?;
    let p = require_package(s, id).await?;
    cap.covers(p.catalog_id)?;
    Ok(p)
}

/// Applies a patch, optionally conditional on `if_match`; see `catalogs::update_catalog`.
pub async fn update_package(
    s: &Services,
    cap: CatalogCap,
    id: AccessPackageId,
    p: PackagePatch,
    if_match: Option<&str>,
) -> Result<AccessPackage, AppError> {
    let description = p.description.map(|d| bounded("description", d, DESCRIPTION_MAX)).transpose()?;
    for _ in 0..crate::WRITE_ATTEMPTS {
        let before = package_in(s, cap, id).await?;
        crate::check_if_match(if_match, "access package", before.modified_date_time)?;
        let mut ap = before.clone();
        if let Some(c) = p.catalog_id {
            package::check_same_catalog(&ap, c)?;
        }
        let read_at = ap.modified_date_time;
        if let Some(v) = &p.display_name {
            ap.display_name = v.clone();
        }
        if let Some(v) = &description {
            ap.description = v.clone();
        }
        if let Some(v) = p.is_hidden {
            ap.is_hidden = v;
        }
        let now = s.clock.now();
        ap.modified_date_time = steward_domain::time::next_modified(read_at, now);
        let event = with_changes(admin_event(cap, Activity::UpdatePackage, PACKAGE, id, now), &before, &ap);
        match s.store.update_package(&ap, read_at, &event).await {
            Ok(()) => return Ok(ap),
            Err(e) => crate::lost_race(e, if_match, "access package")?,
        }
    }
    Err(AppError::Conflict("The access package kept changing while it was being updated; try again.".into()))
}

pub async fn delete_package(
    s: &Services,
    cap: CatalogCap,
    id: AccessPackageId,
    if_match: Option<&str>,
) -> Result<(), AppError> {
    let ap = package_in(s, cap, id).await?;
    crate::check_if_match(if_match, "access package", ap.modified_date_time)?;
    let event = admin_event(cap, Activity::DeletePackage, PACKAGE, id, s.clock.now());
    Ok(s.store.delete_package(id, &event).await?)
}

/// How a role-scope body names the role: by id, or by origin id (and optionally its resource).
#[derive(Debug, Clone, Default)]
pub struct RoleRef {
    pub id: Option<ResourceRoleId>,
    pub origin_id: Option<String>,
    pub resource_id: Option<ResourceId>,
}

/// How a role-scope body names the scope; all `None` means the resource's root scope.
#[derive(Debug, Clone, Default)]
pub struct ScopeRef {
    pub id: Option<ResourceScopeId>,
    pub origin_id: Option<String>,
}

/// Grants a resource role through the package.
pub async fn add_role_scope(
    s: &Services,
    cap: CatalogCap,
    package_id: AccessPackageId,
    role: RoleRef,
    scope: ScopeRef,
) -> Result<ResourceRoleScope, AppError> {
    let pkg = package_in(s, cap, package_id).await?;
    let role = resolve_role(s, &pkg, &role).await?;
    let scope = resolve_scope(s, &role, &scope).await?;
    let resource = s
        .store
        .get_resource(role.resource_id)
        .await?
        .ok_or_else(|| AppError::not_found("resource", role.resource_id))?;
    package::check_role_scope(&pkg, &role, &scope, resource.catalog_id)?;
    let now = s.clock.now();
    let rrs = ResourceRoleScope {
        id: ResourceRoleScopeId::new(),
        access_package_id: pkg.id,
        role_id: role.id,
        scope_id: scope.id,
        created_date_time: now,
    };
    // Entra records a role scope as a change of its package.
    let event = admin_event(cap, Activity::UpdatePackage, PACKAGE, pkg.id, now)
        .with_detail(format!("added resource role scope {} (role {}, scope {})", rrs.id, rrs.role_id, rrs.scope_id));
    s.store.add_role_scope(&rrs, &event).await?;
    Ok(rrs)
}

fn text_eq(schema: &'static Schema, path: &str, v: String) -> Result<Cond, AppError> {
    let field = schema.field(path).ok_or_else(|| AppError::Invalid(format!("unknown field {path}")))?;
    Ok(Cond::Cmp { field, op: CmpOp::Eq, value: Value::Text(v), lower: false })
}

async fn resolve_role(s: &Services, pkg: &AccessPackage, r: &RoleRef) -> Result<ResourceRole, AppError> {
    if let Some(id) = r.id {
        return s.store.get_resource_role(id).await?.ok_or_else(|| AppError::not_found("resource role", id));
    }
    let origin = r.origin_id.clone().ok_or_else(|| {
        AppError::Invalid(
            "role.id or role.originId is required (for a group: Member_<groupId> or Owner_<groupId>).".into(),
        )
    })?;
    let mut q = ListQuery::all(&RESOURCE_ROLES).and(text_eq(&RESOURCE_ROLES, "originId", origin.clone())?);
    if let Some(res) = r.resource_id {
        q = q.scoped("resource/id", res)?;
    }
    let roles = s.store.list_resource_roles(&q).await?.items;
    // Among roles with that origin, take the one whose resource is in the package's catalog.
    for role in roles {
        if let Some(res) = s.store.get_resource(role.resource_id).await?
            && res.catalog_id == pkg.catalog_id
        {
            return Ok(role);
        }
    }
    Err(AppError::Unprocessable(format!(
        "No resource role with originId '{}' is in the access package's catalog; add the resource to the catalog first.",
        steward_domain::text::clip(&origin, 80)
    )))
}

async fn resolve_scope(s: &Services, role: &ResourceRole, r: &ScopeRef) -> Result<ResourceScope, AppError> {
    if let Some(id) = r.id {
        return s.store.get_resource_scope(id).await?.ok_or_else(|| AppError::not_found("resource scope", id));
    }
    let q = ListQuery::all(&RESOURCE_SCOPES).scoped("resource/id", role.resource_id)?;
    let q = match &r.origin_id {
        Some(o) => q.and(text_eq(&RESOURCE_SCOPES, "originId", o.clone())?),
        None => q.and(Cond::Cmp {
            field: RESOURCE_SCOPES.field("isRootScope").ok_or_else(|| AppError::Invalid("isRootScope".into()))?,
            op: CmpOp::Eq,
            value: Value::Bool(true),
            lower: false,
        }),
    };
    s.store.list_resource_scopes(&q).await?.items.into_iter().next().ok_or_else(|| {
        AppError::Invalid(format!(
            "The resource of role '{}' has no scope with originId '{}'.",
            role.display_name,
            r.origin_id.as_deref().unwrap_or("(root)")
        ))
    })
}

pub async fn remove_role_scope(
    s: &Services,
    cap: CatalogCap,
    package: AccessPackageId,
    id: ResourceRoleScopeId,
) -> Result<(), AppError> {
    package_in(s, cap, package).await?;
    let event = admin_event(cap, Activity::UpdatePackage, PACKAGE, package, s.clock.now())
        .with_detail(format!("removed resource role scope {id}"));
    Ok(s.store.remove_role_scope(package, id, &event).await?)
}

pub async fn get_role_scope(
    s: &Services,
    scope: &CatalogScope,
    package: AccessPackageId,
    id: ResourceRoleScopeId,
) -> Result<ResourceRoleScope, AppError> {
    get_package(s, scope, package).await?;
    match s.store.get_role_scope(id).await? {
        Some(r) if r.access_package_id == package => Ok(r),
        _ => Err(AppError::not_found("resource role scope", id)),
    }
}

/// The package's resource role scopes (narrowed further by `q`).
pub async fn list_role_scopes(
    s: &Services,
    scope: &CatalogScope,
    package: AccessPackageId,
    q: &ListQuery,
) -> Result<Page<ResourceRoleScope>, AppError> {
    get_package(s, scope, package).await?;
    Ok(s.store.list_role_scopes(&q.clone().scoped("accessPackage/id", package)?).await?)
}

/// Refuses a resource of a catalog the caller may not read.
async fn check_resource(s: &Services, scope: &CatalogScope, resource: ResourceId) -> Result<(), AppError> {
    let r = s.store.get_resource(resource).await?.ok_or_else(|| AppError::not_found("resource", resource))?;
    scope.check(r.catalog_id)
}

pub async fn get_resource_role(
    s: &Services,
    scope: &CatalogScope,
    id: ResourceRoleId,
) -> Result<ResourceRole, AppError> {
    let r = s.store.get_resource_role(id).await?.ok_or_else(|| AppError::not_found("resource role", id))?;
    check_resource(s, scope, r.resource_id).await?;
    Ok(r)
}

pub async fn get_resource_scope(
    s: &Services,
    scope: &CatalogScope,
    id: ResourceScopeId,
) -> Result<ResourceScope, AppError> {
    let r = s.store.get_resource_scope(id).await?.ok_or_else(|| AppError::not_found("resource scope", id))?;
    check_resource(s, scope, r.resource_id).await?;
    Ok(r)
}

pub async fn add_incompatible_package(
    s: &Services,
    cap: CatalogCap,
    id: AccessPackageId,
    other: AccessPackageId,
) -> Result<(), AppError> {
    package::check_incompatible_package(id, other)?;
    package_in(s, cap, id).await?;
    require_package(s, other).await?;
    let event = admin_event(cap, Activity::CreateIncompatiblePackage, PACKAGE, id, s.clock.now())
        .with_detail(format!("incompatible access package {other}"));
    Ok(s.store.add_incompatible_package(id, other, &event).await?)
}

pub async fn remove_incompatible_package(
    s: &Services,
    cap: CatalogCap,
    id: AccessPackageId,
    other: AccessPackageId,
) -> Result<(), AppError> {
    package_in(s, cap, id).await?;
    let event = admin_event(cap, Activity::DeleteIncompatiblePackage, PACKAGE, id, s.clock.now())
        .with_detail(format!("incompatible access package {other}"));
    Ok(s.store.remove_incompatible_package(id, other, &event).await?)
}

pub async fn add_incompatible_group(
    s: &Services,
    cap: CatalogCap,
    id: AccessPackageId,
    group: GroupId,
) -> Result<(), AppError> {
    package_in(s, cap, id).await?;
    s.store.get_group(group).await?.ok_or_else(|| AppError::not_found("group", group))?;
    let event = admin_event(cap, Activity::CreateIncompatibleGroup, PACKAGE, id, s.clock.now())
        .with_detail(format!("incompatible group {group}"));
    Ok(s.store.add_incompatible_group(id, group, &event).await?)
}

pub async fn remove_incompatible_group(
    s: &Services,
    cap: CatalogCap,
    id: AccessPackageId,
    group: GroupId,
) -> Result<(), AppError> {
    package_in(s, cap, id).await?;
    let event = admin_event(cap, Activity::DeleteIncompatibleGroup, PACKAGE, id, s.clock.now())
        .with_detail(format!("incompatible group {group}"));
    Ok(s.store.remove_incompatible_group(id, group, &event).await?)
}
