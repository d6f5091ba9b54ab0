//! Unit tests for the `$filter` parser: accepted expressions, error messages and robustness.

use super::*;

fn prop(path: &str) -> Expr {
    Expr::Property(path.split('/').map(str::to_owned).collect())
}

fn s(value: &str) -> Expr {
    Expr::Literal(Literal::String(value.to_owned()))
}

fn int(value: i64) -> Expr {
    Expr::Literal(Literal::Int(value))
}

fn boolean(value: bool) -> Expr {
    Expr::Literal(Literal::Bool(value))
}

fn cmp(op: CmpOp, left: Expr, right: Expr) -> Expr {
    Expr::Compare { op, left: Box::new(left), right: Box::new(right) }
}

fn eq(left: Expr, right: Expr) -> Expr {
    cmp(CmpOp::Eq, left, right)
}

fn and(left: Expr, right: Expr) -> Expr {
    Expr::and(left, right)
}

fn or(left: Expr, right: Expr) -> Expr {
    Expr::or(left, right)
}

fn not(inner: Expr) -> Expr {
    Expr::Not(Box::new(inner))
}

fn call(func: Func, args: Vec<Expr>) -> Expr {
    Expr::Call { func, args }
}

fn any(path: &str, var: &str, predicate: Expr) -> Expr {
    Expr::Any {
        path: path.split('/').map(str::to_owned).collect(),
        var: var.to_owned(),
        predicate: Box::new(predicate),
    }
}

fn ts(text: &str) -> Expr {
    Expr::Literal(Literal::DateTime(text.parse().unwrap()))
}

fn check_ok(cases: Vec<(&str, Expr)>) {
    for (input, want) in cases {
        match parse_filter(input) {
            Ok(got) => assert_eq!(got, want, "input: {input}"),
            Err(err) => panic!("input {input:?} failed: {}", err.message),
        }
    }
}

#[test]
fn comparisons_and_literals() {
    check_ok(vec![
        ("displayName eq 'Sales'", eq(prop("displayName"), s("Sales"))),
        ("a ne 1", cmp(CmpOp::Ne, prop("a"), int(1))),
        ("a gt -1", cmp(CmpOp::Gt, prop("a"), int(-1))),
        ("a ge 1.5", cmp(CmpOp::Ge, prop("a"), Expr::Literal(Literal::Float(1.5)))),
        ("a lt +3", cmp(CmpOp::Lt, prop("a"), int(3))),
        ("a le 0", cmp(CmpOp::Le, prop("a"), int(0))),
        ("isActive eq true", eq(prop("isActive"), boolean(true))),
        ("isActive eq FALSE", eq(prop("isActive"), boolean(false))),
        ("manager eq null", eq(prop("manager"), Expr::Literal(Literal::Null))),
        ("'x' eq a", eq(s("x"), prop("a"))),
        ("true", boolean(true)),
        ("isActive", prop("isActive")),
        ("  a   eq\t1\n", eq(prop("a"), int(1))),
        ("a eq 1 eq true", eq(eq(prop("a"), int(1)), boolean(true))),
    ]);
}

#[test]
fn string_escapes() {
    check_ok(vec![
        ("name eq 'O''Brien'", eq(prop("name"), s("O'Brien"))),
        ("name eq ''''", eq(prop("name"), s("'"))),
        ("name eq ''", eq(prop("name"), s(""))),
        ("name eq 'a and b or (c)'", eq(prop("name"), s("a and b or (c)"))),
        ("name eq 'Zoë ünïcode'", eq(prop("name"), s("Zoë ünïcode"))),
    ]);
}

#[test]
fn precedence_and_grouping() {
    let (a, b, c) = (|| eq(prop("a"), int(1)), || eq(prop("b"), int(2)), || eq(prop("c"), int(3)));
    check_ok(vec![
        ("a eq 1 or b eq 2 and c eq 3", or(a(), and(b(), c()))),
        ("a eq 1 and b eq 2 or c eq 3", or(and(a(), b()), c())),
        ("(a eq 1 or b eq 2) and c eq 3", and(or(a(), b()), c())),
        ("a eq 1 and b eq 2 and c eq 3", and(and(a(), b()), c())),
        ("a eq 1 or b eq 2 or c eq 3", or(or(a(), b()), c())),
        ("((a eq 1))", a()),
        ("(((a eq 1) or ((b eq 2))) and (c eq 3))", and(or(a(), b()), c())),
        ("a eq 1 OR b eq 2 AnD c eq 3", or(a(), and(b(), c()))),
    ]);
}

