//! Membership rules in SQL against the in-memory evaluator: for random populations of users
//! (absent attributes, empty strings, mixed case, non-ASCII letters whose case mapping is not
//! one-to-one) and random rules (every operator, lists, null, booleans, `-not`, nested and long
//! `-and`/`-or` chains, `-match` with simple patterns), `users_matching` must return exactly
//! the users for whom `MembershipRule::matches` holds. Deterministic: a fixed seed, shrinking
//! on failure.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use steward_app::Store;
use steward_domain::directory::User;
use steward_domain::enums::UserType;
use steward_domain::ids::UserId;
use steward_domain::rule::MembershipRule;
use steward_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{name, t};

/// Text the users' attributes and the rules' literals are built from: case variants of one
/// another, letters whose lowercase or uppercase changes length or is context-dependent
/// (ß, final sigma, dotted İ, the Kelvin and Ohm signs, a titlecase digraph, a combining
/// accent), and LIKE metacharacters.
const ATOMS: &[&str] = &[
    "Sales",
    "sales",
    "SALES",
    "Ärzte",
    "ärzte",
    "ÄRZTE",
    "Straße",
    "STRASSE",
    "straẞe",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "İstanbul",
    "istanbul",
    "\u{212A}elvin",
    "kelvin",
    "\u{2126}hm",
    "ωhm",
    "ǅemal",
    "e\u{301}cole",
    "école",
    "50%",
    "a_b",
    "back\\slash",
    "it's",
    "Seattle",
    "Zürich",
    "ZÜRICH",
    "x",
    "X",
];

/// `-match` patterns in the regex crate's syntax (the evaluator's), valid and simple.
const PATTERNS: &[&str] = &[
    "^s",
    "S$",
    "ä",
    "^Ä",
    "ß",
    "STRASSE",
    "σ",
    "ς",
    "Σ$",
    "^(sales|ärzte)$",
    "[a-c]",
    "\\d",
    "^$",
    ".",
    "x|y",
    "^k",
    "\u{212A}",
    "e.o",
    "^[^a-z]",
    "_",
    "%",
    "^\\p{Lu}",
    "[[:upper:]]{2}",
    "^.{5,}$",
    "-",
    "@",
];

fn atom() -> impl Strategy<Value = String> {
    select(ATOMS).prop_map(str::to_owned)
}

/// An attribute value: one or two atoms, or a little random text.
fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => atom(),
        2 => (atom(), atom()).prop_map(|(a, b)| format!("{a} {b}")),
        1 => "[a-zA-ZäÄßσΣ%_ ]{0,5}",
    ]
}

fn optional(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 2 => s.prop_map(Some)]
}

/// The variable part of a user; `user(i, raw)` makes it a valid, unique user.
#[derive(Debug, Clone)]
struct Raw {
    id: u128,
    display: String,
    upn: (String, String),
    guest: bool,
    enabled: bool,
    mail: Option<String>,
    attributes: [Option<String>; 6],
}

fn raw() -> impl Strategy<Value = Raw> {
    let attribute = || optional(text_value());
    (
        any::<u128>(),
        prop_oneof![atom(), (atom(), atom()).prop_map(|(a, b)| format!("{a} {b}"))],
        (atom(), atom()),
        any::<bool>(),
        any::<bool>(),
        optional(prop_oneof![atom(), Just(String::new())]),
        [attribute(), attribute(), attribute(), attribute(), attribute(), attribute()],
    )
        .prop_map(|(id, display, upn, guest, enabled, mail, attributes)| Raw {
            id,
            display,
            upn,
            guest,
            enabled,
            mail,
            attributes,
        })
}

