//! SCIM filter expressions (RFC 7644 §3.4.2.2): the parser from text to a `Filter` tree, and
//! the in-memory evaluation of a value filter against one item of a multi-valued attribute
//! (what PATCH paths such as `members[value eq "…"]` select). What an attribute means for a
//! resource type, and the SQL, live elsewhere (`scim::query`, the store).
//!
//! Hostile filters are bounded before they cost anything: at most `MAX_LEN` bytes, nested at
//! most `MAX_DEPTH` levels, at most `MAX_TERMS` comparisons; `and`/`or` chains are flat n-ary
//! nodes, so their length costs no recursion.

use std::fmt;

use serde_json::Value;

/// The longest filter accepted, in bytes.
pub const MAX_LEN: usize = 8 * 1024;
/// The deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 64;
/// The most comparisons one filter may hold.
pub const MAX_TERMS: usize = 200;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`
    Compare(AttrPath, CompareOp, Literal),
    /// `attr[filter]`: some item of the multi-valued `attr` matches the inner filter.
    ValuePath(AttrPath, Box<Filter>),
}

/// `[urn:]name[.sub]`, as written (names compare case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `[urn:]name[.sub]`. `None` when it is not an attribute path.
    pub fn parse(s: &str) -> Option<Self> {
        let (urn, rest) = match s.rfind(':') {
            Some(i) => (Some(s.get(..i)?.to_owned()), s.get(i + 1..)?),
            None => (None, s),
        };
        if urn.as_deref().is_some_and(|u| !u.to_ascii_lowercase().starts_with("urn:")) {
            return None;
        }
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        if !is_name(name) || sub.is_some_and(|s| !is_name(s)) {
            return None;
        }
        Some(Self { urn, name: name.to_owned(), sub: sub.map(str::to_owned) })
    }

    /// Whether the name (and sub-attribute) are these, ignoring case.
    pub fn is(&self, name: &str, sub: Option<&str>) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && match (&self.sub, sub) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// ATTRNAME: a letter, then letters, digits, `-` and `_`; or `$ref`.
fn is_name(s: &str) -> bool {
    s.eq_ignore_ascii_case("$ref")
        || s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// A comparison value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
    Num(f64),
    Null,
}

/// Why a filter was refused; the message is for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(m: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(m.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Str(String),
    Word(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => f.write_str("'('"),
            Self::Close => f.write_str("')'"),
            Self::OpenBracket => f.write_str("'['"),
            Self::CloseBracket => f.write_str("']'"),
            Self::Str(s) => write!(f, "the string \"{}\"", steward_domain::text::clip(s, 40)),
            Self::Word(w) => write!(f, "'{}'", steward_domain::text::clip(w, 40)),
        }
    }
}

fn lex(input: &str) -> Result<Vec<Tok>, FilterError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    '[' => Tok::OpenBracket,
                    _ => Tok::CloseBracket,
                });
            }
            '"' => {
                // A JSON string: read up to the closing quote, escapes included, and let
                // serde_json decode it.
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (j, d) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == '"' {
                        end = Some(j);
                        break;
                    }
                }
                let Some(end) = end else { return err(format!("The string starting at offset {i} is not closed.")) };
                let raw = input.get(i..=end).unwrap_or("\"\"");
                let s: String = serde_json::from_str(raw)
                    .map_err(|_| FilterError(format!("The string starting at offset {i} has an invalid escape.")))?;
                out.push(Tok::Str(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_whitespace() || matches!(d, '(' | ')' | '[' | ']' | '"') {
                        break;
                    }
                    w.push(d);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// Parses a filter.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_LEN {
        return err(format!("The filter is {} bytes long; at most {MAX_LEN} are accepted.", input.len()));
    }
    let toks = lex(input)?;
    if toks.is_empty() {
        return err("The filter is empty.");
    }
    let mut p = Parser { toks, pos: 0, terms: 0 };
    let f = p.or(0, false)?;
    match p.peek() {
        None => Ok(f),
        Some(t) => err(format!("Unexpected {t} after a complete filter.")),
    }
}

/// Parses the value filter of a PATCH path (`type eq "work"` in `emails[type eq "work"]`).
pub fn parse_value_filter(input: &str) -> Result<Filter, FilterError> {
    let f = parse(input)?;
    if contains_value_path(&f) {
        return err("A value filter cannot hold another value path.");
    }
    Ok(f)
}

fn contains_value_path(f: &Filter) -> bool {
    // Iterative, so a deep tree costs no stack here either.
    let mut stack = vec![f];
    while let Some(f) = stack.pop() {
        match f {
            Filter::ValuePath(..) => return true,
            Filter::And(v) | Filter::Or(v) => stack.extend(v.iter()),
            Filter::Not(f) => stack.push(f),
            Filter::Present(_) | Filter::Compare(..) => {}
        }
    }
    false
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }
    fn expect(&mut self, want: &Tok) -> Result<(), FilterError> {
        match self.next() {
            Some(t) if &t == want => Ok(()),
            Some(t) => err(format!("Expected {want} but found {t}.")),
            None => err(format!("Expected {want} but the filter ended.")),
        }
    }

    fn or(&mut self, depth: usize, inner: bool) -> Result<Filter, FilterError> {
        let mut terms = vec![self.and(depth, inner)?];
        while self.keyword("or") {
            self.next();
            terms.push(self.and(depth, inner)?);
        }
        Ok(if terms.len() == 1 { terms.pop().unwrap_or(Filter::Or(Vec::new())) } else { Filter::Or(terms) })
    }

    fn and(&mut self, depth: usize, inner: bool) -> Result<Filter, FilterError> {
        let mut terms = vec![self.unary(depth, inner)?];
        while self.keyword("and") {
            self.next();
            terms.push(self.unary(depth, inner)?);
        }
        Ok(if terms.len() == 1 { terms.pop().unwrap_or(Filter::And(Vec::new())) } else { Filter::And(terms) })
    }

    fn unary(&mut self, depth: usize, inner: bool) -> Result<Filter, FilterError> {
        if depth >= MAX_DEPTH {
            return err(format!("The filter is nested more than {MAX_DEPTH} levels deep."));
        }
        if self.keyword("not") {
            self.next();
            self.expect(&Tok::Open)?;
            let f = self.or(depth + 1, inner)?;
            self.expect(&Tok::Close)?;
            return Ok(Filter::Not(Box::new(f)));
        }
        match self.next() {
            Some(Tok::Open) => {
                let f = self.or(depth + 1, inner)?;
                self.expect(&Tok::Close)?;
                Ok(f)
            }
            Some(Tok::Word(w)) => {
                let Some(path) = AttrPath::parse(&w) else {
                    return err(format!("'{}' is not an attribute name.", steward_domain::text::clip(&w, 60)));
                };
                if matches!(self.peek(), Some(Tok::OpenBracket)) {
                    if inner {
                        return err("A value filter cannot hold another value path.");
                    }
                    self.next();
                    let f = self.or(depth + 1, true)?;
                    self.expect(&Tok::CloseBracket)?;
                    return Ok(Filter::ValuePath(path, Box::new(f)));
                }
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return err(format!("The filter has more than {MAX_TERMS} comparisons."));
                }
                let op = match self.next() {
                    Some(Tok::Word(o)) if o.eq_ignore_ascii_case("pr") => return Ok(Filter::Present(path)),
                    Some(Tok::Word(o)) => CompareOp::parse(&o).ok_or_else(|| {
                        FilterError(format!(
                            "'{}' is not an operator; use eq, ne, co, sw, ew, gt, ge, lt, le or pr.",
                            steward_domain::text::clip(&o, 20)
                        ))
                    })?,
                    Some(t) => return err(format!("Expected an operator after '{path}' but found {t}.")),
                    None => return err(format!("Expected an operator after '{path}' but the filter ended.")),
                };
                let value = match self.next() {
                    Some(Tok::Str(s)) => Literal::Str(s),
                    Some(Tok::Word(v)) => literal(&v)?,
                    Some(t) => return err(format!("Expected a value after '{path}' but found {t}.")),
                    None => return err(format!("Expected a value after '{path}' but the filter ended.")),
                };
                Ok(Filter::Compare(path, op, value))
            }
            Some(t) => err(format!("Expected an attribute, 'not' or '(' but found {t}.")),
            None => err("The filter ended where a comparison was expected."),
        }
    }
}

fn literal(v: &str) -> Result<Literal, FilterError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(Literal::Bool(true)),
        "false" => Ok(Literal::Bool(false)),
        "null" => Ok(Literal::Null),
        _ => match serde_json::from_str::<Value>(v) {
            Ok(Value::Number(n)) => Ok(Literal::Num(n.as_f64().unwrap_or(f64::NAN))),
            _ => err(format!(
                "'{}' is not a value: strings are written in double quotes, or use true, false, null or a number.",
                steward_domain::text::clip(v, 40)
            )),
        },
    }
}

/// Whether one item of a multi-valued attribute (an object such as `{"value": …, "type":
/// "work"}`) matches a value filter. Text compares ignoring case (every sub-attribute Steward
/// has is `caseExact: false`); a missing sub-attribute matches only `ne` and `not`.
pub fn item_matches(f: &Filter, item: &Value) -> bool {
    match f {
        Filter::And(v) => v.iter().all(|f| item_matches(f, item)),
        Filter::Or(v) => v.iter().any(|f| item_matches(f, item)),
        Filter::Not(f) => !item_matches(f, item),
        Filter::ValuePath(..) => false,
        Filter::Present(p) => sub_value(item, p).is_some_and(|v| !v.is_null() && v != &Value::String(String::new())),
        Filter::Compare(p, op, lit) => compare(sub_value(item, p), *op, lit),
    }
}

/// The value a path names inside one item: its last name (`value` of `members.value`).
fn sub_value<'a>(item: &'a Value, p: &AttrPath) -> Option<&'a Value> {
    let name = p.sub.as_deref().unwrap_or(&p.name);
    match item {
        Value::Object(m) => m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v),
        // A multi-valued attribute of plain values: `value` is the item itself.
        other if name.eq_ignore_ascii_case("value") => Some(other),
        _ => None,
    }
}

