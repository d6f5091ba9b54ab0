//! What a SCIM list request asks the store for: the filter resolved against the attributes
//! Steward keeps for users or groups (`ScimCond`, typed, literals already folded where the
//! attribute ignores case), the sort attribute, and the page. The store compiles `ScimCond` to
//! SQL; nothing here knows a column.

use jiff::Timestamp;

use super::filter::{AttrPath, CompareOp, Filter, Literal};
use super::{ENTERPRISE_USER, GROUP_SCHEMA, USER_SCHEMA};

/// Which kind of resource a query lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

/// An attribute the store can filter and sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimField {
    Id,
    ExternalId,
    Created,
    LastModified,
    // users
    UserName,
    DisplayName,
    GivenName,
    FamilyName,
    Formatted,
    Title,
    UserType,
    Active,
    Email,
    Locality,
    Country,
    EmployeeNumber,
    Organization,
    Department,
    Manager,
    // groups
    Member,
}

/// How a field compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text; `case_exact: false` compares the value folded with `str::to_lowercase` (the store
    /// reads the folded column, and the literal arrives folded).
    Text {
        case_exact: bool,
    },
    Bool,
    Time,
}

impl ScimField {
    pub fn kind(self) -> FieldKind {
        match self {
            // Ids and external ids: ids are lowercase GUIDs, so a folded literal matches them
            // whatever case the client wrote; externalId is the client's own, `caseExact`.
            Self::ExternalId => FieldKind::Text { case_exact: true },
            Self::Active => FieldKind::Bool,
            Self::Created | Self::LastModified => FieldKind::Time,
            _ => FieldKind::Text { case_exact: false },
        }
    }
}

/// A text or time comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
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

/// A resolved filter. Every test is two-valued: an absent attribute fails every positive
/// test and passes `ne` (and `not` of a positive test).
#[derive(Debug, Clone, PartialEq)]
pub enum ScimCond {
    All(Vec<ScimCond>),
    Any(Vec<ScimCond>),
    Not(Box<ScimCond>),
    Text { field: ScimField, op: TextOp, value: String },
    Bool { field: ScimField, value: bool },
    Time { field: ScimField, op: TextOp, value: Timestamp },
    Present(ScimField),
    Const(bool),
}

/// One page of a SCIM list.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimQuery {
    pub filter: Option<ScimCond>,
    /// Sorted by this field, then by id; by id alone when `None`.
    pub sort: Option<ScimField>,
    pub descending: bool,
    /// Rows skipped (`startIndex - 1`).
    pub offset: u64,
    /// Rows returned at most (`count`).
    pub limit: u64,
}

/// A page: the rows and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimPage<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// The field a path names in this resource (`emails.value` → `Email`), or why not.
pub fn field(kind: ResourceKind, p: &AttrPath) -> Result<ScimField, String> {
    match named(kind, p)? {
        Named::Field(f) => Ok(f),
        _ => Err(format!("'{p}' cannot be compared or sorted on; name one of its sub-attributes.")),
    }
}

