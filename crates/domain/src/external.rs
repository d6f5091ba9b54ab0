//! External users Steward governs: the guest it invites when a request for someone not yet in
//! the directory (known only by email) is approved, and what happens to a governed guest when
//! their last assignment ends, as the tenant's `entitlementManagementSettings` say: sign-in is
//! blocked at once, and the account deleted after a while, unless a new assignment comes first.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DomainError;
use crate::connected::Email;
use crate::directory::User;
use crate::duration::GraphDuration;
use crate::enums::{ExternalUserLifecycleAction, SubjectLifecycle, UserType};
use crate::ids::{ConnectedOrganizationId, UserId};
use crate::text::DisplayName;

/// The id of the settings singleton (Graph: "a constant").
pub const SETTINGS_ID: &str = "6b1f0e22-7d51-4b7c-9d0e-5e3a1c2f4a10";

/// The tenant-wide settings of entitlement management (Graph's
/// `entitlementManagementSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementSettings {
    /// What happens to a governed external user whose last assignment ends.
    pub external_user_lifecycle_action: ExternalUserLifecycleAction,
    /// With `blockSignInAndDelete`: how long after the block the account is deleted.
    pub duration_until_external_user_deleted_after_blocked: GraphDuration,
}

impl Default for EntitlementSettings {
    /// Graph documents no default; these are the values Entra shows a new tenant and Graph's
    /// examples return: block, then delete after 30 days.
    fn default() -> Self {
        Self {
            external_user_lifecycle_action: ExternalUserLifecycleAction::BlockSignInAndDelete,
            duration_until_external_user_deleted_after_blocked: GraphDuration::from_secs(30 * 86_400),
        }
    }
}

impl EntitlementSettings {
    /// The duration cannot be negative (zero deletes at the next sweep).
    pub fn check(&self) -> Result<(), DomainError> {
        if self.duration_until_external_user_deleted_after_blocked.as_signed().is_negative() {
            return Err(DomainError::invalid(format!(
                "durationUntilExternalUserDeletedAfterBlocked must not be negative; got {}.",
                self.duration_until_external_user_deleted_after_blocked
            )));
        }
        Ok(())
    }

    /// What to do when a governed external user's last assignment ended at `now`: nothing
    /// (`None`), or block their sign-in and delete them at the moment given, if at all.
    pub fn on_last_assignment_ended(&self, now: Timestamp) -> Option<Block> {
        match self.external_user_lifecycle_action {
            ExternalUserLifecycleAction::None => None,
            ExternalUserLifecycleAction::BlockSignIn => Some(Block { at: now, delete_at: None }),
            ExternalUserLifecycleAction::BlockSignInAndDelete => Some(Block {
                at: now,
                delete_at: Some(
                    now.saturating_add(self.duration_until_external_user_deleted_after_blocked.as_signed())
                        .unwrap_or(now),
                ),
            }),
        }
    }

    /// Whether blocked users are deleted when their time comes (the setting as it is then: an
    /// administrator who turns deletion off keeps the users blocked so far).
    pub fn deletes(&self) -> bool {
        self.external_user_lifecycle_action == ExternalUserLifecycleAction::BlockSignInAndDelete
    }
}

/// A block of a governed external user's sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub at: Timestamp,
    /// When the account is deleted, if it is.
    pub delete_at: Option<Timestamp>,
}

/// Steward's record of an external user: the connected organization they came from, whether
/// Steward governs their lifecycle (guests it invited: `governed`), and where that lifecycle
/// stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUser {
    pub user_id: UserId,
    /// The organization of their email's domain when they were invited (kept for the record;
    /// eligibility reads the organization the domain belongs to now).
    pub connected_organization_id: Option<ConnectedOrganizationId>,
    pub lifecycle: SubjectLifecycle,
    /// When Steward blocked their sign-in, while it stays blocked.
    pub blocked_at: Option<Timestamp>,
    /// When Steward deletes them, while that is planned.
    pub delete_at: Option<Timestamp>,
    pub created_date_time: Timestamp,
}

impl ExternalUser {
    pub fn governed(&self) -> bool {
        self.lifecycle == SubjectLifecycle::Governed
    }
}

/// Someone not yet in the directory, invited by a request: they become a guest when the request
/// is approved and its access starts, in the same transaction as their assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestInvitation {
    /// Their email address, which is also their userPrincipalName and mail.
    pub email: String,
    pub display_name: DisplayName,
    /// The connected organization of the email's domain when the request was made.
    pub connected_organization_id: ConnectedOrganizationId,
}

