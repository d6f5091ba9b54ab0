//! The request lifecycle's persistence: requests, approvers, assignments, deliveries, audit
//! events and the lease-based job queue. Decisions arrive as a `Batch` written in one
//! transaction; this module only stores, it decides nothing. Its audit insert also records
//! administrators' changes to catalogs, packages and policies (`record_in`), inside the
//! transaction of each change.

use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_app::StoreError;
use steward_app::jobs::{Job, JobKind, NewJob};
use steward_app::ports::{Batch, Put, StoreResult};
use steward_domain::assignment::{Assignment, Delivery};
use steward_domain::audit::{AuditEvent, Initiator};
use steward_domain::ids::JobId;
use steward_domain::request::{AssignmentRequest, RequestDetail};
use steward_domain::schedule::Window;
use steward_domain::time::to_micros;

use crate::driver::{Param, Tx};
use crate::rows::{Cells, FromRow};

/// A unit enum's serde name (`"grant"`, `"UserRequestsAssignment"`).
pub(crate) fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

pub(crate) fn enum_parse<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StoreError::Internal(format!("unparsable stored value '{s}'")))
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("cannot encode: {e}")))
}

fn id<T: ToString>(v: T) -> Param {
    Param::Text(Some(v.to_string()))
}
fn opt_id<T: ToString>(v: Option<T>) -> Param {
    Param::Text(v.map(|v| v.to_string()))
}
fn ts(t: jiff::Timestamp) -> Param {
    Param::Int(Some(to_micros(t)))
}
fn opt_ts(t: Option<jiff::Timestamp>) -> Param {
    Param::Int(t.map(to_micros))
}

impl FromRow for AssignmentRequest {
    const COLUMNS: &'static str = "id, request_type, state, status, access_package_id, catalog_id, policy_id, \
        target_id, requestor_id, assignment_id, detail, created_at, completed_at, modified_at, due";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(AssignmentRequest {
            id: c.parse()?,
            request_type: c.parse()?,
            state: c.parse()?,
            status: c.parse()?,
            access_package_id: c.parse()?,
            catalog_id: c.parse()?,
            policy_id: c.opt_parse()?,
            target_id: c.parse()?,
            requestor_id: c.opt_parse()?,
            assignment_id: c.opt_parse()?,
            detail: serde_json::from_str::<RequestDetail>(&c.text()?)
                .map_err(|e| StoreError::Internal(format!("stored request detail does not parse: {e}")))?,
            created_date_time: c.time()?,
            completed_date_time: c.opt_time()?,
            modified_date_time: c.time()?,
            due: c.opt_time()?,
        })
    }
}

impl FromRow for Assignment {
    const COLUMNS: &'static str = "id, access_package_id, catalog_id, policy_id, target_id, state, status, start_at, \
        end_at, expired_at, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Assignment {
            id: c.parse()?,
            access_package_id: c.parse()?,
            catalog_id: c.parse()?,
            policy_id: c.opt_parse()?,
            target_id: c.parse()?,
            state: c.parse()?,
            status: c.text()?,
            window: Window { start: c.time()?, end: c.opt_time()? },
            expired_date_time: c.opt_time()?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
        })
    }
}

impl FromRow for Delivery {
    const COLUMNS: &'static str = "assignment_id, resource_role_id, action, state, attempts, detail";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Delivery {
            assignment_id: c.parse()?,
            resource_role_id: c.parse()?,
            action: enum_parse(&c.text()?)?,
            state: enum_parse(&c.text()?)?,
            attempts: u32::try_from(c.int()?).unwrap_or(u32::MAX),
            detail: c.opt_text()?,
        })
    }
}

impl FromRow for AuditEvent {
    const COLUMNS: &'static str = "id, at, activity, category, initiator, target_type, target_id, correlation_id, \
         result, detail, ip_address, modified_properties";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(AuditEvent {
            id: c.parse()?,
            at: c.time()?,
            activity: enum_parse(&c.text()?)?,
            category: c.text()?,
            initiator: serde_json::from_str(&c.text()?)
                .map_err(|e| StoreError::Internal(format!("stored initiator does not parse: {e}")))?,
            target_type: c.text()?,
            target_id: c.text()?,
            correlation_id: c.text()?,
            result: c.text()?,
            detail: c.opt_text()?,
            ip_address: c.opt_text()?,
            modified_properties: match c.opt_text()? {
                Some(m) => serde_json::from_str(&m)
                    .map_err(|e| StoreError::Internal(format!("stored modified properties do not parse: {e}")))?,
                None => Vec::new(),
            },
        })
    }
}

