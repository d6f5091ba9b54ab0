//! Use cases of the built-in directory: users (with manager and sponsors) and groups (with
//! members and owners). Writes need `AdminCap`; reads need `DirectoryReadCap`.

use steward_domain::directory::{self, Group, User};
use steward_domain::enums::UserType;
use steward_domain::ids::{GroupId, UserId};
use steward_domain::text::{DisplayName, bounded};

use crate::auth::{AdminCap, DirectoryReadCap};
use crate::ports::Page;
use crate::query::ListQuery;
use crate::{AppError, Services};

/// The free-text attributes of a user, all optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserAttributes {
    pub mail: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    pub employee_id: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub display_name: DisplayName,
    pub user_principal_name: String,
    pub user_type: Option<UserType>,
    pub account_enabled: Option<bool>,
    pub attributes: UserAttributes,
}

/// A partial update: `None` leaves a property alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<DisplayName>,
    pub user_principal_name: Option<String>,
    pub user_type: Option<UserType>,
    pub account_enabled: Option<bool>,
    pub mail: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub employee_id: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub country: Option<Option<String>>,
}

fn attr(name: &str, v: Option<String>) -> Result<Option<String>, AppError> {
    Ok(bounded(name, v, directory::ATTRIBUTE_MAX)?)
}

pub async fn create_user(s: &Services, _cap: AdminCap, new: NewUser) -> Result<User, AppError> {
    let a = new.attributes;
    let user = User {
        id: UserId::new(),
        display_name: new.display_name,
        user_principal_name: directory::parse_upn(&new.user_principal_name)?,
        mail: attr("mail", a.mail)?,
        user_type: new.user_type.unwrap_or(UserType::Member),
        account_enabled: new.account_enabled.unwrap_or(true),
        department: attr("department", a.department)?,
        job_title: attr("jobTitle", a.job_title)?,
        company_name: attr("companyName", a.company_name)?,
        employee_id: attr("employeeId", a.employee_id)?,
        city: attr("city", a.city)?,
        country: attr("country", a.country)?,
        created_date_time: s.clock.now(),
        manager: None,
    };
    s.store.insert_user(&user).await?;
    crate::lifecycle::automatic::directory_changed(s).await?;
    Ok(user)
}

/// One optional attribute of a patch and where it goes.
type AttrUpdate<'a> = (&'a str, Option<Option<String>>, &'a mut Option<String>);

/// Applies a patch. Disabling an account removes all the user's access through the normal
/// removal flow (as SCIM deactivation and deletion do); enabling it again gives nothing back.
pub async fn update_user(s: &Services, _cap: AdminCap, id: UserId, p: UserPatch) -> Result<User, AppError> {
    let mut u = require_user(s, id).await?;
    let was_enabled = u.account_enabled;
    if let Some(v) = p.display_name {
        u.display_name = v;
    }
    if let Some(v) = p.user_principal_name {
        u.user_principal_name = directory::parse_upn(&v)?;
    }
    if let Some(v) = p.user_type {
        u.user_type = v;
    }
    if let Some(v) = p.account_enabled {
        u.account_enabled = v;
    }
    let fields: [AttrUpdate<'_>; 7] = [
        ("mail", p.mail, &mut u.mail),
        ("department", p.department, &mut u.department),
        ("jobTitle", p.job_title, &mut u.job_title),
        ("companyName", p.company_name, &mut u.company_name),
        ("employeeId", p.employee_id, &mut u.employee_id),
        ("city", p.city, &mut u.city),
        ("country", p.country, &mut u.country),
    ];
    for (name, value, slot) in fields {
        if let Some(v) = value {
            *slot = attr(name, v)?;
        }
    }
    s.store.update_user(&u).await?;
    if was_enabled && !u.account_enabled {
        crate::lifecycle::requests::remove_all_access_because(s, id, "The user's account was disabled.").await?;
    }
    crate::lifecycle::automatic::directory_changed(s).await?;
    Ok(u)
}

pub async fn delete_user(s: &Services, _cap: AdminCap, id: UserId) -> Result<(), AppError> {
    require_user(s, id).await?;
    // Access ends first: the revocations still find the user's memberships to remove.
    crate::lifecycle::requests::remove_all_access(s, id).await?;
    s.store.delete_user(id).await?;
    crate::lifecycle::automatic::directory_changed(s).await
}

async fn require_user(s: &Services, id: UserId) -> Result<User, AppError> {
    s.store.get_user(id).await?.ok_or_else(|| AppError::not_found("user", id))
}

async fn require_group(s: &Services, id: GroupId) -> Result<Group, AppError> {
    s.store.get_group(id).await?.ok_or_else(|| AppError::not_found("group", id))
}

pub async fn get_user(s: &Services, _cap: DirectoryReadCap, id: UserId) -> Result<User, AppError> {
    require_user(s, id).await
}

