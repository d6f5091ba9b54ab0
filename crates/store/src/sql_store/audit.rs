//! The audit trail in the store (migration 0015): reading it as directoryAudits, and its hash
//! chain — the chainer that gives unchained events their place under the head row's lock, the
//! head and anchor, the checkpoints, and the chained records as stored for verification.

use steward_app::ports::{ChainProgress, ChainState};
use steward_domain::audit_chain::{self, Anchor, Checkpoint, Link, Record};
use steward_domain::ids::AuditEventId;

use crate::Row;

use super::*;

/// Every column the chain covers, in `Record`'s order.
const RECORD_COLUMNS: &str = "id, at, activity, display_name, category, initiator, ip_address, target_type, \
     target_id, correlation_id, result, detail, modified_properties";

fn record(c: &mut Cells<'_>) -> StoreResult<Record> {
    Ok(Record {
        id: c.text()?,
        at: c.int()?,
        activity: c.text()?,
        display_name: c.text()?,
        category: c.text()?,
        initiator: c.text()?,
        ip_address: c.opt_text()?,
        target_type: c.text()?,
        target_id: c.text()?,
        correlation_id: c.text()?,
        result: c.text()?,
        detail: c.opt_text()?,
        modified_properties: c.opt_text()?,
    })
}

struct Stored(Link);

impl FromRow for Stored {
    const COLUMNS: &'static str = "seq, prev_hash, hash, id, at, activity, display_name, category, initiator, \
         ip_address, target_type, target_id, correlation_id, result, detail, modified_properties";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Self(Link {
            seq: c.int()?,
            // A chained row always has both; an emptied one fails verification as edited.
            prev_hash: c.opt_text()?.unwrap_or_default(),
            hash: c.opt_text()?.unwrap_or_default(),
            record: record(c)?,
        }))
    }
}

struct Head {
    head: Anchor,
    anchor: Anchor,
}

impl FromRow for Head {
    const COLUMNS: &'static str = "seq, hash, anchor_seq, anchor_hash";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Self { head: Anchor { seq: c.int()?, hash: c.text()? }, anchor: Anchor { seq: c.int()?, hash: c.text()? } })
    }
}

impl FromRow for Checkpoint {
    const COLUMNS: &'static str = "seq, hash, at, signature, key_fingerprint";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Checkpoint {
            seq: c.int()?,
            hash: c.text()?,
            at: c.int()?,
            signature: c.opt_text()?,
            key_fingerprint: c.opt_text()?,
        })
    }
}

fn no_head() -> StoreError {
    StoreError::Internal("the audit chain's head row is missing (migration 0015 writes it)".into())
}

impl SqlStore {
    pub(super) async fn list_audit_events_impl(&self, q: &ListQuery) -> StoreResult<Page<AuditEvent>> {
        self.list(q).await
    }

    pub(super) async fn get_audit_event_impl(&self, event: AuditEventId) -> StoreResult<Option<AuditEvent>> {
        let sql = format!("SELECT {} FROM audit_events WHERE id = $1", AuditEvent::COLUMNS);
        Ok(self.rows(&sql, &[id(event)]).await?.into_iter().next())
    }