fn open_key(r: &AssignmentRequest) -> Option<String> {
    r.is_open().then(|| format!("{}:{}", r.target_id, r.access_package_id))
}
fn active_key(a: &Assignment) -> Option<String> {
    a.is_active().then(|| format!("{}:{}", a.target_id, a.access_package_id))
}

fn request_params(r: &AssignmentRequest) -> Result<Vec<Param>, StoreError> {
    Ok(vec![
        id(r.id),
        r.request_type.as_str().into(),
        r.state.as_str().into(),
        r.status.as_str().into(),
        id(r.access_package_id),
        id(r.catalog_id),
        opt_id(r.policy_id),
        id(r.target_id),
        opt_id(r.requestor_id),
        opt_id(r.assignment_id),
        Param::Text(open_key(r)),
        json(&r.detail)?.into(),
        ts(r.created_date_time),
        opt_ts(r.completed_date_time),
        ts(r.modified_date_time),
        opt_ts(r.due),
    ])
}

fn assignment_params(a: &Assignment) -> Vec<Param> {
    vec![
        id(a.id),
        id(a.access_package_id),
        id(a.catalog_id),
        opt_id(a.policy_id),
        id(a.target_id),
        a.state.as_str().into(),
        a.status.clone().into(),
        ts(a.window.start),
        opt_ts(a.window.end),
        opt_ts(a.expired_date_time),
        Param::Text(active_key(a)),
        ts(a.created_date_time),
        ts(a.modified_date_time),
    ]
}

/// Maps a unique violation of the one-open-request / one-active-assignment rule.
fn one_at_a_time(what: &'static str) -> impl FnOnce(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Conflict(_) => StoreError::Conflict(what.to_owned()),
        other => other,
    }
}

