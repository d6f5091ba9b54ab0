//! How each entity is read by Graph clients: its type name, properties, navigation properties
//! and how `$expand` fetches them (each expansion checks the reader's capability itself).

use async_trait::async_trait;
use serde_json::Value;
use steward_app::query::{
    ACCESS_PACKAGES, GROUPS, POLICIES, RESOURCE_ROLES, RESOURCE_SCOPES, RESOURCES, ROLE_SCOPES, Relation, USERS,
};
use steward_app::{catalogs, directory, packages, policies};
use steward_domain::catalog::{Catalog, Resource, ResourceRequest, ResourceRole, ResourceScope};
use steward_domain::directory::{Group, User};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::policy::AssignmentPolicy;
use steward_domain::role::Task;
use steward_odata::ExpandItem;

use crate::error::ApiError;
use crate::odata::{Cx, GraphEntity, check_nested, expand_many, expand_one, expand_query};

/// The catalog, if the reader may read it (an expansion leaves out what it may not).
async fn catalog_of(cx: &Cx<'_>, id: steward_domain::ids::CatalogId) -> Option<Catalog> {
    let cap = cx.p.in_catalog(id, Task::ReadCatalog).ok()?;
    catalogs::get_catalog(cx.s, cap).await.ok()
}

fn unknown_nav(nav: &str) -> ApiError {
    ApiError::bad_request(format!("Navigation property '{nav}' cannot be expanded."))
}

/// Nested options of an expansion that is not an entity of ours (contained complex values,
/// an environment that is always null): nothing can be selected or expanded inside it.
fn no_options(nav: &str, item: &ExpandItem) -> Result<(), ApiError> {
    if item.select.is_some() || !item.expand.is_empty() || item.filter.is_some() || !item.orderby.is_empty() {
        return Err(ApiError::bad_request(format!("'{nav}' does not take nested query options.")));
    }
    Ok(())
}

#[async_trait]
impl GraphEntity for User {
    const TYPE: &'static str = "user";
    const PROPS: &'static [&'static str] = &[
        "displayName",
        "userPrincipalName",
        "mail",
        "userType",
        "accountEnabled",
        "department",
        "jobTitle",
        "companyName",
        "employeeId",
        "city",
        "country",
        "createdDateTime",
    ];
    const NAVS: &'static [&'static str] = &["manager", "sponsors", "directReports"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "manager" => check_nested::<User>(item, None),
            "sponsors" | "directReports" => check_nested::<User>(item, Some(&USERS)),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let cap = cx.p.directory_reader()?;
        match nav {
            "manager" => {
                let m = match self.manager {
                    Some(m) => Some(directory::get_user(cx.s, cap, m).await?),
                    None => None,
                };
                expand_one(cx, m, item).await
            }
            "sponsors" | "directReports" => {
                let rel = if nav == "sponsors" { Relation::Sponsors } else { Relation::DirectReports };
                let q = expand_query(&USERS, item)?.related(rel, self.id);
                expand_many(cx, directory::list_users(cx.s, cap, &q).await?, item).await
            }
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for Group {
    const TYPE: &'static str = "group";
    const PROPS: &'static [&'static str] =
        &["displayName", "description", "mailNickname", "mailEnabled", "securityEnabled", "createdDateTime"];
    const NAVS: &'static [&'static str] = &["members", "owners"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "members" | "owners" => check_nested::<User>(item, Some(&USERS)),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let rel = match nav {
            "members" => Relation::GroupMembers,
            "owners" => Relation::GroupOwners,
            other => return Err(unknown_nav(other)),
        };
        let q = expand_query(&USERS, item)?.related(rel, self.id);
        expand_many(cx, directory::list_users(cx.s, cx.p.directory_reader()?, &q).await?, item).await
    }
}

#[async_trait]
impl GraphEntity for Catalog {
    fn etag(&self) -> Option<String> {
        Some(steward_domain::time::etag(self.modified_date_time))
    }

