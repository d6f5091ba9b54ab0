//! The audit trail in the store (migration 0015): reading it as directoryAudits, and its hash
//! chain — the chainer that gives unchained events their place under the head row's lock, the
//! head and anchor, the checkpoints, and the chained records as stored for verification.

use steward_app::ports::{ChainProgress, ChainState};
use steward_domain::audit_chain::{self, Anchor, Checkpoint, Link, Record};
use steward_domain::ids::AuditEventId;

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

struct Unchained(Record);

impl FromRow for Unchained {
    const COLUMNS: &'static str = RECORD_COLUMNS;
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Self(record(c)?))
    }
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
        let pending_sql =
            format!("SELECT {RECORD_COLUMNS} FROM audit_events WHERE seq IS NULL ORDER BY at, id LIMIT {limit}");
        // Look first without the lock: most rounds find nothing, and take no lock for it.
        let probe = self.driver.fetch("SELECT id FROM audit_events WHERE seq IS NULL LIMIT 1", &[]).await?;
        if probe.is_empty() {
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
        let rows = tx.fetch(&pending_sql, &[]).await?;
        let records = rows
            .iter()
            .map(|r| Unchained::from_cells(&mut Cells::new(r)).map(|u| u.0))
            .collect::<StoreResult<Vec<_>>>()?;
        let links = audit_chain::chain(head.seq, &head.hash, records);
        let Some(last) = links.last().map(|l| Anchor { seq: l.seq, hash: l.hash.clone() }) else {
            return Ok(ChainProgress { chained: 0, head, last_checkpoint: None });
        };
        let values: Vec<Vec<Param>> = links
            .iter()
            .map(|l| {
                vec![
                    l.record.id.clone().into(),
                    Param::Int(Some(l.seq)),
                    l.prev_hash.clone().into(),
                    l.hash.clone().into(),
                ]
            })
            .collect();
        update_links(&mut tx, self.driver.arrays(), values).await?;
        tx.execute(
            "UPDATE audit_chain SET seq = $1, hash = $2 WHERE id = 1",
            &[Param::Int(Some(last.seq)), last.hash.clone().into()],
        )
        .await?;
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
        let unchained = self.driver.fetch("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL", &[]).await?;
        let unchained = unchained.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
        let unchained = u64::try_from(unchained).unwrap_or(0);
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
        let young = self
            .driver
            .fetch(
                "SELECT MIN(seq) FROM audit_events WHERE seq > $1 AND at >= $2",
                &[Param::Int(Some(anchor.seq)), ts(before)],
            )
            .await?;
        let first_young = young.first().map(|r| Cells::new(r).opt_int()).transpose()?.flatten();
        let end =
            first_young.map_or(head.seq, |s| s.saturating_sub(1)).min(anchor.seq.saturating_add(i64::from(limit)));
        if end <= anchor.seq {
            return Ok(None);
        }
        let rows = self.driver.fetch("SELECT hash FROM audit_events WHERE seq = $1", &[Param::Int(Some(end))]).await?;
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
        tx.execute(
            "DELETE FROM audit_events WHERE seq > $1 AND seq <= $2",
            &[Param::Int(Some(from.seq)), Param::Int(Some(to.seq))],
        )
        .await?;
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
        let sql = format!("SELECT {} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT {limit}", Stored::COLUMNS);
        Ok(self.rows::<Stored>(&sql, &[Param::Int(Some(after))]).await?.into_iter().map(|s| s.0).collect())
    }
}

/// Writes the links' `seq`, `prev_hash` and `hash` (rows of id, seq, prev_hash, hash): one
/// `UPDATE … FROM UNNEST` on PostgreSQL, `UPDATE … FROM (VALUES …)` in chunks elsewhere.
async fn update_links(tx: &mut Box<dyn Tx>, arrays: bool, rows: Vec<Vec<Param>>) -> StoreResult<()> {
    const SET: &str = "UPDATE audit_events SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash FROM ";
    const WHERE: &str = " WHERE audit_events.id = v.id";
    if arrays {
        let (mut ids, mut seqs, mut prevs, mut hashes) = (vec![], vec![], vec![], vec![]);
        for r in rows {
            let mut r = r.into_iter();
            if let (Some(Param::Text(i)), Some(Param::Int(s)), Some(Param::Text(p)), Some(Param::Text(h))) =
                (r.next(), r.next(), r.next(), r.next())
            {
                ids.push(i);
                seqs.push(s);
                prevs.push(p);
                hashes.push(h);
            }
        }
        let sql = format!(
            "{SET}UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[]) AS v (id, seq, prev_hash, hash){WHERE}"
        );
        tx.execute(&sql, &[Param::Texts(ids), Param::Ints(seqs), Param::Texts(prevs), Param::Texts(hashes)]).await?;
        return Ok(());
    }
    for chunk in rows.chunks(lifecycle::MAX_PARAMS / 4) {
        let mut tuples = Vec::with_capacity(chunk.len());
        for k in 0..chunk.len() {
            let b = k * 4;
            tuples.push(format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        let sql = format!(
            "{SET}(SELECT column1 AS id, column2 AS seq, column3 AS prev_hash, column4 AS hash FROM (VALUES {})) AS v{WHERE}",
            tuples.join(", ")
        );
        let params: Vec<Param> = chunk.iter().flatten().cloned().collect();
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}
