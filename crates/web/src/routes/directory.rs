//! `/v1.0/users` and `/v1.0/groups`: the built-in directory in Graph's shapes, with managers,
//! sponsors, members and owners managed through `$ref`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use steward_app::directory::{self as dir, GroupLink, GroupPatch, NewGroup, NewUser, UserAttributes, UserPatch};
use steward_app::query::{GROUPS, Relation, USERS};
use steward_domain::ids::{GroupId, UserId};

use crate::AppState;
use crate::api::Api;
use crate::auth::{Admin, Caller};
use crate::body::{Body, ref_target};
use crate::error::ApiError;
use crate::odata::{Cx, OData, count_response, entity_response, page_response};
use crate::routes::{no_content, path_id};

type R = Result<Response, ApiError>;

pub fn api() -> Api {
    Api::new()
        .tag("directory")
        .list("/v1.0/users", list_users, "List users")
        .create("/v1.0/users", create_user, "Create a user")
        .count("/v1.0/users/$count", count_users, "Count users")
        .get("/v1.0/users/{id}", get_user, "Get a user by id or userPrincipalName")
        .patch("/v1.0/users/{id}", update_user, "Update a user")
        .delete("/v1.0/users/{id}", delete_user, "Delete a user")
        .get("/v1.0/users/{id}/manager", get_manager, "Get a user's manager")
        .put("/v1.0/users/{id}/manager/$ref", set_manager, "Set a user's manager")
        .delete("/v1.0/users/{id}/manager/$ref", remove_manager, "Remove a user's manager")
        .list("/v1.0/users/{id}/directReports", list_direct_reports, "List a user's direct reports")
        .list("/v1.0/users/{id}/sponsors", list_sponsors, "List a user's sponsors")
        .action("/v1.0/users/{id}/sponsors/$ref", add_sponsor, "Add a sponsor")
        .delete("/v1.0/users/{id}/sponsors/{sponsor}/$ref", remove_sponsor, "Remove a sponsor")
        .list("/v1.0/groups", list_groups, "List groups")
        .create("/v1.0/groups", create_group, "Create a group")
        .count("/v1.0/groups/$count", count_groups, "Count groups")
        .get("/v1.0/groups/{id}", get_group, "Get a group")
        .patch("/v1.0/groups/{id}", update_group, "Update a group")
        .delete("/v1.0/groups/{id}", delete_group, "Delete a group")
        .list("/v1.0/groups/{id}/members", list_members, "List a group's members")
        .action("/v1.0/groups/{id}/members/$ref", add_member, "Add a member")
        .delete("/v1.0/groups/{id}/members/{user}/$ref", remove_member, "Remove a member")
        .list("/v1.0/groups/{id}/owners", list_owners, "List a group's owners")
        .action("/v1.0/groups/{id}/owners/$ref", add_owner, "Add an owner")
        .delete("/v1.0/groups/{id}/owners/{user}/$ref", remove_owner, "Remove an owner")
}

async fn list_users(State(st): State<AppState>, Caller(p): Caller, od: OData) -> R {
    crate::odata::check_shape::<steward_domain::directory::User>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&USERS)?;
    let page = dir::list_users(&st.services, p.directory_reader()?, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, "users").await
}

async fn count_users(State(st): State<AppState>, Caller(p): Caller, od: OData) -> R {
    let mut q = od.list_query(&USERS)?;
    q.count = true;
    q.top = 1;
    let page = dir::list_users(&st.services, p.directory_reader()?, &q).await?;
    Ok(count_response(page.count.unwrap_or(0)))
}

fn user_attributes(b: &mut Body) -> Result<UserAttributes, ApiError> {
    Ok(UserAttributes {
        mail: b.nullable_str("mail")?,
        department: b.nullable_str("department")?,
        job_title: b.nullable_str("jobTitle")?,
        company_name: b.nullable_str("companyName")?,
        employee_id: b.nullable_str("employeeId")?,
        city: b.nullable_str("city")?,
        country: b.nullable_str("country")?,
    })
}

const USER_READ_ONLY: &[&str] = &["id", "createdDateTime"];

