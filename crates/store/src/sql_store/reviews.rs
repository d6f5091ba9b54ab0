//! Access reviews in the store (migration 0013): definitions (their Graph body kept as JSON and
//! read back through `DefinitionInput::parse`), instances, and decisions with who may decide
//! them (`review_decision_reviewers`), all written in bulk inside a lifecycle batch
//! (`write_reviews`, called by `lifecycle::apply_in`); and users' last sign-ins, which the
//! recommendations read.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Value as Json, json};
use steward_app::ports::Put;
use steward_domain::ids::{ReviewDecisionId, ReviewDefinitionId, ReviewInstanceId};
use steward_domain::review::{
    ApplyResult, Decision, DefinitionInput, Recommendation, ReviewDecision, ReviewDefinition, ReviewInstance,
    ReviewStatus, Reviewer, StageDecision, StageSettings,
};
use steward_domain::time::from_micros;

use super::*;
use crate::lifecycle::{I, MAX_PARAMS, T, Update, insert_many, update_unchanged};

/// A definition's input as Graph's JSON, the body `DefinitionInput::parse` reads back into the
/// same input: what `review_definitions.body` keeps.
pub(crate) fn definition_body(d: &DefinitionInput) -> Json {
    json!({
        "displayName": d.display_name,
        "descriptionForAdmins": d.description_for_admins,
        "descriptionForReviewers": d.description_for_reviewers,
        "scope": d.scope.to_graph(),
        "reviewers": d.reviewers.iter().map(Reviewer::to_graph).collect::<Vec<_>>(),
        "fallbackReviewers": d.fallback_reviewers.iter().map(Reviewer::to_graph).collect::<Vec<_>>(),
        "settings": d.settings.to_graph(),
        "stageSettings": d.stages.iter().map(StageSettings::to_graph).collect::<Vec<_>>(),
    })
}

/// The reverse of `definition_body`.
fn parse_body(text: &str) -> StoreResult<DefinitionInput> {
    let bad = |e: String| StoreError::Internal(format!("a stored access review definition does not parse: {e}"));
    match serde_json::from_str::<Json>(text).map_err(|e| bad(e.to_string()))? {
        Json::Object(body) => DefinitionInput::parse(&body).map_err(|e| bad(e.to_string())),
        _ => Err(bad("not an object".into())),
    }
}

/// A decision's earlier stages as stored (`history`): times in microseconds, as every column.
fn history_json(h: &[StageDecision]) -> String {
    let items: Vec<Json> = h
        .iter()
        .map(|s| {
            json!({
                "stage": s.stage,
                "decision": s.decision.as_str(),
                "justification": s.justification,
                "reviewedBy": s.reviewed_by.map(|u| u.to_string()),
                "reviewedAt": s.reviewed_at.map(to_micros),
            })
        })
        .collect();
    Json::Array(items).to_string()
}

fn parse_history(text: &str) -> StoreResult<Vec<StageDecision>> {
    let bad = |e: String| StoreError::Internal(format!("a stored decision history does not parse: {e}"));
    let items: Vec<Json> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    items
        .iter()
        .map(|s| {
            let text = |k: &str| s.get(k).and_then(Json::as_str);
            Ok(StageDecision {
                stage: s
                    .get("stage")
                    .and_then(Json::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| bad("no stage".into()))?,
                decision: Decision::parse(text("decision").unwrap_or("")).map_err(|e| bad(e.to_string()))?,
                justification: text("justification").map(str::to_owned),
                reviewed_by: text("reviewedBy").map(str::parse).transpose().map_err(|e| bad(format!("{e}")))?,
                reviewed_at: s.get("reviewedAt").and_then(Json::as_i64).map(from_micros),
            })
        })
        .collect()
}

/// Who may decide a decision as stored in `review_decisions.reviewers`: each once, sorted,
/// comma-separated (ids have no commas); with the list itself.
fn reviewers_text(who: &[UserId]) -> (String, Vec<UserId>) {
    let mut who = who.to_vec();
    who.sort_unstable();
    who.dedup();
    (who.iter().map(ToString::to_string).collect::<Vec<_>>().join(","), who)
}

fn parse_reviewers(text: &str) -> StoreResult<Vec<UserId>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| StoreError::Internal(format!("unparsable stored reviewer '{s}'"))))
        .collect()
}

fn count(c: &mut Cells<'_>) -> StoreResult<u32> {
    let n = c.int()?;
    u32::try_from(n).map_err(|_| StoreError::Internal(format!("unexpected stored count {n}")))
}