/// Writes a batch inside an open transaction.
pub(crate) async fn apply_in(tx: &mut Box<dyn Tx>, arrays: bool, batch: &Batch) -> StoreResult<()> {
    // Guests first: an invited guest exists before their assignment, and a reinstated one's
    // lock is taken before anything else of the batch is written.
    crate::sql_store::write_guests(tx, &batch.guests).await?;
    // Access reviews next: a decision written on an instance that is still in progress locks
    // the instance's row first, as the writes that move or end the instance do.
    crate::sql_store::write_reviews(tx, arrays, batch).await?;
    // Changes first: a change can close an open request whose key a new request takes.
    let mut fresh = Vec::new();
    let mut changed = Vec::new();
    let mut approvers = Vec::new();
    for put in &batch.requests {
        let r = put.row();
        match put {
            Put::New(_) => fresh.push(request_params(r)?),
            Put::Changed { read_at, .. } => {
                let mut p = request_params(r)?;
                p.push(ts(*read_at));
                changed.push(p);
            }
        }
        let mut mine: Vec<_> = r.detail.stages.iter().flat_map(|s| s.approvers.iter().copied()).collect();
        mine.sort_unstable();
        mine.dedup();
        approvers.extend(mine.into_iter().map(|a| vec![id(a), id(r.id)]));
    }
    let open = "The target already has an open request for this access package.";
    update_unchanged(tx, arrays, &REQUEST_UPDATE, changed, open, "assignment request").await?;
    insert_many(
        tx,
        arrays,
        "INSERT INTO assignment_requests (id, request_type, state, status, access_package_id, catalog_id, \
         policy_id, target_id, requestor_id, assignment_id, open_key, detail, created_at, completed_at, \
         modified_at, due)",
        &[T, T, T, T, T, T, T, T, T, T, T, T, I, I, I, I],
        fresh,
        "",
    )
    .await
    .map_err(one_at_a_time(open))?;
    insert_many(
        tx,
        arrays,
        "INSERT INTO request_approvers (user_id, request_id)",
        &[T, T],
        approvers,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    let mut changed = Vec::new();
    let mut fresh = Vec::new();
    for put in &batch.assignments {
        match put {
            Put::New(a) => fresh.push(assignment_params(a)),
            Put::Changed { row, read_at } => changed.push((row, *read_at)),
        }
    }
    update_assignments(tx, arrays, &changed).await?;
    insert_many(
        tx,
        arrays,
        "INSERT INTO assignments (id, access_package_id, catalog_id, policy_id, target_id, state, status, start_at, \
         end_at, expired_at, active_key, created_at, modified_at)",
        &[T, T, T, T, T, T, T, I, I, I, T, I, I],
        fresh,
        "",
    )
    .await
    .map_err(one_at_a_time("The target already has an active assignment to this access package."))?;
    // One row per key: a later write of the same delivery in one batch replaces an earlier one.
    let mut deliveries: Vec<&Delivery> = Vec::with_capacity(batch.deliveries.len());
    for d in &batch.deliveries {
        deliveries.retain(|x| {
            !(x.assignment_id == d.assignment_id && x.resource_role_id == d.resource_role_id && x.action == d.action)
        });
        deliveries.push(d);
    }
    insert_many(
        tx,
        arrays,
        "INSERT INTO deliveries (assignment_id, resource_role_id, action, state, attempts, detail)",
        &[T, T, T, T, I, T],
        deliveries
            .iter()
            .map(|d| {
                vec![
                    id(d.assignment_id),
                    id(d.resource_role_id),
                    enum_str(&d.action).into(),
                    enum_str(&d.state).into(),
                    i64::from(d.attempts).into(),
                    d.detail.clone().into(),
                ]
            })
            .collect(),
        "ON CONFLICT (assignment_id, resource_role_id, action) \
         DO UPDATE SET state = excluded.state, attempts = excluded.attempts, detail = excluded.detail",
    )
    .await?;
    let mut fresh = Vec::new();
    let mut changed = Vec::new();
    for put in &batch.callouts {
        let c = put.row();
        match put {
            Put::New(_) => fresh.push(vec![
                id(c.id),
                id(c.extension_id),
                opt_id(c.request_id),
                opt_id(c.assignment_id),
                c.stage.as_str().into(),
                c.status.as_str().into(),
                c.detail.clone().into(),
                ts(c.created_date_time),
                ts(c.modified_date_time),
            ]),
            Put::Changed { read_at, .. } => changed.push(vec![
                id(c.id),
                c.status.as_str().into(),
                c.detail.clone().into(),
                ts(c.modified_date_time),
                ts(*read_at),
            ]),
        }
    }
    let kind = "custom extension stage instance";
    update_unchanged(tx, arrays, &CALLOUT_UPDATE, changed, "A callout instance with this id exists.", kind).await?;
    insert_many(
        tx,
        arrays,
        "INSERT INTO callout_instances (id, extension_id, request_id, assignment_id, stage, status, detail, \
         created_at, modified_at)",
        &[T, T, T, T, T, T, T, I, I],
        fresh,
        "",
    )
    .await?;
    let job_row = |j: &NewJob| -> StoreResult<Vec<Param>> {
        Ok(vec![id(j.id), j.kind.name().into(), json(&j.kind)?.into(), ts(j.run_at), Param::Text(j.singleton.clone())])
    };
    let head = "INSERT INTO jobs (id, kind, payload, run_at, singleton)";
    let (single, plain): (Vec<&NewJob>, Vec<&NewJob>) = batch.jobs.iter().partition(|j| j.singleton.is_some());
    let types = &[T, T, T, I, T];
    insert_many(tx, arrays, head, types, plain.into_iter().map(job_row).collect::<StoreResult<_>>()?, "").await?;
    for j in single {
        insert_many(tx, false, head, types, vec![job_row(j)?], "ON CONFLICT DO NOTHING").await?;
    }
    insert_events(tx, arrays, &batch.events).await
}

/// Inserts audit events inside an open transaction, in bulk (see `insert_many`).
///
/// Events a person or an application caused carry the client address of the request being
/// served (`audit::origin`) unless they name one already. They are written unchained: the
/// worker's chainer gives them their place in the hash chain (`Store::chain_audit`).
pub(crate) async fn insert_events(tx: &mut Box<dyn Tx>, arrays: bool, events: &[AuditEvent]) -> StoreResult<()> {
    let origin = steward_app::audit::origin::current_ip();
    let rows = events
        .iter()
        .map(|e| {
            let ip = match (&e.ip_address, &e.initiator) {
                (Some(ip), _) => Some(ip.clone()),
                (None, Initiator::System) => None,
                (None, _) => origin.clone(),
            };
            let modified = if e.modified_properties.is_empty() { None } else { Some(json(&e.modified_properties)?) };
            let initiator_user = match &e.initiator {
                Initiator::User(u) => Some(u.clone()),
                _ => None,
            };
            Ok(vec![
                id(e.id),
                ts(e.at),
                enum_str(&e.activity).into(),
                e.activity.display_name().into(),
                e.category.clone().into(),
                json(&e.initiator)?.into(),
                e.target_type.clone().into(),
                e.target_id.clone().into(),
                e.correlation_id.clone().into(),
                e.result.clone().into(),
                e.detail.clone().into(),
                ip.into(),
                modified.into(),
                e.activity.display_name().to_lowercase().into(),
                initiator_user.into(),
            ])
        })
        .collect::<StoreResult<Vec<_>>>()?;
    insert_many(
        tx,
        arrays,
        "INSERT INTO audit_events (id, at, activity, display_name, category, initiator, target_type, target_id, \
         correlation_id, result, detail, ip_address, modified_properties, display_name_fold, initiator_user_id)",
        &[T, I, T, T, T, T, T, T, T, T, T, T, T, T, T],
        rows,
        "",
    )
    .await
}

/// Records the audit event of a change inside the change's open transaction, so both land or
/// neither does. A constraint violation here is the event's own (a reused event id), never
/// the change's: it is reported as `Internal`, so that callers that name a change's conflicts
/// (`Conflict`, `NotFound`) cannot mistake it for one of those.
pub(crate) async fn record_in(tx: &mut Box<dyn Tx>, event: &AuditEvent) -> StoreResult<()> {
    // One row: plain `VALUES` on both databases.
    insert_events(tx, false, std::slice::from_ref(event)).await.map_err(|e| match e {
        StoreError::Conflict(m) => StoreError::Internal(format!("the audit event {} was not written: {m}", event.id)),
        other => other,
    })
}

/// Most parameters one multi-row statement binds. Far below both databases' limits on
/// purpose: the cost per statement grows faster than linearly with its size (measured with
/// the expiry benchmark: 120–250 parameters is best on both; 4,000 is 5–8 times slower).
pub(crate) const MAX_PARAMS: usize = 240;

/// A column's SQL type in a bulk statement: text or bigint.
pub(crate) const T: &str = "text";
pub(crate) const I: &str = "bigint";

/// Inserts `rows` (one value per column of `types`): on PostgreSQL (`arrays`) as one
/// `head SELECT * FROM UNNEST($1::text[], …) tail` per table, elsewhere as
/// `head VALUES (…), (…) tail` over as many statements as the parameter limit needs.
pub(crate) async fn insert_many(
    tx: &mut Box<dyn Tx>,
    arrays: bool,
    head: &str,
    types: &[&str],
    rows: Vec<Vec<Param>>,
    tail: &str,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let cols = types.len();
    if arrays {
        let mut sql = format!("{head} SELECT * FROM UNNEST(");
        push_array_params(&mut sql, types);
        sql.push(')');
        if !tail.is_empty() {
            sql.push(' ');
            sql.push_str(tail);
        }
        tx.execute(&sql, &columns(types, &rows)?).await?;
        return Ok(());
    }
    let per = (MAX_PARAMS / cols.max(1)).max(1);
    for chunk in rows.chunks(per) {
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * cols * 6);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        push_tuples(&mut sql, chunk.len(), cols);
        if !tail.is_empty() {
            sql.push(' ');
            sql.push_str(tail);
        }
        let params: Vec<Param> = chunk.iter().flatten().cloned().collect();
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}

/// `$1::text[], $2::bigint[], …`
fn push_array_params(sql: &mut String, types: &[&str]) {
    use std::fmt::Write;
    for (i, t) in types.iter().enumerate() {
        let _ = write!(sql, "{}${}::{t}[]", if i == 0 { "" } else { ", " }, i + 1);
    }
}

/// Rows turned into one array parameter per column.
fn columns(types: &[&str], rows: &[Vec<Param>]) -> StoreResult<Vec<Param>> {
    let mut out = Vec::with_capacity(types.len());
    for (c, t) in types.iter().enumerate() {
        let cells = rows.iter().map(|r| r.get(c).cloned().unwrap_or(Param::Text(None)));
        out.push(if *t == I {
            Param::Ints(
                cells
                    .map(|p| match p {
                        Param::Int(v) => Ok(v),
                        _ => Err(StoreError::Internal(format!("column {c} expects an integer"))),
                    })
                    .collect::<StoreResult<_>>()?,
            )
        } else {
            Param::Texts(
                cells
                    .map(|p| match p {
                        Param::Text(v) => Ok(v),
                        _ => Err(StoreError::Internal(format!("column {c} expects text"))),
                    })
                    .collect::<StoreResult<_>>()?,
            )
        });
    }
    Ok(out)
}

/// `($1, $2), ($3, $4), …` for `rows` tuples of `cols` placeholders.
fn push_tuples(sql: &mut String, rows: usize, cols: usize) {
    use std::fmt::Write;
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            n += 1;
            let _ = write!(sql, "{}${n}", if c == 0 { "" } else { ", " });
        }
        sql.push(')');
    }
}

