//! Delegated administration: Entra entitlement management's built-in roles (with Graph's role
//! definition ids), the tasks each allows, where a role applies (the whole service or one
//! catalog), and role assignments with their checks.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::DomainError;
use crate::ids::{CatalogId, RoleAssignmentId, UserId};

/// A built-in entitlement-management role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, everywhere: Steward's own administrator (Entra: Identity Governance
    /// Administrator, a directory role; here a role of this provider with an id of Steward's).
    Administrator,
    /// Creates catalogs, and becomes the first owner of each one created; sees no other catalog.
    CatalogCreator,
    /// Edits and manages one catalog: its resources, packages, policies, assignments and roles.
    CatalogOwner,
    /// Views one catalog's packages, resources and policies.
    CatalogReader,
    /// Edits and manages all access packages of one catalog, and their assignments.
    AccessPackageManager,
    /// Manages the assignments of one catalog's access packages.
    AccessPackageAssignmentManager,
}

/// What a caller may want to do; each role allows some of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Service-wide administration: connections, API tokens, directory writes, connected
    /// organizations, settings, role assignments outside catalogs.
    Administer,
    /// Create a catalog.
    CreateCatalog,
    /// Read a catalog and what it holds: resources, packages, policies, custom extensions.
    ReadCatalog,
    /// Edit or delete the catalog, add or remove its resources and custom extensions.
    EditCatalog,
    /// Assign and remove the catalog's roles (owners, readers, managers).
    DelegateCatalog,
    /// Create, edit and delete the catalog's access packages, their resource roles,
    /// incompatibilities and policies.
    ManagePackages,
    /// See who has access and what was requested; assign and remove directly, reprocess,
    /// cancel.
    ManageAssignments,
}

impl Task {
    /// Whether the task concerns one catalog (as opposed to the whole service).
    pub fn in_catalog(self) -> bool {
        !matches!(self, Self::Administer | Self::CreateCatalog)
    }

    /// Plain words for error messages ("manage the catalog's access packages").
    pub fn describe(self) -> &'static str {
        match self {
            Self::Administer => "administer Steward",
            Self::CreateCatalog => "create catalogs",
            Self::ReadCatalog => "read the catalog",
            Self::EditCatalog => "edit the catalog",
            Self::DelegateCatalog => "assign the catalog's roles",
            Self::ManagePackages => "manage the catalog's access packages",
            Self::ManageAssignments => "manage the assignments of the catalog's access packages",
        }
    }
}

impl Role {
    pub const ALL: [Role; 6] = [
        Self::Administrator,
        Self::CatalogCreator,
        Self::CatalogOwner,
        Self::CatalogReader,
        Self::AccessPackageManager,
        Self::AccessPackageAssignmentManager,
    ];

    /// The role definition id. Graph's ids for the five entitlement-management roles; the
    /// administrator, which Entra models as a directory role, has one of Steward's.
    pub fn id(self) -> &'static str {
        match self {
            Self::Administrator => "5e3f5c8e-7a8b-4d2e-9f1a-57e3a4d0a001",
            Self::CatalogCreator => "ba92d953-d8e0-4e39-a797-0cbedb0a89e8",
            Self::CatalogOwner => "ae79f266-94d4-4dab-b730-feca7e132178",
            Self::CatalogReader => "44272f93-9762-48e8-af59-1b5351b1d6b3",
            Self::AccessPackageManager => "7f480852-ebdc-47d4-87de-0d8498384a83",
            Self::AccessPackageAssignmentManager => "e2182095-804a-4656-ae11-64734e9b7ae5",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Self::Administrator => "Steward administrator",
            Self::CatalogCreator => "Catalog creator",
            Self::CatalogOwner => "Catalog owner",
            Self::CatalogReader => "Catalog reader",
            Self::AccessPackageManager => "Access package manager",
            Self::AccessPackageAssignmentManager => "Access package assignment manager",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Administrator => "Manage everything in Steward, including connections, tokens and delegation.",
            Self::CatalogCreator => "Create catalogs; the creator becomes the catalog's first owner.",
            Self::CatalogOwner => "Edit and manage an existing catalog, its access packages and their assignments.",
            Self::CatalogReader => "View the existing access packages within a catalog.",
            Self::AccessPackageManager => "Edit and manage all existing access packages within a catalog.",
            Self::AccessPackageAssignmentManager => "Edit and manage all existing access packages' assignments.",
        }
    }

    /// Whether the role is assigned on one catalog (`/AccessPackageCatalog/{id}`) rather than on
    /// the whole service (`/`).
    pub fn catalog_scoped(self) -> bool {
        !matches!(self, Self::Administrator | Self::CatalogCreator)
    }

    /// The tasks the role allows (where it is assigned).
    pub fn allows(self, task: Task) -> bool {
        use Task as T;
        match self {
            Self::Administrator => true,
            Self::CatalogCreator => matches!(task, T::CreateCatalog),
            Self::CatalogOwner => !matches!(task, T::Administer | T::CreateCatalog),
            Self::CatalogReader => matches!(task, T::ReadCatalog),
            Self::AccessPackageManager => matches!(task, T::ReadCatalog | T::ManagePackages | T::ManageAssignments),
            Self::AccessPackageAssignmentManager => matches!(task, T::ReadCatalog | T::ManageAssignments),
        }
    }

    /// The Graph resource actions the role's definition lists (`rolePermissions`).
    pub fn resource_actions(self) -> &'static [&'static str] {
        match self {
            Self::Administrator => &["microsoft.entitlementManagement/allEntities/allTasks"],
            Self::CatalogCreator => &["microsoft.entitlementManagement/accessPackageCatalog/create"],
            Self::CatalogOwner => &["microsoft.entitlementManagement/allEntities/allTasks"],
            Self::CatalogReader => &["microsoft.entitlementManagement/allEntities/read"],
            Self::AccessPackageManager => &[
                "microsoft.entitlementManagement/accessPackage/allTasks",
                "microsoft.entitlementManagement/accessPackageAssignmentPolicy/allTasks",
                "microsoft.entitlementManagement/accessPackageAssignment/allTasks",
                "microsoft.entitlementManagement/accessPackageAssignmentRequest/allTasks",
                "microsoft.entitlementManagement/accessPackageCatalog/read",
            ],
            Self::AccessPackageAssignmentManager => &[
                "microsoft.entitlementManagement/accessPackageAssignment/allTasks",
                "microsoft.entitlementManagement/accessPackageAssignmentRequest/allTasks",
                "microsoft.entitlementManagement/accessPackage/read",
                "microsoft.entitlementManagement/accessPackageCatalog/read",
            ],
        }
    }
}

