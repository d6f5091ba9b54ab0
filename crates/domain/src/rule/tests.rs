//! Tests of membership-rule parsing, evaluation, errors, limits and serde.

use jiff::Timestamp;
use uuid::Uuid;

use super::*;
use crate::enums::UserType;
use crate::ids::UserId;
use crate::text::DisplayName;

const ADELE_ID: &str = "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";

/// A user with every property set.
fn adele() -> User {
    User {
        id: UserId::from_uuid(Uuid::parse_str(ADELE_ID).unwrap()),
        display_name: DisplayName::parse("Adele Vance").unwrap(),
        user_principal_name: "AdeleV@contoso.com".to_owned(),
        mail: Some("adele.vance@contoso.com".to_owned()),
        user_type: UserType::Member,
        account_enabled: true,
        department: Some("Sales".to_owned()),
        job_title: Some("Engineer II".to_owned()),
        company_name: Some("Contoso".to_owned()),
        employee_id: Some("E-1001".to_owned()),
        city: Some("Seattle".to_owned()),
        country: Some("US".to_owned()),
        created_date_time: Timestamp::UNIX_EPOCH,
        manager: None,
    }
}

/// A user with every optional property absent.
fn bare() -> User {
    User {
        id: UserId::from_uuid(Uuid::nil()),
        display_name: DisplayName::parse("Zed").unwrap(),
        user_principal_name: "zed@fabrikam.com".to_owned(),
        mail: None,
        user_type: UserType::Guest,
        account_enabled: false,
        department: None,
        job_title: None,
        company_name: None,
        employee_id: None,
        city: None,
        country: None,
        created_date_time: Timestamp::UNIX_EPOCH,
        manager: None,
    }
}

fn parse(text: &str) -> MembershipRule {
    MembershipRule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str) -> String {
    match MembershipRule::parse(text) {
        Ok(rule) => panic!("{text} parsed as {:?}", rule.expr()),
        Err(DomainError::Invalid(message)) => message,
        Err(other) => panic!("{text}: not an Invalid error: {other:?}"),
    }
}

fn test(property: UserProperty, op: RuleOp, value: RuleValue) -> RuleExpr {
    RuleExpr::Test { property, op, value }
}

fn eq(property: UserProperty, value: &str) -> RuleExpr {
    test(property, RuleOp::Eq, RuleValue::String(value.to_owned()))
}

fn and(a: RuleExpr, b: RuleExpr) -> RuleExpr {
    RuleExpr::And(Box::new(a), Box::new(b))
}

fn or(a: RuleExpr, b: RuleExpr) -> RuleExpr {
    RuleExpr::Or(Box::new(a), Box::new(b))
}

fn not(a: RuleExpr) -> RuleExpr {
    RuleExpr::Not(Box::new(a))
}