/// A table's conditional bulk update: the columns written besides `id`, with their types.
/// The rows given to `update_unchanged` are `id`, these columns in order, then the
/// `modified_at` the row had when it was read.
pub(crate) struct Update {
    pub table: &'static str,
    pub columns: &'static [(&'static str, &'static str)],
}

/// What a lifecycle decision changes on an assignment.
const ASSIGNMENT_UPDATE: Update = Update {
    table: "assignments",
    columns: &[
        ("state", T),
        ("status", T),
        ("start_at", I),
        ("end_at", I),
        ("expired_at", I),
        ("active_key", T),
        ("modified_at", I),
    ],
};

/// What a lifecycle decision changes on a callout instance.
const CALLOUT_UPDATE: Update =
    Update { table: "callout_instances", columns: &[("status", T), ("detail", T), ("modified_at", I)] };

/// A request is written whole (every column of `request_params` after the id).
const REQUEST_UPDATE: Update = Update {
    table: "assignment_requests",
    columns: &[
        ("request_type", T),
        ("state", T),
        ("status", T),
        ("access_package_id", T),
        ("catalog_id", T),
        ("policy_id", T),
        ("target_id", T),
        ("requestor_id", T),
        ("assignment_id", T),
        ("open_key", T),
        ("detail", T),
        ("created_at", I),
        ("completed_at", I),
        ("modified_at", I),
        ("due", I),
    ],
};

