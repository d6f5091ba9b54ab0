//! Access package assignments: a subject's access to a package over a window, and the
//! delivery of each of the package's resource roles into its target system.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::enums::AssignmentState;
use crate::ids::{AccessPackageId, AssignmentId, CatalogId, PolicyId, ResourceRoleId, UserId};
use crate::schedule::Window;

/// A subject's access to a package.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub id: AssignmentId,
    pub access_package_id: AccessPackageId,
    pub catalog_id: CatalogId,
    pub policy_id: Option<PolicyId>,
    pub target_id: UserId,
    pub state: AssignmentState,
    /// Graph's free-text detail: `Delivering`, `Delivered`, `Expired`, `Removed`, …
    pub status: String,
    pub window: Window,
    pub expired_date_time: Option<Timestamp>,
    pub created_date_time: Timestamp,
    /// Changes on every write; the store's optimistic-concurrency token.
    pub modified_date_time: Timestamp,
}

impl Assignment {
    /// Whether the assignment still grants (or is about to grant) access.
    pub fn is_active(&self) -> bool {
        self.state != AssignmentState::Expired
    }

    /// Ends the assignment at `now` with `status` (`Expired`, `Removed`).
    pub fn end(&mut self, status: &str, now: Timestamp) {
        self.state = AssignmentState::Expired;
        self.status = status.to_owned();
        self.expired_date_time = Some(now);
    }
}

/// Whether a resource role is to be granted or taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GrantAction {
    Grant,
    Revoke,
}

/// Where one resource role of one assignment stands in its target system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    Pending,
    Done,
    Failed,
}

impl DeliveryState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// One resource role of an assignment, granted or revoked in its target system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub assignment_id: AssignmentId,
    pub resource_role_id: ResourceRoleId,
    pub action: GrantAction,
    pub state: DeliveryState,
    pub attempts: u32,
    pub detail: Option<String>,
}

/// The assignment's state that its deliveries add up to: delivered when every grant is done,
/// deliveryFailed when every grant failed, partiallyDelivered when some failed and the rest
/// are done, delivering while any is pending.
pub fn rollup(deliveries: &[Delivery]) -> AssignmentState {
    let grants = deliveries.iter().filter(|d| d.action == GrantAction::Grant);
    let (mut pending, mut done, mut failed) = (0, 0, 0);
    for d in grants {
        match d.state {
            DeliveryState::Pending => pending += 1,
            DeliveryState::Done => done += 1,
            DeliveryState::Failed => failed += 1,
        }
    }
    match (pending, done, failed) {
        (p, _, _) if p > 0 => AssignmentState::Delivering,
        (_, _, 0) => AssignmentState::Delivered,
        (_, 0, _) => AssignmentState::DeliveryFailed,
        _ => AssignmentState::PartiallyDelivered,
    }
}

/// Graph's status string for an assignment state.
pub fn status_of(state: AssignmentState) -> &'static str {
    match state {
        AssignmentState::Delivering => "Delivering",
        AssignmentState::PartiallyDelivered => "PartiallyDelivered",
        AssignmentState::Delivered => "Delivered",
        AssignmentState::Expired => "Expired",
        AssignmentState::DeliveryFailed => "DeliveryFailed",
        AssignmentState::UnknownFutureValue => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(state: DeliveryState) -> Delivery {
        Delivery {
            assignment_id: AssignmentId::new(),
            resource_role_id: ResourceRoleId::new(),
            action: GrantAction::Grant,
            state,
            attempts: 0,
            detail: None,
        }
    }

    #[test]
    fn deliveries_roll_up_into_the_assignment_state() {
        use DeliveryState::*;
        assert_eq!(rollup(&[]), AssignmentState::Delivered);
        assert_eq!(rollup(&[d(Done), d(Pending)]), AssignmentState::Delivering);
        assert_eq!(rollup(&[d(Done), d(Done)]), AssignmentState::Delivered);
        assert_eq!(rollup(&[d(Done), d(Failed)]), AssignmentState::PartiallyDelivered);
        assert_eq!(rollup(&[d(Failed), d(Failed)]), AssignmentState::DeliveryFailed);
    }
}