#[test]
fn not_binds_tighter_than_everything() {
    let a = || eq(prop("a"), int(1));
    check_ok(vec![
        ("not (a eq 1)", not(a())),
        ("not(a eq 1)", not(a())),
        ("NOT isActive", not(prop("isActive"))),
        ("not not isActive", not(not(prop("isActive")))),
        ("not isActive eq true", eq(not(prop("isActive")), boolean(true))),
        (
            "not startswith(displayName,'a') and a eq 1",
            and(not(call(Func::StartsWith, vec![prop("displayName"), s("a")])), a()),
        ),
        ("not (a eq 1) or isActive", or(not(a()), prop("isActive"))),
    ]);
}

#[test]
fn every_function_any_case() {
    let two = |f| call(f, vec![prop("displayName"), s("x")]);
    let one = |f| call(f, vec![prop("displayName")]);
    check_ok(vec![
        ("contains(displayName,'x')", two(Func::Contains)),
        ("CONTAINS(displayName, 'x')", two(Func::Contains)),
        ("startswith(displayName,'x')", two(Func::StartsWith)),
        ("startsWith(displayName,'x')", two(Func::StartsWith)),
        ("endswith(displayName, 'x')", two(Func::EndsWith)),
        ("endsWith(displayName,'x')", two(Func::EndsWith)),
        ("tolower(displayName) eq 'x'", eq(one(Func::ToLower), s("x"))),
        ("toUpper(displayName) eq 'x'", eq(one(Func::ToUpper), s("x"))),
        ("length(displayName) gt 3", cmp(CmpOp::Gt, one(Func::Length), int(3))),
        ("trim(displayName) eq 'x'", eq(one(Func::Trim), s("x"))),
        (
            "contains(tolower(displayName), tolower('X'))",
            call(Func::Contains, vec![one(Func::ToLower), call(Func::ToLower, vec![s("X")])]),
        ),
        ("contains (displayName , 'x' )", two(Func::Contains)),
    ]);
}

#[test]
fn func_and_op_helpers() {
    for func in Func::ALL {
        assert_eq!(Func::from_name(func.name()), Some(func));
        assert_eq!(Func::from_name(&func.name().to_uppercase()), Some(func));
        assert_eq!(func.to_string(), func.name());
    }
    assert_eq!(Func::from_name("substring"), None);
    assert_eq!(CmpOp::from_keyword("GE"), Some(CmpOp::Ge));
    assert_eq!(CmpOp::from_keyword("and"), None);
    assert_eq!(CmpOp::Le.to_string(), "le");
}

#[test]
fn in_lists() {
    let lit = |l: Literal| l;
    check_ok(vec![
        (
            "state in ('published','draft')",
            Expr::In {
                expr: Box::new(prop("state")),
                list: vec![lit(Literal::String("published".into())), lit(Literal::String("draft".into()))],
            },
        ),
        (
            "n IN (1, -2, 3.5, null, true)",
            Expr::In {
                expr: Box::new(prop("n")),
                list: vec![Literal::Int(1), Literal::Int(-2), Literal::Float(3.5), Literal::Null, Literal::Bool(true)],
            },
        ),
        (
            "a in ('x') and b eq 1",
            and(Expr::In { expr: Box::new(prop("a")), list: vec![Literal::String("x".into())] }, eq(prop("b"), int(1))),
        ),
    ]);
}

#[test]
fn navigation_paths_keep_case() {
    check_ok(vec![
        ("catalog/id eq 'c1'", eq(prop("catalog/id"), s("c1"))),
        ("Catalog/DisplayName eq 'x'", eq(prop("Catalog/DisplayName"), s("x"))),
        ("a/b/c_d/_e1 eq 1", eq(prop("a/b/c_d/_e1"), int(1))),
        ("a / b eq 1", eq(prop("a/b"), int(1))),
        ("a/any eq 1", eq(prop("a/any"), int(1))),
    ]);
}

#[test]
fn lambdas() {
    check_ok(vec![
        ("members/any(m: m/id eq 'x')", any("members", "m", eq(prop("m/id"), s("x")))),
        ("members/ANY(m:m eq 'x')", any("members", "m", eq(prop("m"), s("x")))),
        ("members/any()", any("members", "", boolean(true))),
        (
            "a/b/any(x: x/c/any(y: y eq 1) and x/d eq 2) or z eq 3",
            or(
                any("a/b", "x", and(any("x/c", "y", eq(prop("y"), int(1))), eq(prop("x/d"), int(2)))),
                eq(prop("z"), int(3)),
            ),
        ),
        (
            "not members/any(m: startswith(m/displayName, 'a'))",
            not(any("members", "m", call(Func::StartsWith, vec![prop("m/displayName"), s("a")]))),
        ),
    ]);
}

