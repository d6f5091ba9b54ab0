//! Request bodies: JSON objects read property by property, so every mistake gets a message
//! that names the property and what was expected, unknown properties are refused, and an
//! `@odata.type` that does not fit the entity is refused.

use std::collections::HashSet;
use std::str::FromStr;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};
use steward_domain::DomainError;
use steward_domain::text::DisplayName;

use crate::error::ApiError;

/// A JSON object body being read.
#[derive(Debug)]
pub struct Body {
    map: Map<String, Value>,
    entity: &'static str,
    read: HashSet<String>,
}

/// Checks the Content-Type: JSON, or nothing at all for an empty body.
pub fn require_json(headers: &HeaderMap, bytes: &Bytes) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => {
            let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    format!(
                        "Content-Type '{}' is not supported; send application/json.",
                        steward_domain::text::clip(ct, 80)
                    ),
                ))
            }
        }
        None if bytes.is_empty() => Ok(()),
        None => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "The body needs Content-Type: application/json.",
        )),
    }
}

impl Body {
    /// Parses `bytes` as a JSON object for `entity` (Graph's type name, e.g. `accessPackage`).
    pub fn parse(headers: &HeaderMap, bytes: &Bytes, entity: &'static str) -> Result<Self, ApiError> {
        require_json(headers, bytes)?;
        if bytes.is_empty() {
            return Err(ApiError::invalid_model(format!("A JSON body describing a {entity} is required.")));
        }
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}.")))?;
        Self::from_value(v, entity)
    }

    pub fn from_value(v: Value, entity: &'static str) -> Result<Self, ApiError> {
        let Value::Object(map) = v else {
            return Err(ApiError::invalid_model(format!("The body must be a JSON object describing a {entity}.")));
        };
        let b = Self { map, entity, read: HashSet::new() };
        b.check_type()?;
        Ok(b)
    }

    /// `@odata.type`, when present, must name this entity (with or without `#`).
    fn check_type(&self) -> Result<(), ApiError> {
        match self.map.get("@odata.type") {
            None => Ok(()),
            Some(Value::String(t)) => {
                let t = t.strip_prefix('#').unwrap_or(t);
                let want = format!("microsoft.graph.{}", self.entity);
                if t.eq_ignore_ascii_case(&want) {
                    Ok(())
                } else {
                    Err(ApiError::invalid_model(format!(
                        "@odata.type '{}' is not valid here; expected '#{want}'.",
                        steward_domain::text::clip(t, 120)
                    )))
                }
            }
            Some(_) => Err(ApiError::invalid_model("@odata.type must be a string.")),
        }
    }

    fn key(&self, name: &str) -> Option<String> {
        if self.map.contains_key(name) {
            return Some(name.to_owned());
        }
        self.map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
    }

    /// Takes a property out of the body (property names match case-insensitively, as in Graph).
    pub fn take(&mut self, name: &str) -> Option<Value> {
        let k = self.key(name)?;
        self.read.insert(k.clone());
        self.map.get(&k).cloned()
    }

    fn wrong(&self, name: &str, want: &str, got: &Value) -> ApiError {
        let kind = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        ApiError::invalid_model(format!("Property '{name}' of {} must be {want}, not {kind}.", self.entity))
    }

    /// A string, or `None` when absent; `null` is refused.
    pub fn opt_str(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(name, "a string", &v)),
        }
    }

    /// A nullable string for a patch: absent → `None`, `null` → `Some(None)`.
    pub fn patch_str(&mut self, name: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(v) => Err(self.wrong(name, "a string or null", &v)),
        }
    }

    /// A nullable string for a create: absent or `null` → `None`.
    pub fn nullable_str(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        Ok(self.patch_str(name)?.flatten())
    }

    pub fn req_str(&mut self, name: &str) -> Result<String, ApiError> {
        self.opt_str(name)?
            .ok_or_else(|| ApiError::invalid_model(format!("Property '{name}' is required on {}.", self.entity)))
    }

    pub fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(self.wrong(name, "a boolean", &v)),
        }
    }

    pub fn req_name(&mut self) -> Result<DisplayName, ApiError> {
        let s = self.req_str("displayName")?;
        DisplayName::parse(s).map_err(ApiError::from)
    }

    pub fn opt_name(&mut self) -> Result<Option<DisplayName>, ApiError> {
        self.opt_str("displayName")?.map(|s| DisplayName::parse(s).map_err(ApiError::from)).transpose()
    }

    /// An enumeration member, parsed case-insensitively.
    pub fn opt_enum<T: FromStr<Err = DomainError>>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => {
                s.parse().map(Some).map_err(|e: DomainError| ApiError::invalid_model(format!("Property '{name}': {e}")))
            }
        }
    }

    /// A nested object (navigation or complex value), `None` when absent or null.
    pub fn opt_object(&mut self, name: &str, entity: &'static str) -> Result<Option<Body>, ApiError> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Body::from_value(v, entity).map(Some),
            Some(v) => Err(self.wrong(name, "an object", &v)),
        }
    }

    /// An id property parsed into its newtype.
    pub fn opt_id<T: FromStr<Err = DomainError>>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        self.opt_str(name)?.map(|s| s.parse::<T>().map_err(ApiError::from)).transpose()
    }

    /// Properties that may be sent back (read-only, or computed) and are ignored.
    pub fn ignore(&mut self, names: &[&str]) {
        for n in names {
            let _ = self.take(n);
        }
    }

    /// Refuses any property that was not read. Instance annotations (`@odata.type`,
    /// `@odata.etag`, ...) are tolerated, but not `name@odata.bind`: that asks for links to be
    /// made (Graph's "create group with members" examples), and accepting the object while
    /// dropping its links would report success for work not done.
    pub fn finish(self) -> Result<(), ApiError> {
        if let Some(k) = self.map.keys().find(|k| !self.read.contains(*k) && is_bind(k)) {
            let nav = k.split('@').next().unwrap_or("");
            return Err(ApiError::invalid_model(format!(
                "'{}' is not supported: Steward does not create links from a {} body. Create the \
                 object first, then link with its $ref endpoint, …/{{id}}/{}/$ref.",
                steward_domain::text::clip(k, 80),
                self.entity,
                steward_domain::text::clip(nav, 40),
            )));
        }
        let unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.read.contains(*k) && !k.starts_with('@') && !k.contains("@odata."))
            .collect();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(ApiError::invalid_model(format!(
                "Property '{}' does not exist on type 'microsoft.graph.{}' or cannot be written.",
                steward_domain::text::clip(k, 80),
                self.entity
            ))),
        }
    }
}

