//! The route registry: every API route is declared once, with its documentation, and both the
//! axum router and `/openapi.json` are built from that one list.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use serde_json::{Map, Value, json};

use crate::AppState;

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// The success status and what it returns ("entity", "collection", "count", "none").
    pub status: u16,
    pub returns: &'static str,
}

/// Routes and their documentation, built together.
pub struct Api {
    router: Router<AppState>,
    ops: Vec<Op>,
    tag: &'static str,
}

impl Api {
    pub fn new() -> Self {
        Self { router: Router::new(), ops: Vec::new(), tag: "" }
    }

    /// Sets the tag for the operations declared next.
    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }

    fn add<H, T>(mut self, filter: MethodFilter, h: H, op: Op) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(op.path, on(filter, h));
        self.ops.push(op);
        self
    }

    fn op(
        &self,
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        status: u16,
        returns: &'static str,
    ) -> Op {
        Op { method, path, summary, tag: self.tag, status, returns }
    }

    pub fn list<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("get", path, summary, 200, "collection");
        self.add(MethodFilter::GET, h, op)
    }
    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("get", path, summary, 200, "entity");
        self.add(MethodFilter::GET, h, op)
    }
    pub fn count<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("get", path, summary, 200, "count");
        self.add(MethodFilter::GET, h, op)
    }
    pub fn create<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("post", path, summary, 201, "entity");
        self.add(MethodFilter::POST, h, op)
    }
    pub fn action<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("post", path, summary, 204, "none");
        self.add(MethodFilter::POST, h, op)
    }
    /// An action that answers 200 with an entity and takes no body (Graph's
    /// `generateDownloadUri`).
    pub fn call<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("post", path, summary, 200, "entity");
        self.add(MethodFilter::POST, h, op)
    }
    /// A GET that answers a CSV file rather than JSON (a report's download).
    pub fn download<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
        summary: &'static str,
    ) -> Self {
        let op = self.op("get", path, summary, 200, "csv");
        self.add(MethodFilter::GET, h, op)
    }
    /// An action that answers 202 Accepted (work continues in the background).
    pub fn accepted<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
        summary: &'static str,
    ) -> Self {
        let op = self.op("post", path, summary, 202, "none");
        self.add(MethodFilter::POST, h, op)
    }
    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("patch", path, summary, 204, "none");
        self.add(MethodFilter::PATCH, h, op)
    }
    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("put", path, summary, 204, "none");
        self.add(MethodFilter::PUT, h, op)
    }
    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("delete", path, summary, 204, "none");
        self.add(MethodFilter::DELETE, h, op)
    }

    /// PUT that replaces and answers with the entity (Graph's assignment policies).
    pub fn replace<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H, summary: &'static str) -> Self {
        let op = self.op("put", path, summary, 200, "entity");
        self.add(MethodFilter::PUT, h, op)
    }

    pub fn merge(mut self, other: Api) -> Self {
        self.router = self.router.merge(other.router);
        self.ops.extend(other.ops);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Op>) {
        (self.router, self.ops)
    }
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ODataError"}}}})
}

/// The OpenAPI 3.1 document of the operations.
pub fn openapi(ops: &[Op]) -> Value {
    let mut paths = Map::new();
    let mut sorted: Vec<&Op> = ops.iter().collect();
    sorted.sort_by(|a, b| (a.path, a.method).cmp(&(b.path, b.method)));
    for op in sorted {
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut parameters = params;
        if op.returns == "collection" {
            for (name, desc) in [
                ("$filter", "OData filter expression"),
                ("$select", "Comma-separated properties to return"),
                ("$expand", "Navigation properties to expand, nestable"),
                ("$orderby", "Sort order"),
                ("$top", "Page size, 1 to 999 (default 100)"),
                ("$skip", "Rows to skip"),
                ("$count", "Include @odata.count"),
                ("$search", "Quoted search text"),
                ("$skiptoken", "Opaque paging token from @odata.nextLink"),
            ] {
                parameters.push(json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}}));
            }
        } else if op.returns == "entity" && op.method == "get" {
            for name in ["$select", "$expand"] {
                parameters.push(json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}}));
            }
        }
        let ok = match op.returns {
            "collection" => {
                json!({"description": "A page of the collection", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Collection"}}}})
            }
            "entity" => {
                json!({"description": "The entity", "content": {"application/json": {"schema": {"type": "object"}}}})
            }
            "count" => {
                json!({"description": "The number of matching items", "content": {"text/plain": {"schema": {"type": "integer"}}}})
            }
            "csv" => {
                json!({"description": "The file", "content": {"text/csv": {"schema": {"type": "string"}}}})
            }
            _ => json!({"description": "Done"}),
        };
        let mut responses = Map::new();
        responses.insert(op.status.to_string(), ok);
        responses.insert("400".into(), error_response("Bad request"));
        responses.insert("401".into(), error_response("Missing or invalid token"));
        responses.insert("403".into(), error_response("Not allowed"));
        if op.path.contains('{') {
            responses.insert("404".into(), error_response("Not found"));
        }
        let mut operation = json!({
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}', '$'], "_")),
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearer": []}],
        });
        // POSTs that create take a body; actions (204, 202) and calls (200) take none.
        let has_body = matches!(op.method, "patch" | "put") || (op.method == "post" && op.status == 201);
        if has_body && let Some(o) = operation.as_object_mut() {
            o.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}}),
            );
        }
        if let Value::Object(entry) = paths.entry(op.path.to_owned()).or_insert_with(|| json!({})) {
            entry.insert(op.method.to_owned(), operation);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Steward", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Self-hosted entitlement management, wire-compatible with Microsoft Graph v1.0."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Collection": {"type": "object", "properties": {
                    "@odata.context": {"type": "string"}, "@odata.count": {"type": "integer"},
                    "@odata.nextLink": {"type": "string"}, "value": {"type": "array", "items": {"type": "object"}}}},
                "ODataError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                    "innerError": {"type": "object", "properties": {"date": {"type": "string"}, "request-id": {"type": "string"},
                    "client-request-id": {"type": "string"}}}}}}}
            }
        }
    })
}
