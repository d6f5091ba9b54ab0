//! `SqlStore`: the store's logic, written once, over any `Driver`. Each method is one
//! transaction; rules that depend on other rows call the domain's rule functions inside it.

use std::sync::Arc;

use async_trait::async_trait;
use steward_app::auth::ApiToken;
use steward_app::jobs::Job;
use steward_app::ports::{Batch, Conflicting, RoleAssignmentFilter, RoleGrant, Violation};
use steward_app::ports::{Page, StoreResult};
use steward_app::query::{ALL_SCHEMAS, ListQuery, Value};
use steward_app::{Store, StoreError};
use steward_domain::assignment::{Assignment, Delivery};
use steward_domain::audit::AuditEvent;
use steward_domain::catalog::{self, Catalog, GroupResource, Resource, ResourceRequest, ResourceRole, ResourceScope};
use steward_domain::connection::Connection;
use steward_domain::directory::{self, Group, User};
use steward_domain::eligibility::SelfRequestors;
use steward_domain::enums::CustomExtensionStage;
use steward_domain::extension::{CalloutInstance, CustomExtension};
use steward_domain::ids::{
    AccessPackageId, AssignmentId, CalloutInstanceId, CatalogId, ConnectionId, CustomExtensionId, GroupId, JobId,
    PolicyId, RequestId, ResourceId, ResourceRoleId, ResourceRoleScopeId, ResourceScopeId, ReviewDecisionId,
    ReviewDefinitionId, ReviewInstanceId, RoleAssignmentId, TokenId, UserId,
};
use steward_domain::package::{self, AccessPackage, PackageContent, ResourceRoleScope};
use steward_domain::policy::AssignmentPolicy;
use steward_domain::request::AssignmentRequest;
use steward_domain::review::{ReviewDecision, ReviewDefinition, ReviewInstance};
use steward_domain::role::{AppScope, RoleAssignment};
use steward_domain::rule::MembershipRule;
use steward_domain::time::to_micros;

use crate::driver::{Cell, Driver, FOREIGN_KEY_VIOLATION, Param, Tx, UNIQUE_VIOLATION};
use crate::requestors::{self, RuleCache};
use crate::rows::{Cells, FromRow};
use crate::{compile, lifecycle, rule_sql};

mod audit;
mod chat;
mod external;
mod metrics;
mod notify;
mod review_history;
mod reviews;
mod scim;
mod sessions;

pub(crate) use external::write_guests;
pub(crate) use reviews::write_reviews;

/// Called after a transaction that queued jobs has committed.
pub type JobsQueued = Arc<dyn Fn(&[JobId]) + Send + Sync>;

/// The store over one database.
#[derive(Clone)]
pub struct SqlStore {
    driver: Arc<dyn Driver>,
    /// Users fetched per query when a membership rule must be re-checked in memory.
    recheck_batch: i64,
    /// The membership rules of policies, parsed, for `requestable_packages`.
    rules: Arc<RuleCache>,
    /// Up to how many admitting rows `requestable_packages` lists package ids instead of
    /// testing each package (see `requestors`).
    requestable_list: i64,
    jobs_queued: Option<JobsQueued>,
}

impl SqlStore {
    pub fn new(driver: Arc<dyn Driver>) -> Self {
        Self { driver, recheck_batch: 1000, rules: Arc::default(), requestable_list: 1000, jobs_queued: None }
    }

    /// The same store, calling `f` with the ids of the jobs each time a write that queued
    /// jobs has committed: `serve` hands them to its worker, which starts on them at once
    /// rather than at its next poll, and leases them by id. Other processes sharing the
    /// database still find the jobs by polling.
    pub fn on_jobs_queued(mut self, f: impl Fn(&[JobId]) + Send + Sync + 'static) -> Self {
        self.jobs_queued = Some(Arc::new(f));
        self
    }

    fn queued(&self, batch: &Batch) {
        if let Some(f) = &self.jobs_queued
            && !batch.jobs.is_empty()
        {
            let ids: Vec<JobId> = batch.jobs.iter().map(|j| j.id).collect();
            f(&ids);
        }
    }

    /// The same store, fetching `n` users per query (at least 1) when `users_matching` re-checks
    /// a rule with a regular expression in memory: a knob for memory use, and for tests to
    /// cross many batch boundaries with few users.
    pub fn with_recheck_batch(mut self, n: u32) -> Self {
        self.recheck_batch = i64::from(n.max(1));
        self
    }

    /// The same store, listing the packages a user may request by id while at most `n` rows of
    /// `policy_requestors` admit them, and testing each package beyond: a knob for tests to
    /// take either path.
    pub fn with_requestable_list(mut self, n: u32) -> Self {
        self.requestable_list = i64::from(n);
        self
    }

    /// Fills the folded columns (`*_fold`) of rows written before those columns existed:
    /// migration 0003 adds them empty, because neither database lowercases like Rust. Which
    /// columns fold into which comes from the app's query schemas, the same declarations the
    /// filter compiler reads. Idempotent, and one query per table when nothing is missing;
    /// `open` runs it after migrating. Returns how many rows it folded.
    pub async fn fold_missing(&self) -> StoreResult<u64> {
        const BATCH: usize = 500;
        let mut folded = 0;
        for schema in ALL_SCHEMAS {
            let pairs: Vec<(&str, &str)> =
                schema.fields.iter().filter_map(|f| f.fold.map(|fold| (f.column, fold))).collect();
            if pairs.is_empty() {
                continue;
            }
            let columns: Vec<&str> = pairs.iter().map(|(c, _)| *c).collect();
            let stale: Vec<String> = pairs.iter().map(|(c, f)| format!("({c} IS NOT NULL AND {f} IS NULL)")).collect();
            let set: Vec<String> = pairs.iter().enumerate().map(|(i, (_, f))| format!("{f} = ${}", i + 2)).collect();
            let select = format!(
                "SELECT id, {} FROM {} WHERE {} LIMIT {BATCH}",
                columns.join(", "),
                schema.table,
                stale.join(" OR ")
            );
            let update = format!("UPDATE {} SET {} WHERE id = $1", schema.table, set.join(", "));
            loop {
                let rows = self.driver.fetch(&select, &[]).await?;
                if rows.is_empty() {
                    break;
                }
                let mut tx = self.driver.begin().await?;
                for row in &rows {
                    let mut c = Cells::new(row);
                    let mut params = vec![Param::Text(Some(c.text()?))];
                    for _ in &pairs {
                        params.push(fold_opt(c.opt_text()?.as_deref()));
                    }
                    tx.execute(&update, &params).await?;
                }
                tx.commit().await?;
                folded += rows.len() as u64;
            }
        }
        Ok(folded)
    }

    /// Indexes who may request each policy's package for themselves (`self_requestors` and
    /// `policy_requestors`) for policies written before migration 0005 added those: the facts
    /// come from the policy's settings through `SelfRequestors::of`, which SQL cannot run.
    /// Idempotent, one query when nothing is missing; `open` runs it after migrating. A policy
    /// updated meanwhile is left as its update indexed it. Returns how many it indexed.
    pub async fn index_missing_requestors(&self) -> StoreResult<u64> {
        const BATCH: i64 = 500;
        let mut indexed = 0;
        loop {
            let policies: Vec<AssignmentPolicy> = self
                .rows(
                    &format!(
                        "SELECT {} FROM assignment_policies WHERE self_requestors IS NULL ORDER BY id LIMIT $1",
                        AssignmentPolicy::COLUMNS
                    ),
                    &[BATCH.into()],
                )
                .await?;
            if policies.is_empty() {
                return Ok(indexed);
            }
            let mut tx = self.driver.begin().await?;
            for p in &policies {
                let who = SelfRequestors::of(&p.settings);
                let n = tx
                    .execute(
                        "UPDATE assignment_policies SET self_requestors = $2 WHERE id = $1 AND self_requestors IS NULL",
                        &[id(p.id), who.kind().into()],
                    )
                    .await?;
                if n > 0 {
                    requestors::write_in(&mut tx, p, &who).await?;
                    indexed += 1;
                }
            }
            tx.commit().await?;
        }
    }

    async fn get<T: FromRow>(&self, table: &'static str, id: String) -> StoreResult<Option<T>> {
        let sql = format!("SELECT {} FROM {table} WHERE id = $1", T::COLUMNS);
        let rows = self.driver.fetch(&sql, &[Param::Text(Some(id))]).await?;
        rows.first().map(|r| T::from_cells(&mut Cells::new(r))).transpose()
    }

    async fn list<T: FromRow>(&self, q: &ListQuery) -> StoreResult<Page<T>> {
        self.list_within(q, None).await
    }

    /// `list`, restricted to the rows `scope` keeps.
    async fn list_within<T: FromRow>(&self, q: &ListQuery, scope: Option<&compile::Scope>) -> StoreResult<Page<T>> {
        let (sql, params) = compile::page_sql(q, T::COLUMNS, scope);
        let rows = self.driver.fetch(&sql, &params).await?;
        let top = usize::try_from(q.top).unwrap_or(usize::MAX);
        let more = rows.len() > top;
        let mut items = Vec::with_capacity(rows.len().min(top));
        let mut next = None;
        for (i, row) in rows.iter().take(top).enumerate() {
            let mut c = Cells::new(row);
            items.push(T::from_cells(&mut c)?);
            if more && i + 1 == top {
                next = Some(c.rest().iter().map(cell_value).collect());
            }
        }
        let count = match (q.count, q.known_count) {
            (false, _) => None,
            (true, Some(known)) => Some(known),
            (true, None) => Some(self.count(q, scope).await?),
        };
        Ok(Page { items, count, next })
    }

