//! The figures behind the gauges read at scrape time (`steward_app::metrics`): three grouped
//! counts, the same SQL on SQLite and PostgreSQL, read outside any transaction (a scrape does
//! not need them consistent with each other, and must not hold up writers).

use steward_app::metrics::{JobCounts, MetricsSnapshot};
use steward_domain::review::{Decision, ReviewStatus};

use super::*;

/// A count as stored (never negative) as a gauge's value.
fn count(c: &mut Cells<'_>) -> StoreResult<u64> {
    Ok(u64::try_from(c.int()?).unwrap_or(0))
}

impl SqlStore {
    pub(super) async fn metrics_snapshot_impl(&self, now: jiff::Timestamp) -> StoreResult<MetricsSnapshot> {
        let mut snap = MetricsSnapshot::default();
        for r in self
            .driver
            .fetch("SELECT state, COUNT(*) FROM assignment_requests GROUP BY state ORDER BY state", &[])
            .await?
        {
            let c = &mut Cells::new(&r);
            snap.requests.push((c.text()?, count(c)?));
        }
        // Due: `run_at` has come (held by a worker or not). The oldest due job no worker holds
        // (no lease, or a lease that ran out) is what a worker would claim next.
        let jobs = self
            .driver
            .fetch(
                "SELECT kind, COUNT(CASE WHEN run_at <= $1 THEN 1 END), COUNT(CASE WHEN run_at > $1 THEN 1 END), \
                 MIN(CASE WHEN run_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) THEN run_at END) \
                 FROM jobs GROUP BY kind ORDER BY kind",
                &[ts(now)],
            )
            .await?;
        let mut oldest: Option<jiff::Timestamp> = None;
        for r in jobs {
            let c = &mut Cells::new(&r);
            snap.jobs.push(JobCounts { kind: c.text()?, due: count(c)?, scheduled: count(c)? });
            if let Some(t) = c.opt_time()? {
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
        }
        snap.oldest_due_job_age =
            oldest.map_or(jiff::SignedDuration::ZERO, |t| now.duration_since(t).max(jiff::SignedDuration::ZERO));
        let rows = self
            .driver
            .fetch(
                "SELECT COUNT(*), COUNT(CASE WHEN d.decision <> $2 THEN 1 END) FROM review_decisions d \
                 JOIN review_instances i ON i.id = d.instance_id WHERE i.status = $1",
                &[ReviewStatus::InProgress.as_str().into(), Decision::NotReviewed.as_str().into()],
            )
            .await?;
        if let Some(r) = rows.first() {
            let c = &mut Cells::new(r);
            snap.review_decisions = count(c)?;
            snap.review_decisions_decided = count(c)?;
        }
        Ok(snap)
    }
}
