//! The job runner: claims due jobs with a lease and runs each handler. The loop that calls it
//! (and sleeps between rounds) belongs to the server; tests call `run_once` and `drain`.

use std::sync::Arc;

use jiff::SignedDuration;

use super::{automatic, delivery, sweep};
use crate::jobs::{JobKind, NewJob};
use crate::ports::Batch;
use crate::{AppError, Services};

/// How long a claimed job stays with its claimer before another process may take it.
pub const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Jobs claimed per round.
pub const CLAIM: u32 = 32;

/// Runs jobs as `owner` (a name unique to this process).
///
/// Clones share one round lock: rounds of a worker and its clones never overlap. So when the
/// server's background loop and a test's `drain` use the same worker, a drain that finds
/// nothing due also knows that nothing is still running in this process.
#[derive(Clone)]
pub struct Worker {
    s: Services,
    owner: String,
    round: Arc<tokio::sync::Mutex<()>>,
}

impl Worker {
    pub fn new(s: Services, owner: impl Into<String>) -> Self {
        Self { s, owner: owner.into(), round: Arc::default() }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Makes sure the sweep job exists (it is a singleton: a second insert does nothing).
    pub async fn ensure_sweep(&self) -> Result<(), AppError> {
        let now = self.s.clock.now();
        self.s.store.apply(&Batch { jobs: vec![NewJob::sweep(now)], ..Batch::default() }).await?;
        Ok(())
    }

    /// Claims up to `CLAIM` due jobs and runs them; returns how many ran.
    pub async fn run_once(&self) -> Result<usize, AppError> {
        let _round = self.round.lock().await;
        let now = self.s.clock.now();
        let lease_until = now.saturating_add(LEASE).unwrap_or(now);
        let jobs = self.s.store.claim_jobs(&self.owner, now, lease_until, CLAIM).await?;
        let n = jobs.len();
        for job in jobs {
            let r = match &job.kind {
                JobKind::Deliver { assignment, role, action, request } => {
                    delivery::run(&self.s, &job, &self.owner, *assignment, *role, *action, *request).await
                }
                JobKind::Sweep => sweep::run(&self.s, &job, &self.owner).await.map(|_| ()),
                JobKind::Reconcile { policy } => automatic::run(&self.s, &job, &self.owner, *policy).await.map(|_| ()),
            };
            if let Err(e) = r {
                tracing::warn!(job = %job.id, kind = job.kind.name(), error = %e, "job failed; will retry");
                let at = now.saturating_add(delivery::backoff(job.attempts)).unwrap_or(now);
                if let Err(e2) = self.s.store.retry_job(job.id, &self.owner, at, &e.to_string()).await {
                    tracing::warn!(job = %job.id, error = %e2, "could not give the job back; its lease will run out");
                }
            }
        }
        Ok(n)
    }

    /// Runs rounds until no job is due (at most `rounds`), for tests and shutdown.
    pub async fn drain(&self, rounds: usize) -> Result<usize, AppError> {
        let mut total = 0;
        for _ in 0..rounds {
            let n = self.run_once().await?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }
}
