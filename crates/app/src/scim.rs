//! SCIM 2.0 provisioning of the built-in directory (RFC 7643, RFC 7644): the use cases behind
//! `/scim/v2`, through which an identity provider (Entra ID, Okta, Keycloak) creates, updates,
//! deactivates and deletes users and groups, group memberships and managers.
//!
//! - `auth`: the SCIM client's own bearer token (`ScimAuthenticator`, `ScimCap`), apart from
//!   the Graph API's tokens.
//! - `filter`: filter expressions, parsed; `query`: a filter resolved against the attributes
//!   Steward keeps, for the store.
//! - `resource`: the User and Group representations, rendered from the stored rows and read
//!   from request bodies; `patch`: PATCH operations applied to a representation.
//!
//! Every write lands in one store transaction with its audit event (initiator `scim-client`,
//! Entra's core-directory activity names) and only on the version it read: an `If-Match` that
//! no longer holds is 412, a lost race without one is retried on a fresh read. A user who ends
//! up inactive (`active: false`, by PUT or PATCH) loses all access through the ordinary removal
//! flow (`lifecycle::requests::remove_all_access_because`: systemRemove requests, revocations
//! in the targets); reactivation gives nothing back. Every change queues the re-evaluation of
//! automatic assignment policies (`lifecycle::automatic::directory_changed`), as Graph's
//! directory writes do. Knows nothing of HTTP: the web layer maps `ScimError` to SCIM's error
//! shape.

pub mod auth;
pub mod filter;
pub mod patch;
pub mod query;
pub mod resource;

use jiff::Timestamp;
use serde_json::Value;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::directory::{Group, User};
use steward_domain::ids::{GroupId, UserId};

use crate::ports::StoreError;
use crate::{AppError, Services, WRITE_ATTEMPTS};
pub use auth::{ScimAuthenticator, ScimCap};
use query::{ScimPage, ScimQuery};

/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// A list response.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A PATCH request.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// An error response.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// A search request (`POST …/.search`).
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The most resources one list response holds (announced as `filter.maxResults`).
pub const MAX_RESULTS: u64 = 200;

/// How a SCIM client appears in the audit trail.
pub const SCIM_CLIENT: &str = "scim-client";

/// A directory user with what SCIM keeps beside Graph's properties (migration 0009).
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUser {
    /// Graph's user: userName is `user_principal_name`, title `job_title`, active
    /// `account_enabled`, the primary email `mail`, the work address `city` and `country`,
    /// employeeNumber `employee_id`, organization `company_name`, manager `manager`.
    pub user: User,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub formatted_name: Option<String>,
    /// SCIM's free-text `userType` ("Employee", "Contractor", …); Graph's `userType` is Guest
    /// exactly when this is "guest" in any case.
    pub user_type: Option<String>,
    /// Bumped by every write of the row (SCIM's and Graph's): writes land only on the version
    /// they read.
    pub version: i64,
    /// The last SCIM write (the creation until then).
    pub modified: Timestamp,
}

/// A directory group with its external id and its members (users only: Steward's groups do
/// not nest).
#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroup {
    pub group: Group,
    pub external_id: Option<String>,
    /// Sorted.
    pub members: Vec<UserId>,
    pub version: i64,
    pub modified: Timestamp,
}

/// SCIM's `scimType` error codes (RFC 7644 §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }
}

/// What a SCIM request failed with.
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    /// Answered as it is: the status, SCIM's error code when one applies, and a detail for
    /// the client.
    #[error("{detail}")]
    Request { status: u16, scim_type: Option<ScimType>, detail: String },
    /// The store failed; the detail is logged, never sent.
    #[error(transparent)]
    Store(StoreError),
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self::Request { status, scim_type, detail: detail.into() }
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidValue), detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidSyntax), detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidFilter), detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidPath), detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::NoTarget), detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::Mutability), detail)
    }
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(404, None, format!("{kind} '{}' was not found.", steward_domain::text::clip(id, 80)))
    }
    pub fn precondition_failed(kind: &str) -> Self {
        Self::new(
            412,
            None,
            format!("The {kind} has changed since it was read (If-Match no longer holds); read it again and retry."),
        )
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => Self::new(404, None, format!("{kind} '{id}' was not found.")),
            StoreError::Conflict(m) => Self::new(409, None, m),
            StoreError::Rule(d) => AppError::from(d).into(),
            other => Self::Store(other),
        }
    }
}