fn compare(v: Option<&Value>, op: CompareOp, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let v = v.filter(|v| !v.is_null());
    let ord: Option<Ordering> = match (v, lit) {
        (None, Literal::Null) => return matches!(op, CompareOp::Eq),
        (None, _) => return matches!(op, CompareOp::Ne),
        (Some(_), Literal::Null) => return matches!(op, CompareOp::Ne),
        (Some(Value::String(s)), Literal::Str(l)) => {
            let (s, l) = (s.to_lowercase(), l.to_lowercase());
            match op {
                CompareOp::Co => return s.contains(&l),
                CompareOp::Sw => return s.starts_with(&l),
                CompareOp::Ew => return s.ends_with(&l),
                _ => Some(s.cmp(&l)),
            }
        }
        // Entra's string booleans ("True") against a boolean literal, and the reverse.
        (Some(Value::String(s)), Literal::Bool(b)) => parse_bool(s).map(|x| x.cmp(b)),
        (Some(Value::Bool(x)), Literal::Str(s)) => parse_bool(s).map(|b| x.cmp(&b)),
        (Some(Value::Bool(x)), Literal::Bool(b)) => Some(x.cmp(b)),
        (Some(Value::Number(n)), Literal::Num(l)) => n.as_f64().and_then(|x| x.partial_cmp(l)),
        _ => None,
    };
    match (op, ord) {
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Ne, o) => o != Some(Ordering::Equal),
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        _ => false,
    }
}