/// (rule, result for `adele()`, result for `bare()`).
const EVALUATIONS: &[(&str, bool, bool)] = &[
    // -eq / -ne with strings, present and absent
    ("user.department -eq \"Sales\"", true, false),
    ("user.department -eq \"sales\"", true, false),
    ("user.department -eq \"SALES\"", true, false),
    ("user.department -eq \"Sale\"", false, false),
    ("user.department -eq \"\"", false, false),
    ("user.department -ne \"Sales\"", false, true),
    ("user.department -ne \"sALES\"", false, true),
    ("user.department -ne \"Marketing\"", true, true),
    // null
    ("user.department -eq null", false, true),
    ("user.department -ne null", true, false),
    ("user.mail -eq null", false, true),
    ("user.mail -ne null", true, false),
    ("user.mail -eq NULL", false, true),
    ("user.displayName -eq null", false, false),
    ("user.displayName -ne null", true, true),
    ("user.accountEnabled -eq null", false, false),
    ("user.accountEnabled -ne null", true, true),
    // -startsWith / -notStartsWith
    ("user.jobTitle -startsWith \"Eng\"", true, false),
    ("user.jobTitle -startsWith \"eNG\"", true, false),
    ("user.jobTitle -startsWith \"II\"", false, false),
    ("user.jobTitle -startsWith \"\"", true, false),
    ("user.jobTitle -notStartsWith \"eng\"", false, true),
    ("user.jobTitle -notStartsWith \"Mgr\"", true, true),
    // -contains / -notContains
    ("user.jobTitle -contains \"NEER\"", true, false),
    ("user.jobTitle -contains \"ii\"", true, false),
    ("user.jobTitle -contains \"xyz\"", false, false),
    ("user.jobTitle -contains \"\"", true, false),
    ("user.jobTitle -notContains \"neer\"", false, true),
    ("user.jobTitle -notContains \"xyz\"", true, true),
    // -in / -notIn
    ("user.city -in [\"Seattle\",\"Sydney\"]", true, false),
    ("user.city -in ['sydney', 'SEATTLE']", true, false),
    ("user.city -in [\"Sydney\"]", false, false),
    ("user.city -notIn [\"Sydney\"]", true, true),
    ("user.city -notIn [\"seattle\", \"Sydney\"]", false, true),
    ("user.city -in [ \"Seattle\" ]", true, false),
    // -match / -notMatch
    ("user.displayName -match \"^A.*e$\"", true, false),
    ("user.displayName -match \"^A.*e\"", true, false),
    ("user.displayName -match \"^a.*E$\"", true, false),
    ("user.displayName -match \"^adele\"", true, false),
    ("user.displayName -match \"^Zed$\"", false, true),
    ("user.department -match \"ale\"", true, false),
    ("user.department -match \"^x\"", false, false),
    ("user.department -notMatch \"^x\"", true, true),
    ("user.department -notMatch \"s\"", false, true),
    ("user.mail -match \"@contoso\\.com$\"", true, false),
    ("user.employeeId -match \"^E-\\d{4}$\"", true, false),
    ("user.userPrincipalName -match \"@(contoso|fabrikam)\\.com$\"", true, true),
    // booleans
    ("user.accountEnabled -eq true", true, false),
    ("user.accountEnabled -eq false", false, true),
    ("user.accountEnabled -eq TRUE", true, false),
    ("user.accountEnabled -eq False", false, true),
    ("user.accountEnabled -ne true", false, true),
    ("user.accountEnabled -ne false", true, false),
    // every property
    ("user.displayName -eq \"adele vance\"", true, false),
    ("user.userPrincipalName -startsWith \"adelev@\"", true, false),
    ("user.userPrincipalName -eq \"ZED@fabrikam.com\"", false, true),
    ("user.mail -contains \"VANCE\"", true, false),
    ("user.userType -eq \"member\"", true, false),
    ("user.userType -eq \"Guest\"", false, true),
    ("user.userType -ne \"Guest\"", true, false),
    ("user.companyName -eq \"contoso\"", true, false),
    ("user.companyName -ne \"contoso\"", false, true),
    ("user.employeeId -eq \"e-1001\"", true, false),
    ("user.country -in [\"us\", \"ca\"]", true, false),
    ("user.country -notIn [\"us\", \"ca\"]", false, true),
    ("user.objectId -eq \"0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b\"", true, false),
    ("user.objectId -eq \"0193A5B2-7C4D-7E8F-9A0B-1C2D3E4F5A6B\"", true, false),
    ("user.objectId -eq \"00000000-0000-0000-0000-000000000000\"", false, true),
    ("user.objectId -ne null", true, true),
    // case-insensitive property names, operators and logic
    ("USER.DEPARTMENT -EQ \"SALES\"", true, false),
    ("User.Department -Eq \"sales\"", true, false),
    ("user.jobtitle -STARTSWITH \"eng\"", true, false),
    ("user.JOBTITLE -NOTCONTAINS \"x\"", true, true),
    ("user.city -IN [\"seattle\"]", true, false),
    ("user.city -NotIn [\"seattle\"]", false, true),
    ("user.department -MATCH \"^S\"", true, false),
    ("user.ACCOUNTENABLED -EQ TRUE", true, false),
    ("user.city -eq \"Seattle\" -AND user.country -eq \"US\"", true, false),
    ("user.city -eq \"Paris\" -OR user.country -eq \"US\"", true, false),
    ("-NOT (user.city -eq \"Seattle\")", false, true),
    // -and / -or / -not / parentheses
    ("(user.department -eq \"Sales\") -and (user.userType -eq \"Member\")", true, false),
    ("(user.department -eq \"Sales\") -and (user.userType -eq \"Guest\")", false, false),
    ("user.department -eq \"Sales\" -or user.userType -eq \"Guest\"", true, true),
    ("-not (user.city -in [\"Seattle\",\"Sydney\"])", false, true),
    ("-not user.city -in [\"Seattle\",\"Sydney\"]", false, true),
    ("-not -not user.city -eq \"Seattle\"", true, false),
    ("-not(user.city -eq \"Seattle\")", false, true),
    ("((user.city -eq \"Seattle\"))", true, false),
    ("(user.city-eq\"Seattle\")-and(user.country-eq'US')", true, false),
    ("\n\tuser.city\n-eq\t\"Seattle\"  \r\n", true, false),
    // precedence: -and binds tighter than -or, -not tighter than -and
    ("user.city -eq \"Paris\" -and user.country -eq \"US\" -or user.accountEnabled -eq true", true, false),
    ("user.accountEnabled -eq true -or user.city -eq \"Paris\" -and user.country -eq \"FR\"", true, false),
    ("(user.accountEnabled -eq true -or user.city -eq \"Paris\") -and user.country -eq \"FR\"", false, false),
    ("user.accountEnabled -eq false -or user.city -eq \"Paris\" -and user.country -eq \"FR\"", false, true),
    ("-not user.city -eq \"Paris\" -and user.country -eq \"US\"", true, false),
    ("-not (user.city -eq \"Paris\" -or user.country -eq \"US\")", false, true),
    // escapes and quotes
    ("user.department -eq 'Sales'", true, false),
    ("user.department -ne \"Sa\\\"les\"", true, true),
    ("user.department -ne 'O\\'Brien'", true, true),
    ("user.department -ne \"it's\"", true, true),
];

