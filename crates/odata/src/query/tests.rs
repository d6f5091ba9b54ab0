//! Unit tests for query-string parsing: decoding, dispatch, each option and its errors.

use super::*;
use crate::filter::{CmpOp, Literal};

fn prop(path: &str) -> Expr {
    Expr::Property(path.split('/').map(str::to_owned).collect())
}

fn eq_str(path: &str, value: &str) -> Expr {
    Expr::Compare {
        op: CmpOp::Eq,
        left: Box::new(prop(path)),
        right: Box::new(Expr::Literal(Literal::String(value.to_owned()))),
    }
}

fn item(path: &str) -> ExpandItem {
    ExpandItem { path: path.to_owned(), ..ExpandItem::default() }
}

fn order(path: &str, descending: bool) -> OrderBy {
    OrderBy { path: path.split('/').map(str::to_owned).collect(), descending }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn empty_query_is_default() {
    for raw in ["", "?", "&", "&&"] {
        assert_eq!(parse_query(raw).unwrap(), QueryOptions::default(), "{raw:?}");
    }
}

#[test]
fn python_sdk_encodings() {
    let q = parse_query("$filter=state%20eq%20%27published%27").unwrap();
    assert_eq!(q.filter, Some(eq_str("state", "published")));

    let q = parse_query("$expand=resourceRoleScopes%28%24expand%3Drole%2Cscope%29,catalog").unwrap();
    assert_eq!(
        q.expand,
        vec![ExpandItem { expand: vec![item("role"), item("scope")], ..item("resourceRoleScopes") }, item("catalog"),]
    );

    let q = parse_query("$search=%22sales%22").unwrap();
    assert_eq!(q.search, Some(SearchTerm { property: None, value: "sales".into() }));
}

#[test]
fn names_are_case_insensitive_and_may_be_encoded() {
    for raw in [
        "$filter=a eq 'x'",
        "$FILTER=a eq 'x'",
        "%24filter=a%20eq%20'x'",
        "%24Filter=a+eq+%27x%27",
        "?$filter=a eq 'x'",
    ] {
        assert_eq!(parse_query(raw).unwrap().filter, Some(eq_str("a", "x")), "{raw}");
    }
}

#[test]
fn plus_is_space_but_encoded_plus_is_plus() {
    let q = parse_query("$filter=t+gt+2024-01-01T00:00:00%2B02:00").unwrap();
    let want: jiff::Timestamp = "2023-12-31T22:00:00Z".parse().unwrap();
    assert_eq!(
        q.filter,
        Some(Expr::Compare {
            op: CmpOp::Gt,
            left: Box::new(prop("t")),
            right: Box::new(Expr::Literal(Literal::DateTime(want))),
        })
    );
    let err = parse_query("$filter=t+gt+2024-01-01T00:00:00+02:00").unwrap_err();
    assert_eq!(err.code, "InvalidFilter");
    assert!(err.message.contains("%2B"), "{}", err.message);
}

#[test]
fn encoded_ampersand_and_equals_stay_in_the_value() {
    let q = parse_query("$filter=name%20eq%20%27a%26b%3Dc%27&$top=5").unwrap();
    assert_eq!(q.filter, Some(eq_str("name", "a&b=c")));
    assert_eq!(q.top, Some(5));
}

#[test]
fn all_options_together_and_other_pairs() {
    let raw = "api-version=2&$select=id,displayName&$expand=catalog&$orderby=displayName desc\
               &$top=10&$skip=20&$count=TRUE&$search=\"displayName:sales\"&$skiptoken=abc%3D%3D\
               &$format=json&$filter=isActive&x=1&flag";
    let (q, others) = parse_query_pairs(raw).unwrap();
    assert_eq!(
        q,
        QueryOptions {
            filter: Some(prop("isActive")),
            select: Some(strings(&["id", "displayName"])),
            expand: vec![item("catalog")],
            orderby: vec![order("displayName", true)],
            top: Some(10),
            skip: Some(20),
            count: true,
            search: Some(SearchTerm { property: Some("displayName".into()), value: "sales".into() }),
            skiptoken: Some("abc==".into()),
        }
    );
    assert_eq!(
        others,
        vec![
            ("api-version".to_owned(), "2".to_owned()),
            ("x".to_owned(), "1".to_owned()),
            ("flag".to_owned(), String::new()),
        ]
    );
    assert_eq!(parse_query(raw).unwrap(), q);
}

#[test]
fn unprefixed_names_are_not_options() {
    let (q, others) = parse_query_pairs("filter=junk&top=0&a%20b=c%2Bd+e").unwrap();
    assert_eq!(q, QueryOptions::default());
    assert_eq!(
        others,
        vec![
            ("filter".to_owned(), "junk".to_owned()),
            ("top".to_owned(), "0".to_owned()),
            ("a b".to_owned(), "c+d e".to_owned()),
        ]
    );
}

#[test]
fn select() {
    let cases: &[(&str, Option<Vec<String>>)] = &[
        ("$select=id", Some(strings(&["id"]))),
        ("$select=id,%20displayName , catalog/id", Some(strings(&["id", "displayName", "catalog/id"]))),
        ("$select=*", None),
        ("$select=id,*", None),
    ];
    for (raw, want) in cases {
        assert_eq!(&parse_query(raw).unwrap().select, want, "{raw}");
    }
}

#[test]
fn orderby() {
    let cases: &[(&str, Vec<OrderBy>)] = &[
        ("$orderby=displayName", vec![order("displayName", false)]),
        ("$orderby=createdDateTime desc", vec![order("createdDateTime", true)]),
        ("$orderby=createdDateTime+DESC", vec![order("createdDateTime", true)]),
        ("$orderby=catalog/displayName asc, id", vec![order("catalog/displayName", false), order("id", false)]),
        ("$orderby=%20a%20%20Desc%20,b%20asc", vec![order("a", true), order("b", false)]),
    ];
    for (raw, want) in cases {
        assert_eq!(&parse_query(raw).unwrap().orderby, want, "{raw}");
    }
}

#[test]
fn top_skip_count() {
    for (raw, top) in [("$top=1", 1), ("$top=999", 999), ("$top=010", 10), ("$top=%2042", 42)] {
        assert_eq!(parse_query(raw).unwrap().top, Some(top), "{raw}");
    }
    for (raw, skip) in [("$skip=0", 0), ("$skip=4294967295", u32::MAX)] {
        assert_eq!(parse_query(raw).unwrap().skip, Some(skip), "{raw}");
    }
    for (raw, count) in [("$count=true", true), ("$count=False", false), ("$count=TRUE", true)] {
        assert_eq!(parse_query(raw).unwrap().count, count, "{raw}");
    }
}

#[test]
fn search_forms() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("$search=\"sales\"", None, "sales"),
        ("$search=sales", None, "sales"),
        ("$search=%22sales%20team%22", None, "sales team"),
        ("$search=\"displayName:sales\"", Some("displayName"), "sales"),
        ("$search=displayName:sales", Some("displayName"), "sales"),
        ("$search=displayName:\"sales team\"", Some("displayName"), "sales team"),
        ("$search=\"a b:c\"", None, "a b:c"),
        ("$search=\"10:30\"", None, "10:30"),
    ];
    for (raw, property, value) in cases {
        assert_eq!(
            parse_query(raw).unwrap().search,
            Some(SearchTerm { property: property.map(str::to_owned), value: (*value).to_owned() }),
            "{raw}"
        );
    }
}

