//! The store's side of external users (migration 0011): connected organizations with the keys
//! of their identity sources (`organization_sources`, one organization per domain, tenant or
//! provider) and their sponsors, the organizations each policy names (`policy_organizations`),
//! the tenant's entitlement-management settings, and Steward's record of the guests it governs
//! (`external_users`) with the writes that move their lifecycle.
//!
//! Blocking, deleting and reinstating a guest all take the lock on their `external_users` row
//! first and only then look at their active assignments, each in a statement of its own: on
//! PostgreSQL (read committed) every statement reads what was committed before it, so of an
//! assignment starting and a block at the same moment, the later sees the earlier.

use steward_app::ports::GuestWrite;
use steward_domain::connected::{self, ConnectedOrganization, IdentitySource, SponsorKind};
use steward_domain::enums::SubjectLifecycle;
use steward_domain::external::{Block, EntitlementSettings, ExternalUser, SETTINGS_ID};
use steward_domain::ids::ConnectedOrganizationId;

use super::*;

impl FromRow for ConnectedOrganization {
    const COLUMNS: &'static str = "id, display_name, description, state, identity_sources, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ConnectedOrganization {
            id: c.parse()?,
            display_name: c.name()?,
            description: c.opt_text()?,
            state: c.parse()?,
            identity_sources: serde_json::from_str::<Vec<IdentitySource>>(&c.text()?)
                .map_err(|e| StoreError::Internal(format!("stored identity sources do not parse: {e}")))?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
        })
    }
}

impl FromRow for ExternalUser {
    const COLUMNS: &'static str = "user_id, connected_organization_id, lifecycle, blocked_at, delete_at, created_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ExternalUser {
            user_id: c.parse()?,
            connected_organization_id: c.opt_parse()?,
            lifecycle: c.parse()?,
            blocked_at: c.opt_time()?,
            delete_at: c.opt_time()?,
            created_date_time: c.time()?,
        })
    }
}

fn sources_json(o: &ConnectedOrganization) -> StoreResult<Param> {
    serde_json::to_string(&o.identity_sources)
        .map(Param::from)
        .map_err(|e| StoreError::Internal(format!("cannot encode identity sources: {e}")))
}

/// Refuses keys of `o` that another organization has, naming the first and its owner.
async fn check_keys_free(tx: &mut Box<dyn Tx>, o: &ConnectedOrganization) -> StoreResult<()> {
    let keys = o.keys();
    if keys.is_empty() {
        return Ok(());
    }
    let marks: Vec<String> = (2..=keys.len() + 1).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT s.source_key, c.display_name FROM organization_sources s \
         JOIN connected_organizations c ON c.id = s.organization_id \
         WHERE s.organization_id <> $1 AND s.source_key IN ({}) ORDER BY s.source_key",
        marks.join(", ")
    );
    let mut params = vec![id(o.id)];
    params.extend(keys.into_iter().map(Param::from));
    let rows = tx.fetch(&sql, &params).await?;
    if let Some(r) = rows.first() {
        let mut c = Cells::new(r);
        let (key, owner) = (c.text()?, c.text()?);
        // A rule of the model, not a lost race: trying again would meet it again.
        return Err(StoreError::Rule(steward_domain::DomainError::conflict(format!(
            "The {} already belongs to connected organization '{owner}'; a domain (or tenant) belongs to one \
             connected organization at most.",
            connected::describe_key(&key)
        ))));
    }
    Ok(())
}

async fn insert_keys(tx: &mut Box<dyn Tx>, o: &ConnectedOrganization) -> StoreResult<()> {
    for key in o.keys() {
        tx.execute(
            "INSERT INTO organization_sources (source_key, organization_id) VALUES ($1, $2)",
            &[key.into(), id(o.id)],
        )
        .await?;
    }
    Ok(())
}

/// A unique violation on a key that `check_keys_free` found free: another writer took it.
fn key_taken(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(
            "A domain (or tenant) of the organization was given to another connected organization meanwhile; \
             read it again and retry."
                .into(),
        ),
        other => other,
    }
}

/// Replaces a policy's rows in `policy_organizations` with the organizations its settings name,
/// in its transaction (a missing organization fails it with a foreign-key violation).
pub(crate) async fn write_policy_organizations(tx: &mut Box<dyn Tx>, p: &AssignmentPolicy) -> StoreResult<()> {
    tx.execute("DELETE FROM policy_organizations WHERE policy_id = $1", &[id(p.id)]).await?;
    for org in connected::organization_ids(&p.settings) {
        tx.execute(
            "INSERT INTO policy_organizations (policy_id, organization_id) VALUES ($1, $2)",
            &[id(p.id), id(org)],
        )
        .await?;
    }
    Ok(())
}