#[test]
fn evaluates_like_entra() {
    let (full, empty) = (adele(), bare());
    for (text, on_full, on_empty) in EVALUATIONS {
        let rule = parse(text);
        assert_eq!(rule.matches(&full), *on_full, "{text} on a full user");
        assert_eq!(rule.matches(&empty), *on_empty, "{text} on a bare user");
        assert_eq!(rule.expr().matches(&full), *on_full);
        assert_eq!(rule.text(), *text);
    }
}

#[test]
fn every_operator_on_absent_properties() {
    let empty = bare();
    for &op in RuleOp::ALL {
        let value = match op {
            RuleOp::In | RuleOp::NotIn => "[\"x\"]",
            _ => "\"x\"",
        };
        let rule = parse(&format!("user.city {op} {value}"));
        assert_eq!(rule.matches(&empty), op.is_negative(), "{op} on an absent city");
    }
    // The properties every user has are never absent.
    for property in [UserProperty::DisplayName, UserProperty::UserPrincipalName, UserProperty::UserType] {
        assert!(!parse(&format!("user.{property} -eq null")).matches(&empty), "{property}");
    }
    let optional = [
        UserProperty::Mail,
        UserProperty::Department,
        UserProperty::JobTitle,
        UserProperty::CompanyName,
        UserProperty::EmployeeId,
        UserProperty::City,
        UserProperty::Country,
    ];
    for property in optional {
        assert!(parse(&format!("user.{property} -eq null")).matches(&empty), "{property}");
        assert!(parse(&format!("user.{property} -ne null")).matches(&adele()), "{property}");
    }
}