fn user(i: usize, r: Raw) -> User {
    let [department, job_title, company_name, employee_id, city, country] = r.attributes;
    let squeeze = |s: &str| s.replace(char::is_whitespace, "");
    User {
        id: UserId::from_uuid(Uuid::from_u128(r.id)),
        display_name: name(&r.display),
        // unique whatever the atoms: the index leads
        user_principal_name: format!("u{i}.{}@{}.example", squeeze(&r.upn.0), squeeze(&r.upn.1)),
        mail: r.mail,
        user_type: if r.guest { UserType::Guest } else { UserType::Member },
        account_enabled: r.enabled,
        department,
        job_title,
        company_name,
        employee_id,
        city,
        country,
        created_date_time: t("2030-01-01T00:00:00Z"),
        manager: None,
    }
}

const TEXT_PROPERTIES: &[&str] = &[
    "displayName",
    "userPrincipalName",
    "mail",
    "userType",
    "department",
    "jobTitle",
    "companyName",
    "employeeId",
    "city",
    "country",
    "objectId",
];

/// A literal a rule compares with: an atom in some case, a piece of one, a user's id (in
/// either case, or a piece of it), a user type, or nothing at all.
fn literal(ids: Vec<String>) -> BoxedStrategy<String> {
    let piece = |s: &str, from: usize, len: usize| -> String {
        let chars: Vec<char> = s.chars().collect();
        let from = from % (chars.len() + 1);
        chars.iter().skip(from).take(len).collect()
    };
    let ids_piece = ids.clone();
    prop_oneof![
        4 => atom(),
        2 => (atom(), any::<bool>()).prop_map(|(a, up)| if up { a.to_uppercase() } else { a.to_lowercase() }),
        3 => (atom(), 0..8usize, 1..6usize).prop_map(move |(a, from, len)| piece(&a, from, len)),
        1 => (select(ids), any::<bool>()).prop_map(|(id, up)| if up { id.to_uppercase() } else { id }),
        1 => (select(ids_piece), 0..30usize, 1..8usize).prop_map(move |(id, from, len)| piece(&id, from, len)),
        1 => select(&["Member", "GUEST", "gu", "MEM", "er"][..]).prop_map(str::to_owned),
        1 => Just(String::new()),
    ]
    // A trailing backslash would escape the closing quote; such a literal is not worth a case.
    .prop_map(|s| s.trim_end_matches('\\').to_owned())
    .boxed()
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// One `user.<property> -<op> <value>` test, with property and operator in varying case.
fn leaf(ids: Vec<String>) -> impl Strategy<Value = String> {
    let prop = || {
        (select(TEXT_PROPERTIES), any::<bool>())
            .prop_map(|(p, shout)| if shout { format!("USER.{}", p.to_uppercase()) } else { format!("user.{p}") })
    };
    let lit = literal(ids);
    prop_oneof![
        1 => (select(&["-eq", "-ne", "-EQ", "-Ne"][..]), select(&["true", "false", "null", "TRUE"][..]))
            .prop_map(|(op, v)| format!("user.accountEnabled {op} {v}")),
        3 => (prop(), select(&["-eq", "-ne"][..]), prop_oneof![4 => lit.clone().prop_map(|s| quoted(&s)), 1 => Just("null".to_owned())])
            .prop_map(|(p, op, v)| format!("{p} {op} {v}")),
        4 => (prop(), select(&["-startsWith", "-notStartsWith", "-contains", "-notContains", "-CONTAINS"][..]), lit.clone())
            .prop_map(|(p, op, v)| format!("{p} {op} {}", quoted(&v))),
        2 => (prop(), select(&["-in", "-notIn"][..]), prop::collection::vec(lit, 1..4))
            .prop_map(|(p, op, vs)| {
                let items: Vec<String> = vs.iter().map(|v| quoted(v)).collect();
                format!("{p} {op} [{}]", items.join(", "))
            }),
        2 => (prop(), select(&["-match", "-notMatch"][..]), select(PATTERNS))
            .prop_map(|(p, op, pat)| format!("{p} {op} {}", quoted(pat))),
    ]
}

fn joiner() -> impl Strategy<Value = &'static str> {
    select(&[" -and ", " -or ", " -AND ", " -Or "][..])
}

