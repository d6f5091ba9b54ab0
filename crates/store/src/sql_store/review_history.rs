//! Access review history reports in the store (migration 0014): definitions (their Graph body
//! kept as JSON and read back through `HistoryInput::parse`) and their instances with the CSV
//! report each made, which is read only when it is downloaded.

use serde_json::Value as Json;
use steward_app::reviews::history::{
    HistoryDefinition, HistoryDefinitionId, HistoryInstance, HistoryInstanceId, HistoryStatus, input_body,
};
use steward_domain::review_history::HistoryInput;

use super::*;

/// The reverse of `input_body`.
fn parse_body(text: &str) -> StoreResult<HistoryInput> {
    let bad =
        |e: String| StoreError::Internal(format!("a stored access review history definition does not parse: {e}"));
    match serde_json::from_str::<Json>(text).map_err(|e| bad(e.to_string()))? {
        Json::Object(body) => HistoryInput::parse(&body).map_err(|e| bad(e.to_string())),
        _ => Err(bad("not an object".into())),
    }
}

fn status(text: &str) -> StoreResult<HistoryStatus> {
    HistoryStatus::parse(text).map_err(|e| StoreError::Internal(format!("unparsable stored value: {e}")))
}

impl FromRow for HistoryDefinition {
    const COLUMNS: &'static str = "id, body, status, created_by, created_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(HistoryDefinition {
            id: c.parse()?,
            input: parse_body(&c.text()?)?,
            status: status(&c.text()?)?,
            created_by: c.opt_parse()?,
            created_date_time: c.time()?,
        })
    }
}

impl FromRow for HistoryInstance {
    const COLUMNS: &'static str =
        "id, definition_id, period_start, period_end, run_at, fulfilled_at, expiration_at, status";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(HistoryInstance {
            id: c.parse()?,
            definition_id: c.parse()?,
            period_start: c.time()?,
            period_end: c.time()?,
            run_at: c.time()?,
            fulfilled_at: c.opt_time()?,
            expiration_at: c.time()?,
            status: status(&c.text()?)?,
        })
    }
}

/// An instance with its report: `HistoryInstance::COLUMNS`, then `report`.
struct WithReport(HistoryInstance, String);

impl FromRow for WithReport {
    const COLUMNS: &'static str =
        "id, definition_id, period_start, period_end, run_at, fulfilled_at, expiration_at, status, report";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        let i = HistoryInstance::from_cells(c)?;
        Ok(WithReport(i, c.text()?))
    }
}

impl SqlStore {
    pub(super) async fn insert_review_history_impl(
        &self,
        d: &HistoryDefinition,
        i: &HistoryInstance,
        report: &str,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let duplicate = |e: StoreError| {
            if is_violation(&e, UNIQUE_VIOLATION) {
                StoreError::Conflict("An access review history definition or instance with this id exists.".into())
            } else if is_violation(&e, FOREIGN_KEY_VIOLATION) {
                StoreError::not_found("access review history definition", i.definition_id)
            } else {
                e
            }
        };
        let mut tx = self.driver.begin().await?;
        tx.execute(
            "INSERT INTO review_history_definitions (id, display_name, display_name_fold, status, created_by, \
             created_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                id(d.id),
                d.input.display_name.clone().into(),
                fold(&d.input.display_name),
                d.status.as_str().into(),
                Param::Text(d.created_by.map(|u| u.to_string())),
                ts(d.created_date_time),
                input_body(&d.input).to_string().into(),
            ],
        )
        .await
        .map_err(duplicate)?;
        tx.execute(
            "INSERT INTO review_history_instances (id, definition_id, period_start, period_end, run_at, \
             fulfilled_at, expiration_at, status, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                id(i.id),
                id(i.definition_id),
                ts(i.period_start),
                ts(i.period_end),
                ts(i.run_at),
                opt_ts(i.fulfilled_at),
                ts(i.expiration_at),
                i.status.as_str().into(),
                report.into(),
            ],
        )
        .await
        .map_err(duplicate)?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }

    pub(super) async fn get_review_history_definition_impl(
        &self,
        d: HistoryDefinitionId,
    ) -> StoreResult<Option<HistoryDefinition>> {
        self.get("review_history_definitions", d.to_string()).await
    }

    pub(super) async fn list_review_history_definitions_impl(
        &self,
        q: &ListQuery,
    ) -> StoreResult<Page<HistoryDefinition>> {
        self.list(q).await
    }

    pub(super) async fn delete_review_history_definition_impl(
        &self,
        d: HistoryDefinitionId,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        // Its instances and their reports go by foreign key.
        self.write_one(
            "DELETE FROM review_history_definitions WHERE id = $1",
            &[id(d)],
            Some(event),
            "access review history definition",
            d,
        )
        .await
    }

    pub(super) async fn review_history_instances_impl(
        &self,
        d: HistoryDefinitionId,
    ) -> StoreResult<Vec<HistoryInstance>> {
        let sql = format!(
            "SELECT {} FROM review_history_instances WHERE definition_id = $1 ORDER BY run_at, id",
            HistoryInstance::COLUMNS
        );
        self.rows(&sql, &[id(d)]).await
    }

    pub(super) async fn get_review_history_instance_impl(
        &self,
        i: HistoryInstanceId,
    ) -> StoreResult<Option<HistoryInstance>> {
        self.get("review_history_instances", i.to_string()).await
    }

    pub(super) async fn review_history_report_impl(
        &self,
        i: HistoryInstanceId,
    ) -> StoreResult<Option<(HistoryInstance, String)>> {
        let found: Option<WithReport> = self.get("review_history_instances", i.to_string()).await?;
        Ok(found.map(|WithReport(i, report)| (i, report)))
    }
}