    pub(super) async fn chain_audit_impl(&self, limit: u32) -> StoreResult<ChainProgress> {
        let pending = Pending::of(self.driver.concurrent_writers());
        // Look first without the lock: most rounds find nothing, and take no lock for it.
        if !pending.any(&*self.driver).await? {
            let sql = format!("SELECT {} FROM audit_chain WHERE id = 1", Head::COLUMNS);
            let head = self.rows::<Head>(&sql, &[]).await?.into_iter().next().ok_or_else(no_head)?.head;
            return Ok(ChainProgress { chained: 0, head, last_checkpoint: None });
        }
        let mut tx = self.driver.begin().await?;
        // The head row's lock makes chainers take turns; what one chained, the next sees as
        // chained (each statement reads what was committed before it).
        if tx.execute("UPDATE audit_chain SET id = id WHERE id = 1", &[]).await? == 0 {
            return Err(no_head());
        }
        let head_rows = tx.fetch(&format!("SELECT {} FROM audit_chain WHERE id = 1", Head::COLUMNS), &[]).await?;
        let head =
            head_rows.first().map(|r| Head::from_cells(&mut Cells::new(r))).transpose()?.ok_or_else(no_head)?.head;
        let waiting = pending.take(&mut tx, limit).await?;
        let Some(cursor) = waiting.last().map(|w| w.cursor.clone()) else {
            // Nothing can be chained yet (on PostgreSQL: the events wait for older transactions).
            // Ended at once rather than dropped, so the lock goes with this call, not later.
            tx.commit().await?;
            return Ok(ChainProgress { chained: 0, head, last_checkpoint: None });
        };
        let ids: Vec<String> = waiting.iter().map(|w| w.record.id.clone()).collect();
        let links = audit_chain::chain(head.seq, &head.hash, waiting.into_iter().map(|w| w.record).collect());
        let Some(last) = links.last().map(|l| Anchor { seq: l.seq, hash: l.hash.clone() }) else {
            return Ok(ChainProgress { chained: 0, head, last_checkpoint: None });
        };
        let rows: Vec<Vec<Param>> = links
            .iter()
            .map(|l| {
                vec![
                    Param::Int(Some(l.seq)),
                    l.record.id.clone().into(),
                    l.prev_hash.clone().into(),
                    l.hash.clone().into(),
                ]
            })
            .collect();
        let (arrays, set) = (self.driver.arrays(), self.driver.text_set("$1"));
        lifecycle::insert_many(
            &mut tx,
            arrays,
            "INSERT INTO audit_links (seq, event_id, prev_hash, hash)",
            &[lifecycle::I, lifecycle::T, lifecycle::T, lifecycle::T],
            rows,
            "",
        )
        .await?;
        pending.advance(&mut tx, &last, &cursor, &ids, &set).await?;
        let newest = format!("SELECT {} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", Checkpoint::COLUMNS);
        let rows = tx.fetch(&newest, &[]).await?;
        let last_checkpoint = rows.first().map(|r| Checkpoint::from_cells(&mut Cells::new(r))).transpose()?;
        tx.commit().await?;
        Ok(ChainProgress { chained: u32::try_from(links.len()).unwrap_or(u32::MAX), head: last, last_checkpoint })
    }

    pub(super) async fn audit_chain_state_impl(&self) -> StoreResult<ChainState> {
        let h = self.rows::<Head>(&format!("SELECT {} FROM audit_chain WHERE id = 1", Head::COLUMNS), &[]).await?;
        let Head { head, anchor } = h.into_iter().next().ok_or_else(no_head)?;
        let last = format!("SELECT {} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", Checkpoint::COLUMNS);
        let last_checkpoint = self.rows::<Checkpoint>(&last, &[]).await?.into_iter().next();
        let unchained = Pending::of(self.driver.concurrent_writers()).count(&*self.driver).await?;
        Ok(ChainState { head, anchor, last_checkpoint, unchained })
    }