impl From<AppError> for ScimError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(m) | AppError::Query { message: m, .. } => Self::invalid_value(m),
            e @ AppError::NotFound { .. } => Self::new(404, None, e.to_string()),
            AppError::Conflict(m) => Self::new(409, None, m),
            AppError::Unprocessable(m) => Self::invalid_value(m),
            AppError::PreconditionFailed(m) => Self::new(412, None, m),
            AppError::Forbidden(m) | AppError::ConditionsNotMet { message: m, .. } => Self::new(403, None, m),
            AppError::Unauthenticated(m) => Self::new(401, None, m),
            AppError::Upstream(m) => Self::new(502, None, m),
            AppError::Store(e) => Self::Store(e),
        }
    }
}

/// An id from a URL: one that is not a GUID names nothing (404, as an unknown GUID does).
fn user_id(id: &str) -> Result<UserId, ScimError> {
    id.parse().map_err(|_| ScimError::not_found("User", id))
}

fn group_id(id: &str) -> Result<GroupId, ScimError> {
    id.parse().map_err(|_| ScimError::not_found("Group", id))
}

/// Whether an `If-Match` header value (`*` or a list of tags) holds for the entity tag `etag`.
/// Weak and strong forms compare alike (RFC 7232 weak comparison).
pub fn etag_matches(if_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().strip_prefix("W/").unwrap_or(t.trim()).trim_matches('"').to_owned();
    let want = bare(etag);
    if_match.split(',').any(|t| t.trim() == "*" || bare(t) == want)
}

fn check_if_match(if_match: Option<&str>, etag: &str, kind: &str) -> Result<(), ScimError> {
    match if_match {
        Some(m) if !etag_matches(m, etag) => Err(ScimError::precondition_failed(kind)),
        _ => Ok(()),
    }
}

/// An audit event of a SCIM write to a user or group, correlated by the object's id.
fn event(activity: Activity, target_type: &str, target: &str, now: Timestamp) -> AuditEvent {
    let mut e = AuditEvent::new(now, activity, Initiator::App(SCIM_CLIENT.into()), target_type, target, target);
    e.category = if target_type == "User" { "UserManagement" } else { "GroupManagement" }.to_owned();
    e
}

// ---------------------------------------------------------------------------------------
// Users

pub async fn get_user(s: &Services, _cap: ScimCap, id: &str) -> Result<ScimUser, ScimError> {
    s.store.scim_user(user_id(id)?).await?.ok_or_else(|| ScimError::not_found("User", id))
}

pub async fn list_users(s: &Services, _cap: ScimCap, q: &ScimQuery) -> Result<ScimPage<ScimUser>, ScimError> {
    Ok(s.store.scim_users(q).await?)
}

/// Creates a user from a SCIM User body.
pub async fn create_user(s: &Services, _cap: ScimCap, body: &Value) -> Result<ScimUser, ScimError> {
    let input = resource::read_user(body)?;
    let now = s.clock.now();
    let id = UserId::new();
    let manager = check_manager(s, id, input.manager.as_deref()).await?;
    let u = input.into_user(id, None, manager, now)?;
    let e = event(Activity::AddUser, "User", &id.to_string(), now)
        .with_detail(format!("userName '{}'", steward_domain::text::clip(&u.user.user_principal_name, 80)));
    s.store.insert_scim_user(&u, std::slice::from_ref(&e)).await.map_err(|e| uniqueness(e, &u))?;
    after_user_write(s, &u).await?;
    Ok(u)
}

