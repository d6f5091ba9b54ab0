//! Audit events: one record per state change, named with Entra's activity names
//! (graph-api.md §4), written in the same transaction as the change it records.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::AuditEventId;

/// Entra's entitlement-management activity names that Steward records.
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
}

impl Activity {
    /// The activity's display name, verbatim from Entra's audit reference.
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
    /// The kind of the main target (`AccessPackageAssignmentRequest`, `AccessPackageAssignment`).
    pub target_type: String,
    pub target_id: String,
    /// Groups the events of one request.
    pub correlation_id: String,
    pub result: String,
    /// What changed, in words or values, for the record.
    pub detail: Option<String>,
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
        }
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