    pub(super) async fn insert_audit_checkpoint_impl(&self, c: &Checkpoint) -> StoreResult<()> {
        self.driver
            .execute(
                "INSERT INTO audit_checkpoints (seq, hash, at, signature, key_fingerprint) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (seq) DO NOTHING",
                &[
                    Param::Int(Some(c.seq)),
                    c.hash.clone().into(),
                    Param::Int(Some(c.at)),
                    c.signature.clone().into(),
                    c.key_fingerprint.clone().into(),
                ],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn audit_checkpoints_impl(&self) -> StoreResult<Vec<Checkpoint>> {
        self.rows(&format!("SELECT {} FROM audit_checkpoints ORDER BY seq", Checkpoint::COLUMNS), &[]).await
    }

    pub(super) async fn audit_prune_point_impl(
        &self,
        before: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Option<Anchor>> {
        let sql = format!("SELECT {} FROM audit_chain WHERE id = 1", Head::COLUMNS);
        let Head { head, anchor } = self.rows::<Head>(&sql, &[]).await?.into_iter().next().ok_or_else(no_head)?;
        // The first record after the anchor that is not older than `before` ends the run.
        // Walked in `seq` order and no further than one batch (and the record after it).
        let most = anchor.seq.saturating_add(i64::from(limit));
        let young = self
            .driver
            .fetch(
                "SELECT l.seq FROM audit_links l JOIN audit_events e ON e.id = l.event_id \
                 WHERE l.seq > $1 AND l.seq <= $2 AND e.at >= $3 ORDER BY l.seq LIMIT 1",
                &[Param::Int(Some(anchor.seq)), Param::Int(Some(most.saturating_add(1))), ts(before)],
            )
            .await?;
        let first_young = young.first().map(|r| Cells::new(r).int()).transpose()?;
        let end = first_young.map_or(head.seq, |s| s.saturating_sub(1)).min(most);
        if end <= anchor.seq {
            return Ok(None);
        }
        let rows = self.driver.fetch("SELECT hash FROM audit_links WHERE seq = $1", &[Param::Int(Some(end))]).await?;
        let hash = rows.first().map(|r| Cells::new(r).opt_text()).transpose()?.flatten();
        // A record missing there is the verification's to report; nothing is pruned past it.
        Ok(hash.map(|hash| Anchor { seq: end, hash }))
    }

    pub(super) async fn prune_audit_impl(&self, from: &Anchor, to: &Anchor, vouch: &Checkpoint) -> StoreResult<bool> {
        let mut tx = self.driver.begin().await?;
        if tx.execute("UPDATE audit_chain SET id = id WHERE id = 1", &[]).await? == 0 {
            return Err(no_head());
        }
        let rows = tx.fetch(&format!("SELECT {} FROM audit_chain WHERE id = 1", Head::COLUMNS), &[]).await?;
        let now = rows.first().map(|r| Head::from_cells(&mut Cells::new(r))).transpose()?.ok_or_else(no_head)?;
        if now.anchor != *from {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO audit_checkpoints (seq, hash, at, signature, key_fingerprint) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (seq) DO NOTHING",
            &[
                Param::Int(Some(vouch.seq)),
                vouch.hash.clone().into(),
                Param::Int(Some(vouch.at)),
                vouch.signature.clone().into(),
                vouch.key_fingerprint.clone().into(),
            ],
        )
        .await?;
        let range = [Param::Int(Some(from.seq)), Param::Int(Some(to.seq))];
        tx.execute(
            "DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_links WHERE seq > $1 AND seq <= $2)",
            &range,
        )
        .await?;
        tx.execute("DELETE FROM audit_links WHERE seq > $1 AND seq <= $2", &range).await?;
        tx.execute("DELETE FROM audit_checkpoints WHERE seq < $1", &[Param::Int(Some(to.seq))]).await?;
        tx.execute(
            "UPDATE audit_chain SET anchor_seq = $1, anchor_hash = $2 WHERE id = 1",
            &[Param::Int(Some(to.seq)), to.hash.clone().into()],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn audit_links_impl(&self, after: i64, limit: u32) -> StoreResult<Vec<Link>> {
        // A link whose event is gone is left out: the walk sees a gap and names it.
        let sql = format!(
            "SELECT {} FROM audit_links JOIN audit_events ON audit_events.id = audit_links.event_id \
             WHERE seq > $1 ORDER BY seq LIMIT {limit}",
            Stored::COLUMNS
        );
        Ok(self.rows::<Stored>(&sql, &[Param::Int(Some(after))]).await?.into_iter().map(|s| s.0).collect())
    }
}

/// An event waiting to be chained, with where the chainer's cursor stands once it is.
struct Waiting {
    record: Record,
    cursor: Cursor,
}

/// The PostgreSQL chainer's cursor: the last chained event's writing transaction, time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    xid: i64,
    at: i64,
    id: String,
}

impl Cursor {
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Self { xid: c.int()?, at: c.int()?, id: c.text()? })
    }
}

/// How the chainer finds the events waiting for it (migration 0017). With concurrent writers
/// (PostgreSQL) a cursor over (writing transaction, time, id) that only moves past
/// transactions older than every one still running, so the writers never touch an event again;
/// with one writer at a time (SQLite) a flag that the chainer sets.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Cursor,
    Flag,
}

impl Pending {
    fn of(concurrent_writers: bool) -> Self {
        if concurrent_writers { Self::Cursor } else { Self::Flag }
    }

    const CURSOR: &str = "SELECT cursor_xid, cursor_at, cursor_id FROM audit_chain WHERE id = 1";

    fn cursor(rows: &[Row]) -> StoreResult<Cursor> {
        rows.first().map(|r| Cursor::from_cells(&mut Cells::new(r))).transpose()?.ok_or_else(no_head)
    }