#[test]
fn search_length_is_capped() {
    let ok = format!("$search=\"{}\"", "é".repeat(MAX_SEARCH_CHARS));
    assert_eq!(parse_query(&ok).unwrap().search.unwrap().value.chars().count(), MAX_SEARCH_CHARS);
    let long = format!("$search=\"{}\"", "x".repeat(MAX_SEARCH_CHARS + 1));
    let err = parse_query(&long).unwrap_err();
    assert_eq!(err.code, "BadRequest");
    assert!(err.message.contains("too long"), "{}", err.message);
}

#[test]
fn format_values() {
    for raw in
        ["$format=json", "$format=JSON", "$format=application/json", "$format=application/json;odata.metadata=minimal"]
    {
        assert_eq!(parse_query(raw).unwrap(), QueryOptions::default(), "{raw}");
    }
}

#[test]
fn expand_forms() {
    let cases: Vec<(&str, Vec<ExpandItem>)> = vec![
        ("$expand=*", vec![item("*")]),
        ("$expand=catalog, owner", vec![item("catalog"), item("owner")]),
        ("$expand=a/b", vec![item("a/b")]),
        (
            "$expand=resourceRoleScopes($expand=role,scope)",
            vec![ExpandItem { expand: vec![item("role"), item("scope")], ..item("resourceRoleScopes") }],
        ),
        (
            "$expand=resourceRoleScopes($expand=role($select=id,displayName);$select=id)",
            vec![ExpandItem {
                select: Some(strings(&["id"])),
                expand: vec![ExpandItem { select: Some(strings(&["id", "displayName"])), ..item("role") }],
                ..item("resourceRoleScopes")
            }],
        ),
        (
            "$expand=members($filter=name eq 'a,b;(c)';$top=5;$orderby=name desc;$SELECT=id;),catalog",
            vec![
                ExpandItem {
                    filter: Some(eq_str("name", "a,b;(c)")),
                    top: Some(5),
                    orderby: vec![order("name", true)],
                    select: Some(strings(&["id"])),
                    ..item("members")
                },
                item("catalog"),
            ],
        ),
        ("$expand=members%28%24select%3Did%29", vec![ExpandItem { select: Some(strings(&["id"])), ..item("members") }]),
    ];
    for (raw, want) in cases {
        assert_eq!(parse_query(raw).unwrap().expand, want, "{raw}");
    }
}

