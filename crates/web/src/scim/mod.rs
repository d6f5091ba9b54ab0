//! The inbound SCIM 2.0 server at `/scim/v2` (RFC 7644), through which an identity provider
//! provisions Steward's directory: `/Users`, `/Groups` (list with filter, paging, sorting and
//! attribute selection; `.search`; create, read, replace, patch, delete), and discovery
//! (`/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`).
//!
//! A protocol of its own, mounted beside the Graph API rather than in its route registry (so it
//! is not in `/openapi.json`): its own bearer token (`ScimAuthenticator`; Graph's tokens are not
//! accepted here), its own error shape (`error`), `application/scim+json` (requests may also
//! say `application/json`), and entity tags: `meta.version` and `ETag` on every resource,
//! `If-None-Match` on reads (304), `If-Match` on writes (412 when it no longer holds).
//! Handlers extract, call `steward_app::scim`, and render; no business rules live here.

pub mod discovery;
pub mod error;
pub mod params;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use steward_app::Services;
use steward_app::scim::query::{ResourceKind, ScimPage};
use steward_app::scim::resource::{self, group_etag, user_etag};
use steward_app::scim::{self, LIST_RESPONSE, ScimAuthenticator, ScimCap, ScimError, ScimGroup, ScimUser};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use self::error::{SCIM_JSON, ScimErr};
use self::params::{ListParams, Projection};

/// Where the SCIM server is mounted.
pub const PREFIX: &str = "/scim/v2";

/// What the SCIM handlers get.
#[derive(Clone)]
pub struct ScimState {
    pub services: Services,
    pub auth: ScimAuthenticator,
    /// The externally visible base URL (scheme://host[:port]); else the Host header's.
    pub public_url: Option<String>,
}

/// The SCIM router, to be nested at `PREFIX`.
pub fn router(state: ScimState, body_limit: usize, timeout: Duration) -> Router {
    let discovery_only = || get(discovery_get);
    Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", post(search_users))
        .route("/Users/{id}", get(get_user).put(replace_user).patch(patch_user).delete(delete_user))
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", post(search_groups))
        .route("/Groups/{id}", get(get_group).put(replace_group).patch(patch_group).delete(delete_group))
        .route("/.search", post(search_everything))
        .route("/ServiceProviderConfig", discovery_only())
        .route("/ResourceTypes", discovery_only())
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", discovery_only())
        .route("/Schemas/{id}", get(schema))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(error::scim_errors))
}

async fn not_found() -> ScimErr {
    ScimErr(ScimError::new(404, None, "No SCIM endpoint is at this path."))
}

/// The authenticated SCIM client of a request.
pub struct Scim(pub ScimCap);

impl FromRequestParts<ScimState> for Scim {
    type Rejection = ScimErr;

    async fn from_request_parts(parts: &mut Parts, state: &ScimState) -> Result<Self, ScimErr> {
        let bearer =
            parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
                v.split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim())
            });
        Ok(Scim(state.auth.authenticate(bearer)?))
    }
}

/// The base of the SCIM server's URLs: `…/scim/v2`.
pub struct Base(pub String);

impl FromRequestParts<ScimState> for Base {
    type Rejection = ScimErr;

    async fn from_request_parts(parts: &mut Parts, state: &ScimState) -> Result<Self, ScimErr> {
        let root = match &state.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
                format!("http://{host}")
            }
        };
        Ok(Base(format!("{root}{PREFIX}")))
    }
}

/// A JSON body, as `application/scim+json` or `application/json`.
fn read_body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, ScimErr> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let mime = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != SCIM_JSON && mime != "application/json" {
            return Err(ScimErr(ScimError::new(
                415,
                None,
                format!(
                    "Content-Type '{}' is not supported; send application/scim+json.",
                    steward_domain::text::clip(&mime, 60)
                ),
            )));
        }
    }
    if bytes.is_empty() {
        return Err(ScimErr(ScimError::invalid_syntax("The request needs a JSON body.")));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ScimErr(ScimError::invalid_syntax(format!("The body is not valid JSON: {e}."))))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A SCIM JSON response.
fn respond(status: StatusCode, body: &Value, etag: Option<&str>, location: Option<&str>) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    if let Some(Ok(v)) = etag.map(HeaderValue::from_str) {
        h.insert(header::ETAG, v);
    }
    if let Some(Ok(v)) = location.map(HeaderValue::from_str) {
        h.insert(header::LOCATION, v);
    }
    r
}

/// The query string's pairs, decoded.
fn pairs(uri: &axum::http::Uri) -> Result<Vec<(String, String)>, ScimErr> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ScimErr(ScimError::invalid_syntax(format!("The query string is not valid: {e}"))))
}