fn parsed<V>(r: Result<V, steward_domain::DomainError>) -> StoreResult<V> {
    r.map_err(|e| StoreError::Internal(format!("unparsable stored value: {e}")))
}

impl FromRow for ReviewDefinition {
    const COLUMNS: &'static str =
        "id, body, policy_id, status, created_by, created_at, modified_at, next_occurrence, next_start";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ReviewDefinition {
            id: c.parse()?,
            input: parse_body(&c.text()?)?,
            policy_id: c.opt_parse()?,
            status: parsed(ReviewStatus::parse(&c.text()?))?,
            created_by: c.opt_parse()?,
            created_date_time: c.time()?,
            last_modified_date_time: c.time()?,
            next_occurrence: count(c)?,
            next_start: c.opt_time()?,
        })
    }
}

impl FromRow for ReviewInstance {
    const COLUMNS: &'static str =
        "id, definition_id, occurrence, start_at, end_at, status, stage, stage_end, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ReviewInstance {
            id: c.parse()?,
            definition_id: c.parse()?,
            occurrence: count(c)?,
            start: c.time()?,
            end: c.time()?,
            status: parsed(ReviewStatus::parse(&c.text()?))?,
            stage: count(c)?,
            stage_end: c.time()?,
            last_modified_date_time: c.time()?,
        })
    }
}

impl FromRow for ReviewDecision {
    const COLUMNS: &'static str = "id, instance_id, definition_id, assignment_id, principal_id, access_package_id, \
        policy_id, stage, decision, justification, reviewed_by, reviewed_at, recommendation, recommendation_reason, \
        apply_result, applied_by, applied_at, history, reviewers, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ReviewDecision {
            id: c.parse()?,
            instance_id: c.parse()?,
            definition_id: c.parse()?,
            assignment_id: c.parse()?,
            principal_id: c.parse()?,
            access_package_id: c.parse()?,
            policy_id: c.opt_parse()?,
            stage: count(c)?,
            decision: parsed(Decision::parse(&c.text()?))?,
            justification: c.opt_text()?,
            reviewed_by: c.opt_parse()?,
            reviewed_at: c.opt_time()?,
            recommendation: parsed(Recommendation::parse(&c.text()?))?,
            recommendation_reason: c.opt_text()?,
            apply_result: parsed(ApplyResult::parse(&c.text()?))?,
            applied_by: c.opt_parse()?,
            applied_at: c.opt_time()?,
            history: parse_history(&c.text()?)?,
            reviewers: parse_reviewers(&c.text()?)?,
            last_modified_date_time: c.time()?,
        })
    }
}

fn opt_id<V: ToString>(v: Option<V>) -> Param {
    Param::Text(v.map(|v| v.to_string()))
}

/// A definition's columns after `id`, in the order of `DEFINITION_UPDATE`.
fn definition_params(d: &ReviewDefinition) -> Vec<Param> {
    let query = d.input.scope.query();
    vec![
        id(d.id),
        d.input.display_name.clone().into(),
        fold(&d.input.display_name),
        query.clone().into(),
        fold(&query),
        d.status.as_str().into(),
        opt_id(d.policy_id),
        opt_ts(d.next_start),
        i64::from(d.next_occurrence).into(),
        opt_id(d.created_by),
        ts(d.created_date_time),
        ts(d.last_modified_date_time),
        definition_body(&d.input).to_string().into(),
    ]
}

/// Every column but the id, in `definition_params` order.
const DEFINITION_UPDATE: Update = Update {
    table: "review_definitions",
    columns: &[
        ("display_name", T),
        ("display_name_fold", T),
        ("scope_query", T),
        ("scope_query_fold", T),
        ("status", T),
        ("policy_id", T),
        ("next_start", I),
        ("next_occurrence", I),
        ("created_by", T),
        ("created_at", I),
        ("modified_at", I),
        ("body", T),
    ],
};

fn instance_params(i: &ReviewInstance) -> Vec<Param> {
    vec![
        id(i.id),
        i64::from(i.occurrence).into(),
        ts(i.start),
        ts(i.end),
        i.status.as_str().into(),
        i64::from(i.stage).into(),
        ts(i.stage_end),
        ts(i.last_modified_date_time),
    ]
}

/// What may change on an instance (its definition never does).
const INSTANCE_UPDATE: Update = Update {
    table: "review_instances",
    columns: &[
        ("occurrence", I),
        ("start_at", I),
        ("end_at", I),
        ("status", T),
        ("stage", I),
        ("stage_end", I),
        ("modified_at", I),
    ],
};

