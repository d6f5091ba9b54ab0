//! `/v1.0/identityGovernance/accessReviews/historyDefinitions`: access review history reports in
//! Graph's shapes (`accessReviewHistoryDefinition`, `accessReviewHistoryInstance`), with
//! `generateDownloadUri`, and Steward's own download of a report as CSV (`…/report.csv`, where
//! the `downloadUri` points). Handlers read HTTP and render; `steward_app::reviews::history`
//! decides who may (administrators) and makes the reports.

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use steward_app::ports::Page;
use steward_app::query::{ListQuery, REVIEW_HISTORY_DEFINITIONS};
use steward_app::reviews::history::{self, HistoryDefinition, HistoryDefinitionId, HistoryInstance, HistoryInstanceId};
use steward_domain::review_history::HistoryInput;
use steward_domain::time::format_datetime;
use steward_odata::ExpandItem;

use crate::AppState;
use crate::api::Api;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::odata::{Cx, GraphEntity, OData, check_shape, entity_response, page_response};
use crate::routes::{no_body, no_content, path_id};

type R = Result<Response, ApiError>;

const SET: &str = "identityGovernance/accessReviews/historyDefinitions";
const PATH: &str = "/v1.0/identityGovernance/accessReviews/historyDefinitions";

pub fn api() -> Api {
    Api::new()
        .tag("accessReviews")
        .list(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions",
            list_definitions,
            "List access review history reports (administrators)",
        )
        .create(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions",
            create_definition,
            "Create a one-time access review history report over a period: made at once, downloadable as CSV",
        )
        .get(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}",
            get_definition,
            "Get an access review history report's definition",
        )
        .delete(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}",
            delete_definition,
            "Delete an access review history report with its instances",
        )
        .list(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances",
            list_instances,
            "List the runs of an access review history report",
        )
        .get(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances/{iid}",
            get_instance,
            "Get a run of an access review history report",
        )
        .call(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances/{iid}/generateDownloadUri",
            generate_download_uri,
            "The run with its downloadUri: Steward's report.csv route, read with the same authorization",
        )
        .download(
            "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances/{iid}/report.csv",
            report_csv,
            "Download a run's report as CSV (Steward's own; where downloadUri points)",
        )
}

/// A rendered Graph object: its JSON built here, serialized as is.
#[derive(Debug, Clone)]
struct View<const K: u8>(Value);

impl<const K: u8> Serialize for View<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

const DEF: u8 = 0;
const INST: u8 = 1;

fn no_nav(nav: &str) -> ApiError {
    ApiError::bad_request(format!("Navigation property '{nav}' cannot be expanded."))
}

#[async_trait]
impl GraphEntity for View<DEF> {
    const TYPE: &'static str = "accessReviewHistoryDefinition";
    const PROPS: &'static [&'static str] = &[
        "displayName",
        "decisions",
        "reviewHistoryPeriodStartDateTime",
        "reviewHistoryPeriodEndDateTime",
        "scopes",
        "scheduleSettings",
        "status",
        "createdBy",
        "createdDateTime",
    ];
    const NAVS: &'static [&'static str] = &[];
    fn check_expand(nav: &'static str, _item: &ExpandItem) -> Result<(), ApiError> {
        Err(no_nav(nav))
    }
    async fn expand(&self, _cx: &Cx<'_>, nav: &'static str, _item: &ExpandItem) -> Result<Value, ApiError> {
        Err(no_nav(nav))
    }
}

#[async_trait]
impl GraphEntity for View<INST> {
    const TYPE: &'static str = "accessReviewHistoryInstance";
    const PROPS: &'static [&'static str] = &[
        "reviewHistoryPeriodStartDateTime",
        "reviewHistoryPeriodEndDateTime",
        "runDateTime",
        "fulfilledDateTime",
        "expirationDateTime",
        "status",
        "downloadUri",
    ];
    const NAVS: &'static [&'static str] = &[];
    fn check_expand(nav: &'static str, _item: &ExpandItem) -> Result<(), ApiError> {
        Err(no_nav(nav))
    }
    async fn expand(&self, _cx: &Cx<'_>, nav: &'static str, _item: &ExpandItem) -> Result<Value, ApiError> {
        Err(no_nav(nav))
    }
}

async fn definition_view(st: &AppState, d: &HistoryDefinition) -> Result<View<DEF>, ApiError> {
    let by = match d.created_by {
        Some(u) => st.services.store.get_user(u).await.map_err(steward_app::AppError::from)?,
        None => None,
    };
    let created_by = match (by, d.created_by) {
        (Some(u), _) => json!({"@odata.type": "#microsoft.graph.userIdentity", "id": u.id,
            "displayName": u.display_name.as_str(), "userPrincipalName": u.user_principal_name}),
        (None, Some(id)) => json!({"@odata.type": "#microsoft.graph.userIdentity", "id": id,
            "displayName": null, "userPrincipalName": null}),
        (None, None) => Value::Null,
    };
    let i = &d.input;
    Ok(View(json!({
        "id": d.id.to_string(),
        "displayName": i.display_name,
        "decisions": i.decisions.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        "reviewHistoryPeriodStartDateTime": format_datetime(i.period_start),
        "reviewHistoryPeriodEndDateTime": format_datetime(i.period_end),
        "scopes": i.scopes.iter().map(history::scope_json).collect::<Vec<_>>(),
        "scheduleSettings": null,
        "status": d.status.as_str(),
        "createdBy": created_by,
        "createdDateTime": format_datetime(d.created_date_time),
    })))
}

