//! Use cases of connected organizations (`connectedOrganizations`, with their internal and
//! external sponsors) and of the tenant's entitlement-management `settings`. Writes need
//! `AdminCap` and are audited with Entra's activity names, in the transaction of the change.
//! Also: which connected organization a user belongs to (the domain of a guest's email, looked
//! up now, so an organization's identity sources and state apply as soon as they change).

use steward_domain::audit::Activity;
use steward_domain::connected::{self, ConnectedOrganization, IdentitySource, SponsorKind};
use steward_domain::directory::User;
use steward_domain::duration::GraphDuration;
use steward_domain::eligibility::Membership;
use steward_domain::enums::{ConnectedOrganizationState, ExternalUserLifecycleAction};
use steward_domain::external::EntitlementSettings;
use steward_domain::ids::{ConnectedOrganizationId, UserId};
use steward_domain::text::{DESCRIPTION_MAX, DisplayName, bounded};

use crate::audit::{admin_event, named, with_changes};
use crate::auth::AdminCap;
use crate::ports::Page;
use crate::query::{ListQuery, Relation};
use crate::{AppError, Services};

/// Target types of the audit events written here.
pub const CONNECTED_ORGANIZATION: &str = "ConnectedOrganization";
pub const SETTINGS: &str = "EntitlementManagementSettings";

/// What a client writes to create an organization.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub identity_sources: Vec<IdentitySource>,
    /// `configured` unless given.
    pub state: Option<ConnectedOrganizationState>,
}

/// A partial update: `None` leaves a property alone.
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    pub display_name: Option<DisplayName>,
    pub description: Option<Option<String>>,
    pub identity_sources: Option<Vec<IdentitySource>>,
    pub state: Option<ConnectedOrganizationState>,
}

pub async fn create_organization(
    s: &Services,
    cap: AdminCap,
    new: NewOrganization,
) -> Result<ConnectedOrganization, AppError> {
    connected::check_sources(&new.identity_sources)?;
    let now = s.clock.now();
    let o = ConnectedOrganization {
        id: ConnectedOrganizationId::new(),
        description: bounded("description", new.description, DESCRIPTION_MAX)?,
        display_name: new.display_name,
        identity_sources: new.identity_sources,
        state: new.state.unwrap_or(ConnectedOrganizationState::Configured),
        created_date_time: now,
        modified_date_time: now,
    };
    let event = admin_event(cap, Activity::CreateConnectedOrganization, CONNECTED_ORGANIZATION, o.id, now)
        .with_detail(named(o.display_name.as_str()));
    s.store.insert_connected_organization(&o, &event).await?;
    Ok(o)
}

pub(crate) async fn require_organization(
    s: &Services,
    id: ConnectedOrganizationId,
) -> Result<ConnectedOrganization, AppError> {
    s.store.get_connected_organization(id).await?.ok_or_else(|| AppError::not_found("connected organization", id))
}

pub async fn get_organization(
    s: &Services,
    _cap: AdminCap,
    id: ConnectedOrganizationId,
) -> Result<ConnectedOrganization, AppError> {
    require_organization(s, id).await
}

pub async fn list_organizations(
    s: &Services,
    _cap: AdminCap,
    q: &ListQuery,
) -> Result<Page<ConnectedOrganization>, AppError> {
    Ok(s.store.list_connected_organizations(q).await?)
}

/// Changes an organization on the version it read (`If-Match` pins one).
pub async fn update_organization(
    s: &Services,
    cap: AdminCap,
    id: ConnectedOrganizationId,
    p: OrganizationPatch,
    if_match: Option<&str>,
) -> Result<ConnectedOrganization, AppError> {
    let description = p.description.map(|d| bounded("description", d, DESCRIPTION_MAX)).transpose()?;
    if let Some(sources) = &p.identity_sources {
        connected::check_sources(sources)?;
    }
    for _ in 0..crate::WRITE_ATTEMPTS {
        let before = require_organization(s, id).await?;
        crate::check_if_match(if_match, "connected organization", before.modified_date_time)?;
        let mut o = before.clone();
        let read_at = o.modified_date_time;
        if let Some(v) = &p.display_name {
            o.display_name = v.clone();
        }
        if let Some(v) = &description {
            o.description = v.clone();
        }
        if let Some(v) = &p.identity_sources {
            o.identity_sources = v.clone();
        }
        if let Some(v) = p.state {
            o.state = v;
        }
        let now = s.clock.now();
        o.modified_date_time = steward_domain::time::next_modified(read_at, now);
        let event = with_changes(
            admin_event(cap, Activity::UpdateConnectedOrganization, CONNECTED_ORGANIZATION, id, now),
            &before,
            &o,
        );
        match s.store.update_connected_organization(&o, read_at, &event).await {
            Ok(()) => return Ok(o),
            Err(e) => crate::lost_race(e, if_match, "connected organization")?,
        }
    }
    Err(AppError::Conflict("The connected organization kept changing while it was being updated; try again.".into()))
}