/// The columns of a decision that change as it is decided, moves on and is applied, after its
/// id (the reviewed assignment, whose it is and the instance never change); `reviewers` as
/// `reviewers_text` gives them.
fn decision_changes(d: &ReviewDecision, reviewers: &str) -> Vec<Param> {
    vec![
        id(d.id),
        i64::from(d.stage).into(),
        d.decision.as_str().into(),
        d.justification.clone().into(),
        opt_id(d.reviewed_by),
        opt_ts(d.reviewed_at),
        d.recommendation.as_str().into(),
        d.recommendation_reason.clone().into(),
        d.apply_result.as_str().into(),
        opt_id(d.applied_by),
        opt_ts(d.applied_at),
        history_json(&d.history).into(),
        reviewers.into(),
        ts(d.last_modified_date_time),
    ]
}

const DECISION_UPDATE: Update = Update {
    table: "review_decisions",
    columns: &[
        ("stage", I),
        ("decision", T),
        ("justification", T),
        ("reviewed_by", T),
        ("reviewed_at", I),
        ("recommendation", T),
        ("recommendation_reason", T),
        ("apply_result", T),
        ("applied_by", T),
        ("applied_at", I),
        ("history", T),
        ("reviewers", T),
        ("modified_at", I),
    ],
};

/// Every column of a new decision: what never changes, then `decision_changes`.
fn decision_params(d: &ReviewDecision, reviewers: &str) -> Vec<Param> {
    let mut params = vec![
        id(d.id),
        id(d.instance_id),
        id(d.definition_id),
        id(d.assignment_id),
        id(d.principal_id),
        id(d.access_package_id),
        opt_id(d.policy_id),
    ];
    params.extend(decision_changes(d, reviewers).into_iter().skip(1));
    params
}

/// What updates of instances and decisions never run into (they change no unique column).
const NO_UNIQUE: &str = "A unique constraint refused the change.";

const INSERT_DECISIONS: &str = "INSERT INTO review_decisions (id, instance_id, definition_id, assignment_id, \
     principal_id, access_package_id, policy_id, stage, decision, justification, reviewed_by, reviewed_at, \
     recommendation, recommendation_reason, apply_result, applied_by, applied_at, history, reviewers, modified_at)";
const DECISION_TYPES: &[&str] = &[T, T, T, T, T, T, T, I, T, T, T, I, T, T, T, T, I, T, T, I];

/// A failed insert of `what` named: a duplicate (`unique`), or a missing parent (`parent`,
/// one of `parents`).
fn insert_failed(
    unique: &'static str,
    parent: &'static str,
    parents: BTreeSet<String>,
) -> impl FnOnce(StoreError) -> StoreError {
    move |e| {
        if is_violation(&e, FOREIGN_KEY_VIOLATION) {
            StoreError::not_found(parent, parents.into_iter().collect::<Vec<_>>().join(", "))
        } else if is_violation(&e, UNIQUE_VIOLATION) {
            StoreError::Conflict(unique.to_owned())
        } else {
            e
        }
    }
}