/// A user as rendered, with its entity tag.
fn user_body(u: &ScimUser, base: &str) -> (Value, String) {
    let etag = user_etag(u);
    let mut v = resource::render_user(u, base);
    let location = format!("{base}/Users/{}", u.user.id);
    if let Value::Object(m) = &mut v {
        m.insert("meta".into(), resource::meta("User", u.user.created_date_time, u.modified, &etag, &location));
    }
    (v, etag)
}

fn group_body(g: &ScimGroup, base: &str) -> (Value, String) {
    let etag = group_etag(g);
    let mut v = resource::render_group(g, base);
    let location = format!("{base}/Groups/{}", g.group.id);
    if let Value::Object(m) = &mut v {
        m.insert("meta".into(), resource::meta("Group", g.group.created_date_time, g.modified, &etag, &location));
    }
    (v, etag)
}

/// A single resource's response: 304 when `If-None-Match` names its tag.
fn one(status: StatusCode, body: (Value, String), headers: &HeaderMap, projection: &Projection) -> Response {
    let (v, etag) = body;
    if status == StatusCode::OK
        && header_str(headers, header::IF_NONE_MATCH).is_some_and(|m| scim::etag_matches(m, &etag))
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return r;
    }
    let location = v.get("meta").and_then(|m| m.get("location")).and_then(Value::as_str).map(str::to_owned);
    let location = if status == StatusCode::CREATED { location } else { None };
    respond(status, &projection.apply(v), Some(&etag), location.as_deref())
}

fn list_response<T>(page: ScimPage<T>, start: u64, render: impl Fn(&T) -> Value, projection: &Projection) -> Response {
    let resources: Vec<Value> = page.items.iter().map(|i| projection.apply(render(i))).collect();
    let body = json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": page.total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    respond(StatusCode::OK, &body, None, None)
}

fn projection_of(uri: &axum::http::Uri) -> Result<Projection, ScimErr> {
    Ok(ListParams::from_pairs(&pairs(uri)?)?.projection)
}

// --- Users -----------------------------------------------------------------------------

async fn list(
    st: &ScimState,
    cap: ScimCap,
    kind: ResourceKind,
    p: ListParams,
    base: &str,
) -> Result<Response, ScimErr> {
    let q = p.query(kind)?;
    Ok(match kind {
        ResourceKind::User => {
            let page = scim::list_users(&st.services, cap, &q).await?;
            list_response(page, p.start(), |u| user_body(u, base).0, &p.projection)
        }
        ResourceKind::Group => {
            let page = scim::list_groups(&st.services, cap, &q).await?;
            list_response(page, p.start(), |g| group_body(g, base).0, &p.projection)
        }
    })
}

async fn list_users(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    uri: axum::http::Uri,
) -> Result<Response, ScimErr> {
    list(&st, cap, ResourceKind::User, ListParams::from_pairs(&pairs(&uri)?)?, &base).await
}

async fn search_users(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let p = ListParams::from_search(&read_body(&headers, &bytes)?)?;
    list(&st, cap, ResourceKind::User, p, &base).await
}

async fn get_user(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let u = scim::get_user(&st.services, cap, &id).await?;
    Ok(one(StatusCode::OK, user_body(&u, &base), &headers, &projection))
}

async fn create_user(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    uri: axum::http::Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let u = scim::create_user(&st.services, cap, &read_body(&headers, &bytes)?).await?;
    Ok(one(StatusCode::CREATED, user_body(&u, &base), &headers, &projection))
}

async fn replace_user(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let body = read_body(&headers, &bytes)?;
    let u = scim::replace_user(&st.services, cap, &id, &body, header_str(&headers, header::IF_MATCH)).await?;
    Ok(one(StatusCode::OK, user_body(&u, &base), &HeaderMap::new(), &projection))
}

async fn patch_user(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let body = read_body(&headers, &bytes)?;
    let u = scim::patch_user(&st.services, cap, &id, &body, header_str(&headers, header::IF_MATCH)).await?;
    Ok(one(StatusCode::OK, user_body(&u, &base), &HeaderMap::new(), &projection))
}

