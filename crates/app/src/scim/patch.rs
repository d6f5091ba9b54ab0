//! PATCH (RFC 7644 §3.5.2): a `PatchOp` body read into operations, and the operations applied
//! in order to a resource's representation (a JSON object as `resource` renders it). The
//! result is read back like a PUT body, so a PATCH can only produce what a PUT could.
//!
//! Paths are `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, optionally qualified by
//! a schema URN; the enterprise extension's URN alone names the whole extension. Besides the
//! RFC, what identity providers send in practice is accepted: operation names in any case
//! (`"Replace"`), an `add` or `replace` without a path whose value object has dotted or
//! URN-qualified keys, `remove` of `members` with a list of values to remove (Entra ID),
//! and a filtered path that matches no item (`emails[type eq "work"].value`) adding that item.

use serde_json::{Map, Value};

use super::filter::{AttrPath, CompareOp, Filter, Literal, item_matches, parse_value_filter};
use super::{ENTERPRISE_USER, GROUP_SCHEMA, PATCH_OP, ScimError, USER_SCHEMA};

/// The most operations one PATCH may carry.
pub const MAX_OPERATIONS: usize = 1000;

/// Which resource a PATCH applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    User,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    /// The path as sent; parsed when applied (it depends on the target).
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// Reads a PatchOp body.
pub fn read(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(m) = body else {
        return Err(ScimError::invalid_syntax("A PATCH body must be a JSON object (a PatchOp message)."));
    };
    let get = |name: &str| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    match get("schemas") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP))) => {}
        Some(_) => {
            return Err(ScimError::invalid_syntax(format!("A PATCH body's 'schemas' must be [\"{PATCH_OP}\"].")));
        }
    }
    let Some(Value::Array(ops)) = get("Operations") else {
        return Err(ScimError::invalid_syntax("A PATCH body needs 'Operations', a list of operations."));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty."));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            400,
            Some(super::ScimType::TooMany),
            format!("A PATCH may carry at most {MAX_OPERATIONS} operations; this one has {}.", ops.len()),
        ));
    }
    ops.iter()
        .enumerate()
        .map(|(i, o)| {
            let Value::Object(o) = o else {
                return Err(ScimError::invalid_syntax(format!("Operations[{i}] must be a JSON object.")));
            };
            let get = |name: &str| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
            let op = match get("op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
                Some("add") => Op::Add,
                Some("remove") => Op::Remove,
                Some("replace") => Op::Replace,
                _ => {
                    return Err(ScimError::invalid_syntax(format!(
                        "Operations[{i}].op must be \"add\", \"remove\" or \"replace\"."
                    )));
                }
            };
            let path = match get("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(p.trim().to_owned()),
                Some(_) => return Err(ScimError::invalid_path(format!("Operations[{i}].path must be a string."))),
            };
            let value = get("value").filter(|v| !v.is_null()).cloned();
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// A parsed path.
#[derive(Debug, Clone)]
struct Path {
    /// In the enterprise extension.
    ext: bool,
    /// The extension's URN alone: the whole extension.
    whole_ext: bool,
    attr: String,
    filter: Option<Filter>,
    sub: Option<String>,
    text: String,
}

fn parse_path(text: &str, target: Target) -> Result<Path, ScimError> {
    let bad = |why: &str| ScimError::invalid_path(format!("'{}' is not a valid path: {why}", clip(text)));
    let lower = text.to_ascii_lowercase();
    let ext_urn = ENTERPRISE_USER.to_ascii_lowercase();
    let core = match target {
        Target::User => USER_SCHEMA,
        Target::Group => GROUP_SCHEMA,
    }
    .to_ascii_lowercase();
    let whole =
        |ext| Path { ext, whole_ext: true, attr: String::new(), filter: None, sub: None, text: text.to_owned() };
    if target == Target::User && lower == ext_urn {
        return Ok(whole(true));
    }
    let (ext, rest) = if target == Target::User && lower.starts_with(&format!("{ext_urn}:")) {
        (true, text.get(ext_urn.len() + 1..).unwrap_or(""))
    } else if lower.starts_with(&format!("{core}:")) {
        (false, text.get(core.len() + 1..).unwrap_or(""))
    } else if lower.starts_with("urn:") {
        return Err(bad("it names a schema this resource does not have."));
    } else {
        (false, text)
    };
    let (head, filter, tail) = match rest.find('[') {
        Some(open) => {
            let close = closing_bracket(rest, open).ok_or_else(|| bad("'[' is not closed."))?;
            let inner = rest.get(open + 1..close).unwrap_or("");
            let f = parse_value_filter(inner).map_err(|e| bad(&e.0))?;
            let tail = rest.get(close + 1..).unwrap_or("");
            let tail = match tail.strip_prefix('.') {
                Some(t) => Some(t),
                None if tail.is_empty() => None,
                None => return Err(bad("only '.subAttribute' may follow ']'.")),
            };
            (rest.get(..open).unwrap_or(""), Some(f), tail)
        }
        None => match rest.split_once('.') {
            Some((h, t)) => (h, None, Some(t)),
            None => (rest, None, None),
        },
    };
    let sub = tail.map(str::to_owned);
    let valid = AttrPath::parse(&format!("{head}{}", sub.as_ref().map(|s| format!(".{s}")).unwrap_or_default()));
    if valid.is_none() {
        return Err(bad("expected attribute, attribute.subAttribute or attribute[filter].subAttribute."));
    }
    Ok(Path { ext, whole_ext: false, attr: head.to_owned(), filter, sub, text: text.to_owned() })
}

/// The index of the `]` closing the `[` at `open`, skipping quoted strings.
fn closing_bracket(s: &str, open: usize) -> Option<usize> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i <= open) {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            ']' if !in_str => return Some(i),
            _ => {}
        }
    }
    None
}

