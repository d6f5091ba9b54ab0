//! Audit events: one record per state change, named with Entra's activity names
//! (graph-api.md §4), written in the same transaction as the change it records.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::AuditEventId;

/// Entra's entitlement-management activity names that Steward records.
///
/// The store keeps each event's variant name (`"UserRequestsAssignment"`) as well as its
/// display name: renaming a variant orphans the rows already written under the old name, so
/// variants are only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activity {
    UserRequestsAssignment,
    UserRequestsExtension,
    UserRequestsRemoval,
    AdminAssigns,
    AdminRemoves,
    AdminUpdatesAssignment,
    SystemCreatesRequest,
    SystemRemovesRequest,
    AutoApprove,
    ApprovalStageCompleted,
    Approve,
    Deny,
    TimedOut,
    Cancel,
    ScheduleFuture,
    ReadyToFulfill,
    Fulfill,
    PartiallyFulfill,
    Failed,
    FulfillResource,
    RemoveResource,
    Extend,
    Expire,
    DeleteRequest,
    // Administrators' changes to catalogs, their resources, packages and policies.
    CreateCatalog,
    UpdateCatalog,
    DeleteCatalog,
    /// A resource added to a catalog (an `adminAdd` resource request).
    CreateResourceRequest,
    /// A resource taken out of a catalog (an `adminRemove` resource request).
    CreateResourceRemoveRequest,
    CreatePackage,
    /// Also a resource role scope added to or removed from the package (the detail says which).
    UpdatePackage,
    DeletePackage,
    CreateIncompatiblePackage,
    DeleteIncompatiblePackage,
    CreateIncompatibleGroup,
    DeleteIncompatibleGroup,
    CreatePolicy,
    UpdatePolicy,
    DeletePolicy,
    // Delegated administration (Entra's role management activity names).
    AddRoleAssignment,
    RemoveRoleAssignment,
    // Connections to delivery targets: Steward's own names (Entra has no such object).
    CreateConnection,
    UpdateConnection,
    DeleteConnection,
    // Chat webhooks of catalogs: Steward's own names.
    CreateChatWebhook,
    DeleteChatWebhook,
    // Reconciliation of a target with what Steward granted there.
    RestoreResource,
    RemoveUngrantedHolder,
    // Custom extensions of catalogs and their callbacks.
    CreateCustomExtension,
    UpdateCustomExtension,
    DeleteCustomExtension,
    /// A launch-and-wait custom extension called back (`resume`).
    CustomExtensionCallback,
    // Connected organizations, their sponsors and the tenant's settings (Entra's names).
    CreateConnectedOrganization,
    UpdateConnectedOrganization,
    DeleteConnectedOrganization,
    AssignInternalSponsor,
    AssignExternalSponsor,
    RemoveInternalSponsor,
    RemoveExternalSponsor,
    /// `entitlementManagement/settings` changed.
    UpdateTenantSetting,
    // The lifecycle of the guests Steward governs: invited when a request for them is
    // approved, blocked when their last assignment ends, deleted later, or reinstated.
    InviteExternalUser,
    BlockExternalUser,
    UnblockExternalUser,
    DeleteExternalUser,
    // The directory's users and groups written by a SCIM client (`/scim/v2`), with Entra's
    // core-directory activity names.
    AddUser,
    UpdateUser,
    DeleteUser,
    AddGroup,
    UpdateGroup,
    DeleteGroup,
    AddMemberToGroup,
    RemoveMemberFromGroup,
    // Access reviews of access package assignments (Entra's access review activity names,
    // category `Policy`).
    CreateAccessReview,
    UpdateAccessReview,
    DeleteAccessReview,
    StopAccessReview,
    AccessReviewInstanceStarted,
    RecordAccessReviewDecision,
    ApplyAccessReviewDecision,
    ResetAccessReviewDecisions,
    SendAccessReviewReminder,
}