impl FromStr for Role {
    type Err = DomainError;
    /// By role definition id (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::ALL.into_iter().find(|r| r.id().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            DomainError::invalid(format!(
                "Unknown roleDefinitionId '{s}': list /roleManagement/entitlementManagement/roleDefinitions for the roles."
            ))
        })
    }
}

/// Where a role assignment applies (Graph's `appScopeId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppScope {
    /// `/`: the whole service.
    Tenant,
    /// `/AccessPackageCatalog/{id}`.
    Catalog(CatalogId),
}

const CATALOG_SCOPE: &str = "/AccessPackageCatalog/";

impl fmt::Display for AppScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tenant => f.write_str("/"),
            Self::Catalog(c) => write!(f, "{CATALOG_SCOPE}{c}"),
        }
    }
}

impl FromStr for AppScope {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if s == "/" {
            return Ok(Self::Tenant);
        }
        let tail = s
            .get(..CATALOG_SCOPE.len())
            .filter(|head| head.eq_ignore_ascii_case(CATALOG_SCOPE))
            .and_then(|_| s.get(CATALOG_SCOPE.len()..));
        match tail {
            Some(id) => Ok(Self::Catalog(id.parse()?)),
            None => Err(DomainError::invalid(format!(
                "Invalid appScopeId '{s}': use '/' for the whole service or '/AccessPackageCatalog/{{catalogId}}'."
            ))),
        }
    }
}

/// One role given to one user where it applies (Graph's `unifiedRoleAssignment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub id: RoleAssignmentId,
    pub principal: UserId,
    pub role: Role,
    pub scope: AppScope,
}

impl RoleAssignment {
    /// A checked assignment: catalog roles apply to one catalog, the others to the service.
    pub fn new(principal: UserId, role: Role, scope: AppScope) -> Result<Self, DomainError> {
        match (role.catalog_scoped(), scope) {
            (true, AppScope::Tenant) => Err(DomainError::invalid(format!(
                "The {} role applies to one catalog: set appScopeId to '/AccessPackageCatalog/{{catalogId}}'.",
                role.display_name()
            ))),
            (false, AppScope::Catalog(_)) => Err(DomainError::invalid(format!(
                "The {} role applies to the whole service: set appScopeId to '/'.",
                role.display_name()
            ))),
            _ => Ok(Self { id: RoleAssignmentId::new(), principal, role, scope }),
        }
    }
}

/// Everything one user may do through their role assignments, resolved once per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    service: Vec<Role>,
    catalogs: BTreeMap<CatalogId, Vec<Role>>,
}