/// Replaces a user with a SCIM User body (PUT).
pub async fn replace_user(
    s: &Services,
    cap: ScimCap,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<ScimUser, ScimError> {
    let input = resource::read_user(body)?;
    write_user(s, cap, id, if_match, |_| Ok(input.clone())).await
}

/// Applies a SCIM PatchOp body to a user (PATCH).
pub async fn patch_user(
    s: &Services,
    cap: ScimCap,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<ScimUser, ScimError> {
    let ops = patch::read(body)?;
    write_user(s, cap, id, if_match, |current| {
        let mut v = resource::render_user(current, "");
        patch::apply(&mut v, &ops, patch::Target::User)?;
        resource::read_user(&v)
    })
    .await
}

/// Reads the user, builds its new state with `change` (from the current one), and writes it
/// on the version read; retried on a fresh read when another writer got in between, unless
/// `If-Match` pinned the version.
async fn write_user(
    s: &Services,
    _cap: ScimCap,
    id: &str,
    if_match: Option<&str>,
    change: impl Fn(&ScimUser) -> Result<resource::UserInput, ScimError>,
) -> Result<ScimUser, ScimError> {
    let uid = user_id(id)?;
    for _ in 0..WRITE_ATTEMPTS {
        let current = s.store.scim_user(uid).await?.ok_or_else(|| ScimError::not_found("User", id))?;
        check_if_match(if_match, &resource::user_etag(&current), "user")?;
        let input = change(&current)?;
        let manager = check_manager(s, uid, input.manager.as_deref()).await?;
        let now = s.clock.now();
        let next = input.into_user(uid, Some(&current), manager, now)?;
        let changed = resource::user_changes(&current, &next);
        if changed.is_empty() {
            // Nothing to write; an inactive user still loses whatever access a failed earlier
            // removal left.
            after_user_write(s, &current).await?;
            return Ok(current);
        }
        let e = event(Activity::UpdateUser, "User", id, now).with_detail(format!("changed: {}", changed.join(", ")));
        match s.store.update_scim_user(&next, current.version, std::slice::from_ref(&e)).await {
            Ok(true) => {
                let mut next = next;
                next.version = current.version + 1;
                after_user_write(s, &next).await?;
                return Ok(next);
            }
            Ok(false) if if_match.is_some() => return Err(ScimError::precondition_failed("user")),
            Ok(false) => {}
            Err(e) => return Err(uniqueness(e, &next)),
        }
    }
    Err(ScimError::new(409, None, "The user is being changed by others at the same time; retry."))
}

/// A duplicate userName is SCIM's `uniqueness` conflict.
fn uniqueness(e: StoreError, u: &ScimUser) -> ScimError {
    match e {
        StoreError::Conflict(_) => ScimError::new(
            409,
            Some(ScimType::Uniqueness),
            format!(
                "userName '{}' is already taken by another user (userName ignores case).",
                steward_domain::text::clip(&u.user.user_principal_name, 120)
            ),
        ),
        StoreError::NotFound { kind, id } => ScimError::invalid_value(format!("The {kind} '{id}' does not exist.")),
        other => other.into(),
    }
}

/// The manager a body names, checked: an existing user other than the user themselves.
async fn check_manager(s: &Services, user: UserId, manager: Option<&str>) -> Result<Option<UserId>, ScimError> {
    let Some(m) = manager else { return Ok(None) };
    let bad = || {
        ScimError::invalid_value(format!(
            "manager '{}' is not the id of a user Steward knows.",
            steward_domain::text::clip(m, 80)
        ))
    };
    let mid: UserId = m.parse().map_err(|_| bad())?;
    steward_domain::directory::check_manager(user, mid).map_err(|e| ScimError::invalid_value(e.to_string()))?;
    if s.store.get_user(mid).await?.is_none() {
        return Err(bad());
    }
    Ok(Some(mid))
}

/// What follows a user's write: an inactive user loses all access; automatic assignment
/// policies are re-evaluated.
async fn after_user_write(s: &Services, u: &ScimUser) -> Result<(), ScimError> {
    if !u.user.account_enabled {
        let removed = crate::lifecycle::requests::remove_all_access_because(
            s,
            u.user.id,
            "The user's account was deactivated by SCIM provisioning.",
        )
        .await?;
        if removed > 0 {
            tracing::info!(user = %u.user.id, removed, "deactivated through SCIM: access removed");
        }
    }
    crate::lifecycle::automatic::directory_changed(s).await?;
    Ok(())
}

/// Deletes a user (DELETE): their access ends first, through the ordinary removal flow.
pub async fn delete_user(s: &Services, _cap: ScimCap, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    let uid = user_id(id)?;
    let current = s.store.scim_user(uid).await?.ok_or_else(|| ScimError::not_found("User", id))?;
    check_if_match(if_match, &resource::user_etag(&current), "user")?;
    crate::lifecycle::requests::remove_all_access_because(s, uid, "The user was deleted by SCIM provisioning.").await?;
    let now = s.clock.now();
    let e = event(Activity::DeleteUser, "User", id, now)
        .with_detail(format!("userName '{}'", steward_domain::text::clip(&current.user.user_principal_name, 80)));
    s.store.delete_scim_user(uid, &e).await?;
    crate::lifecycle::automatic::directory_changed(s).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Groups

pub async fn get_group(s: &Services, _cap: ScimCap, id: &str) -> Result<ScimGroup, ScimError> {
    s.store.scim_group(group_id(id)?).await?.ok_or_else(|| ScimError::not_found("Group", id))
}

pub async fn list_groups(s: &Services, _cap: ScimCap, q: &ScimQuery) -> Result<ScimPage<ScimGroup>, ScimError> {
    Ok(s.store.scim_groups(q).await?)
}

/// Creates a group, with its members, from a SCIM Group body.
pub async fn create_group(s: &Services, _cap: ScimCap, body: &Value) -> Result<ScimGroup, ScimError> {
    let input = resource::read_group(body)?;
    let now = s.clock.now();
    let id = GroupId::new();
    let members = check_members(s, input.members.as_deref().unwrap_or_default()).await?;
    let g = input.into_group(id, None, members, now)?;
    let mut events = vec![
        event(Activity::AddGroup, "Group", &id.to_string(), now)
            .with_detail(steward_domain::text::clip(&format!("displayName '{}'", g.group.display_name.as_str()), 120)),
    ];
    events.extend(member_events(&g, &g.members, &[], now));
    s.store.insert_scim_group(&g, &events).await?;
    if !g.members.is_empty() {
        crate::lifecycle::automatic::directory_changed(s).await?;
    }
    Ok(g)
}

/// Replaces a group with a SCIM Group body (PUT); absent members means none.
pub async fn replace_group(
    s: &Services,
    cap: ScimCap,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<ScimGroup, ScimError> {
    let input = resource::read_group(body)?;
    write_group(s, cap, id, if_match, |_| Ok(input.clone())).await
}

/// Applies a SCIM PatchOp body to a group (PATCH): members are added and removed one by one,
/// by `members` paths with or without a value filter, as Entra ID and Okta send them.
pub async fn patch_group(
    s: &Services,
    cap: ScimCap,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<ScimGroup, ScimError> {
    let ops = patch::read(body)?;
    write_group(s, cap, id, if_match, |current| {
        let mut v = resource::render_group(current, "");
        patch::apply(&mut v, &ops, patch::Target::Group)?;
        resource::read_group(&v)
    })
    .await
}

async fn write_group(
    s: &Services,
    _cap: ScimCap,
    id: &str,
    if_match: Option<&str>,
    change: impl Fn(&ScimGroup) -> Result<resource::GroupInput, ScimError>,
) -> Result<ScimGroup, ScimError> {
    let gid = group_id(id)?;
    for _ in 0..WRITE_ATTEMPTS {
        let current = s.store.scim_group(gid).await?.ok_or_else(|| ScimError::not_found("Group", id))?;
        check_if_match(if_match, &resource::group_etag(&current), "group")?;
        let input = change(&current)?;
        let members = check_members(s, input.members.as_deref().unwrap_or_default()).await?;
        let now = s.clock.now();
        let next = input.into_group(gid, Some(&current), members, now)?;
        let added: Vec<UserId> =
            next.members.iter().filter(|m| current.members.binary_search(m).is_err()).copied().collect();
        let removed: Vec<UserId> =
            current.members.iter().filter(|m| next.members.binary_search(m).is_err()).copied().collect();
        let changed = resource::group_changes(&current, &next);
        if changed.is_empty() && added.is_empty() && removed.is_empty() {
            return Ok(current);
        }
        let mut events = Vec::new();
        if !changed.is_empty() {
            events.push(
                event(Activity::UpdateGroup, "Group", id, now).with_detail(format!("changed: {}", changed.join(", "))),
            );
        }
        events.extend(member_events(&next, &added, &removed, now));
        match s.store.update_scim_group(&next, &added, &removed, current.version, &events).await {
            Ok(true) => {
                if !added.is_empty() || !removed.is_empty() {
                    crate::lifecycle::automatic::directory_changed(s).await?;
                }
                let mut next = next;
                next.version = current.version + 1;
                return Ok(next);
            }
            Ok(false) if if_match.is_some() => return Err(ScimError::precondition_failed("group")),
            Ok(false) => {}
            Err(StoreError::NotFound { id, .. }) => {
                return Err(ScimError::invalid_value(format!("member '{id}' is not a user Steward knows.")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ScimError::new(409, None, "The group is being changed by others at the same time; retry."))
}

/// The members a body names, checked: users that exist, each once, sorted.
async fn check_members(s: &Services, members: &[String]) -> Result<Vec<UserId>, ScimError> {
    let mut ids = Vec::with_capacity(members.len());
    for m in members {
        let id: UserId = m.parse().map_err(|_| {
            ScimError::invalid_value(format!(
                "member '{}' is not the id of a user Steward knows (Steward's groups hold users, not groups).",
                steward_domain::text::clip(m, 80)
            ))
        })?;
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(ids);
    }
    let found = s.store.users_by_id(&ids).await?;
    if found.len() != ids.len() {
        let known: std::collections::HashSet<UserId> = found.iter().map(|u| u.id).collect();
        if let Some(missing) = ids.iter().find(|i| !known.contains(i)) {
            return Err(ScimError::invalid_value(format!(
                "member '{missing}' is not a user Steward knows (Steward's groups hold users, not groups)."
            )));
        }
    }
    Ok(ids)
}

fn member_events(g: &ScimGroup, added: &[UserId], removed: &[UserId], now: Timestamp) -> Vec<AuditEvent> {
    let gid = g.group.id.to_string();
    let one = |activity, u: &UserId| event(activity, "Group", &gid, now).with_detail(format!("member {u}"));
    added
        .iter()
        .map(|u| one(Activity::AddMemberToGroup, u))
        .chain(removed.iter().map(|u| one(Activity::RemoveMemberFromGroup, u)))
        .collect()
}

/// Deletes a group (DELETE); refused (409) while the group is a resource in a catalog.
pub async fn delete_group(s: &Services, _cap: ScimCap, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    let gid = group_id(id)?;
    let current = s.store.scim_group(gid).await?.ok_or_else(|| ScimError::not_found("Group", id))?;
    check_if_match(if_match, &resource::group_etag(&current), "group")?;
    let now = s.clock.now();
    let e = event(Activity::DeleteGroup, "Group", id, now).with_detail(steward_domain::text::clip(
        &format!("displayName '{}'", current.group.display_name.as_str()),
        120,
    ));
    s.store.delete_scim_group(gid, &e).await?;
    if !current.members.is_empty() {
        crate::lifecycle::automatic::directory_changed(s).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_compare_weakly() {
        let tag = "W/\"abc\"";
        assert!(etag_matches("W/\"abc\"", tag));
        assert!(etag_matches("\"abc\"", tag));
        assert!(etag_matches("\"x\", W/\"abc\"", tag));
        assert!(etag_matches("*", tag));
        assert!(!etag_matches("W/\"abd\"", tag));
    }

    #[test]
    fn errors_carry_scim_types() {
        let e = ScimError::from(AppError::Invalid("bad".into()));
        assert!(matches!(e, ScimError::Request { status: 400, scim_type: Some(ScimType::InvalidValue), .. }));
        assert_eq!(ScimType::InvalidFilter.as_str(), "invalidFilter");
    }
}