impl Activity {
    /// The activity's display name, verbatim from Entra's audit reference (connections, which
    /// Entra does not have, are named in the same style).
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::UserRequestsAssignment => "User requests access package assignment",
            Self::UserRequestsExtension => "User requests to extend access package assignment",
            Self::UserRequestsRemoval => "User requests to remove access package assignment",
            Self::AdminAssigns => "Administrator directly assigns user to access package",
            Self::AdminRemoves => "Administrator directly removes user access package assignment",
            Self::AdminUpdatesAssignment => "Update access package assignment request",
            Self::SystemCreatesRequest => "Entitlement Management creates access package assignment request for user",
            Self::SystemRemovesRequest => "Entitlement Management removes access package assignment request for user",
            Self::AutoApprove => "Auto approve access package assignment request",
            Self::ApprovalStageCompleted => "Approval stage completed for access package assignment request",
            Self::Approve => "Approve access package assignment request",
            Self::Deny => "Deny access package assignment request",
            Self::TimedOut => "Access package assignment request timed out (no approver action taken)",
            Self::Cancel => "Cancel access package assignment request",
            Self::ScheduleFuture => "Schedule a future access package assignment",
            Self::ReadyToFulfill => "Ready to fulfill access package assignment request",
            Self::Fulfill => "Fulfill access package assignment request",
            Self::PartiallyFulfill => "Partially fulfill access package assignment request",
            Self::Failed => "Failed access package assignment request",
            Self::FulfillResource => "Fulfill access package resource assignment",
            Self::RemoveResource => "Remove access package resource assignment",
            Self::Extend => "Extend access package assignment",
            Self::Expire => "Entitlement Management removes access package assignment request for user",
            Self::DeleteRequest => "Delete access package assignment request",
            Self::AddRoleAssignment => "Add member to role",
            Self::RemoveRoleAssignment => "Remove member from role",
            Self::CreateCatalog => "Create access package catalog",
            Self::UpdateCatalog => "Update access package catalog",
            Self::DeleteCatalog => "Delete access package catalog",
            Self::CreateResourceRequest => "Create resource request",
            Self::CreateResourceRemoveRequest => "Create resource remove request",
            Self::CreatePackage => "Create access package",
            Self::UpdatePackage => "Update access package",
            Self::DeletePackage => "Delete access package",
            Self::CreateIncompatiblePackage => "Create incompatible access package",
            Self::DeleteIncompatiblePackage => "Delete incompatible access package",
            Self::CreateIncompatibleGroup => "Create incompatible group",
            Self::DeleteIncompatibleGroup => "Delete incompatible group",
            Self::CreatePolicy => "Create access package assignment policy",
            Self::UpdatePolicy => "Update access package assignment policy",
            Self::DeletePolicy => "Delete access package assignment policy",
            Self::CreateConnection => "Create connection",
            Self::UpdateConnection => "Update connection",
            Self::DeleteConnection => "Delete connection",
            Self::CreateChatWebhook => "Create chat webhook",
            Self::DeleteChatWebhook => "Delete chat webhook",
            Self::RestoreResource => "Restore resource access removed outside Steward",
            Self::RemoveUngrantedHolder => "Remove access not granted through Steward",
            Self::CreateCustomExtension => "Create custom extension",
            Self::UpdateCustomExtension => "Update custom extension",
            Self::DeleteCustomExtension => "Delete custom extension",
            Self::CustomExtensionCallback => "Resume access package assignment request (custom extension callback)",
            Self::CreateConnectedOrganization => "Create connected organization",
            Self::UpdateConnectedOrganization => "Update connected organization",
            Self::DeleteConnectedOrganization => "Delete connected organization",
            Self::AssignInternalSponsor => "Assign user as internal sponsor",
            Self::AssignExternalSponsor => "Assign user as external sponsor",
            Self::RemoveInternalSponsor => "Remove user as internal sponsor",
            Self::RemoveExternalSponsor => "Remove user as external sponsor",
            Self::UpdateTenantSetting => "Update tenant setting",
            Self::InviteExternalUser => "Invite external user",
            Self::BlockExternalUser => "Block external user from signing in",
            Self::UnblockExternalUser => "Unblock external user sign-in",
            Self::DeleteExternalUser => "Delete external user",
            Self::AddUser => "Add user",
            Self::UpdateUser => "Update user",
            Self::DeleteUser => "Delete user",
            Self::AddGroup => "Add group",
            Self::UpdateGroup => "Update group",
            Self::DeleteGroup => "Delete group",
            Self::AddMemberToGroup => "Add member to group",
            Self::RemoveMemberFromGroup => "Remove member from group",
            Self::CreateAccessReview => "Create access review",
            Self::UpdateAccessReview => "Update access review",
            Self::DeleteAccessReview => "Delete access review",
            Self::StopAccessReview => "Stop access review",
            Self::AccessReviewInstanceStarted => "Access review instance started",
            Self::RecordAccessReviewDecision => "Record access review decision",
            Self::ApplyAccessReviewDecision => "Apply access review decision",
            Self::ResetAccessReviewDecisions => "Reset access review decisions",
            Self::SendAccessReviewReminder => "Send access review reminder",
        }
    }
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Initiator {
    /// A directory user (by id).
    User(String),
    /// An administrator token or another application, by label.
    App(String),
    /// Steward itself (timers, delivery, automatic assignment).
    System,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: Timestamp,
    pub activity: Activity,
    pub category: String,
    pub initiator: Initiator,
    /// The kind of the main target: `AccessPackageAssignmentRequest` and
    /// `AccessPackageAssignment` in the request lifecycle; `AccessPackageCatalog`,
    /// `AccessPackageResourceRequest`, `AccessPackage` and `AccessPackageAssignmentPolicy` for
    /// administrators' changes.
    pub target_type: String,
    pub target_id: String,
    /// Groups related events. In the request lifecycle: the request's id (an assignment with no
    /// request behind it: the assignment's id), so one request's events read together. For an
    /// administrator's change to a catalog, resource request, package or policy: the target's
    /// own id, so the events of one id are that object's history (a role scope or an
    /// incompatibility is a change of its package, so it has the package's id).
    pub correlation_id: String,
    pub result: String,
    /// What changed, in words or values, for the record.
    pub detail: Option<String>,
    /// The address the initiator's HTTP request came from, when a person or an application
    /// caused the event through the API or the portal (never for Steward's own work).
    pub ip_address: Option<String>,
    /// The properties the event changed, with their values before and after.
    pub modified_properties: Vec<ModifiedProperty>,
}

