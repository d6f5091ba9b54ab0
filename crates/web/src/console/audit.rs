//! The console's audit page, for administrators only. Steward records an audit event with every
//! change (in the transaction of the change), but the store can read them back only per
//! correlation id (`Store::events_of`: one catalog's, package's, policy's or connection's
//! history, or one request's events); there is no list of every event yet. So this page says
//! that plainly and offers what can be read: the history of one object, by its id, 25 a page.
//! The full, searchable trail arrives with the audit issue.

use askama::Template;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use steward_app::AppError;

use super::assignments::{PAGE, Pager, link, page_number, typed};
use crate::AppState;
use crate::portal::{Layout, Viewer, When, app_error_page, page_viewer, render};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/admin/audit", get(show))
}

#[derive(Debug, Default, Deserialize)]
struct Params {
    object: Option<String>,
    page: Option<String>,
}

pub(crate) struct EventRow {
    when: When,
    what: String,
    who: String,
    target: String,
    result: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    layout: Layout,
    object: String,
    looked_up: bool,
    rows: Vec<EventRow>,
    total: u64,
    pager: Pager,
    error: Option<String>,
}

async fn show(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = Query::<Params>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let object = typed(params.object.as_deref());
    let page = page_number(params.page.as_deref());
    match audit_page(&state, &v, &object, page).await {
        Ok((status, p)) => render(status, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn audit_page(
    state: &AppState,
    v: &Viewer,
    object: &str,
    page: u32,
) -> Result<(StatusCode, AuditPage), AppError> {
    v.principal.admin()?;
    let mut page_of = AuditPage {
        layout: v.layout("admin"),
        object: object.to_owned(),
        looked_up: false,
        rows: Vec::new(),
        total: 0,
        pager: Pager::new(1, 0, 0, |_| String::new()),
        error: None,
    };
    if object.is_empty() {
        return Ok((StatusCode::OK, page_of));
    }
    // Correlation ids are object ids: GUIDs.
    if uuid::Uuid::parse_str(object).is_err() {
        page_of.error = Some(format!(
            "'{object}' is not an id. Type the id (a GUID) of a catalog, access package, policy, connection or request."
        ));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page_of));
    }
    let events = state.services.store.events_of(object).await?;
    page_of.looked_up = true;
    page_of.total = events.len() as u64;
    let skip = (page.saturating_sub(1) as usize).saturating_mul(PAGE as usize);
    for e in events.into_iter().skip(skip).take(PAGE as usize) {
        page_of.rows.push(EventRow {
            when: When::of(e.at),
            what: e.activity.display_name().to_owned(),
            who: super::requests::initiator(state, &e.initiator).await,
            target: format!("{} {}", e.target_type, e.target_id),
            result: e.result.clone(),
            detail: e.detail.clone().unwrap_or_default(),
        });
    }
    page_of.pager = Pager::new(page, page_of.rows.len(), page_of.total, |n| {
        link(
            "/admin/audit",
            &[("object", object.to_owned()), ("page", if n > 1 { n.to_string() } else { String::new() })],
        )
    });
    Ok((StatusCode::OK, page_of))
}
