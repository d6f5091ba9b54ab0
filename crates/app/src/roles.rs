//! Delegated administration (Graph's `/roleManagement/entitlementManagement`): who holds which
//! entitlement-management role where, and who may change that. Administrators give any role;
//! a catalog owner gives and takes away the roles of their own catalog.

use steward_domain::audit::Activity;
use steward_domain::ids::{RoleAssignmentId, UserId};
use steward_domain::role::{AppScope, Role, RoleAssignment, Task};

use crate::audit::{Acting, ROLE_ASSIGNMENT, admin_event};
use crate::auth::{AdminCap, CatalogCap, Principal};
use crate::lifecycle::Actor;
use crate::ports::RoleAssignmentFilter;
use crate::{AppError, Services};

/// Proof that the caller may give and take away roles at one app scope: an administrator
/// anywhere, a catalog owner in their catalog.
#[derive(Debug, Clone, Copy)]
pub enum DelegateCap {
    Admin(AdminCap),
    Catalog(CatalogCap),
}

impl DelegateCap {
    fn covers(self, scope: AppScope) -> Result<(), AppError> {
        match (self, scope) {
            (Self::Admin(_), _) => Ok(()),
            (Self::Catalog(cap), AppScope::Catalog(c)) => {
                cap.require(Task::DelegateCatalog)?;
                cap.covers(c)
            }
            (Self::Catalog(_), AppScope::Tenant) => Err(AppError::Forbidden(
                "Insufficient privileges: only an administrator gives roles that apply to the whole service.".into(),
            )),
        }
    }
}

impl Acting for DelegateCap {
    fn acting(self) -> Actor {
        match self {
            Self::Admin(c) => c.actor(),
            Self::Catalog(c) => c.actor(),
        }
    }
}

/// The check for giving or taking away a role at `scope`.
pub fn delegate_cap(p: &Principal, scope: AppScope) -> Result<DelegateCap, AppError> {
    match scope {
        AppScope::Tenant => Ok(DelegateCap::Admin(p.admin()?)),
        AppScope::Catalog(c) => match p.admin() {
            Ok(cap) => Ok(DelegateCap::Admin(cap)),
            Err(_) => Ok(DelegateCap::Catalog(p.in_catalog(c, Task::DelegateCatalog)?)),
        },
    }
}

/// Gives `role` at `scope` to the user.
pub async fn assign(
    s: &Services,
    cap: DelegateCap,
    principal: UserId,
    role: Role,
    scope: AppScope,
) -> Result<RoleAssignment, AppError> {
    cap.covers(scope)?;
    let a = RoleAssignment::new(principal, role, scope)?;
    let now = s.clock.now();
    let event = admin_event(cap, Activity::AddRoleAssignment, ROLE_ASSIGNMENT, a.id, now)
        .with_detail(format!("{} to user {principal} at '{scope}'", role.display_name()));
    s.store.insert_role_assignment(&a, now, &event).await?;
    Ok(a)
}

/// The role assignment, if the caller may see it (administrators, the catalog's owners, and
/// the holder themselves).
pub async fn get(s: &Services, p: &Principal, id: RoleAssignmentId) -> Result<RoleAssignment, AppError> {
    let a = s.store.get_role_assignment(id).await?.ok_or_else(|| AppError::not_found("role assignment", id))?;
    if p.user_id() == Some(a.principal) || delegate_cap(p, a.scope).is_ok() {
        Ok(a)
    } else {
        Err(AppError::Forbidden(
            "Insufficient privileges: role assignments are read by administrators, the catalog's owners and the \
             holder."
                .into(),
        ))
    }
}

/// Takes the role away.
pub async fn remove(s: &Services, p: &Principal, id: RoleAssignmentId) -> Result<(), AppError> {
    let a = s.store.get_role_assignment(id).await?.ok_or_else(|| AppError::not_found("role assignment", id))?;
    let cap = delegate_cap(p, a.scope)?;
    let event = admin_event(cap, Activity::RemoveRoleAssignment, ROLE_ASSIGNMENT, a.id, s.clock.now())
        .with_detail(format!("{} from user {} at '{}'", a.role.display_name(), a.principal, a.scope));
    s.store.delete_role_assignment(id, &event).await?;
    Ok(())
}

/// The role assignments the caller may see that match `filter`: all for an administrator,
/// those of the catalogs they own for a catalog owner, and anyone's own.
pub async fn list(
    s: &Services,
    p: &Principal,
    mut filter: RoleAssignmentFilter,
) -> Result<Vec<RoleAssignment>, AppError> {
    let own = p.user_id().is_some() && filter.principal == p.user_id();
    if !own && let Some(ids) = p.catalogs_for(Task::DelegateCatalog)?.catalogs() {
        if filter.scope == Some(AppScope::Tenant) {
            return Ok(Vec::new());
        }
        filter.catalogs = Some(ids.to_vec());
    }
    Ok(s.store.list_role_assignments(&filter).await?)
}
