//! `/v1.0/identityGovernance/entitlementManagement/connectedOrganizations` (with their
//! `internalSponsors` and `externalSponsors`, linked through `$ref`) and `…/settings` (what
//! happens to the external users Steward governs when their last assignment ends). Graph's
//! shapes; administrators only.

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use steward_app::connected_orgs::{self as orgs, NewOrganization, OrganizationPatch, SettingsPatch};
use steward_app::query::{CONNECTED_ORGANIZATIONS, USERS};
use steward_domain::connected::{self, ConnectedOrganization, SponsorKind};
use steward_domain::directory::User;
use steward_domain::duration::GraphDuration;
use steward_domain::external::EntitlementSettings;
use steward_domain::ids::{ConnectedOrganizationId, UserId};
use steward_odata::ExpandItem;

use crate::AppState;
use crate::api::Api;
use crate::auth::Admin;
use crate::body::{Body, ref_target};
use crate::error::ApiError;
use crate::odata::{
    Cx, GraphEntity, OData, check_nested, check_shape, count_response, entity_response, expand_many, expand_query,
    if_match, page_response,
};
use crate::routes::{no_content, path_id};

type R = Result<Response, ApiError>;

const SET: &str = "identityGovernance/entitlementManagement/connectedOrganizations";
const SETTINGS_SET: &str = "identityGovernance/entitlementManagement/settings";
const READ_ONLY: &[&str] = &["id", "createdDateTime", "modifiedDateTime"];

pub fn api() -> Api {
    Api::new()
        .tag("connectedOrganizations")
        .list("/v1.0/identityGovernance/entitlementManagement/connectedOrganizations", list, "List connected organizations")
        .create(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations",
            create,
            "Create a connected organization: its identity sources (a domain belongs to one organization at most) and state",
        )
        .count("/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/$count", count, "Count connected organizations")
        .get("/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}", get, "Get a connected organization")
        .patch("/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}", update, "Update a connected organization")
        .delete(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}",
            delete,
            "Delete a connected organization no assignment policy names",
        )
        .list(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/internalSponsors",
            list_internal,
            "List the internal sponsors of a connected organization",
        )
        .action(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/internalSponsors/$ref",
            add_internal,
            "Add an internal sponsor (a user of this directory)",
        )
        .delete(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/internalSponsors/{user}/$ref",
            remove_internal,
            "Remove an internal sponsor",
        )
        .list(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/externalSponsors",
            list_external,
            "List the external sponsors of a connected organization",
        )
        .action(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/externalSponsors/$ref",
            add_external,
            "Add an external sponsor (a user of the organization, a guest here)",
        )
        .delete(
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/externalSponsors/{user}/$ref",
            remove_external,
            "Remove an external sponsor",
        )
        .tag("settings")
        .get(
            "/v1.0/identityGovernance/entitlementManagement/settings",
            get_settings,
            "Get the entitlement-management settings: what happens to a governed external user whose last assignment ends",
        )
        .patch(
            "/v1.0/identityGovernance/entitlementManagement/settings",
            update_settings,
            "Update the entitlement-management settings (externalUserLifecycleAction, durationUntilExternalUserDeletedAfterBlocked)",
        )
}

fn unknown_nav(nav: &str) -> ApiError {
    ApiError::bad_request(format!("Navigation property '{nav}' cannot be expanded."))
}

fn sponsor_kind(nav: &str) -> Option<SponsorKind> {
    match nav {
        "internalSponsors" => Some(SponsorKind::Internal),
        "externalSponsors" => Some(SponsorKind::External),
        _ => None,
    }
}