fn clip(s: &str) -> String {
    steward_domain::text::clip(s, 120)
}

/// Attributes whose values are lists.
fn multi_valued(attr: &str) -> bool {
    ["emails", "addresses", "members", "phoneNumbers", "ims", "photos", "entitlements", "roles", "x509Certificates"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(attr))
}

/// Attributes no client may write.
fn read_only(attr: &str, target: Target) -> bool {
    ["id", "meta", "schemas"].iter().any(|a| a.eq_ignore_ascii_case(attr))
        || (target == Target::User && attr.eq_ignore_ascii_case("groups"))
}

/// The key under which `name` is held in `m` (names ignore case), or `name` itself.
fn key_of(m: &Map<String, Value>, name: &str) -> String {
    m.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_owned())
}

/// Applies the operations, in order, to a rendered resource.
pub fn apply(resource: &mut Value, ops: &[Operation], target: Target) -> Result<(), ScimError> {
    let Value::Object(root) = resource else {
        return Err(ScimError::invalid_value("The resource is not an object."));
    };
    for (i, o) in ops.iter().enumerate() {
        apply_one(root, o, target).map_err(|e| match e {
            ScimError::Request { status, scim_type, detail } => {
                ScimError::Request { status, scim_type, detail: format!("Operations[{i}]: {detail}") }
            }
            other => other,
        })?;
    }
    Ok(())
}

fn apply_one(root: &mut Map<String, Value>, o: &Operation, target: Target) -> Result<(), ScimError> {
    match (&o.path, o.op) {
        (None, Op::Remove) => Err(ScimError::no_target("'remove' needs a path naming what to remove.")),
        (None, op) => {
            let Some(Value::Object(values)) = &o.value else {
                return Err(ScimError::invalid_value(
                    "An 'add' or 'replace' without a path needs a JSON object of attributes as its value.",
                ));
            };
            for (k, v) in values {
                // What a client echoes back of the read-only attributes changes nothing.
                if read_only(k, target) {
                    continue;
                }
                let p = parse_path(k, target)?;
                set(root, &p, v.clone(), op, target)?;
            }
            Ok(())
        }
        (Some(path), Op::Remove) => remove(root, &parse_path(path, target)?, o.value.as_ref(), target),
        (Some(path), op) => {
            let v = o.value.clone().ok_or_else(|| {
                ScimError::invalid_value(format!("'{}' of '{}' needs a value.", op_name(op), clip(path)))
            })?;
            set(root, &parse_path(path, target)?, v, op, target)
        }
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Remove => "remove",
        Op::Replace => "replace",
    }
}