#[test]
fn dates_timestamps_and_guids() {
    let guid = "1afa2b3c-0000-4def-8abc-0123456789ab";
    check_ok(vec![
        (
            "createdDateTime ge 2024-01-01T00:00:00Z",
            cmp(CmpOp::Ge, prop("createdDateTime"), ts("2024-01-01T00:00:00Z")),
        ),
        (
            "createdDateTime lt 2024-01-01T00:00:00.1234567+02:00",
            cmp(CmpOp::Lt, prop("createdDateTime"), ts("2023-12-31T22:00:00.1234567Z")),
        ),
        (
            "createdDateTime le 2024-01-01T10:00:00-05:00 and x eq 1",
            and(cmp(CmpOp::Le, prop("createdDateTime"), ts("2024-01-01T15:00:00Z")), eq(prop("x"), int(1))),
        ),
        ("birthday eq 2024-01-01", eq(prop("birthday"), Expr::Literal(Literal::Date(jiff::civil::date(2024, 1, 1))))),
        ("id eq 1AFA2B3C-0000-4def-8abc-0123456789AB", eq(prop("id"), Expr::Literal(Literal::Guid(guid.into())))),
        (
            "id in (1afa2b3c-0000-4def-8abc-0123456789ab, guid'1AFA2B3C-0000-4DEF-8ABC-0123456789AB')",
            Expr::In { expr: Box::new(prop("id")), list: vec![Literal::Guid(guid.into()), Literal::Guid(guid.into())] },
        ),
        ("t gt datetimeoffset'2024-01-01T00:00:00Z'", cmp(CmpOp::Gt, prop("t"), ts("2024-01-01T00:00:00Z"))),
    ]);
}

/// Each bad input, and a piece of text its error message must contain.
#[test]
fn errors_name_the_problem() {
    let long = format!("a eq '{}'", "x".repeat(MAX_FILTER_LEN));
    let cases: Vec<(&str, &str)> = vec![
        ("", "empty"),
        ("   ", "empty"),
        (&long, "too long"),
        ("displayName eq", "expected a value after 'eq'"),
        ("displayName eq )", "found ')'"),
        ("a eq 1 and", "expected a value after 'and'"),
        ("a eq 1 or", "expected a value after 'or'"),
        ("not", "expected a value after 'not'"),
        ("eq 1", "found 'eq'"),
        ("a eq 1 b eq 2", "unexpected 'b'"),
        ("a eq 1)", "unbalanced ')'"),
        ("(a eq 1", "expected ')' to close the '(' at position 0"),
        ("((a eq 1)", "expected ')'"),
        ("()", "found ')'"),
        ("name eq 'abc", "unterminated string"),
        ("name eq 'it''s", "unterminated string"),
        ("name eq \"abc\"", "single quotes"),
        ("@odata.type eq 'x'", "'@'"),
        ("a/@b eq 1", "'@'"),
        ("a/ eq 1", "expected a property name after '/'"),
        ("a eq 1a", "'1a'"),
        ("a eq 99999999999999999999", "out of range"),
        ("t gt 2024-01-01T00:00:00", "no time zone offset"),
        ("t gt 2024-02-30", "'2024-02-30'"),
        ("contains(displayName)", "function 'contains' takes 2 arguments but was given 1"),
        ("contains(a,'b','c')", "given 3"),
        ("tolower(a,b) eq 'x'", "takes 1 argument but was given 2"),
        ("length() eq 1", "given 0"),
        ("contains(a 'b')", "expected ',' or ')' in the arguments of 'contains'"),
        ("substring(a,1) eq 'x'", "function 'substring' is not supported"),
        ("foo(a)", "'foo'"),
        ("any(m: m eq 1)", "must follow a collection property"),
        ("members/all(m: m eq 1)", "'all' is not supported"),
        ("members/count(m) eq 1", "'count(' is not supported"),
        ("members/any(m m eq 1)", "expected ':' after the range variable 'm'"),
        ("members/any(: m eq 1)", "range variable"),
        ("members/any(m: m eq 1", "expected ')'"),
        ("state in 'a'", "expected '(' after 'in'"),
        ("state in ()", "expected a literal value in the 'in' list"),
        ("state in (a)", "found 'a'"),
        ("state in ('a' 'b')", "expected ',' or ')' in the 'in' list"),
        ("state in ('a',", "the end of the input"),
        ("a add 1 eq 2", "operator 'add' is not supported"),
        ("flags has 'x'", "operator 'has' is not supported"),
        ("a eq [1]", "'['"),
        ("a eq binary'AA'", "prefix 'binary'"),
    ];
    for (input, needle) in cases {
        let err = parse_filter(input).expect_err(input);
        assert_eq!(err.code, "InvalidFilter", "input: {input}");
        assert!(err.message.contains(needle), "input {input:?}: message {:?} lacks {needle:?}", err.message);
    }
}

