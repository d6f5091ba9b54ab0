//! The `$filter` grammar: the expression tree ([`Expr`]) and a recursive-descent parser
//! ([`parse_filter`]) for the OData v4 subset Microsoft Graph v1.0 accepts.
//!
//! Precedence, tightest first: `not`, then comparisons and `in`, then `and`, then `or`.
//! Keywords and function names are case-insensitive; property names keep their case.

mod lexer;
#[cfg(test)]
mod tests;

use std::fmt;

use lexer::{SyntaxError, Tok, Token};

use crate::{ODataError, shorten};

/// Longest `$filter` accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// Deepest nesting accepted (parentheses, `not`, function calls and lambdas each add a level).
pub const MAX_DEPTH: usize = 100;
/// Most conditions one `$filter` may combine with `and` / `or` (counted over the whole
/// expression). Chains are n-ary nodes, so length costs no recursion; the cap keeps the SQL a
/// database is asked to plan reasonable (SQLite refuses expression trees over 1000 deep, and a
/// left-deep `a AND b AND …` is as deep as it is long).
pub const MAX_TERMS: usize = 200;

/// Characters of the input echoed back in an error message.
const ECHO_CHARS: usize = 200;
/// Characters of a single token echoed back in an error message.
const TOKEN_ECHO_CHARS: usize = 40;

/// A parsed `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Literal),
    /// A property path as written (case preserved): `catalog/id` is `["catalog", "id"]`.
    /// Inside an `any` predicate, paths through the range variable start with it (`["m", "id"]`).
    Property(Vec<String>),
    Compare {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// Two or more operands, all true. Never directly contains another `And`: chains and
    /// parenthesised sub-chains are flattened (see [`Expr::and`]), so a long chain is wide, not
    /// deep, and nothing that walks the tree recurses once per operand.
    And(Vec<Expr>),
    /// Two or more operands, one true; flattened like `And`.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `state in ('a','b')`.
    In {
        expr: Box<Expr>,
        list: Vec<Literal>,
    },
    Call {
        func: Func,
        args: Vec<Expr>,
    },
    /// `members/any(m: m/id eq 'x')`. For `members/any()`, `var` is empty and `predicate` is
    /// `Literal(Bool(true))`.
    Any {
        path: Vec<String>,
        var: String,
        predicate: Box<Expr>,
    },
}

impl Expr {
    /// `left and right`, flattened: operands that are themselves `And` are spliced in.
    pub fn and(left: Expr, right: Expr) -> Expr {
        let mut terms = Vec::new();
        for e in [left, right] {
            match e {
                Expr::And(inner) => terms.extend(inner),
                other => terms.push(other),
            }
        }
        Expr::And(terms)
    }

    /// `left or right`, flattened like [`Expr::and`].
    pub fn or(left: Expr, right: Expr) -> Expr {
        let mut terms = Vec::new();
        for e in [left, right] {
            match e {
                Expr::Or(inner) => terms.extend(inner),
                other => terms.push(other),
            }
        }
        Expr::Or(terms)
    }
}

/// A literal value. GUIDs are normalised to lower case; DateTimeOffsets to an instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    DateTime(jiff::Timestamp),
    Date(jiff::civil::Date),
    Guid(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    /// The operator for an OData keyword (`eq`, `NE`, ...), case-insensitively.
    pub fn from_keyword(word: &str) -> Option<Self> {
        [Self::Eq, Self::Ne, Self::Gt, Self::Ge, Self::Lt, Self::Le]
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// The canonical lower-case keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A supported built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Contains,
    StartsWith,
    EndsWith,
    ToLower,
    ToUpper,
    Length,
    Trim,
}

impl Func {
    const ALL: [Self; 7] =
        [Self::Contains, Self::StartsWith, Self::EndsWith, Self::ToLower, Self::ToUpper, Self::Length, Self::Trim];

    /// The function for an OData name (`startsWith`, `startswith`, ...), case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|func| func.name().eq_ignore_ascii_case(name))
    }

    /// The canonical lower-case OData name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::StartsWith => "startswith",
            Self::EndsWith => "endswith",
            Self::ToLower => "tolower",
            Self::ToUpper => "toupper",
            Self::Length => "length",
            Self::Trim => "trim",
        }
    }

    /// How many arguments the function takes.
    pub fn arity(self) -> usize {
        match self {
            Self::Contains | Self::StartsWith | Self::EndsWith => 2,
            Self::ToLower | Self::ToUpper | Self::Length | Self::Trim => 1,
        }
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a (percent-decoded) `$filter` value. Every error has code `InvalidFilter` and a
/// message naming the offending text and its character position.
pub fn parse_filter(input: &str) -> Result<Expr, ODataError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ODataError::invalid_filter(format!(
            "The $filter expression is too long ({} bytes); the limit is {MAX_FILTER_LEN} bytes.",
            input.len()
        )));
    }
    if input.trim().is_empty() {
        return Err(ODataError::invalid_filter("The $filter expression is empty."));
    }
    let tokens = lexer::tokenize(input).map_err(|e| to_odata_error(input, &e))?;
    Parser::new(input, tokens).parse_complete().map_err(|e| to_odata_error(input, &e))
}

