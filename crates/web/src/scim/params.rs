//! A SCIM list's parameters (RFC 7644 §3.4.2: `filter`, `startIndex`, `count`, `sortBy`,
//! `sortOrder`, `attributes`, `excludedAttributes`), from the query string or a `.search`
//! body, and the projection of a resource to the attributes asked for (§3.4.2.5).

use serde_json::{Map, Value};
use steward_app::scim::query::{ResourceKind, ScimQuery, field, resolve};
use steward_app::scim::{ENTERPRISE_USER, GROUP_SCHEMA, MAX_RESULTS, ScimError, USER_SCHEMA, filter};

/// The parameters of a list.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub projection: Projection,
}

fn int(name: &str, v: &str) -> Result<i64, ScimError> {
    v.trim().parse().map_err(|_| {
        ScimError::invalid_value(format!("{name} must be an integer, not '{}'.", steward_domain::text::clip(v, 40)))
    })
}

impl ListParams {
    /// From the query string's pairs (names ignore case).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ScimError> {
        let mut p = Self::default();
        let (mut attributes, mut excluded) = (None, None);
        for (k, v) in pairs {
            match k.to_ascii_lowercase().as_str() {
                "filter" => p.filter = Some(v.clone()),
                "startindex" => p.start_index = Some(int("startIndex", v)?),
                "count" => p.count = Some(int("count", v)?),
                "sortby" => p.sort_by = Some(v.clone()),
                "sortorder" => p.sort_order = Some(v.clone()),
                "attributes" => attributes = Some(split(v)),
                "excludedattributes" => excluded = Some(split(v)),
                _ => {}
            }
        }
        p.projection = Projection::new(attributes, excluded)?;
        Ok(p)
    }

    /// From a `SearchRequest` body (`POST …/.search`).
    pub fn from_search(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(m) = body else {
            return Err(ScimError::invalid_syntax("A search request must be a JSON object (a SearchRequest message)."));
        };
        let get = |name: &str| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let string = |name: &str| -> Result<Option<String>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be a string."))),
            }
        };
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ScimError::invalid_value(format!("'{name}' must be an integer."))),
                Some(Value::String(s)) => int(name, s).map(Some),
                Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be an integer."))),
            }
        };
        let list = |name: &str| -> Result<Option<Vec<String>>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(split(s))),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| ScimError::invalid_value(format!("'{name}' must list strings.")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(ScimError::invalid_value(format!("'{name}' must be a list of attribute names."))),
            }
        };
        Ok(Self {
            filter: string("filter")?,
            start_index: number("startIndex")?,
            count: number("count")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?,
            projection: Projection::new(list("attributes")?, list("excludedAttributes")?)?,
        })
    }

    /// `startIndex`, at least 1 (RFC: a smaller value is taken as 1).
    pub fn start(&self) -> u64 {
        u64::try_from(self.start_index.unwrap_or(1).max(1)).unwrap_or(1)
    }

    /// The store's query for these parameters.
    pub fn query(&self, kind: ResourceKind) -> Result<ScimQuery, ScimError> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => {
                let parsed = filter::parse(f).map_err(|e| ScimError::invalid_filter(e.0))?;
                Some(resolve(kind, &parsed).map_err(ScimError::invalid_filter)?)
            }
        };
        let sort = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                let path = filter::AttrPath::parse(s).ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "sortBy '{}' is not an attribute.",
                        steward_domain::text::clip(s, 60)
                    ))
                })?;
                Some(field(kind, &path).map_err(|e| ScimError::invalid_value(format!("sortBy: {e}")))?)
            }
        };
        let descending = match self.sort_order.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("ascending") => false,
            Some("descending") => true,
            Some(_) => return Err(ScimError::invalid_value("sortOrder must be \"ascending\" or \"descending\".")),
        };
        let limit = u64::try_from(self.count.unwrap_or(MAX_RESULTS as i64).max(0)).unwrap_or(0).min(MAX_RESULTS);
        Ok(ScimQuery { filter, sort, descending, offset: self.start() - 1, limit })
    }
}

fn split(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
}