#[test]
fn builds_the_expected_trees() {
    use UserProperty::{City, Country, Department};
    let cases: Vec<(&str, RuleExpr)> = vec![
        ("user.city -eq \"a\"", eq(City, "a")),
        (
            "user.city -eq \"a\" -or user.country -eq \"b\" -and user.department -eq \"c\"",
            or(eq(City, "a"), and(eq(Country, "b"), eq(Department, "c"))),
        ),
        (
            "user.city -eq \"a\" -and user.country -eq \"b\" -or user.department -eq \"c\"",
            or(and(eq(City, "a"), eq(Country, "b")), eq(Department, "c")),
        ),
        (
            "(user.city -eq \"a\" -or user.country -eq \"b\") -and user.department -eq \"c\"",
            and(or(eq(City, "a"), eq(Country, "b")), eq(Department, "c")),
        ),
        ("-not user.city -eq \"a\" -and user.country -eq \"b\"", and(not(eq(City, "a")), eq(Country, "b"))),
        ("-not -not user.city -eq \"a\"", not(not(eq(City, "a")))),
        (
            "user.city -eq \"a\" -and user.country -eq \"b\" -and user.department -eq \"c\"",
            and(and(eq(City, "a"), eq(Country, "b")), eq(Department, "c")),
        ),
        (
            "user.city -eq \"a\" -or user.country -eq \"b\" -or user.department -eq \"c\"",
            or(or(eq(City, "a"), eq(Country, "b")), eq(Department, "c")),
        ),
        ("user.city -eq null", test(City, RuleOp::Eq, RuleValue::Null)),
        ("user.city -ne 'x'", test(City, RuleOp::Ne, RuleValue::String("x".to_owned()))),
        (
            "user.city -notIn ['a', \"b\"]",
            test(City, RuleOp::NotIn, RuleValue::List(vec!["a".to_owned(), "b".to_owned()])),
        ),
        ("user.accountEnabled -ne false", test(UserProperty::AccountEnabled, RuleOp::Ne, RuleValue::Bool(false))),
        ("user.city -match \"^S\\d\"", test(City, RuleOp::Match, RuleValue::Regex(Pattern::new("^S\\d").unwrap()))),
        ("user.city -eq \"a\\\"b\"", eq(City, "a\"b")),
        ("user.city -eq 'a\\'b'", eq(City, "a'b")),
        ("user.city -eq 'a\"b'", eq(City, "a\"b")),
        ("user.city -eq \"a\\b\"", eq(City, "a\\b")),
        ("user.city -eq \"a\\\\b\"", eq(City, "a\\\\b")),
        ("user.city -eq \"\"", eq(City, "")),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text).expr(), &expected, "{text}");
    }
}

#[test]
fn every_operator_and_property_name_parses() {
    for &op in RuleOp::ALL {
        for spelling in [op.as_str().to_owned(), op.as_str().to_uppercase(), op.as_str().to_lowercase()] {
            let value = match op {
                RuleOp::In | RuleOp::NotIn => "[\"x\"]",
                _ => "\"x\"",
            };
            let rule = parse(&format!("user.city {spelling} {value}"));
            assert!(matches!(rule.expr(), RuleExpr::Test { op: parsed, .. } if *parsed == op), "{spelling}");
        }
    }
    for &property in UserProperty::ALL {
        let value = if property.is_boolean() { "true" } else { "\"x\"" };
        for name in [property.as_str().to_owned(), property.as_str().to_uppercase()] {
            let rule = parse(&format!("user.{name} -eq {value}"));
            assert!(matches!(rule.expr(), RuleExpr::Test { property: parsed, .. } if *parsed == property), "{name}");
        }
    }
    assert_eq!(RuleOp::NotStartsWith.name(), "notStartsWith");
    assert_eq!(RuleOp::In.to_string(), "-in");
    assert_eq!(UserProperty::ObjectId.to_string(), "objectId");
}

