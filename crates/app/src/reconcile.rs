//! Reconciliation (beyond Graph): a pass compares every role a connection's resources offer
//! with who holds it in the target. Access Steward granted (a grant done, on an active
//! assignment) that someone took away is restored; holders nobody granted through Steward
//! are recorded as drift and, only when the connection is authoritative, removed. Access
//! being granted or taken back right now is left alone. Passes run as jobs, queued by the
//! sweep when a connection's interval comes round, or at once on an administrator's request.

use jiff::Timestamp;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::connection::{self, Connection};
use steward_domain::directory::User;
use steward_domain::ids::ConnectionId;

use crate::audit::CONNECTION;
use crate::auth::AdminCap;
use crate::connector::Connector;
use crate::jobs::{Job, NewJob};
use crate::ports::{Batch, RoleGrant};
use crate::{AppError, Services};

/// Restores sent to the target together.
const RESTORE_CHUNK: usize = 500;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Roles compared.
    pub roles: usize,
    /// Grants put back.
    pub restored: usize,
    /// Holders nobody granted through Steward, left in place (the drift now recorded).
    pub drift: usize,
    /// Holders nobody granted, removed (authoritative connections only).
    pub removed: usize,
    /// What could not be compared, restored or removed, and why.
    pub failures: Vec<String>,
}

/// A pass now, for an administrator (`POST …/connections/{id}/reconcile`).
pub async fn reconcile_now(s: &Services, _cap: AdminCap, id: ConnectionId) -> Result<Report, AppError> {
    let c = crate::connections::require_connection(s, id).await?;
    pass(s, &c).await
}

/// Queues a pass for each connection whose interval has come round (the sweep calls this).
pub(crate) async fn queue_due(s: &Services, now: Timestamp) -> Result<(), AppError> {
    for c in s.store.due_reconciliations(now).await? {
        s.store.apply(&Batch { jobs: vec![NewJob::reconcile(c.id, now)], ..Batch::default() }).await?;
        s.store.set_reconcile_at(c.id, c.reconciliation.next_after(now)).await?;
    }
    Ok(())
}

/// Runs a queued pass. A connection deleted meanwhile has nothing to compare; a pass that
/// fails part-way says so in the log and is not retried before its next turn.
pub(crate) async fn run(s: &Services, job: &Job, owner: &str, id: ConnectionId) -> Result<(), AppError> {
    if let Some(c) = s.store.get_connection(id).await? {
        match pass(s, &c).await {
            Ok(r) => tracing::info!(
                connection = %id, roles = r.roles, restored = r.restored, drift = r.drift, removed = r.removed,
                failures = r.failures.len(), "reconciliation pass"
            ),
            Err(e) => tracing::warn!(connection = %id, error = %e, "a reconciliation pass failed"),
        }
    }
    s.store.finish_job(job.id, owner, &Batch::default()).await?;
    Ok(())
}

/// One pass over a connection.
pub async fn pass(s: &Services, c: &Connection) -> Result<Report, AppError> {
    let connector = s
        .connectors
        .for_origin(connection::origin_system(c.kind))
        .cloned()
        .ok_or_else(|| AppError::Invalid("Connections cannot be reached from this process.".into()))?;
    let mut report = Report::default();
    for g in s.store.connection_role_grants(c.id).await? {
        report.roles += 1;
        let events = role(s, c, connector.as_ref(), &g, &mut report).await?;
        if !events.is_empty() {
            s.store.apply(&Batch { events, ..Batch::default() }).await?;
        }
    }
    let label = c.id.to_string();
    metrics::gauge!("steward_reconciliation_drift", "connection" => label.clone()).set(report.drift as f64);
    metrics::counter!("steward_reconciliation_restored_total", "connection" => label.clone())
        .increment(report.restored as u64);
    metrics::counter!("steward_reconciliation_removed_total", "connection" => label).increment(report.removed as u64);
    Ok(report)
}

/// Compares one role; returns the audit events of what it changed.
async fn role(
    s: &Services,
    c: &Connection,
    connector: &dyn Connector,
    g: &RoleGrant,
    report: &mut Report,
) -> Result<Vec<AuditEvent>, AppError> {
    let name = format!("{} of {}", g.role_name, g.resource_name);
    let holders = s.store.role_holders(g.role_id).await?;
    let granted: Vec<&User> = holders.granted.iter().collect();
    let in_flight: Vec<&User> = holders.in_flight.iter().collect();
    let cmp = match connector.compare(g, &granted, &in_flight).await {
        Ok(cmp) => cmp,
        Err(e) => {
            report.failures.push(format!("{name}: {e}"));
            return Ok(Vec::new());
        }
    };
    let now = s.clock.now();
    let mut events = Vec::new();
    let missing: Vec<&User> = cmp.missing.iter().filter_map(|k| granted.get(*k).copied()).collect();
    for chunk in missing.chunks(RESTORE_CHUNK) {
        let items: Vec<(&RoleGrant, &User)> = chunk.iter().map(|u| (g, *u)).collect();
        for (u, r) in chunk.iter().zip(connector.grant_all(&items).await) {
            match r {
                Ok(()) => {
                    report.restored += 1;
                    events.push(
                        event(now, Activity::RestoreResource, c, u.id)
                            .with_detail(format!("{name} restored to {}", u.user_principal_name)),
                    );
                }
                Err(e) => report.failures.push(format!("restoring {name} to {}: {e}", u.user_principal_name)),
            }
        }
    }
    let mut drift = Vec::new();
    for holder in cmp.unexpected {
        if !c.reconciliation.authoritative {
            drift.push(holder);
            continue;
        }
        match connector.remove_holder(g, &holder).await {
            Ok(()) => {
                report.removed += 1;
                events.push(
                    event(now, Activity::RemoveUngrantedHolder, c, c.id)
                        .with_detail(format!("{name} removed from '{holder}', which Steward did not grant")),
                );
            }
            Err(e) => {
                report.failures.push(format!("removing {name} from '{holder}': {e}"));
                drift.push(holder);
            }
        }
    }
    report.drift += drift.len();
    s.store.replace_drift(c.id, g.role_id, &drift, now).await?;
    Ok(events)
}

/// A reconciliation event, correlated by the connection's id (its history reads them with
/// its own changes).
fn event(now: Timestamp, activity: Activity, c: &Connection, target: impl ToString) -> AuditEvent {
    AuditEvent::new(now, activity, Initiator::System, CONNECTION, target, c.id)
}