#[async_trait]
impl GraphEntity for ConnectedOrganization {
    const TYPE: &'static str = "connectedOrganization";
    const PROPS: &'static [&'static str] =
        &["displayName", "description", "identitySources", "state", "createdDateTime", "modifiedDateTime"];
    const NAVS: &'static [&'static str] = &["internalSponsors", "externalSponsors"];

    fn etag(&self) -> Option<String> {
        Some(steward_domain::time::etag(self.modified_date_time))
    }

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match sponsor_kind(nav) {
            Some(_) => check_nested::<User>(item, Some(&USERS)),
            None => Err(unknown_nav(nav)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        let kind = sponsor_kind(nav).ok_or_else(|| unknown_nav(nav))?;
        let q = expand_query(&USERS, item)?;
        expand_many(cx, orgs::list_sponsors(cx.s, cx.p.admin()?, self.id, kind, q).await?, item).await
    }
}

async fn list(State(st): State<AppState>, Admin(p, cap): Admin, od: OData) -> R {
    check_shape::<ConnectedOrganization>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&CONNECTED_ORGANIZATIONS)?;
    let page = orgs::list_organizations(&st.services, cap, &q).await?;
    page_response(&Cx::new(&st.services, &p), &od, &q, page, SET).await
}

async fn count(State(st): State<AppState>, Admin(_, cap): Admin, od: OData) -> R {
    let mut q = od.list_query(&CONNECTED_ORGANIZATIONS)?;
    (q.count, q.top) = (true, 1);
    Ok(count_response(orgs::list_organizations(&st.services, cap, &q).await?.count.unwrap_or(0)))
}

/// `identitySources` of a body: `None` when absent; `null` is refused.
fn identity_sources(b: &mut Body) -> Result<Option<Vec<connected::IdentitySource>>, ApiError> {
    match b.take("identitySources") {
        None => Ok(None),
        Some(Value::Null) => Err(ApiError::invalid_model(
            "identitySources cannot be null: an organization needs at least one identity source.",
        )),
        Some(v) => Ok(Some(connected::parse_sources(&v)?)),
    }
}

async fn create(State(st): State<AppState>, Admin(p, cap): Admin, od: OData, headers: HeaderMap, bytes: Bytes) -> R {
    let mut b = Body::parse(&headers, &bytes, "connectedOrganization")?;
    let display_name = b.req_name()?;
    let description = b.nullable_str("description")?;
    let state = b.opt_enum("state")?;
    let identity_sources = identity_sources(&mut b)?.ok_or_else(|| {
        ApiError::invalid_model(
            "Property 'identitySources' is required: at least one identity source, such as \
             {\"@odata.type\": \"#microsoft.graph.domainIdentitySource\", \"domainName\": \"fabrikam.com\"}.",
        )
    })?;
    b.ignore(READ_ONLY);
    b.finish()?;
    let o = orgs::create_organization(
        &st.services,
        cap,
        NewOrganization { display_name, description, identity_sources, state },
    )
    .await?;
    entity_response(&Cx::new(&st.services, &p), &od, &o, StatusCode::CREATED, SET).await
}

async fn get(State(st): State<AppState>, Admin(p, cap): Admin, od: OData, Path(id): Path<String>) -> R {
    let o = orgs::get_organization(&st.services, cap, path_id(&id)?).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &o, StatusCode::OK, SET).await
}