async fn create_user(
    State(st): State<AppState>,
    Admin(p, cap): Admin,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let mut b = Body::parse(&headers, &bytes, "user")?;
    let new = NewUser {
        display_name: b.req_name()?,
        user_principal_name: b.req_str("userPrincipalName")?,
        user_type: b.opt_enum("userType")?,
        account_enabled: b.opt_bool("accountEnabled")?,
        attributes: user_attributes(&mut b)?,
    };
    // Graph requires these on create; Steward has no passwords, so they are accepted and ignored.
    b.ignore(&["mailNickname", "passwordProfile"]);
    b.ignore(USER_READ_ONLY);
    b.finish()?;
    let u = dir::create_user(&st.services, cap, new).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &u, StatusCode::CREATED, "users").await
}

async fn get_user(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    let u = dir::find_user(&st.services, p.directory_reader()?, &id).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &u, StatusCode::OK, "users").await
}

async fn resolve_user(st: &AppState, p: &steward_app::auth::Principal, key: &str) -> Result<UserId, ApiError> {
    Ok(dir::find_user(&st.services, p.directory_reader()?, key).await?.id)
}

async fn update_user(
    State(st): State<AppState>,
    Admin(p, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    let mut b = Body::parse(&headers, &bytes, "user")?;
    let patch = UserPatch {
        display_name: b.opt_name()?,
        user_principal_name: b.opt_str("userPrincipalName")?,
        user_type: b.opt_enum("userType")?,
        account_enabled: b.opt_bool("accountEnabled")?,
        mail: b.patch_str("mail")?,
        department: b.patch_str("department")?,
        job_title: b.patch_str("jobTitle")?,
        company_name: b.patch_str("companyName")?,
        employee_id: b.patch_str("employeeId")?,
        city: b.patch_str("city")?,
        country: b.patch_str("country")?,
    };
    b.ignore(USER_READ_ONLY);
    b.finish()?;
    dir::update_user(&st.services, cap, id, patch).await?;
    Ok(no_content())
}

async fn delete_user(State(st): State<AppState>, Admin(p, cap): Admin, Path(id): Path<String>) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    dir::delete_user(&st.services, cap, id).await?;
    Ok(no_content())
}

async fn get_manager(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    let m = dir::get_manager(&st.services, p.directory_reader()?, id).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &m, StatusCode::OK, "users").await
}

async fn set_manager(
    State(st): State<AppState>,
    Admin(p, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    let m: UserId = path_id(&ref_target(&headers, &bytes, "users")?)?;
    dir::set_manager(&st.services, cap, id, Some(m)).await?;
    Ok(no_content())
}

async fn remove_manager(State(st): State<AppState>, Admin(p, cap): Admin, Path(id): Path<String>) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    dir::set_manager(&st.services, cap, id, None).await?;
    Ok(no_content())
}

async fn related_users(
    st: &AppState,
    p: &steward_app::auth::Principal,
    od: &OData,
    rel: Relation,
    key: String,
    set: &str,
) -> R {
    crate::odata::check_shape::<steward_domain::directory::User>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&USERS)?.related(rel, key);
    let page = dir::list_users(&st.services, p.directory_reader()?, &q).await?;
    page_response(&Cx::new(&st.services, p), od, &q, page, set).await
}

async fn list_direct_reports(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    related_users(&st, &p, &od, Relation::DirectReports, id.to_string(), "directoryObjects").await
}

async fn list_sponsors(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    related_users(&st, &p, &od, Relation::Sponsors, id.to_string(), "directoryObjects").await
}

async fn add_sponsor(
    State(st): State<AppState>,
    Admin(p, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    let sponsor: UserId = path_id(&ref_target(&headers, &bytes, "users")?)?;
    dir::add_sponsor(&st.services, cap, id, sponsor).await?;
    Ok(no_content())
}

async fn remove_sponsor(
    State(st): State<AppState>,
    Admin(p, cap): Admin,
    Path((id, sponsor)): Path<(String, String)>,
) -> R {
    let id = resolve_user(&st, &p, &id).await?;
    dir::remove_sponsor(&st.services, cap, id, path_id(&sponsor)?).await?;
    Ok(no_content())
}

async fn list_groups(State(st): State<AppState>, Caller(p): Caller, od: OData) -> R {
    crate::odata::check_shape::<steward_domain::directory::Group>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&GROUPS)?;
    let page = dir::list_groups(&st.services, p.directory_reader()?, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, "groups").await
}