impl GuestInvitation {
    /// An invitation of `email` (display name: the one given, else the address).
    pub fn new(
        email: &Email,
        display_name: Option<&str>,
        organization: ConnectedOrganizationId,
    ) -> Result<Self, DomainError> {
        let display_name = DisplayName::parse(display_name.filter(|n| !n.trim().is_empty()).unwrap_or(email.as_str()))?;
        Ok(Self { email: email.as_str().to_owned(), display_name, connected_organization_id: organization })
    }

    /// The id the guest gets: derived from the email address (ignoring case), so every request
    /// inviting one person names the same future user, and one open request, one assignment per
    /// package hold for them as for anyone.
    pub fn user_id(&self) -> UserId {
        guest_id(&self.email)
    }

    /// The guest as created: `userType` Guest, the email as userPrincipalName and mail (not
    /// Entra's `alias_domain#EXT#@tenant` form, which needs a tenant domain Steward does not
    /// have), enabled.
    pub fn user(&self, now: Timestamp) -> User {
        User {
            id: self.user_id(),
            display_name: self.display_name.clone(),
            user_principal_name: self.email.clone(),
            mail: Some(self.email.clone()),
            user_type: UserType::Guest,
            account_enabled: true,
            department: None,
            job_title: None,
            company_name: None,
            employee_id: None,
            city: None,
            country: None,
            created_date_time: now,
            manager: None,
        }
    }

    /// Steward's record of the guest it creates: governed, from the invitation's organization.
    pub fn record(&self, now: Timestamp) -> ExternalUser {
        ExternalUser {
            user_id: self.user_id(),
            connected_organization_id: Some(self.connected_organization_id),
            lifecycle: SubjectLifecycle::Governed,
            blocked_at: None,
            delete_at: None,
            created_date_time: now,
        }
    }
}

/// The id of the guest invited with `email` (compared ignoring case): the first 16 bytes of a
/// SHA-256 of it, as a UUID of version 8 (custom).
pub fn guest_id(email: &str) -> UserId {
    let digest = Sha256::digest(format!("steward-guest:{}", email.to_lowercase()).as_bytes());
    let mut bytes = [0_u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest.iter()) {
        *b = *d;
    }
    UserId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_blocks_then_deletes_after_thirty_days() {
        let s = EntitlementSettings::default();
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["externalUserLifecycleAction"], "blockSignInAndDelete");
        assert_eq!(v["durationUntilExternalUserDeletedAfterBlocked"], "P30D");
        let now: Timestamp = "2031-01-01T00:00:00Z".parse().unwrap();
        let b = s.on_last_assignment_ended(now).unwrap();
        assert_eq!(b.delete_at, Some("2031-01-31T00:00:00Z".parse().unwrap()));
        let only_block =
            EntitlementSettings { external_user_lifecycle_action: ExternalUserLifecycleAction::BlockSignIn, ..s };
        assert_eq!(only_block.on_last_assignment_ended(now), Some(Block { at: now, delete_at: None }));
        let none = EntitlementSettings { external_user_lifecycle_action: ExternalUserLifecycleAction::None, ..s };
        assert_eq!(none.on_last_assignment_ended(now), None);
        let negative = EntitlementSettings {
            duration_until_external_user_deleted_after_blocked: GraphDuration::from_secs(-1),
            ..s
        };
        assert!(negative.check().is_err());
    }

    #[test]
    fn an_invitation_makes_a_governed_guest_with_an_id_of_its_email() {
        let email = Email::parse("Jane@Fabrikam.com").unwrap();
        let org = ConnectedOrganizationId::new();
        let inv = GuestInvitation::new(&email, None, org).unwrap();
        assert_eq!(inv.display_name.as_str(), "Jane@fabrikam.com");
        let again = GuestInvitation::new(&Email::parse("jane@FABRIKAM.com").unwrap(), Some("Jane"), org).unwrap();
        assert_eq!(inv.user_id(), again.user_id(), "the same person, whatever the case");
        assert_ne!(inv.user_id(), guest_id("john@fabrikam.com"));
        let id: UserId = inv.user_id().to_string().parse().unwrap();
        assert_eq!(id, inv.user_id(), "a well-formed user id");
        let now = Timestamp::UNIX_EPOCH;
        let u = inv.user(now);
        assert_eq!(
            (u.user_type, u.user_principal_name.as_str(), u.mail.as_deref()),
            (UserType::Guest, "Jane@fabrikam.com", Some("Jane@fabrikam.com"))
        );
        let r = inv.record(now);
        assert!(r.governed() && r.blocked_at.is_none() && r.connected_organization_id == Some(org));
    }
}