/// Conditional updates in bulk: each row only if it has not changed since it was read (its
/// `modified_at` is still the one read); if any has, the whole batch fails with `Conflict`.
/// One statement per table on PostgreSQL (`UPDATE … FROM UNNEST(…)`), one per
/// `MAX_PARAMS` elsewhere (`WITH v AS (VALUES …) UPDATE … FROM v`). A unique key refusing a
/// row is reported as the conflict `unique`.
pub(crate) async fn update_unchanged(
    tx: &mut Box<dyn Tx>,
    arrays: bool,
    spec: &Update,
    rows: Vec<Vec<Param>>,
    unique: &'static str,
    kind: &str,
) -> StoreResult<()> {
    use std::fmt::Write;
    if rows.is_empty() {
        return Ok(());
    }
    let mut types = vec![T];
    types.extend(spec.columns.iter().map(|c| c.1));
    types.push(I);
    let mut names = String::from("v (id");
    let mut set = format!("UPDATE {} SET ", spec.table);
    for (i, (name, _)) in spec.columns.iter().enumerate() {
        let _ = write!(names, ", {name}");
        let _ = write!(set, "{}{name} = v.{name}", if i == 0 { "" } else { ", " });
    }
    names.push_str(", read_at)");
    let filter = format!("WHERE {t}.id = v.id AND {t}.modified_at = v.read_at", t = spec.table);
    let per = if arrays { rows.len() } else { MAX_PARAMS / types.len() };
    for chunk in rows.chunks(per.max(1)) {
        let mut sql = String::new();
        if arrays {
            let _ = write!(sql, "{set} FROM UNNEST(");
            push_array_params(&mut sql, &types);
            let _ = write!(sql, ") AS {names} {filter}");
        } else {
            let _ = write!(sql, "WITH {names} AS (VALUES ");
            push_tuples(&mut sql, chunk.len(), types.len());
            let _ = write!(sql, ") {set} FROM v {filter}");
        }
        let params = if arrays { columns(&types, chunk)? } else { chunk.iter().flatten().cloned().collect() };
        let n = tx.execute(&sql, &params).await.map_err(one_at_a_time(unique))?;
        if n != chunk.len() as u64 {
            return Err(StoreError::Conflict(format!(
                "The {kind} was changed by someone else meanwhile; read it again."
            )));
        }
    }
    Ok(())
}