/// A user by id or by userPrincipalName, as `/users/{id | userPrincipalName}` allows.
pub async fn find_user(s: &Services, _cap: DirectoryReadCap, key: &str) -> Result<User, AppError> {
    if let Ok(id) = key.parse::<UserId>() {
        return require_user(s, id).await;
    }
    if key.contains('@') {
        return s.store.user_by_upn(key).await?.ok_or_else(|| AppError::not_found("user", key));
    }
    Err(AppError::Invalid(format!(
        "'{}' is neither a user id (GUID) nor a userPrincipalName.",
        steward_domain::text::clip(key, 80)
    )))
}

pub async fn list_users(s: &Services, _cap: DirectoryReadCap, q: &ListQuery) -> Result<Page<User>, AppError> {
    Ok(s.store.list_users(q).await?)
}

pub async fn get_manager(s: &Services, cap: DirectoryReadCap, id: UserId) -> Result<User, AppError> {
    let u = get_user(s, cap, id).await?;
    let m = u.manager.ok_or_else(|| AppError::NotFound { kind: "manager of user", id: id.to_string() })?;
    require_user(s, m).await
}

pub async fn set_manager(s: &Services, _cap: AdminCap, id: UserId, manager: Option<UserId>) -> Result<(), AppError> {
    let mut u = require_user(s, id).await?;
    if let Some(m) = manager {
        directory::check_manager(id, m)?;
        require_user(s, m).await?;
    } else if u.manager.is_none() {
        return Err(AppError::NotFound { kind: "manager of user", id: id.to_string() });
    }
    u.manager = manager;
    Ok(s.store.update_user(&u).await?)
}

pub async fn add_sponsor(s: &Services, _cap: AdminCap, id: UserId, sponsor: UserId) -> Result<(), AppError> {
    directory::check_sponsor(id, sponsor)?;
    require_user(s, id).await?;
    require_user(s, sponsor).await?;
    Ok(s.store.add_sponsor(id, sponsor).await?)
}

pub async fn remove_sponsor(s: &Services, _cap: AdminCap, id: UserId, sponsor: UserId) -> Result<(), AppError> {
    Ok(s.store.remove_sponsor(id, sponsor).await?)
}

#[derive(Debug, Clone)]
pub struct NewGroup {
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub display_name: Option<DisplayName>,
    pub description: Option<Option<String>>,
    pub mail_nickname: Option<String>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
}

pub async fn create_group(s: &Services, _cap: AdminCap, new: NewGroup) -> Result<Group, AppError> {
    let mail_nickname = match new.mail_nickname {
        Some(n) => directory::parse_mail_nickname(&n)?,
        None => directory::nickname_from(&new.display_name),
    };
    let group = Group {
        id: GroupId::new(),
        description: bounded("description", new.description, steward_domain::text::DESCRIPTION_MAX)?,
        display_name: new.display_name,
        mail_nickname,
        mail_enabled: new.mail_enabled.unwrap_or(false),
        security_enabled: new.security_enabled.unwrap_or(true),
        created_date_time: s.clock.now(),
    };
    s.store.insert_group(&group).await?;
    Ok(group)
}

pub async fn update_group(s: &Services, _cap: AdminCap, id: GroupId, p: GroupPatch) -> Result<Group, AppError> {
    let mut g = require_group(s, id).await?;
    if let Some(v) = p.display_name {
        g.display_name = v;
    }
    if let Some(v) = p.description {
        g.description = bounded("description", v, steward_domain::text::DESCRIPTION_MAX)?;
    }
    if let Some(v) = p.mail_nickname {
        g.mail_nickname = directory::parse_mail_nickname(&v)?;
    }
    if let Some(v) = p.mail_enabled {
        g.mail_enabled = v;
    }
    if let Some(v) = p.security_enabled {
        g.security_enabled = v;
    }
    s.store.update_group(&g).await?;
    Ok(g)
}

pub async fn delete_group(s: &Services, _cap: AdminCap, id: GroupId) -> Result<(), AppError> {
    Ok(s.store.delete_group(id).await?)
}

pub async fn get_group(s: &Services, _cap: DirectoryReadCap, id: GroupId) -> Result<Group, AppError> {
    require_group(s, id).await
}

pub async fn list_groups(s: &Services, _cap: DirectoryReadCap, q: &ListQuery) -> Result<Page<Group>, AppError> {
    Ok(s.store.list_groups(q).await?)
}

/// Which link of a group a `$ref` call changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupLink {
    Member,
    Owner,
}

pub async fn add_group_link(
    s: &Services,
    _cap: AdminCap,
    group: GroupId,
    link: GroupLink,
    user: UserId,
) -> Result<(), AppError> {
    require_group(s, group).await?;
    require_user(s, user).await?;
    match link {
        GroupLink::Member => s.store.add_member(group, user).await?,
        GroupLink::Owner => s.store.add_owner(group, user).await?,
    }
    Ok(())
}

pub async fn remove_group_link(
    s: &Services,
    _cap: AdminCap,
    group: GroupId,
    link: GroupLink,
    user: UserId,
) -> Result<(), AppError> {
    require_group(s, group).await?;
    match link {
        GroupLink::Member => s.store.remove_member(group, user).await?,
        GroupLink::Owner => s.store.remove_owner(group, user).await?,
    }
    Ok(())
}
