//! Entra dynamic membership rules (`attributeRuleMembers.membershipRule`): parsing the rule
//! text into an expression tree and evaluating it against a [`User`].
//!
//! The syntax is Entra's for single-valued user properties:
//! `(user.department -eq "Sales") -and -not (user.city -in ["Seattle", "Sydney"])`.
//!
//! - Properties: `user.<name>` for the names of [`UserProperty`], case-insensitive.
//! - Comparisons: `-eq -ne -startsWith -notStartsWith -contains -notContains -match -notMatch
//!   -in -notIn`; logic: `-not` (tightest), `-and`, `-or` (loosest); parentheses group.
//!   Operators are case-insensitive and need their dash. `-any` / `-all` are rejected.
//! - Values: strings in double or single quotes (`\"` / `\'` escape the quote, every other
//!   backslash is kept), `true` / `false` (only for `user.accountEnabled`), `null` (only with
//!   `-eq` / `-ne`), arrays of strings (only, and always, for `-in` / `-notIn`, never empty).
//! - Text is compared case-insensitively. An absent property equals `null`; every other
//!   comparison with it is false except the negative ones (`-ne "x"`, `-notStartsWith`,
//!   `-notContains`, `-notMatch`, `-notIn`), which are true.
//! - `-match` is a case-insensitive search ([`Pattern`], the `regex` crate: linear time).
//! - Limits: [`MAX_CHARS`] characters of rule text, [`MAX_DEPTH`] levels of nesting (flat
//!   `-and` / `-or` chains are not nesting; the text limit bounds them to a few hundred). Syntax
//!   errors name the 1-based character position of the offending token (one past the last
//!   character when the rule ends too early).

mod lex;
mod parse;
mod pattern;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use pattern::{Pattern, PatternError};

use crate::DomainError;
use crate::directory::User;

/// Longest rule text accepted, in characters (Entra's limit).
pub const MAX_CHARS: usize = 3072;
/// Deepest nesting of parentheses and `-not` accepted.
pub const MAX_DEPTH: usize = 50;

/// A syntax error at a 1-based character position of the rule text.
fn syntax_error(pos: usize, message: impl fmt::Display) -> DomainError {
    DomainError::invalid(format!("Syntax error at position {pos} in membership rule: {message}."))
}

/// A parsed membership rule: its text as written and its expression tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRule {
    text: String,
    expr: RuleExpr,
}

impl MembershipRule {
    /// Parses rule text, rejecting syntax errors, unknown properties and operators, values of
    /// the wrong kind, invalid regular expressions and rules beyond the size limits.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let chars = text.chars().count();
        if chars > MAX_CHARS {
            return Err(DomainError::invalid(format!(
                "The membership rule is {chars} characters long; at most {MAX_CHARS} are allowed."
            )));
        }
        if text.trim().is_empty() {
            return Err(syntax_error(1, "the membership rule is empty"));
        }
        let tokens = lex::tokenize(text)?;
        let expr = parse::parse_tokens(tokens)?;
        Ok(Self { text: text.to_owned(), expr })
    }

    /// Whether `user` satisfies the rule.
    pub fn matches(&self, user: &User) -> bool {
        self.expr.matches(user)
    }

    /// The rule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed expression.
    pub fn expr(&self) -> &RuleExpr {
        &self.expr
    }
}

impl fmt::Display for MembershipRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for MembershipRule {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for MembershipRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for MembershipRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A rule's expression tree. `-and` and `-or` chains nest to the left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleExpr {
    And(Box<RuleExpr>, Box<RuleExpr>),
    Or(Box<RuleExpr>, Box<RuleExpr>),
    Not(Box<RuleExpr>),
    /// `user.<property> -<op> <value>`. From [`MembershipRule::parse`] the value always suits
    /// the property and operator; a hand-built test pairing them wrongly evaluates to false
    /// when the property is present (and as the operator's absent-property result otherwise).
    Test {
        property: UserProperty,
        op: RuleOp,
        value: RuleValue,
    },
}

impl RuleExpr {
    /// Whether `user` satisfies this expression.
    pub fn matches(&self, user: &User) -> bool {
        match self {
            Self::And(a, b) => a.matches(user) && b.matches(user),
            Self::Or(a, b) => a.matches(user) || b.matches(user),
            Self::Not(e) => !e.matches(user),
            Self::Test { property, op, value } => match property.read(user) {
                Attribute::Bool(actual) => test_bool(actual, *op, value),
                Attribute::Text(actual) => test_text(actual.as_deref(), *op, value),
            },
        }
    }
}

/// Whether a boolean property holding `actual` passes `op value`: the evaluator's own test,
/// public for the same reason as [`test_text`].
pub fn test_bool(actual: bool, op: RuleOp, value: &RuleValue) -> bool {
    match (op, value) {
        (RuleOp::Eq, RuleValue::Bool(b)) => actual == *b,
        (RuleOp::Ne, RuleValue::Bool(b)) => actual != *b,
        (RuleOp::Ne, RuleValue::Null) => true,
        _ => false,
    }
}