/// Writes a batch's access reviews inside its transaction: definitions, then instances, then
/// decisions with their reviewers. A `Put::Changed` lands only on the row as it was read
/// (`modified_at`), else the batch fails with `Conflict`; a decision is written only while its
/// instance is in progress at the decision's stage, unless the batch writes the instance too.
/// Many rows go in few statements (`insert_many`, `update_unchanged`).
pub(crate) async fn write_reviews(tx: &mut Box<dyn Tx>, arrays: bool, batch: &Batch) -> StoreResult<()> {
    if batch.review_definitions.is_empty() && batch.review_instances.is_empty() && batch.review_decisions.is_empty() {
        return Ok(());
    }
    let (mut fresh, mut changed) = (Vec::new(), Vec::new());
    for put in &batch.review_definitions {
        let mut p = definition_params(put.row());
        match put {
            Put::New(_) => fresh.push(p),
            Put::Changed { read_at, .. } => {
                p.push(ts(*read_at));
                changed.push(p);
            }
        }
    }
    let one_per_policy = "Another access review definition already keeps the reviews of this assignment policy.";
    update_unchanged(tx, arrays, &DEFINITION_UPDATE, changed, one_per_policy, "access review definition").await?;
    // A unique violation of a new definition is its id or its policy; the policy is the one
    // a caller can run into.
    insert_many(
        tx,
        arrays,
        "INSERT INTO review_definitions (id, display_name, display_name_fold, scope_query, scope_query_fold, \
         status, policy_id, next_start, next_occurrence, created_by, created_at, modified_at, body)",
        &[T, T, T, T, T, T, T, I, I, T, I, I, T],
        fresh,
        "",
    )
    .await
    .map_err(insert_failed(one_per_policy, "access review definition", BTreeSet::new()))?;

    let (mut fresh, mut changed) = (Vec::new(), Vec::new());
    let mut parents = BTreeSet::new();
    for put in &batch.review_instances {
        let i = put.row();
        match put {
            Put::New(_) => {
                let mut p = instance_params(i);
                p.insert(1, id(i.definition_id));
                fresh.push(p);
                parents.insert(i.definition_id.to_string());
            }
            Put::Changed { read_at, .. } => {
                let mut p = instance_params(i);
                p.push(ts(*read_at));
                changed.push(p);
            }
        }
    }
    update_unchanged(tx, arrays, &INSTANCE_UPDATE, changed, NO_UNIQUE, "access review instance").await?;
    insert_many(
        tx,
        arrays,
        "INSERT INTO review_instances (id, definition_id, occurrence, start_at, end_at, status, stage, stage_end, \
         modified_at)",
        &[T, T, I, I, I, T, I, I, I],
        fresh,
        "",
    )
    .await
    .map_err(insert_failed(
        "An access review instance with this id exists.",
        "access review definition",
        parents,
    ))?;

    write_decisions(tx, arrays, batch).await
}

