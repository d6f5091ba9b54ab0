//! Separation of duties: a package's incompatible packages (in both directions) and groups,
//! checked against what the target already holds, with an error that names the conflict.

use steward_domain::ids::{AccessPackageId, GroupId, UserId};

use crate::{AppError, Services};

/// Fails when `target` holds an access package incompatible with `package` (declared on either
/// side) or is a member of a group `package` declares incompatible.
pub(crate) async fn check(s: &Services, target: UserId, package: AccessPackageId) -> Result<(), AppError> {
    if let Some(conflict) = find(s, target, package).await? {
        return Err(AppError::Unprocessable(conflict));
    }
    Ok(())
}

/// The conflict, in words, if there is one.
pub(crate) async fn find(s: &Services, target: UserId, package: AccessPackageId) -> Result<Option<String>, AppError> {
    let declared = s.store.incompatibilities(package).await?;
    find_given(s, target, package, &declared).await
}

/// `find`, with the package's incompatibilities (`Store::incompatibilities`) already read.
pub(crate) async fn find_given(
    s: &Services,
    target: UserId,
    package: AccessPackageId,
    declared: &(Vec<AccessPackageId>, Vec<GroupId>),
) -> Result<Option<String>, AppError> {
    let (incompatible, groups) = declared;
    let name = |id: AccessPackageId| async move {
        Ok::<_, AppError>(
            s.store.get_package(id).await?.map_or_else(|| id.to_string(), |p| p.display_name.as_str().to_owned()),
        )
    };
    if !incompatible.is_empty() {
        for a in s.store.active_assignments_of(target).await? {
            if incompatible.contains(&a.access_package_id) {
                return Ok(Some(format!(
                    "Separation of duties: the target already has access package '{}', which is incompatible with \
                     access package '{}'.",
                    name(a.access_package_id).await?,
                    name(package).await?
                )));
            }
        }
    }
    if !groups.is_empty() {
        let mine = s.store.groups_of(target).await?;
        if let Some(g) = groups.iter().find(|g| mine.contains(g)) {
            let gname =
                s.store.get_group(*g).await?.map_or_else(|| g.to_string(), |g| g.display_name.as_str().to_owned());
            return Ok(Some(format!(
                "Separation of duties: the target is a member of group '{gname}', which is incompatible with access \
                 package '{}'.",
                name(package).await?
            )));
        }
    }
    Ok(None)
}
