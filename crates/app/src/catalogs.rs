//! Use cases of catalogs and their resources: create, change and delete catalogs; add a
//! directory group to a catalog (and take it out again) through resource requests.

use steward_domain::audit::Activity;
use steward_domain::catalog::{self, Catalog, Resource, ResourceRequest, ResourceRole, ResourceScope};
use steward_domain::enums::{CatalogState, RequestState, RequestType};
use steward_domain::ids::{CatalogId, GroupId, ResourceId, ResourceRequestId};
use steward_domain::role::Task;
use steward_domain::text::{DESCRIPTION_MAX, DisplayName, bounded};

use crate::audit::{CATALOG, RESOURCE_REQUEST, admin_event, named, with_changes};
use crate::auth::{CatalogCap, CatalogScope, CreatorCap};
use crate::ports::Page;
use crate::query::{ListQuery, RESOURCES, Relation};
use crate::{AppError, Services};
use steward_domain::role::{AppScope, Role, RoleAssignment};

#[derive(Debug, Clone)]
pub struct NewCatalog {
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub state: Option<CatalogState>,
    pub is_externally_visible: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct CatalogPatch {
    pub display_name: Option<DisplayName>,
    pub description: Option<Option<String>>,
    pub state: Option<CatalogState>,
    pub is_externally_visible: Option<bool>,
}

/// Creates a catalog; a catalog creator who is not an administrator becomes its first owner,
/// in the same transaction.
pub async fn create_catalog(s: &Services, cap: CreatorCap, new: NewCatalog) -> Result<Catalog, AppError> {
    let description = bounded("description", new.description, DESCRIPTION_MAX)?;
    let now = s.clock.now();
    let c = catalog::new_catalog(new.display_name, description, new.state, new.is_externally_visible, now);
    let owner = cap.owner.map(|u| RoleAssignment::new(u, Role::CatalogOwner, AppScope::Catalog(c.id))).transpose()?;
    let event =
        admin_event(cap, Activity::CreateCatalog, CATALOG, c.id, now).with_detail(named(c.display_name.as_str()));
    s.store.insert_catalog(&c, owner.as_ref(), &event).await?;
    Ok(c)
}

pub async fn require_catalog(s: &Services, id: CatalogId) -> Result<Catalog, AppError> {
    s.store.get_catalog(id).await?.ok_or_else(|| AppError::not_found("catalog", id))
}

pub async fn get_catalog(s: &Services, cap: CatalogCap) -> Result<Catalog, AppError> {
    require_catalog(s, cap.catalog()).await
}

/// The catalogs the caller may read.
pub async fn list_catalogs(s: &Services, scope: &CatalogScope, q: &ListQuery) -> Result<Page<Catalog>, AppError> {
    Ok(s.store.list_catalogs(&q.clone().within(scope, "id")?).await?)
}

/// Applies a patch; `if_match` (an ETag) makes it conditional. Concurrent writers never lose
/// each other's changes: the write only lands on the version it read, else it re-reads.
pub async fn update_catalog(
    s: &Services,
    cap: CatalogCap,
    p: CatalogPatch,
    if_match: Option<&str>,
) -> Result<Catalog, AppError> {
    cap.require(Task::EditCatalog)?;
    let description = p.description.map(|d| bounded("description", d, DESCRIPTION_MAX)).transpose()?;
    let id = cap.catalog();
    for _ in 0..crate::WRITE_ATTEMPTS {
        let before = require_catalog(s, id).await?;
        crate::check_if_match(if_match, "catalog", before.modified_date_time)?;
        let mut c = before.clone();
        let read_at = c.modified_date_time;
        if let Some(v) = &p.display_name {
            c.display_name = v.clone();
        }
        if let Some(v) = &description {
            c.description = v.clone();
        }
        if let Some(v) = p.state {
            c.state = v;
        }
        if let Some(v) = p.is_externally_visible {
            c.is_externally_visible = v;
        }
        let now = s.clock.now();
        c.modified_date_time = steward_domain::time::next_modified(read_at, now);
        let event = with_changes(admin_event(cap, Activity::UpdateCatalog, CATALOG, id, now), &before, &c);
        match s.store.update_catalog(&c, read_at, &event).await {
            Ok(()) => return Ok(c),
            Err(e) => crate::lost_race(e, if_match, "catalog")?,
        }
    }
    Err(AppError::Conflict("The catalog kept changing while it was being updated; try again.".into()))
}

pub async fn delete_catalog(s: &Services, cap: CatalogCap, if_match: Option<&str>) -> Result<(), AppError> {
    cap.require(Task::EditCatalog)?;
    let id = cap.catalog();
    if if_match.is_some() {
        let c = require_catalog(s, id).await?;
        crate::check_if_match(if_match, "catalog", c.modified_date_time)?;
    }
    let event = admin_event(cap, Activity::DeleteCatalog, CATALOG, id, s.clock.now());
    Ok(s.store.delete_catalog(id, &event).await?)
}

/// How a resource request names its resource: by Steward id, or by origin.
#[derive(Debug, Clone, Default)]
pub struct ResourceRef {
    pub id: Option<ResourceId>,
    pub origin_id: Option<String>,
    pub origin_system: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewResourceRequest {
    pub request_type: RequestType,
    pub catalog_id: CatalogId,
    pub resource: ResourceRef,
}

/// Carries out an `adminAdd` or `adminRemove` at once and returns the delivered request.
pub async fn request_resource(
    s: &Services,
    cap: CatalogCap,
    r: NewResourceRequest,
) -> Result<ResourceRequest, AppError> {
    cap.require(Task::EditCatalog)?;
    cap.covers(r.catalog_id)?;
    catalog::check_resource_request_type(r.request_type)?;
    require_catalog(s, r.catalog_id).await?;
    let now = s.clock.now();
    match r.request_type {
        RequestType::AdminAdd => {
            let origin_system = r.resource.origin_system.as_deref().unwrap_or(catalog::ORIGIN_AAD_GROUP);
            let origin_system = catalog::check_origin_system(origin_system)?;
            let origin = r.resource.origin_id.ok_or_else(|| {
                AppError::Invalid(
                    "resource.originId is required for adminAdd: the id of the group, or the originId a \
                     connection's discovery gave."
                        .into(),
                )
            })?;
            let added = if origin_system == catalog::ORIGIN_AAD_GROUP {
                let gid: GroupId = origin.parse()?;
                let group = s.store.get_group(gid).await?.ok_or_else(|| AppError::not_found("group", gid))?;
                catalog::group_resource(r.catalog_id, &group, now)
            } else {
                let found = crate::connections::find_object(s, origin_system, &origin).await?;
                catalog::connected_resource(
                    r.catalog_id,
                    origin_system,
                    &origin,
                    &found.display_name,
                    &found.roles,
                    now,
                )
            };
            let request = ResourceRequest {
                id: ResourceRequestId::new(),
                catalog_id: r.catalog_id,
                resource_id: Some(added.resource.id),
                request_type: RequestType::AdminAdd,
                state: RequestState::Delivered,
                created_date_time: now,
            };
            let event = admin_event(cap, Activity::CreateResourceRequest, RESOURCE_REQUEST, request.id, now)
                .with_detail(resource_detail(&added.resource, "added to"));
            s.store.add_resource(&added, &request, &event).await?;
            Ok(request)
        }
        _ => {
            let resource = find_resource(s, r.catalog_id, &r.resource).await?;
            let request = ResourceRequest {
                id: ResourceRequestId::new(),
                catalog_id: r.catalog_id,
                resource_id: Some(resource.id),
                request_type: RequestType::AdminRemove,
                state: RequestState::Delivered,
                created_date_time: now,
            };
            let event = admin_event(cap, Activity::CreateResourceRemoveRequest, RESOURCE_REQUEST, request.id, now)
                .with_detail(resource_detail(&resource, "removed from"));
            s.store.remove_resource(resource.id, &request, &event).await?;
            Ok(request)
        }
    }
}

/// What a resource request did, for its audit event.
fn resource_detail(r: &Resource, what: &str) -> String {
    format!(
        "resource {} ({} {}) {what} catalog {}",
        r.id,
        r.origin_system,
        steward_domain::text::clip(&r.origin_id, 80),
        r.catalog_id
    )
}

/// The catalog's resource named by id or by origin id.
async fn find_resource(s: &Services, catalog: CatalogId, r: &ResourceRef) -> Result<Resource, AppError> {
    if let Some(id) = r.id {
        return match s.store.get_resource(id).await? {
            Some(res) if res.catalog_id == catalog => Ok(res),
            _ => Err(AppError::not_found("resource", id)),
        };
    }
    let origin = r
        .origin_id
        .as_deref()
        .ok_or_else(|| AppError::Invalid("resource.id or resource.originId is required for adminRemove.".into()))?;
    let q = ListQuery::all(&RESOURCES).scoped("catalog/id", catalog)?;
    let q = q.and(crate::query::Cond::Cmp {
        field: RESOURCES.field("originId").ok_or_else(|| AppError::Invalid("originId".into()))?,
        op: steward_odata::CmpOp::Eq,
        value: crate::query::Value::Text(origin.to_owned()),
        lower: false,
    });
    let page = s.store.list_resources(&q).await?;
    page.items.into_iter().next().ok_or_else(|| AppError::not_found("resource", origin))
}

/// The resources of the catalogs the caller may read.
pub async fn list_resources(s: &Services, scope: &CatalogScope, q: &ListQuery) -> Result<Page<Resource>, AppError> {
    Ok(s.store.list_resources(&q.clone().within(scope, "catalog/id")?).await?)
}

pub async fn get_resource(s: &Services, scope: &CatalogScope, id: ResourceId) -> Result<Resource, AppError> {
    let r = s.store.get_resource(id).await?.ok_or_else(|| AppError::not_found("resource", id))?;
    scope.check(r.catalog_id)?;
    Ok(r)
}

/// The roles of the catalog's resources (narrowed further by `q`).
pub async fn list_resource_roles(s: &Services, cap: CatalogCap, q: &ListQuery) -> Result<Page<ResourceRole>, AppError> {
    Ok(s.store.list_resource_roles(&q.clone().related(Relation::CatalogRoles, cap.catalog())).await?)
}

/// The scopes of the catalog's resources (narrowed further by `q`).
pub async fn list_resource_scopes(
    s: &Services,
    cap: CatalogCap,
    q: &ListQuery,
) -> Result<Page<ResourceScope>, AppError> {
    Ok(s.store.list_resource_scopes(&q.clone().related(Relation::CatalogScopes, cap.catalog())).await?)
}

/// The resource requests of the catalogs the caller may read.
pub async fn list_resource_requests(
    s: &Services,
    scope: &CatalogScope,
    q: &ListQuery,
) -> Result<Page<ResourceRequest>, AppError> {
    Ok(s.store.list_resource_requests(&q.clone().within(scope, "catalog/id")?).await?)
}
