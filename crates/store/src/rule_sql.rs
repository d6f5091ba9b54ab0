//! Membership rules as SQL: "everyone the rule admits" as one parameterised condition over
//! `users`, the same text on both databases, agreeing exactly with `MembershipRule::matches`
//! (the in-memory evaluator is the reference, and a property test holds the two together).
//!
//! - Every test compiles to a condition that is never NULL: an absent property is handled
//!   explicitly (it equals `null`, fails positive tests, passes negative ones), so `-not` keeps
//!   two-valued logic.
//! - Text is compared through the folded columns of migration 0003 (`Field::fold` of the users
//!   schema) against literals folded by Rust, so case-insensitivity is exactly Rust's
//!   `to_lowercase`, as in the evaluator. `user.objectId` is the `id` column, already lowercase.
//! - Properties with a finite set of values (`user.userType`, `user.accountEnabled`) are not
//!   translated at all: the evaluator's own test runs on each possible value, and the condition
//!   becomes `user_type IN (…)` (or true, or false). This covers `-match` on them too.
//! - `-match` / `-notMatch` on free text use the `regex` crate's syntax and semantics, which
//!   neither database has (PostgreSQL's regular expressions differ, SQLite has none). A rule
//!   containing one compiles to bounds instead of an exact condition: `lower` admits only users
//!   the rule surely admits, `upper` every user it might (`-match` is bounded by "nobody" and
//!   "the property is present", `-notMatch` by "the property is absent" and "everybody", `-not`
//!   swaps the bounds, `-and`/`-or` combine them). The store selects the users within `upper`
//!   and re-checks each with the evaluator itself, so the answer is still exact; only the cost
//!   grows with what the rest of the rule leaves in.
//! - `-and` / `-or` chains nest to the left in the parsed tree; their operands are collected
//!   with an explicit stack and joined flat, so recursion follows nesting (parentheses and
//!   `-not`, bounded by the parser), never the length of a chain.

use steward_app::StoreError;
use steward_app::query::{Field, FieldType, Match, USERS};
use steward_domain::rule::{RuleExpr, RuleOp, RuleValue, UserProperty, test_bool, test_text};

use crate::compile::{Params, like_pattern};
use crate::driver::Param;

/// A compiled condition: `lower` implies the rule, the rule implies `upper`. When `exact`, the
/// two are the same text and equivalent to the rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bounds {
    pub lower: String,
    pub upper: String,
    pub exact: bool,
}

impl Bounds {
    fn exact(sql: String) -> Self {
        Self { lower: sql.clone(), upper: sql, exact: true }
    }
}

const TRUE: &str = "1 = 1";
const FALSE: &str = "1 = 0";

/// Compiles a rule's expression; every value is pushed to `ps` and appears in `upper` (and in
/// `lower`) only as a placeholder.
pub(crate) fn condition(e: &RuleExpr, ps: &mut Params) -> Result<Bounds, StoreError> {
    match e {
        RuleExpr::And(..) => junction(&operands(e, true), " AND ", ps),
        RuleExpr::Or(..) => junction(&operands(e, false), " OR ", ps),
        RuleExpr::Not(inner) => {
            let b = condition(inner, ps)?;
            Ok(Bounds { lower: format!("(NOT {})", b.upper), upper: format!("(NOT {})", b.lower), exact: b.exact })
        }
        RuleExpr::Test { property, op, value } => test(*property, *op, value, ps),
    }
}

/// The operands of the `-and` (`and`) or `-or` chain rooted at `e`, left to right, without
/// recursion.
fn operands(e: &RuleExpr, and: bool) -> Vec<&RuleExpr> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(x) = stack.pop() {
        match x {
            RuleExpr::And(a, b) if and => {
                stack.push(b);
                stack.push(a);
            }
            RuleExpr::Or(a, b) if !and => {
                stack.push(b);
                stack.push(a);
            }
            other => out.push(other),
        }
    }
    out
}

fn junction(terms: &[&RuleExpr], op: &str, ps: &mut Params) -> Result<Bounds, StoreError> {
    let mut lower = Vec::with_capacity(terms.len());
    let mut upper = Vec::with_capacity(terms.len());
    let mut exact = true;
    for t in terms {
        let b = condition(t, ps)?;
        exact &= b.exact;
        lower.push(b.lower);
        upper.push(b.upper);
    }
    Ok(Bounds { lower: format!("({})", lower.join(op)), upper: format!("({})", upper.join(op)), exact })
}

/// The users schema's field behind a rule property.
fn field(p: UserProperty) -> Result<&'static Field, StoreError> {
    let path = if p == UserProperty::ObjectId { "id" } else { p.as_str() };
    USERS.field(path).ok_or_else(|| StoreError::Internal(format!("no users column for user.{p}")))
}

fn test(p: UserProperty, op: RuleOp, value: &RuleValue, ps: &mut Params) -> Result<Bounds, StoreError> {
    let f = field(p)?;
    match f.ty {
        FieldType::Bool => {
            let admitted: Vec<bool> = [false, true].into_iter().filter(|b| test_bool(*b, op, value)).collect();
            Ok(Bounds::exact(match admitted.as_slice() {
                [] => FALSE.into(),
                [b] => format!("{} = {}", f.column, ps.push(Param::Bool(Some(*b)))),
                _ => TRUE.into(),
            }))
        }
        FieldType::Enum(names) => {
            let admitted: Vec<&str> = names.iter().copied().filter(|n| test_text(Some(n), op, value)).collect();
            Ok(Bounds::exact(if admitted.is_empty() {
                FALSE.into()
            } else if admitted.len() == names.len() {
                TRUE.into()
            } else {
                let ph: Vec<String> = admitted.iter().map(|n| ps.push(Param::Text(Some((*n).to_owned())))).collect();
                format!("{} IN ({})", f.column, ph.join(", "))
            }))
        }
        FieldType::Text | FieldType::Guid | FieldType::DateTime => Ok(text(f, op, value, ps)),
    }
}