/// (rule, 1-based position, text the message must contain).
const SYNTAX_ERRORS: &[(&str, usize, &str)] = &[
    ("", 1, "the membership rule is empty"),
    ("   \n ", 1, "the membership rule is empty"),
    ("user.department -eq", 20, "expected a value after '-eq', found the end of the rule"),
    ("user.department -eq )", 21, "expected a value after '-eq', found ')'"),
    ("user.department -eq -and", 21, "expected a value after '-eq', found '-and'"),
    ("user.dept -eq \"x\"", 1, "unknown property 'user.dept'; supported properties: user.displayName, "),
    ("user.extension_abc_x -eq \"x\"", 1, "user.objectId"),
    ("device.deviceOSType -eq \"iOS\"", 1, "only user properties are supported"),
    ("department -eq \"x\"", 1, "expected a property written as user.<name>"),
    ("Sales", 1, "expected a property written as user.<name>"),
    ("user.city -equals \"x\"", 11, "unknown operator '-equals'; supported operators: -eq, -ne, -startsWith"),
    ("user.city -any \"x\"", 11, "'-any' operator is not supported"),
    ("user.city -ALL (x)", 11, "'-ALL' operator is not supported"),
    ("user.city \"x\"", 11, "expected a comparison operator such as -eq after 'user.city', found the string \"x\""),
    ("user.city", 10, "expected a comparison operator such as -eq after 'user.city', found the end of the rule"),
    ("user.city -and \"x\"", 11, "expected a comparison operator such as -eq after 'user.city', found '-and'"),
    ("user.city -not -eq \"x\"", 11, "found '-not'"),
    ("user.city -eq Seattle", 15, "found 'Seattle': put text values in double quotes"),
    ("user.city -eq user.country", 15, "comparing two properties is not supported"),
    ("user.city -eq 5", 15, "found '5'"),
    ("user.city -eq \"Seattle", 15, "this string is never closed"),
    ("user.city -eq 'Seattle\\'", 15, "this string is never closed"),
    (
        "user.city -eq \"a\" user.country -eq \"b\"",
        19,
        "expected -and, -or or the end of the rule after a condition, found 'user.country'",
    ),
    ("user.city -eq \"a\" -not user.city -eq \"b\"", 19, "found '-not'"),
    ("user.city -eq \"a\" \"b\"", 19, "found the string \"b\""),
    ("(user.city -eq \"a\"", 19, "expected ')' to close the '(' at position 1, found the end of the rule"),
    ("((user.city -eq \"a\")", 21, "expected ')' to close the '(' at position 1"),
    ("(user.city -eq \"a\" -and (user.city -eq \"b\")", 44, "the '(' at position 1"),
    ("user.city -eq \"a\")", 18, "unexpected ')' without a matching '('"),
    (
        "user.city -eq \"a\" -and",
        23,
        "expected a condition such as user.department -eq \"Sales\", '(' or -not, found the end of the rule",
    ),
    ("user.city -eq \"a\" -and -or user.city -eq \"b\"", 24, "expected a condition"),
    ("-eq \"a\"", 1, "expected a condition such as"),
    ("()", 2, "expected a condition such as user.department -eq \"Sales\", '(' or -not, found ')'"),
    ("-not", 5, "expected a condition"),
    (
        "user.department -eq true",
        21,
        "user.department is a string property: true and false only apply to user.accountEnabled",
    ),
    ("user.city -in [true]", 16, "array items must be quoted strings, found 'true'"),
    (
        "user.accountEnabled -eq \"true\"",
        25,
        "user.accountEnabled is a boolean property: compare it with true or false, without quotes",
    ),
    (
        "user.accountEnabled -startsWith \"t\"",
        21,
        "user.accountEnabled is a boolean property: only -eq and -ne apply to it, not '-startsWith'",
    ),
    ("user.accountEnabled -in [\"true\"]", 21, "only -eq and -ne apply"),
    ("user.city -startsWith null", 23, "null can only be compared with -eq or -ne, not with '-startsWith'"),
    ("user.city -in null", 15, "not with '-in'"),
    ("user.city -eq [\"a\"]", 15, "an array value is only allowed with -in and -notIn, not with '-eq'"),
    ("user.city -in \"a\"", 15, "'-in' expects an array of quoted strings"),
    ("user.city -notIn 'a'", 18, "'-notIn' expects an array"),
    ("user.city -in []", 15, "an array needs at least one value"),
    ("user.city -in [\"a\",]", 20, "expected another quoted string after ',', found ']'"),
    (
        "user.city -in [\"a\" \"b\"]",
        20,
        "expected ',' or ']' in the array opened at position 15, found the string \"b\"",
    ),
    ("user.city -in [\"a\"", 19, "expected ',' or ']' in the array opened at position 15, found the end of the rule"),
    ("user.city -in [", 16, "the '[' at position 15 is never closed"),
    ("user.city -in [,]", 16, "array items must be quoted strings, found ','"),
    ("user.city -match \"(a\"", 18, "invalid regular expression \"(a\": unclosed group"),
    ("user.city -notMatch \"*a\"", 21, "invalid regular expression"),
    ("user.city -match \"[z-a]\"", 18, "invalid regular expression"),
    ("user.city -match \"\\q\"", 18, "invalid regular expression"),
    ("user.city == \"a\"", 11, "unexpected character '=': comparisons and logic are written with operators"),
    ("user.city -eq \"a\" && user.country -eq \"b\"", 19, "unexpected character '&'"),
    ("user.city -eq \u{201C}a\u{201D}", 15, "typographic quote"),
    ("user.city \u{2013}eq \"a\"", 11, "unexpected dash"),
    ("user.city - eq \"a\"", 11, "expected an operator name such as -eq right after '-'"),
    ("user.city -eq \"a\" # note", 19, "unexpected character '#'"),
    ("user.city -eq \"a\" -and\u{0}", 23, "unexpected control character U+0000"),
    ("user.cïty -eq \"é\" -and x", 1, "unknown property 'user.cïty'"),
    ("user.city -eq \"é\" -and é", 24, "expected a property written as user.<name>"),
];