async fn delete_user(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimErr> {
    scim::delete_user(&st.services, cap, &id, header_str(&headers, header::IF_MATCH)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- Groups ----------------------------------------------------------------------------

async fn list_groups(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    uri: axum::http::Uri,
) -> Result<Response, ScimErr> {
    list(&st, cap, ResourceKind::Group, ListParams::from_pairs(&pairs(&uri)?)?, &base).await
}

async fn search_groups(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let p = ListParams::from_search(&read_body(&headers, &bytes)?)?;
    list(&st, cap, ResourceKind::Group, p, &base).await
}

async fn get_group(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let g = scim::get_group(&st.services, cap, &id).await?;
    Ok(one(StatusCode::OK, group_body(&g, &base), &headers, &projection))
}

async fn create_group(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    uri: axum::http::Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let g = scim::create_group(&st.services, cap, &read_body(&headers, &bytes)?).await?;
    Ok(one(StatusCode::CREATED, group_body(&g, &base), &headers, &projection))
}

async fn replace_group(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let body = read_body(&headers, &bytes)?;
    let g = scim::replace_group(&st.services, cap, &id, &body, header_str(&headers, header::IF_MATCH)).await?;
    Ok(one(StatusCode::OK, group_body(&g, &base), &HeaderMap::new(), &projection))
}

async fn patch_group(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let projection = projection_of(&uri)?;
    let body = read_body(&headers, &bytes)?;
    let g = scim::patch_group(&st.services, cap, &id, &body, header_str(&headers, header::IF_MATCH)).await?;
    Ok(one(StatusCode::OK, group_body(&g, &base), &HeaderMap::new(), &projection))
}

async fn delete_group(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimErr> {
    scim::delete_group(&st.services, cap, &id, header_str(&headers, header::IF_MATCH)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- Discovery -------------------------------------------------------------------------

/// `POST /.search`: users and groups at once (RFC 7644 §3.4.3). The filter applies to each kind
/// it can (one naming `userName` finds no groups) and is refused only when it fits neither;
/// the results are the users, then the groups, each sorted as asked, paged across both.
async fn search_everything(
    State(st): State<ScimState>,
    Scim(cap): Scim,
    Base(base): Base,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ScimErr> {
    let p = ListParams::from_search(&read_body(&headers, &bytes)?)?;
    let mut kinds = Vec::new();
    let mut refused = None;
    for kind in [ResourceKind::User, ResourceKind::Group] {
        match p.query(kind) {
            Ok(q) => kinds.push((kind, q)),
            Err(e) => refused = refused.or(Some(e)),
        }
    }
    if kinds.is_empty() {
        return Err(ScimErr(refused.unwrap_or_else(|| ScimError::invalid_filter("The filter fits no resource type."))));
    }
    let (mut skip, mut room) = kinds.first().map_or((0, 0), |(_, q)| (q.offset, q.limit));
    let (mut total, mut resources) = (0, Vec::new());
    for (kind, mut q) in kinds {
        q.offset = skip;
        q.limit = room;
        let (n, items): (u64, Vec<Value>) = match kind {
            ResourceKind::User => {
                let page = scim::list_users(&st.services, cap, &q).await?;
                (page.total, page.items.iter().map(|u| p.projection.apply(user_body(u, &base).0)).collect())
            }
            ResourceKind::Group => {
                let page = scim::list_groups(&st.services, cap, &q).await?;
                (page.total, page.items.iter().map(|g| p.projection.apply(group_body(g, &base).0)).collect())
            }
        };
        total += n;
        skip = skip.saturating_sub(n);
        room = room.saturating_sub(items.len() as u64);
        resources.extend(items);
    }
    let body = json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": p.start(),
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn discovery_get(Scim(_): Scim, Base(base): Base, uri: axum::http::Uri) -> Response {
    let body = match uri.path().rsplit('/').next().unwrap_or("") {
        "ServiceProviderConfig" => discovery::service_provider_config(&base),
        "ResourceTypes" => discovery::list(discovery::resource_types(&base)),
        _ => discovery::list(discovery::schemas(&base)),
    };
    respond(StatusCode::OK, &body, None, None)
}

async fn resource_type(Scim(_): Scim, Base(base): Base, Path(id): Path<String>) -> Result<Response, ScimErr> {
    let found = discovery::resource_types(&base).into_iter().find(|r| r["id"].as_str() == Some(id.as_str()));
    let r = found.ok_or_else(|| ScimErr(ScimError::not_found("ResourceType", &id)))?;
    Ok(respond(StatusCode::OK, &r, None, None))
}

async fn schema(Scim(_): Scim, Base(base): Base, Path(id): Path<String>) -> Result<Response, ScimErr> {
    let found =
        discovery::schemas(&base).into_iter().find(|s| s["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&id)));
    let s = found.ok_or_else(|| ScimErr(ScimError::not_found("Schema", &id)))?;
    Ok(respond(StatusCode::OK, &s, None, None))
}