fn to_odata_error(input: &str, err: &SyntaxError) -> ODataError {
    ODataError::invalid_filter(format!(
        "Syntax error at position {} in '{}': {}.",
        char_position(input, err.pos),
        shorten(input, ECHO_CHARS),
        err.detail
    ))
}

/// The character index of a byte offset (what a human counts).
fn char_position(input: &str, byte: usize) -> usize {
    input.get(..byte).map_or_else(|| input.chars().count(), |prefix| prefix.chars().count())
}

/// Words that are operators, so never property names.
fn is_operator_keyword(word: &str) -> bool {
    CmpOp::from_keyword(word).is_some()
        || ["and", "or", "not", "in"].iter().any(|kw| kw.eq_ignore_ascii_case(word))
        || unsupported_operator(word)
}

/// OData operators Graph v1.0 does not take in `$filter` here.
fn unsupported_operator(word: &str) -> bool {
    ["has", "add", "sub", "mul", "div", "divby", "mod"].iter().any(|kw| kw.eq_ignore_ascii_case(word))
}

/// `true`, `false` and `null` in any case.
fn keyword_literal(word: &str) -> Option<Literal> {
    if word.eq_ignore_ascii_case("true") {
        Some(Literal::Bool(true))
    } else if word.eq_ignore_ascii_case("false") {
        Some(Literal::Bool(false))
    } else if word.eq_ignore_ascii_case("null") {
        Some(Literal::Null)
    } else {
        None
    }
}