/// `members@odata.bind`, `manager@odata.bind`, ... (annotation names match case-insensitively).
fn is_bind(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("@odata.bind")
}

/// The id at the end of an `@odata.id` URL of a `$ref` body, checked to point at `collection`
/// (for example `users` or `accessPackages`).
pub fn ref_target(headers: &HeaderMap, bytes: &Bytes, collection: &str) -> Result<String, ApiError> {
    let mut b = Body::parse(headers, bytes, "directoryObject")?;
    let url = b
        .opt_str("@odata.id")?
        .ok_or_else(|| ApiError::invalid_model("A $ref body needs '@odata.id': the URL of the object to link."))?;
    let path = url.split(['?', '#']).next().unwrap_or("");
    let mut segs = path.trim_end_matches('/').rsplit('/');
    let id = segs.next().unwrap_or("");
    let coll = segs.next().unwrap_or("");
    let (coll, id) = if id.is_empty() { ("", "") } else { (coll, id) };
    // `/directoryObjects/{id}` may point at any directory object.
    if !(coll.eq_ignore_ascii_case(collection) || coll.eq_ignore_ascii_case("directoryObjects")) || id.is_empty() {
        return Err(ApiError::invalid_model(format!(
            "'@odata.id' must be the URL of an object in '{collection}', such as https://host/v1.0/{collection}/{{id}}; got '{}'.",
            steward_domain::text::clip(&url, 200)
        )));
    }
    Ok(id.trim_start_matches("('").trim_end_matches("')").to_owned())
}