/// Each bad query, the expected code, and text the message must contain.
#[test]
fn errors() {
    let deep_expand = format!("$expand={}x{}", "a($expand=".repeat(20), ")".repeat(20));
    let cases: Vec<(&str, &str, &str)> = vec![
        ("$foo=1", "BadRequest", "Query option '$foo' is not supported."),
        ("%24Levels=2", "BadRequest", "'$Levels' is not supported"),
        ("$=1", "BadRequest", "'$' is not supported"),
        ("$top=1&$top=2", "BadRequest", "'$top' was specified more than once"),
        ("$filter=a eq 1&$FILTER=b eq 2", "BadRequest", "'$filter' was specified more than once"),
        ("$top=0", "BadRequest", "'0' for query option '$top': expected an integer from 1 to 999"),
        ("$top=1000", "BadRequest", "from 1 to 999"),
        ("$top=-1", "BadRequest", "'-1'"),
        ("$top=abc", "BadRequest", "'abc'"),
        ("$top=", "BadRequest", "from 1 to 999"),
        ("$top=99999999999", "BadRequest", "from 1 to 999"),
        ("$top=1.5", "BadRequest", "'1.5'"),
        ("$skip=-1", "BadRequest", "'-1' for query option '$skip'"),
        ("$skip=x", "BadRequest", "'x'"),
        ("$skip=4294967296", "BadRequest", "'4294967296'"),
        ("$count=yes", "BadRequest", "'yes' for query option '$count': expected 'true' or 'false'"),
        ("$count=", "BadRequest", "$count"),
        ("$select=", "BadRequest", "'$select' must not be empty"),
        ("$select=%20", "BadRequest", "must not be empty"),
        ("$select=id,,name", "BadRequest", "empty item"),
        ("$select=id,display-name", "BadRequest", "Invalid property 'display-name' in query option '$select'"),
        ("$select=@odata.id", "BadRequest", "'@odata.id'"),
        ("$orderby=", "BadRequest", "'$orderby' must not be empty"),
        ("$orderby=name up", "BadRequest", "Invalid sort direction 'up'"),
        ("$orderby=name desc extra", "BadRequest", "'extra'"),
        ("$orderby=a,,b", "BadRequest", "empty item"),
        ("$orderby=1abc", "BadRequest", "'1abc'"),
        ("$orderby=a/", "BadRequest", "'a/'"),
        ("$search=", "BadRequest", "'$search' must not be empty"),
        ("$search=%22%22", "BadRequest", "must not be empty"),
        ("$search=displayName:", "BadRequest", "must not be empty"),
        ("$search=%22sales", "BadRequest", "unbalanced double quote"),
        ("$skiptoken=", "BadRequest", "'$skiptoken' must not be empty"),
        ("$format=xml", "BadRequest", "'xml' for query option '$format'"),
        ("$filter=", "InvalidFilter", "empty"),
        ("$filter=a eq", "InvalidFilter", "expected a value after 'eq'"),
        ("$filter=%FF", "BadRequest", "not valid UTF-8"),
        ("$expand=", "BadRequest", "'$expand' must not be empty"),
        ("$expand=a,,b", "BadRequest", "empty item"),
        ("$expand=a(", "BadRequest", "unbalanced '('"),
        ("$expand=a)", "BadRequest", "unbalanced ')'"),
        ("$expand=a($select=id)x", "BadRequest", "unexpected text after the ')'"),
        ("$expand=a()", "BadRequest", "empty parentheses after 'a'"),
        ("$expand=a($skip=1)", "BadRequest", "'$skip' is not supported inside 'a'"),
        ("$expand=a(select=id)", "BadRequest", "'select' is not supported inside 'a'"),
        ("$expand=a($select)", "BadRequest", "must have the form $option=value"),
        ("$expand=a($top=1;$TOP=2)", "BadRequest", "'$top' is specified more than once for 'a'"),
        ("$expand=a($top=0)", "BadRequest", "from 1 to 999"),
        ("$expand=a($select=)", "BadRequest", "'$select' must not be empty"),
        ("$expand=*($select=id)", "BadRequest", "'*' cannot take options"),
        ("$expand=a b", "BadRequest", "'a b' is not a valid navigation property"),
        ("$expand=a($filter=x eq 'y)", "BadRequest", "unterminated string"),
        ("$expand=a($filter=x eq)", "InvalidFilter", "expected a value after 'eq'"),
        (&deep_expand, "BadRequest", "nested more than 8 levels"),
    ];
    for (raw, code, needle) in cases {
        let err = parse_query(raw).expect_err(raw);
        assert_eq!(err.code, code, "{raw}: {}", err.message);
        assert!(err.message.contains(needle), "{raw:?}: message {:?} lacks {needle:?}", err.message);
        assert_eq!(parse_query_pairs(raw).unwrap_err(), err);
    }
}

