//! `/v1.0/auditLogs/directoryAudits`: the audit trail in Graph's `directoryAudit` shape, with
//! `$filter` (activityDateTime, activityDisplayName, category, correlationId, result,
//! initiatedBy/user/id, targetResources/any(t: t/id eq …)), `$orderby`, `$top`, `$count` and
//! paging; newest first unless ordered otherwise. Read-only, for administrators
//! (`steward_app::audit::trail` decides and renders).

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Serialize, Serializer};
use serde_json::Value;
use steward_app::audit::trail::{self, Names};
use steward_app::ports::Page;
use steward_app::query::DIRECTORY_AUDITS;
use steward_odata::ExpandItem;

use crate::AppState;
use crate::api::Api;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::odata::{Cx, GraphEntity, OData, check_shape, entity_response, page_response};
use crate::routes::path_id;

type R = Result<Response, ApiError>;

const SET: &str = "auditLogs/directoryAudits";

pub fn api() -> Api {
    Api::new()
        .tag("auditLogs")
        .list(
            "/v1.0/auditLogs/directoryAudits",
            list,
            "List the audit trail (administrators): newest first, filterable by time, activity, category, \
             correlation id, result, initiating user and target",
        )
        .get("/v1.0/auditLogs/directoryAudits/{id}", get, "Get one audit record (administrators)")
}

/// A rendered `directoryAudit`.
#[derive(Debug, Clone)]
struct View(Value);

impl Serialize for View {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[async_trait]
impl GraphEntity for View {
    const TYPE: &'static str = "directoryAudit";
    const PROPS: &'static [&'static str] = &[
        "category",
        "correlationId",
        "result",
        "resultReason",
        "activityDisplayName",
        "activityDateTime",
        "loggedByService",
        "operationType",
        "initiatedBy",
        "targetResources",
        "additionalDetails",
    ];
    const NAVS: &'static [&'static str] = &[];
    fn check_expand(nav: &'static str, _item: &ExpandItem) -> Result<(), ApiError> {
        Err(ApiError::bad_request(format!("Navigation property '{nav}' cannot be expanded.")))
    }
    async fn expand(&self, _cx: &Cx<'_>, nav: &'static str, _item: &ExpandItem) -> Result<Value, ApiError> {
        Err(ApiError::bad_request(format!("Navigation property '{nav}' cannot be expanded.")))
    }
}

async fn list(State(st): State<AppState>, Admin(p, _): Admin, od: OData) -> R {
    check_shape::<View>(od.options.select.as_ref(), &od.options.expand)?;
    let q = od.list_query(&DIRECTORY_AUDITS)?;
    let ordered = !od.options.orderby.is_empty();
    let page = trail::list(&st.services, &p, q.clone(), ordered).await?;
    let names = Names::of(&*st.services.store, &page.items).await?;
    let items = page.items.iter().map(|e| View(trail::directory_audit(e, &names))).collect();
    // The page's own query (with the order it ran in) makes the next link.
    let mut ran = q;
    if !ordered {
        for sort in &mut ran.order {
            sort.descending = true;
        }
    }
    let page = Page { items, count: page.count, next: page.next };
    page_response(&Cx::new(&st.services, &p), &od, &ran, page, SET).await
}

async fn get(State(st): State<AppState>, Admin(p, _): Admin, od: OData, Path(id): Path<String>) -> R {
    let e = trail::get(&st.services, &p, path_id(&id)?).await?;
    let names = Names::of(&*st.services.store, std::slice::from_ref(&e)).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &View(trail::directory_audit(&e, &names)), StatusCode::OK, SET)
        .await
}