/// Conditional updates of assignments in bulk (`update_unchanged`): the columns a lifecycle
/// decision changes (state, status, window, end, active key, version).
async fn update_assignments(
    tx: &mut Box<dyn Tx>,
    arrays: bool,
    rows: &[(&Assignment, jiff::Timestamp)],
) -> StoreResult<()> {
    let values = rows
        .iter()
        .map(|(a, read_at)| {
            vec![
                id(a.id),
                a.state.as_str().into(),
                a.status.clone().into(),
                ts(a.window.start),
                opt_ts(a.window.end),
                opt_ts(a.expired_date_time),
                Param::Text(active_key(a)),
                ts(a.modified_date_time),
                ts(*read_at),
            ]
        })
        .collect();
    let unique = "The target already has an active assignment to this access package.";
    update_unchanged(tx, arrays, &ASSIGNMENT_UPDATE, values, unique, "assignment").await
}

/// Leases due jobs. The lease condition is repeated outside the subquery so that, on
/// PostgreSQL, a row another claimer leased meanwhile is re-checked and skipped.
pub(crate) async fn claim_in(
    tx: &mut Box<dyn Tx>,
    skip_locked: bool,
    owner: &str,
    now: jiff::Timestamp,
    lease_until: jiff::Timestamp,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    let lock = if skip_locked { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM jobs WHERE run_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
         ORDER BY run_at, id LIMIT $4{lock}) \
         AND run_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
         RETURNING id, payload, attempts"
    );
    let rows = tx.fetch(&sql, &[owner.into(), ts(lease_until), ts(now), i64::from(limit).into()]).await?;
    rows.iter().map(|r| job_from(&mut Cells::new(r))).collect()
}

/// Leases those of `ids` that are due and free, by primary key: no search of the due index,
/// which on PostgreSQL still holds the entries of finished jobs until the table is vacuumed.
/// A row another claimer leases meanwhile is re-checked by PostgreSQL and skipped.
pub(crate) async fn claim_by_id_in(
    tx: &mut Box<dyn Tx>,
    arrays: bool,
    owner: &str,
    ids: &[JobId],
    now: jiff::Timestamp,
    lease_until: jiff::Timestamp,
) -> StoreResult<Vec<Job>> {
    const SET: &str = "UPDATE jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
                       WHERE run_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) AND id";
    const BACK: &str = "RETURNING id, payload, attempts, run_at";
    let mut rows = Vec::with_capacity(ids.len());
    let head = [owner.into(), ts(lease_until), ts(now)];
    if arrays {
        let sql = format!("{SET} = ANY($4) {BACK}");
        let mut params = head.to_vec();
        params.push(Param::Texts(ids.iter().map(|j| Some(j.to_string())).collect()));
        rows.extend(tx.fetch(&sql, &params).await?);
    } else {
        for chunk in ids.chunks(MAX_PARAMS) {
            let marks: Vec<String> = (4..chunk.len() + 4).map(|i| format!("${i}")).collect();
            let sql = format!("{SET} IN ({}) {BACK}", marks.join(", "));
            let mut params = head.to_vec();
            params.extend(chunk.iter().map(|j| id(*j)));
            rows.extend(tx.fetch(&sql, &params).await?);
        }
    }
    let mut jobs = rows
        .iter()
        .map(|r| {
            let mut c = Cells::new(r);
            let job = job_from(&mut c)?;
            Ok((c.int()?, job))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    jobs.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.id.cmp(&y.id)));
    Ok(jobs.into_iter().map(|(_, j)| j).collect())
}

/// A job from the cells `id, payload, attempts`.
fn job_from(c: &mut Cells<'_>) -> StoreResult<Job> {
    let id = c.parse()?;
    let kind: JobKind = serde_json::from_str(&c.text()?)
        .map_err(|e| StoreError::Internal(format!("stored job {id} does not parse: {e}")))?;
    let attempts = u32::try_from(c.int()?).unwrap_or(u32::MAX);
    Ok(Job { id, kind, attempts })
}

