//! The store's side of portal sign-in (migration 0012): sign-ins in flight (`sign_in_states`,
//! taken once by a `DELETE … RETURNING`) and sessions (`sessions`, read with their user's
//! `account_enabled`, deleted with their user by the foreign key). Rows are keyed by hashes;
//! the sealed values are opaque here.

use jiff::SignedDuration;
use steward_app::sessions::{Session, StoredSignIn};

use super::*;

const SIGN_IN_COLUMNS: &str = "state_hash, browser_hash, sealed, return_to, created_at, expires_at";
const SESSION_COLUMNS: &str = "s.id_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.idle_seconds, \
                               s.amr, s.acr, s.auth_time, s.device_compliant, s.id_token";

impl FromRow for StoredSignIn {
    const COLUMNS: &'static str = SIGN_IN_COLUMNS;
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(StoredSignIn {
            state_hash: c.text()?,
            browser_hash: c.text()?,
            sealed: c.text()?,
            return_to: c.text()?,
            created_at: c.time()?,
            expires_at: c.time()?,
        })
    }
}

impl FromRow for Session {
    const COLUMNS: &'static str = SESSION_COLUMNS;
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Session {
            id_hash: c.text()?,
            user_id: c.parse()?,
            created_at: c.time()?,
            last_seen_at: c.time()?,
            expires_at: c.time()?,
            idle_timeout: SignedDuration::from_secs(c.int()?),
            amr: serde_json::from_str(&c.text()?)
                .map_err(|e| StoreError::Internal(format!("a session's stored amr does not parse: {e}")))?,
            acr: c.opt_text()?,
            auth_time: c.opt_time()?,
            device_compliant: c.opt_bool()?,
            id_token: c.opt_text()?,
        })
    }
}

impl SqlStore {
    pub(super) async fn insert_sign_in_impl(&self, r: &StoredSignIn) -> StoreResult<()> {
        self.insert(
            "INSERT INTO sign_in_states (state_hash, browser_hash, sealed, return_to, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                r.state_hash.clone().into(),
                r.browser_hash.clone().into(),
                r.sealed.clone().into(),
                r.return_to.clone().into(),
                ts(r.created_at),
                ts(r.expires_at),
            ],
            None,
            || "A sign-in with the same state is already in flight.".into(),
            &[],
        )
        .await
    }

    pub(super) async fn take_sign_in_impl(&self, state_hash: &str) -> StoreResult<Option<StoredSignIn>> {
        let sql = format!("DELETE FROM sign_in_states WHERE state_hash = $1 RETURNING {SIGN_IN_COLUMNS}");
        let mut tx = self.driver.begin().await?;
        let rows = tx.fetch(&sql, &[state_hash.into()]).await?;
        tx.commit().await?;
        rows.first().map(|r| StoredSignIn::from_cells(&mut Cells::new(r))).transpose()
    }

    pub(super) async fn insert_session_impl(&self, s: &Session) -> StoreResult<()> {
        let amr = serde_json::to_string(&s.amr)
            .map_err(|e| StoreError::Internal(format!("cannot encode a session's amr: {e}")))?;
        self.insert(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, idle_seconds, ends_at, \
             amr, acr, auth_time, device_compliant, id_token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                s.id_hash.clone().into(),
                id(s.user_id),
                ts(s.created_at),
                ts(s.last_seen_at),
                ts(s.expires_at),
                s.idle_timeout.as_secs().into(),
                ts(s.ends_at()),
                amr.into(),
                s.acr.clone().into(),
                opt_ts(s.auth_time),
                Param::Bool(s.device_compliant),
                s.id_token.clone().into(),
            ],
            None,
            || "A session with the same token already exists.".into(),
            &[("users", "user", s.user_id.to_string())],
        )
        .await
    }

    pub(super) async fn session_impl(&self, id_hash: &str) -> StoreResult<Option<(Session, bool)>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, u.account_enabled FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1"
        );
        let rows = self.driver.fetch(&sql, &[id_hash.into()]).await?;
        rows.first()
            .map(|r| {
                let mut c = Cells::new(r);
                let session = Session::from_cells(&mut c)?;
                Ok((session, c.bool()?))
            })
            .transpose()
    }

    pub(super) async fn touch_session_impl(
        &self,
        id_hash: &str,
        last_seen: jiff::Timestamp,
        ends_at: jiff::Timestamp,
    ) -> StoreResult<()> {
        // Never moves `last_seen_at` back (two requests touching at once, in either order).
        self.write(
            "UPDATE sessions SET last_seen_at = $2, ends_at = $3 WHERE id_hash = $1 AND last_seen_at < $2",
            &[id_hash.into(), ts(last_seen), ts(ends_at)],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn delete_session_impl(&self, id_hash: &str) -> StoreResult<bool> {
        Ok(self.write("DELETE FROM sessions WHERE id_hash = $1", &[id_hash.into()]).await? > 0)
    }

    pub(super) async fn sweep_sessions_impl(&self, now: jiff::Timestamp) -> StoreResult<u64> {
        let mut deleted = 0;
        // Reads first: the sweep runs every second, and most of the time nothing has ended,
        // so it should not take SQLite's write lock for nothing.
        for (probe, delete) in [
            (
                "SELECT state_hash FROM sign_in_states WHERE expires_at <= $1 LIMIT 1",
                "DELETE FROM sign_in_states WHERE expires_at <= $1",
            ),
            ("SELECT id_hash FROM sessions WHERE ends_at <= $1 LIMIT 1", "DELETE FROM sessions WHERE ends_at <= $1"),
        ] {
            if !self.driver.fetch(probe, &[ts(now)]).await?.is_empty() {
                deleted += self.write(delete, &[ts(now)]).await?;
            }
        }
        Ok(deleted)
    }
}
