//! The console's connections, for administrators only (`Principal::admin`, as the
//! `/v1.0/steward/connections` API): every connection with its kind and status, one connection
//! with Test connection (`connections::test_connection`, its outcome shown) and Discover
//! (`connections::discover`: what the target offers, searchable, 25 a page), each discovered
//! resource with a form adding it to a catalog (`catalogs::request_resource`, an `adminAdd`
//! resource request with the discovered origin system and id). Test and Discover only read the
//! target, so they are GET forms; adding a resource is a POST answered with a redirect.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use steward_app::AppError;
use steward_app::auth::AdminCap;
use steward_app::catalogs::{self, NewResourceRequest, ResourceRef};
use steward_app::connections;
use steward_app::query::{CATALOGS, ListQuery, RESOURCES};
use steward_domain::connection::{Connection, origin_system};
use steward_domain::enums::{ConnectionKind, RequestType};
use steward_domain::ids::{CatalogId, ConnectionId};
use steward_domain::role::Task;

use super::assignments::{Choice, PAGE, Pager, link, message_of, page_number, typed};
use crate::AppState;
use crate::portal::{
    Layout, Viewer, When, app_error_page, field, form_status, form_viewer, page_viewer, path_id, render, see_other,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/connections", get(list))
        .route("/admin/connections/{id}", get(show))
        .route("/admin/connections/{id}/resources", post(add_resource))
}

fn kind_text(k: ConnectionKind) -> &'static str {
    match k {
        ConnectionKind::PostgreSqlRoles => "PostgreSQL roles",
        ConnectionKind::Ldap => "LDAP directory",
        ConnectionKind::Scim => "SCIM application",
    }
}

fn reconciliation_text(c: &Connection) -> String {
    let r = c.reconciliation;
    let how =
        if r.authoritative { "authoritative: removes access nobody granted" } else { "reports access nobody granted" };
    if r.interval_minutes == 0 {
        format!("Compared only on demand; {how}.")
    } else {
        format!("Compared every {} minute(s); {how}.", r.interval_minutes)
    }
}

pub(crate) struct Row {
    id: String,
    name: String,
    kind: &'static str,
    origin_system: &'static str,
    credentials: bool,
    reconciliation: String,
    drift: usize,
}

#[derive(Template)]
#[template(path = "console/connections.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
}

/// The viewer's administrator capability, or the page refusing them.
fn admin(v: &Viewer) -> Result<AdminCap, AppError> {
    v.principal.admin()
}

async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match list_page(&state, &v).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn list_page(state: &AppState, v: &Viewer) -> Result<ListPage, AppError> {
    let cap = admin(v)?;
    let mut rows = Vec::new();
    for c in connections::list_connections(&state.services, cap).await? {
        let drift = state.services.store.drift(c.id).await?.len();
        rows.push(Row {
            id: c.id.to_string(),
            name: c.display_name.as_str().to_owned(),
            kind: kind_text(c.kind),
            origin_system: origin_system(c.kind),
            credentials: c.has_credentials,
            reconciliation: reconciliation_text(&c),
            drift,
        });
    }
    Ok(ListPage { layout: v.layout("admin"), rows })
}

// ---- One connection --------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct Params {
    test: Option<String>,
    discover: Option<String>,
    search: Option<String>,
    page: Option<String>,
    added: Option<String>,
}

/// What the page was asked to show.
#[derive(Clone, Default)]
struct View {
    test: bool,
    discover: bool,
    search: String,
    page: u32,
}

impl View {
    fn of(p: &Params) -> Self {
        Self {
            test: p.test.is_some(),
            discover: p.discover.is_some(),
            search: typed(p.search.as_deref()),
            page: page_number(p.page.as_deref()),
        }
    }

    fn from_fields(fields: &[(String, String)]) -> Self {
        Self {
            test: false,
            discover: true,
            search: typed(field(fields, "search")),
            page: page_number(field(fields, "page")),
        }
    }

    fn pairs(&self, page: u32) -> Vec<(&'static str, String)> {
        vec![
            ("discover", "1".to_owned()),
            ("search", self.search.clone()),
            ("page", if page > 1 { page.to_string() } else { String::new() }),
        ]
    }
}