#[test]
fn error_message_format_matches_the_documented_example() {
    let err = parse_filter("displayName eq").unwrap_err();
    assert_eq!(err.message, "Syntax error at position 12 in 'displayName eq': expected a value after 'eq'.");
    let err = parse_filter("a eq 1 zz").unwrap_err();
    assert!(err.message.starts_with("Syntax error at position 7 in 'a eq 1 zz':"));
}

#[test]
fn positions_count_characters_not_bytes() {
    let err = parse_filter("name eq 'é' xx").unwrap_err();
    assert!(err.message.starts_with("Syntax error at position 12 "), "{}", err.message);
}

#[test]
fn long_input_is_shortened_in_messages() {
    let input = format!("a eq '{}' zz", "x".repeat(1000));
    let err = parse_filter(&input).unwrap_err();
    assert!(err.message.len() < 400, "{}", err.message);
    assert!(err.message.contains('…'));
}

#[test]
fn nesting_limit() {
    let ok = format!("{}a eq 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse_filter(&ok).unwrap(), eq(prop("a"), int(1)));
    let too_deep = format!("{}a eq 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let err = parse_filter(&too_deep).unwrap_err();
    assert!(err.message.contains("nested more than 100 levels"), "{}", err.message);

    for hostile in ["(".repeat(8000), "not ".repeat(2000), "tolower(".repeat(900), "a/any(x:".repeat(900)] {
        let err = parse_filter(&hostile).unwrap_err();
        assert_eq!(err.code, "InvalidFilter");
        assert!(err.message.contains("nested more than"), "{}", err.message);
    }
}

#[test]
fn chains_are_flat_and_capped() {
    // a chain is one n-ary node, whatever its length or parenthesisation
    let chain = vec!["a eq 1"; MAX_TERMS].join(" or ");
    match parse_filter(&chain).unwrap() {
        Expr::Or(terms) => assert_eq!(terms.len(), MAX_TERMS),
        other => panic!("{other:?}"),
    }
    assert_eq!(parse_filter("(a eq 1 and b eq 2) and (c eq 3 and a eq 1)").unwrap(), {
        let t = |e| parse_filter(e).unwrap();
        Expr::And(vec![t("a eq 1"), t("b eq 2"), t("c eq 3"), t("a eq 1")])
    });
    // the cap counts every condition joined by and/or, across both operators and parentheses
    for joiner in [" or ", " and "] {
        let too_many = vec!["a eq 1"; MAX_TERMS + 1].join(joiner);
        let err = parse_filter(&too_many).unwrap_err();
        assert_eq!(err.code, "InvalidFilter");
        assert!(err.message.contains("more than 200 conditions"), "{}", err.message);
    }
    let mixed = format!("({}) and ({})", vec!["a eq 1"; 100].join(" or "), vec!["b eq 1"; 101].join(" and "));
    assert!(parse_filter(&mixed).unwrap_err().message.contains("more than 200 conditions"));
}

#[test]
fn max_length_is_accepted() {
    let body = "x".repeat(MAX_FILTER_LEN - "a eq ''".len());
    let input = format!("a eq '{body}'");
    assert_eq!(input.len(), MAX_FILTER_LEN);
    assert_eq!(parse_filter(&input).unwrap(), eq(prop("a"), s(&body)));
}

/// A small xorshift generator so the "fuzz" tests are deterministic.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(48);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        if let Err(err) = parse_filter(&text) {
            assert_eq!(err.code, "InvalidFilter");
        }
    }
}

#[test]
fn random_token_soup_never_panics() {
    const PIECES: &[&str] = &[
        "a",
        "b/c",
        "eq",
        "ne",
        "gt",
        "and",
        "or",
        "not",
        "in",
        "(",
        ")",
        ",",
        ":",
        "/",
        "'x'",
        "''",
        "'",
        "1",
        "-2",
        "3.5",
        "1e",
        "true",
        "null",
        "any",
        "all",
        "m",
        "contains",
        "tolower",
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        "2024-01-01T",
        "guid'",
        "x'y'",
        "1afa2b3c-0000-4def-8abc-0123456789ab",
        "@",
        "é",
        "\"",
        "has",
        " ",
        "",
    ];
    let mut rng = XorShift(42);
    let mut parsed = 0;
    for _ in 0..30_000 {
        let count = 1 + rng.below(12);
        let mut text = String::new();
        for _ in 0..count {
            text.push_str(PIECES[rng.below(PIECES.len())]);
            if rng.below(3) > 0 {
                text.push(' ');
            }
        }
        match parse_filter(&text) {
            Ok(_) => parsed += 1,
            Err(err) => assert_eq!(err.code, "InvalidFilter"),
        }
    }
    assert!(parsed > 0, "the soup should produce some valid filters");
}
