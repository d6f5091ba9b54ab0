//! The upkeep of the audit trail's hash chain and its verification (`steward audit verify`).
//! Every worker round chains the events written since the last one (`pass`) and takes a
//! signed checkpoint when one is due; `verify` walks the whole chain with the domain's
//! `Verifier` and names the first record that was edited, deleted or put out of order.

use jiff::{SignedDuration, Timestamp};
use steward_domain::audit_chain::{Checkpoint, CheckpointKey, Tamper, Verified, Verifier};
use steward_domain::time::to_micros;

use crate::AppError;
use crate::ports::Store;

/// Most events one pass chains: one transaction's worth.
pub const BATCH: u32 = 1_000;
/// A checkpoint is taken once this many records were chained since the last one…
pub const CHECKPOINT_EVERY: i64 = 10_000;
/// …or once this long has passed since the last one and something was chained.
pub const CHECKPOINT_AFTER: SignedDuration = SignedDuration::from_hours(1);
/// How many records `verify` reads at a time.
const READ: u32 = 10_000;

/// How many records one prune deletes at most (one transaction's worth).
pub const PRUNE_BATCH: u32 = 10_000;

/// Chains what waits to be chained (up to `BATCH` events) and takes a checkpoint when one is
/// due; returns how many events it chained.
pub async fn pass(store: &dyn Store, key: Option<&CheckpointKey>, now: Timestamp) -> Result<u32, AppError> {
    Ok(chain_and_check(store, key, now).await?.0)
}

/// What each worker round does for the trail: `pass`, and, when it took a checkpoint and a
/// retention is configured (`Services::audit_retention`), `prune`: so pruning follows the
/// checkpoints' rhythm (every 10,000 records, or hourly while anything is written).
pub async fn upkeep(s: &crate::Services, now: Timestamp) -> Result<u32, AppError> {
    let (chained, checkpointed) = chain_and_check(&*s.store, s.audit_key.as_ref(), now).await?;
    if let (true, Some(retention)) = (checkpointed, s.audit_retention) {
        let pruned = prune(&*s.store, s.audit_key.as_ref(), now, retention).await?;
        if pruned > 0 {
            tracing::info!(pruned, "audit records older than the retention deleted");
        }
    }
    Ok(chained)
}

/// Deletes the chained records older than `retention`, from the start of the trail, each batch
/// behind a checkpoint at the new start (signed with `key`), so a verification trusts the new
/// anchor and still catches records deleted from the start by anyone else. Returns how many.
pub async fn prune(
    store: &dyn Store,
    key: Option<&CheckpointKey>,
    now: Timestamp,
    retention: SignedDuration,
) -> Result<u64, AppError> {
    let before = now.checked_sub(retention).unwrap_or(Timestamp::MIN);
    let mut total = 0u64;
    loop {
        let from = store.audit_chain_state().await?.anchor;
        let Some(to) = store.audit_prune_point(before, PRUNE_BATCH).await? else {
            return Ok(total);
        };
        let vouch = Checkpoint::new(to.seq, &to.hash, to_micros(now), key);
        if !store.prune_audit(&from, &to, &vouch).await? {
            // Another process pruned meanwhile.
            return Ok(total);
        }
        let n = to.seq.saturating_sub(from.seq);
        total += u64::try_from(n).unwrap_or(0);
        if n < i64::from(PRUNE_BATCH) {
            return Ok(total);
        }
    }
}

/// Chains, then takes a checkpoint if one is due: how many were chained, whether it took one.
async fn chain_and_check(
    store: &dyn Store,
    key: Option<&CheckpointKey>,
    now: Timestamp,
) -> Result<(u32, bool), AppError> {
    let progress = store.chain_audit(BATCH).await?;
    if progress.chained == 0 {
        return Ok((0, false));
    }
    let head = &progress.head;
    let due = match &progress.last_checkpoint {
        None => true,
        Some(c) => {
            head.seq.saturating_sub(c.seq) >= CHECKPOINT_EVERY
                || (head.seq > c.seq && to_micros(now).saturating_sub(c.at) >= CHECKPOINT_AFTER.as_micros() as i64)
        }
    };
    if due {
        let c = Checkpoint::new(head.seq, &head.hash, to_micros(now), key);
        store.insert_audit_checkpoint(&c).await?;
    }
    Ok((progress.chained, due))
}

/// How long `catch_up` waits for events the chainer cannot take yet.
const CATCH_UP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Chains everything written before the call, pass after pass (for shutdown, tests and
/// benchmarks). On PostgreSQL an event waits for every transaction older than its own, even
/// one in another database of the server, to end before it can be chained; `catch_up` waits
/// for those too, up to `CATCH_UP_PATIENCE`, and leaves the rest to the worker.
pub async fn catch_up(store: &dyn Store, key: Option<&CheckpointKey>, now: Timestamp) -> Result<u64, AppError> {
    let mut total = 0u64;
    let started = std::time::Instant::now();
    loop {
        let n = pass(store, key, now).await?;
        total += u64::from(n);
        if n < BATCH {
            if store.audit_chain_state().await?.unchained == 0 || started.elapsed() > CATCH_UP_PATIENCE {
                return Ok(total);
            }
            if n == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The intact chain, or the first place it was tampered with.
    pub outcome: Result<Verified, Tamper>,
    /// The first record checked (after the anchor).
    pub from_seq: i64,
    /// Events written but not chained yet when the walk started (the worker chains them
    /// within a round; they are not covered until it has).
    pub unchained: u64,
    /// Whether the checkpoints' signatures were checked (a key was given).
    pub signatures_checked: bool,
}

/// Walks the whole chain from its anchor to the head it had when the walk began, checking every
/// record and every checkpoint on the way; `progress` hears the number of records checked
/// every `READ` records.
pub async fn verify(
    store: &dyn Store,
    key: Option<CheckpointKey>,
    mut progress: impl FnMut(u64),
) -> Result<Report, AppError> {
    let state = store.audit_chain_state().await?;
    let checkpoints = store.audit_checkpoints().await?;
    let from_seq = state.anchor.seq.saturating_add(1);
    let signatures_checked = key.is_some();
    let report = |outcome| Report { outcome, from_seq, unchained: state.unchained, signatures_checked };
    let mut v = Verifier::new(state.anchor.clone(), checkpoints, key);
    let mut after = state.anchor.seq;
    let mut checked = 0u64;
    'walk: while after < state.head.seq {
        let links = store.audit_links(after, READ).await?;
        if links.is_empty() {
            break;
        }
        for link in &links {
            if link.seq > state.head.seq {
                // Chained after the walk began: the next verification covers it.
                break 'walk;
            }
            if let Err(t) = v.feed(link) {
                return Ok(report(Err(t)));
            }
            after = link.seq;
            checked += 1;
        }
        progress(checked);
    }
    let outcome = v.finish().and_then(|verified| {
        if verified.last_seq < state.head.seq {
            // The head says more was chained than is there: the last records were deleted.
            Err(Tamper::Truncated { last: verified.last_seq, vouched: state.head.seq })
        } else {
            Ok(verified)
        }
    });
    Ok(report(outcome))
}