/// A rule: tests combined with `-and`, `-or`, `-not` and parentheses, nested a few levels, or
/// a long flat chain.
fn rule(ids: Vec<String>) -> impl Strategy<Value = String> {
    let tree = leaf(ids.clone()).prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (inner.clone(), joiner(), inner.clone()).prop_map(|(a, j, b)| format!("{a}{j}{b}")),
            inner.clone().prop_map(|a| format!("-not {a}")),
            inner.clone().prop_map(|a| format!("-not ({a})")),
            inner.clone().prop_map(|a| format!("({a})")),
            (prop::collection::vec(inner, 2..5), joiner()).prop_map(|(v, j)| format!("({})", v.join(j))),
        ]
    });
    let chain = (prop::collection::vec(leaf(ids), 10..40), joiner()).prop_map(|(v, j)| v.join(j));
    prop_oneof![6 => tree, 1 => chain]
}

/// Checks `cases` random rules against `population`; returns how many selected some but not
/// all of the users (the interesting ones).
fn check_rules(s: &SqlStore, population: &[User], runner: &mut TestRunner, cases: u32) -> usize {
    let ids: Vec<String> = population.iter().map(|u| u.id.to_string()).collect();
    let proper = AtomicUsize::new(0);
    runner.set_cases(cases);
    let outcome = runner.run(&rule(ids), |text| {
        let Ok(rule) = MembershipRule::parse(&text) else {
            return Err(TestCaseError::reject("not a valid rule (too long, or a literal the generator broke)"));
        };
        let handle = tokio::runtime::Handle::current();
        let got = tokio::task::block_in_place(|| handle.block_on(s.users_matching(&rule)))
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let mut want: Vec<UserId> = population.iter().filter(|u| rule.matches(u)).map(|u| u.id).collect();
        want.sort();
        if !want.is_empty() && want.len() < population.len() {
            proper.fetch_add(1, Ordering::Relaxed);
        }
        if got != want {
            let show = |ids: Vec<&UserId>| -> Vec<&User> {
                ids.into_iter().filter_map(|id| population.iter().find(|u| u.id == *id)).take(3).collect()
            };
            let extra = show(got.iter().filter(|id| !want.contains(id)).collect());
            let missing = show(want.iter().filter(|id| !got.contains(id)).collect());
            return Err(TestCaseError::fail(format!(
                "rule {text}\n  SQL also admits {extra:#?}\n  SQL leaves out {missing:#?}"
            )));
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("SQL and the evaluator disagree: {e}");
    }
    proper.into_inner()
}

trait SetCases {
    fn set_cases(&mut self, cases: u32);
}

impl SetCases for TestRunner {
    fn set_cases(&mut self, cases: u32) {
        let config = Config { cases, failure_persistence: None, ..self.config().clone() };
        *self = TestRunner::new_with_rng(config, self.new_rng());
    }
}

pub async fn rules_in_sql_agree_with_the_evaluator(s: SqlStore) {
    let config = Config { cases: 1, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let raws = prop::collection::vec(raw(), 80).new_tree(&mut runner).unwrap().current();
    let mut population: Vec<User> = raws.into_iter().enumerate().map(|(i, r)| user(i, r)).collect();
    for u in &population {
        s.insert_user(u).await.unwrap_or_else(|e| panic!("{u:?}: {e}"));
    }
    // Rules with -match are re-checked in memory, in batches along id; small batches cross
    // many batch boundaries.
    let s = s.with_recheck_batch(7);
    let proper = check_rules(&s, &population, &mut runner, 300);
    assert!(proper >= 90, "only {proper} of 300 rules selected a proper subset of the users");

    // Every second user rewritten (attributes appear, change and disappear): the updates must
    // keep the folded columns the SQL reads in step.
    let fresh = prop::collection::vec(raw(), population.len()).new_tree(&mut runner).unwrap().current();
    for (i, r) in fresh.into_iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let old = &population[i];
        let changed = User { id: old.id, user_principal_name: old.user_principal_name.clone(), ..user(i, r) };
        s.update_user(&changed).await.unwrap();
        population[i] = changed;
    }
    check_rules(&s, &population, &mut runner, 120);
}