    fn after(c: &Cursor) -> [Param; 3] {
        [Param::Int(Some(c.xid)), Param::Int(Some(c.at)), c.id.clone().into()]
    }

    /// Whether any event was written after the last one chained (on PostgreSQL, including
    /// events of transactions the chainer must still wait for).
    async fn any(self, driver: &dyn Driver) -> StoreResult<bool> {
        let rows = match self {
            Self::Cursor => {
                let c = Self::cursor(&driver.fetch(Self::CURSOR, &[]).await?)?;
                let sql = "SELECT 1 FROM audit_events WHERE (chain_xid, at, id) > ($1, $2, $3) LIMIT 1";
                driver.fetch(sql, &Self::after(&c)).await?
            }
            Self::Flag => driver.fetch("SELECT 1 FROM audit_events WHERE chained IS NULL LIMIT 1", &[]).await?,
        };
        Ok(!rows.is_empty())
    }

    /// How many events were written after the last one chained.
    async fn count(self, driver: &dyn Driver) -> StoreResult<u64> {
        let rows = match self {
            Self::Cursor => {
                let c = Self::cursor(&driver.fetch(Self::CURSOR, &[]).await?)?;
                let sql = "SELECT COUNT(*) FROM audit_events WHERE (chain_xid, at, id) > ($1, $2, $3)";
                driver.fetch(sql, &Self::after(&c)).await?
            }
            Self::Flag => driver.fetch("SELECT COUNT(*) FROM audit_events WHERE chained IS NULL", &[]).await?,
        };
        let n = rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Up to `limit` events to chain next, in chain order, under the head row's lock.
    async fn take(self, tx: &mut Box<dyn Tx>, limit: u32) -> StoreResult<Vec<Waiting>> {
        let rows = match self {
            Self::Cursor => {
                let c = Self::cursor(&tx.fetch(Self::CURSOR, &[]).await?)?;
                // Transactions older than the statement's snapshot's xmin have all ended: their
                // events are all visible now, and whatever commits later sorts after them.
                let sql = format!(
                    "SELECT chain_xid, {RECORD_COLUMNS} FROM audit_events WHERE (chain_xid, at, id) > ($1, $2, $3) \
                     AND chain_xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                     ORDER BY chain_xid, at, id LIMIT {limit}"
                );
                tx.fetch(&sql, &Self::after(&c)).await?
            }
            Self::Flag => {
                let sql = format!(
                    "SELECT 0, {RECORD_COLUMNS} FROM audit_events WHERE chained IS NULL ORDER BY at, id LIMIT {limit}"
                );
                tx.fetch(&sql, &[]).await?
            }
        };
        rows.iter()
            .map(|r| {
                let mut c = Cells::new(r);
                let xid = c.int()?;
                let record = record(&mut c)?;
                Ok(Waiting { cursor: Cursor { xid, at: record.at, id: record.id.clone() }, record })
            })
            .collect()
    }

    /// Moves the head to `last` and past the events just chained (`ids`, whose last one is at
    /// `cursor`); `set` is the driver's subquery over a JSON list bound at `$1`.
    async fn advance(
        self,
        tx: &mut Box<dyn Tx>,
        last: &Anchor,
        cursor: &Cursor,
        ids: &[String],
        set: &str,
    ) -> StoreResult<()> {
        match self {
            Self::Cursor => {
                tx.execute(
                    "UPDATE audit_chain SET seq = $1, hash = $2, cursor_xid = $3, cursor_at = $4, cursor_id = $5 \
                     WHERE id = 1",
                    &[
                        Param::Int(Some(last.seq)),
                        last.hash.clone().into(),
                        Param::Int(Some(cursor.xid)),
                        Param::Int(Some(cursor.at)),
                        cursor.id.clone().into(),
                    ],
                )
                .await?;
            }
            Self::Flag => {
                let list = serde_json::to_string(ids)
                    .map_err(|e| StoreError::Internal(format!("cannot encode a list: {e}")))?;
                tx.execute(&format!("UPDATE audit_events SET chained = 1 WHERE id IN ({set})"), &[list.into()]).await?;
                tx.execute(
                    "UPDATE audit_chain SET seq = $1, hash = $2 WHERE id = 1",
                    &[Param::Int(Some(last.seq)), last.hash.clone().into()],
                )
                .await?;
            }
        }
        Ok(())
    }
}