    async fn count(&self, q: &ListQuery, scope: Option<&compile::Scope>) -> StoreResult<u64> {
        let (sql, params) = compile::count_sql(q, scope);
        let rows = self.driver.fetch(&sql, &params).await?;
        let n = rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The rows of `sql` (which ends with `… WHERE <column>`) for each of `keys`: one array
    /// parameter (`= ANY($1)`) where the driver binds arrays, else an `IN` list, in chunks that
    /// stay under SQLite's parameter limit. `tail` follows the condition (`ORDER BY …`).
    async fn fetch_in(&self, sql: &str, keys: Vec<String>, tail: &str) -> StoreResult<Vec<crate::driver::Row>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if self.driver.arrays() {
            let full = format!("{sql} = ANY($1) {tail}");
            return self.driver.fetch(&full, &[Param::Texts(keys.into_iter().map(Some).collect())]).await;
        }
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let full = format!("{sql} IN ({}) {tail}", marks.join(", "));
            let params: Vec<Param> = chunk.iter().map(|k| Param::Text(Some(k.clone()))).collect();
            out.extend(self.driver.fetch(&full, &params).await?);
        }
        Ok(out)
    }

    /// Up to `limit` rows that came due by `now`, `filter` being `FROM … WHERE <due> <= $1
    /// ORDER BY …`. Asks first whether there is one at all (`LIMIT 1`): the sweep asks every
    /// few seconds and mostly finds nothing, and while a table is small, or has no planner
    /// statistics, PostgreSQL plans the full `LIMIT` as a scan and sort of the whole table
    /// (16 ms over 32,000 assignments, measured) rather than a walk of the due index.
    async fn due_rows<T: FromRow>(
        &self,
        filter: &str,
        columns: &str,
        now: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<T>> {
        if self.driver.fetch(&format!("SELECT 1 {filter} LIMIT 1"), &[ts(now)]).await?.is_empty() {
            return Ok(Vec::new());
        }
        self.rows(&format!("SELECT {columns} {filter} LIMIT $2"), &[ts(now), i64::from(limit).into()]).await
    }

    /// `fetch_in`, each row read as a `T`.
    async fn rows_in<T: FromRow>(&self, sql: &str, keys: Vec<String>, tail: &str) -> StoreResult<Vec<T>> {
        let rows = self.fetch_in(sql, keys, tail).await?;
        rows.iter().map(|r| T::from_cells(&mut Cells::new(r))).collect()
    }

    async fn rows<T: FromRow>(&self, sql: &str, params: &[Param]) -> StoreResult<Vec<T>> {
        let rows = self.driver.fetch(sql, params).await?;
        rows.iter().map(|r| T::from_cells(&mut Cells::new(r))).collect()
    }

    async fn ids<T: std::str::FromStr>(&self, sql: &str, params: &[Param]) -> StoreResult<Vec<T>> {
        let rows = self.driver.fetch(sql, params).await?;
        rows.iter().map(|r| Cells::new(r).parse()).collect()
    }

    /// Runs one write statement, atomic on its own (no explicit transaction: on PostgreSQL
    /// that saves the `BEGIN` and `COMMIT` round trips; on SQLite an autocommit write takes
    /// the write lock at once, honouring the busy timeout).
    async fn write(&self, sql: &str, params: &[Param]) -> StoreResult<u64> {
        self.driver.execute(sql, params).await
    }

    /// After a conditional update touched `n` rows: fine, or the row changed meanwhile
    /// (`Conflict`), or it is gone (`NotFound`).
    async fn changed_since(
        &self,
        n: u64,
        table: &'static str,
        kind: &'static str,
        key: impl ToString,
    ) -> StoreResult<()> {
        if n > 0 {
            return Ok(());
        }
        let key = key.to_string();
        match self
            .driver
            .fetch(&format!("SELECT id FROM {table} WHERE id = $1"), &[Param::Text(Some(key.clone()))])
            .await?
            .len()
        {
            0 => Err(StoreError::not_found(kind, key)),
            _ => Err(StoreError::Conflict(format!("The {kind} was changed by someone else meanwhile."))),
        }
    }

    /// Names what a failed insert ran into, precisely: a unique violation is a duplicate
    /// (`Conflict` with `duplicate`), a foreign-key violation means one of `refs` does not
    /// exist (`NotFound` naming the first that is missing, looked up after the failed
    /// transaction has rolled back); anything else passes unchanged.
    async fn insert_error(&self, e: StoreError, duplicate: impl FnOnce() -> String, refs: &[Ref]) -> StoreError {
        if is_violation(&e, UNIQUE_VIOLATION) {
            return StoreError::Conflict(duplicate());
        }
        if !is_violation(&e, FOREIGN_KEY_VIOLATION) {
            return e;
        }
        for (table, kind, key) in refs {
            let sql = format!("SELECT id FROM {table} WHERE id = $1");
            match self.driver.fetch(&sql, &[Param::Text(Some(key.clone()))]).await {
                Ok(rows) if rows.is_empty() => return StoreError::not_found(kind, key),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
        // Whatever was missing came back before we looked.
        StoreError::Conflict("An object this one refers to changed meanwhile; try again.".into())
    }

    /// Runs one write statement and, if it touched a row, records `event` in the same
    /// transaction; returns the rows touched. When it touched none, nothing is recorded.
    async fn write_recorded(&self, sql: &str, params: &[Param], event: &AuditEvent) -> StoreResult<u64> {
        let mut tx = self.driver.begin().await?;
        let n = tx.execute(sql, params).await?;
        if n > 0 {
            lifecycle::record_in(&mut tx, event).await?;
        }
        // Committed even when the statement touched nothing (a lost optimistic race): a
        // dropped transaction only queues its rollback, which runs after this call returned;
        // on SQLite the database's write lock is held until then, and the next writer would
        // meet the busy handler's sleeps.
        tx.commit().await?;
        Ok(n)
    }

    /// One insert, atomic on its own or with the audit `event` of the change, its failure
    /// named by `insert_error`.
    async fn insert(
        &self,
        sql: &str,
        params: &[Param],
        event: Option<&AuditEvent>,
        duplicate: impl FnOnce() -> String,
        refs: &[Ref],
    ) -> StoreResult<()> {
        let written = match event {
            Some(event) => self.write_recorded(sql, params, event).await,
            None => self.write(sql, params).await,
        };
        match written {
            Ok(_) => Ok(()),
            Err(e) => Err(self.insert_error(e, duplicate, refs).await),
        }
    }

    /// One statement that must touch a row, else the object was not found; atomic on its own
    /// or with the audit `event` of the change.
    async fn write_one(
        &self,
        sql: &str,
        params: &[Param],
        event: Option<&AuditEvent>,
        kind: &'static str,
        id: impl ToString,
    ) -> StoreResult<()> {
        let n = match event {
            Some(event) => self.write_recorded(sql, params, event).await?,
            None => self.write(sql, params).await?,
        };
        match n {
            0 => Err(StoreError::not_found(kind, id)),
            _ => Ok(()),
        }
    }
}

fn cell_value(c: &Cell) -> Value {
    match c {
        Cell::Null => Value::Null,
        Cell::Text(s) => Value::Text(s.clone()),
        Cell::Int(i) => Value::Int(*i),
        Cell::Bool(b) => Value::Bool(*b),
    }
}

/// Replaces any constraint violation's text with one that names the object: for statements
/// where every violation means the same thing (a delete that finds its row still referenced).
fn conflict(message: impl Into<String>) -> impl FnOnce(StoreError) -> StoreError {
    let message = message.into();
    move |e| match e {
        StoreError::Conflict(_) => StoreError::Conflict(message),
        other => other,
    }
}

/// A row an insert refers to: its table, the kind of object for messages, its id.
type Ref = (&'static str, &'static str, String);

fn is_violation(e: &StoreError, which: &str) -> bool {
    matches!(e, StoreError::Conflict(m) if m == which)
}

/// The value of a `*_fold` column: the text case-folded with Rust's `to_lowercase`, which is
/// what case-insensitive filters compare (see `steward_app::query::Field::fold`).
fn fold(s: &str) -> Param {
    Param::Text(Some(s.to_lowercase()))
}
fn fold_opt(s: Option<&str>) -> Param {
    Param::Text(s.map(str::to_lowercase))
}

fn id<T: ToString>(v: T) -> Param {
    Param::Text(Some(v.to_string()))
}
fn ts(t: jiff::Timestamp) -> Param {
    Param::Int(Some(to_micros(t)))
}
fn opt_ts(t: Option<jiff::Timestamp>) -> Param {
    Param::Int(t.map(to_micros))
}

async fn count_in(tx: &mut Box<dyn Tx>, sql: &str, params: &[Param]) -> StoreResult<u64> {
    let rows = tx.fetch(sql, params).await?;
    let n = rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn exists_in(tx: &mut Box<dyn Tx>, table: &'static str, key: Param) -> StoreResult<bool> {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE id = $1");
    Ok(count_in(tx, &sql, &[key]).await? > 0)
}

/// The user's columns as `insert_user` and `update_user` bind them (`created_at` is bound by
/// the insert alone, after these): `$1` id, `$2`..`$14` the properties, `$15`..`$22` the folds.
fn user_params(u: &User) -> Vec<Param> {
    vec![
        id(u.id),
        u.display_name.as_str().into(),
        u.user_principal_name.clone().into(),
        // upn_key: unique, and the folded userPrincipalName
        u.user_principal_name.to_lowercase().into(),
        u.mail.clone().into(),
        u.user_type.as_str().into(),
        u.account_enabled.into(),
        u.department.clone().into(),
        u.job_title.clone().into(),
        u.company_name.clone().into(),
        u.employee_id.clone().into(),
        u.city.clone().into(),
        u.country.clone().into(),
        Param::Text(u.manager.map(|m| m.to_string())),
        fold(u.display_name.as_str()),
        fold_opt(u.mail.as_deref()),
        fold_opt(u.department.as_deref()),
        fold_opt(u.job_title.as_deref()),
        fold_opt(u.company_name.as_deref()),
        fold_opt(u.employee_id.as_deref()),
        fold_opt(u.city.as_deref()),
        fold_opt(u.country.as_deref()),
    ]
}

fn user_refs(u: &User) -> Vec<Ref> {
    u.manager.iter().map(|m| ("users", "manager (user)", m.to_string())).collect()
}

fn group_params(g: &Group) -> Vec<Param> {
    vec![
        id(g.id),
        g.display_name.as_str().into(),
        g.description.clone().into(),
        g.mail_nickname.clone().into(),
        g.mail_enabled.into(),
        g.security_enabled.into(),
        fold(g.display_name.as_str()),
        fold_opt(g.description.as_deref()),
        fold(&g.mail_nickname),
    ]
}

const INSERT_CATALOG: &str = "INSERT INTO catalogs (id, display_name, description, catalog_type, state, \
     is_externally_visible, created_at, modified_at, display_name_fold, description_fold) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

fn catalog_params(c: &Catalog) -> Vec<Param> {
    vec![
        id(c.id),
        c.display_name.as_str().into(),
        c.description.clone().into(),
        c.catalog_type.as_str().into(),
        c.state.as_str().into(),
        c.is_externally_visible.into(),
        ts(c.created_date_time),
        ts(c.modified_date_time),
        fold(c.display_name.as_str()),
        fold_opt(c.description.as_deref()),
    ]
}

const INSERT_ROLE_ASSIGNMENT: &str = "INSERT INTO role_assignments (id, principal_id, role_id, app_scope, catalog_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

fn role_assignment_params(a: &RoleAssignment, at: jiff::Timestamp) -> Vec<Param> {
    let catalog = match a.scope {
        AppScope::Catalog(c) => Some(c.to_string()),
        AppScope::Tenant => None,
    };
    vec![id(a.id), id(a.principal), a.role.id().into(), a.scope.to_string().into(), Param::Text(catalog), ts(at)]
}

const ROLE_ASSIGNMENT_COLUMNS: &str = "id, principal_id, role_id, app_scope";

fn role_assignment_row(r: &crate::driver::Row) -> StoreResult<RoleAssignment> {
    let mut c = Cells::new(r);
    Ok(RoleAssignment { id: c.parse()?, principal: c.parse()?, role: c.parse()?, scope: c.parse()? })
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        self.driver.ping().await
    }

    async fn insert_token(&self, t: &ApiToken) -> StoreResult<()> {
        self.insert(
            "INSERT INTO api_tokens (id, name, hash, user_id, created_at, expires_at, role_id, app_scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                id(t.id),
                t.name.clone().into(),
                t.hash.clone().into(),
                Param::Text(t.user_id.map(|u| u.to_string())),
                ts(t.created_at),
                Param::Int(t.expires_at.map(to_micros)),
                Param::Text(t.role.map(|(r, _)| r.id().to_owned())),
                Param::Text(t.role.map(|(_, s)| s.to_string())),
            ],
            None,
            || "A token with the same secret already exists.".into(),
            &t.user_id.iter().map(|u| ("users", "user", u.to_string())).collect::<Vec<_>>(),
        )
        .await
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<ApiToken>> {
        let sql = format!("SELECT {} FROM api_tokens WHERE hash = $1", ApiToken::COLUMNS);
        let rows = self.driver.fetch(&sql, &[hash.into()]).await?;
        rows.first().map(|r| ApiToken::from_cells(&mut Cells::new(r))).transpose()
    }

    async fn token_for_sign_in(&self, hash: &str) -> StoreResult<Option<(ApiToken, Option<bool>)>> {
        let sql = "SELECT t.id, t.name, t.hash, t.user_id, t.created_at, t.expires_at, t.role_id, t.app_scope, \
                   u.account_enabled FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = $1";
        let rows = self.driver.fetch(sql, &[hash.into()]).await?;
        rows.first()
            .map(|r| {
                let mut c = Cells::new(r);
                let token = ApiToken::from_cells(&mut c)?;
                let enabled = match token.user_id {
                    Some(_) => Some(c.bool()?),
                    None => None,
                };
                Ok((token, enabled))
            })
            .transpose()
    }

    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let sql = format!("SELECT {} FROM api_tokens ORDER BY created_at, id", ApiToken::COLUMNS);
        let rows = self.driver.fetch(&sql, &[]).await?;
        rows.iter().map(|r| ApiToken::from_cells(&mut Cells::new(r))).collect()
    }

    async fn delete_token(&self, tid: TokenId) -> StoreResult<()> {
        self.write_one("DELETE FROM api_tokens WHERE id = $1", &[id(tid)], None, "token", tid).await
    }

    async fn insert_role_assignment(
        &self,
        a: &RoleAssignment,
        at: jiff::Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let mut refs = vec![("users", "user", a.principal.to_string())];
        if let AppScope::Catalog(c) = a.scope {
            refs.push(("catalogs", "catalog", c.to_string()));
        }
        self.insert(
            INSERT_ROLE_ASSIGNMENT,
            &role_assignment_params(a, at),
            Some(event),
            || format!("The user already holds the {} role at appScopeId '{}'.", a.role.display_name(), a.scope),
            &refs,
        )
        .await
    }

    async fn delete_role_assignment(&self, rid: RoleAssignmentId, event: &AuditEvent) -> StoreResult<()> {
        self.write_one("DELETE FROM role_assignments WHERE id = $1", &[id(rid)], Some(event), "role assignment", rid)
            .await
    }

    async fn get_role_assignment(&self, rid: RoleAssignmentId) -> StoreResult<Option<RoleAssignment>> {
        let sql = format!("SELECT {ROLE_ASSIGNMENT_COLUMNS} FROM role_assignments WHERE id = $1");
        let rows = self.driver.fetch(&sql, &[id(rid)]).await?;
        rows.first().map(role_assignment_row).transpose()
    }

    async fn list_role_assignments(&self, f: &RoleAssignmentFilter) -> StoreResult<Vec<RoleAssignment>> {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(p) = f.principal {
            params.push(id(p));
            conds.push(format!("principal_id = ${}", params.len()));
        }
        if let Some(r) = f.role {
            params.push(r.id().into());
            conds.push(format!("role_id = ${}", params.len()));
        }
        if let Some(scope) = f.scope {
            params.push(scope.to_string().into());
            conds.push(format!("app_scope = ${}", params.len()));
        }
        if let Some(cats) = &f.catalogs {
            let ids: Vec<String> = cats.iter().map(ToString::to_string).collect();
            params.push(Param::Text(Some(serde_json::Value::from(ids).to_string())));
            conds.push(format!("catalog_id IN ({})", self.driver.text_set(&format!("${}", params.len()))));
        }
        let filter = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let sql = format!("SELECT {ROLE_ASSIGNMENT_COLUMNS} FROM role_assignments {filter} ORDER BY created_at, id");
        let rows = self.driver.fetch(&sql, &params).await?;
        rows.iter().map(role_assignment_row).collect()
    }

    async fn role_assignments_of(&self, user: UserId) -> StoreResult<Vec<RoleAssignment>> {
        self.list_role_assignments(&RoleAssignmentFilter { principal: Some(user), ..Default::default() }).await
    }

    async fn insert_user(&self, u: &User) -> StoreResult<()> {
        let mut params = user_params(u);
        params.push(ts(u.created_date_time));
        self.insert(
            "INSERT INTO users (id, display_name, user_principal_name, upn_key, mail, user_type, account_enabled, \
             department, job_title, company_name, employee_id, city, country, manager_id, display_name_fold, \
             mail_fold, department_fold, job_title_fold, company_name_fold, employee_id_fold, city_fold, \
             country_fold, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
             $21, $22, $23)",
            &params,
            None,
            || format!("A user with id '{}' or userPrincipalName '{}' already exists.", u.id, u.user_principal_name),
            &user_refs(u),
        )
        .await
    }

    async fn update_user(&self, u: &User) -> StoreResult<()> {
        let n = match self
            .write(
                "UPDATE users SET display_name = $2, user_principal_name = $3, upn_key = $4, mail = $5, \
                 user_type = $6, account_enabled = $7, department = $8, job_title = $9, company_name = $10, \
                 employee_id = $11, city = $12, country = $13, manager_id = $14, display_name_fold = $15, \
                 mail_fold = $16, department_fold = $17, job_title_fold = $18, company_name_fold = $19, \
                 employee_id_fold = $20, city_fold = $21, country_fold = $22, row_version = row_version + 1 \
                 WHERE id = $1",
                &user_params(u),
            )
            .await
        {
            Ok(n) => n,
            Err(e) => {
                let duplicate = || format!("A user with userPrincipalName '{}' already exists.", u.user_principal_name);
                return Err(self.insert_error(e, duplicate, &user_refs(u)).await);
            }
        };
        match n {
            0 => Err(StoreError::not_found("user", u.id)),
            _ => Ok(()),
        }
    }

    async fn delete_user(&self, uid: UserId) -> StoreResult<()> {
        self.write_one("DELETE FROM users WHERE id = $1", &[id(uid)], None, "user", uid).await
    }

    async fn get_user(&self, uid: UserId) -> StoreResult<Option<User>> {
        self.get("users", uid.to_string()).await
    }

    async fn user_by_upn(&self, upn: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {} FROM users WHERE upn_key = $1", User::COLUMNS);
        let rows = self.driver.fetch(&sql, &[upn.to_lowercase().into()]).await?;
        rows.first().map(|r| User::from_cells(&mut Cells::new(r))).transpose()
    }

    async fn list_users(&self, q: &ListQuery) -> StoreResult<Page<User>> {
        self.list(q).await
    }

    async fn users_matching(&self, rule: &MembershipRule) -> StoreResult<Vec<UserId>> {
        let mut ps = compile::Params::default();
        let cond = rule_sql::condition(rule.expr(), &mut ps)?;
        if cond.exact {
            let sql = format!("SELECT id FROM users WHERE {} ORDER BY id", cond.upper);
            let rows = self.driver.fetch(&sql, &ps.0).await?;
            return rows.iter().map(|r| Cells::new(r).parse()).collect();
        }
        // A regular expression is involved: fetch the users the rule might admit, in batches
        // along `id`, and let the evaluator decide each (see `rule_sql`).
        let batch = self.recheck_batch;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut params = ps.0.clone();
            let mut sql = format!("SELECT {} FROM users WHERE ({})", User::COLUMNS, cond.upper);
            if let Some(last) = after.take() {
                params.push(Param::Text(Some(last)));
                sql.push_str(&format!(" AND id > ${}", params.len()));
            }
            params.push(Param::Int(Some(batch)));
            sql.push_str(&format!(" ORDER BY id LIMIT ${}", params.len()));
            let rows = self.driver.fetch(&sql, &params).await?;
            let mut last = None;
            for row in &rows {
                let user = User::from_cells(&mut Cells::new(row))?;
                if rule.matches(&user) {
                    out.push(user.id);
                }
                last = Some(user.id);
            }
            match last {
                Some(id) if rows.len() as i64 == batch => after = Some(id.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn add_sponsor(&self, user: UserId, sponsor: UserId) -> StoreResult<()> {
        self.insert(
            "INSERT INTO user_sponsors (user_id, sponsor_id) VALUES ($1, $2)",
            &[id(user), id(sponsor)],
            None,
            || format!("User '{sponsor}' already sponsors user '{user}'."),
            &[("users", "user", user.to_string()), ("users", "sponsor (user)", sponsor.to_string())],
        )
        .await
    }

    async fn remove_sponsor(&self, user: UserId, sponsor: UserId) -> StoreResult<()> {
        self.write_one(
            "DELETE FROM user_sponsors WHERE user_id = $1 AND sponsor_id = $2",
            &[id(user), id(sponsor)],
            None,
            "sponsor of user",
            sponsor,
        )
        .await
    }

    async fn insert_group(&self, g: &Group) -> StoreResult<()> {
        let mut params = group_params(g);
        params.push(ts(g.created_date_time));
        self.insert(
            "INSERT INTO groups (id, display_name, description, mail_nickname, mail_enabled, security_enabled, \
             display_name_fold, description_fold, mail_nickname_fold, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &params,
            None,
            || format!("A group with id '{}' already exists.", g.id),
            &[],
        )
        .await
    }

    async fn update_group(&self, g: &Group) -> StoreResult<()> {
        self.write_one(
            "UPDATE groups SET display_name = $2, description = $3, mail_nickname = $4, mail_enabled = $5, \
             security_enabled = $6, display_name_fold = $7, description_fold = $8, mail_nickname_fold = $9, \
             row_version = row_version + 1 WHERE id = $1",
            &group_params(g),
            None,
            "group",
            g.id,
        )
        .await
    }

    async fn delete_group(&self, gid: GroupId) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        // Locks the group row first, as `add_resource` does, so the two serialise: a resource
        // cannot be added for a group that is being deleted, nor the group deleted while a
        // resource for it is being added (SQLite's write transactions are serial anyway).
        if !lock_row(&mut tx, "groups", id(gid)).await? {
            return Err(StoreError::not_found("group", gid));
        }
        let used = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM resources WHERE origin_system = $1 AND origin_id = $2",
            &[catalog::ORIGIN_AAD_GROUP.into(), id(gid)],
        )
        .await?;
        directory::check_group_deletable(used)?;
        tx.execute("DELETE FROM groups WHERE id = $1", &[id(gid)]).await?;
        tx.commit().await
    }

    async fn get_group(&self, gid: GroupId) -> StoreResult<Option<Group>> {
        self.get("groups", gid.to_string()).await
    }

    async fn list_groups(&self, q: &ListQuery) -> StoreResult<Page<Group>> {
        self.list(q).await
    }

    async fn add_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        self.insert(
            "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)",
            &[id(group), id(user)],
            None,
            || format!("User '{user}' is already a member of group '{group}'."),
            &[("groups", "group", group.to_string()), ("users", "user", user.to_string())],
        )
        .await
    }

    async fn remove_member(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        self.write_one(
            "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
            &[id(group), id(user)],
            None,
            "member of group",
            user,
        )
        .await
    }

    async fn add_group_links(&self, links: &[(GroupId, UserId)], owners: bool) -> StoreResult<u64> {
        let table = if owners { "group_owners" } else { "group_members" };
        let mut added = 0;
        // 120 pairs (240 parameters) per statement: see `lifecycle::MAX_PARAMS`.
        for chunk in links.chunks(120) {
            let tuples: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
            let sql = format!(
                "WITH v (g, u) AS (VALUES {}) INSERT INTO {table} (group_id, user_id) SELECT g, u FROM v \
                 WHERE EXISTS (SELECT 1 FROM groups WHERE id = v.g) AND EXISTS (SELECT 1 FROM users WHERE id = v.u) \
                 ON CONFLICT DO NOTHING",
                tuples.join(", ")
            );
            let params: Vec<Param> = chunk.iter().flat_map(|(g, u)| [id(*g), id(*u)]).collect();
            added += self.write(&sql, &params).await?;
        }
        Ok(added)
    }

    async fn add_owner(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        self.insert(
            "INSERT INTO group_owners (group_id, user_id) VALUES ($1, $2)",
            &[id(group), id(user)],
            None,
            || format!("User '{user}' is already an owner of group '{group}'."),
            &[("groups", "group", group.to_string()), ("users", "user", user.to_string())],
        )
        .await
    }

    async fn remove_owner(&self, group: GroupId, user: UserId) -> StoreResult<()> {
        self.write_one(
            "DELETE FROM group_owners WHERE group_id = $1 AND user_id = $2",
            &[id(group), id(user)],
            None,
            "owner of group",
            user,
        )
        .await
    }

    async fn insert_catalog(&self, c: &Catalog, owner: Option<&RoleAssignment>, event: &AuditEvent) -> StoreResult<()> {
        if let Some(owner) = owner {
            let mut tx = self.driver.begin().await?;
            let done = async {
                tx.execute(INSERT_CATALOG, &catalog_params(c)).await?;
                tx.execute(INSERT_ROLE_ASSIGNMENT, &role_assignment_params(owner, c.created_date_time)).await?;
                lifecycle::record_in(&mut tx, event).await?;
                tx.commit().await
            }
            .await;
            return match done {
                Ok(()) => Ok(()),
                Err(e) => Err(self
                    .insert_error(
                        e,
                        || format!("A catalog with id '{}' already exists.", c.id),
                        &[("users", "user", owner.principal.to_string())],
                    )
                    .await),
            };
        }
        self.insert(
            INSERT_CATALOG,
            &catalog_params(c),
            Some(event),
            || format!("A catalog with id '{}' already exists.", c.id),
            &[],
        )
        .await
    }

    async fn update_catalog(&self, c: &Catalog, read_at: jiff::Timestamp, event: &AuditEvent) -> StoreResult<()> {
        let n = self
            .write_recorded(
                "UPDATE catalogs SET display_name = $2, description = $3, state = $4, is_externally_visible = $5, \
                 modified_at = $6, display_name_fold = $8, description_fold = $9 \
                 WHERE id = $1 AND modified_at = $7",
                &[
                    id(c.id),
                    c.display_name.as_str().into(),
                    c.description.clone().into(),
                    c.state.as_str().into(),
                    c.is_externally_visible.into(),
                    ts(c.modified_date_time),
                    ts(read_at),
                    fold(c.display_name.as_str()),
                    fold_opt(c.description.as_deref()),
                ],
                event,
            )
            .await?;
        self.changed_since(n, "catalogs", "catalog", c.id).await
    }

    async fn delete_catalog(&self, cid: CatalogId, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        if !exists_in(&mut tx, "catalogs", id(cid)).await? {
            return Err(StoreError::not_found("catalog", cid));
        }
        let packages =
            count_in(&mut tx, "SELECT COUNT(*) FROM access_packages WHERE catalog_id = $1", &[id(cid)]).await?;
        catalog::check_catalog_deletable(packages)?;
        tx.execute("DELETE FROM catalogs WHERE id = $1", &[id(cid)])
            .await
            .map_err(conflict("The catalog changed while it was being deleted; try again."))?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    async fn get_catalog(&self, cid: CatalogId) -> StoreResult<Option<Catalog>> {
        self.get("catalogs", cid.to_string()).await
    }

    async fn list_catalogs(&self, q: &ListQuery) -> StoreResult<Page<Catalog>> {
        self.list(q).await
    }

    async fn add_resource(
        &self,
        added: &GroupResource,
        request: &ResourceRequest,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let r = &added.resource;
        match add_resource_tx(self.driver.as_ref(), added, request, event).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self
                .insert_error(
                    e,
                    || format!("The catalog already contains the resource with originId '{}'.", r.origin_id),
                    &[("catalogs", "catalog", r.catalog_id.to_string())],
                )
                .await),
        }
    }

    async fn remove_resource(&self, rid: ResourceId, request: &ResourceRequest, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        if !exists_in(&mut tx, "resources", id(rid)).await? {
            return Err(StoreError::not_found("resource", rid));
        }
        let in_use = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM role_scopes WHERE role_id IN (SELECT id FROM resource_roles WHERE resource_id = $1) \
             OR scope_id IN (SELECT id FROM resource_scopes WHERE resource_id = $1)",
            &[id(rid)],
        )
        .await?;
        catalog::check_resource_removable(in_use)?;
        tx.execute("DELETE FROM resources WHERE id = $1", &[id(rid)]).await.map_err(conflict(
            "The resource became used by an access package while it was being removed; try again.",
        ))?;
        insert_request(&mut tx, request).await?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    async fn get_resource(&self, rid: ResourceId) -> StoreResult<Option<Resource>> {
        self.get("resources", rid.to_string()).await
    }

    async fn list_resources(&self, q: &ListQuery) -> StoreResult<Page<Resource>> {
        self.list(q).await
    }

    async fn get_resource_role(&self, rid: ResourceRoleId) -> StoreResult<Option<ResourceRole>> {
        self.get("resource_roles", rid.to_string()).await
    }

    async fn list_resource_roles(&self, q: &ListQuery) -> StoreResult<Page<ResourceRole>> {
        self.list(q).await
    }

    async fn get_resource_scope(&self, sid: ResourceScopeId) -> StoreResult<Option<ResourceScope>> {
        self.get("resource_scopes", sid.to_string()).await
    }

    async fn list_resource_scopes(&self, q: &ListQuery) -> StoreResult<Page<ResourceScope>> {
        self.list(q).await
    }

    async fn list_resource_requests(&self, q: &ListQuery) -> StoreResult<Page<ResourceRequest>> {
        self.list(q).await
    }

    async fn insert_package(&self, p: &AccessPackage, event: &AuditEvent) -> StoreResult<()> {
        self.insert(
            "INSERT INTO access_packages (id, catalog_id, display_name, description, is_hidden, created_at, \
             modified_at, display_name_fold, description_fold) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                id(p.id),
                id(p.catalog_id),
                p.display_name.as_str().into(),
                p.description.clone().into(),
                p.is_hidden.into(),
                ts(p.created_date_time),
                ts(p.modified_date_time),
                fold(p.display_name.as_str()),
                fold_opt(p.description.as_deref()),
            ],
            Some(event),
            || format!("An access package with id '{}' already exists.", p.id),
            &[("catalogs", "catalog", p.catalog_id.to_string())],
        )
        .await
    }

    async fn update_package(&self, p: &AccessPackage, read_at: jiff::Timestamp, event: &AuditEvent) -> StoreResult<()> {
        let n = self
            .write_recorded(
                "UPDATE access_packages SET display_name = $2, description = $3, is_hidden = $4, modified_at = $5, \
                 display_name_fold = $7, description_fold = $8 WHERE id = $1 AND modified_at = $6",
                &[
                    id(p.id),
                    p.display_name.as_str().into(),
                    p.description.clone().into(),
                    p.is_hidden.into(),
                    ts(p.modified_date_time),
                    ts(read_at),
                    fold(p.display_name.as_str()),
                    fold_opt(p.description.as_deref()),
                ],
                event,
            )
            .await?;
        self.changed_since(n, "access_packages", "access package", p.id).await
    }

    async fn delete_package(&self, pid: AccessPackageId, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        if !exists_in(&mut tx, "access_packages", id(pid)).await? {
            return Err(StoreError::not_found("access package", pid));
        }
        let policies =
            count_in(&mut tx, "SELECT COUNT(*) FROM assignment_policies WHERE access_package_id = $1", &[id(pid)])
                .await?;
        let active = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM assignments WHERE access_package_id = $1 AND active_key IS NOT NULL",
            &[id(pid)],
        )
        .await?;
        package::check_package_deletable(PackageContent { assignment_policies: policies, active_assignments: active })?;
        tx.execute("DELETE FROM access_packages WHERE id = $1", &[id(pid)])
            .await
            .map_err(conflict("The access package changed while it was being deleted; try again."))?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    async fn get_package(&self, pid: AccessPackageId) -> StoreResult<Option<AccessPackage>> {
        self.get("access_packages", pid.to_string()).await
    }

    async fn list_packages(&self, q: &ListQuery) -> StoreResult<Page<AccessPackage>> {
        self.list(q).await
    }

    async fn add_role_scope(&self, r: &ResourceRoleScope, event: &AuditEvent) -> StoreResult<()> {
        self.insert(
            "INSERT INTO role_scopes (id, access_package_id, role_id, scope_id, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[id(r.id), id(r.access_package_id), id(r.role_id), id(r.scope_id), ts(r.created_date_time)],
            Some(event),
            || "The access package already grants this role at this scope.".into(),
            &[
                ("access_packages", "access package", r.access_package_id.to_string()),
                ("resource_roles", "resource role", r.role_id.to_string()),
                ("resource_scopes", "resource scope", r.scope_id.to_string()),
            ],
        )
        .await
    }

    async fn remove_role_scope(
        &self,
        pkg: AccessPackageId,
        rid: ResourceRoleScopeId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.write_one(
            "DELETE FROM role_scopes WHERE id = $1 AND access_package_id = $2",
            &[id(rid), id(pkg)],
            Some(event),
            "resource role scope",
            rid,
        )
        .await
    }

    async fn get_role_scope(&self, rid: ResourceRoleScopeId) -> StoreResult<Option<ResourceRoleScope>> {
        self.get("role_scopes", rid.to_string()).await
    }

    async fn list_role_scopes(&self, q: &ListQuery) -> StoreResult<Page<ResourceRoleScope>> {
        self.list(q).await
    }

    async fn add_incompatible_package(
        &self,
        pkg: AccessPackageId,
        other: AccessPackageId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.insert(
            "INSERT INTO package_incompatible_packages (access_package_id, other_id) VALUES ($1, $2)",
            &[id(pkg), id(other)],
            Some(event),
            || format!("Access package '{other}' is already incompatible with '{pkg}'."),
            &[
                ("access_packages", "access package", pkg.to_string()),
                ("access_packages", "access package", other.to_string()),
            ],
        )
        .await
    }

    async fn remove_incompatible_package(
        &self,
        pkg: AccessPackageId,
        other: AccessPackageId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.write_one(
            "DELETE FROM package_incompatible_packages WHERE access_package_id = $1 AND other_id = $2",
            &[id(pkg), id(other)],
            Some(event),
            "incompatible access package",
            other,
        )
        .await
    }

    async fn add_incompatible_group(
        &self,
        pkg: AccessPackageId,
        group: GroupId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.insert(
            "INSERT INTO package_incompatible_groups (access_package_id, group_id) VALUES ($1, $2)",
            &[id(pkg), id(group)],
            Some(event),
            || format!("Group '{group}' is already incompatible with access package '{pkg}'."),
            &[("access_packages", "access package", pkg.to_string()), ("groups", "group", group.to_string())],
        )
        .await
    }

    async fn insert_policy(&self, p: &AssignmentPolicy, event: &AuditEvent) -> StoreResult<()> {
        let who = SelfRequestors::of(&p.settings);
        let params = policy_params(p, &who)?;
        let written = async {
            let mut tx = self.driver.begin().await?;
            tx.execute(
                "INSERT INTO assignment_policies (id, access_package_id, catalog_id, display_name, description, \
                 allowed_target_scope, settings, created_at, modified_at, display_name_fold, description_fold, \
                 self_requestors) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &params,
            )
            .await?;
            requestors::write_in(&mut tx, p, &who).await?;
            write_policy_extensions(&mut tx, p).await?;
            external::write_policy_organizations(&mut tx, p).await?;
            lifecycle::record_in(&mut tx, event).await?;
            tx.commit().await
        }
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(e) => Err(self
                .insert_error(e, || format!("An assignment policy with id '{}' already exists.", p.id), &policy_refs(p))
                .await),
        }
    }

    async fn update_policy(
        &self,
        p: &AssignmentPolicy,
        read_at: jiff::Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let who = SelfRequestors::of(&p.settings);
        let mut params = policy_params(p, &who)?;
        params.push(ts(read_at));
        let mut tx = self.driver.begin().await?;
        // Sets everything but the keys and createdDateTime, and only on the version that was read.
        let n = tx
            .execute(
                "UPDATE assignment_policies SET display_name = $4, description = $5, allowed_target_scope = $6, \
                 settings = $7, modified_at = $9, display_name_fold = $10, description_fold = $11, \
                 self_requestors = $12 \
                 WHERE id = $1 AND access_package_id = $2 AND catalog_id = $3 AND created_at = $8 \
                 AND modified_at = $13",
                &params,
            )
            .await?;
        if n == 0 {
            drop(tx);
            return self.changed_since(n, "assignment_policies", "assignment policy", p.id).await;
        }
        requestors::write_in(&mut tx, p, &who).await?;
        let written = async {
            write_policy_extensions(&mut tx, p).await?;
            external::write_policy_organizations(&mut tx, p).await?;
            lifecycle::record_in(&mut tx, event).await?;
            tx.commit().await
        }
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(e) => {
                Err(self.insert_error(e, || "The assignment policy changed meanwhile.".into(), &policy_refs(p)).await)
            }
        }
    }

    async fn delete_policy(&self, pid: PolicyId, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        // Lock the policy row first, so an assignment cannot be created under it meanwhile.
        if tx.execute("UPDATE assignment_policies SET id = id WHERE id = $1", &[id(pid)]).await? == 0 {
            return Err(StoreError::not_found("assignment policy", pid));
        }
        let active = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM assignments WHERE policy_id = $1 AND active_key IS NOT NULL",
            &[id(pid)],
        )
        .await?;
        let open = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM assignment_requests WHERE policy_id = $1 AND open_key IS NOT NULL",
            &[id(pid)],
        )
        .await?;
        if active + open > 0 {
            return Err(StoreError::Rule(steward_domain::DomainError::conflict(format!(
                "The policy is in use by {active} active assignment(s) and {open} open request(s); remove them first."
            ))));
        }
        tx.execute("DELETE FROM policy_requestors WHERE policy_id = $1", &[id(pid)]).await?;
        tx.execute("DELETE FROM policy_extensions WHERE policy_id = $1", &[id(pid)]).await?;
        tx.execute("DELETE FROM assignment_policies WHERE id = $1", &[id(pid)]).await?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    async fn get_policy(&self, pid: PolicyId) -> StoreResult<Option<AssignmentPolicy>> {
        self.get("assignment_policies", pid.to_string()).await
    }

    async fn list_policies(&self, q: &ListQuery) -> StoreResult<Page<AssignmentPolicy>> {
        self.list(q).await
    }

    async fn remove_incompatible_group(
        &self,
        pkg: AccessPackageId,
        group: GroupId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.write_one(
            "DELETE FROM package_incompatible_groups WHERE access_package_id = $1 AND group_id = $2",
            &[id(pkg), id(group)],
            Some(event),
            "incompatible group",
            group,
        )
        .await
    }

    async fn requestable_packages(&self, user: &User, q: &ListQuery) -> StoreResult<Page<AccessPackage>> {
        let scope = requestors::admitting(self.driver.as_ref(), &self.rules, user, self.requestable_list).await?;
        self.list_within(q, Some(&scope)).await
    }

    async fn policies_of_package(&self, package: AccessPackageId) -> StoreResult<Vec<AssignmentPolicy>> {
        let sql = format!(
            "SELECT {} FROM assignment_policies WHERE access_package_id = $1 ORDER BY created_at, id",
            AssignmentPolicy::COLUMNS
        );
        self.rows(&sql, &[id(package)]).await
    }

    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<GroupId>> {
        self.ids("SELECT group_id FROM group_members WHERE user_id = $1 ORDER BY group_id", &[id(user)]).await
    }

    async fn member_ids(&self, group: GroupId) -> StoreResult<Vec<UserId>> {
        self.ids("SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id", &[id(group)]).await
    }

    async fn owner_ids(&self, group: GroupId) -> StoreResult<Vec<UserId>> {
        self.ids("SELECT user_id FROM group_owners WHERE group_id = $1 ORDER BY user_id", &[id(group)]).await
    }

    async fn sponsor_ids(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.ids("SELECT sponsor_id FROM user_sponsors WHERE user_id = $1 ORDER BY sponsor_id", &[id(user)]).await
    }

    async fn role_grant(&self, role: ResourceRoleId) -> StoreResult<Option<RoleGrant>> {
        let rows = self.driver.fetch(&format!("{GRANTS} WHERE rr.id = $1"), &[id(role)]).await?;
        Ok(grants(&rows)?.into_iter().next())
    }

    async fn package_grants(&self, package: AccessPackageId) -> StoreResult<Vec<RoleGrant>> {
        let rows = self
            .driver
            .fetch(
                "SELECT DISTINCT rr.id, rr.display_name, rr.origin_id, rr.origin_system, r.origin_id, r.display_name \
                 FROM role_scopes rs JOIN resource_roles rr ON rr.id = rs.role_id \
                 JOIN resources r ON r.id = rr.resource_id WHERE rs.access_package_id = $1 ORDER BY rr.id",
                &[id(package)],
            )
            .await?;
        grants(&rows)
    }

    async fn incompatible_packages(&self, package: AccessPackageId) -> StoreResult<Vec<AccessPackageId>> {
        let mut v: Vec<AccessPackageId> = self
            .ids(
                "SELECT other_id FROM package_incompatible_packages WHERE access_package_id = $1 \
                 UNION SELECT access_package_id FROM package_incompatible_packages WHERE other_id = $1",
                &[id(package)],
            )
            .await?;
        v.sort_unstable();
        Ok(v)
    }

    async fn incompatible_groups(&self, package: AccessPackageId) -> StoreResult<Vec<GroupId>> {
        self.ids(
            "SELECT group_id FROM package_incompatible_groups WHERE access_package_id = $1 ORDER BY group_id",
            &[id(package)],
        )
        .await
    }

    async fn incompatibilities(&self, package: AccessPackageId) -> StoreResult<(Vec<AccessPackageId>, Vec<GroupId>)> {
        let rows = self
            .driver
            .fetch(
                "SELECT 'p', other_id FROM package_incompatible_packages WHERE access_package_id = $1 \
                 UNION SELECT 'p', access_package_id FROM package_incompatible_packages WHERE other_id = $1 \
                 UNION SELECT 'g', group_id FROM package_incompatible_groups WHERE access_package_id = $1",
                &[id(package)],
            )
            .await?;
        let (mut packages, mut groups) = (Vec::new(), Vec::new());
        for r in &rows {
            let mut c = Cells::new(r);
            if c.text()? == "p" {
                packages.push(c.parse()?);
            } else {
                groups.push(c.parse()?);
            }
        }
        packages.sort_unstable();
        groups.sort_unstable();
        Ok((packages, groups))
    }

    async fn apply(&self, batch: &Batch) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.driver.arrays()
            && lifecycle::inserts_only(batch)
            && let Some((sql, params)) = lifecycle::one_statement(batch).await?
        {
            // One round trip. Should a constraint refuse it (a second open request, say),
            // nothing was written, and the same writes in an ordinary transaction below say
            // exactly which rule it was.
            match self.driver.execute(&sql, &params).await {
                Ok(_) => {
                    self.queued(batch);
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut tx = self.driver.begin().await?;
        lifecycle::apply_in(&mut tx, self.driver.arrays(), batch).await?;
        tx.commit().await?;
        self.queued(batch);
        Ok(())
    }

    async fn get_request(&self, rid: RequestId) -> StoreResult<Option<AssignmentRequest>> {
        self.get("assignment_requests", rid.to_string()).await
    }

    async fn delete_request(&self, rid: RequestId, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        let n = tx.execute("DELETE FROM assignment_requests WHERE id = $1 AND open_key IS NULL", &[id(rid)]).await?;
        if n > 0 {
            tx.execute("DELETE FROM callout_instances WHERE request_id = $1", &[id(rid)]).await?;
        }
        if n == 0 {
            return match count_in(&mut tx, "SELECT COUNT(*) FROM assignment_requests WHERE id = $1", &[id(rid)]).await?
            {
                0 => Err(StoreError::not_found("assignment request", rid)),
                _ => Err(StoreError::Conflict(
                    "The request is still open; cancel it first (only ended requests can be deleted).".into(),
                )),
            };
        }
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    async fn list_requests(&self, q: &ListQuery) -> StoreResult<Page<AssignmentRequest>> {
        self.list(q).await
    }

    async fn open_request(&self, target: UserId, package: AccessPackageId) -> StoreResult<Option<AssignmentRequest>> {
        let sql = format!("SELECT {} FROM assignment_requests WHERE open_key = $1", AssignmentRequest::COLUMNS);
        Ok(self.rows(&sql, &[format!("{target}:{package}").into()]).await?.into_iter().next())
    }

    async fn get_assignment(&self, aid: AssignmentId) -> StoreResult<Option<Assignment>> {
        self.get("assignments", aid.to_string()).await
    }

    async fn list_assignments(&self, q: &ListQuery) -> StoreResult<Page<Assignment>> {
        self.list(q).await
    }

    async fn active_assignments_of(&self, target: UserId) -> StoreResult<Vec<Assignment>> {
        let sql = format!(
            "SELECT {} FROM assignments WHERE target_id = $1 AND active_key IS NOT NULL ORDER BY id",
            Assignment::COLUMNS
        );
        self.rows(&sql, &[id(target)]).await
    }

    async fn active_assignment(&self, target: UserId, package: AccessPackageId) -> StoreResult<Option<Assignment>> {
        let sql = format!("SELECT {} FROM assignments WHERE active_key = $1", Assignment::COLUMNS);
        Ok(self.rows(&sql, &[format!("{target}:{package}").into()]).await?.into_iter().next())
    }

    async fn role_held_elsewhere(
        &self,
        target: UserId,
        role: ResourceRoleId,
        except: AssignmentId,
    ) -> StoreResult<bool> {
        let rows = self
            .driver
            .fetch(
                // Driven by the packages granting the role (few), each probed through the unique
                // `active_key` ("target:package"): one index lookup per package, whatever the
                // planner knows about the tables (without statistics, a join on
                // `target_id` and `access_package_id` was seen to scan a million index entries).
                "SELECT COUNT(*) FROM role_scopes rs JOIN assignments a \
                 ON a.active_key = $1 || ':' || rs.access_package_id \
                 WHERE rs.role_id = $2 AND a.id <> $3",
                &[id(target), id(role), id(except)],
            )
            .await?;
        Ok(rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0) > 0)
    }

    async fn deliveries(&self, assignment: AssignmentId) -> StoreResult<Vec<Delivery>> {
        let sql = format!(
            "SELECT {} FROM deliveries WHERE assignment_id = $1 ORDER BY resource_role_id, action",
            Delivery::COLUMNS
        );
        self.rows(&sql, &[id(assignment)]).await
    }

    async fn note_delivery_retry(&self, d: &Delivery) -> StoreResult<()> {
        self.write(
            "UPDATE deliveries SET attempts = $4, detail = $5 \
             WHERE assignment_id = $1 AND resource_role_id = $2 AND action = $3 AND state = 'pending'",
            &[
                id(d.assignment_id),
                id(d.resource_role_id),
                lifecycle::enum_str(&d.action).into(),
                i64::from(d.attempts).into(),
                d.detail.clone().into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn due_requests(&self, now: jiff::Timestamp, limit: u32) -> StoreResult<Vec<AssignmentRequest>> {
        let filter = "FROM assignment_requests WHERE due IS NOT NULL AND due <= $1 ORDER BY due, id";
        self.due_rows(filter, AssignmentRequest::COLUMNS, now, limit).await
    }

    async fn ending_assignments(&self, now: jiff::Timestamp, limit: u32) -> StoreResult<Vec<Assignment>> {
        let filter = "FROM assignments WHERE active_key IS NOT NULL AND end_at IS NOT NULL AND end_at <= $1 \
                      ORDER BY end_at, id";
        self.due_rows(filter, Assignment::COLUMNS, now, limit).await
    }

    async fn sod_violations(&self, limit: u32) -> StoreResult<Vec<Violation>> {
        let lim = i64::from(limit);
        let packages = self
            .driver
            .fetch(
                "SELECT a.target_id, a.id, a.access_package_id, b.access_package_id FROM assignments a \
                 JOIN package_incompatible_packages i \
                   ON (i.access_package_id = a.access_package_id) \
                 JOIN assignments b ON b.target_id = a.target_id AND b.access_package_id = i.other_id \
                 WHERE a.active_key IS NOT NULL AND b.active_key IS NOT NULL \
                 UNION \
                 SELECT a.target_id, a.id, a.access_package_id, b.access_package_id FROM assignments a \
                 JOIN package_incompatible_packages i ON (i.other_id = a.access_package_id) \
                 JOIN assignments b ON b.target_id = a.target_id AND b.access_package_id = i.access_package_id \
                 WHERE a.active_key IS NOT NULL AND b.active_key IS NOT NULL \
                 ORDER BY 1, 2, 4 LIMIT $1",
                &[lim.into()],
            )
            .await?;
        let groups = self
            .driver
            .fetch(
                "SELECT a.target_id, a.id, a.access_package_id, g.group_id FROM assignments a \
                 JOIN package_incompatible_groups g ON g.access_package_id = a.access_package_id \
                 JOIN group_members m ON m.group_id = g.group_id AND m.user_id = a.target_id \
                 WHERE a.active_key IS NOT NULL ORDER BY 1, 2, 4 LIMIT $1",
                &[lim.into()],
            )
            .await?;
        let mut out = Vec::new();
        for (rows, is_group) in [(packages, false), (groups, true)] {
            for r in &rows {
                let mut c = Cells::new(r);
                let target = c.parse()?;
                let assignment = c.parse()?;
                let package = c.parse()?;
                let conflict = if is_group { Conflicting::Group(c.parse()?) } else { Conflicting::Package(c.parse()?) };
                out.push(Violation { target, assignment, package, conflict });
            }
        }
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn events_of(&self, correlation_id: &str) -> StoreResult<Vec<AuditEvent>> {
        let sql = format!("SELECT {} FROM audit_events WHERE correlation_id = $1 ORDER BY at, id", AuditEvent::COLUMNS);
        self.rows(&sql, &[correlation_id.into()]).await
    }

    async fn list_audit_events(&self, q: &ListQuery) -> StoreResult<Page<AuditEvent>> {
        self.list_audit_events_impl(q).await
    }

    async fn get_audit_event(&self, id: steward_domain::ids::AuditEventId) -> StoreResult<Option<AuditEvent>> {
        self.get_audit_event_impl(id).await
    }

    async fn chain_audit(&self, limit: u32) -> StoreResult<steward_app::ports::ChainProgress> {
        self.chain_audit_impl(limit).await
    }

    async fn audit_chain_state(&self) -> StoreResult<steward_app::ports::ChainState> {
        self.audit_chain_state_impl().await
    }

    async fn insert_audit_checkpoint(&self, c: &steward_domain::audit_chain::Checkpoint) -> StoreResult<()> {
        self.insert_audit_checkpoint_impl(c).await
    }

    async fn audit_checkpoints(&self) -> StoreResult<Vec<steward_domain::audit_chain::Checkpoint>> {
        self.audit_checkpoints_impl().await
    }

    async fn audit_links(&self, after: i64, limit: u32) -> StoreResult<Vec<steward_domain::audit_chain::Link>> {
        self.audit_links_impl(after, limit).await
    }

    async fn audit_prune_point(
        &self,
        before: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Option<steward_domain::audit_chain::Anchor>> {
        self.audit_prune_point_impl(before, limit).await
    }

    async fn prune_audit(
        &self,
        from: &steward_domain::audit_chain::Anchor,
        to: &steward_domain::audit_chain::Anchor,
        vouch: &steward_domain::audit_chain::Checkpoint,
    ) -> StoreResult<bool> {
        self.prune_audit_impl(from, to, vouch).await
    }

    async fn decision_link_used(&self, nonce: &str) -> StoreResult<bool> {
        let rows = self.driver.fetch("SELECT nonce FROM decision_link_uses WHERE nonce = $1", &[nonce.into()]).await?;
        Ok(!rows.is_empty())
    }

    async fn use_decision_link(
        &self,
        nonce: &str,
        request: RequestId,
        user: UserId,
        at: jiff::Timestamp,
    ) -> StoreResult<bool> {
        let n = self
            .driver
            .execute(
                "INSERT INTO decision_link_uses (nonce, request_id, user_id, used_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (nonce) DO NOTHING",
                &[nonce.into(), id(request), id(user), ts(at)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn assignments_by_id(&self, ids: &[AssignmentId]) -> StoreResult<Vec<Assignment>> {
        let sql = format!("SELECT {} FROM assignments WHERE id", Assignment::COLUMNS);
        self.rows_in(&sql, ids.iter().map(ToString::to_string).collect(), "").await
    }

    async fn requests_by_id(&self, ids: &[RequestId]) -> StoreResult<Vec<AssignmentRequest>> {
        let sql = format!("SELECT {} FROM assignment_requests WHERE id", AssignmentRequest::COLUMNS);
        self.rows_in(&sql, ids.iter().map(ToString::to_string).collect(), "").await
    }

    async fn users_by_id(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {} FROM users WHERE id", User::COLUMNS);
        self.rows_in(&sql, ids.iter().map(ToString::to_string).collect(), "").await
    }

    async fn role_grants(&self, roles: &[ResourceRoleId]) -> StoreResult<Vec<RoleGrant>> {
        let head = format!("{GRANTS} WHERE rr.id");
        grants(&self.fetch_in(&head, roles.iter().map(ToString::to_string).collect(), "").await?)
    }

    async fn deliveries_of(&self, assignments: &[AssignmentId]) -> StoreResult<Vec<Delivery>> {
        let sql = format!("SELECT {} FROM deliveries WHERE assignment_id", Delivery::COLUMNS);
        self.rows_in(
            &sql,
            assignments.iter().map(ToString::to_string).collect(),
            "ORDER BY assignment_id, resource_role_id, action",
        )
        .await
    }

    async fn packages_by_id(&self, ids: &[AccessPackageId]) -> StoreResult<Vec<AccessPackage>> {
        let sql = format!("SELECT {} FROM access_packages WHERE id", AccessPackage::COLUMNS);
        self.rows_in(&sql, distinct_keys(ids), "").await
    }

    async fn policies_by_id(&self, ids: &[PolicyId]) -> StoreResult<Vec<AssignmentPolicy>> {
        let sql = format!("SELECT {} FROM assignment_policies WHERE id", AssignmentPolicy::COLUMNS);
        self.rows_in(&sql, distinct_keys(ids), "").await
    }

    async fn package_grants_of(&self, packages: &[AccessPackageId]) -> StoreResult<Vec<(AccessPackageId, RoleGrant)>> {
        let rows = self
            .fetch_in(
                "SELECT DISTINCT rs.access_package_id, rr.id, rr.display_name, rr.origin_id, rr.origin_system, \
                 r.origin_id, r.display_name FROM role_scopes rs JOIN resource_roles rr ON rr.id = rs.role_id \
                 JOIN resources r ON r.id = rr.resource_id WHERE rs.access_package_id",
                distinct_keys(packages),
                "",
            )
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let mut c = Cells::new(r);
                let package = c.parse()?;
                Ok((package, grant(&mut c)?))
            })
            .collect::<StoreResult<Vec<(AccessPackageId, RoleGrant)>>>()?;
        // Chunks (SQLite) come back one after another: one order for all.
        out.sort_by_key(|(package, g)| (*package, g.role_id));
        Ok(out)
    }

    async fn incompatibilities_of(
        &self,
        packages: &[AccessPackageId],
    ) -> StoreResult<Vec<(AccessPackageId, Conflicting)>> {
        // Each link read from the side of the package asked about; a package-to-package link
        // counts for both of its packages.
        let rows = self
            .fetch_in(
                "SELECT kind, package, other FROM (\
                 SELECT 'p' AS kind, access_package_id AS package, other_id AS other FROM package_incompatible_packages \
                 UNION ALL SELECT 'p', other_id, access_package_id FROM package_incompatible_packages \
                 UNION ALL SELECT 'g', access_package_id, group_id FROM package_incompatible_groups\
                 ) AS links WHERE package",
                distinct_keys(packages),
                "",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let mut c = Cells::new(r);
                let kind = c.text()?;
                let package = c.parse()?;
                let other = if kind == "p" { Conflicting::Package(c.parse()?) } else { Conflicting::Group(c.parse()?) };
                Ok((package, other))
            })
            .collect()
    }

    async fn requestable_catalogs(&self, user: &User, q: &ListQuery, limit: u32) -> StoreResult<Vec<Catalog>> {
        if q.schema.table != "access_packages" {
            return Err(StoreError::Internal("requestable_catalogs needs a query over access packages".into()));
        }
        let scope = requestors::admitting(self.driver.as_ref(), &self.rules, user, self.requestable_list).await?;
        // Catalog by catalog, in name order, whether one of its packages qualifies: the scope's
        // page shape, so a catalog is settled by its first qualifying package and the read
        // stops after `limit` catalogs. (Collecting every qualifying package first, as a count
        // does, took 21 ms over 20,000 packages on SQLite; this takes 1 ms.)
        let (mut wh, mut ps) = compile::conditions(q, Some(&scope), false);
        wh.insert(0, "access_packages.catalog_id = catalogs.id".into());
        let limit = ps.push(Param::Int(Some(i64::from(limit))));
        let sql = format!(
            "SELECT {} FROM catalogs WHERE EXISTS (SELECT 1 FROM access_packages WHERE {}) \
             ORDER BY display_name, id LIMIT {limit}",
            Catalog::COLUMNS,
            wh.join(" AND ")
        );
        self.rows(&sql, &ps.0).await
    }

    async fn count_requestable(&self, user: &User, q: &ListQuery, cap: u32) -> StoreResult<u64> {
        if q.schema.table != "access_packages" {
            return Err(StoreError::Internal("count_requestable needs a query over access packages".into()));
        }
        let scope = requestors::admitting(self.driver.as_ref(), &self.rules, user, self.requestable_list).await?;
        // The page shape, stopping at `cap` rows: over 20,000 packages a user may request, an
        // exact count collects them all (29 ms on PostgreSQL, 20 ms on SQLite).
        let (wh, mut ps) = compile::conditions(q, Some(&scope), false);
        let where_sql = if wh.is_empty() { String::new() } else { format!(" WHERE {}", wh.join(" AND ")) };
        let cap = ps.push(Param::Int(Some(i64::from(cap))));
        let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM access_packages{where_sql} LIMIT {cap}) AS counted");
        let rows = self.driver.fetch(&sql, &ps.0).await?;
        let n = rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now: jiff::Timestamp,
        lease_until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        let mut tx = self.driver.begin().await?;
        let jobs =
            lifecycle::claim_in(&mut tx, self.driver.concurrent_writers(), owner, now, lease_until, limit).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    async fn claim_jobs_by_id(
        &self,
        owner: &str,
        ids: &[JobId],
        now: jiff::Timestamp,
        lease_until: jiff::Timestamp,
    ) -> StoreResult<Vec<Job>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.driver.begin().await?;
        let jobs = lifecycle::claim_by_id_in(&mut tx, self.driver.arrays(), owner, ids, now, lease_until).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    async fn finish_job(&self, job: JobId, owner: &str, effects: &Batch) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        let n = tx.execute("DELETE FROM jobs WHERE id = $1 AND lease_owner = $2", &[id(job), owner.into()]).await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("The lease on job {job} was lost.")));
        }
        lifecycle::apply_in(&mut tx, self.driver.arrays(), effects).await?;
        tx.commit().await?;
        self.queued(effects);
        Ok(())
    }

    async fn finish_jobs(&self, jobs: &[JobId], owner: &str, effects: &Batch) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        let mut gone = 0_u64;
        if self.driver.arrays() {
            let ids = Param::Texts(jobs.iter().map(|j| Some(j.to_string())).collect());
            gone = tx.execute("DELETE FROM jobs WHERE id = ANY($1) AND lease_owner = $2", &[ids, owner.into()]).await?;
        } else {
            for chunk in jobs.chunks(500) {
                let marks: Vec<String> = (2..=chunk.len() + 1).map(|i| format!("${i}")).collect();
                let mut params: Vec<Param> = vec![owner.into()];
                params.extend(chunk.iter().map(|j| id(*j)));
                let sql = format!("DELETE FROM jobs WHERE lease_owner = $1 AND id IN ({})", marks.join(", "));
                gone += tx.execute(&sql, &params).await?;
            }
        }
        if gone != jobs.len() as u64 {
            return Err(StoreError::Conflict(format!(
                "The lease on {} of {} jobs was lost.",
                jobs.len() as u64 - gone.min(jobs.len() as u64),
                jobs.len()
            )));
        }
        lifecycle::apply_in(&mut tx, self.driver.arrays(), effects).await?;
        tx.commit().await?;
        self.queued(effects);
        Ok(())
    }

    async fn retry_job(&self, job: JobId, owner: &str, run_at: jiff::Timestamp, error: &str) -> StoreResult<()> {
        let n = self
            .write(
                "UPDATE jobs SET run_at = $3, lease_owner = NULL, lease_until = NULL, last_error = $4 \
                 WHERE id = $1 AND lease_owner = $2",
                &[id(job), owner.into(), ts(run_at), error.into()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("The lease on job {job} was lost.")));
        }
        Ok(())
    }

    async fn insert_connection(&self, c: &Connection, sealed: Option<&str>, event: &AuditEvent) -> StoreResult<()> {
        self.insert(
            "INSERT INTO connections (id, display_name, description, kind, settings, credentials, created_at, \
             modified_at, reconciliation, reconcile_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                id(c.id),
                c.display_name.as_str().into(),
                c.description.clone().into(),
                c.kind.as_str().into(),
                c.settings.to_string().into(),
                Param::Text(sealed.map(str::to_owned)),
                ts(c.created_date_time),
                ts(c.modified_date_time),
                reconciliation_json(c),
                opt_ts(c.reconciliation.next_after(c.created_date_time)),
            ],
            Some(event),
            || format!("A connection with id '{}' already exists.", c.id),
            &[],
        )
        .await
    }

    async fn update_connection(
        &self,
        c: &Connection,
        sealed: Option<Option<&str>>,
        read_at: jiff::Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let mut params = vec![
            id(c.id),
            c.display_name.as_str().into(),
            c.description.clone().into(),
            c.settings.to_string().into(),
            ts(c.modified_date_time),
            ts(read_at),
            reconciliation_json(c),
        ];
        let credentials = match sealed {
            Some(value) => {
                params.push(Param::Text(value.map(str::to_owned)));
                ", credentials = $8"
            }
            None => "",
        };
        let sql = format!(
            "UPDATE connections SET display_name = $2, description = $3, settings = $4, modified_at = $5, \
             reconciliation = $7{credentials} WHERE id = $1 AND modified_at = $6"
        );
        let n = self.write_recorded(&sql, &params, event).await?;
        self.changed_since(n, "connections", "connection", c.id).await
    }

    async fn delete_connection(&self, cid: ConnectionId, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        if !exists_in(&mut tx, "connections", id(cid)).await? {
            return Err(StoreError::not_found("connection", cid));
        }
        // Resources from a connection have origin ids '<connection id>:…', one range of text.
        let (from, to) = (format!("{cid}:"), format!("{cid};"));
        let used = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM resources WHERE origin_id >= $1 AND origin_id < $2",
            &[from.into(), to.into()],
        )
        .await?;
        if used > 0 {
            return Err(StoreError::Rule(steward_domain::DomainError::invalid(format!(
                "The connection cannot be deleted: {used} resource(s) from it are in catalogs; remove them first."
            ))));
        }
        tx.execute("DELETE FROM connections WHERE id = $1", &[id(cid)]).await?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    async fn get_connection(&self, cid: ConnectionId) -> StoreResult<Option<Connection>> {
        self.get("connections", cid.to_string()).await
    }

    async fn list_connections(&self) -> StoreResult<Vec<Connection>> {
        let sql = format!("SELECT {} FROM connections ORDER BY display_name, id", Connection::COLUMNS);
        self.rows(&sql, &[]).await
    }

    async fn connection_credentials(&self, cid: ConnectionId) -> StoreResult<Option<String>> {
        let rows = self.driver.fetch("SELECT credentials FROM connections WHERE id = $1", &[id(cid)]).await?;
        rows.first().map(|r| Cells::new(r).opt_text()).transpose().map(Option::flatten)
    }

    async fn insert_chat_webhook(
        &self,
        w: &steward_domain::chat::ChatWebhook,
        sealed_url: &str,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.insert_chat_webhook_impl(w, sealed_url, event).await
    }

    async fn chat_webhooks(&self, catalog: CatalogId) -> StoreResult<Vec<steward_domain::chat::ChatWebhook>> {
        self.chat_webhooks_impl(catalog).await
    }

    async fn chat_webhook(
        &self,
        w: steward_domain::ids::ChatWebhookId,
    ) -> StoreResult<Option<(steward_domain::chat::ChatWebhook, String)>> {
        self.chat_webhook_impl(w).await
    }

    async fn delete_chat_webhook(&self, w: steward_domain::ids::ChatWebhookId, event: &AuditEvent) -> StoreResult<()> {
        self.delete_chat_webhook_impl(w, event).await
    }

    async fn due_reconciliations(&self, now: jiff::Timestamp) -> StoreResult<Vec<Connection>> {
        let sql = format!(
            "SELECT {} FROM connections WHERE reconcile_at IS NOT NULL AND reconcile_at <= $1 ORDER BY reconcile_at, id",
            Connection::COLUMNS
        );
        self.rows(&sql, &[ts(now)]).await
    }

    async fn set_reconcile_at(&self, cid: ConnectionId, at: Option<jiff::Timestamp>) -> StoreResult<()> {
        self.write("UPDATE connections SET reconcile_at = $2 WHERE id = $1", &[id(cid), opt_ts(at)]).await?;
        Ok(())
    }

    async fn connection_role_grants(&self, cid: ConnectionId) -> StoreResult<Vec<RoleGrant>> {
        // Origin ids '<connection id>:…' are one range of text.
        let (from, to) = (format!("{cid}:"), format!("{cid};"));
        let rows = self
            .driver
            .fetch(
                &format!("{GRANTS} WHERE r.origin_id >= $1 AND r.origin_id < $2 ORDER BY rr.id"),
                &[from.into(), to.into()],
            )
            .await?;
        grants(&rows)
    }

    async fn role_holders(&self, role: ResourceRoleId) -> StoreResult<steward_app::ports::RoleHolders> {
        let user_cols: Vec<String> = User::COLUMNS.split(',').map(|c| format!("u.{}", c.trim())).collect();
        let sql = format!(
            "SELECT {}, d.action, d.state, a.active_key IS NOT NULL FROM deliveries d \
             JOIN assignments a ON a.id = d.assignment_id JOIN users u ON u.id = a.target_id \
             WHERE d.resource_role_id = $1 ORDER BY u.id",
            user_cols.join(", ")
        );
        let rows = self.driver.fetch(&sql, &[id(role)]).await?;
        let mut granted: Vec<User> = Vec::new();
        let mut in_flight: Vec<User> = Vec::new();
        for r in &rows {
            let mut c = Cells::new(r);
            let u = User::from_cells(&mut c)?;
            let (action, state, active) = (c.text()?, c.text()?, c.bool()?);
            let list = match (action.as_str(), state.as_str(), active) {
                (_, "pending", _) => &mut in_flight,
                ("grant", "done", true) => &mut granted,
                _ => continue,
            };
            if list.last().is_none_or(|last| last.id != u.id) {
                list.push(u);
            }
        }
        // Someone both held and in flight (a second assignment being delivered) is in flight.
        granted.retain(|u| !in_flight.iter().any(|f| f.id == u.id));
        Ok(steward_app::ports::RoleHolders { granted, in_flight })
    }

    async fn replace_drift(
        &self,
        cid: ConnectionId,
        role: ResourceRoleId,
        holders: &[String],
        now: jiff::Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        let known = tx.fetch("SELECT holder FROM drift WHERE resource_role_id = $1", &[id(role)]).await?;
        let wanted: std::collections::HashSet<&str> = holders.iter().map(String::as_str).collect();
        for r in &known {
            let h = Cells::new(r).text()?;
            if !wanted.contains(h.as_str()) {
                tx.execute("DELETE FROM drift WHERE resource_role_id = $1 AND holder = $2", &[id(role), h.into()])
                    .await?;
            }
        }
        for h in &wanted {
            tx.execute(
                "INSERT INTO drift (connection_id, resource_role_id, holder, first_seen_at, last_seen_at) \
                 VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (resource_role_id, holder) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                &[id(cid), id(role), (*h).into(), ts(now)],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn drift(&self, cid: ConnectionId) -> StoreResult<Vec<steward_app::ports::Drift>> {
        let rows = self
            .driver
            .fetch(
                "SELECT resource_role_id, holder, first_seen_at, last_seen_at FROM drift WHERE connection_id = $1 \
                 ORDER BY resource_role_id, holder",
                &[id(cid)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let mut c = Cells::new(r);
                Ok(steward_app::ports::Drift {
                    resource_role_id: c.parse()?,
                    holder: c.text()?,
                    first_seen: c.time()?,
                    last_seen: c.time()?,
                })
            })
            .collect()
    }

    async fn insert_extension(&self, x: &CustomExtension, sealed_secret: &str, event: &AuditEvent) -> StoreResult<()> {
        self.insert(
            "INSERT INTO custom_extensions (id, catalog_id, kind, display_name, description, settings, \
             signing_secret, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                id(x.id),
                id(x.catalog_id),
                x.kind.as_str().into(),
                x.display_name.as_str().into(),
                x.description.clone().into(),
                extension_settings(x)?,
                sealed_secret.into(),
                ts(x.created_date_time),
                ts(x.last_modified_date_time),
            ],
            Some(event),
            || format!("A custom extension with id '{}' already exists.", x.id),
            &[("catalogs", "catalog", x.catalog_id.to_string())],
        )
        .await
    }

    async fn update_extension(
        &self,
        x: &CustomExtension,
        read_at: jiff::Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let n = self
            .write_recorded(
                "UPDATE custom_extensions SET display_name = $2, description = $3, settings = $4, modified_at = $5 \
                 WHERE id = $1 AND modified_at = $6",
                &[
                    id(x.id),
                    x.display_name.as_str().into(),
                    x.description.clone().into(),
                    extension_settings(x)?,
                    ts(x.last_modified_date_time),
                    ts(read_at),
                ],
                event,
            )
            .await?;
        self.changed_since(n, "custom_extensions", "custom extension", x.id).await
    }

    async fn delete_extension(&self, xid: CustomExtensionId, event: &AuditEvent) -> StoreResult<()> {
        let in_use = |n: u64| {
            StoreError::Rule(steward_domain::DomainError::invalid(format!(
                "The custom extension cannot be deleted: {n} assignment policy stage setting(s) run it \
                 (customExtensionStageSettings); take it out of those policies first."
            )))
        };
        let mut tx = self.driver.begin().await?;
        if !lock_row(&mut tx, "custom_extensions", id(xid)).await? {
            return Err(StoreError::not_found("custom extension", xid));
        }
        let used =
            count_in(&mut tx, "SELECT COUNT(*) FROM policy_extensions WHERE extension_id = $1", &[id(xid)]).await?;
        if used > 0 {
            return Err(in_use(used));
        }
        tx.execute("DELETE FROM custom_extensions WHERE id = $1", &[id(xid)]).await.map_err(|e| match e {
            StoreError::Conflict(_) => in_use(1),
            other => other,
        })?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    async fn get_extension(&self, xid: CustomExtensionId) -> StoreResult<Option<CustomExtension>> {
        self.get("custom_extensions", xid.to_string()).await
    }

    async fn extensions_of_catalog(&self, catalog: CatalogId) -> StoreResult<Vec<CustomExtension>> {
        let sql = format!(
            "SELECT {} FROM custom_extensions WHERE catalog_id = $1 ORDER BY display_name, id",
            CustomExtension::COLUMNS
        );
        self.rows(&sql, &[id(catalog)]).await
    }

    async fn extension_secret(&self, xid: CustomExtensionId) -> StoreResult<Option<String>> {
        let rows = self.driver.fetch("SELECT signing_secret FROM custom_extensions WHERE id = $1", &[id(xid)]).await?;
        rows.first().map(|r| Cells::new(r).text()).transpose()
    }

    async fn extension_uses(&self, xid: CustomExtensionId) -> StoreResult<Vec<(PolicyId, CustomExtensionStage)>> {
        let rows = self
            .driver
            .fetch(
                "SELECT policy_id, stage FROM policy_extensions WHERE extension_id = $1 ORDER BY policy_id, stage",
                &[id(xid)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let mut c = Cells::new(r);
                Ok((c.parse()?, c.parse()?))
            })
            .collect()
    }

    async fn get_callout(&self, cid: CalloutInstanceId) -> StoreResult<Option<CalloutInstance>> {
        self.get("callout_instances", cid.to_string()).await
    }

    async fn callouts_of_requests(&self, requests: &[RequestId]) -> StoreResult<Vec<CalloutInstance>> {
        let sql = format!("SELECT {} FROM callout_instances WHERE request_id", CalloutInstance::COLUMNS);
        let keys = requests.iter().map(ToString::to_string).collect();
        self.rows_in(&sql, keys, "ORDER BY request_id, created_at, id").await
    }

    async fn callouts_of_assignments(&self, assignments: &[AssignmentId]) -> StoreResult<Vec<CalloutInstance>> {
        let sql = format!("SELECT {} FROM callout_instances WHERE assignment_id", CalloutInstance::COLUMNS);
        let keys = assignments.iter().map(ToString::to_string).collect();
        self.rows_in(&sql, keys, "ORDER BY assignment_id, created_at, id").await
    }

    async fn nearing_expiry(
        &self,
        stage: CustomExtensionStage,
        now: jiff::Timestamp,
        until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<(Assignment, CustomExtensionId)>> {
        // Mostly no policy runs an extension at this stage: one index probe says so.
        let probe = "SELECT 1 FROM policy_extensions WHERE stage = $1 LIMIT 1";
        if self.driver.fetch(probe, &[stage.as_str().into()]).await?.is_empty() {
            return Ok(Vec::new());
        }
        let columns: Vec<String> = Assignment::COLUMNS.split(',').map(|c| format!("a.{}", c.trim())).collect();
        let sql = format!(
            "SELECT {}, pe.extension_id FROM policy_extensions pe JOIN assignments a ON a.policy_id = pe.policy_id \
             WHERE pe.stage = $1 AND a.active_key IS NOT NULL AND a.end_at IS NOT NULL AND a.end_at > $2 \
             AND a.end_at <= $3 AND NOT EXISTS (SELECT 1 FROM callout_instances c \
             WHERE c.assignment_id = a.id AND c.stage = $1) ORDER BY a.end_at, a.id LIMIT $4",
            columns.join(", ")
        );
        let rows =
            self.driver.fetch(&sql, &[stage.as_str().into(), ts(now), ts(until), i64::from(limit).into()]).await?;
        rows.iter()
            .map(|r| {
                let mut c = Cells::new(r);
                let a = Assignment::from_cells(&mut c)?;
                Ok((a, c.parse()?))
            })
            .collect()
    }

    async fn pending_jobs(&self) -> StoreResult<u64> {
        let rows = self.driver.fetch("SELECT COUNT(*) FROM jobs", &[]).await?;
        let n = rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn scim_user(&self, uid: UserId) -> StoreResult<Option<steward_app::scim::ScimUser>> {
        self.scim_user_impl(uid).await
    }

    async fn scim_users(
        &self,
        q: &steward_app::scim::query::ScimQuery,
    ) -> StoreResult<steward_app::scim::query::ScimPage<steward_app::scim::ScimUser>> {
        self.scim_users_impl(q).await
    }

    async fn insert_scim_user(&self, u: &steward_app::scim::ScimUser, events: &[AuditEvent]) -> StoreResult<()> {
        self.insert_scim_user_impl(u, events).await
    }

    async fn update_scim_user(
        &self,
        u: &steward_app::scim::ScimUser,
        read_version: i64,
        events: &[AuditEvent],
    ) -> StoreResult<bool> {
        self.update_scim_user_impl(u, read_version, events).await
    }

    async fn delete_scim_user(&self, uid: UserId, event: &AuditEvent) -> StoreResult<()> {
        self.delete_scim_user_impl(uid, event).await
    }

    async fn scim_group(&self, gid: GroupId) -> StoreResult<Option<steward_app::scim::ScimGroup>> {
        self.scim_group_impl(gid).await
    }

    async fn scim_groups(
        &self,
        q: &steward_app::scim::query::ScimQuery,
    ) -> StoreResult<steward_app::scim::query::ScimPage<steward_app::scim::ScimGroup>> {
        self.scim_groups_impl(q).await
    }

    async fn insert_scim_group(&self, g: &steward_app::scim::ScimGroup, events: &[AuditEvent]) -> StoreResult<()> {
        self.insert_scim_group_impl(g, events).await
    }

    async fn update_scim_group(
        &self,
        g: &steward_app::scim::ScimGroup,
        added: &[UserId],
        removed: &[UserId],
        read_version: i64,
        events: &[AuditEvent],
    ) -> StoreResult<bool> {
        self.update_scim_group_impl(g, added, removed, read_version, events).await
    }

    async fn delete_scim_group(&self, gid: GroupId, event: &AuditEvent) -> StoreResult<()> {
        self.delete_scim_group_impl(gid, event).await
    }

    async fn insert_connected_organization(
        &self,
        o: &steward_domain::connected::ConnectedOrganization,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.insert_organization(o, event).await
    }

    async fn update_connected_organization(
        &self,
        o: &steward_domain::connected::ConnectedOrganization,
        read_at: jiff::Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.update_organization(o, read_at, event).await
    }

    async fn delete_connected_organization(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.delete_organization(org, event).await
    }

    async fn get_connected_organization(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
    ) -> StoreResult<Option<steward_domain::connected::ConnectedOrganization>> {
        self.get("connected_organizations", org.to_string()).await
    }

    async fn list_connected_organizations(
        &self,
        q: &ListQuery,
    ) -> StoreResult<Page<steward_domain::connected::ConnectedOrganization>> {
        self.list(q).await
    }

    async fn organization_of_domain(
        &self,
        domain: &str,
    ) -> StoreResult<Option<steward_domain::connected::ConnectedOrganization>> {
        self.organization_by_domain(domain).await
    }

    async fn add_organization_sponsor(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
        kind: steward_domain::connected::SponsorKind,
        user: UserId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.add_sponsor_of(org, kind, user, event).await
    }

    async fn remove_organization_sponsor(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
        kind: steward_domain::connected::SponsorKind,
        user: UserId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.remove_sponsor_of(org, kind, user, event).await
    }

    async fn organization_sponsors(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
        kind: steward_domain::connected::SponsorKind,
    ) -> StoreResult<Vec<UserId>> {
        self.sponsors_of(org, kind).await
    }

    async fn entitlement_settings(&self) -> StoreResult<steward_domain::external::EntitlementSettings> {
        self.settings().await
    }

    async fn put_entitlement_settings(
        &self,
        settings: &steward_domain::external::EntitlementSettings,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.put_settings(settings, event).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.by_email(email).await
    }

    async fn get_external_user(&self, user: UserId) -> StoreResult<Option<steward_domain::external::ExternalUser>> {
        self.external_user(user).await
    }

    async fn governed_unblocked(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        self.governed_unblocked_of(users).await
    }

    async fn block_external_user(
        &self,
        user: UserId,
        block: &steward_domain::external::Block,
        event: &AuditEvent,
    ) -> StoreResult<bool> {
        self.block(user, block, event).await
    }

    async fn external_users_due(&self, now: jiff::Timestamp, limit: u32) -> StoreResult<Vec<UserId>> {
        self.due_external(now, limit).await
    }

    async fn delete_external_user(&self, user: UserId, now: jiff::Timestamp, event: &AuditEvent) -> StoreResult<bool> {
        self.delete_external(user, now, event).await
    }

    async fn insert_sign_in(&self, sign_in: &steward_app::sessions::StoredSignIn) -> StoreResult<()> {
        self.insert_sign_in_impl(sign_in).await
    }

    async fn take_sign_in(&self, state_hash: &str) -> StoreResult<Option<steward_app::sessions::StoredSignIn>> {
        self.take_sign_in_impl(state_hash).await
    }

    async fn insert_session(&self, session: &steward_app::sessions::Session) -> StoreResult<()> {
        self.insert_session_impl(session).await
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<(steward_app::sessions::Session, bool)>> {
        self.session_impl(id_hash).await
    }

    async fn touch_session(
        &self,
        id_hash: &str,
        last_seen: jiff::Timestamp,
        ends_at: jiff::Timestamp,
    ) -> StoreResult<()> {
        self.touch_session_impl(id_hash, last_seen, ends_at).await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool> {
        self.delete_session_impl(id_hash).await
    }

    async fn sweep_sessions(&self, now: jiff::Timestamp) -> StoreResult<u64> {
        self.sweep_sessions_impl(now).await
    }

    async fn get_review_definition(&self, d: ReviewDefinitionId) -> StoreResult<Option<ReviewDefinition>> {
        self.get_review_definition_impl(d).await
    }

    async fn list_review_definitions(&self, q: &ListQuery) -> StoreResult<Page<ReviewDefinition>> {
        self.list_review_definitions_impl(q).await
    }

    async fn review_definition_of_policy(&self, policy: PolicyId) -> StoreResult<Option<ReviewDefinition>> {
        self.review_definition_of_policy_impl(policy).await
    }

    async fn delete_review_definition(&self, d: ReviewDefinitionId, event: &AuditEvent) -> StoreResult<()> {
        self.delete_review_definition_impl(d, event).await
    }

    async fn due_review_definitions(&self, now: jiff::Timestamp, limit: u32) -> StoreResult<Vec<ReviewDefinition>> {
        self.due_review_definitions_impl(now, limit).await
    }

    async fn get_review_instance(&self, i: ReviewInstanceId) -> StoreResult<Option<ReviewInstance>> {
        self.get_review_instance_impl(i).await
    }

    async fn list_review_instances(&self, q: &ListQuery) -> StoreResult<Page<ReviewInstance>> {
        self.list_review_instances_impl(q).await
    }

    async fn ending_review_instances(&self, now: jiff::Timestamp, limit: u32) -> StoreResult<Vec<ReviewInstance>> {
        self.ending_review_instances_impl(now, limit).await
    }

    async fn get_review_decision(&self, d: ReviewDecisionId) -> StoreResult<Option<ReviewDecision>> {
        self.get_review_decision_impl(d).await
    }

    async fn list_review_decisions(&self, q: &ListQuery) -> StoreResult<Page<ReviewDecision>> {
        self.list_review_decisions_impl(q).await
    }

    async fn review_decisions_of(
        &self,
        instance: ReviewInstanceId,
        after: Option<ReviewDecisionId>,
        limit: u32,
    ) -> StoreResult<Vec<ReviewDecision>> {
        self.review_decisions_of_impl(instance, after, limit).await
    }

    async fn review_decisions_by_id(&self, ids: &[ReviewDecisionId]) -> StoreResult<Vec<ReviewDecision>> {
        self.review_decisions_by_id_impl(ids).await
    }

    async fn review_decisions_of_principals(
        &self,
        instance: ReviewInstanceId,
        principals: &[UserId],
    ) -> StoreResult<Vec<ReviewDecision>> {
        self.review_decisions_of_principals_impl(instance, principals).await
    }

    async fn note_sign_in(&self, user: UserId, at: jiff::Timestamp) -> StoreResult<()> {
        self.note_sign_in_impl(user, at).await
    }

    async fn last_sign_ins(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, jiff::Timestamp)>> {
        self.last_sign_ins_impl(users).await
    }

    async fn insert_review_history(
        &self,
        d: &steward_app::reviews::history::HistoryDefinition,
        i: &steward_app::reviews::history::HistoryInstance,
        report: &str,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.insert_review_history_impl(d, i, report, event).await
    }

    async fn get_review_history_definition(
        &self,
        d: steward_app::reviews::history::HistoryDefinitionId,
    ) -> StoreResult<Option<steward_app::reviews::history::HistoryDefinition>> {
        self.get_review_history_definition_impl(d).await
    }

    async fn list_review_history_definitions(
        &self,
        q: &ListQuery,
    ) -> StoreResult<Page<steward_app::reviews::history::HistoryDefinition>> {
        self.list_review_history_definitions_impl(q).await
    }

    async fn delete_review_history_definition(
        &self,
        d: steward_app::reviews::history::HistoryDefinitionId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.delete_review_history_definition_impl(d, event).await
    }

    async fn review_history_instances(
        &self,
        d: steward_app::reviews::history::HistoryDefinitionId,
    ) -> StoreResult<Vec<steward_app::reviews::history::HistoryInstance>> {
        self.review_history_instances_impl(d).await
    }

    async fn get_review_history_instance(
        &self,
        i: steward_app::reviews::history::HistoryInstanceId,
    ) -> StoreResult<Option<steward_app::reviews::history::HistoryInstance>> {
        self.get_review_history_instance_impl(i).await
    }

    async fn review_history_report(
        &self,
        i: steward_app::reviews::history::HistoryInstanceId,
    ) -> StoreResult<Option<(steward_app::reviews::history::HistoryInstance, String)>> {
        self.review_history_report_impl(i).await
    }

    async fn metrics_snapshot(&self, now: jiff::Timestamp) -> StoreResult<steward_app::metrics::MetricsSnapshot> {
        self.metrics_snapshot_impl(now).await
    }

    async fn notify_cursor(&self) -> StoreResult<i64> {
        self.notify_cursor_impl().await
    }

    async fn notify_cursor_to_head(&self) -> StoreResult<()> {
        self.notify_cursor_to_head_impl().await
    }

    async fn chained_events(&self, after: i64, limit: u32) -> StoreResult<Vec<(i64, AuditEvent)>> {
        self.chained_events_impl(after, limit).await
    }

    async fn queue_notices(&self, notices: &[steward_app::notify::Notice], from: i64, to: i64) -> StoreResult<bool> {
        self.queue_notices_impl(notices, from, to).await
    }

    async fn notify_timer(&self, name: &str) -> StoreResult<Option<jiff::Timestamp>> {
        self.notify_timer_impl(name).await
    }

    async fn queue_timer_notices(
        &self,
        name: &str,
        read: Option<jiff::Timestamp>,
        until: jiff::Timestamp,
        notices: &[steward_app::notify::Notice],
    ) -> StoreResult<bool> {
        self.queue_timer_notices_impl(name, read, until, notices).await
    }

    async fn claim_notices(
        &self,
        owner: &str,
        now: jiff::Timestamp,
        lease_until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<steward_app::notify::Notice>> {
        self.claim_notices_impl(owner, now, lease_until, limit).await
    }

    async fn notice_sent(&self, nid: &str, owner: &str, at: jiff::Timestamp) -> StoreResult<bool> {
        self.notice_sent_impl(nid, owner, at).await
    }

    async fn notice_retry(&self, nid: &str, owner: &str, next_at: jiff::Timestamp, error: &str) -> StoreResult<bool> {
        self.notice_retry_impl(nid, owner, next_at, error).await
    }

    async fn notice_failed(&self, nid: &str, owner: &str, error: &str) -> StoreResult<bool> {
        self.notice_failed_impl(nid, owner, error).await
    }

    async fn notice_postpone(&self, nid: &str, owner: &str, next_at: jiff::Timestamp) -> StoreResult<bool> {
        self.notice_postpone_impl(nid, owner, next_at).await
    }

    async fn get_notice(&self, nid: &str) -> StoreResult<Option<steward_app::notify::Notice>> {
        self.get_notice_impl(nid).await
    }

    async fn assignments_ending_between(
        &self,
        after: jiff::Timestamp,
        until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Assignment>> {
        self.assignments_ending_between_impl(after, until, limit).await
    }

    async fn requests_due_between(
        &self,
        after: jiff::Timestamp,
        until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<AssignmentRequest>> {
        self.requests_due_between_impl(after, until, limit).await
    }
}

fn grants(rows: &[crate::driver::Row]) -> StoreResult<Vec<RoleGrant>> {
    rows.iter().map(|r| grant(&mut Cells::new(r))).collect()
}

/// Each of `ids` once, as keys for `fetch_in`: a key repeated in two chunks would read its rows
/// twice.
fn distinct_keys<T: ToString>(ids: &[T]) -> Vec<String> {
    let mut keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A `RoleGrant` from the next six cells (the columns of `GRANTS`).
fn grant(c: &mut Cells<'_>) -> StoreResult<RoleGrant> {
    Ok(RoleGrant {
        role_id: c.parse()?,
        role_name: c.text()?,
        role_origin_id: c.text()?,
        origin_system: c.text()?,
        resource_origin_id: c.text()?,
        resource_name: c.text()?,
    })
}

fn policy_params(p: &AssignmentPolicy, who: &SelfRequestors) -> StoreResult<Vec<Param>> {
    let settings = serde_json::to_string(&p.settings)
        .map_err(|e| StoreError::Internal(format!("cannot encode policy settings: {e}")))?;
    Ok(vec![
        id(p.id),
        id(p.access_package_id),
        id(p.catalog_id),
        p.display_name.as_str().into(),
        p.description.clone().into(),
        p.settings.allowed_target_scope.as_str().into(),
        settings.into(),
        ts(p.created_date_time),
        ts(p.modified_date_time),
        fold(p.display_name.as_str()),
        fold_opt(p.description.as_deref()),
        who.kind().into(),
    ])
}

/// Takes the row's write lock (`UPDATE … SET id = id`) until the transaction ends; false when
/// there is no such row. Two transactions that lock the same row first run one after the other.
async fn lock_row(tx: &mut Box<dyn Tx>, table: &'static str, key: Param) -> StoreResult<bool> {
    let sql = format!("UPDATE {table} SET id = id WHERE id = $1");
    Ok(tx.execute(&sql, &[key]).await? > 0)
}

async fn add_resource_tx(
    driver: &dyn Driver,
    added: &GroupResource,
    request: &ResourceRequest,
    event: &AuditEvent,
) -> StoreResult<()> {
    let r = &added.resource;
    let mut tx = driver.begin().await?;
    // The app found the group before calling, outside this transaction; it may have been
    // deleted since. Locking its row (as `delete_group` does) settles the race: a group that
    // is gone is refused, and one being deleted waits for this resource and then stays.
    if r.origin_system == catalog::ORIGIN_AAD_GROUP && !lock_row(&mut tx, "groups", r.origin_id.clone().into()).await? {
        return Err(StoreError::not_found("group", &r.origin_id));
    }
    tx.execute(
        "INSERT INTO resources (id, catalog_id, display_name, description, origin_id, origin_system, created_at, \
         modified_at, display_name_fold, description_fold, origin_id_fold, origin_system_fold) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            id(r.id),
            id(r.catalog_id),
            r.display_name.clone().into(),
            r.description.clone().into(),
            r.origin_id.clone().into(),
            r.origin_system.clone().into(),
            ts(r.created_date_time),
            ts(r.modified_date_time),
            fold(&r.display_name),
            fold_opt(r.description.as_deref()),
            fold(&r.origin_id),
            fold(&r.origin_system),
        ],
    )
    .await?;
    for role in &added.roles {
        tx.execute(
            "INSERT INTO resource_roles (id, resource_id, display_name, description, origin_id, origin_system, \
             display_name_fold, description_fold, origin_id_fold, origin_system_fold) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                id(role.id),
                id(role.resource_id),
                role.display_name.clone().into(),
                role.description.clone().into(),
                role.origin_id.clone().into(),
                role.origin_system.clone().into(),
                fold(&role.display_name),
                fold_opt(role.description.as_deref()),
                fold(&role.origin_id),
                fold(&role.origin_system),
            ],
        )
        .await?;
    }
    let s = &added.scope;
    tx.execute(
        "INSERT INTO resource_scopes (id, resource_id, display_name, description, origin_id, origin_system, \
         is_root_scope, display_name_fold, description_fold, origin_id_fold, origin_system_fold) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            id(s.id),
            id(s.resource_id),
            s.display_name.clone().into(),
            s.description.clone().into(),
            s.origin_id.clone().into(),
            s.origin_system.clone().into(),
            s.is_root_scope.into(),
            fold(&s.display_name),
            fold_opt(s.description.as_deref()),
            fold(&s.origin_id),
            fold(&s.origin_system),
        ],
    )
    .await?;
    insert_request(&mut tx, request).await?;
    lifecycle::record_in(&mut tx, event).await?;
    tx.commit().await
}

async fn insert_request(tx: &mut Box<dyn Tx>, r: &ResourceRequest) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO resource_requests (id, catalog_id, resource_id, request_type, state, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            id(r.id),
            id(r.catalog_id),
            Param::Text(r.resource_id.map(|x| x.to_string())),
            r.request_type.as_str().into(),
            r.state.as_str().into(),
            ts(r.created_date_time),
        ],
    )
    .await?;
    Ok(())
}

/// What a policy insert or update refers to, for naming what is missing.
fn policy_refs(p: &AssignmentPolicy) -> Vec<Ref> {
    let mut refs = vec![
        ("access_packages", "access package", p.access_package_id.to_string()),
        ("catalogs", "catalog", p.catalog_id.to_string()),
    ];
    refs.extend(
        p.settings
            .custom_extension_stage_settings
            .iter()
            .map(|x| ("custom_extensions", "custom extension", x.custom_extension.id.to_string())),
    );
    refs.extend(external::policy_organization_refs(p));
    refs
}

/// Replaces a policy's rows in `policy_extensions` with its stage settings, in its transaction.
async fn write_policy_extensions(tx: &mut Box<dyn Tx>, p: &AssignmentPolicy) -> StoreResult<()> {
    tx.execute("DELETE FROM policy_extensions WHERE policy_id = $1", &[id(p.id)]).await?;
    for x in &p.settings.custom_extension_stage_settings {
        tx.execute(
            "INSERT INTO policy_extensions (policy_id, stage, extension_id) VALUES ($1, $2, $3)",
            &[id(p.id), x.stage.as_str().into(), id(x.custom_extension.id)],
        )
        .await?;
    }
    Ok(())
}

/// A custom extension's configuration as stored.
fn extension_settings(x: &CustomExtension) -> StoreResult<Param> {
    serde_json::to_string(&x.config)
        .map(Param::from)
        .map_err(|e| StoreError::Internal(format!("cannot encode custom extension settings: {e}")))
}

/// A connection's reconciliation settings as stored.
fn reconciliation_json(c: &Connection) -> Param {
    serde_json::to_string(&c.reconciliation).unwrap_or_else(|_| "{}".to_owned()).into()
}

/// The rows `grants` reads: resource roles with their resource's origin id and name.
const GRANTS: &str = "SELECT rr.id, rr.display_name, rr.origin_id, rr.origin_system, r.origin_id, r.display_name \
                      FROM resource_roles rr JOIN resources r ON r.id = rr.resource_id";
