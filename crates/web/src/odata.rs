//! OData on the way out: the request's parsed query options (an extractor), entities rendered
//! with `@odata.type`, `$select` and nested `$expand`, and collection pages with
//! `@odata.count` and an absolute `@odata.nextLink` carrying a keyset `$skiptoken`.

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use steward_app::Services;
use steward_app::auth::Principal;
use steward_app::ports::Page;
use steward_app::query::{ListQuery, MAX_TOP, Schema};
use steward_odata::{ExpandItem, QueryOptions};

use crate::AppState;
use crate::error::ApiError;

/// The parsed query options of a request, plus what is needed to build links back to it.
#[derive(Debug, Clone)]
pub struct OData {
    pub options: QueryOptions,
    /// The raw `name=value` pairs, as sent, for rebuilding `@odata.nextLink`.
    raw_pairs: Vec<String>,
    path: String,
    base: String,
}

impl FromRequestParts<AppState> for OData {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        let options = steward_odata::parse_query(raw)?;
        let raw_pairs = raw.split('&').filter(|p| !p.is_empty()).map(str::to_owned).collect();
        let base = match &state.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
                format!("http://{host}")
            }
        };
        Ok(Self { options, raw_pairs, path: parts.uri.path().to_owned(), base })
    }
}

impl OData {
    /// The absolute URL of this request's next page.
    fn next_link(&self, token: &str) -> String {
        let mut pairs: Vec<&str> = self
            .raw_pairs
            .iter()
            .filter(|p| {
                let name = p.split('=').next().unwrap_or("").to_ascii_lowercase();
                !matches!(name.as_str(), "$skip" | "%24skip" | "$skiptoken" | "%24skiptoken")
            })
            .map(String::as_str)
            .collect();
        let tok = format!("$skiptoken={token}");
        pairs.push(&tok);
        format!("{}{}?{}", self.base, self.path, pairs.join("&"))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A `ListQuery` for `schema` from these options, with the `$skiptoken` cursor applied.
    /// A later page reuses the `@odata.count` of the first (carried in the token) instead of
    /// counting again, so paging through a large filtered list costs one count, not one per page.
    pub fn list_query(&self, schema: &'static Schema) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery::from_options(schema, &self.options)?;
        if let Some(tok) = &self.options.skiptoken {
            let cursor: Cursor = steward_odata::skiptoken::decode_skiptoken(tok)?;
            let order: Vec<&str> = q.order.iter().map(|s| s.field.path).collect();
            if cursor.o != order || cursor.v.len() != order.len() {
                return Err(ApiError::bad_request(
                    "The $skiptoken does not belong to this query; follow @odata.nextLink as returned.",
                ));
            }
            q.after = Some(cursor.v.iter().map(from_json).collect::<Result<_, _>>()?);
            q.skip = 0;
            q.known_count = cursor.c;
        }
        Ok(q)
    }
}

/// What a `$skiptoken` holds: the sort keys' names and the last row's values.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Cursor {
    o: Vec<String>,
    v: Vec<Value>,
    /// The total of the first page, when `$count=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<u64>,
}

fn to_json(v: &steward_app::query::Value) -> Value {
    use steward_app::query::Value as V;
    match v {
        V::Null => Value::Null,
        V::Text(s) => Value::String(s.clone()),
        V::Int(i) => json!(i),
        V::Bool(b) => Value::Bool(*b),
    }
}

fn from_json(v: &Value) -> Result<steward_app::query::Value, ApiError> {
    use steward_app::query::Value as V;
    Ok(match v {
        Value::Null => V::Null,
        Value::String(s) => V::Text(s.clone()),
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Int(n.as_i64().ok_or_else(|| ApiError::bad_request("The $skiptoken is malformed."))?),
        _ => return Err(ApiError::bad_request("The $skiptoken is malformed.")),
    })
}

/// Who is reading, and with what: handed to expansions so each checks its own capability.
/// Also remembers to-one expansions within one response, so forty packages of one catalog
/// fetch that catalog once.
pub struct Cx<'a> {
    pub s: &'a Services,
    pub p: &'a Principal,
    memo: std::sync::Mutex<std::collections::HashMap<String, Value>>,
}

impl<'a> Cx<'a> {
    pub fn new(s: &'a Services, p: &'a Principal) -> Self {
        Self { s, p, memo: std::sync::Mutex::default() }
    }