pub(crate) struct Found {
    origin_id: String,
    name: String,
    roles: String,
    /// The catalogs already holding it, by id and name.
    in_catalogs: Vec<(String, String)>,
    error: Option<String>,
    /// The catalog chosen when the form is shown again.
    chosen: String,
}

pub(crate) struct Outcome {
    succeeded: bool,
    message: String,
}

#[derive(Template)]
#[template(path = "console/connection.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    name: String,
    description: String,
    kind: &'static str,
    origin_system: &'static str,
    credentials: bool,
    reconciliation: String,
    settings: Vec<(String, String)>,
    created: When,
    modified: When,
    outcome: Option<Outcome>,
    discovered: bool,
    discover_error: Option<String>,
    found: Vec<Found>,
    total: u64,
    pager: Pager,
    search: String,
    /// The discovery paging, as hidden fields of the add forms.
    hidden: Vec<(&'static str, String)>,
    catalogs: Vec<Choice>,
    notice: Option<(String, String)>,
}

/// The settings a page may show: the top-level plain values (credentials are never in them).
fn shown_settings(settings: &Value) -> Vec<(String, String)> {
    let Some(o) = settings.as_object() else { return Vec::new() };
    o.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: ConnectionId,
    view: &View,
    added: Option<CatalogId>,
    row_error: Option<(String, String, String)>,
) -> Result<(StatusCode, DetailPage), AppError> {
    let s = &state.services;
    let cap = admin(v)?;
    let c = connections::get_connection(s, cap, id).await?;
    let all_catalogs = catalogs::list_catalogs(s, &cap.everywhere(), &ListQuery::all(&CATALOGS)).await?.items;
    let catalog_name = |id: CatalogId| {
        all_catalogs.iter().find(|c| c.id == id).map_or_else(|| id.to_string(), |c| c.display_name.as_str().to_owned())
    };
    let outcome = if view.test {
        let o = connections::test_connection(s, cap, id).await?;
        Some(Outcome { succeeded: o.succeeded, message: o.message })
    } else {
        None
    };
    let mut status = StatusCode::OK;
    let (mut found, mut total, mut discover_error) = (Vec::new(), 0u64, None);
    if view.discover {
        match connections::discover(s, cap, id).await {
            Ok((_, resources)) => {
                let system = origin_system(c.kind);
                // Where the resources of this target already are.
                let q = ListQuery::from_options(
                    &RESOURCES,
                    &steward_odata::QueryOptions {
                        filter: Some(steward_odata::parse_filter(&format!("originSystem eq '{system}'"))?),
                        top: Some(steward_app::query::MAX_TOP),
                        ..steward_odata::QueryOptions::default()
                    },
                )?;
                let mut held: HashMap<String, Vec<CatalogId>> = HashMap::new();
                for r in catalogs::list_resources(s, &cap.everywhere(), &q).await?.items {
                    held.entry(r.origin_id).or_default().push(r.catalog_id);
                }
                let needle = view.search.to_lowercase();
                let matching: Vec<_> = resources
                    .into_iter()
                    .filter(|r| {
                        needle.is_empty()
                            || r.display_name.to_lowercase().contains(&needle)
                            || r.origin_id.to_lowercase().contains(&needle)
                    })
                    .collect();
                total = matching.len() as u64;
                let skip = (view.page.saturating_sub(1) as usize).saturating_mul(PAGE as usize);
                for r in matching.into_iter().skip(skip).take(PAGE as usize) {
                    let (error, chosen) = match &row_error {
                        Some((origin, m, chosen)) if *origin == r.origin_id => (Some(m.clone()), chosen.clone()),
                        _ => (None, String::new()),
                    };
                    found.push(Found {
                        in_catalogs: held
                            .get(&r.origin_id)
                            .map(|ids| ids.iter().map(|c| (c.to_string(), catalog_name(*c))).collect())
                            .unwrap_or_default(),
                        roles: r.roles.iter().map(|(_, name)| name.as_str()).collect::<Vec<_>>().join(", "),
                        name: r.display_name,
                        origin_id: r.origin_id,
                        error,
                        chosen,
                    });
                }
                if let Some((origin, m, _)) = &row_error
                    && !found.iter().any(|f| f.origin_id == *origin)
                {
                    discover_error = Some(m.clone());
                }
            }
            Err(e @ AppError::Upstream(_)) => {
                status = StatusCode::BAD_GATEWAY;
                discover_error = Some(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    let pager =
        Pager::new(view.page, found.len(), total, |n| link(&format!("/admin/connections/{id}"), &view.pairs(n)));
    Ok((
        status,
        DetailPage {
            layout: v.layout("admin"),
            id: c.id.to_string(),
            name: c.display_name.as_str().to_owned(),
            description: c.description.clone().unwrap_or_default(),
            kind: kind_text(c.kind),
            origin_system: origin_system(c.kind),
            credentials: c.has_credentials,
            reconciliation: reconciliation_text(&c),
            settings: shown_settings(&c.settings),
            created: When::of(c.created_date_time),
            modified: When::of(c.modified_date_time),
            outcome,
            discovered: view.discover,
            discover_error,
            found,
            total,
            pager,
            search: view.search.clone(),
            hidden: view.pairs(view.page).into_iter().filter(|(_, v)| !v.is_empty()).collect(),
            catalogs: all_catalogs
                .iter()
                .map(|c| Choice { value: c.id.to_string(), label: c.display_name.as_str().to_owned(), selected: false })
                .collect(),
            notice: added.map(|c| (c.to_string(), catalog_name(c))),
        },
    ))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: ConnectionId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let params = Query::<Params>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let added = params.added.as_deref().and_then(|c| c.parse::<CatalogId>().ok());
    match detail_page(&state, &v, id, &View::of(&params), added, None).await {
        Ok((status, p)) => render(status, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn add_resource(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let id: ConnectionId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let back = format!("/admin/connections/{id}?discover=1");
    let (_, fields, v) = match form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let view = View::from_fields(&fields);
    let origin = field(&fields, "origin_id").unwrap_or("").trim().to_owned();
    let chosen = field(&fields, "catalog").unwrap_or("").trim().to_owned();
    let result = add(&state, &v, id, &origin, &chosen).await;
    let (status, message) = match result {
        Ok(catalog) => {
            let mut pairs = view.pairs(view.page);
            pairs.push(("added", catalog.to_string()));
            return see_other(&link(&format!("/admin/connections/{id}"), &pairs));
        }
        Err(e @ (AppError::Forbidden(_) | AppError::Store(_))) => return app_error_page(e, Some(v.layout("admin"))),
        Err(AppError::NotFound { kind: "connection", id }) => {
            return app_error_page(AppError::NotFound { kind: "connection", id }, Some(v.layout("admin")));
        }
        Err(e) => (form_status(&e), message_of(&e)),
    };
    match detail_page(&state, &v, id, &view, None, Some((origin, message, chosen))).await {
        Ok((_, p)) => render(status, &p),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

/// Adds the discovered object `origin` to catalog `chosen` (a resource request, as
/// `POST resourceRequests` makes it); the catalog.
async fn add(
    state: &AppState,
    v: &Viewer,
    id: ConnectionId,
    origin: &str,
    chosen: &str,
) -> Result<CatalogId, AppError> {
    let cap = admin(v)?;
    let c = connections::get_connection(&state.services, cap, id).await?;
    if origin.is_empty() {
        return Err(AppError::Unprocessable("Choose a resource this connection discovered.".into()));
    }
    if chosen.is_empty() {
        return Err(AppError::Unprocessable("Choose the catalog to add the resource to.".into()));
    }
    let catalog: CatalogId = chosen
        .parse()
        .map_err(|_| AppError::Unprocessable("Choose the catalog to add the resource to from the list.".into()))?;
    let cap = v.principal.in_catalog(catalog, Task::EditCatalog)?;
    catalogs::request_resource(
        &state.services,
        cap,
        NewResourceRequest {
            request_type: RequestType::AdminAdd,
            catalog_id: catalog,
            resource: ResourceRef {
                id: None,
                origin_id: Some(origin.to_owned()),
                origin_system: Some(origin_system(c.kind).to_owned()),
            },
        },
    )
    .await?;
    Ok(catalog)
}
