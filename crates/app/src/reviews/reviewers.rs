//! Who reviews a decision at a stage: the stage's reviewer scopes resolved for the person whose
//! access is reviewed (self-review, their manager, named users, group members or owners, the
//! catalog's owners or package managers), never that person unless it is a self-review, and the
//! fallback reviewers when nobody is left. Resolves many decisions at once: each group and
//! catalog is read once, managers come with the users the caller read in bulk.

use std::collections::HashMap;

use steward_domain::directory::User;
use steward_domain::ids::{CatalogId, GroupId, UserId};
use steward_domain::review::Reviewer;
use steward_domain::role::{AppScope, Role};

use crate::ports::RoleAssignmentFilter;
use crate::{AppError, Services};

/// Resolves reviewer scopes, remembering what it read.
#[derive(Default)]
pub(crate) struct Resolver {
    members: HashMap<GroupId, Vec<UserId>>,
    owners: HashMap<GroupId, Vec<UserId>>,
    roles: HashMap<(CatalogId, Role), Vec<UserId>>,
}

impl Resolver {
    /// The reviewers of one decision on `principal`'s access in `catalog`: `primary` resolved,
    /// else `fallback`; an empty `primary` is a self-review.
    pub(crate) async fn resolve(
        &mut self,
        s: &Services,
        primary: &[Reviewer],
        fallback: &[Reviewer],
        principal: &User,
        catalog: CatalogId,
    ) -> Result<Vec<UserId>, AppError> {
        if primary.is_empty() {
            return Ok(vec![principal.id]);
        }
        let first = self.people(s, primary, principal, catalog).await?;
        if !first.is_empty() {
            return Ok(first);
        }
        self.people(s, fallback, principal, catalog).await
    }

    async fn people(
        &mut self,
        s: &Services,
        scopes: &[Reviewer],
        principal: &User,
        catalog: CatalogId,
    ) -> Result<Vec<UserId>, AppError> {
        let mut out: Vec<UserId> = Vec::new();
        for r in scopes {
            let found: Vec<UserId> = match r {
                Reviewer::User(u) => vec![*u],
                Reviewer::Manager => principal.manager.into_iter().collect(),
                Reviewer::GroupMembers(g) => match self.members.get(g) {
                    Some(v) => v.clone(),
                    None => {
                        let v = s.store.member_ids(*g).await?;
                        self.members.insert(*g, v.clone());
                        v
                    }
                },
                Reviewer::GroupOwners(g) => match self.owners.get(g) {
                    Some(v) => v.clone(),
                    None => {
                        let v = s.store.owner_ids(*g).await?;
                        self.owners.insert(*g, v.clone());
                        v
                    }
                },
                Reviewer::CatalogOwners => self.holders(s, catalog, Role::CatalogOwner).await?,
                Reviewer::PackageManagers => self.holders(s, catalog, Role::AccessPackageManager).await?,
            };
            for u in found {
                // Nobody reviews their own access, unless the review is a self-review.
                if u != principal.id && !out.contains(&u) {
                    out.push(u);
                }
            }
        }
        Ok(out)
    }

    async fn holders(&mut self, s: &Services, catalog: CatalogId, role: Role) -> Result<Vec<UserId>, AppError> {
        if let Some(v) = self.roles.get(&(catalog, role)) {
            return Ok(v.clone());
        }
        let filter =
            RoleAssignmentFilter { role: Some(role), scope: Some(AppScope::Catalog(catalog)), ..Default::default() };
        let v: Vec<UserId> = s.store.list_role_assignments(&filter).await?.into_iter().map(|a| a.principal).collect();
        self.roles.insert((catalog, role), v.clone());
        Ok(v)
    }
}