#[test]
fn syntax_errors_name_their_position() {
    for (text, position, needle) in SYNTAX_ERRORS {
        let message = error(text);
        let prefix = format!("Syntax error at position {position} in membership rule: ");
        assert!(message.starts_with(&prefix), "{text:?}: {message}");
        assert!(message.contains(needle), "{text:?}: {message}");
        assert!(message.ends_with('.'), "{text:?}: {message}");
    }
}

#[test]
fn the_documented_example_message() {
    assert_eq!(
        error("user.department -eq"),
        "Syntax error at position 20 in membership rule: expected a value after '-eq', found the end of the rule."
    );
}

#[test]
fn unknown_property_lists_every_known_one() {
    let message = error("user.manager -eq \"x\"");
    for property in UserProperty::ALL {
        assert!(message.contains(&format!("user.{property}")), "{message}");
    }
}

#[test]
fn nesting_is_limited_to_fifty_levels() {
    let inner = "user.city -eq \"a\"";
    let nested = |n: usize| format!("{}{inner}{}", "(".repeat(n), ")".repeat(n));
    assert!(!parse(&nested(50)).matches(&bare()));
    let message = error(&nested(51));
    assert!(message.starts_with("Syntax error at position 51 "), "{message}");
    assert!(message.contains("more than 50 levels"), "{message}");

    let nots = |n: usize| format!("{}{inner}", "-not ".repeat(n));
    assert!(!parse(&nots(50)).matches(&bare()));
    assert!(parse(&nots(49)).matches(&bare()));
    assert!(error(&nots(51)).starts_with("Syntax error at position 251 "));

    // Mixed: 25 parentheses around 26 -not.
    let mixed = format!("{}{}{}", "(-not ".repeat(25), "-not user.city -eq \"a\"", ")".repeat(25));
    assert!(error(&mixed).contains("more than 50 levels"));
    let mixed = format!("{}{}{}", "(-not ".repeat(25), "user.city -eq \"a\"", ")".repeat(25));
    assert!(parse(&mixed).matches(&bare()));

    // Long flat chains are not nesting.
    let chain = vec![inner; 100].join(" -or ");
    assert!(!parse(&chain).matches(&bare()));
    assert!(parse(&chain.replace("\"a\"", "\"Seattle\"")).matches(&adele()));
}

#[test]
fn rule_text_is_limited_to_3072_characters() {
    let head = "user.city -eq \"";
    let fill = |n: usize, c: char| format!("{head}{}\"", c.to_string().repeat(n - head.len() - 1));
    let longest = fill(MAX_CHARS, 'a');
    assert_eq!(longest.chars().count(), 3072);
    assert!(MembershipRule::parse(&longest).is_ok());
    let message = error(&fill(MAX_CHARS + 1, 'a'));
    assert_eq!(message, "The membership rule is 3073 characters long; at most 3072 are allowed.");
    // Characters, not bytes.
    let accented = fill(MAX_CHARS, 'é');
    assert!(accented.len() > MAX_CHARS);
    assert!(MembershipRule::parse(&accented).is_ok());
    // Whitespace counts too.
    assert!(MembershipRule::parse(&format!("{}{}", " ".repeat(3060), "user.city -eq \"a\"")).is_err());
}