/// The map a path's attribute lives in: the resource, or its enterprise extension (made when
/// `create`).
fn container<'a>(root: &'a mut Map<String, Value>, p: &Path, create: bool) -> Option<&'a mut Map<String, Value>> {
    if !p.ext {
        return Some(root);
    }
    let key = key_of(root, ENTERPRISE_USER);
    if create && !matches!(root.get(&key), Some(Value::Object(_))) {
        root.insert(key.clone(), Value::Object(Map::new()));
    }
    match root.get_mut(&key) {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn set(root: &mut Map<String, Value>, p: &Path, value: Value, op: Op, target: Target) -> Result<(), ScimError> {
    if p.whole_ext {
        let Value::Object(values) = value else {
            return Err(ScimError::invalid_value(format!("The value of '{}' must be a JSON object.", clip(&p.text))));
        };
        for (k, v) in values {
            let (attr, sub) = match k.split_once('.') {
                Some((a, s)) => (a.to_owned(), Some(s.to_owned())),
                None => (k, None),
            };
            let inner = Path { ext: true, whole_ext: false, attr, filter: None, sub, text: p.text.clone() };
            set(root, &inner, v, op, target)?;
        }
        return Ok(());
    }
    if !p.ext && read_only(&p.attr, target) {
        return Err(ScimError::mutability(format!("'{}' is read-only.", p.attr)));
    }
    let Some(m) = container(root, p, true) else {
        return Err(ScimError::invalid_path(format!("'{}' cannot be reached.", clip(&p.text))));
    };
    let key = key_of(m, &p.attr);
    match (&p.filter, &p.sub) {
        (None, None) => {
            let new = match (m.remove(&key), value, op) {
                // Add to a list: the new items join those there, each once.
                (Some(Value::Array(mut items)), v, Op::Add) => {
                    for item in into_items(v) {
                        if !items.iter().any(|x| same_item(x, &item)) {
                            items.push(item);
                        }
                    }
                    Value::Array(items)
                }
                // Add to a complex attribute: the given sub-attributes replace theirs.
                (Some(Value::Object(mut old)), Value::Object(new), Op::Add) => {
                    for (k, v) in new {
                        old.insert(key_of(&old, &k), v);
                    }
                    Value::Object(old)
                }
                (_, v, _) if multi_valued(&p.attr) && !v.is_array() => Value::Array(vec![v]),
                (_, v, _) => v,
            };
            m.insert(key, new);
        }
        (None, Some(sub)) => match m.get_mut(&key) {
            Some(Value::Object(o)) => {
                o.insert(key_of(o, sub), value);
            }
            Some(Value::Array(items)) if !items.is_empty() => {
                for item in items.iter_mut() {
                    if let Value::Object(o) = item {
                        o.insert(key_of(o, sub), value.clone());
                    }
                }
            }
            Some(Value::Array(_)) | None => {
                let mut o = Map::new();
                o.insert(sub.clone(), value);
                let v = if multi_valued(&p.attr) { Value::Array(vec![Value::Object(o)]) } else { Value::Object(o) };
                m.insert(key, v);
            }
            Some(_) => {
                return Err(ScimError::invalid_path(format!("'{}' has no sub-attributes.", p.attr)));
            }
        },
        (Some(filter), sub) => {
            let items = match m.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items,
                _ => return Err(ScimError::invalid_path(format!("'{}' is not multi-valued.", p.attr))),
            };
            let mut matched = 0;
            for item in items.iter_mut().filter(|i| item_matches(filter, i)) {
                matched += 1;
                match (sub, item) {
                    (Some(sub), Value::Object(o)) => {
                        o.insert(key_of(o, sub), value.clone());
                    }
                    (None, Value::Object(o)) if value.is_object() => {
                        if let Value::Object(new) = &value {
                            for (k, v) in new {
                                o.insert(key_of(o, k), v.clone());
                            }
                        }
                    }
                    (_, item) => *item = value.clone(),
                }
            }
            if matched == 0 {
                // Members are named by id: replacing one that is not there has no target.
                if p.attr.eq_ignore_ascii_case("members") {
                    return Err(ScimError::no_target(format!("No member matches '{}'.", clip(&p.text))));
                }
                // `emails[type eq "work"].value` on a user without one: the item is made.
                let mut item = Map::new();
                equalities(filter, &mut item);
                match (sub, value) {
                    (Some(sub), v) => {
                        item.insert(sub.clone(), v);
                    }
                    (None, Value::Object(new)) => item.extend(new),
                    (None, _) => {
                        return Err(ScimError::no_target(format!("No item matches '{}'.", clip(&p.text))));
                    }
                }
                items.push(Value::Object(item));
            }
        }
    }
    Ok(())
}

