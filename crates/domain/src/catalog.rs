//! Catalogs and their resources: what a catalog holds, how a directory group becomes a
//! resource with Member and Owner roles, and when a catalog or resource may be removed.

use jiff::Timestamp;
use serde::Serialize;

use crate::DomainError;
use crate::directory::Group;
use crate::enums::{CatalogState, CatalogType, RequestState, RequestType};
use crate::ids::{CatalogId, ResourceId, ResourceRequestId, ResourceRoleId, ResourceScopeId};
use crate::text::DisplayName;

/// The origin system of resources that are groups of Steward's own directory.
pub const ORIGIN_AAD_GROUP: &str = "AadGroup";

/// A container of resources and access packages.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub id: CatalogId,
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub catalog_type: CatalogType,
    pub state: CatalogState,
    pub is_externally_visible: bool,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
    #[serde(with = "crate::time::serde_ts")]
    pub modified_date_time: Timestamp,
}

/// Something access is granted on, added to one catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: ResourceId,
    #[serde(skip)]
    pub catalog_id: CatalogId,
    pub display_name: String,
    pub description: Option<String>,
    pub origin_id: String,
    pub origin_system: String,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
    #[serde(with = "crate::time::serde_ts")]
    pub modified_date_time: Timestamp,
}

/// A role on a resource (Member or Owner of a group).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRole {
    pub id: ResourceRoleId,
    #[serde(skip)]
    pub resource_id: ResourceId,
    pub display_name: String,
    pub description: Option<String>,
    pub origin_id: String,
    pub origin_system: String,
}

/// A scope of a resource; a group has a single root scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceScope {
    pub id: ResourceScopeId,
    #[serde(skip)]
    pub resource_id: ResourceId,
    pub display_name: String,
    pub description: Option<String>,
    pub origin_id: String,
    pub origin_system: String,
    pub is_root_scope: bool,
}

/// A request to add a resource to a catalog or remove it; Steward carries it out at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequest {
    pub id: ResourceRequestId,
    #[serde(skip)]
    pub catalog_id: CatalogId,
    #[serde(skip)]
    pub resource_id: Option<ResourceId>,
    pub request_type: RequestType,
    pub state: RequestState,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
}

/// A new catalog: user-managed unless said otherwise, published by default (as Graph does).
pub fn new_catalog(
    display_name: DisplayName,
    description: Option<String>,
    state: Option<CatalogState>,
    is_externally_visible: Option<bool>,
    now: Timestamp,
) -> Catalog {
    Catalog {
        id: CatalogId::new(),
        display_name,
        description,
        catalog_type: CatalogType::UserManaged,
        state: state.unwrap_or(CatalogState::Published),
        is_externally_visible: is_externally_visible.unwrap_or(false),
        created_date_time: now,
        modified_date_time: now,
    }
}

/// A resource as it is added to a catalog, with its roles and its one root scope: a group of
/// the directory (`group_resource`) or an object reached through a connection
/// (`connected_resource`).
pub struct GroupResource {
    pub resource: Resource,
    pub roles: Vec<ResourceRole>,
    pub scope: ResourceScope,
}

pub fn group_resource(catalog: CatalogId, group: &Group, now: Timestamp) -> GroupResource {
    let rid = ResourceId::new();
    let gid = group.id.to_string();
    let role = |name: &str| ResourceRole {
        id: ResourceRoleId::new(),
        resource_id: rid,
        display_name: name.to_owned(),
        description: None,
        origin_id: format!("{name}_{gid}"),
        origin_system: ORIGIN_AAD_GROUP.to_owned(),
    };
    GroupResource {
        resource: Resource {
            id: rid,
            catalog_id: catalog,
            display_name: group.display_name.as_str().to_owned(),
            description: group.description.clone(),
            origin_id: gid.clone(),
            origin_system: ORIGIN_AAD_GROUP.to_owned(),
            created_date_time: now,
            modified_date_time: now,
        },
        roles: vec![role("Member"), role("Owner")],
        scope: ResourceScope {
            id: ResourceScopeId::new(),
            resource_id: rid,
            display_name: "Root".to_owned(),
            description: Some("Root scope".to_owned()),
            origin_id: gid,
            origin_system: ORIGIN_AAD_GROUP.to_owned(),
            is_root_scope: true,
        },
    }
}