#[test]
fn hostile_patterns_parse_and_terminate() {
    let rule = parse("user.displayName -match \"(a*)*b\"");
    let mut user = adele();
    user.display_name = DisplayName::parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaac").unwrap();
    let started = std::time::Instant::now();
    assert!(!rule.matches(&user));
    assert!(parse("user.displayName -notMatch \"(a*)*b\"").matches(&user));
    assert!(parse("user.displayName -match \"^(a|aa)*c$\"").matches(&user));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[test]
fn serde_uses_the_text() {
    let text = "(user.department -eq \"Sales\") -and -not (user.city -in ['Seattle'])";
    let rule = parse(text);
    let json = serde_json::to_string(&rule).unwrap();
    assert_eq!(json, serde_json::to_string(text).unwrap());
    let back: MembershipRule = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rule);
    assert_eq!(back.to_string(), text);
    assert_eq!(text.parse::<MembershipRule>().unwrap(), rule);

    let bad = serde_json::from_str::<MembershipRule>("\"user.city -eq\"").unwrap_err().to_string();
    assert!(bad.contains("Syntax error at position 14"), "{bad}");
    assert!(serde_json::from_str::<MembershipRule>("42").is_err());

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    #[serde(rename_all = "camelCase")]
    struct Holder {
        membership_rule: MembershipRule,
    }
    let holder = Holder { membership_rule: rule };
    let json = serde_json::to_value(&holder).unwrap();
    assert_eq!(json["membershipRule"], text);
    assert_eq!(serde_json::from_value::<Holder>(json).unwrap(), holder);
}

#[test]
fn hand_built_mismatches_are_false() {
    let user = adele();
    let odd = [
        test(UserProperty::City, RuleOp::Eq, RuleValue::Bool(true)),
        test(UserProperty::City, RuleOp::In, RuleValue::String("Seattle".to_owned())),
        test(UserProperty::City, RuleOp::Match, RuleValue::String("Seattle".to_owned())),
        test(UserProperty::AccountEnabled, RuleOp::Contains, RuleValue::Bool(true)),
        test(UserProperty::AccountEnabled, RuleOp::Eq, RuleValue::String("true".to_owned())),
    ];
    for expr in odd {
        assert!(!expr.matches(&user), "{expr:?}");
    }
}

/// A small deterministic xorshift generator, so the fuzz loop is reproducible.
struct Rng(u64);