type PResult<T> = Result<T, SyntaxError>;

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    idx: usize,
    depth: usize,
    /// Conditions joined by `and`/`or` so far (see [`MAX_TERMS`]).
    terms: usize,
    eof: Token,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, tokens: Vec<Token>) -> Self {
        let eof = Token { kind: Tok::Eof, start: src.len(), end: src.len() };
        Self { src, tokens, idx: 0, depth: 0, terms: 1, eof }
    }

    // ---- token access -------------------------------------------------------------------

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        self.tokens.get(self.idx + ahead).unwrap_or(&self.eof)
    }

    fn bump(&mut self) -> Token {
        let tok = self.peek().clone();
        if self.idx < self.tokens.len() {
            self.idx += 1;
        }
        tok
    }

    fn previous(&self) -> Option<&Token> {
        self.idx.checked_sub(1).and_then(|i| self.tokens.get(i))
    }

    fn is_keyword(tok: &Token, keyword: &str) -> bool {
        matches!(&tok.kind, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    /// `'text'` of a token for messages, or "the end of the input".
    fn describe(&self, tok: &Token) -> String {
        if tok.kind == Tok::Eof {
            return "the end of the input".to_owned();
        }
        let text = self.src.get(tok.start..tok.end).unwrap_or("");
        format!("'{}'", shorten(text, TOKEN_ECHO_CHARS))
    }

    fn char_pos(&self, byte: usize) -> usize {
        char_position(self.src, byte)
    }

    /// "expected X but found Y" at the current token.
    fn expected(&self, what: &str) -> SyntaxError {
        let tok = self.peek();
        SyntaxError::new(tok.start, format!("expected {what} but found {}", self.describe(tok)))
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError::new(pos, format!("the expression is nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }

    /// Counts one more condition joined by `and`/`or` at `pos`.
    fn join(&mut self, pos: usize) -> PResult<()> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(SyntaxError::new(
                pos,
                format!(
                    "the expression combines more than {MAX_TERMS} conditions with 'and'/'or'; \
                     use 'in' for a list of values or split the query"
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Consumes the `)` matching the `(` at `open`.
    fn expect_close(&mut self, open: &Token) -> PResult<()> {
        if self.peek().kind == Tok::RParen {
            self.bump();
            return Ok(());
        }
        Err(self.expected(&format!("')' to close the '(' at position {}", self.char_pos(open.start))))
    }

    // ---- grammar ------------------------------------------------------------------------

    /// The whole input: one expression and nothing after it.
    fn parse_complete(&mut self) -> PResult<Expr> {
        let expr = self.parse_or()?;
        let tok = self.peek();
        match tok.kind {
            Tok::Eof => Ok(expr),
            Tok::RParen => Err(SyntaxError::new(tok.start, "unbalanced ')' without a matching '('")),
            _ => Err(SyntaxError::new(
                tok.start,
                format!(
                    "unexpected {} after a complete expression; expected 'and', 'or' or the end \
                     of the input",
                    self.describe(tok)
                ),
            )),
        }
    }

    /// Operands of `or` in a loop, so a chain of any length costs no recursion.
    fn parse_or(&mut self) -> PResult<Expr> {
        let mut left = self.parse_and()?;
        while Self::is_keyword(self.peek(), "or") {
            let op = self.bump();
            self.join(op.start)?;
            let right = self.parse_and()?;
            left = Expr::or(left, right);
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> PResult<Expr> {
        let mut left = self.parse_comparison()?;
        while Self::is_keyword(self.peek(), "and") {
            let op = self.bump();
            self.join(op.start)?;
            let right = self.parse_comparison()?;
            left = Expr::and(left, right);
        }
        Ok(left)
    }

    /// `unary ((eq|ne|gt|ge|lt|le) unary | in (literal, ...))*`
    fn parse_comparison(&mut self) -> PResult<Expr> {
        let mut left = self.parse_unary()?;
        loop {
            let tok = self.peek().clone();
            let Tok::Word(word) = &tok.kind else {
                return Ok(left);
            };
            if let Some(op) = CmpOp::from_keyword(word) {
                self.bump();
                let right = self.parse_unary()?;
                left = Expr::Compare { op, left: Box::new(left), right: Box::new(right) };
            } else if word.eq_ignore_ascii_case("in") {
                self.bump();
                let list = self.parse_in_list()?;
                left = Expr::In { expr: Box::new(left), list };
            } else if unsupported_operator(word) {
                return Err(SyntaxError::new(tok.start, format!("the operator '{word}' is not supported")));
            } else {
                return Ok(left);
            }
        }
    }

    fn parse_unary(&mut self) -> PResult<Expr> {
        let tok = self.peek().clone();
        if !Self::is_keyword(&tok, "not") {
            return self.parse_primary();
        }
        self.bump();
        self.enter(tok.start)?;
        let operand = self.parse_unary()?;
        self.leave();
        Ok(Expr::Not(Box::new(operand)))
    }

    fn parse_primary(&mut self) -> PResult<Expr> {
        let tok = self.peek().clone();
        match &tok.kind {
            Tok::LParen => self.parse_parenthesized(),
            Tok::Lit(literal) => {
                self.bump();
                Ok(Expr::Literal(literal.clone()))
            }
            Tok::Word(word) if !is_operator_keyword(word) => self.parse_word(word),
            _ => Err(self.missing_value()),
        }
    }

    /// A value was required at the current token. At the end of the input the error points
    /// at the token that wanted the value (`expected a value after 'eq'`).
    fn missing_value(&self) -> SyntaxError {
        let tok = self.peek();
        match (self.previous(), tok.kind == Tok::Eof) {
            (Some(prev), true) => {
                SyntaxError::new(prev.start, format!("expected a value after {}", self.describe(prev)))
            }
            (Some(prev), false) => SyntaxError::new(
                tok.start,
                format!("expected a value after {} but found {}", self.describe(prev), self.describe(tok)),
            ),
            (None, _) => self.expected("a value"),
        }
    }

    fn parse_parenthesized(&mut self) -> PResult<Expr> {
        let open = self.bump();
        self.enter(open.start)?;
        let inner = self.parse_or()?;
        self.expect_close(&open)?;
        self.leave();
        Ok(inner)
    }

    /// A word in value position: `true`/`false`/`null`, a function call or a property path.
    fn parse_word(&mut self, word: &str) -> PResult<Expr> {
        if let Some(literal) = keyword_literal(word) {
            self.bump();
            return Ok(Expr::Literal(literal));
        }
        if self.peek_at(1).kind == Tok::LParen {
            return self.parse_call(word);
        }
        self.parse_path()
    }

    /// `name(arg, ...)` with the name token current.
    fn parse_call(&mut self, name: &str) -> PResult<Expr> {
        let name_tok = self.bump();
        let func = Func::from_name(name).ok_or_else(|| unknown_function(&name_tok, name))?;
        let open = self.bump();
        self.enter(open.start)?;
        let args = self.parse_arguments(name)?;
        self.leave();
        if args.len() != func.arity() {
            return Err(SyntaxError::new(
                name_tok.start,
                format!("function '{name}' takes {} but was given {}", plural(func.arity(), "argument"), args.len()),
            ));
        }
        Ok(Expr::Call { func, args })
    }

    /// Comma-separated arguments up to and including the closing `)`.
    fn parse_arguments(&mut self, name: &str) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        if self.peek().kind == Tok::RParen {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.parse_or()?);
            match self.peek().kind {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    return Ok(args);
                }
                _ => {
                    return Err(self.expected(&format!("',' or ')' in the arguments of '{name}'")));
                }
            }
        }
    }

    /// `(literal, ...)` after `in`.
    fn parse_in_list(&mut self) -> PResult<Vec<Literal>> {
        if self.peek().kind != Tok::LParen {
            return Err(self.expected("'(' after 'in'"));
        }
        self.bump();
        let mut list = Vec::new();
        loop {
            let literal = match &self.peek().kind {
                Tok::Lit(literal) => literal.clone(),
                Tok::Word(word) => {
                    keyword_literal(word).ok_or_else(|| self.expected("a literal value in the 'in' list"))?
                }
                _ => return Err(self.expected("a literal value in the 'in' list")),
            };
            self.bump();
            list.push(literal);
            match self.peek().kind {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    return Ok(list);
                }
                _ => return Err(self.expected("',' or ')' in the 'in' list")),
            }
        }
    }

    /// `segment(/segment)*`, possibly ending in `/any(...)`.
    fn parse_path(&mut self) -> PResult<Expr> {
        let mut path = Vec::new();
        if let Tok::Word(first) = self.bump().kind {
            path.push(first);
        }
        while self.peek().kind == Tok::Slash {
            self.bump();
            let segment = match &self.peek().kind {
                Tok::Word(word) if !is_operator_keyword(word) => word.clone(),
                _ => return Err(self.expected("a property name after '/'")),
            };
            let is_lambda = self.peek_at(1).kind == Tok::LParen;
            if is_lambda && (segment.eq_ignore_ascii_case("any") || segment.eq_ignore_ascii_case("all")) {
                return self.parse_lambda(path, &segment);
            }
            if is_lambda {
                return Err(SyntaxError::new(
                    self.peek().start,
                    format!("'{segment}(' is not supported after '/'; only 'any(...)' is"),
                ));
            }
            self.bump();
            path.push(segment);
        }
        Ok(Expr::Property(path))
    }

    /// `any(var: predicate)` or `any()` with the `any` token current.
    fn parse_lambda(&mut self, path: Vec<String>, keyword: &str) -> PResult<Expr> {
        let keyword_tok = self.bump();
        if !keyword.eq_ignore_ascii_case("any") {
            return Err(SyntaxError::new(
                keyword_tok.start,
                format!("the lambda operator '{keyword}' is not supported; only 'any' is"),
            ));
        }
        let open = self.bump();
        self.enter(open.start)?;
        if self.peek().kind == Tok::RParen {
            self.bump();
            self.leave();
            return Ok(Expr::Any { path, var: String::new(), predicate: Box::new(Expr::Literal(Literal::Bool(true))) });
        }
        let var = self.parse_range_variable()?;
        let predicate = self.parse_or()?;
        self.expect_close(&open)?;
        self.leave();
        Ok(Expr::Any { path, var, predicate: Box::new(predicate) })
    }

    /// `name :` at the start of an `any(...)` body.
    fn parse_range_variable(&mut self) -> PResult<String> {
        let var = match &self.peek().kind {
            Tok::Word(word) if !is_operator_keyword(word) && keyword_literal(word).is_none() => word.clone(),
            _ => return Err(self.expected("a range variable name after 'any('")),
        };
        self.bump();
        if self.peek().kind != Tok::Colon {
            return Err(self.expected(&format!("':' after the range variable '{var}'")));
        }
        self.bump();
        Ok(var)
    }
}

fn unknown_function(tok: &Token, name: &str) -> SyntaxError {
    let detail = if name.eq_ignore_ascii_case("any") || name.eq_ignore_ascii_case("all") {
        format!("'{name}' must follow a collection property, e.g. members/{name}(m: m/id eq '...')")
    } else {
        let supported: Vec<&str> = Func::ALL.iter().map(|f| f.name()).collect();
        format!("the function '{name}' is not supported; supported functions are {}", supported.join(", "))
    };
    SyntaxError::new(tok.start, detail)
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("{n} {noun}") } else { format!("{n} {noun}s") }
}