async fn count_groups(State(st): State<AppState>, Caller(p): Caller, od: OData) -> R {
    let mut q = od.list_query(&GROUPS)?;
    q.count = true;
    q.top = 1;
    let page = dir::list_groups(&st.services, p.directory_reader()?, &q).await?;
    Ok(count_response(page.count.unwrap_or(0)))
}

const GROUP_READ_ONLY: &[&str] = &["id", "createdDateTime"];

async fn create_group(
    State(st): State<AppState>,
    Admin(p, cap): Admin,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let mut b = Body::parse(&headers, &bytes, "group")?;
    let new = NewGroup {
        display_name: b.req_name()?,
        description: b.nullable_str("description")?,
        mail_nickname: b.opt_str("mailNickname")?,
        mail_enabled: b.opt_bool("mailEnabled")?,
        security_enabled: b.opt_bool("securityEnabled")?,
    };
    b.ignore(GROUP_READ_ONLY);
    b.finish()?;
    let g = dir::create_group(&st.services, cap, new).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &g, StatusCode::CREATED, "groups").await
}

async fn get_group(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    let g = dir::get_group(&st.services, p.directory_reader()?, path_id(&id)?).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &g, StatusCode::OK, "groups").await
}

async fn update_group(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: GroupId = path_id(&id)?;
    let mut b = Body::parse(&headers, &bytes, "group")?;
    let patch = GroupPatch {
        display_name: b.opt_name()?,
        description: b.patch_str("description")?,
        mail_nickname: b.opt_str("mailNickname")?,
        mail_enabled: b.opt_bool("mailEnabled")?,
        security_enabled: b.opt_bool("securityEnabled")?,
    };
    b.ignore(GROUP_READ_ONLY);
    b.finish()?;
    dir::update_group(&st.services, cap, id, patch).await?;
    Ok(no_content())
}

async fn delete_group(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>) -> R {
    dir::delete_group(&st.services, cap, path_id(&id)?).await?;
    Ok(no_content())
}

async fn group_users(st: &AppState, p: &steward_app::auth::Principal, od: &OData, id: &str, rel: Relation) -> R {
    let gid: GroupId = path_id(id)?;
    dir::get_group(&st.services, p.directory_reader()?, gid).await?;
    related_users(st, p, od, rel, gid.to_string(), "directoryObjects").await
}

async fn list_members(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    group_users(&st, &p, &od, &id, Relation::GroupMembers).await
}

async fn list_owners(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    group_users(&st, &p, &od, &id, Relation::GroupOwners).await
}

async fn link(
    st: &AppState,
    p: &steward_app::auth::Principal,
    id: &str,
    link: GroupLink,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> R {
    let cap = p.admin()?;
    let gid: GroupId = path_id(id)?;
    let uid: UserId = path_id(&ref_target(headers, bytes, "users")?)?;
    dir::add_group_link(&st.services, cap, gid, link, uid).await?;
    Ok(no_content())
}

async fn unlink(st: &AppState, p: &steward_app::auth::Principal, id: &str, link: GroupLink, user: &str) -> R {
    let cap = p.admin()?;
    dir::remove_group_link(&st.services, cap, path_id(id)?, link, path_id(user)?).await?;
    Ok(no_content())
}

async fn add_member(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    link(&st, &p, &id, GroupLink::Member, &headers, &bytes).await
}

async fn remove_member(State(st): State<AppState>, Caller(p): Caller, Path((id, user)): Path<(String, String)>) -> R {
    unlink(&st, &p, &id, GroupLink::Member, &user).await
}

async fn add_owner(
    State(st): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    link(&st, &p, &id, GroupLink::Owner, &headers, &bytes).await
}

async fn remove_owner(State(st): State<AppState>, Caller(p): Caller, Path((id, user)): Path<(String, String)>) -> R {
    unlink(&st, &p, &id, GroupLink::Owner, &user).await
}