impl Rng {
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
fn fuzzed_rules_never_panic() {
    let alphabet: &[&str] = &[
        "user.",
        "user.city",
        "user.department",
        "user.accountEnabled",
        "user.objectId",
        "user.mail",
        "USER.CITY",
        "device.x",
        "city",
        "-eq",
        "-ne",
        "-startsWith",
        "-notContains",
        "-in",
        "-notIn",
        "-match",
        "-notMatch",
        "-and",
        "-or",
        "-not",
        "-any",
        "-all",
        "-EQ",
        "-",
        "(",
        ")",
        "[",
        "]",
        ",",
        "\"",
        "'",
        "\\",
        "\\\"",
        " ",
        " ",
        " ",
        "\n",
        "\"a\"",
        "'Seattle'",
        "\"sales\"",
        "true",
        "false",
        "null",
        "Sales",
        "5",
        "\"(a*)*b\"",
        "\"^A.*e$\"",
        "\"[a-\"",
        "\"a{2,1}\"",
        "\"\\d+\"",
        "*",
        "^",
        "$",
        "|",
        "{",
        "}",
        "=",
        "“",
        "é",
        "\u{0}",
        "[\"a\",\"b\"]",
        "user.city -eq \"a\"",
        "user.accountEnabled -ne false",
        " -and ",
        " -or ",
        "-not ",
    ];
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (full, empty) = (adele(), bare());
    let mut parsed = 0;
    for _ in 0..6000 {
        let len = rng.below(12);
        let text: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        match MembershipRule::parse(&text) {
            Ok(rule) => {
                parsed += 1;
                let _ = rule.matches(&full);
                let _ = rule.matches(&empty);
                assert_eq!(rule.text(), text);
                assert_eq!(MembershipRule::parse(rule.text()).unwrap(), rule);
            }
            Err(DomainError::Invalid(message)) => {
                assert!(!message.is_empty(), "{text:?}");
            }
            Err(other) => panic!("{text:?}: unexpected error kind {other:?}"),
        }
    }
    assert!(parsed > 10, "only {parsed} random rules parsed");
    // Well-formed rules stitched from valid pieces, so evaluation is exercised too.
    let tests = [
        "user.city -eq \"Seattle\"",
        "user.department -ne null",
        "user.accountEnabled -eq true",
        "user.jobTitle -match \"^eng\"",
        "user.country -notIn [\"US\"]",
        "user.mail -contains \"@\"",
    ];
    for _ in 0..2000 {
        let mut text = String::new();
        let mut open = 0;
        for k in 0..=rng.below(6) {
            if k > 0 {
                text.push_str([" -and ", " -or "][rng.below(2)]);
            }
            if rng.below(3) == 0 {
                text.push_str("-not ");
            }
            if rng.below(3) == 0 {
                text.push('(');
                open += 1;
            }
            text.push_str(tests[rng.below(tests.len())]);
            if open > 0 && rng.below(2) == 0 {
                text.push(')');
                open -= 1;
            }
        }
        text.push_str(&")".repeat(open));
        let rule = parse(&text);
        parsed += 1;
        let _ = rule.matches(&full);
        let _ = rule.matches(&empty);
    }
    assert!(parsed > 2010, "only {parsed} rules parsed");
}

/// Property tests: the parser never panics, whatever the input, and what it accepts evaluates
/// and round-trips through its text. Complements `fuzzed_rules_never_panic` (a token alphabet)
/// with arbitrary Unicode, rule-shaped ASCII soup and inputs around the length limit.
mod arbitrary_input {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::{DomainError, MembershipRule, adele, bare};

    fn check(text: &str) -> Result<(), TestCaseError> {
        match MembershipRule::parse(text) {
            Ok(rule) => {
                let _ = rule.matches(&adele());
                let _ = rule.matches(&bare());
                prop_assert_eq!(rule.text(), text);
                prop_assert_eq!(MembershipRule::parse(rule.text()).ok(), Some(rule));
            }
            Err(DomainError::Invalid(message)) => prop_assert!(!message.is_empty()),
            Err(other) => prop_assert!(false, "{text:?}: unexpected error kind {other:?}"),
        }
        Ok(())
    }

    const TOKENS: &[&str] = &[
        "user.city",
        "user.accountEnabled",
        "user.objectId",
        "user.",
        "-eq",
        "-ne",
        "-in",
        "-notIn",
        "-match",
        "-notMatch",
        "-contains",
        "-and",
        "-or",
        "-not",
        "-",
        "(",
        ")",
        "[",
        "]",
        ",",
        "\"",
        "'",
        "\\",
        "\"a\"",
        "\"(a*)*b\"",
        "\"[\"",
        "true",
        "null",
        " ",
        "é",
        "\u{0}",
        "\u{202e}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_unicode_never_panics(text in any::<String>()) {
            check(&text)?;
        }

        #[test]
        fn rule_shaped_ascii_never_panics(text in "[ -~]{0,120}") {
            check(&text)?;
        }

        #[test]
        fn token_soup_never_panics(parts in proptest::collection::vec(select(TOKENS), 0..60)) {
            check(&parts.concat())?;
        }

        #[test]
        fn inputs_around_the_length_limit_never_panic(n in 3060usize..3090, c in select(&["a", "é", " ", "("][..])) {
            let text = format!("user.city -eq \"{}\"", c.repeat(n.saturating_sub(16)));
            check(&text)?;
        }
    }
}
