//! Notifications in the store (migration 0016): the outbox of rendered mails (`notifications`),
//! the cursor on the audit chain that feeds it (`notify_cursor`, moved with compare-and-set in
//! the transaction that queues what it read) and the sweep's timer watermarks
//! (`notify_timers`), leases on due notices (as on jobs: `FOR UPDATE SKIP LOCKED` where writers
//! run concurrently), and the reads the timers need.

use steward_app::notify::{Channel, Notice, NoticeState, NotificationKind};

use super::*;
use crate::lifecycle::{I, T, insert_many};

const NOTICE_COLUMNS: &str = "id, kind, recipient, recipient_name, user_id, subject, text_body, html_body, source, \
     created_at, next_at, attempts, state, last_error, sent_at, channel";

impl FromRow for Notice {
    const COLUMNS: &'static str = NOTICE_COLUMNS;
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        let bad = |what: &str, v: &str| StoreError::Internal(format!("a stored notice has an unknown {what} '{v}'"));
        let id = c.text()?;
        let kind = c.text()?;
        let kind = NotificationKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?;
        let recipient = c.text()?;
        let recipient_name = c.opt_text()?;
        let user_id = c.opt_parse()?;
        let subject = c.text()?;
        let text_body = c.text()?;
        let html_body = c.text()?;
        let source = c.text()?;
        let created_at = c.time()?;
        let next_at = c.time()?;
        let attempts = u32::try_from(c.int()?).unwrap_or(u32::MAX);
        let state = c.text()?;
        let state = NoticeState::parse(&state).ok_or_else(|| bad("state", &state))?;
        let (last_error, sent_at) = (c.opt_text()?, c.opt_time()?);
        let channel = c.text()?;
        let channel = Channel::parse(&channel).ok_or_else(|| bad("channel", &channel))?;
        Ok(Notice {
            id,
            kind,
            channel,
            recipient,
            recipient_name,
            user_id,
            subject,
            text_body,
            html_body,
            source,
            created_at,
            next_at,
            attempts,
            state,
            last_error,
            sent_at,
        })
    }
}

/// An audit event with its place in the chain: `seq`, then `AuditEvent::COLUMNS`.
struct Chained(i64, AuditEvent);

impl FromRow for Chained {
    const COLUMNS: &'static str = "";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        let seq = c.int()?;
        Ok(Chained(seq, AuditEvent::from_cells(c)?))
    }
}

/// Inserts notices not queued yet (by id), in the caller's transaction.
async fn insert_notices(tx: &mut Box<dyn Tx>, arrays: bool, notices: &[Notice]) -> StoreResult<()> {
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<Vec<Param>> = notices
        .iter()
        .filter(|n| seen.insert(n.id.as_str()))
        .map(|n| {
            vec![
                n.id.clone().into(),
                n.kind.as_str().into(),
                n.recipient.clone().into(),
                n.recipient_name.clone().into(),
                Param::Text(n.user_id.map(|u| u.to_string())),
                n.subject.clone().into(),
                n.text_body.clone().into(),
                n.html_body.clone().into(),
                n.source.clone().into(),
                ts(n.created_at),
                ts(n.next_at),
                i64::from(n.attempts).into(),
                n.state.as_str().into(),
                n.last_error.clone().into(),
                opt_ts(n.sent_at),
                n.channel.as_str().into(),
            ]
        })
        .collect();
    insert_many(
        tx,
        arrays,
        "INSERT INTO notifications (id, kind, recipient, recipient_name, user_id, subject, text_body, html_body, \
         source, created_at, next_at, attempts, state, last_error, sent_at, channel)",
        &[T, T, T, T, T, T, T, T, T, I, I, I, T, T, I, T],
        rows,
        "ON CONFLICT (id) DO NOTHING",
    )
    .await
}

/// Claims due notices (SQLite, whose writers take turns). The lease condition is repeated
/// outside the subquery for readability's sake: nothing else writes meanwhile.
const CLAIM: &str = "UPDATE notifications SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (SELECT id FROM notifications WHERE state = 'pending' AND next_at <= $3 \
     AND (lease_until IS NULL OR lease_until <= $3) ORDER BY next_at, id LIMIT $4) \
     AND state = 'pending' AND (lease_until IS NULL OR lease_until <= $3) \
     RETURNING id, kind, recipient, recipient_name, user_id, subject, text_body, html_body, source, created_at, \
     next_at, attempts, state, last_error, sent_at, channel";