/// What a path names.
enum Named {
    Field(ScimField),
    /// A complex or multi-valued attribute, present when any of these is.
    Group(&'static [ScimField]),
    /// `emails.type`, `emails.primary`, `addresses.type`: the one item Steward keeps is of
    /// type `work` and primary, whenever one of these is present.
    WorkItem(&'static [ScimField]),
    /// Always this value (`meta.resourceType`).
    Constant(&'static str),
}

const NAME: &[ScimField] = &[ScimField::GivenName, ScimField::FamilyName, ScimField::Formatted];
const EMAILS: &[ScimField] = &[ScimField::Email];
const ADDRESSES: &[ScimField] = &[ScimField::Locality, ScimField::Country];
const MANAGER: &[ScimField] = &[ScimField::Manager];
const MEMBERS: &[ScimField] = &[ScimField::Member];

fn named(kind: ResourceKind, p: &AttrPath) -> Result<Named, String> {
    let unknown = || format!("'{p}' is not an attribute Steward filters {kind:?} resources on.");
    let urn = p.urn.as_deref().map(str::to_ascii_lowercase);
    let core = match kind {
        ResourceKind::User => USER_SCHEMA,
        ResourceKind::Group => GROUP_SCHEMA,
    };
    let enterprise = match urn.as_deref() {
        None => None,
        Some(u) if u == core.to_ascii_lowercase() => Some(false),
        Some(u) if kind == ResourceKind::User && u == ENTERPRISE_USER.to_ascii_lowercase() => Some(true),
        Some(_) => return Err(unknown()),
    };
    let name = p.name.to_ascii_lowercase();
    let sub = p.sub.as_deref().map(str::to_ascii_lowercase);
    use ScimField as F;
    let f = |f| Ok(Named::Field(f));
    let core_user = kind == ResourceKind::User && enterprise != Some(true);
    let ext_user = kind == ResourceKind::User && enterprise != Some(false);
    let common = enterprise != Some(true);
    match (name.as_str(), sub.as_deref()) {
        ("id", None) if common => f(F::Id),
        ("externalid", None) if common => f(F::ExternalId),
        ("meta", Some("created")) if common => f(F::Created),
        ("meta", Some("lastmodified")) if common => f(F::LastModified),
        ("meta", Some("resourcetype")) if common => {
            Ok(Named::Constant(if kind == ResourceKind::User { "User" } else { "Group" }))
        }
        ("username", None) if core_user => f(F::UserName),
        ("displayname", None) if kind == ResourceKind::Group || core_user => f(F::DisplayName),
        ("name", None) if core_user => Ok(Named::Group(NAME)),
        ("name", Some("givenname")) if core_user => f(F::GivenName),
        ("name", Some("familyname")) if core_user => f(F::FamilyName),
        ("name", Some("formatted")) if core_user => f(F::Formatted),
        ("title", None) if core_user => f(F::Title),
        ("usertype", None) if core_user => f(F::UserType),
        ("active", None) if core_user => f(F::Active),
        ("emails", None) if core_user => Ok(Named::Group(EMAILS)),
        ("emails", Some("value")) if core_user => f(F::Email),
        ("emails", Some("type" | "primary")) if core_user => Ok(Named::WorkItem(EMAILS)),
        ("addresses", None) if core_user => Ok(Named::Group(ADDRESSES)),
        ("addresses", Some("locality")) if core_user => f(F::Locality),
        ("addresses", Some("country")) if core_user => f(F::Country),
        ("addresses", Some("type" | "primary")) if core_user => Ok(Named::WorkItem(ADDRESSES)),
        ("employeenumber", None) if ext_user => f(F::EmployeeNumber),
        ("organization", None) if ext_user => f(F::Organization),
        ("department", None) if ext_user => f(F::Department),
        ("manager", None) if ext_user => Ok(Named::Group(MANAGER)),
        ("manager", Some("value")) if ext_user => f(F::Manager),
        ("members", None) if kind == ResourceKind::Group => Ok(Named::Group(MEMBERS)),
        ("members", Some("value")) if kind == ResourceKind::Group => f(F::Member),
        ("members", Some("type")) if kind == ResourceKind::Group => Ok(Named::Constant("User")),
        _ => Err(unknown()),
    }
}

/// Resolves a parsed filter for a kind of resource. The message of an error is for the client
/// (`invalidFilter`).
pub fn resolve(kind: ResourceKind, f: &Filter) -> Result<ScimCond, String> {
    resolve_in(kind, f, None)
}

fn resolve_in(kind: ResourceKind, f: &Filter, parent: Option<&AttrPath>) -> Result<ScimCond, String> {
    Ok(match f {
        Filter::And(v) => ScimCond::All(v.iter().map(|f| resolve_in(kind, f, parent)).collect::<Result<_, _>>()?),
        Filter::Or(v) => ScimCond::Any(v.iter().map(|f| resolve_in(kind, f, parent)).collect::<Result<_, _>>()?),
        Filter::Not(f) => ScimCond::Not(Box::new(resolve_in(kind, f, parent)?)),
        Filter::ValuePath(p, inner) => {
            if parent.is_some() || p.sub.is_some() {
                return Err(format!("'{p}[…]' is not a value path Steward can filter on."));
            }
            resolve_in(kind, inner, Some(p))?
        }
        Filter::Present(p) => match named(kind, &within(parent, p))? {
            Named::Field(f) => present(f),
            Named::Group(fs) | Named::WorkItem(fs) => any_present(fs),
            Named::Constant(_) => ScimCond::Const(true),
        },
        Filter::Compare(p, op, lit) => {
            let p = within(parent, p);
            match named(kind, &p)? {
                Named::Field(f) => compare(f, &p, *op, lit)?,
                Named::WorkItem(fs) => {
                    // `emails.primary eq true`, `addresses.type eq "work"`
                    let want = if p.sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("primary")) {
                        Literal::Bool(true)
                    } else {
                        Literal::Str("work".into())
                    };
                    constant_item(fs, *op, lit, &want, &p)?
                }
                Named::Constant(c) => match (op, lit) {
                    (CompareOp::Eq, Literal::Str(s)) => ScimCond::Const(s.eq_ignore_ascii_case(c)),
                    (CompareOp::Ne, Literal::Str(s)) => ScimCond::Const(!s.eq_ignore_ascii_case(c)),
                    _ => return Err(format!("'{p}' can only be compared with eq or ne and a string.")),
                },
                Named::Group(_) => {
                    return Err(format!("'{p}' is a complex attribute; compare one of its sub-attributes."));
                }
            }
        }
    })
}

/// A sub-attribute inside a value path: `emails[value eq …]` is `emails.value eq …`.
fn within(parent: Option<&AttrPath>, p: &AttrPath) -> AttrPath {
    match parent {
        Some(parent) => AttrPath { urn: parent.urn.clone(), name: parent.name.clone(), sub: Some(p.name.clone()) },
        None => p.clone(),
    }
}

fn present(f: ScimField) -> ScimCond {
    match f.kind() {
        FieldKind::Bool | FieldKind::Time => ScimCond::Const(true),
        FieldKind::Text { .. } => ScimCond::Present(f),
    }
}

fn any_present(fs: &[ScimField]) -> ScimCond {
    match fs {
        [one] => present(*one),
        _ => ScimCond::Any(fs.iter().map(|f| present(*f)).collect()),
    }
}

/// `emails.type eq "work"`: true exactly when the item exists.
fn constant_item(
    fs: &[ScimField],
    op: CompareOp,
    lit: &Literal,
    want: &Literal,
    p: &AttrPath,
) -> Result<ScimCond, String> {
    let same = match (lit, want) {
        (Literal::Str(a), Literal::Str(b)) => a.eq_ignore_ascii_case(b),
        (Literal::Bool(a), Literal::Bool(b)) => a == b,
        (Literal::Str(a), Literal::Bool(b)) => super::filter::parse_bool(a) == Some(*b),
        _ => return Err(format!("'{p}' cannot be compared with that value.")),
    };
    match op {
        CompareOp::Eq if same => Ok(any_present(fs)),
        CompareOp::Eq => Ok(ScimCond::Const(false)),
        CompareOp::Ne if same => Ok(ScimCond::Not(Box::new(any_present(fs)))),
        CompareOp::Ne => Ok(ScimCond::Const(true)),
        _ => Err(format!("'{p}' can only be compared with eq or ne.")),
    }
}

fn compare(f: ScimField, p: &AttrPath, op: CompareOp, lit: &Literal) -> Result<ScimCond, String> {
    let text_op = match op {
        CompareOp::Eq => TextOp::Eq,
        CompareOp::Ne => TextOp::Ne,
        CompareOp::Co => TextOp::Co,
        CompareOp::Sw => TextOp::Sw,
        CompareOp::Ew => TextOp::Ew,
        CompareOp::Gt => TextOp::Gt,
        CompareOp::Ge => TextOp::Ge,
        CompareOp::Lt => TextOp::Lt,
        CompareOp::Le => TextOp::Le,
    };
    if *lit == Literal::Null {
        // `attr eq null` is "not present"; `attr ne null` is "present".
        return match op {
            CompareOp::Eq => Ok(ScimCond::Not(Box::new(present(f)))),
            CompareOp::Ne => Ok(present(f)),
            _ => Err(format!("'{p}' can only be compared with null by eq or ne.")),
        };
    }
    match f.kind() {
        FieldKind::Text { case_exact } => {
            let Literal::Str(s) = lit else {
                return Err(format!("'{p}' is text: compare it with a string in double quotes."));
            };
            // `co ""`, `sw ""`, `ew ""` hold for every value there is.
            if s.is_empty() && matches!(text_op, TextOp::Co | TextOp::Sw | TextOp::Ew) {
                return Ok(ScimCond::Present(f));
            }
            let value = if case_exact { s.clone() } else { s.to_lowercase() };
            Ok(ScimCond::Text { field: f, op: text_op, value })
        }
        FieldKind::Bool => {
            let b = match lit {
                Literal::Bool(b) => *b,
                Literal::Str(s) => super::filter::parse_bool(s)
                    .ok_or_else(|| format!("'{p}' is a boolean: compare it with true or false."))?,
                _ => return Err(format!("'{p}' is a boolean: compare it with true or false.")),
            };
            match op {
                CompareOp::Eq => Ok(ScimCond::Bool { field: f, value: b }),
                CompareOp::Ne => Ok(ScimCond::Bool { field: f, value: !b }),
                _ => Err(format!("'{p}' is a boolean: only eq, ne and pr apply.")),
            }
        }
        FieldKind::Time => {
            let Literal::Str(s) = lit else {
                return Err(format!(
                    "'{p}' is a date-time: compare it with a string such as \"2030-01-01T00:00:00Z\"."
                ));
            };
            let t = steward_domain::time::parse_datetime(s).map_err(|e| format!("'{p}': {e}"))?;
            if matches!(text_op, TextOp::Co | TextOp::Sw | TextOp::Ew) {
                return Err(format!("'{p}' is a date-time: use eq, ne, gt, ge, lt or le."));
            }
            Ok(ScimCond::Time { field: f, op: text_op, value: t })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter::parse;
    use super::*;

    fn user(f: &str) -> Result<ScimCond, String> {
        resolve(ResourceKind::User, &parse(f).unwrap())
    }

    #[test]
    fn user_attributes_resolve_with_folded_literals() {
        assert_eq!(
            user(r#"userName eq "Ada@X.io""#).unwrap(),
            ScimCond::Text { field: ScimField::UserName, op: TextOp::Eq, value: "ada@x.io".into() }
        );
        assert_eq!(
            user(r#"externalId eq "AbC""#).unwrap(),
            ScimCond::Text { field: ScimField::ExternalId, op: TextOp::Eq, value: "AbC".into() },
            "externalId is caseExact"
        );
        assert_eq!(
            user(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#).unwrap(),
            ScimCond::Text { field: ScimField::Department, op: TextOp::Eq, value: "r&d".into() }
        );
        assert_eq!(
            user(r#"emails[type eq "work" and value co "@X"]"#).unwrap(),
            ScimCond::All(vec![
                ScimCond::Present(ScimField::Email),
                ScimCond::Text { field: ScimField::Email, op: TextOp::Co, value: "@x".into() },
            ])
        );
        assert_eq!(user("active eq false").unwrap(), ScimCond::Bool { field: ScimField::Active, value: false });
        assert_eq!(user("active ne \"True\"").unwrap(), ScimCond::Bool { field: ScimField::Active, value: false });
        assert!(matches!(user(r#"meta.lastModified gt "2030-01-01T00:00:00Z""#), Ok(ScimCond::Time { .. })));
        assert_eq!(user(r#"meta.resourceType eq "user""#).unwrap(), ScimCond::Const(true));
        assert_eq!(user("title eq null").unwrap(), ScimCond::Not(Box::new(ScimCond::Present(ScimField::Title))));
    }

    #[test]
    fn unknown_or_mistyped_attributes_are_refused() {
        for (f, says) in [
            (r#"nickName eq "x""#, "not an attribute"),
            (r#"members.value eq "x""#, "not an attribute"),
            (r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x""#, "not an attribute"),
            (r#"active eq "maybe""#, "boolean"),
            ("userName eq 42", "string"),
            (r#"active gt true"#, "only eq"),
            (r#"meta.created co "2030""#, "date-time"),
            (r#"meta.created gt "yesterday""#, "not a valid date-time"),
            (r#"name eq "x""#, "complex"),
        ] {
            let e = user(f).unwrap_err();
            assert!(e.contains(says), "{f}: {e}");
        }
    }

    #[test]
    fn group_members() {
        let g = |f: &str| resolve(ResourceKind::Group, &parse(f).unwrap());
        assert_eq!(
            g(r#"members[value eq "ABC"]"#).unwrap(),
            ScimCond::Text { field: ScimField::Member, op: TextOp::Eq, value: "abc".into() }
        );
        assert_eq!(g("members pr").unwrap(), ScimCond::Present(ScimField::Member));
        assert!(g(r#"userName eq "x""#).is_err());
    }
}