impl Grants {
    pub fn from_assignments<'a>(assignments: impl IntoIterator<Item = &'a RoleAssignment>) -> Self {
        let mut g = Self::default();
        for a in assignments {
            let roles = match a.scope {
                AppScope::Tenant => &mut g.service,
                AppScope::Catalog(c) => g.catalogs.entry(c).or_default(),
            };
            if !roles.contains(&a.role) {
                roles.push(a.role);
            }
        }
        g
    }

    /// Exactly one role, where it applies (a role-scoped token).
    pub fn single(role: Role, scope: AppScope) -> Self {
        let mut g = Self::default();
        match scope {
            AppScope::Tenant => g.service.push(role),
            AppScope::Catalog(c) => {
                g.catalogs.insert(c, vec![role]);
            }
        }
        g
    }

    /// Grants of the service-wide administrator.
    pub fn administrator() -> Self {
        Self { service: vec![Role::Administrator], catalogs: BTreeMap::new() }
    }

    pub fn is_administrator(&self) -> bool {
        self.service.contains(&Role::Administrator)
    }

    /// Whether the task is allowed service-wide (for catalog tasks: in every catalog).
    pub fn allows_everywhere(&self, task: Task) -> bool {
        self.service.iter().any(|r| r.allows(task))
    }

    /// Whether the task is allowed in this catalog.
    pub fn allows_in(&self, catalog: CatalogId, task: Task) -> bool {
        self.allows_everywhere(task) || self.catalogs.get(&catalog).is_some_and(|rs| rs.iter().any(|r| r.allows(task)))
    }

    /// Whether the task is allowed anywhere at all: a caller for whom this is false is refused
    /// before any data is read.
    pub fn allows_somewhere(&self, task: Task) -> bool {
        self.allows_everywhere(task) || self.catalogs.values().any(|rs| rs.iter().any(|r| r.allows(task)))
    }

    /// The catalogs in which the task is allowed; `None` when it is allowed in all of them.
    pub fn catalogs_for(&self, task: Task) -> Option<Vec<CatalogId>> {
        if self.allows_everywhere(task) {
            return None;
        }
        Some(self.catalogs.iter().filter(|(_, rs)| rs.iter().any(|r| r.allows(task))).map(|(c, _)| *c).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_round_trip_and_unknown_ids_are_refused() {
        for r in Role::ALL {
            assert_eq!(r.id().parse::<Role>().unwrap(), r);
            assert_eq!(r.id().to_uppercase().parse::<Role>().unwrap(), r);
        }
        assert!("00000000-0000-0000-0000-000000000000".parse::<Role>().is_err());
    }

    #[test]
    fn app_scopes_parse_and_print() {
        let c = CatalogId::new();
        assert_eq!("/".parse::<AppScope>().unwrap(), AppScope::Tenant);
        let s = format!("/AccessPackageCatalog/{c}");
        assert_eq!(s.parse::<AppScope>().unwrap(), AppScope::Catalog(c));
        assert_eq!(AppScope::Catalog(c).to_string(), s);
        assert_eq!(format!("/accesspackagecatalog/{c}").parse::<AppScope>().unwrap(), AppScope::Catalog(c));
        for bad in ["", "/x", "/AccessPackageCatalog/", "/AccessPackageCatalog/nope", "AccessPackageCatalog/x"] {
            assert!(bad.parse::<AppScope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_apply_where_they_belong() {
        let u = UserId::new();
        let c = AppScope::Catalog(CatalogId::new());
        assert!(RoleAssignment::new(u, Role::CatalogOwner, c).is_ok());
        assert!(RoleAssignment::new(u, Role::CatalogOwner, AppScope::Tenant).is_err());
        assert!(RoleAssignment::new(u, Role::CatalogCreator, AppScope::Tenant).is_ok());
        assert!(RoleAssignment::new(u, Role::Administrator, c).is_err());
    }

    #[test]
    fn grants_follow_entras_task_table() {
        let u = UserId::new();
        let (mine, other) = (CatalogId::new(), CatalogId::new());
        let grant = |role| Grants::from_assignments(&[RoleAssignment::new(u, role, AppScope::Catalog(mine)).unwrap()]);
        let owner = grant(Role::CatalogOwner);
        for t in
            [Task::ReadCatalog, Task::EditCatalog, Task::DelegateCatalog, Task::ManagePackages, Task::ManageAssignments]
        {
            assert!(owner.allows_in(mine, t));
            assert!(!owner.allows_in(other, t));
        }
        assert!(!owner.allows_somewhere(Task::Administer));
        assert!(!owner.allows_somewhere(Task::CreateCatalog));
        assert_eq!(owner.catalogs_for(Task::ReadCatalog), Some(vec![mine]));

        let reader = grant(Role::CatalogReader);
        assert!(reader.allows_in(mine, Task::ReadCatalog));
        assert!(!reader.allows_in(mine, Task::ManagePackages));
        assert!(!reader.allows_in(mine, Task::ManageAssignments));

        let manager = grant(Role::AccessPackageManager);
        assert!(manager.allows_in(mine, Task::ManagePackages));
        assert!(manager.allows_in(mine, Task::ManageAssignments));
        assert!(!manager.allows_in(mine, Task::EditCatalog));
        assert!(!manager.allows_in(mine, Task::DelegateCatalog));

        let assigner = grant(Role::AccessPackageAssignmentManager);
        assert!(assigner.allows_in(mine, Task::ManageAssignments));
        assert!(!assigner.allows_in(mine, Task::ManagePackages));

        let creator =
            Grants::from_assignments(&[RoleAssignment::new(u, Role::CatalogCreator, AppScope::Tenant).unwrap()]);
        assert!(creator.allows_everywhere(Task::CreateCatalog));
        assert!(!creator.allows_somewhere(Task::ReadCatalog));

        let admin = Grants::administrator();
        assert!(admin.is_administrator());
        assert_eq!(admin.catalogs_for(Task::ManageAssignments), None);
        assert!(admin.allows_in(other, Task::EditCatalog));
        assert!(Grants::default().catalogs_for(Task::ReadCatalog).unwrap().is_empty());
    }
}