fn text(f: &Field, op: RuleOp, value: &RuleValue, ps: &mut Params) -> Bounds {
    let (col, fold) = (f.column, f.folded_column());
    let present = format!("{col} IS NOT NULL");
    let absent = format!("{col} IS NULL");
    match (op, value) {
        (RuleOp::Eq, RuleValue::Null) => return Bounds::exact(absent),
        (RuleOp::Ne, RuleValue::Null) => return Bounds::exact(present),
        (RuleOp::Match, RuleValue::Regex(_)) => return Bounds { lower: FALSE.into(), upper: present, exact: false },
        (RuleOp::NotMatch, RuleValue::Regex(_)) => return Bounds { lower: absent, upper: TRUE.into(), exact: false },
        _ => {}
    }
    let folded = |v: &str, ps: &mut Params| ps.push(Param::Text(Some(v.to_lowercase())));
    let like = |kind: Match, v: &str, ps: &mut Params| {
        format!("{fold} LIKE {} ESCAPE '\\'", ps.push(Param::Text(Some(like_pattern(kind, v)))))
    };
    let within = |vs: &[String], ps: &mut Params| {
        if vs.is_empty() {
            FALSE.to_owned()
        } else {
            let ph: Vec<String> = vs.iter().map(|v| folded(v, ps)).collect();
            format!("{fold} IN ({})", ph.join(", "))
        }
    };
    // The test on a present value; what the evaluator does for each pairing.
    let when_present = match (op, value) {
        (RuleOp::Eq, RuleValue::String(v)) => format!("{fold} = {}", folded(v, ps)),
        (RuleOp::Ne, RuleValue::String(v)) => format!("{fold} <> {}", folded(v, ps)),
        (RuleOp::StartsWith, RuleValue::String(v)) => like(Match::StartsWith, v, ps),
        (RuleOp::NotStartsWith, RuleValue::String(v)) => format!("NOT ({})", like(Match::StartsWith, v, ps)),
        (RuleOp::Contains, RuleValue::String(v)) => like(Match::Contains, v, ps),
        (RuleOp::NotContains, RuleValue::String(v)) => format!("NOT ({})", like(Match::Contains, v, ps)),
        (RuleOp::In, RuleValue::List(vs)) => within(vs, ps),
        (RuleOp::NotIn, RuleValue::List(vs)) => format!("NOT ({})", within(vs, ps)),
        // A hand-built pairing the parser never produces: false on a present value.
        _ => FALSE.into(),
    };
    Bounds::exact(if !f.nullable {
        when_present
    } else if op.is_negative() {
        format!("({absent} OR {when_present})")
    } else {
        format!("({present} AND {when_present})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_domain::rule::MembershipRule;

    fn compile(rule: &str) -> (Bounds, Vec<Param>) {
        let rule = MembershipRule::parse(rule).unwrap();
        let mut ps = Params::default();
        let b = condition(rule.expr(), &mut ps).unwrap();
        (b, ps.0)
    }

    #[test]
    fn tests_compile_to_folded_two_valued_conditions() {
        let (b, ps) = compile("user.department -eq \"ÄRZTE\" -and user.city -notIn [\"A\", \"b\"]");
        assert!(b.exact);
        assert_eq!(
            b.upper,
            "((department IS NOT NULL AND department_fold = $1) AND (city IS NULL OR NOT (city_fold IN ($2, $3))))"
        );
        assert_eq!(ps[0], Param::Text(Some("ärzte".into())));
        assert_eq!(ps[2], Param::Text(Some("b".into())));
        let (b, ps) = compile("user.displayName -startsWith \"50%_\"");
        assert_eq!(b.upper, "display_name_fold LIKE $1 ESCAPE '\\'");
        assert_eq!(ps[0], Param::Text(Some("50\\%\\_%".into())));
    }

    #[test]
    fn finite_properties_are_evaluated_in_rust() {
        let (b, ps) = compile("user.userType -match \"^gu\"");
        assert_eq!((b.upper.as_str(), b.exact), ("user_type IN ($1)", true));
        assert_eq!(ps, vec![Param::Text(Some("Guest".into()))]);
        assert_eq!(compile("user.userType -ne null").0.upper, "1 = 1");
        assert_eq!(compile("user.userType -eq \"nobody\"").0.upper, "1 = 0");
        let (b, ps) = compile("user.accountEnabled -ne true");
        assert_eq!(b.upper, "account_enabled = $1");
        assert_eq!(ps, vec![Param::Bool(Some(false))]);
        assert_eq!(compile("user.accountEnabled -eq null").0.upper, "1 = 0");
    }

    #[test]
    fn regular_expressions_bound_the_rule() {
        let (b, _) = compile("user.mail -match \"x\" -and -not (user.city -notMatch \"y\")");
        assert!(!b.exact);
        assert_eq!(b.lower, "(1 = 0 AND (NOT 1 = 1))");
        assert_eq!(b.upper, "(mail IS NOT NULL AND (NOT city IS NULL))");
    }

    #[test]
    fn chains_are_flat() {
        let chain = vec!["user.city -eq \"a\""; 130].join(" -or ");
        let (b, ps) = compile(&chain);
        assert_eq!(b.upper.matches(" OR ").count(), 129);
        assert!(b.upper.starts_with("((city IS NOT NULL"), "{}", b.upper);
        assert_eq!(ps.len(), 130);
    }
}