    /// The value for `key`, computed by `f` the first time in this response.
    pub async fn once<F>(&self, key: String, f: F) -> Result<Value, ApiError>
    where
        F: std::future::Future<Output = Result<Value, ApiError>>,
    {
        if let Some(v) = self.memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(v);
        }
        let v = f.await?;
        if let Ok(mut m) = self.memo.lock() {
            m.insert(key, v.clone());
        }
        Ok(v)
    }
}

/// An entity Graph clients can read: its type name, its properties and navigation properties,
/// and how each navigation is expanded.
#[async_trait]
pub trait GraphEntity: Serialize + Send + Sync + Sized {
    const TYPE: &'static str;
    const PROPS: &'static [&'static str];
    const NAVS: &'static [&'static str];
    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError>;
    /// Checks the options of an expansion of `nav` (one of `NAVS`) against the type it leads
    /// to, usually with [`check_nested`]. Graph validates the whole query, not only the part
    /// that happens to meet data: `$expand=roles($expand=nope)` is refused on an empty list too.
    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError>;
    /// The entity tag, for entities that support `If-Match`.
    fn etag(&self) -> Option<String> {
        None
    }
}

fn no_property(kind: &str, name: &str, ty: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Could not find a {kind} named '{}' on type 'microsoft.graph.{ty}'.",
        steward_domain::text::clip(name, 80)
    ))
}

/// Checks `$select` and `$expand` names up front, so an empty page still rejects bad names;
/// nested expansions are checked against their own types, to any depth the parser allows.
pub fn check_shape<E: GraphEntity>(select: Option<&Vec<String>>, expand: &[ExpandItem]) -> Result<(), ApiError> {
    for e in expand {
        let navs: Vec<&'static str> = if e.path == "*" {
            E::NAVS.to_vec()
        } else {
            E::NAVS.iter().filter(|n| n.eq_ignore_ascii_case(&e.path)).copied().collect()
        };
        if navs.is_empty() {
            return Err(no_property("navigation property", &e.path, E::TYPE));
        }
        for nav in navs {
            E::check_expand(nav, e)?;
        }
    }
    if let Some(sel) = select {
        for s in sel {
            let known = s == "id" || E::PROPS.iter().chain(E::NAVS).any(|p| p.eq_ignore_ascii_case(s));
            if !known {
                return Err(no_property("property", s, E::TYPE));
            }
        }
    }
    Ok(())
}

/// Checks an expansion's options against the entity type `T` it leads to: its `$select` and
/// `$expand` names (recursively), and, for a collection (`schema` given), its `$filter` and
/// `$orderby` against that collection's query schema.
pub fn check_nested<T: GraphEntity>(item: &ExpandItem, schema: Option<&'static Schema>) -> Result<(), ApiError> {
    check_shape::<T>(item.select.as_ref(), &item.expand)?;
    if let Some(schema) = schema {
        expand_query(schema, item)?;
    }
    Ok(())
}

/// Renders one entity with nested `$expand` and `$select` applied.
pub async fn render<E: GraphEntity>(
    cx: &Cx<'_>,
    e: &E,
    select: Option<&Vec<String>>,
    expand: &[ExpandItem],
) -> Result<Value, ApiError> {
    check_shape::<E>(select, expand)?;
    let Value::Object(props) = serde_json::to_value(e)
        .map_err(|err| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", err.to_string()))?
    else {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", "entity is not an object"));
    };
    let mut m = Map::with_capacity(props.len() + 1 + expand.len());
    m.insert("@odata.type".into(), Value::String(format!("#microsoft.graph.{}", E::TYPE)));
    if let Some(tag) = e.etag() {
        m.insert("@odata.etag".into(), Value::String(tag));
    }
    m.extend(props);
    let mut expanded: Vec<&str> = Vec::new();
    for item in expand {
        let navs: Vec<&'static str> = if item.path == "*" {
            E::NAVS.to_vec()
        } else {
            E::NAVS.iter().filter(|n| n.eq_ignore_ascii_case(&item.path)).copied().collect()
        };
        for nav in navs {
            let v = e.expand(cx, nav, item).await?;
            m.insert(nav.to_owned(), v);
            expanded.push(nav);
        }
    }
    if let Some(sel) = select {
        m.retain(|k, _| {
            k == "id"
                || k.starts_with('@')
                || expanded.contains(&k.as_str())
                || sel.iter().any(|s| s.eq_ignore_ascii_case(k))
        });
    }
    Ok(Value::Object(m))
}

