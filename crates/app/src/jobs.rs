//! Background jobs: what a job does (its kind and payload) and the rows the store's lease-based
//! queue keeps. Handlers live with their use cases; the worker loop runs them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use steward_domain::assignment::GrantAction;
use steward_domain::enums::CustomExtensionStage;
use steward_domain::ids::{
    AssignmentId, CalloutInstanceId, ConnectionId, CustomExtensionId, JobId, PolicyId, RequestId, ResourceRoleId,
    ReviewDefinitionId, ReviewInstanceId, UserId,
};

/// What a job does. Stored as JSON; handlers are idempotent, so running one twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum JobKind {
    /// Grant or revoke one resource role of an assignment in its target system.
    #[serde(rename_all = "camelCase")]
    Deliver {
        assignment: AssignmentId,
        role: ResourceRoleId,
        action: GrantAction,
        /// The request the delivery completes, if any.
        request: Option<RequestId>,
    },
    /// Look at everything the clock has made due: approval escalations and timeouts,
    /// scheduled starts, expiries. One at a time across all processes (a singleton job).
    Sweep,
    /// Bring an automatic-assignment policy's assignments in step with its rule.
    #[serde(rename_all = "camelCase")]
    Reconcile { policy: PolicyId },
    /// Queue the revocations of assignments that have just ended (one `Deliver` job and one
    /// pending delivery per role each grants): the sweep queues one of these per thousand
    /// expiries instead of writing all of that itself while it holds the sweep.
    #[serde(rename_all = "camelCase")]
    RevokeEnded { assignments: Vec<AssignmentId> },
    /// Compare a connection's target with what Steward granted there: restore what was
    /// taken away, report (and, if authoritative, remove) what nobody granted.
    #[serde(rename_all = "camelCase")]
    ReconcileConnection { connection: ConnectionId },
    /// Call a custom extension at one stage of a request or an assignment: one signed POST,
    /// retried as the extension allows. A launch-and-wait call's instance row exists already
    /// (`waitingForCallback`); a fire-and-forget one's is written with the outcome.
    #[serde(rename_all = "camelCase")]
    Callout {
        instance: CalloutInstanceId,
        extension: CustomExtensionId,
        stage: CustomExtensionStage,
        request: Option<RequestId>,
        assignment: Option<AssignmentId>,
    },
    /// Governed guests some of whose assignments just ended: each who holds none any more has
    /// their sign-in blocked as the tenant's settings say (`lifecycle::guests`).
    #[serde(rename_all = "camelCase")]
    GuestsLostAccess { users: Vec<UserId> },
    /// Halfway through a stage of an access review instance: escalate to the fallback
    /// reviewers what nobody is left to decide, and remind the reviewers (`reviews::remind`).
    #[serde(rename_all = "camelCase")]
    ReviewReminder { definition: ReviewDefinitionId, instance: ReviewInstanceId, stage: u32 },
}

impl JobKind {
    /// Every kind's `name`, for gauges that must show the kinds without jobs at zero.
    pub const NAMES: &'static [&'static str] = &[
        "deliver",
        "sweep",
        "reconcile",
        "revokeEnded",
        "reconcileConnection",
        "callout",
        "guestsLostAccess",
        "reviewReminder",
    ];

    /// A short name for the store's `kind` column and for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Deliver { .. } => "deliver",
            Self::Sweep => "sweep",
            Self::Reconcile { .. } => "reconcile",
            Self::RevokeEnded { .. } => "revokeEnded",
            Self::ReconcileConnection { .. } => "reconcileConnection",
            Self::Callout { .. } => "callout",
            Self::GuestsLostAccess { .. } => "guestsLostAccess",
            Self::ReviewReminder { .. } => "reviewReminder",
        }
    }
}

/// The singleton key of the sweep job.
pub const SWEEP_KEY: &str = "sweep";

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: JobId,
    pub kind: JobKind,
    pub run_at: Timestamp,
    /// At most one job with a given key exists; inserting a second is a no-op.
    pub singleton: Option<String>,
}

impl NewJob {
    pub fn now(kind: JobKind, now: Timestamp) -> Self {
        Self { id: JobId::new(), kind, run_at: now, singleton: None }
    }
    pub fn sweep(run_at: Timestamp) -> Self {
        Self { id: JobId::new(), kind: JobKind::Sweep, run_at, singleton: Some(SWEEP_KEY.to_owned()) }
    }
    /// A connection's reconciliation pass: one pending per connection at most.
    pub fn reconcile(connection: ConnectionId, run_at: Timestamp) -> Self {
        Self {
            id: JobId::new(),
            kind: JobKind::ReconcileConnection { connection },
            run_at,
            singleton: Some(format!("reconcile:{connection}")),
        }
    }
}

/// A leased job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    /// How many times it has been claimed, this claim included.
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_named_in_names() {
        let kinds = [
            JobKind::Deliver {
                assignment: AssignmentId::new(),
                role: ResourceRoleId::new(),
                action: GrantAction::Grant,
                request: None,
            },
            JobKind::Sweep,
            JobKind::Reconcile { policy: PolicyId::new() },
            JobKind::RevokeEnded { assignments: vec![] },
            JobKind::ReconcileConnection { connection: ConnectionId::new() },
            JobKind::Callout {
                instance: CalloutInstanceId::new(),
                extension: CustomExtensionId::new(),
                stage: CustomExtensionStage::AssignmentRequestCreated,
                request: None,
                assignment: None,
            },
            JobKind::GuestsLostAccess { users: vec![] },
            JobKind::ReviewReminder {
                definition: ReviewDefinitionId::new(),
                instance: ReviewInstanceId::new(),
                stage: 0,
            },
        ];
        for k in &kinds {
            // No wildcard: a new kind stops this compiling until it is listed here and in NAMES.
            match k {
                JobKind::Deliver { .. }
                | JobKind::Sweep
                | JobKind::Reconcile { .. }
                | JobKind::RevokeEnded { .. }
                | JobKind::ReconcileConnection { .. }
                | JobKind::Callout { .. }
                | JobKind::GuestsLostAccess { .. }
                | JobKind::ReviewReminder { .. } => assert!(JobKind::NAMES.contains(&k.name()), "{}", k.name()),
            }
        }
        assert_eq!(kinds.len(), JobKind::NAMES.len());
    }
}