/// Whether a text property holding `actual` (`None`: absent) passes `op value`: the
/// evaluator's own test, public so a caller can evaluate a test over a property's whole, finite
/// set of values (the SQL compiler does so for `user.userType`, turning any test into an `IN`).
pub fn test_text(actual: Option<&str>, op: RuleOp, value: &RuleValue) -> bool {
    match (op, value) {
        (RuleOp::Eq, RuleValue::Null) => return actual.is_none(),
        (RuleOp::Ne, RuleValue::Null) => return actual.is_some(),
        _ => {}
    }
    let Some(actual) = actual else { return op.is_negative() };
    let lower = actual.to_lowercase();
    let same = |v: &String| v.to_lowercase() == lower;
    match (op, value) {
        (RuleOp::Eq, RuleValue::String(v)) => same(v),
        (RuleOp::Ne, RuleValue::String(v)) => !same(v),
        (RuleOp::StartsWith, RuleValue::String(v)) => lower.starts_with(&v.to_lowercase()),
        (RuleOp::NotStartsWith, RuleValue::String(v)) => !lower.starts_with(&v.to_lowercase()),
        (RuleOp::Contains, RuleValue::String(v)) => lower.contains(&v.to_lowercase()),
        (RuleOp::NotContains, RuleValue::String(v)) => !lower.contains(&v.to_lowercase()),
        (RuleOp::Match, RuleValue::Regex(p)) => p.is_match(actual),
        (RuleOp::NotMatch, RuleValue::Regex(p)) => !p.is_match(actual),
        (RuleOp::In, RuleValue::List(vs)) => vs.iter().any(same),
        (RuleOp::NotIn, RuleValue::List(vs)) => !vs.iter().any(same),
        _ => false,
    }
}

/// The value of a property on a user.
enum Attribute<'a> {
    Bool(bool),
    Text(Option<Cow<'a, str>>),
}

/// The user properties a rule can test, named as in Graph (`user.department`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserProperty {
    DisplayName,
    UserPrincipalName,
    Mail,
    UserType,
    AccountEnabled,
    Department,
    JobTitle,
    CompanyName,
    EmployeeId,
    City,
    Country,
    /// The user's id.
    ObjectId,
}

impl UserProperty {
    pub const ALL: &'static [UserProperty] = &[
        Self::DisplayName,
        Self::UserPrincipalName,
        Self::Mail,
        Self::UserType,
        Self::AccountEnabled,
        Self::Department,
        Self::JobTitle,
        Self::CompanyName,
        Self::EmployeeId,
        Self::City,
        Self::Country,
        Self::ObjectId,
    ];

    /// The property's name after `user.`, in Graph's camelCase.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::DisplayName => "displayName",
            Self::UserPrincipalName => "userPrincipalName",
            Self::Mail => "mail",
            Self::UserType => "userType",
            Self::AccountEnabled => "accountEnabled",
            Self::Department => "department",
            Self::JobTitle => "jobTitle",
            Self::CompanyName => "companyName",
            Self::EmployeeId => "employeeId",
            Self::City => "city",
            Self::Country => "country",
            Self::ObjectId => "objectId",
        }
    }

    /// Whether the property holds a boolean (compared with `true` / `false`) rather than text.
    pub const fn is_boolean(&self) -> bool {
        matches!(self, Self::AccountEnabled)
    }

    fn read<'a>(&self, user: &'a User) -> Attribute<'a> {
        let text = |v: &'a Option<String>| Attribute::Text(v.as_deref().map(Cow::Borrowed));
        match self {
            Self::DisplayName => Attribute::Text(Some(Cow::Borrowed(user.display_name.as_str()))),
            Self::UserPrincipalName => Attribute::Text(Some(Cow::Borrowed(user.user_principal_name.as_str()))),
            Self::Mail => text(&user.mail),
            Self::UserType => Attribute::Text(Some(Cow::Borrowed(user.user_type.as_str()))),
            Self::AccountEnabled => Attribute::Bool(user.account_enabled),
            Self::Department => text(&user.department),
            Self::JobTitle => text(&user.job_title),
            Self::CompanyName => text(&user.company_name),
            Self::EmployeeId => text(&user.employee_id),
            Self::City => text(&user.city),
            Self::Country => text(&user.country),
            Self::ObjectId => Attribute::Text(Some(Cow::Owned(user.id.to_string()))),
        }
    }
}

impl fmt::Display for UserProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleOp {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
}

impl RuleOp {
    pub const ALL: &'static [RuleOp] = &[
        Self::Eq,
        Self::Ne,
        Self::StartsWith,
        Self::NotStartsWith,
        Self::Contains,
        Self::NotContains,
        Self::Match,
        Self::NotMatch,
        Self::In,
        Self::NotIn,
    ];

    /// The operator as written in canonical case, with its dash: `-startsWith`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Eq => "-eq",
            Self::Ne => "-ne",
            Self::StartsWith => "-startsWith",
            Self::NotStartsWith => "-notStartsWith",
            Self::Contains => "-contains",
            Self::NotContains => "-notContains",
            Self::Match => "-match",
            Self::NotMatch => "-notMatch",
            Self::In => "-in",
            Self::NotIn => "-notIn",
        }
    }

    /// The operator's name without its dash: `startsWith`.
    pub fn name(&self) -> &'static str {
        self.as_str().trim_start_matches('-')
    }

    /// Whether the operator is a negative one (`-ne`, `-notStartsWith`, `-notContains`,
    /// `-notMatch`, `-notIn`): true of an absent property compared with a non-null value.
    pub const fn is_negative(&self) -> bool {
        matches!(self, Self::Ne | Self::NotStartsWith | Self::NotContains | Self::NotMatch | Self::NotIn)
    }
}

impl fmt::Display for RuleOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleValue {
    /// `null`, with `-eq` / `-ne`.
    Null,
    /// `true` / `false`, for `user.accountEnabled`.
    Bool(bool),
    /// A quoted string, escapes resolved.
    String(String),
    /// An array of strings, for `-in` / `-notIn`.
    List(Vec<String>),
    /// The compiled pattern of `-match` / `-notMatch` ([`Pattern::source`] is the text).
    Regex(Pattern),
}

#[cfg(test)]
mod tests;
