//! Use cases of assignment policies: create, read, replace (PUT) and delete them; PATCH is a
//! replace of the merged document (the web layer merges, this layer checks and writes). A
//! policy's `reviewSettings` keep its access review in step (`crate::reviews::policy`).

use jiff::Timestamp;
use steward_domain::audit::Activity;
use steward_domain::ids::{AccessPackageId, CatalogId, PolicyId};
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_domain::role::Task;
use steward_domain::text::{DESCRIPTION_MAX, DisplayName, bounded};

use crate::audit::{POLICY, admin_event, named, with_changes};
use crate::auth::{CatalogCap, CatalogScope};
use crate::packages::require_package;
use crate::ports::Page;
use crate::query::ListQuery;
use crate::{AppError, Services, StoreError};

/// What a client writes: the whole policy but its keys and timestamps.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub settings: PolicySettings,
}

pub async fn create_policy(
    s: &Services,
    cap: CatalogCap,
    package: AccessPackageId,
    mut input: PolicyInput,
) -> Result<AssignmentPolicy, AppError> {
    cap.require(Task::ManagePackages)?;
    let pkg = require_package(s, package).await?;
    cap.covers(pkg.catalog_id)?;
    input.settings.check()?;
    check_extensions(s, pkg.catalog_id, &input.settings).await?;
    crate::connected_orgs::check_policy_organizations(s, &input.settings).await?;
    let now = s.clock.now();
    let p = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: pkg.id,
        catalog_id: pkg.catalog_id,
        display_name: input.display_name,
        description: bounded("description", input.description, DESCRIPTION_MAX)?,
        settings: input.settings,
        created_date_time: now,
        modified_date_time: now,
    };
    let event = admin_event(cap, Activity::CreatePolicy, POLICY, p.id, now).with_detail(format!(
        "{} for access package {}",
        named(p.display_name.as_str()),
        p.access_package_id
    ));
    // The access review its reviewSettings ask for, checked before anything is written.
    let review = crate::reviews::input_of_policy(&p)?;
    s.store.insert_policy(&p, &event).await?;
    crate::lifecycle::automatic::policy_changed(s, &p).await?;
    crate::reviews::policy::sync(s, &cap.actor(), &p, review).await?;
    Ok(p)
}

/// Checks the policy's `customExtensionStageSettings`: each extension exists, belongs to the
/// policy's catalog and can run at its stage. (The store refuses a missing one again, inside
/// the policy's transaction.)
async fn check_extensions(s: &Services, catalog: CatalogId, settings: &PolicySettings) -> Result<(), AppError> {
    for setting in &settings.custom_extension_stage_settings {
        let id = setting.custom_extension.id;
        let x = s.store.get_extension(id).await?.ok_or_else(|| {
            AppError::Invalid(format!("customExtensionStageSettings: custom extension '{id}' does not exist."))
        })?;
        if x.catalog_id != catalog {
            return Err(AppError::Invalid(format!(
                "customExtensionStageSettings: custom extension '{}' belongs to another catalog; a policy runs only \
                 the custom extensions of its access package's catalog.",
                x.display_name
            )));
        }
        x.check_stage(setting.stage).map_err(|e| AppError::Invalid(format!("customExtensionStageSettings: {e}")))?;
    }
    Ok(())
}

pub async fn get_policy(s: &Services, scope: &CatalogScope, id: PolicyId) -> Result<AssignmentPolicy, AppError> {
    let p = require_policy(s, id).await?;
    scope.check(p.catalog_id)?;
    Ok(p)
}

async fn require_policy(s: &Services, id: PolicyId) -> Result<AssignmentPolicy, AppError> {
    s.store.get_policy(id).await?.ok_or_else(|| AppError::not_found("assignment policy", id))
}

/// The policy, if `cap` covers its catalog.
async fn policy_in(s: &Services, cap: CatalogCap, id: PolicyId) -> Result<AssignmentPolicy, AppError> {
    cap.require(Task::ManagePackages)?;
    let p = require_policy(s, id).await?;
    cap.covers(p.catalog_id)?;
    Ok(p)
}

/// The policies of the catalogs the caller may read.
pub async fn list_policies(
    s: &Services,
    scope: &CatalogScope,
    q: &ListQuery,
) -> Result<Page<AssignmentPolicy>, AppError> {
    Ok(s.store.list_policies(&q.clone().within(scope, "catalog/id")?).await?)
}

/// Replaces a policy's content. `package`, when the client names one, must be the policy's own;
/// `read_at` is the version the content was derived from (a PATCH merge), else the current one.
pub async fn replace_policy(
    s: &Services,
    cap: CatalogCap,
    id: PolicyId,
    mut input: PolicyInput,
    package: Option<AccessPackageId>,
    read_at: Option<Timestamp>,
    if_match: Option<&str>,
) -> Result<AssignmentPolicy, AppError> {
    let current = policy_in(s, cap, id).await?;
    crate::check_if_match(if_match, "assignment policy", current.modified_date_time)?;
    if package.is_some_and(|p| p != current.access_package_id) {
        return Err(AppError::Unprocessable("A policy cannot be moved to another access package.".into()));
    }
    input.settings.check()?;
    check_extensions(s, current.catalog_id, &input.settings).await?;
    crate::connected_orgs::check_policy_organizations(s, &input.settings).await?;
    let read_at = read_at.unwrap_or(current.modified_date_time);
    let now = s.clock.now();
    let p = AssignmentPolicy {
        display_name: input.display_name,
        description: bounded("description", input.description, DESCRIPTION_MAX)?,
        settings: input.settings,
        modified_date_time: steward_domain::time::next_modified(read_at, now),
        ..current.clone()
    };
    let event = with_changes(admin_event(cap, Activity::UpdatePolicy, POLICY, id, now), &current, &p);
    let review = crate::reviews::input_of_policy(&p)?;
    match s.store.update_policy(&p, read_at, &event).await {
        Ok(()) => {
            crate::lifecycle::automatic::policy_changed(s, &p).await?;
            crate::reviews::policy::sync(s, &cap.actor(), &p, review).await?;
            Ok(p)
        }
        Err(StoreError::Conflict(_)) if if_match.is_some() => Err(AppError::PreconditionFailed(
            "The assignment policy changed while it was being updated; read it again.".into(),
        )),
        Err(StoreError::Conflict(_)) => Err(AppError::Conflict(
            "The assignment policy changed while it was being updated; read it again and retry.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_policy(
    s: &Services,
    cap: CatalogCap,
    id: PolicyId,
    if_match: Option<&str>,
) -> Result<(), AppError> {
    let p = policy_in(s, cap, id).await?;
    crate::check_if_match(if_match, "assignment policy", p.modified_date_time)?;
    // Assignments arrive with the request lifecycle; then a policy in use stays.
    let now = s.clock.now();
    let event = admin_event(cap, Activity::DeletePolicy, POLICY, id, now);
    s.store.delete_policy(id, &event).await?;
    // The access review its reviewSettings kept goes with it.
    crate::reviews::policy::policy_deleted(s, &cap.actor(), id, now).await
}

/// Checks that a policy belongs to a package (for the `/accessPackages/{id}/assignmentPolicies` paths).
pub async fn policy_of_package(
    s: &Services,
    scope: &CatalogScope,
    package: AccessPackageId,
    id: PolicyId,
) -> Result<AssignmentPolicy, AppError> {
    let p = get_policy(s, scope, id).await?;
    if p.access_package_id == package { Ok(p) } else { Err(AppError::not_found("assignment policy", id)) }
}
