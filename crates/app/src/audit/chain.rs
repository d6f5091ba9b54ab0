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

/// Chains what waits to be chained (up to `BATCH` events) and takes a checkpoint when one is
/// due; returns how many events it chained.
pub async fn pass(store: &dyn Store, key: Option<&CheckpointKey>, now: Timestamp) -> Result<u32, AppError> {
    let progress = store.chain_audit(BATCH).await?;
    if progress.chained == 0 {
        return Ok(0);
    }
    let state = store.audit_chain_state().await?;
    let due = match &state.last_checkpoint {
        None => true,
        Some(c) => {
            state.head.seq.saturating_sub(c.seq) >= CHECKPOINT_EVERY
                || (state.head.seq > c.seq
                    && to_micros(now).saturating_sub(c.at) >= CHECKPOINT_AFTER.as_micros() as i64)
        }
    };
    if due {
        let c = Checkpoint::new(state.head.seq, &state.head.hash, to_micros(now), key);
        store.insert_audit_checkpoint(&c).await?;
    }
    Ok(progress.chained)
}

/// Chains everything waiting, pass after pass (for shutdown, tests and benchmarks).
pub async fn catch_up(store: &dyn Store, key: Option<&CheckpointKey>, now: Timestamp) -> Result<u64, AppError> {
    let mut total = 0u64;
    loop {
        let n = pass(store, key, now).await?;
        total += u64::from(n);
        if n < BATCH {
            return Ok(total);
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