/// Whether a batch only inserts (or upserts) rows: no row in it was read and must still be
/// unchanged, so nothing depends on how many rows a statement touched.
pub(crate) fn inserts_only(batch: &Batch) -> bool {
    // Guests' writes depend on one another's outcome (a lock, then a conditional update).
    batch.guests.is_empty()
        // Reviews' writes read (the state of an instance) and replace rows (reviewers).
        && batch.review_definitions.is_empty()
        && batch.review_instances.is_empty()
        && batch.review_decisions.is_empty()
        && batch.requests.iter().all(|p| matches!(p, Put::New(_)))
        && batch.assignments.iter().all(|p| matches!(p, Put::New(_)))
        && batch.callouts.iter().all(|p| matches!(p, Put::New(_)))
}

/// An inserting batch as one statement over array parameters (PostgreSQL): each table's
/// insert becomes a data-modifying `WITH` of one statement, which is atomic on its own. A
/// submitted request then costs one round trip to write instead of seven (`BEGIN`, five
/// inserts, `COMMIT`). `None` when the batch writes nothing.
pub(crate) async fn one_statement(batch: &Batch) -> StoreResult<Option<(String, Vec<Param>)>> {
    let sink = Statements::default();
    let mut tx: Box<dyn Tx> = Box::new(Collect(sink.clone()));
    apply_in(&mut tx, true, batch).await?;
    drop(tx);
    let statements = std::mem::take(&mut *sink.lock().map_err(|_| StoreError::Internal("poisoned".into()))?);
    Ok(combine(statements))
}

/// `WITH w1 AS (s1), …, s_n` with each statement's `$k` shifted past the parameters of the
/// statements before it.
fn combine(statements: Vec<(String, Vec<Param>)>) -> Option<(String, Vec<Param>)> {
    let count = statements.len();
    let mut sql = String::new();
    let mut params = Vec::new();
    for (i, (text, p)) in statements.into_iter().enumerate() {
        let shifted = shift_placeholders(&text, params.len());
        if i + 1 < count {
            sql.push_str(if i == 0 { "WITH " } else { ", " });
            sql.push_str(&format!("w{i} AS ({shifted})"));
        } else {
            if i > 0 {
                sql.push(' ');
            }
            sql.push_str(&shifted);
        }
        params.extend(p);
    }
    (count > 0).then_some((sql, params))
}

/// `$k` becomes `$(k + by)`. The store's statements carry no string literals with `$`.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(k) => out.push_str(&(k + by).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// Statements with their parameters, as a batch would run them.
type Statements = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<Param>)>>>;

/// A stand-in transaction that records the statements it is given instead of running them.
struct Collect(Statements);

#[async_trait::async_trait]
impl Tx for Collect {
    async fn fetch(&mut self, _sql: &str, _params: &[Param]) -> Result<Vec<crate::driver::Row>, StoreError> {
        Err(StoreError::Internal("a collected batch cannot read".into()))
    }
    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        self.0.lock().map_err(|_| StoreError::Internal("poisoned".into()))?.push((sql.to_owned(), params.to_vec()));
        Ok(1)
    }
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_shift_past_earlier_statements() {
        assert_eq!(shift_placeholders("VALUES ($1, $2::text[], $10)", 3), "VALUES ($4, $5::text[], $13)");
        assert_eq!(shift_placeholders("no params", 5), "no params");
        let (sql, params) = combine(vec![
            ("INSERT INTO a (x) VALUES ($1)".into(), vec![Param::Int(Some(1))]),
            ("INSERT INTO b (x, y) VALUES ($1, $2)".into(), vec![Param::Int(Some(2)), Param::Int(Some(3))]),
            ("INSERT INTO c (x) VALUES ($1)".into(), vec![Param::Int(Some(4))]),
        ])
        .unwrap();
        assert_eq!(
            sql,
            "WITH w0 AS (INSERT INTO a (x) VALUES ($1)), w1 AS (INSERT INTO b (x, y) VALUES ($2, $3)) \
             INSERT INTO c (x) VALUES ($4)"
        );
        assert_eq!(params.len(), 4);
        assert!(combine(Vec::new()).is_none());
    }
}