/// What a policy write refers to among connected organizations, for naming what is missing.
pub(crate) fn policy_organization_refs(p: &AssignmentPolicy) -> Vec<Ref> {
    connected::organization_ids(&p.settings)
        .into_iter()
        .map(|o| ("connected_organizations", "connected organization", o.to_string()))
        .collect()
}

/// Writes the guests of a batch, inside its transaction, before anything else of it.
pub(crate) async fn write_guests(tx: &mut Box<dyn Tx>, guests: &[GuestWrite]) -> StoreResult<()> {
    for g in guests {
        match g {
            GuestWrite::Invite { user, record, event } => {
                let mut params = user_params(user);
                params.push(ts(user.created_date_time));
                tx.execute(
                    "INSERT INTO users (id, display_name, user_principal_name, upn_key, mail, user_type, \
                     account_enabled, department, job_title, company_name, employee_id, city, country, manager_id, \
                     display_name_fold, mail_fold, department_fold, job_title_fold, company_name_fold, \
                     employee_id_fold, city_fold, country_fold, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                     $20, $21, $22, $23)",
                    &params,
                )
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "The guest '{}' could not be created: a user with this id or userPrincipalName exists \
                         (created meanwhile); try again.",
                        user.user_principal_name
                    )),
                    other => other,
                })?;
                tx.execute(
                    "INSERT INTO external_users (user_id, connected_organization_id, lifecycle, blocked_at, \
                     delete_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        id(record.user_id),
                        Param::Text(record.connected_organization_id.map(|o| o.to_string())),
                        record.lifecycle.as_str().into(),
                        opt_ts(record.blocked_at),
                        opt_ts(record.delete_at),
                        ts(record.created_date_time),
                    ],
                )
                .await?;
                lifecycle::record_in(tx, event).await?;
            }
            GuestWrite::Reinstate { user, event } => {
                if !lock_external(tx, *user).await? {
                    return Err(StoreError::Conflict(format!(
                        "The external user '{user}' was deleted meanwhile; the request cannot be fulfilled for them."
                    )));
                }
                // Read after the lock: a block committed just before is seen here.
                let unblocked = tx
                    .execute(
                        "UPDATE users SET account_enabled = $2 WHERE id = $1 AND EXISTS \
                         (SELECT 1 FROM external_users WHERE user_id = $1 AND blocked_at IS NOT NULL)",
                        &[id(*user), true.into()],
                    )
                    .await?;
                tx.execute(
                    "UPDATE external_users SET blocked_at = NULL, delete_at = NULL \
                     WHERE user_id = $1 AND (blocked_at IS NOT NULL OR delete_at IS NOT NULL)",
                    &[id(*user)],
                )
                .await?;
                if unblocked > 0 {
                    lifecycle::record_in(tx, event).await?;
                }
            }
        }
    }
    Ok(())
}

/// Takes the write lock on a user's `external_users` row; false when there is none.
async fn lock_external(tx: &mut Box<dyn Tx>, user: UserId) -> StoreResult<bool> {
    Ok(tx.execute("UPDATE external_users SET user_id = user_id WHERE user_id = $1", &[id(user)]).await? > 0)
}

async fn active_assignments(tx: &mut Box<dyn Tx>, user: UserId) -> StoreResult<u64> {
    count_in(tx, "SELECT COUNT(*) FROM assignments WHERE target_id = $1 AND active_key IS NOT NULL", &[id(user)]).await
}

async fn external_in(tx: &mut Box<dyn Tx>, user: UserId) -> StoreResult<Option<ExternalUser>> {
    let sql = format!("SELECT {} FROM external_users WHERE user_id = $1", ExternalUser::COLUMNS);
    let rows = tx.fetch(&sql, &[id(user)]).await?;
    rows.first().map(|r| ExternalUser::from_cells(&mut Cells::new(r))).transpose()
}

/// `SqlStore::block` inside its transaction.
async fn block_in(tx: &mut Box<dyn Tx>, user: UserId, block: &Block, event: &AuditEvent) -> StoreResult<bool> {
    if !lock_external(tx, user).await? {
        return Ok(false);
    }
    let Some(record) = external_in(tx, user).await? else { return Ok(false) };
    if !record.governed() || record.blocked_at.is_some() || active_assignments(tx, user).await? > 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE external_users SET blocked_at = $2, delete_at = $3 WHERE user_id = $1",
        &[id(user), ts(block.at), opt_ts(block.delete_at)],
    )
    .await?;
    tx.execute("UPDATE users SET account_enabled = $2 WHERE id = $1", &[id(user), false.into()]).await?;
    lifecycle::record_in(tx, event).await?;
    Ok(true)
}

