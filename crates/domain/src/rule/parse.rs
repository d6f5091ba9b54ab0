//! The recursive-descent parser of membership rules: operator precedence, the nesting limit,
//! and the type checks that pair each property and operator with the values it accepts.

use crate::DomainError;
use crate::text::clip;

use super::lex::{Tok, Token};
use super::pattern::Pattern;
use super::{MAX_DEPTH, RuleExpr, RuleOp, RuleValue, UserProperty, syntax_error};

/// Parses a token list (ending with [`Tok::End`]) into an expression.
pub(super) fn parse_tokens(tokens: Vec<Token>) -> Result<RuleExpr, DomainError> {
    let end_pos = tokens.last().map_or(1, |t| t.pos);
    let mut parser = Parser { tokens, i: 0, depth: 0, end: Token { tok: Tok::End, pos: end_pos } };
    let expr = parser.parse_or()?;
    let next = parser.peek();
    match &next.tok {
        Tok::End => Ok(expr),
        Tok::RParen => Err(syntax_error(next.pos, "unexpected ')' without a matching '('")),
        other => Err(syntax_error(
            next.pos,
            format!("expected -and, -or or the end of the rule after a condition, found {}", other.describe()),
        )),
    }
}

/// A value as written, before it is checked against its property and operator.
enum Written {
    Null,
    Bool(bool),
    String(String),
    List(Vec<String>),
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    depth: usize,
    end: Token,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.i).unwrap_or(&self.end)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        token
    }

    fn at_dash(&self, name: &str) -> bool {
        matches!(&self.peek().tok, Tok::Dash(n) if n.eq_ignore_ascii_case(name))
    }

    fn enter(&mut self, pos: usize) -> Result<(), DomainError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax_error(
                pos,
                format!("the rule nests parentheses and -not more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    /// `and (-or and)*`: -or binds loosest.
    fn parse_or(&mut self) -> Result<RuleExpr, DomainError> {
        let mut left = self.parse_and()?;
        while self.at_dash("or") {
            self.i += 1;
            let right = self.parse_and()?;
            left = RuleExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `unary (-and unary)*`.
    fn parse_and(&mut self) -> Result<RuleExpr, DomainError> {
        let mut left = self.parse_unary()?;
        while self.at_dash("and") {
            self.i += 1;
            let right = self.parse_unary()?;
            left = RuleExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `-not unary | ( or ) | test`: -not binds tightest.
    fn parse_unary(&mut self) -> Result<RuleExpr, DomainError> {
        let token = self.next();
        match token.tok {
            Tok::Dash(ref name) if name.eq_ignore_ascii_case("not") => {
                self.enter(token.pos)?;
                let inner = self.parse_unary()?;
                self.depth -= 1;
                Ok(RuleExpr::Not(Box::new(inner)))
            }
            Tok::LParen => {
                self.enter(token.pos)?;
                let inner = self.parse_or()?;
                let close = self.next();
                if close.tok != Tok::RParen {
                    return Err(syntax_error(
                        close.pos,
                        format!(
                            "expected ')' to close the '(' at position {}, found {}",
                            token.pos,
                            close.tok.describe()
                        ),
                    ));
                }
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Word(ref word) => self.parse_test(word, token.pos),
            ref other => Err(syntax_error(
                token.pos,
                format!(
                    "expected a condition such as user.department -eq \"Sales\", '(' or -not, found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// `user.<property> -<operator> <value>`, the property word already consumed.
    fn parse_test(&mut self, word: &str, pos: usize) -> Result<RuleExpr, DomainError> {
        let property = parse_property(word, pos)?;
        let op_token = self.next();
        let op = match &op_token.tok {
            Tok::Dash(name) => comparison_op(name, op_token.pos, property)?,
            other => {
                return Err(syntax_error(
                    op_token.pos,
                    format!(
                        "expected a comparison operator such as -eq after 'user.{property}', found {}",
                        other.describe()
                    ),
                ));
            }
        };
        let value_token = self.next();
        let written = match &value_token.tok {
            Tok::Str(s) => Written::String(s.clone()),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Written::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Written::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Written::Null,
            Tok::Word(w) if w.contains('.') => {
                return Err(syntax_error(
                    value_token.pos,
                    format!(
                        "expected a value after '{op}', found '{}': comparing two properties is not supported (quote the value to compare text)",
                        clip(w, 40)
                    ),
                ));
            }
            Tok::Word(w) => {
                return Err(syntax_error(
                    value_token.pos,
                    format!(
                        "expected a value after '{op}', found '{}': put text values in double quotes, as in \"{}\"",
                        clip(w, 40),
                        clip(w, 40)
                    ),
                ));
            }
            Tok::LBracket => Written::List(self.parse_list(value_token.pos)?),
            other => {
                return Err(syntax_error(
                    value_token.pos,
                    format!("expected a value after '{op}', found {}", other.describe()),
                ));
            }
        };
        let value = check(property, op, op_token.pos, written, value_token.pos)?;
        Ok(RuleExpr::Test { property, op, value })
    }

    /// `"a", "b", ... ]`, the `[` at `open` already consumed.
    fn parse_list(&mut self, open: usize) -> Result<Vec<String>, DomainError> {
        let mut items = Vec::new();
        loop {
            let item = self.next();
            match item.tok {
                Tok::Str(s) => items.push(s),
                Tok::RBracket if items.is_empty() => {
                    return Err(syntax_error(open, "an array needs at least one value, as in [\"a\", \"b\"]"));
                }
                Tok::End => {
                    return Err(syntax_error(
                        item.pos,
                        format!("expected a quoted string: the '[' at position {open} is never closed"),
                    ));
                }
                ref other if items.is_empty() => {
                    return Err(syntax_error(
                        item.pos,
                        format!("array items must be quoted strings, found {}", other.describe()),
                    ));
                }
                ref other => {
                    return Err(syntax_error(
                        item.pos,
                        format!("expected another quoted string after ',', found {}", other.describe()),
                    ));
                }
            }
            let separator = self.next();
            match separator.tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok(items),
                ref other => {
                    return Err(syntax_error(
                        separator.pos,
                        format!(
                            "expected ',' or ']' in the array opened at position {open}, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
        }
    }
}

/// `user.<name>`, both parts case-insensitive.
fn parse_property(word: &str, pos: usize) -> Result<UserProperty, DomainError> {
    let Some((object, name)) = word.split_once('.') else {
        return Err(syntax_error(
            pos,
            format!("expected a property written as user.<name>, such as user.department, found '{}'", clip(word, 40)),
        ));
    };
    if !object.eq_ignore_ascii_case("user") {
        return Err(syntax_error(
            pos,
            format!(
                "only user properties are supported in membership rules, as in user.department; found '{}'",
                clip(word, 40)
            ),
        ));
    }
    UserProperty::ALL.iter().copied().find(|p| p.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| {
        let known: Vec<String> = UserProperty::ALL.iter().map(|p| format!("user.{p}")).collect();
        syntax_error(pos, format!("unknown property '{}'; supported properties: {}", clip(word, 40), known.join(", ")))
    })
}

/// The comparison operator named `name` (without its dash).
fn comparison_op(name: &str, pos: usize, property: UserProperty) -> Result<RuleOp, DomainError> {
    if let Some(op) = RuleOp::ALL.iter().copied().find(|op| op.name().eq_ignore_ascii_case(name)) {
        return Ok(op);
    }
    let lower = name.to_ascii_lowercase();
    let message = match lower.as_str() {
        "and" | "or" | "not" => {
            format!("expected a comparison operator such as -eq after 'user.{property}', found '-{name}'")
        }
        "any" | "all" => format!(
            "the '-{name}' operator is not supported: it applies to multi-valued properties, and every supported user property holds a single value"
        ),
        _ => {
            let known: Vec<&str> = RuleOp::ALL.iter().map(|op| op.as_str()).collect();
            format!("unknown operator '-{}'; supported operators: {}", clip(name, 40), known.join(", "))
        }
    };
    Err(syntax_error(pos, message))
}

/// Checks that `written` suits `property` and `op`, compiling regular expressions.
fn check(
    property: UserProperty,
    op: RuleOp,
    op_pos: usize,
    written: Written,
    value_pos: usize,
) -> Result<RuleValue, DomainError> {
    let equality = matches!(op, RuleOp::Eq | RuleOp::Ne);
    if property == UserProperty::AccountEnabled {
        if !equality {
            return Err(syntax_error(
                op_pos,
                format!("user.{property} is a boolean property: only -eq and -ne apply to it, not '{op}'"),
            ));
        }
        return match written {
            Written::Bool(b) => Ok(RuleValue::Bool(b)),
            Written::Null => Ok(RuleValue::Null),
            Written::String(_) | Written::List(_) => Err(syntax_error(
                value_pos,
                format!("user.{property} is a boolean property: compare it with true or false, without quotes"),
            )),
        };
    }
    match written {
        Written::Null if equality => Ok(RuleValue::Null),
        Written::Null => {
            Err(syntax_error(value_pos, format!("null can only be compared with -eq or -ne, not with '{op}'")))
        }
        Written::Bool(_) => Err(syntax_error(
            value_pos,
            format!(
                "user.{property} is a string property: true and false only apply to user.accountEnabled (quote the value to compare text)"
            ),
        )),
        Written::List(items) if matches!(op, RuleOp::In | RuleOp::NotIn) => Ok(RuleValue::List(items)),
        Written::List(_) => {
            Err(syntax_error(value_pos, format!("an array value is only allowed with -in and -notIn, not with '{op}'")))
        }
        Written::String(_) if matches!(op, RuleOp::In | RuleOp::NotIn) => {
            Err(syntax_error(value_pos, format!("'{op}' expects an array of quoted strings, such as [\"a\", \"b\"]")))
        }
        Written::String(s) if matches!(op, RuleOp::Match | RuleOp::NotMatch) => match Pattern::new(&s) {
            Ok(pattern) => Ok(RuleValue::Regex(pattern)),
            Err(e) => Err(syntax_error(value_pos, format!("invalid regular expression \"{}\": {e}", clip(&s, 60)))),
        },
        Written::String(s) => Ok(RuleValue::String(s)),
    }
}
