//! Access packages: the bundle of resource roles, its role scopes, and separation of duties
//! through incompatible packages and groups.

use jiff::Timestamp;
use serde::Serialize;

use crate::DomainError;
use crate::catalog::{ResourceRole, ResourceScope};
use crate::ids::{AccessPackageId, CatalogId, ResourceRoleId, ResourceRoleScopeId, ResourceScopeId};
use crate::text::DisplayName;

/// A named bundle of resource roles in one catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPackage {
    pub id: AccessPackageId,
    #[serde(skip)]
    pub catalog_id: CatalogId,
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub is_hidden: bool,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
    #[serde(with = "crate::time::serde_ts")]
    pub modified_date_time: Timestamp,
}

/// One resource role (at one scope) that an access package grants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRoleScope {
    pub id: ResourceRoleScopeId,
    #[serde(skip)]
    pub access_package_id: AccessPackageId,
    #[serde(skip)]
    pub role_id: ResourceRoleId,
    #[serde(skip)]
    pub scope_id: ResourceScopeId,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
}

/// The role and scope to grant must be of the same resource, and that resource must be in the
/// package's catalog; `resource_catalog` is the catalog of the role's resource.
pub fn check_role_scope(
    package: &AccessPackage,
    role: &ResourceRole,
    scope: &ResourceScope,
    resource_catalog: CatalogId,
) -> Result<(), DomainError> {
    if resource_catalog != package.catalog_id {
        return Err(DomainError::rule(
            "The role's resource is not in the access package's catalog; add the resource to that catalog first.",
        ));
    }
    if role.resource_id != scope.resource_id {
        return Err(DomainError::rule("The role and the scope belong to different resources."));
    }
    Ok(())
}

/// A package stays in the catalog it was created in.
pub fn check_same_catalog(package: &AccessPackage, catalog: CatalogId) -> Result<(), DomainError> {
    if package.catalog_id == catalog {
        Ok(())
    } else {
        Err(DomainError::rule("An access package cannot be moved to another catalog."))
    }
}

/// A package cannot be declared incompatible with itself.
pub fn check_incompatible_package(package: AccessPackageId, other: AccessPackageId) -> Result<(), DomainError> {
    if package == other {
        Err(DomainError::rule("An access package cannot be incompatible with itself."))
    } else {
        Ok(())
    }
}

/// What still hangs on a package when someone asks to delete it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackageContent {
    pub assignment_policies: u64,
    pub active_assignments: u64,
}

/// As in Graph, a package is deleted only once it has no assignments and no policies; its role
/// scopes and incompatibility references go with it.
pub fn check_package_deletable(content: PackageContent) -> Result<(), DomainError> {
    if content.active_assignments > 0 {
        return Err(DomainError::conflict(format!(
            "The access package has {} active assignment(s); remove them before deleting the package.",
            content.active_assignments
        )));
    }
    if content.assignment_policies > 0 {
        return Err(DomainError::conflict(format!(
            "The access package has {} assignment polic(ies); delete them before deleting the package.",
            content.assignment_policies
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ResourceId;

    fn package(catalog: CatalogId) -> AccessPackage {
        AccessPackage {
            id: AccessPackageId::new(),
            catalog_id: catalog,
            display_name: DisplayName::parse("P").unwrap(),
            description: None,
            is_hidden: false,
            created_date_time: Timestamp::UNIX_EPOCH,
            modified_date_time: Timestamp::UNIX_EPOCH,
        }
    }

    fn role(resource: ResourceId) -> ResourceRole {
        ResourceRole {
            id: ResourceRoleId::new(),
            resource_id: resource,
            display_name: "Member".into(),
            description: None,
            origin_id: "Member_x".into(),
            origin_system: "AadGroup".into(),
        }
    }

    fn scope(resource: ResourceId) -> ResourceScope {
        ResourceScope {
            id: ResourceScopeId::new(),
            resource_id: resource,
            display_name: "Root".into(),
            description: None,
            origin_id: "x".into(),
            origin_system: "AadGroup".into(),
            is_root_scope: true,
        }
    }

    #[test]
    fn role_scope_must_match_catalog_and_resource() {
        let cat = CatalogId::new();
        let p = package(cat);
        let r = ResourceId::new();
        assert!(check_role_scope(&p, &role(r), &scope(r), cat).is_ok());
        assert!(check_role_scope(&p, &role(r), &scope(r), CatalogId::new()).is_err());
        assert!(check_role_scope(&p, &role(r), &scope(ResourceId::new()), cat).is_err());
    }

    #[test]
    fn incompatibility_and_deletion() {
        let a = AccessPackageId::new();
        assert!(check_incompatible_package(a, a).is_err());
        let p = package(CatalogId::new());
        assert!(check_same_catalog(&p, p.catalog_id).is_ok());
        assert!(matches!(check_same_catalog(&p, CatalogId::new()), Err(DomainError::Rule(_))));
        assert!(check_incompatible_package(a, AccessPackageId::new()).is_ok());
        assert!(check_package_deletable(PackageContent::default()).is_ok());
        let busy = PackageContent { assignment_policies: 0, active_assignments: 3 };
        assert!(matches!(check_package_deletable(busy), Err(DomainError::Conflict(_))));
    }
}