fn instance_view(i: &HistoryInstance, download_uri: Option<String>) -> View<INST> {
    View(json!({
        "id": i.id.to_string(),
        "reviewHistoryPeriodStartDateTime": format_datetime(i.period_start),
        "reviewHistoryPeriodEndDateTime": format_datetime(i.period_end),
        "runDateTime": format_datetime(i.run_at),
        "fulfilledDateTime": i.fulfilled_at.map(format_datetime),
        "expirationDateTime": format_datetime(i.expiration_at),
        "status": i.status.as_str(),
        "downloadUri": download_uri,
    }))
}

fn instances_set(id: HistoryDefinitionId) -> String {
    format!("{SET}('{id}')/instances")
}

/// A history definition body, parsed by the domain (which names what is wrong).
fn definition_input(headers: &HeaderMap, bytes: &Bytes) -> Result<HistoryInput, ApiError> {
    let map = super::reviews::typed_object(headers, bytes, "accessReviewHistoryDefinition")?;
    Ok(HistoryInput::parse(&map).map_err(steward_app::AppError::from)?)
}

async fn create_definition(
    State(st): State<AppState>,
    Admin(p, _): Admin,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let input = definition_input(&headers, &bytes)?;
    let (d, _) = history::create(&st.services, &p, input).await?;
    let view = definition_view(&st, &d).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::CREATED, SET).await
}

async fn list_definitions(State(st): State<AppState>, Admin(p, _): Admin, od: OData) -> R {
    check_shape::<View<DEF>>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&REVIEW_HISTORY_DEFINITIONS)?;
    let page = history::list_definitions(&st.services, &p, &q).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for d in &page.items {
        items.push(definition_view(&st, d).await?);
    }
    let page = Page { items, count: page.count, next: page.next };
    page_response(&Cx::new(&st.services, &p), &od, &q, page, SET).await
}

async fn get_definition(State(st): State<AppState>, Admin(p, _): Admin, od: OData, Path(id): Path<String>) -> R {
    let d = history::get_definition(&st.services, &p, path_id(&id)?).await?;
    let view = definition_view(&st, &d).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &view, StatusCode::OK, SET).await
}

async fn delete_definition(State(st): State<AppState>, Admin(p, _): Admin, Path(id): Path<String>) -> R {
    history::delete_definition(&st.services, &p, path_id(&id)?).await?;
    Ok(no_content())
}

async fn list_instances(State(st): State<AppState>, Admin(p, _): Admin, od: OData, Path(id): Path<String>) -> R {
    check_shape::<View<INST>>(od.options.select.as_ref(), &od.options.expand)?;
    let id: HistoryDefinitionId = path_id(&id)?;
    let (_, instances) = history::list_instances(&st.services, &p, id).await?;
    let items = instances.iter().map(|i| instance_view(i, None)).collect();
    let page = Page { items, count: None, next: None };
    let q = ListQuery::all(&REVIEW_HISTORY_DEFINITIONS);
    page_response(&Cx::new(&st.services, &p), &od, &q, page, &instances_set(id)).await
}

async fn get_instance(
    State(st): State<AppState>,
    Admin(p, _): Admin,
    od: OData,
    Path((id, instance)): Path<(String, String)>,
) -> R {
    let id: HistoryDefinitionId = path_id(&id)?;
    let i = history::get_instance(&st.services, &p, id, path_id(&instance)?).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &instance_view(&i, None), StatusCode::OK, &instances_set(id)).await
}

/// The instance with `downloadUri`: the absolute URL of its `report.csv` on this server (its
/// public URL when configured), read with the same bearer token as the rest of the API.
async fn generate_download_uri(
    State(st): State<AppState>,
    Admin(p, _): Admin,
    od: OData,
    Path((id, instance)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let (id, instance): (HistoryDefinitionId, HistoryInstanceId) = (path_id(&id)?, path_id(&instance)?);
    no_body(&headers, &bytes)?;
    let i = history::get_instance(&st.services, &p, id, instance).await?;
    let uri = format!("{}{PATH}/{id}/instances/{instance}/report.csv", od.base());
    entity_response(&Cx::new(&st.services, &p), &od, &instance_view(&i, Some(uri)), StatusCode::OK, &instances_set(id))
        .await
}

async fn report_csv(State(st): State<AppState>, Admin(p, _): Admin, Path((id, instance)): Path<(String, String)>) -> R {
    let (id, instance): (HistoryDefinitionId, HistoryInstanceId) = (path_id(&id)?, path_id(&instance)?);
    let (_, csv) = history::download(&st.services, &p, id, instance).await?;
    let mut resp = csv.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"access-review-history-{instance}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
