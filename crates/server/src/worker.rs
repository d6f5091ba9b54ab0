//! The background job loop of `steward serve`: queues the sweep once, then runs rounds of due
//! jobs, waits a poll interval when none was due and backs off when the database fails. It
//! stops on shutdown after the round in hand; a round is never cut off halfway. Any number of
//! processes may run it against one database: the store leases each job to one of them.

use std::time::Duration;

use steward_app::lifecycle::worker::{LocalJobs, Worker};
use tokio_util::sync::CancellationToken;

/// The longest wait after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A name no other process shares: host, process id and a random suffix (process ids repeat
/// across containers and restarts).
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), suffix.get(..8).unwrap_or(&suffix))
}

/// How long to wait after `failures` failed attempts in a row: the poll interval doubled per
/// failure, at least a second, at most `MAX_BACKOFF`.
pub fn backoff(poll: Duration, failures: u32) -> Duration {
    let base = poll.max(Duration::from_millis(500));
    base.saturating_mul(2_u32.saturating_pow(failures.min(16))).min(MAX_BACKOFF)
}

/// Waits `pause` unless shutdown comes first; `true` when it is time to stop.
async fn pause_or_stop(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(pause) => false,
    }
}

/// Waits for `local` (jobs were queued in this process) or `pause`, unless shutdown comes
/// first; `true` when it is time to stop.
async fn idle_or_stop(pause: Duration, local: &LocalJobs, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = local.notified() => false,
        () = tokio::time::sleep(pause) => false,
    }
}

/// Runs until `shutdown` is cancelled. When no job is due it waits for the poll interval, or
/// less when the worker's `LocalJobs` is notified (a write in this process queued jobs); a notification that
/// comes during a round is kept, so the wait after it ends at once.
pub async fn run(worker: Worker, poll: Duration, shutdown: CancellationToken) {
    tracing::info!(owner = worker.owner(), poll_ms = poll.as_millis(), "job worker started");
    let mut failures = 0_u32;
    // The sweep job is a singleton, so every process may ask for it; retried until the
    // database answers.
    loop {
        match worker.ensure_sweep().await {
            Ok(()) => break,
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = backoff(poll, failures);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis(), "cannot queue the sweep job");
                if pause_or_stop(wait, &shutdown).await {
                    tracing::info!("job worker stopped");
                    return;
                }
            }
        }
    }
    failures = 0;
    while !shutdown.is_cancelled() {
        let stop = match worker.run_once().await {
            // More may be due at once: go again without waiting.
            Ok(n) if n > 0 => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                idle_or_stop(poll, worker.local_jobs(), &shutdown).await
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = backoff(poll, failures);
                tracing::warn!(error = %e, failures, retry_in_ms = wait.as_millis(), "job round failed; backing off");
                pause_or_stop(wait, &shutdown).await
            }
        };
        if stop {
            break;
        }
    }
    tracing::info!("job worker stopped");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use steward_app::jobs::{JobKind, NewJob};
    use steward_app::ports::{Batch, ManualClock};
    use steward_app::{Services, Store};
    use steward_domain::assignment::GrantAction;
    use steward_domain::ids::{AssignmentId, ResourceRoleId};

    use super::*;

    #[test]
    fn owner_names_are_unique_and_name_the_process() {
        let a = owner_name();
        let b = owner_name();
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        let poll = Duration::from_millis(200);
        assert_eq!(backoff(poll, 1), Duration::from_secs(1));
        assert_eq!(backoff(poll, 2), Duration::from_secs(2));
        assert_eq!(backoff(poll, 3), Duration::from_secs(4));
        assert_eq!(backoff(poll, 10), MAX_BACKOFF);
        assert_eq!(backoff(poll, u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(Duration::from_secs(5), 1), Duration::from_secs(10));
    }

    /// The loop runs a due job and ends on shutdown.
    #[tokio::test]
    async fn runs_due_jobs_and_stops_on_shutdown() {
        let dir = std::env::temp_dir().join(format!("steward-worker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(steward_store::open(&format!("sqlite://{}/t.db", dir.display()), true).await.unwrap());
        let now = "2031-03-01T09:00:00Z".parse().unwrap();
        let worker = Worker::new(Services::new(store.clone(), Arc::new(ManualClock::new(now))), owner_name());
        worker.ensure_sweep().await.unwrap();
        // A delivery whose assignment does not exist: running it just removes it.
        let job = NewJob::now(
            JobKind::Deliver {
                assignment: AssignmentId::new(),
                role: ResourceRoleId::new(),
                action: GrantAction::Grant,
                request: None,
            },
            now,
        );
        store.apply(&Batch { jobs: vec![job], ..Batch::default() }).await.unwrap();
        assert_eq!(store.pending_jobs().await.unwrap(), 2);

        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(worker, Duration::from_millis(1), shutdown.clone()));
        // Only the sweep (run and queued again) is left once the loop has run the delivery.
        tokio::time::timeout(Duration::from_secs(10), async {
            while store.pending_jobs().await.unwrap() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the loop runs the due delivery");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("the loop stops on shutdown").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An idle loop polling once an hour runs a job as soon as a write in its process queues
    /// one: the store's hook wakes it.
    #[tokio::test]
    async fn queued_jobs_wake_the_idle_loop() {
        let dir = std::env::temp_dir().join(format!("steward-worker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let local = Arc::new(LocalJobs::default());
        let hook = local.clone();
        let store = Arc::new(
            steward_store::open(&format!("sqlite://{}/t.db", dir.display()), true)
                .await
                .unwrap()
                .on_jobs_queued(move |ids| hook.queued(ids)),
        );
        let now = "2031-03-01T09:00:00Z".parse().unwrap();
        let worker = Worker::new(Services::new(store.clone(), Arc::new(ManualClock::new(now))), owner_name())
            .with_local_jobs(local);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(worker, Duration::from_secs(3600), shutdown.clone()));
        // Let the loop queue and run the sweep, then go idle.
        tokio::time::timeout(Duration::from_secs(10), async {
            while store.pending_jobs().await.unwrap() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the sweep is queued");
        // Give the loop a moment to finish its round and go idle (if it has not, the job
        // below is simply found by its next round and the test proves less, never wrongly).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let job = NewJob::now(
            JobKind::Deliver {
                assignment: AssignmentId::new(),
                role: ResourceRoleId::new(),
                action: GrantAction::Grant,
                request: None,
            },
            now,
        );
        store.apply(&Batch { jobs: vec![job], ..Batch::default() }).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while store.pending_jobs().await.unwrap() != 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the woken loop runs the new job long before its hourly poll");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("the loop stops on shutdown").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
