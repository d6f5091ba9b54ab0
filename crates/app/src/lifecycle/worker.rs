//! The job runner: claims due jobs with a lease and runs each handler. The loop that calls it
//! (and sleeps between rounds) belongs to the server; tests call `run_once` and `drain`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use jiff::{SignedDuration, Timestamp};

use super::{automatic, delivery, sweep};
use crate::jobs::{Job, JobKind, NewJob};
use crate::ports::Batch;
use crate::{AppError, Services};
use steward_domain::ids::JobId;

/// How long a claimed job stays with its claimer before another process may take it.
pub const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Jobs claimed per round.
pub const CLAIM: u32 = 128;
/// Connector calls of one round that run at once, unless `Worker::with_parallelism` says otherwise.
pub const PARALLEL: usize = 8;

/// How often (in rounds) a worker that has jobs of its own process to run searches the job
/// table anyway, for other processes' jobs and retries that came due.
pub const SEARCH_EVERY: u32 = 8;
/// Most job ids kept in `LocalJobs`; beyond it, new ones are left to the search.
const LOCAL_MAX: usize = 100_000;

/// The jobs this process queued and has not run yet, as the store reports them
/// (`SqlStore::on_jobs_queued`). The worker leases them by id, one index lookup each,
/// instead of searching the job table for due jobs: on PostgreSQL the due index keeps the
/// entries of finished jobs until the table is vacuumed, so that search grows slower with
/// every job run (1.6 ms after 40,000 jobs, measured). Anything not here (other processes'
/// jobs, retries, ids dropped beyond `LOCAL_MAX`) is found by the search, which runs when
/// there is nothing here and at least every `SEARCH_EVERY` rounds.
#[derive(Default)]
pub struct LocalJobs {
    ids: std::sync::Mutex<std::collections::VecDeque<JobId>>,
    wake: tokio::sync::Notify,
}

impl LocalJobs {
    /// Notes jobs that were queued, and wakes the worker.
    pub fn queued(&self, ids: &[JobId]) {
        if let Ok(mut q) = self.ids.lock() {
            let room = LOCAL_MAX.saturating_sub(q.len());
            q.extend(ids.iter().take(room).copied());
        }
        self.wake.notify_one();
    }

    /// Waits until jobs are queued (a notification that came while nobody waited counts).
    pub async fn notified(&self) {
        self.wake.notified().await;
    }

    fn take(&self, n: usize) -> Vec<JobId> {
        self.ids
            .lock()
            .map(|mut q| {
                let n = n.min(q.len());
                q.drain(..n).collect()
            })
            .unwrap_or_default()
    }
}

/// Runs jobs as `owner` (a name unique to this process).
///
/// Clones share one round lock: rounds of a worker and its clones may overlap (the store
/// leases each job to one of them), but a `drain` runs alone. So when the server's background
/// loops and a test's `drain` use the same worker, a drain that finds nothing due also knows
/// that nothing is still running in this process.
#[derive(Clone)]
pub struct Worker {
    s: Services,
    owner: String,
    round: Arc<tokio::sync::RwLock<()>>,
    parallel: usize,
    local: Arc<LocalJobs>,
    rounds: Arc<AtomicU32>,
}

impl Worker {
    pub fn new(s: Services, owner: impl Into<String>) -> Self {
        Self {
            s,
            owner: owner.into(),
            round: Arc::default(),
            parallel: PARALLEL,
            local: Arc::default(),
            rounds: Arc::default(),
        }
    }

    /// The same worker, taking the jobs its process queued from `local` first.
    pub fn with_local_jobs(mut self, local: Arc<LocalJobs>) -> Self {
        self.local = local;
        self
    }

    pub fn local_jobs(&self) -> &Arc<LocalJobs> {
        &self.local
    }

    /// The same worker, calling at most `n` (at least 1) connectors of a round at once. One
    /// suits a database that takes one writer at a time (SQLite), where the built-in
    /// directory's writes running side by side would only queue for its write lock.
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
    /// Deliveries run in waves of jobs on different assignments: each wave reads what its jobs
    /// need in one round trip per kind of row, calls the connectors up to `PARALLEL` at a time
    /// by default, and writes every outcome in one transaction (one at a time, with a dozen
    /// round trips and a commit each, a worker delivered at most a few hundred a second on
    /// PostgreSQL). The deliveries of one assignment still run one after another in claim
    /// order, since they roll up into the same rows. Any other job (the sweep, a
    /// reconciliation) runs alone, after what was claimed before it and before what was
    /// claimed after it, as when every job ran in turn.
    pub async fn run_once(&self) -> Result<usize, AppError> {
        let _round = self.round.read().await;
        self.round_unlocked().await
    }