/// Which attributes a response keeps.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    include: Option<Vec<Sel>>,
    exclude: Vec<Sel>,
}

/// One attribute named in `attributes` or `excludedAttributes`.
#[derive(Debug, Clone)]
struct Sel {
    /// In the enterprise extension.
    ext: bool,
    /// Empty: the whole extension.
    attr: String,
    sub: Option<String>,
}

impl Sel {
    fn parse(s: &str) -> Option<Self> {
        let lower = s.to_ascii_lowercase();
        let ext_urn = ENTERPRISE_USER.to_ascii_lowercase();
        if lower == ext_urn {
            return Some(Self { ext: true, attr: String::new(), sub: None });
        }
        let (ext, rest) = if let Some(r) = lower.strip_prefix(&format!("{ext_urn}:")) {
            (true, s.get(s.len() - r.len()..)?)
        } else if let Some(r) =
            [USER_SCHEMA, GROUP_SCHEMA].iter().find_map(|u| lower.strip_prefix(&format!("{}:", u.to_ascii_lowercase())))
        {
            (false, s.get(s.len() - r.len()..)?)
        } else {
            (false, s)
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((a, b)) => (a, Some(b.to_owned())),
            None => (rest, None),
        };
        Some(Self { ext, attr: attr.to_owned(), sub })
    }
}

fn key_in<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    m.keys().find(|k| k.eq_ignore_ascii_case(name))
}

impl Projection {
    pub fn new(attributes: Option<Vec<String>>, excluded: Option<Vec<String>>) -> Result<Self, ScimError> {
        let parse = |v: Vec<String>| -> Result<Vec<Sel>, ScimError> {
            v.iter()
                .map(|s| {
                    Sel::parse(s).ok_or_else(|| {
                        ScimError::invalid_value(format!(
                            "'{}' is not an attribute.",
                            steward_domain::text::clip(s, 60)
                        ))
                    })
                })
                .collect()
        };
        Ok(Self {
            include: attributes.filter(|a| !a.is_empty()).map(parse).transpose()?,
            exclude: parse(excluded.unwrap_or_default())?,
        })
    }

    /// The resource with only the attributes asked for (`id` and `schemas` always stay).
    pub fn apply(&self, v: Value) -> Value {
        let Value::Object(mut src) = v else { return v };
        if let Some(include) = &self.include {
            let mut out = Map::new();
            for k in ["schemas", "id"] {
                if let Some(v) = src.get(k) {
                    out.insert(k.to_owned(), v.clone());
                }
            }
            for sel in include {
                copy(&src, &mut out, sel);
            }
            src = out;
        }
        for sel in &self.exclude {
            if !sel.ext && (sel.attr.eq_ignore_ascii_case("id") || sel.attr.eq_ignore_ascii_case("schemas")) {
                continue;
            }
            drop_sel(&mut src, sel);
        }
        Value::Object(src)
    }
}

/// The map a selection's attribute lives in.
fn home<'a>(m: &'a Map<String, Value>, sel: &Sel) -> Option<&'a Map<String, Value>> {
    if !sel.ext {
        return Some(m);
    }
    key_in(m, ENTERPRISE_USER).and_then(|k| m.get(k)).and_then(Value::as_object)
}

