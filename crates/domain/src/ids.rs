//! Newtype ids: one type per kind of object, so a user id can never be passed where a package
//! id is expected. All are UUIDs (v7 when Steward creates them: time-ordered keys), written in
//! lowercase hyphenated form on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::DomainError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// What this id names, for error messages ("access package").
            pub const KIND: &'static str = $what;

            /// A new time-ordered id; `now_ms`-free because uuid v7 reads its own entropy and
            /// the timestamp is only an ordering hint for index locality, never business time.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_uuid(s).map(Self).ok_or_else(|| {
                    DomainError::invalid(format!(
                        "Invalid {} id '{}': expected a GUID such as 00000000-0000-0000-0000-000000000000.",
                        $what,
                        crate::text::clip(s, 80)
                    ))
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Accepts the hyphenated form only (with or without braces), as Graph does for object ids.
fn parse_uuid(s: &str) -> Option<Uuid> {
    let s = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or(s);
    if s.len() != 36 {
        return None;
    }
    Uuid::parse_str(s).ok()
}

id_type!(/// A configured connection to a delivery target (an LDAP directory, a SCIM application,
    /// a PostgreSQL server).
    ConnectionId, "connection");
id_type!(/// A catalog's chat webhook (`chat::ChatWebhook`).
    ChatWebhookId, "chat webhook");
id_type!(/// A directory user.
    UserId, "user");
id_type!(/// A directory group.
    GroupId, "group");
id_type!(/// An access-package catalog.
    CatalogId, "catalog");
id_type!(/// An access package.
    AccessPackageId, "access package");
id_type!(/// A resource added to a catalog.
    ResourceId, "resource");
id_type!(/// A role on a catalog resource.
    ResourceRoleId, "resource role");
id_type!(/// A scope of a catalog resource.
    ResourceScopeId, "resource scope");
id_type!(/// A resource role scope of an access package.
    ResourceRoleScopeId, "resource role scope");
id_type!(/// A resource request (adminAdd / adminRemove of a resource into a catalog).
    ResourceRequestId, "resource request");
id_type!(/// An API token.
    TokenId, "token");
id_type!(/// An assignment policy of an access package.
    PolicyId, "assignment policy");
id_type!(/// An assignment request (add, update or remove access).
    RequestId, "assignment request");
id_type!(/// An access package assignment.
    AssignmentId, "assignment");
id_type!(/// One approval stage of an assignment request.
    ApprovalStageId, "approval stage");
id_type!(/// A background job.
    JobId, "job");
id_type!(/// An audit event.
    AuditEventId, "audit event");
id_type!(/// A custom extension of a catalog (Graph's customCalloutExtension).
    CustomExtensionId, "custom extension");
id_type!(/// One call of a custom extension at one stage (Graph's customExtensionStageInstanceId).
    CalloutInstanceId, "custom extension stage instance");
id_type!(/// A connected organization: an external organization whose users may request access.
    ConnectedOrganizationId, "connected organization");
id_type!(/// An access review definition (Graph's accessReviewScheduleDefinition).
    ReviewDefinitionId, "access review definition");
id_type!(/// One occurrence of an access review (Graph's accessReviewInstance).
    ReviewInstanceId, "access review instance");
id_type!(/// One assignment's decision in an access review instance (Graph's
    /// accessReviewInstanceDecisionItem).
    ReviewDecisionId, "access review decision");
id_type!(/// An access review history report (Graph's accessReviewHistoryDefinition).
    HistoryDefinitionId, "access review history definition");
id_type!(/// One run of a history report (Graph's accessReviewHistoryInstance).
    HistoryInstanceId, "access review history instance");
id_type!(/// A delegated-administration role assignment (Graph's unifiedRoleAssignment).
    RoleAssignmentId, "role assignment");

/// A directory object: what `$ref` bodies, sponsors and memberships point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryObjectId {
    User(UserId),
    Group(GroupId),
}

impl DirectoryObjectId {
    pub fn uuid(&self) -> &Uuid {
        match self {
            Self::User(u) => u.as_uuid(),
            Self::Group(g) => g.as_uuid(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = AccessPackageId::new();
        let parsed: AccessPackageId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
        assert!("not-a-guid".parse::<CatalogId>().is_err());
        assert!("".parse::<CatalogId>().is_err());
        assert!("0000000000000000000000000000000".parse::<CatalogId>().is_err());
        let braced = format!("{{{id}}}");
        assert_eq!(braced.parse::<AccessPackageId>().unwrap(), id);
        let err = "x".parse::<UserId>().unwrap_err().to_string();
        assert!(err.contains("user id 'x'"), "{err}");
    }

    #[test]
    fn uppercase_is_accepted_and_emitted_lowercase() {
        let id: GroupId = "6F1C2D3E-0000-4000-8000-00000000000A".parse().unwrap();
        assert_eq!(id.to_string(), "6f1c2d3e-0000-4000-8000-00000000000a");
    }
}