    async fn round_unlocked(&self) -> Result<usize, AppError> {
        let now = self.s.clock.now();
        let lease_until = now.saturating_add(LEASE).unwrap_or(now);
        let mine = self.local.take(CLAIM as usize);
        let round = self.rounds.fetch_add(1, Ordering::Relaxed);
        let searched = mine.is_empty() || round.is_multiple_of(SEARCH_EVERY);
        let mut jobs = Vec::new();
        if searched {
            jobs = self.s.store.claim_jobs(&self.owner, now, lease_until, CLAIM).await?;
        }
        // Searched first: what the search found was due before what this process just queued.
        match self.s.store.claim_jobs_by_id(&self.owner, &mine, now, lease_until).await {
            Ok(more) => jobs.extend(more),
            Err(e) if jobs.is_empty() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "could not lease this process's queued jobs; the search will find them")
            }
        }
        // The ids were all run already, or are not due yet: search after all, so that a round
        // finding nothing means nothing is due (`drain` and the loop's idle wait rely on it).
        if jobs.is_empty() && !searched {
            jobs = self.s.store.claim_jobs(&self.owner, now, lease_until, CLAIM).await?;
        }
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
                JobKind::Sweep
                | JobKind::Reconcile { .. }
                | JobKind::RevokeEnded { .. }
                | JobKind::ReconcileConnection { .. }
                | JobKind::Callout { .. }
                | JobKind::GuestsLostAccess { .. }
                | JobKind::ReviewReminder { .. } => {
                    self.run_lanes(std::mem::take(&mut deliveries), now).await;
                    run_job(&self.s, &self.owner, &job, now).await;
                }
            }
        }
        self.run_lanes(deliveries, now).await;
        // The events this round's jobs (and every request since the last round) wrote join the
        // audit chain; a failure leaves them for the next round.
        let chained = match crate::audit::chain::upkeep(&self.s, now).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not chain the audit trail's new events; will retry");
                0
            }
        };
        // The chained events become notices, and due notices are sent (`notify`).
        let notified = match crate::notify::round(&self.s, &self.owner, now, chained).await {
            Ok(r) => r.events + r.tried,
            Err(e) => {
                tracing::warn!(error = %e, "notifications could not be derived or sent; will retry");
                0
            }
        };
        // A pass that chained less than a batch left nothing waiting: that alone is no reason
        // for another round at once (a steady trickle of events is chained a round at a time).
        let backlog = if chained >= crate::audit::chain::BATCH { chained as usize } else { 0 };
        Ok(n + backlog + notified)
    }

    /// Runs the lanes' deliveries in waves: the first job of every lane together (one
    /// `delivery::run_wave`), then the second of every lane, and so on, so the deliveries of
    /// one assignment still run in claim order. Jobs a wave hands back run one by one.
    async fn run_lanes(&self, lanes: Vec<Vec<Job>>, now: Timestamp) {
        let depth = lanes.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..depth {
            let wave: Vec<Job> = lanes.iter().filter_map(|lane| lane.get(k).cloned()).collect();
            if let [job] = wave.as_slice() {
                run_job(&self.s, &self.owner, job, now).await;
                continue;
            }
            match delivery::run_wave(&self.s, &self.owner, wave.clone(), self.parallel).await {
                Ok(again) => {
                    for job in &again {
                        run_job(&self.s, &self.owner, job, now).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(jobs = wave.len(), error = %e, "a delivery round failed; will retry");
                    for job in &wave {
                        delivery::give_back(&self.s, &self.owner, job, now, &e.to_string()).await;
                    }
                }
            }
        }
    }

    /// Runs rounds until no job is due (at most `rounds`), for tests and shutdown.
    pub async fn drain(&self, rounds: usize) -> Result<usize, AppError> {
        let mut total = 0;
        let _alone = self.round.write().await;
        for _ in 0..rounds {
            let n = self.round_unlocked().await?;
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
        JobKind::RevokeEnded { assignments } => delivery::queue_revocations(s, job, owner, assignments).await,
        JobKind::ReconcileConnection { connection } => crate::reconcile::run(s, job, owner, *connection).await,
        JobKind::Callout { instance, extension, stage, request, assignment } => {
            let spec = super::callouts::Spec {
                instance: *instance,
                extension: *extension,
                stage: *stage,
                request: *request,
                assignment: *assignment,
            };
            super::callouts::run(s, job, owner, spec).await
        }
        JobKind::GuestsLostAccess { users } => super::guests::run(s, job, owner, users).await,
        JobKind::ReviewReminder { definition, instance, stage } => {
            crate::reviews::remind::run(s, job, owner, (*definition, *instance, *stage)).await
        }
    };
    if let Err(e) = r {
        tracing::warn!(job = %job.id, kind = job.kind.name(), error = %e, "job failed; will retry");
        delivery::give_back(s, owner, job, now, &e.to_string()).await;
    }
}