fn copy(src: &Map<String, Value>, out: &mut Map<String, Value>, sel: &Sel) {
    if sel.ext && sel.attr.is_empty() {
        if let Some(k) = key_in(src, ENTERPRISE_USER) {
            out.insert(k.clone(), src.get(k).cloned().unwrap_or(Value::Null));
        }
        return;
    }
    let Some(from) = home(src, sel) else { return };
    let Some(key) = key_in(from, &sel.attr) else { return };
    let Some(value) = from.get(key) else { return };
    let picked = match &sel.sub {
        None => value.clone(),
        Some(sub) => {
            let pick = |o: &Map<String, Value>| {
                let mut m = Map::new();
                if let Some(k) = key_in(o, sub) {
                    m.insert(k.clone(), o.get(k).cloned().unwrap_or(Value::Null));
                }
                m
            };
            match value {
                Value::Object(o) => Value::Object(pick(o)),
                Value::Array(items) => {
                    Value::Array(items.iter().filter_map(Value::as_object).map(|o| Value::Object(pick(o))).collect())
                }
                other => other.clone(),
            }
        }
    };
    let into = if sel.ext {
        let k = key_in(src, ENTERPRISE_USER).cloned().unwrap_or_else(|| ENTERPRISE_USER.to_owned());
        match out.entry(k).or_insert_with(|| Value::Object(Map::new())) {
            Value::Object(m) => m,
            _ => return,
        }
    } else {
        out
    };
    // Two selections of one complex attribute (`name.givenName,name.familyName`) merge.
    match (into.get_mut(key), picked) {
        (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
        (_, picked) => {
            into.insert(key.clone(), picked);
        }
    }
}

fn drop_sel(m: &mut Map<String, Value>, sel: &Sel) {
    if sel.ext && sel.attr.is_empty() {
        if let Some(k) = key_in(m, ENTERPRISE_USER).cloned() {
            m.remove(&k);
        }
        return;
    }
    let container = if sel.ext {
        let Some(k) = key_in(m, ENTERPRISE_USER).cloned() else { return };
        match m.get_mut(&k) {
            Some(Value::Object(e)) => e,
            _ => return,
        }
    } else {
        m
    };
    let Some(key) = key_in(container, &sel.attr).cloned() else { return };
    match &sel.sub {
        None => {
            container.remove(&key);
        }
        Some(sub) => match container.get_mut(&key) {
            Some(Value::Object(o)) => {
                if let Some(k) = key_in(o, sub).cloned() {
                    o.remove(&k);
                }
            }
            Some(Value::Array(items)) => {
                for o in items.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(k) = key_in(o, sub).cloned() {
                        o.remove(&k);
                    }
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user() -> Value {
        json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "a", "displayName": "A",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "a@x", "type": "work"}],
            ENTERPRISE_USER: {"department": "D", "employeeNumber": "7"}, "meta": {"version": "W/\"x\""}})
    }

    fn project(a: Option<&str>, e: Option<&str>) -> Value {
        Projection::new(a.map(split), e.map(split)).unwrap().apply(user())
    }

    #[test]
    fn attributes_keep_only_what_is_named() {
        assert_eq!(
            project(Some("USERNAME,name.givenName,emails.value"), None),
            json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "a", "name": {"givenName": "G"},
                "emails": [{"value": "a@x"}]})
        );
        assert_eq!(
            project(Some(&format!("{ENTERPRISE_USER}:department,{USER_SCHEMA}:displayName")), None),
            json!({"schemas": [USER_SCHEMA], "id": "1", "displayName": "A", ENTERPRISE_USER: {"department": "D"}})
        );
    }

    #[test]
    fn excluded_attributes_go() {
        let v = project(None, Some(&format!("emails,name.familyName,id,{ENTERPRISE_USER}")));
        assert!(v.get("emails").is_none() && v.get(ENTERPRISE_USER).is_none());
        assert_eq!(v["name"], json!({"givenName": "G"}));
        assert_eq!(v["id"], json!("1"), "id always stays");
    }

    #[test]
    fn list_parameters() {
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect::<Vec<_>>();
        let p =
            ListParams::from_pairs(&pairs(&[("startIndex", "0"), ("count", "5000"), ("sortBy", "userName")])).unwrap();
        let q = p.query(ResourceKind::User).unwrap();
        assert_eq!((q.offset, q.limit), (0, MAX_RESULTS));
        assert!(ListParams::from_pairs(&pairs(&[("count", "x")])).is_err());
        let e = ListParams::from_pairs(&pairs(&[("filter", "userName zz \"a\"")])).unwrap().query(ResourceKind::User);
        assert!(matches!(
            e,
            Err(ScimError::Request { scim_type: Some(steward_app::scim::ScimType::InvalidFilter), .. })
        ));
        let s = ListParams::from_search(&json!({"filter": "userName pr", "count": 2, "attributes": ["userName"]}));
        assert_eq!(s.unwrap().query(ResourceKind::User).unwrap().limit, 2);
    }
}