pub async fn render_all<E: GraphEntity>(
    cx: &Cx<'_>,
    items: &[E],
    select: Option<&Vec<String>>,
    expand: &[ExpandItem],
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        out.push(render(cx, e, select, expand).await?);
    }
    Ok(out)
}

/// Expands a to-one navigation.
pub async fn expand_one<E: GraphEntity>(cx: &Cx<'_>, e: Option<E>, item: &ExpandItem) -> Result<Value, ApiError> {
    match e {
        Some(e) => render(cx, &e, item.select.as_ref(), &item.expand).await,
        None => Ok(Value::Null),
    }
}

/// The `ListQuery` of an expanded collection: the item's own `$filter`, `$orderby`, `$top`.
pub fn expand_query(schema: &'static Schema, item: &ExpandItem) -> Result<ListQuery, ApiError> {
    let o = QueryOptions {
        filter: item.filter.clone(),
        orderby: item.orderby.clone(),
        top: Some(item.top.unwrap_or(MAX_TOP)),
        ..QueryOptions::default()
    };
    Ok(ListQuery::from_options(schema, &o)?)
}

/// Expands a to-many navigation from an already fetched page.
pub async fn expand_many<E: GraphEntity>(cx: &Cx<'_>, page: Page<E>, item: &ExpandItem) -> Result<Value, ApiError> {
    Ok(Value::Array(render_all(cx, &page.items, item.select.as_ref(), &item.expand).await?))
}

/// The `If-Match` header, when the client sent one.
pub fn if_match(headers: &axum::http::HeaderMap) -> Option<String> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A JSON response with Graph's content type.
pub fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(
            "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8",
        ),
    );
    r
}

/// A single entity response (200, or 201 for creates with a Location header).
pub async fn entity_response<E: GraphEntity>(
    cx: &Cx<'_>,
    od: &OData,
    e: &E,
    status: StatusCode,
    set: &str,
) -> Result<Response, ApiError> {
    let mut v = render(cx, e, od.options.select.as_ref(), &od.options.expand).await?;
    if let Value::Object(m) = &mut v {
        let ctx = Value::String(format!("{}/v1.0/$metadata#{set}/$entity", od.base));
        let mut out = Map::with_capacity(m.len() + 1);
        out.insert("@odata.context".into(), ctx);
        out.append(m);
        *m = out;
    }
    let mut r = json_response(status, v);
    if let Some(tag) = e.etag().and_then(|t| HeaderValue::from_str(&t).ok()) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    if status == StatusCode::CREATED {
        let id = e_id(e);
        if let Ok(loc) = HeaderValue::from_str(&format!("{}{}/{}", od.base, od.path, id)) {
            r.headers_mut().insert(header::LOCATION, loc);
        }
    }
    Ok(r)
}

fn e_id<E: Serialize>(e: &E) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// A collection page: `@odata.context`, `@odata.count`, `@odata.nextLink`, `value`.
pub async fn page_response<E: GraphEntity>(
    cx: &Cx<'_>,
    od: &OData,
    q: &ListQuery,
    page: Page<E>,
    set: &str,
) -> Result<Response, ApiError> {
    let value = render_all(cx, &page.items, od.options.select.as_ref(), &od.options.expand).await?;
    let mut m = Map::new();
    m.insert("@odata.context".into(), Value::String(format!("{}/v1.0/$metadata#{set}", od.base)));
    if let Some(c) = page.count {
        m.insert("@odata.count".into(), json!(c));
    }
    if let Some(next) = page.next {
        let cursor = Cursor {
            o: q.order.iter().map(|s| s.field.path.to_owned()).collect(),
            v: next.iter().map(to_json).collect(),
            c: page.count,
        };
        let token = steward_odata::skiptoken::encode_skiptoken(&cursor)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", e.to_string()))?;
        m.insert("@odata.nextLink".into(), Value::String(od.next_link(&token)));
    }
    m.insert("value".into(), Value::Array(value));
    Ok(json_response(StatusCode::OK, Value::Object(m)))
}

/// The `/$count` segment: a bare integer as text/plain.
pub fn count_response(n: u64) -> Response {
    let mut r = (StatusCode::OK, n.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}