    const TYPE: &'static str = "accessPackageCatalog";
    const PROPS: &'static [&'static str] = &[
        "displayName",
        "description",
        "catalogType",
        "state",
        "isExternallyVisible",
        "createdDateTime",
        "modifiedDateTime",
    ];
    const NAVS: &'static [&'static str] = &["accessPackages", "resources", "resourceRoles", "resourceScopes"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "accessPackages" => check_nested::<AccessPackage>(item, Some(&ACCESS_PACKAGES)),
            "resources" => check_nested::<Resource>(item, Some(&RESOURCES)),
            "resourceRoles" => check_nested::<ResourceRole>(item, Some(&RESOURCE_ROLES)),
            "resourceScopes" => check_nested::<ResourceScope>(item, Some(&RESOURCE_SCOPES)),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let cap = cx.p.in_catalog(self.id, Task::ReadCatalog)?;
        match nav {
            "accessPackages" => {
                let q = expand_query(&ACCESS_PACKAGES, item)?.scoped("catalog/id", self.id)?;
                expand_many(cx, packages::list_packages(cx.s, &cap.scope(), &q).await?, item).await
            }
            "resources" => {
                let q = expand_query(&RESOURCES, item)?.scoped("catalog/id", self.id)?;
                expand_many(cx, catalogs::list_resources(cx.s, &cap.scope(), &q).await?, item).await
            }
            "resourceRoles" => {
                let q = expand_query(&RESOURCE_ROLES, item)?;
                expand_many(cx, catalogs::list_resource_roles(cx.s, cap, &q).await?, item).await
            }
            "resourceScopes" => {
                let q = expand_query(&RESOURCE_SCOPES, item)?;
                expand_many(cx, catalogs::list_resource_scopes(cx.s, cap, &q).await?, item).await
            }
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for Resource {
    const TYPE: &'static str = "accessPackageResource";
    const PROPS: &'static [&'static str] =
        &["displayName", "description", "originId", "originSystem", "createdDateTime", "modifiedDateTime"];
    const NAVS: &'static [&'static str] = &["roles", "scopes", "environment"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "roles" => check_nested::<ResourceRole>(item, Some(&RESOURCE_ROLES)),
            "scopes" => check_nested::<ResourceScope>(item, Some(&RESOURCE_SCOPES)),
            "environment" => no_options(nav, item),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let cap = cx.p.in_catalog(self.catalog_id, Task::ReadCatalog)?;
        match nav {
            "roles" => {
                let q = expand_query(&RESOURCE_ROLES, item)?.scoped("resource/id", self.id)?;
                expand_many(cx, catalogs::list_resource_roles(cx.s, cap, &q).await?, item).await
            }
            "scopes" => {
                let q = expand_query(&RESOURCE_SCOPES, item)?.scoped("resource/id", self.id)?;
                expand_many(cx, catalogs::list_resource_scopes(cx.s, cap, &q).await?, item).await
            }
            // Resources of Steward's own directory live in no separate environment.
            "environment" => Ok(Value::Null),
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for ResourceRole {
    const TYPE: &'static str = "accessPackageResourceRole";
    const PROPS: &'static [&'static str] = &["displayName", "description", "originId", "originSystem"];
    const NAVS: &'static [&'static str] = &["resource"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "resource" => check_nested::<Resource>(item, None),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        match nav {
            "resource" => {
                let (scope, id) = (cx.p.catalogs_for(Task::ReadCatalog)?, self.resource_id);
                cx.once(format!("resource:{id}:{item:?}"), async {
                    expand_one(cx, catalogs::get_resource(cx.s, &scope, id).await.ok(), item).await
                })
                .await
            }
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for ResourceScope {
    const TYPE: &'static str = "accessPackageResourceScope";
    const PROPS: &'static [&'static str] = &["displayName", "description", "originId", "originSystem", "isRootScope"];
    const NAVS: &'static [&'static str] = &["resource"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "resource" => check_nested::<Resource>(item, None),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        match nav {
            "resource" => {
                let (scope, id) = (cx.p.catalogs_for(Task::ReadCatalog)?, self.resource_id);
                cx.once(format!("resource:{id}:{item:?}"), async {
                    expand_one(cx, catalogs::get_resource(cx.s, &scope, id).await.ok(), item).await
                })
                .await
            }
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for ResourceRequest {
    const TYPE: &'static str = "accessPackageResourceRequest";
    const PROPS: &'static [&'static str] = &["requestType", "state", "createdDateTime"];
    const NAVS: &'static [&'static str] = &["catalog", "resource"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "catalog" => check_nested::<Catalog>(item, None),
            "resource" => check_nested::<Resource>(item, None),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let scope = cx.p.catalogs_for(Task::ReadCatalog)?;
        match nav {
            "catalog" => {
                let id = self.catalog_id;
                cx.once(format!("catalog:{id}:{item:?}"), async {
                    expand_one(cx, catalog_of(cx, id).await, item).await
                })
                .await
            }
            "resource" => {
                let r = match self.resource_id {
                    Some(id) => catalogs::get_resource(cx.s, &scope, id).await.ok(),
                    None => None,
                };
                expand_one(cx, r, item).await
            }
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for AccessPackage {
    fn etag(&self) -> Option<String> {
        Some(steward_domain::time::etag(self.modified_date_time))
    }

    const TYPE: &'static str = "accessPackage";
    const PROPS: &'static [&'static str] =
        &["displayName", "description", "isHidden", "createdDateTime", "modifiedDateTime"];
    const NAVS: &'static [&'static str] = &[
        "catalog",
        "resourceRoleScopes",
        "incompatibleAccessPackages",
        "incompatibleGroups",
        "accessPackagesIncompatibleWith",
        "assignmentPolicies",
    ];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "catalog" => check_nested::<Catalog>(item, None),
            "resourceRoleScopes" => check_nested::<ResourceRoleScope>(item, Some(&ROLE_SCOPES)),
            "incompatibleAccessPackages" | "accessPackagesIncompatibleWith" => {
                check_nested::<AccessPackage>(item, Some(&ACCESS_PACKAGES))
            }
            "assignmentPolicies" => check_nested::<AssignmentPolicy>(item, Some(&POLICIES)),
            "incompatibleGroups" => check_nested::<Group>(item, Some(&GROUPS)),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let scope = cx.p.catalogs_for(Task::ReadCatalog)?;
        match nav {
            "catalog" => {
                let id = self.catalog_id;
                cx.once(format!("catalog:{id}:{item:?}"), async {
                    expand_one(cx, catalog_of(cx, id).await, item).await
                })
                .await
            }
            "resourceRoleScopes" => {
                let q = expand_query(&ROLE_SCOPES, item)?;
                expand_many(cx, packages::list_role_scopes(cx.s, &scope, self.id, &q).await?, item).await
            }
            "incompatibleAccessPackages" | "accessPackagesIncompatibleWith" => {
                let rel = if nav == "incompatibleAccessPackages" {
                    Relation::IncompatiblePackages
                } else {
                    Relation::PackagesIncompatibleWith
                };
                let q = expand_query(&ACCESS_PACKAGES, item)?.related(rel, self.id);
                expand_many(cx, packages::list_packages(cx.s, &scope, &q).await?, item).await
            }
            "assignmentPolicies" => {
                let q = expand_query(&POLICIES, item)?.scoped("accessPackage/id", self.id)?;
                expand_many(cx, policies::list_policies(cx.s, &scope, &q).await?, item).await
            }
            "incompatibleGroups" => {
                let q = expand_query(&GROUPS, item)?.related(Relation::IncompatibleGroups, self.id);
                expand_many(cx, directory::list_groups(cx.s, cx.p.directory_reader()?, &q).await?, item).await
            }
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for AssignmentPolicy {
    const TYPE: &'static str = "accessPackageAssignmentPolicy";
    const PROPS: &'static [&'static str] = &[
        "displayName",
        "description",
        "allowedTargetScope",
        "specificAllowedTargets",
        "expiration",
        "requestorSettings",
        "requestApprovalSettings",
        "automaticRequestSettings",
        "reviewSettings",
        "notificationSettings",
        "createdDateTime",
        "modifiedDateTime",
    ];
    const NAVS: &'static [&'static str] = &["accessPackage", "catalog", "questions", "customExtensionStageSettings"];

    fn etag(&self) -> Option<String> {
        Some(steward_domain::time::etag(self.modified_date_time))
    }

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "accessPackage" => check_nested::<AccessPackage>(item, None),
            "catalog" => check_nested::<Catalog>(item, None),
            "questions" => no_options(nav, item),
            "customExtensionStageSettings" => {
                let inner = ExpandItem { expand: Vec::new(), ..item.clone() };
                no_options(nav, &inner)?;
                match item.expand.iter().find(|e| !e.path.eq_ignore_ascii_case("customExtension")) {
                    Some(e) => Err(ApiError::bad_request(format!(
                        "customExtensionStageSettings can expand only customExtension, not '{}'.",
                        steward_domain::text::clip(&e.path, 80)
                    ))),
                    None => item.expand.iter().try_for_each(|e| no_options("customExtension", e)),
                }
            }
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let scope = cx.p.catalogs_for(Task::ReadCatalog)?;
        let contained = |v: Result<Value, serde_json::Error>| v.map_err(|e| ApiError::bad_request(e.to_string()));
        match nav {
            "accessPackage" => {
                expand_one(cx, packages::get_package(cx.s, &scope, self.access_package_id).await.ok(), item).await
            }
            "catalog" => {
                let id = self.catalog_id;
                cx.once(format!("catalog:{id}:{item:?}"), async {
                    expand_one(cx, catalog_of(cx, id).await, item).await
                })
                .await
            }
            // Contained in the policy and always returned with it; expanding keeps them.
            "questions" => contained(serde_json::to_value(&self.settings.questions)),
            "customExtensionStageSettings" => {
                let mut out = Vec::with_capacity(self.settings.custom_extension_stage_settings.len());
                for setting in &self.settings.custom_extension_stage_settings {
                    let mut v = contained(serde_json::to_value(setting))?;
                    if !item.expand.is_empty()
                        && let Some(x) =
                            cx.s.store
                                .get_extension(setting.custom_extension.id)
                                .await
                                .map_err(steward_app::AppError::from)?
                        && let Value::Object(m) = &mut v
                    {
                        m.insert("customExtension".into(), x.to_json());
                    }
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            other => Err(unknown_nav(other)),
        }
    }
}

#[async_trait]
impl GraphEntity for ResourceRoleScope {
    const TYPE: &'static str = "accessPackageResourceRoleScope";
    const PROPS: &'static [&'static str] = &["createdDateTime"];
    const NAVS: &'static [&'static str] = &["role", "scope"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "role" => check_nested::<ResourceRole>(item, None),
            "scope" => check_nested::<ResourceScope>(item, None),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let scope = cx.p.catalogs_for(Task::ReadCatalog)?;
        match nav {
            "role" => expand_one(cx, packages::get_resource_role(cx.s, &scope, self.role_id).await.ok(), item).await,
            "scope" => expand_one(cx, packages::get_resource_scope(cx.s, &scope, self.scope_id).await.ok(), item).await,
            other => Err(unknown_nav(other)),
        }
    }
}
