//! Graph's enumerations: parsed case-insensitively (docs send `AdminAdd`, the SDK `adminAdd`),
//! emitted in canonical camelCase.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

macro_rules! graph_enum {
    ($(#[$doc:meta])* $name:ident, $graph:literal { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Graph's name of the enumeration type, for error messages.
            pub const GRAPH_NAME: &'static str = $graph;
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case($wire) { return Ok($name::$variant); })+
                let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                Err(DomainError::invalid(format!(
                    "'{}' is not a valid {}; expected one of: {}.",
                    crate::text::clip(s, 64), $graph, allowed.join(", ")
                )))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
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

graph_enum!(/// Whether a catalog's packages can be requested.
    CatalogState, "accessPackageCatalogState" {
    Unpublished = "unpublished",
    Published = "published",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// Who manages a catalog.
    CatalogType, "accessPackageCatalogType" {
    UserManaged = "userManaged",
    ServiceDefault = "serviceDefault",
    ServiceManaged = "serviceManaged",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// The kind of an assignment or resource request.
    RequestType, "accessPackageRequestType" {
    NotSpecified = "notSpecified",
    UserAdd = "userAdd",
    UserUpdate = "userUpdate",
    UserRemove = "userRemove",
    AdminAdd = "adminAdd",
    AdminUpdate = "adminUpdate",
    AdminRemove = "adminRemove",
    SystemAdd = "systemAdd",
    SystemUpdate = "systemUpdate",
    SystemRemove = "systemRemove",
    OnBehalfAdd = "onBehalfAdd",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// The state of an assignment or resource request.
    RequestState, "accessPackageRequestState" {
    Submitted = "submitted",
    PendingApproval = "pendingApproval",
    Delivering = "delivering",
    Delivered = "delivered",
    DeliveryFailed = "deliveryFailed",
    Denied = "denied",
    Scheduled = "scheduled",
    Canceled = "canceled",
    PartiallyDelivered = "partiallyDelivered",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// The state of an access package assignment.
    AssignmentState, "accessPackageAssignmentState" {
    Delivering = "delivering",
    PartiallyDelivered = "partiallyDelivered",
    Delivered = "delivered",
    Expired = "expired",
    DeliveryFailed = "deliveryFailed",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// The kind of a resource role.
    RoleType, "roleType" {
    Active = "active",
    Eligible = "eligible",
    Application = "application",
    Delegated = "delegated",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// What a configured connection reaches (Steward's own, not Graph's).
    ConnectionKind, "kind" {
    PostgreSqlRoles = "postgreSqlRoles",
    Ldap = "ldap",
    Scim = "scim",
});

graph_enum!(/// Member or guest.
    UserType, "userType" {
    Member = "Member",
    Guest = "Guest",
});

graph_enum!(/// Who may be assigned through a policy.
    AllowedTargetScope, "allowedTargetScope" {
    NotSpecified = "notSpecified",
    SpecificDirectoryUsers = "specificDirectoryUsers",
    SpecificConnectedOrganizationUsers = "specificConnectedOrganizationUsers",
    SpecificDirectoryServicePrincipals = "specificDirectoryServicePrincipals",
    AllMemberUsers = "allMemberUsers",
    AllDirectoryUsers = "allDirectoryUsers",
    AllDirectoryServicePrincipals = "allDirectoryServicePrincipals",
    AllConfiguredConnectedOrganizationUsers = "allConfiguredConnectedOrganizationUsers",
    AllExternalUsers = "allExternalUsers",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// How an assignment's end is given.
    ExpirationPatternType, "expirationPatternType" {
    NotSpecified = "notSpecified",
    NoExpiration = "noExpiration",
    AfterDateTime = "afterDateTime",
    AfterDuration = "afterDuration",
});

graph_enum!(/// Whether requestors see who approves.
    ApproverInformationVisibility, "approverInformationVisibility" {
    Default = "default",
    NotVisible = "notVisible",
    Visible = "visible",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(/// When a custom extension is called (accessPackageCustomExtensionStage; Graph's
    /// `unknownFutureValue` is not accepted: no extension can run at it).
    CustomExtensionStage, "accessPackageCustomExtensionStage" {
    AssignmentRequestCreated = "assignmentRequestCreated",
    AssignmentRequestApproved = "assignmentRequestApproved",
    AssignmentRequestGranted = "assignmentRequestGranted",
    AssignmentRequestRemoved = "assignmentRequestRemoved",
    AssignmentFourteenDaysBeforeExpiration = "assignmentFourteenDaysBeforeExpiration",
    AssignmentOneDayBeforeExpiration = "assignmentOneDayBeforeExpiration",
});

graph_enum!(/// Where one call of a custom extension stands (customExtensionCalloutInstanceStatus).
    CalloutStatus, "customExtensionCalloutInstanceStatus" {
    CalloutSent = "calloutSent",
    CallbackReceived = "callbackReceived",
    CalloutFailed = "calloutFailed",
    CallbackTimedOut = "callbackTimedOut",
    WaitingForCallback = "waitingForCallback",
});

graph_enum!(/// Whether a connected organization's users count among "all configured connected
    /// organizations" (connectedOrganizationState; Graph's `unknownFutureValue` is not stored).
    ConnectedOrganizationState, "connectedOrganizationState" {
    Configured = "configured",
    Proposed = "proposed",
});

graph_enum!(/// A social identity provider (socialIdentitySourceType).
    SocialIdentitySourceType, "socialIdentitySourceType" {
    Facebook = "facebook",
});

graph_enum!(/// What happens to a governed external user whose last assignment ends
    /// (accessPackageExternalUserLifecycleAction).
    ExternalUserLifecycleAction, "accessPackageExternalUserLifecycleAction" {
    None = "none",
    BlockSignIn = "blockSignIn",
    BlockSignInAndDelete = "blockSignInAndDelete",
});

graph_enum!(/// Whether Steward governs a subject's lifecycle (accessPackageSubjectLifecycle).
    SubjectLifecycle, "accessPackageSubjectLifecycle" {
    NotDefined = "notDefined",
    NotGoverned = "notGoverned",
    Governed = "governed",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_emits_camel_case() {
        assert_eq!("AdminAdd".parse::<RequestType>().unwrap(), RequestType::AdminAdd);
        assert_eq!("ADMINADD".parse::<RequestType>().unwrap(), RequestType::AdminAdd);
        assert_eq!(RequestType::AdminAdd.to_string(), "adminAdd");
        assert_eq!("guest".parse::<UserType>().unwrap(), UserType::Guest);
        assert_eq!(UserType::Guest.to_string(), "Guest");
        let e = "sideways".parse::<CatalogState>().unwrap_err().to_string();
        assert!(e.contains("published"), "{e}");
    }

    #[test]
    fn serde_uses_the_wire_names() {
        assert_eq!(serde_json::to_string(&CatalogState::Published).unwrap(), "\"published\"");
        let s: CatalogState = serde_json::from_str("\"Unpublished\"").unwrap();
        assert_eq!(s, CatalogState::Unpublished);
    }
}