/// `SqlStore::delete_external` inside its transaction.
async fn delete_in(tx: &mut Box<dyn Tx>, user: UserId, now: jiff::Timestamp, event: &AuditEvent) -> StoreResult<bool> {
    if !lock_external(tx, user).await? {
        return Ok(false);
    }
    let Some(record) = external_in(tx, user).await? else { return Ok(false) };
    let due = record.blocked_at.is_some() && record.delete_at.is_some_and(|d| d <= now);
    if !record.governed() || !due || active_assignments(tx, user).await? > 0 {
        return Ok(false);
    }
    // Memberships, ownerships, sponsorships, tokens and the record go with the user.
    tx.execute("DELETE FROM users WHERE id = $1", &[id(user)]).await?;
    lifecycle::record_in(tx, event).await?;
    Ok(true)
}

impl SqlStore {
    pub(super) async fn insert_organization(&self, o: &ConnectedOrganization, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        check_keys_free(&mut tx, o).await?;
        tx.execute(
            "INSERT INTO connected_organizations (id, display_name, display_name_fold, description, description_fold, \
             state, identity_sources, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                id(o.id),
                o.display_name.as_str().into(),
                fold(o.display_name.as_str()),
                o.description.clone().into(),
                fold_opt(o.description.as_deref()),
                o.state.as_str().into(),
                sources_json(o)?,
                ts(o.created_date_time),
                ts(o.modified_date_time),
            ],
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("A connected organization with id '{}' already exists.", o.id))
            }
            other => other,
        })?;
        insert_keys(&mut tx, o).await.map_err(key_taken)?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    pub(super) async fn update_organization(
        &self,
        o: &ConnectedOrganization,
        read_at: jiff::Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        let n = tx
            .execute(
                "UPDATE connected_organizations SET display_name = $2, display_name_fold = $3, description = $4, \
                 description_fold = $5, state = $6, identity_sources = $7, modified_at = $8 \
                 WHERE id = $1 AND modified_at = $9",
                &[
                    id(o.id),
                    o.display_name.as_str().into(),
                    fold(o.display_name.as_str()),
                    o.description.clone().into(),
                    fold_opt(o.description.as_deref()),
                    o.state.as_str().into(),
                    sources_json(o)?,
                    ts(o.modified_date_time),
                    ts(read_at),
                ],
            )
            .await?;
        if n == 0 {
            tx.commit().await?;
            return self.changed_since(n, "connected_organizations", "connected organization", o.id).await;
        }
        check_keys_free(&mut tx, o).await?;
        tx.execute("DELETE FROM organization_sources WHERE organization_id = $1", &[id(o.id)]).await?;
        insert_keys(&mut tx, o).await.map_err(key_taken)?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    pub(super) async fn delete_organization(
        &self,
        org: ConnectedOrganizationId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        // Locked first, as a policy naming it reads it through its foreign key.
        if !lock_row(&mut tx, "connected_organizations", id(org)).await? {
            return Err(StoreError::not_found("connected organization", org));
        }
        let named =
            count_in(&mut tx, "SELECT COUNT(*) FROM policy_organizations WHERE organization_id = $1", &[id(org)])
                .await?;
        let in_use = |n: u64| {
            StoreError::Rule(steward_domain::DomainError::conflict(format!(
                "The connected organization is named by {n} assignment policy(ies) (connectedOrganizationMembers); \
                 take it out of them before deleting it."
            )))
        };
        if named > 0 {
            return Err(in_use(named));
        }
        tx.execute("DELETE FROM connected_organizations WHERE id = $1", &[id(org)]).await.map_err(|e| match e {
            StoreError::Conflict(_) => in_use(1),
            other => other,
        })?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    pub(super) async fn organization_by_domain(&self, domain: &str) -> StoreResult<Option<ConnectedOrganization>> {
        let columns: Vec<String> =
            ConnectedOrganization::COLUMNS.split(',').map(|c| format!("c.{}", c.trim())).collect();
        let sql = format!(
            "SELECT {} FROM organization_sources s JOIN connected_organizations c ON c.id = s.organization_id \
             WHERE s.source_key = $1",
            columns.join(", ")
        );
        Ok(self.rows(&sql, &[connected::domain_key(domain).into()]).await?.into_iter().next())
    }

    pub(super) async fn add_sponsor_of(
        &self,
        org: ConnectedOrganizationId,
        kind: SponsorKind,
        user: UserId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.insert(
            "INSERT INTO organization_sponsors (organization_id, kind, user_id) VALUES ($1, $2, $3)",
            &[id(org), kind.as_str().into(), id(user)],
            Some(event),
            || format!("User '{user}' is already one of the {} of connected organization '{org}'.", kind.nav()),
            &[
                ("connected_organizations", "connected organization", org.to_string()),
                ("users", "user", user.to_string()),
            ],
        )
        .await
    }

    pub(super) async fn remove_sponsor_of(
        &self,
        org: ConnectedOrganizationId,
        kind: SponsorKind,
        user: UserId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let what = match kind {
            SponsorKind::Internal => "internal sponsor of connected organization",
            SponsorKind::External => "external sponsor of connected organization",
        };
        self.write_one(
            "DELETE FROM organization_sponsors WHERE organization_id = $1 AND kind = $2 AND user_id = $3",
            &[id(org), kind.as_str().into(), id(user)],
            Some(event),
            what,
            user,
        )
        .await
    }

    pub(super) async fn sponsors_of(
        &self,
        org: ConnectedOrganizationId,
        kind: SponsorKind,
    ) -> StoreResult<Vec<UserId>> {
        self.ids(
            "SELECT user_id FROM organization_sponsors WHERE organization_id = $1 AND kind = $2 ORDER BY user_id",
            &[id(org), kind.as_str().into()],
        )
        .await
    }

    pub(super) async fn settings(&self) -> StoreResult<EntitlementSettings> {
        let rows = self
            .driver
            .fetch(
                "SELECT external_user_lifecycle_action, delete_after_blocked FROM entitlement_settings WHERE id = $1",
                &[SETTINGS_ID.into()],
            )
            .await?;
        let Some(r) = rows.first() else { return Ok(EntitlementSettings::default()) };
        let mut c = Cells::new(r);
        Ok(EntitlementSettings {
            external_user_lifecycle_action: c.parse()?,
            duration_until_external_user_deleted_after_blocked: steward_domain::duration::GraphDuration::from_micros(
                c.int()?,
            ),
        })
    }

    pub(super) async fn put_settings(&self, s: &EntitlementSettings, event: &AuditEvent) -> StoreResult<()> {
        let micros = i64::try_from(s.duration_until_external_user_deleted_after_blocked.as_signed().as_micros())
            .map_err(|_| StoreError::Rule(steward_domain::DomainError::invalid("The duration is too long.")))?;
        self.write_recorded(
            "INSERT INTO entitlement_settings (id, external_user_lifecycle_action, delete_after_blocked, modified_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             external_user_lifecycle_action = excluded.external_user_lifecycle_action, \
             delete_after_blocked = excluded.delete_after_blocked, modified_at = excluded.modified_at",
            &[SETTINGS_ID.into(), s.external_user_lifecycle_action.as_str().into(), micros.into(), ts(event.at)],
            event,
        )
        .await?;
        Ok(())
    }

    pub(super) async fn by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let sql =
            format!("SELECT {} FROM users WHERE upn_key = $1 OR mail_fold = $1 ORDER BY id LIMIT 1", User::COLUMNS);
        Ok(self.rows(&sql, &[email.to_lowercase().into()]).await?.into_iter().next())
    }

    pub(super) async fn external_user(&self, user: UserId) -> StoreResult<Option<ExternalUser>> {
        let sql = format!("SELECT {} FROM external_users WHERE user_id = $1", ExternalUser::COLUMNS);
        Ok(self.rows(&sql, &[id(user)]).await?.into_iter().next())
    }

    pub(super) async fn governed_unblocked_of(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let sql = format!(
            "SELECT user_id FROM external_users WHERE lifecycle = '{}' AND blocked_at IS NULL AND user_id",
            SubjectLifecycle::Governed.as_str()
        );
        let rows = self.fetch_in(&sql, users.iter().map(ToString::to_string).collect(), "").await?;
        rows.iter().map(|r| Cells::new(r).parse()).collect()
    }

    pub(super) async fn block(&self, user: UserId, block: &Block, event: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.driver.begin().await?;
        let blocked = block_in(&mut tx, user, block, event).await?;
        // Committed either way (nothing was written when refused): see `write_recorded`.
        tx.commit().await?;
        Ok(blocked)
    }

    pub(super) async fn due_external(&self, now: jiff::Timestamp, limit: u32) -> StoreResult<Vec<UserId>> {
        self.ids(
            "SELECT user_id FROM external_users WHERE delete_at IS NOT NULL AND delete_at <= $1 \
             ORDER BY delete_at, user_id LIMIT $2",
            &[ts(now), i64::from(limit).into()],
        )
        .await
    }

    pub(super) async fn delete_external(
        &self,
        user: UserId,
        now: jiff::Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.driver.begin().await?;
        let deleted = delete_in(&mut tx, user, now, event).await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