async fn write_decisions(tx: &mut Box<dyn Tx>, arrays: bool, batch: &Batch) -> StoreResult<()> {
    if batch.review_decisions.is_empty() {
        return Ok(());
    }
    // The instances the decisions need in progress at their stage: those the batch does not
    // write itself. Each is checked with a write that takes its row lock until the batch
    // ends, so an instance cannot move on or end between the check and the commit: a writer
    // that moves it waits for this batch, then finds the decisions it read changed. The write
    // sets a column no key or index holds (`SET id = id` would make SQLite look through the
    // instance's decisions for the foreign key on every decision recorded).
    let written: HashSet<ReviewInstanceId> = batch.review_instances.iter().map(|p| p.row().id).collect();
    let needed: BTreeSet<(String, u32)> = batch
        .review_decisions
        .iter()
        .map(Put::row)
        .filter(|d| !written.contains(&d.instance_id))
        .map(|d| (d.instance_id.to_string(), d.stage))
        .collect();
    for (instance, stage) in needed {
        let n = tx
            .execute(
                "UPDATE review_instances SET modified_at = modified_at WHERE id = $1 AND status = $2 AND stage = $3",
                &[instance.into(), ReviewStatus::InProgress.as_str().into(), i64::from(stage).into()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Conflict(
                "The access review instance is no longer in progress at this decision's stage (it moved on or \
                 ended meanwhile, or is gone); read it again."
                    .into(),
            ));
        }
    }

    let mut replaced = Vec::new();
    for put in &batch.review_decisions {
        if let Put::Changed { row, .. } = put {
            replaced.push(row.id.to_string());
        }
    }
    let stored = stored_reviewers(tx, arrays, replaced).await?;
    let (mut fresh, mut changed, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    let mut reviewers = Vec::new();
    let mut parents = BTreeSet::new();
    for put in &batch.review_decisions {
        let d = put.row();
        let (text, who) = reviewers_text(&d.reviewers);
        match put {
            Put::New(_) => {
                fresh.push(decision_params(d, &text));
                parents.insert(d.instance_id.to_string());
            }
            Put::Changed { read_at, .. } => {
                let mut p = decision_changes(d, &text);
                p.push(ts(*read_at));
                changed.push(p);
                // Reviewers are rewritten only when they change (a stage begins): recording
                // and applying decisions leave them, and their index, alone.
                if stored.get(&d.id.to_string()) == Some(&text) {
                    continue;
                }
                moved.push(Some(d.id.to_string()));
            }
        }
        reviewers.extend(who.into_iter().map(|u| vec![id(d.id), id(u), id(d.instance_id)]));
    }
    update_unchanged(tx, arrays, &DECISION_UPDATE, changed, NO_UNIQUE, "access review decision").await?;
    insert_many(tx, arrays, INSERT_DECISIONS, DECISION_TYPES, fresh, "").await.map_err(insert_failed(
        "The access review instance already has a decision on this assignment.",
        "access review instance",
        parents,
    ))?;
    if arrays {
        if !moved.is_empty() {
            tx.execute("DELETE FROM review_decision_reviewers WHERE decision_id = ANY($1)", &[Param::Texts(moved)])
                .await?;
        }
    } else {
        for chunk in moved.chunks(MAX_PARAMS) {
            let sql = format!("DELETE FROM review_decision_reviewers WHERE decision_id IN ({})", marks(1, chunk.len()));
            let params: Vec<Param> = chunk.iter().cloned().map(Param::Text).collect();
            tx.execute(&sql, &params).await?;
        }
    }
    insert_many(
        tx,
        arrays,
        "INSERT INTO review_decision_reviewers (decision_id, user_id, instance_id)",
        &[T, T, T],
        reviewers,
        "",
    )
    .await
}

/// `$from, …` for `n` parameters.
fn marks(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The stored `reviewers` of the decisions `ids` that exist, by id, read in the batch's
/// transaction (a decision changed after this read fails its conditional update).
async fn stored_reviewers(
    tx: &mut Box<dyn Tx>,
    arrays: bool,
    ids: Vec<String>,
) -> StoreResult<HashMap<String, String>> {
    let mut rows = Vec::new();
    if arrays {
        if !ids.is_empty() {
            let keys = Param::Texts(ids.into_iter().map(Some).collect());
            rows = tx.fetch("SELECT id, reviewers FROM review_decisions WHERE id = ANY($1)", &[keys]).await?;
        }
    } else {
        // Reads take longer lists than writes (as `fetch_in` does).
        for chunk in ids.chunks(500) {
            let sql = format!("SELECT id, reviewers FROM review_decisions WHERE id IN ({})", marks(1, chunk.len()));
            let params: Vec<Param> = chunk.iter().map(|k| Param::Text(Some(k.clone()))).collect();
            rows.extend(tx.fetch(&sql, &params).await?);
        }
    }
    rows.iter()
        .map(|r| {
            let mut c = Cells::new(r);
            Ok((c.text()?, c.text()?))
        })
        .collect()
}

impl SqlStore {
    pub(super) async fn get_review_definition_impl(
        &self,
        d: ReviewDefinitionId,
    ) -> StoreResult<Option<ReviewDefinition>> {
        self.get("review_definitions", d.to_string()).await
    }

    pub(super) async fn list_review_definitions_impl(&self, q: &ListQuery) -> StoreResult<Page<ReviewDefinition>> {
        self.list(q).await
    }

    pub(super) async fn review_definition_of_policy_impl(&self, p: PolicyId) -> StoreResult<Option<ReviewDefinition>> {
        let sql = format!("SELECT {} FROM review_definitions WHERE policy_id = $1", ReviewDefinition::COLUMNS);
        Ok(self.rows(&sql, &[id(p)]).await?.into_iter().next())
    }

    pub(super) async fn delete_review_definition_impl(
        &self,
        d: ReviewDefinitionId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        // Its instances, their decisions and those decisions' reviewers go by foreign key.
        self.write_one(
            "DELETE FROM review_definitions WHERE id = $1",
            &[id(d)],
            Some(event),
            "access review definition",
            d,
        )
        .await
    }

    pub(super) async fn due_review_definitions_impl(
        &self,
        now: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ReviewDefinition>> {
        let filter = format!(
            "FROM review_definitions WHERE next_start <= $1 AND status <> '{}' ORDER BY next_start, id",
            ReviewStatus::Completed.as_str()
        );
        self.due_rows(&filter, ReviewDefinition::COLUMNS, now, limit).await
    }

    pub(super) async fn get_review_instance_impl(&self, i: ReviewInstanceId) -> StoreResult<Option<ReviewInstance>> {
        self.get("review_instances", i.to_string()).await
    }

    pub(super) async fn list_review_instances_impl(&self, q: &ListQuery) -> StoreResult<Page<ReviewInstance>> {
        self.list(q).await
    }

    pub(super) async fn ending_review_instances_impl(
        &self,
        now: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ReviewInstance>> {
        let filter = format!(
            "FROM review_instances WHERE status = '{}' AND stage_end <= $1 ORDER BY stage_end, id",
            ReviewStatus::InProgress.as_str()
        );
        self.due_rows(&filter, ReviewInstance::COLUMNS, now, limit).await
    }

    pub(super) async fn get_review_decision_impl(&self, d: ReviewDecisionId) -> StoreResult<Option<ReviewDecision>> {
        let sql = format!("SELECT {} FROM review_decisions WHERE id = $1", ReviewDecision::COLUMNS);
        Ok(self.rows::<ReviewDecision>(&sql, &[id(d)]).await?.into_iter().next())
    }

    pub(super) async fn list_review_decisions_impl(&self, q: &ListQuery) -> StoreResult<Page<ReviewDecision>> {
        self.list(q).await
    }

    pub(super) async fn review_decisions_of_impl(
        &self,
        instance: ReviewInstanceId,
        after: Option<ReviewDecisionId>,
        limit: u32,
    ) -> StoreResult<Vec<ReviewDecision>> {
        let columns = ReviewDecision::COLUMNS;
        match after {
            Some(after) => {
                let sql = format!(
                    "SELECT {columns} FROM review_decisions WHERE instance_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                );
                self.rows::<ReviewDecision>(&sql, &[id(instance), id(after), i64::from(limit).into()]).await
            }
            None => {
                let sql = format!("SELECT {columns} FROM review_decisions WHERE instance_id = $1 ORDER BY id LIMIT $2");
                self.rows::<ReviewDecision>(&sql, &[id(instance), i64::from(limit).into()]).await
            }
        }
    }

    pub(super) async fn review_decisions_by_id_impl(
        &self,
        ids: &[ReviewDecisionId],
    ) -> StoreResult<Vec<ReviewDecision>> {
        let sql = format!("SELECT {} FROM review_decisions WHERE id", ReviewDecision::COLUMNS);
        let mut found: Vec<ReviewDecision> = self.rows_in(&sql, distinct_keys(ids), "").await?;
        found.sort_unstable_by_key(|d| d.id);
        Ok(found)
    }

    pub(super) async fn review_decisions_of_principals_impl(
        &self,
        instance: ReviewInstanceId,
        principals: &[UserId],
    ) -> StoreResult<Vec<ReviewDecision>> {
        let keys = distinct_keys(principals);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let head =
            format!("SELECT {} FROM review_decisions WHERE instance_id = $1 AND principal_id", ReviewDecision::COLUMNS);
        let mut found: Vec<ReviewDecision> = Vec::with_capacity(keys.len());
        if self.driver.arrays() {
            let sql = format!("{head} = ANY($2)");
            found = self.rows(&sql, &[id(instance), Param::Texts(keys.into_iter().map(Some).collect())]).await?;
        } else {
            for chunk in keys.chunks(500) {
                let sql = format!("{head} IN ({})", marks(2, chunk.len()));
                let mut params = vec![id(instance)];
                params.extend(chunk.iter().map(|k| Param::Text(Some(k.clone()))));
                found.extend(self.rows::<ReviewDecision>(&sql, &params).await?);
            }
        }
        found.sort_unstable_by_key(|d| d.id);
        Ok(found)
    }

    pub(super) async fn note_sign_in_impl(&self, user: UserId, at: jiff::Timestamp) -> StoreResult<()> {
        // Only forward: two sign-ins noted at once, in either order, leave the later.
        self.write(
            "UPDATE users SET last_sign_in_at = $2 WHERE id = $1 AND (last_sign_in_at IS NULL OR last_sign_in_at < $2)",
            &[id(user), ts(at)],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn last_sign_ins_impl(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, jiff::Timestamp)>> {
        let rows = self
            .fetch_in(
                "SELECT id, last_sign_in_at FROM users WHERE last_sign_in_at IS NOT NULL AND id",
                distinct_keys(users),
                "",
            )
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let mut c = Cells::new(r);
                Ok((c.parse()?, c.time()?))
            })
            .collect::<StoreResult<Vec<(UserId, jiff::Timestamp)>>>()?;
        out.sort_unstable_by_key(|(u, _)| *u);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_decision_history_reads_back_as_written() {
        let h = vec![
            StageDecision {
                stage: 0,
                decision: Decision::Approve,
                justification: Some("knows them".into()),
                reviewed_by: Some(UserId::new()),
                reviewed_at: Some(from_micros(1_234_567)),
            },
            StageDecision {
                stage: 1,
                decision: Decision::NotReviewed,
                justification: None,
                reviewed_by: None,
                reviewed_at: None,
            },
        ];
        assert_eq!(parse_history(&history_json(&h)).unwrap(), h);
        assert_eq!(parse_history("[]").unwrap(), Vec::new());
    }
}
