//! The job runner: claims due jobs with a lease and runs each handler. The loop that calls it
//! (and sleeps between rounds) belongs to the server; tests call `run_once` and `drain`.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::{automatic, delivery, sweep};
use crate::jobs::{Job, JobKind, NewJob};
use crate::ports::Batch;
use crate::{AppError, Services};

/// How long a claimed job stays with its claimer before another process may take it.
pub const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Jobs claimed per round.
pub const CLAIM: u32 = 32;
/// Deliveries of one round that run at once, unless `Worker::with_parallelism` says otherwise.
pub const PARALLEL: usize = 8;

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
    parallel: usize,
}

impl Worker {
    pub fn new(s: Services, owner: impl Into<String>) -> Self {
        Self { s, owner: owner.into(), round: Arc::default(), parallel: PARALLEL }
    }

    /// The same worker, running at most `n` (at least 1) deliveries of a round at once. One
    /// suits a database that takes one writer at a time (SQLite), where deliveries running
    /// side by side would only queue for its write lock.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallel = n.max(1);
        self
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
    ///
    /// Deliveries run side by side, up to `PARALLEL` at a time by default, so that their database
    /// round trips and commits overlap instead of queueing behind one another (one at a time,
    /// a worker delivered at most a few hundred a second on PostgreSQL, each job waiting for
    /// its own two commits). The deliveries of one assignment still run one after another in
    /// claim order, since they roll up into the same rows. Any other job (the sweep, a
    /// reconciliation) runs alone, after what was claimed before it and before what was
    /// claimed after it, as when every job ran in turn.
    pub async fn run_once(&self) -> Result<usize, AppError> {
        let _round = self.round.lock().await;
        let now = self.s.clock.now();
        let lease_until = now.saturating_add(LEASE).unwrap_or(now);
        let jobs = self.s.store.claim_jobs(&self.owner, now, lease_until, CLAIM).await?;
        let n = jobs.len();
        let mut deliveries: Vec<Vec<Job>> = Vec::new();
        for job in jobs {
            match &job.kind {
                JobKind::Deliver { assignment, .. } => {
                    let lane = deliveries.iter_mut().find(|lane| {
                        lane.first().is_some_and(
                            |j| matches!(&j.kind, JobKind::Deliver { assignment: a, .. } if a == assignment),
                        )
                    });
                    match lane {
                        Some(lane) => lane.push(job),
                        None => deliveries.push(vec![job]),
                    }
                }
                JobKind::Sweep | JobKind::Reconcile { .. } => {
                    self.run_lanes(std::mem::take(&mut deliveries), now).await;
                    run_job(&self.s, &self.owner, &job, now).await;
                }
            }
        }
        self.run_lanes(deliveries, now).await;
        Ok(n)
    }

    /// Runs each lane's jobs in order, up to `self.parallel` lanes at once, and waits for all.
    async fn run_lanes(&self, lanes: Vec<Vec<Job>>, now: Timestamp) {
        match lanes.len() {
            0 => return,
            _ if self.parallel == 1 => {
                for job in lanes.iter().flatten() {
                    run_job(&self.s, &self.owner, job, now).await;
                }
                return;
            }
            1 => {
                for job in lanes.iter().flatten() {
                    run_job(&self.s, &self.owner, job, now).await;
                }
                return;
            }
            _ => {}
        }
        let mut lanes = lanes.into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < self.parallel {
                let Some(lane) = lanes.next() else { break };
                let (s, owner) = (self.s.clone(), self.owner.clone());
                running.spawn(async move {
                    for job in &lane {
                        run_job(&s, &owner, job, now).await;
                    }
                });
            }
            match running.join_next().await {
                Some(Ok(())) => {}
                // A panicking job has been logged by the runtime; its lease runs out and it
                // is claimed again.
                Some(Err(e)) => tracing::warn!(error = %e, "a job task ended abnormally"),
                None => break,
            }
        }
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

/// Runs one claimed job; a failure gives the job back to run again after a backoff.
async fn run_job(s: &Services, owner: &str, job: &Job, now: Timestamp) {
    let r = match &job.kind {
        JobKind::Deliver { assignment, role, action, request } => {
            delivery::run(s, job, owner, *assignment, *role, *action, *request).await
        }
        JobKind::Sweep => sweep::run(s, job, owner).await.map(|_| ()),
        JobKind::Reconcile { policy } => automatic::run(s, job, owner, *policy).await.map(|_| ()),
    };
    if let Err(e) = r {
        tracing::warn!(job = %job.id, kind = job.kind.name(), error = %e, "job failed; will retry");
        let at = now.saturating_add(delivery::backoff(job.attempts)).unwrap_or(now);
        if let Err(e2) = s.store.retry_job(job.id, owner, at, &e.to_string()).await {
            tracing::warn!(job = %job.id, error = %e2, "could not give the job back; its lease will run out");
        }
    }
}