/// `true`/`false` in any case (Entra sends `"True"`, `"False"`).
pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cmp(name: &str, op: CompareOp, v: &str) -> Filter {
        Filter::Compare(AttrPath::parse(name).unwrap(), op, Literal::Str(v.into()))
    }

    #[test]
    fn comparisons_and_precedence() {
        let f = parse(r#"userName eq "a@x.io" or displayName co "b" and not (active eq false)"#).unwrap();
        let want = Filter::Or(vec![
            cmp("userName", CompareOp::Eq, "a@x.io"),
            Filter::And(vec![
                cmp("displayName", CompareOp::Co, "b"),
                Filter::Not(Box::new(Filter::Compare(
                    AttrPath::parse("active").unwrap(),
                    CompareOp::Eq,
                    Literal::Bool(false),
                ))),
            ]),
        ]);
        assert_eq!(f, want);
        assert_eq!(parse("(USERNAME EQ \"x\")").unwrap(), cmp("USERNAME", CompareOp::Eq, "x"), "operators ignore case");
    }

    #[test]
    fn paths_urns_and_value_paths() {
        let f = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "A""#).unwrap();
        let Filter::Compare(p, _, _) = f else { panic!() };
        assert_eq!(p.urn.as_deref(), Some("urn:ietf:params:scim:schemas:core:2.0:User"));
        assert!(p.is("name", Some("givenname")));
        let f = parse(r#"emails[type eq "work" and value co "@x"] and meta.lastModified gt "2030-01-01T00:00:00Z""#);
        assert!(matches!(f, Ok(Filter::And(v)) if matches!(v[0], Filter::ValuePath(..))));
        assert!(parse(r#"emails[value co "a" and x[y eq 1]]"#).is_err(), "no value path inside a value path");
        assert_eq!(
            parse(r#"title eq "a \"quoted\" \u00e9""#).unwrap(),
            cmp("title", CompareOp::Eq, "a \"quoted\" é"),
            "JSON escapes"
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, says) in [
            ("", "empty"),
            ("userName", "operator"),
            ("userName eq", "value"),
            ("userName xx \"a\"", "not an operator"),
            ("userName eq a", "not a value"),
            ("userName eq \"a", "not closed"),
            ("(userName eq \"a\"", "')'"),
            ("userName eq \"a\" )", "Unexpected"),
            ("1abc eq \"a\"", "not an attribute"),
            ("not userName eq \"a\"", "'('"),
        ] {
            let e = parse(bad).unwrap_err().0;
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn hostile_filters_are_bounded() {
        let deep = format!("{}userName pr{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&deep).unwrap_err().0.contains("bytes"));
        let deep = format!("{}userName pr{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).unwrap_err().0.contains("nested"));
        let nots = format!("{}userName pr{}", "not (".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(parse(&nots).unwrap_err().0.contains("nested"));
        let long = vec!["userName pr"; MAX_TERMS + 1].join(" or ");
        assert!(parse(&long).unwrap_err().0.contains("comparisons"));
        let ok = vec!["userName pr"; MAX_TERMS].join(" and ");
        assert!(matches!(parse(&ok), Ok(Filter::And(v)) if v.len() == MAX_TERMS));
    }

    #[test]
    fn items_match_value_filters() {
        let f = parse_value_filter(r#"type eq "Work" and value sw "ADA""#).unwrap();
        assert!(item_matches(&f, &json!({"type": "work", "value": "ada@x.io"})));
        assert!(!item_matches(&f, &json!({"type": "home", "value": "ada@x.io"})));
        let f = parse_value_filter(r#"primary eq true"#).unwrap();
        assert!(item_matches(&f, &json!({"primary": "True"})), "Entra's string booleans");
        assert!(!item_matches(&f, &json!({"value": "x"})));
        let f = parse_value_filter(r#"type ne "work""#).unwrap();
        assert!(item_matches(&f, &json!({"value": "x"})), "absent is not equal");
        let f = parse_value_filter(r#"value eq "A""#).unwrap();
        assert!(item_matches(&f, &json!("a")), "a plain item is its own value");
    }
}