fn into_items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}

/// Two items of a list are the same when their `value`s are (ignoring case), or when they are
/// equal.
fn same_item(a: &Value, b: &Value) -> bool {
    let value = |v: &Value| match v {
        Value::Object(o) => o.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")).map(|(_, v)| v.clone()),
        other => Some(other.clone()),
    };
    match (value(a), value(b)) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(&y),
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The `attr eq "value"` terms of a filter's top-level `and`: what an item made for a filtered
/// path that matched nothing holds.
fn equalities(f: &Filter, into: &mut Map<String, Value>) {
    match f {
        Filter::And(v) => v.iter().for_each(|f| equalities(f, into)),
        Filter::Compare(p, CompareOp::Eq, lit) => {
            let v = match lit {
                Literal::Str(s) => Value::String(s.clone()),
                Literal::Bool(b) => Value::Bool(*b),
                _ => return,
            };
            into.insert(p.sub.clone().unwrap_or_else(|| p.name.clone()), v);
        }
        _ => {}
    }
}

fn remove(root: &mut Map<String, Value>, p: &Path, value: Option<&Value>, target: Target) -> Result<(), ScimError> {
    if p.whole_ext {
        let key = key_of(root, ENTERPRISE_USER);
        root.remove(&key);
        return Ok(());
    }
    if !p.ext && read_only(&p.attr, target) {
        return Err(ScimError::mutability(format!("'{}' is read-only.", p.attr)));
    }
    if !p.ext && target == Target::User && p.attr.eq_ignore_ascii_case("userName") {
        return Err(ScimError::mutability("userName is required and cannot be removed."));
    }
    let Some(m) = container(root, p, false) else { return Ok(()) };
    let key = key_of(m, &p.attr);
    match (&p.filter, &p.sub) {
        (None, None) => match (m.get_mut(&key), value) {
            // Entra ID removes members as `{"path": "members", "value": [{"value": id}]}`.
            (Some(Value::Array(items)), Some(v)) => {
                let gone = into_items(v.clone());
                items.retain(|x| !gone.iter().any(|g| same_item(x, g)));
                if items.is_empty() {
                    m.remove(&key);
                }
            }
            _ => {
                m.remove(&key);
            }
        },
        (None, Some(sub)) => match m.get_mut(&key) {
            Some(Value::Object(o)) => {
                let k = key_of(o, sub);
                o.remove(&k);
                if o.is_empty() {
                    m.remove(&key);
                }
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::Object(o) = item {
                        let k = key_of(o, sub);
                        o.remove(&k);
                    }
                }
            }
            _ => {}
        },
        (Some(filter), None) => {
            if let Some(Value::Array(items)) = m.get_mut(&key) {
                items.retain(|i| !item_matches(filter, i));
                if items.is_empty() {
                    m.remove(&key);
                }
            }
        }
        (Some(filter), Some(sub)) => {
            if let Some(Value::Array(items)) = m.get_mut(&key) {
                for item in items.iter_mut().filter(|i| item_matches(filter, i)) {
                    if let Value::Object(o) = item {
                        let k = key_of(o, sub);
                        o.remove(&k);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(mut v: Value, target: Target, ops: Value) -> Result<Value, ScimError> {
        let ops = read(&json!({"schemas": [PATCH_OP], "Operations": ops}))?;
        apply(&mut v, &ops, target)?;
        Ok(v)
    }

    fn user() -> Value {
        json!({"userName": "a@x.io", "active": true, "displayName": "A",
            "emails": [{"value": "a@x.io", "type": "work", "primary": true}]})
    }

    #[test]
    fn entra_user_operations() {
        let v = run(
            user(),
            Target::User,
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.io"},
                {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Oslo"},
                {"op": "Add", "path": "name.givenName", "value": "Ada"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-1"},
                {"op": "Replace", "value": {"displayName": "B", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D", "name.familyName": "L"}},
            ]),
        )
        .unwrap();
        assert_eq!(v["active"], json!("False"));
        assert_eq!(v["emails"], json!([{"value": "b@x.io", "type": "work", "primary": true}]));
        assert_eq!(v["addresses"], json!([{"type": "work", "locality": "Oslo"}]));
        assert_eq!(v["name"], json!({"givenName": "Ada", "familyName": "L"}));
        assert_eq!(v["displayName"], json!("B"));
        assert_eq!(v[ENTERPRISE_USER], json!({"manager": "m-1", "department": "R&D"}));
        let v = run(v, Target::User, json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}, {"op": "remove", "path": "emails"}])).unwrap();
        assert_eq!(v[ENTERPRISE_USER], json!({"department": "R&D"}));
        assert!(v.get("emails").is_none());
    }

    #[test]
    fn members_are_added_and_removed() {
        let g = json!({"displayName": "G", "members": [{"value": "a"}, {"value": "b"}]});
        let v = run(
            g,
            Target::Group,
            json!([
                {"op": "add", "path": "members", "value": [{"value": "c"}, {"value": "A"}]},
                {"op": "remove", "path": "members[value eq \"b\"]"},
                {"op": "Remove", "path": "members", "value": [{"value": "c"}]},
            ]),
        )
        .unwrap();
        assert_eq!(v["members"], json!([{"value": "a"}]), "added once, removed by filter and by value");
        let v =
            run(v, Target::Group, json!([{"op": "replace", "path": "members", "value": [{"value": "z"}]}])).unwrap();
        assert_eq!(v["members"], json!([{"value": "z"}]));
        let e = run(
            v.clone(),
            Target::Group,
            json!([{"op": "replace", "path": "members[value eq \"q\"]", "value": {"value": "y"}}]),
        )
        .unwrap_err();
        assert!(matches!(e, ScimError::Request { scim_type: Some(super::super::ScimType::NoTarget), .. }), "{e}");
        let v = run(v, Target::Group, json!([{"op": "remove", "path": "members"}])).unwrap();
        assert!(v.get("members").is_none());
    }

    #[test]
    fn refusals() {
        for (ops, says) in [
            (json!([{"op": "remove"}]), "needs a path"),
            (json!([{"op": "replace", "path": "id", "value": "x"}]), "read-only"),
            (json!([{"op": "remove", "path": "userName"}]), "cannot be removed"),
            (json!([{"op": "move", "path": "x"}]), "must be \"add\""),
            (json!([{"op": "add", "path": "emails[type eq \"work\"", "value": "x"}]), "not closed"),
            (json!([{"op": "add", "path": "urn:x:y:z", "value": "x"}]), "schema"),
            (json!([{"op": "add", "path": "displayName"}]), "needs a value"),
            (json!([{"op": "add", "value": "x"}]), "JSON object"),
            (json!([]), "empty"),
        ] {
            let e = run(user(), Target::User, ops.clone()).unwrap_err().to_string();
            assert!(e.contains(says), "{ops}: {e}");
        }
        let e = read(&json!({"Operations": [{"op": "add"}], "schemas": ["x"]})).unwrap_err().to_string();
        assert!(e.contains("schemas"), "{e}");
    }
}