#[test]
fn long_values_are_shortened_in_messages() {
    let raw = format!("$top={}", "9".repeat(5000));
    let err = parse_query(&raw).unwrap_err();
    assert!(err.message.len() < 300, "{}", err.message);
}

/// Deterministic xorshift generator for the no-panic tests.
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
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    for _ in 0..20_000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        if let Err(err) = parse_query_pairs(&text) {
            assert!(["BadRequest", "InvalidFilter"].contains(&err.code));
        }
    }
}

#[test]
fn random_query_soup_never_panics() {
    const PIECES: &[&str] = &[
        "$filter=",
        "$select=",
        "$expand=",
        "$orderby=",
        "$top=",
        "$skip=",
        "$count=",
        "$search=",
        "$skiptoken=",
        "$format=",
        "$foo=",
        "%24expand%3D",
        "a",
        "b/c",
        "*",
        "(",
        ")",
        ";",
        ",",
        "&",
        "=",
        "'",
        "\"",
        ":",
        "%",
        "%2",
        "%28",
        "%29",
        "%27",
        "+",
        " ",
        "eq",
        "1",
        "0",
        "desc",
        "true",
        "json",
        "é",
        "%C3",
        "",
    ];
    let mut rng = XorShift(7);
    let mut parsed = 0;
    for _ in 0..30_000 {
        let count = 1 + rng.below(14);
        let text: String = (0..count).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        match parse_query_pairs(&text) {
            Ok(_) => parsed += 1,
            Err(err) => assert!(["BadRequest", "InvalidFilter"].contains(&err.code)),
        }
    }
    assert!(parsed > 0);
}