/// Deletes an organization, unless a policy names it (409).
pub async fn delete_organization(
    s: &Services,
    cap: AdminCap,
    id: ConnectedOrganizationId,
    if_match: Option<&str>,
) -> Result<(), AppError> {
    if if_match.is_some() {
        let o = require_organization(s, id).await?;
        crate::check_if_match(if_match, "connected organization", o.modified_date_time)?;
    }
    let event = admin_event(cap, Activity::DeleteConnectedOrganization, CONNECTED_ORGANIZATION, id, s.clock.now());
    Ok(s.store.delete_connected_organization(id, &event).await?)
}

fn sponsor_activity(kind: SponsorKind, add: bool) -> Activity {
    match (kind, add) {
        (SponsorKind::Internal, true) => Activity::AssignInternalSponsor,
        (SponsorKind::External, true) => Activity::AssignExternalSponsor,
        (SponsorKind::Internal, false) => Activity::RemoveInternalSponsor,
        (SponsorKind::External, false) => Activity::RemoveExternalSponsor,
    }
}

/// Makes a directory user one of an organization's sponsors (`…/internalSponsors/$ref`).
pub async fn add_sponsor(
    s: &Services,
    cap: AdminCap,
    org: ConnectedOrganizationId,
    kind: SponsorKind,
    user: UserId,
) -> Result<(), AppError> {
    require_organization(s, org).await?;
    s.store.get_user(user).await?.ok_or_else(|| AppError::not_found("user", user))?;
    let event = admin_event(cap, sponsor_activity(kind, true), CONNECTED_ORGANIZATION, org, s.clock.now())
        .with_detail(format!("{} {user}", kind.nav()));
    Ok(s.store.add_organization_sponsor(org, kind, user, &event).await?)
}

pub async fn remove_sponsor(
    s: &Services,
    cap: AdminCap,
    org: ConnectedOrganizationId,
    kind: SponsorKind,
    user: UserId,
) -> Result<(), AppError> {
    require_organization(s, org).await?;
    let event = admin_event(cap, sponsor_activity(kind, false), CONNECTED_ORGANIZATION, org, s.clock.now())
        .with_detail(format!("{} {user}", kind.nav()));
    Ok(s.store.remove_organization_sponsor(org, kind, user, &event).await?)
}

/// An organization's sponsors of one kind, as a list of users `q` filters, orders and pages.
pub async fn list_sponsors(
    s: &Services,
    _cap: AdminCap,
    org: ConnectedOrganizationId,
    kind: SponsorKind,
    q: ListQuery,
) -> Result<Page<User>, AppError> {
    require_organization(s, org).await?;
    let rel = match kind {
        SponsorKind::Internal => Relation::InternalSponsors,
        SponsorKind::External => Relation::ExternalSponsors,
    };
    Ok(s.store.list_users(&q.related(rel, org)).await?)
}

/// The connected organization a user belongs to: the organization with a domain identity
/// source of their email's domain (`connected::external_domain`; guests only).
pub async fn membership_of(s: &Services, user: &User) -> Result<Option<Membership>, AppError> {
    let Some(domain) = connected::external_domain(user) else { return Ok(None) };
    Ok(s.store
        .organization_of_domain(&domain)
        .await?
        .map(|o| Membership { id: o.id, configured: o.state == ConnectedOrganizationState::Configured }))
}

pub async fn get_settings(s: &Services, _cap: AdminCap) -> Result<EntitlementSettings, AppError> {
    Ok(s.store.entitlement_settings().await?)
}

/// A partial update of the settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsPatch {
    pub external_user_lifecycle_action: Option<ExternalUserLifecycleAction>,
    pub duration_until_external_user_deleted_after_blocked: Option<GraphDuration>,
}

pub async fn update_settings(s: &Services, cap: AdminCap, p: SettingsPatch) -> Result<EntitlementSettings, AppError> {
    let before = s.store.entitlement_settings().await?;
    let mut after = before;
    if let Some(v) = p.external_user_lifecycle_action {
        after.external_user_lifecycle_action = v;
    }
    if let Some(v) = p.duration_until_external_user_deleted_after_blocked {
        after.duration_until_external_user_deleted_after_blocked = v;
    }
    after.check()?;
    let event = with_changes(
        admin_event(cap, Activity::UpdateTenantSetting, SETTINGS, steward_domain::external::SETTINGS_ID, s.clock.now()),
        &before,
        &after,
    );
    s.store.put_entitlement_settings(&after, &event).await?;
    Ok(after)
}

/// Checks the organizations a policy's subject sets name: each set names one, by a GUID, of an
/// organization that exists (the store refuses a missing one again, inside the policy's
/// transaction).
pub(crate) async fn check_policy_organizations(
    s: &Services,
    settings: &steward_domain::policy::PolicySettings,
) -> Result<(), AppError> {
    for named in connected::organizations_named(settings) {
        let raw = named
            .ok_or_else(|| AppError::Invalid("connectedOrganizationMembers needs a connectedOrganizationId.".into()))?;
        let id: ConnectedOrganizationId = raw.parse().map_err(|_| {
            AppError::Invalid(format!(
                "connectedOrganizationMembers: '{}' is not a connected organization id (a GUID).",
                steward_domain::text::clip(raw, 80)
            ))
        })?;
        if s.store.get_connected_organization(id).await?.is_none() {
            return Err(AppError::Invalid(format!(
                "connectedOrganizationMembers: connected organization '{id}' does not exist."
            )));
        }
    }
    Ok(())
}