/// One property an event changed: Graph's `modifiedProperty`, whose values are JSON texts
/// (`"\"False\""` for the string `False`); absent before a creation and after a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedProperty {
    pub display_name: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

impl AuditEvent {
    pub fn new(
        at: Timestamp,
        activity: Activity,
        initiator: Initiator,
        target_type: &str,
        target_id: impl ToString,
        correlation_id: impl ToString,
    ) -> Self {
        Self {
            id: AuditEventId::new(),
            at,
            activity,
            category: "EntitlementManagement".to_owned(),
            initiator,
            target_type: target_type.to_owned(),
            target_id: target_id.to_string(),
            correlation_id: correlation_id.to_string(),
            result: "success".to_owned(),
            detail: None,
            ip_address: None,
            modified_properties: Vec::new(),
        }
    }

    pub fn with_changes(mut self, changes: Vec<ModifiedProperty>) -> Self {
        self.modified_properties = changes;
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn failed(mut self) -> Self {
        self.result = "failure".to_owned();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Activity::{self, *};

    /// The names rows are stored under (never change one) and the display names, verbatim from
    /// Entra's audit-activity reference.
    const ALL: &[(Activity, &str, &str)] = &[
        (UserRequestsAssignment, "UserRequestsAssignment", "User requests access package assignment"),
        (UserRequestsExtension, "UserRequestsExtension", "User requests to extend access package assignment"),
        (UserRequestsRemoval, "UserRequestsRemoval", "User requests to remove access package assignment"),
        (AdminAssigns, "AdminAssigns", "Administrator directly assigns user to access package"),
        (AdminRemoves, "AdminRemoves", "Administrator directly removes user access package assignment"),
        (AdminUpdatesAssignment, "AdminUpdatesAssignment", "Update access package assignment request"),
        (
            SystemCreatesRequest,
            "SystemCreatesRequest",
            "Entitlement Management creates access package assignment request for user",
        ),
        (
            SystemRemovesRequest,
            "SystemRemovesRequest",
            "Entitlement Management removes access package assignment request for user",
        ),
        (AutoApprove, "AutoApprove", "Auto approve access package assignment request"),
        (
            ApprovalStageCompleted,
            "ApprovalStageCompleted",
            "Approval stage completed for access package assignment request",
        ),
        (Approve, "Approve", "Approve access package assignment request"),
        (Deny, "Deny", "Deny access package assignment request"),
        (TimedOut, "TimedOut", "Access package assignment request timed out (no approver action taken)"),
        (Cancel, "Cancel", "Cancel access package assignment request"),
        (ScheduleFuture, "ScheduleFuture", "Schedule a future access package assignment"),
        (ReadyToFulfill, "ReadyToFulfill", "Ready to fulfill access package assignment request"),
        (Fulfill, "Fulfill", "Fulfill access package assignment request"),
        (PartiallyFulfill, "PartiallyFulfill", "Partially fulfill access package assignment request"),
        (Failed, "Failed", "Failed access package assignment request"),
        (FulfillResource, "FulfillResource", "Fulfill access package resource assignment"),
        (RemoveResource, "RemoveResource", "Remove access package resource assignment"),
        (Extend, "Extend", "Extend access package assignment"),
        (Expire, "Expire", "Entitlement Management removes access package assignment request for user"),
        (DeleteRequest, "DeleteRequest", "Delete access package assignment request"),
        (CreateCatalog, "CreateCatalog", "Create access package catalog"),
        (UpdateCatalog, "UpdateCatalog", "Update access package catalog"),
        (DeleteCatalog, "DeleteCatalog", "Delete access package catalog"),
        (CreateResourceRequest, "CreateResourceRequest", "Create resource request"),
        (CreateResourceRemoveRequest, "CreateResourceRemoveRequest", "Create resource remove request"),
        (CreatePackage, "CreatePackage", "Create access package"),
        (UpdatePackage, "UpdatePackage", "Update access package"),
        (DeletePackage, "DeletePackage", "Delete access package"),
        (CreateIncompatiblePackage, "CreateIncompatiblePackage", "Create incompatible access package"),
        (DeleteIncompatiblePackage, "DeleteIncompatiblePackage", "Delete incompatible access package"),
        (CreateIncompatibleGroup, "CreateIncompatibleGroup", "Create incompatible group"),
        (DeleteIncompatibleGroup, "DeleteIncompatibleGroup", "Delete incompatible group"),
        (CreatePolicy, "CreatePolicy", "Create access package assignment policy"),
        (UpdatePolicy, "UpdatePolicy", "Update access package assignment policy"),
        (DeletePolicy, "DeletePolicy", "Delete access package assignment policy"),
        (AddRoleAssignment, "AddRoleAssignment", "Add member to role"),
        (RemoveRoleAssignment, "RemoveRoleAssignment", "Remove member from role"),
        (CreateConnection, "CreateConnection", "Create connection"),
        (UpdateConnection, "UpdateConnection", "Update connection"),
        (DeleteConnection, "DeleteConnection", "Delete connection"),
        (CreateChatWebhook, "CreateChatWebhook", "Create chat webhook"),
        (DeleteChatWebhook, "DeleteChatWebhook", "Delete chat webhook"),
        (RestoreResource, "RestoreResource", "Restore resource access removed outside Steward"),
        (RemoveUngrantedHolder, "RemoveUngrantedHolder", "Remove access not granted through Steward"),
        (AddUser, "AddUser", "Add user"),
        (UpdateUser, "UpdateUser", "Update user"),
        (DeleteUser, "DeleteUser", "Delete user"),
        (AddGroup, "AddGroup", "Add group"),
        (UpdateGroup, "UpdateGroup", "Update group"),
        (DeleteGroup, "DeleteGroup", "Delete group"),
        (AddMemberToGroup, "AddMemberToGroup", "Add member to group"),
        (RemoveMemberFromGroup, "RemoveMemberFromGroup", "Remove member from group"),
    ];

    /// Connected organizations, settings and the governed guests' lifecycle.
    const EXTERNAL: [(Activity, &str, &str); 12] = [
        (CreateConnectedOrganization, "CreateConnectedOrganization", "Create connected organization"),
        (UpdateConnectedOrganization, "UpdateConnectedOrganization", "Update connected organization"),
        (DeleteConnectedOrganization, "DeleteConnectedOrganization", "Delete connected organization"),
        (AssignInternalSponsor, "AssignInternalSponsor", "Assign user as internal sponsor"),
        (AssignExternalSponsor, "AssignExternalSponsor", "Assign user as external sponsor"),
        (RemoveInternalSponsor, "RemoveInternalSponsor", "Remove user as internal sponsor"),
        (RemoveExternalSponsor, "RemoveExternalSponsor", "Remove user as external sponsor"),
        (UpdateTenantSetting, "UpdateTenantSetting", "Update tenant setting"),
        (InviteExternalUser, "InviteExternalUser", "Invite external user"),
        (BlockExternalUser, "BlockExternalUser", "Block external user from signing in"),
        (UnblockExternalUser, "UnblockExternalUser", "Unblock external user sign-in"),
        (DeleteExternalUser, "DeleteExternalUser", "Delete external user"),
    ];

    /// Access reviews.
    const REVIEWS: [(Activity, &str, &str); 9] = [
        (CreateAccessReview, "CreateAccessReview", "Create access review"),
        (UpdateAccessReview, "UpdateAccessReview", "Update access review"),
        (DeleteAccessReview, "DeleteAccessReview", "Delete access review"),
        (StopAccessReview, "StopAccessReview", "Stop access review"),
        (AccessReviewInstanceStarted, "AccessReviewInstanceStarted", "Access review instance started"),
        (RecordAccessReviewDecision, "RecordAccessReviewDecision", "Record access review decision"),
        (ApplyAccessReviewDecision, "ApplyAccessReviewDecision", "Apply access review decision"),
        (ResetAccessReviewDecisions, "ResetAccessReviewDecisions", "Reset access review decisions"),
        (SendAccessReviewReminder, "SendAccessReviewReminder", "Send access review reminder"),
    ];

    #[test]
    fn review_activity_names_are_stable() {
        for (activity, stored, display) in REVIEWS {
            assert_eq!(serde_json::to_value(activity).unwrap(), serde_json::json!(stored));
            assert_eq!(serde_json::from_value::<Activity>(serde_json::json!(stored)).unwrap(), activity);
            assert_eq!(activity.display_name(), display, "{stored}");
        }
    }

    #[test]
    fn external_activity_names_are_stable() {
        for (activity, stored, display) in EXTERNAL {
            assert_eq!(serde_json::to_value(activity).unwrap(), serde_json::json!(stored));
            assert_eq!(serde_json::from_value::<Activity>(serde_json::json!(stored)).unwrap(), activity);
            assert_eq!(activity.display_name(), display, "{stored}");
        }
    }

    #[test]
    fn stored_and_display_names_are_stable() {
        for &(activity, stored, display) in ALL {
            assert_eq!(serde_json::to_value(activity).unwrap(), serde_json::json!(stored));
            assert_eq!(serde_json::from_value::<Activity>(serde_json::json!(stored)).unwrap(), activity);
            assert_eq!(activity.display_name(), display, "{stored}");
        }
    }
}