async fn update(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: ConnectedOrganizationId = path_id(&id)?;
    let mut b = Body::parse(&headers, &bytes, "connectedOrganization")?;
    let patch = OrganizationPatch {
        display_name: b.opt_name()?,
        description: b.patch_str("description")?,
        identity_sources: identity_sources(&mut b)?,
        state: b.opt_enum("state")?,
    };
    b.ignore(READ_ONLY);
    b.finish()?;
    orgs::update_organization(&st.services, cap, id, patch, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

async fn delete(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>, headers: HeaderMap) -> R {
    orgs::delete_organization(&st.services, cap, path_id(&id)?, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

async fn list_sponsors(st: &AppState, p: &steward_app::auth::Principal, od: &OData, id: &str, kind: SponsorKind) -> R {
    check_shape::<User>(od.options.select.as_ref(), &od.options.expand)?;
    let org: ConnectedOrganizationId = path_id(id)?;
    let q = od.list_query(&USERS)?;
    let page = orgs::list_sponsors(&st.services, p.admin()?, org, kind, q.clone()).await?;
    page_response(&Cx::new(&st.services, p), od, &q, page, "users").await
}

async fn list_internal(State(st): State<AppState>, Admin(p, _): Admin, od: OData, Path(id): Path<String>) -> R {
    list_sponsors(&st, &p, &od, &id, SponsorKind::Internal).await
}

async fn list_external(State(st): State<AppState>, Admin(p, _): Admin, od: OData, Path(id): Path<String>) -> R {
    list_sponsors(&st, &p, &od, &id, SponsorKind::External).await
}

async fn add_sponsor(
    st: &AppState,
    cap: steward_app::auth::AdminCap,
    id: &str,
    kind: SponsorKind,
    h: &HeaderMap,
    b: &Bytes,
) -> R {
    let org: ConnectedOrganizationId = path_id(id)?;
    let user: UserId = path_id(&ref_target(h, b, "users")?)?;
    orgs::add_sponsor(&st.services, cap, org, kind, user).await?;
    Ok(no_content())
}

async fn add_internal(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    add_sponsor(&st, cap, &id, SponsorKind::Internal, &headers, &bytes).await
}

async fn add_external(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    add_sponsor(&st, cap, &id, SponsorKind::External, &headers, &bytes).await
}

async fn remove_internal(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path((id, user)): Path<(String, String)>,
) -> R {
    orgs::remove_sponsor(&st.services, cap, path_id(&id)?, SponsorKind::Internal, path_id(&user)?).await?;
    Ok(no_content())
}

async fn remove_external(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path((id, user)): Path<(String, String)>,
) -> R {
    orgs::remove_sponsor(&st.services, cap, path_id(&id)?, SponsorKind::External, path_id(&user)?).await?;
    Ok(no_content())
}

/// `entitlementManagementSettings`: the settings with their constant id.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SettingsView {
    id: &'static str,
    #[serde(flatten)]
    settings: EntitlementSettings,
}

#[async_trait]
impl GraphEntity for SettingsView {
    const TYPE: &'static str = "entitlementManagementSettings";
    const PROPS: &'static [&'static str] =
        &["durationUntilExternalUserDeletedAfterBlocked", "externalUserLifecycleAction"];
    const NAVS: &'static [&'static str] = &[];

    fn check_expand(nav: &'static str, _item: &ExpandItem) -> Result<(), ApiError> {
        Err(unknown_nav(nav))
    }

    async fn expand(&self, _cx: &Cx<'_>, nav: &'static str, _item: &ExpandItem) -> Result<Value, ApiError> {
        Err(unknown_nav(nav))
    }
}

async fn get_settings(State(st): State<AppState>, Admin(p, cap): Admin, od: OData) -> R {
    let settings = orgs::get_settings(&st.services, cap).await?;
    let view = SettingsView { id: steward_domain::external::SETTINGS_ID, settings };
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::OK, SETTINGS_SET).await
}

async fn update_settings(State(st): State<AppState>, Admin(_, cap): Admin, headers: HeaderMap, bytes: Bytes) -> R {
    let mut b = Body::parse(&headers, &bytes, "entitlementManagementSettings")?;
    let duration = match b.take("durationUntilExternalUserDeletedAfterBlocked") {
        None => None,
        Some(Value::String(s)) => Some(GraphDuration::parse(&s).map_err(|e| {
            ApiError::invalid_model(format!("Property 'durationUntilExternalUserDeletedAfterBlocked': {e}"))
        })?),
        Some(_) => {
            return Err(ApiError::invalid_model(
                "Property 'durationUntilExternalUserDeletedAfterBlocked' must be a duration such as P30D.",
            ));
        }
    };
    let patch = SettingsPatch {
        external_user_lifecycle_action: b.opt_enum("externalUserLifecycleAction")?,
        duration_until_external_user_deleted_after_blocked: duration,
    };
    b.ignore(&["id"]);
    b.finish()?;
    orgs::update_settings(&st.services, cap, patch).await?;
    Ok(no_content())
}