/// An object of a connection's target (`origin_id` is `<connection id>:<object>`) as a catalog
/// resource, with the roles its connector discovered (origin id and name each).
pub fn connected_resource(
    catalog: CatalogId,
    origin_system: &str,
    origin_id: &str,
    display_name: &str,
    roles: &[(String, String)],
    now: Timestamp,
) -> GroupResource {
    let rid = ResourceId::new();
    GroupResource {
        resource: Resource {
            id: rid,
            catalog_id: catalog,
            display_name: display_name.to_owned(),
            description: None,
            origin_id: origin_id.to_owned(),
            origin_system: origin_system.to_owned(),
            created_date_time: now,
            modified_date_time: now,
        },
        roles: roles
            .iter()
            .map(|(role_origin, name)| ResourceRole {
                id: ResourceRoleId::new(),
                resource_id: rid,
                display_name: name.clone(),
                description: None,
                origin_id: role_origin.clone(),
                origin_system: origin_system.to_owned(),
            })
            .collect(),
        scope: ResourceScope {
            id: ResourceScopeId::new(),
            resource_id: rid,
            display_name: "Root".to_owned(),
            description: Some("Root scope".to_owned()),
            origin_id: origin_id.to_owned(),
            origin_system: origin_system.to_owned(),
            is_root_scope: true,
        },
    }
}

/// The origin systems Steward can add to a catalog today, by their canonical spelling: the
/// directory's groups, and the objects of each kind of connection.
pub fn check_origin_system(origin_system: &str) -> Result<&'static str, DomainError> {
    let known = [ORIGIN_AAD_GROUP]
        .into_iter()
        .chain(crate::enums::ConnectionKind::ALL.iter().map(|k| crate::connection::origin_system(*k)));
    let all: Vec<&'static str> = known.clone().collect();
    known.into_iter().find(|k| k.eq_ignore_ascii_case(origin_system)).ok_or_else(|| {
        DomainError::invalid(format!(
            "originSystem '{}' is not supported; supported: {}.",
            crate::text::clip(origin_system, 64),
            all.join(", ")
        ))
    })
}

/// A catalog can be deleted only once its access packages are gone (its resources go with it).
pub fn check_catalog_deletable(packages: u64) -> Result<(), DomainError> {
    if packages == 0 {
        Ok(())
    } else {
        Err(DomainError::conflict(format!(
            "The catalog still holds {packages} access package(s); delete them before deleting the catalog."
        )))
    }
}

/// A resource can leave its catalog only when no access package grants one of its roles.
pub fn check_resource_removable(role_scopes_in_use: u64) -> Result<(), DomainError> {
    if role_scopes_in_use == 0 {
        Ok(())
    } else {
        Err(DomainError::conflict(format!(
            "The resource is used by {role_scopes_in_use} access package resource role scope(s); remove them before removing the resource."
        )))
    }
}

/// The resource request types Steward carries out on catalogs.
pub fn check_resource_request_type(t: RequestType) -> Result<(), DomainError> {
    match t {
        RequestType::AdminAdd | RequestType::AdminRemove => Ok(()),
        other => Err(DomainError::invalid(format!(
            "requestType '{other}' is not supported for resource requests; use adminAdd or adminRemove."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::GroupId;

    fn group() -> Group {
        Group {
            id: GroupId::new(),
            display_name: DisplayName::parse("Sales").unwrap(),
            description: Some("Sales team".into()),
            mail_nickname: "sales".into(),
            mail_enabled: false,
            security_enabled: true,
            created_date_time: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn group_becomes_resource_with_member_and_owner() {
        let g = group();
        let r = group_resource(CatalogId::new(), &g, Timestamp::UNIX_EPOCH);
        assert_eq!(r.resource.origin_id, g.id.to_string());
        assert_eq!(r.resource.display_name, "Sales");
        let names: Vec<_> = r.roles.iter().map(|x| x.display_name.as_str()).collect();
        assert_eq!(names, ["Member", "Owner"]);
        assert_eq!(r.roles[0].origin_id, format!("Member_{}", g.id));
        assert!(r.scope.is_root_scope);
        assert!(r.roles.iter().all(|x| x.resource_id == r.resource.id));
    }

    #[test]
    fn deletion_rules() {
        assert!(check_catalog_deletable(0).is_ok());
        assert!(matches!(check_catalog_deletable(2), Err(DomainError::Conflict(_))));
        assert!(check_resource_removable(0).is_ok());
        assert!(check_resource_removable(1).is_err());
        assert!(check_resource_request_type(RequestType::AdminAdd).is_ok());
        assert!(check_resource_request_type(RequestType::UserAdd).is_err());
        assert_eq!(check_origin_system("aadgroup").unwrap(), "AadGroup");
        assert_eq!(check_origin_system("postgresqlrole").unwrap(), "PostgreSqlRole");
        assert!(check_origin_system("SharePointOnline").is_err());
    }

    #[test]
    fn defaults_follow_graph() {
        let c = new_catalog(DisplayName::parse("HR").unwrap(), None, None, None, Timestamp::UNIX_EPOCH);
        assert_eq!(c.state, CatalogState::Published);
        assert_eq!(c.catalog_type, CatalogType::UserManaged);
        assert!(!c.is_externally_visible);
    }
}