/// Claims due notices on PostgreSQL: the pick is materialized once, locking what it takes and
/// skipping what another claimer holds (a `LIMIT … SKIP LOCKED` subquery inside `IN` may be
/// run more than once by the planner, each run skipping the rows the last one locked, and so
/// claim more than the limit).
const CLAIM_SKIP_LOCKED: &str = "WITH picked AS MATERIALIZED (SELECT id FROM notifications \
     WHERE state = 'pending' AND next_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
     ORDER BY next_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE notifications n SET lease_owner = $1, lease_until = $2 FROM picked WHERE n.id = picked.id \
     RETURNING n.id, n.kind, n.recipient, n.recipient_name, n.user_id, n.subject, n.text_body, n.html_body, \
     n.source, n.created_at, n.next_at, n.attempts, n.state, n.last_error, n.sent_at, n.channel";

impl SqlStore {
    pub(super) async fn notify_cursor_impl(&self) -> StoreResult<i64> {
        let rows = self.driver.fetch("SELECT seq FROM notify_cursor WHERE id = 1", &[]).await?;
        let row = rows.first().ok_or_else(|| StoreError::Internal("the notification cursor row is missing".into()))?;
        Cells::new(row).int()
    }

    pub(super) async fn notify_cursor_to_head_impl(&self) -> StoreResult<()> {
        // One statement: never behind where it was, whatever another process did meanwhile.
        self.write(
            "UPDATE notify_cursor SET seq = (SELECT seq FROM audit_chain WHERE id = 1) \
             WHERE id = 1 AND seq < (SELECT seq FROM audit_chain WHERE id = 1)",
            &[],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn chained_events_impl(&self, after: i64, limit: u32) -> StoreResult<Vec<(i64, AuditEvent)>> {
        let sql = format!(
            "SELECT seq, {} FROM audit_links JOIN audit_events ON audit_events.id = audit_links.event_id \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            AuditEvent::COLUMNS
        );
        let rows: Vec<Chained> = self.rows(&sql, &[after.into(), i64::from(limit).into()]).await?;
        Ok(rows.into_iter().map(|Chained(seq, e)| (seq, e)).collect())
    }

    pub(super) async fn queue_notices_impl(&self, notices: &[Notice], from: i64, to: i64) -> StoreResult<bool> {
        let mut tx = self.driver.begin().await?;
        // The cursor first: a process that lost the race writes nothing and waits no longer
        // than the winner's transaction.
        let moved = tx
            .execute("UPDATE notify_cursor SET seq = $1 WHERE id = 1 AND seq = $2", &[to.into(), from.into()])
            .await?;
        if moved == 0 {
            return Ok(false);
        }
        insert_notices(&mut tx, self.driver.arrays(), notices).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn notify_timer_impl(&self, name: &str) -> StoreResult<Option<jiff::Timestamp>> {
        let rows = self.driver.fetch("SELECT until FROM notify_timers WHERE name = $1", &[name.into()]).await?;
        rows.first().map(|r| Cells::new(r).time()).transpose()
    }

    pub(super) async fn queue_timer_notices_impl(
        &self,
        name: &str,
        read: Option<jiff::Timestamp>,
        until: jiff::Timestamp,
        notices: &[Notice],
    ) -> StoreResult<bool> {
        let mut tx = self.driver.begin().await?;
        let moved = match read {
            None => {
                tx.execute(
                    "INSERT INTO notify_timers (name, until) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[name.into(), ts(until)],
                )
                .await?
            }
            Some(read) => {
                tx.execute(
                    "UPDATE notify_timers SET until = $1 WHERE name = $2 AND until = $3",
                    &[ts(until), name.into(), ts(read)],
                )
                .await?
            }
        };
        if moved == 0 {
            return Ok(false);
        }
        insert_notices(&mut tx, self.driver.arrays(), notices).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn claim_notices_impl(
        &self,
        owner: &str,
        now: jiff::Timestamp,
        lease_until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Notice>> {
        // Mostly nothing is due: one index probe says so without a write transaction.
        let probe = "SELECT 1 FROM notifications WHERE state = 'pending' AND next_at <= $1 \
                     AND (lease_until IS NULL OR lease_until <= $1) LIMIT 1";
        if self.driver.fetch(probe, &[ts(now)]).await?.is_empty() {
            return Ok(Vec::new());
        }
        let sql = if self.driver.concurrent_writers() { CLAIM_SKIP_LOCKED } else { CLAIM };
        let mut tx = self.driver.begin().await?;
        let rows = tx.fetch(sql, &[owner.into(), ts(lease_until), ts(now), i64::from(limit).into()]).await?;
        tx.commit().await?;
        let mut notices =
            rows.iter().map(|r| Notice::from_cells(&mut Cells::new(r))).collect::<StoreResult<Vec<_>>>()?;
        notices.sort_by(|a, b| a.next_at.cmp(&b.next_at).then_with(|| a.id.cmp(&b.id)));
        Ok(notices)
    }

    pub(super) async fn notice_sent_impl(&self, nid: &str, owner: &str, at: jiff::Timestamp) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE notifications SET state = 'sent', sent_at = $1, attempts = attempts + 1, lease_owner = NULL, \
                 lease_until = NULL, last_error = NULL WHERE id = $2 AND lease_owner = $3 AND state = 'pending'",
                &[ts(at), nid.into(), owner.into()],
            )
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn notice_retry_impl(
        &self,
        nid: &str,
        owner: &str,
        next_at: jiff::Timestamp,
        error: &str,
    ) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE notifications SET next_at = $1, attempts = attempts + 1, last_error = $2, lease_owner = NULL, \
                 lease_until = NULL WHERE id = $3 AND lease_owner = $4 AND state = 'pending'",
                &[ts(next_at), error.into(), nid.into(), owner.into()],
            )
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn notice_failed_impl(&self, nid: &str, owner: &str, error: &str) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE notifications SET state = 'failed', attempts = attempts + 1, last_error = $1, \
                 lease_owner = NULL, lease_until = NULL WHERE id = $2 AND lease_owner = $3 AND state = 'pending'",
                &[error.into(), nid.into(), owner.into()],
            )
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn notice_postpone_impl(
        &self,
        nid: &str,
        owner: &str,
        next_at: jiff::Timestamp,
    ) -> StoreResult<bool> {
        let n = self
            .write(
                "UPDATE notifications SET next_at = $1, lease_owner = NULL, lease_until = NULL \
                 WHERE id = $2 AND lease_owner = $3 AND state = 'pending'",
                &[ts(next_at), nid.into(), owner.into()],
            )
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn get_notice_impl(&self, nid: &str) -> StoreResult<Option<Notice>> {
        let sql = format!("SELECT {NOTICE_COLUMNS} FROM notifications WHERE id = $1");
        Ok(self.rows::<Notice>(&sql, &[nid.into()]).await?.into_iter().next())
    }

    pub(super) async fn assignments_ending_between_impl(
        &self,
        after: jiff::Timestamp,
        until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Assignment>> {
        let sql = format!(
            "SELECT {} FROM assignments WHERE active_key IS NOT NULL AND end_at IS NOT NULL AND end_at > $1 \
             AND end_at <= $2 ORDER BY end_at, id LIMIT $3",
            Assignment::COLUMNS
        );
        self.rows(&sql, &[ts(after), ts(until), i64::from(limit).into()]).await
    }

    pub(super) async fn requests_due_between_impl(
        &self,
        after: jiff::Timestamp,
        until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<AssignmentRequest>> {
        let sql = format!(
            "SELECT {} FROM assignment_requests WHERE due IS NOT NULL AND due > $1 AND due <= $2 \
             ORDER BY due, id LIMIT $3",
            AssignmentRequest::COLUMNS
        );
        self.rows(&sql, &[ts(after), ts(until), i64::from(limit).into()]).await
    }
}
