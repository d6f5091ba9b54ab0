//! The small regular-expression engine behind `-match` / `-notMatch`: a parser for a .NET-like
//! subset, a compiler to a tiny instruction set and a bounded, memoizing backtracking matcher.
//!
//! Supported syntax: literals, `.` (any character but `\n`), `*` `+` `?` `{n}` `{n,}` `{n,m}`
//! (each optionally lazy with a trailing `?`), `^` (start of text), `$` (end of text, or before
//! a final `\n`), classes `[abc]` `[a-z]` `[^...]`, escapes `\d \D \w \W \s \S \b \B \n \r \t`
//! and `\` before any punctuation, alternation `|`, groups `( )` and `(?: )`. Matching is
//! case-insensitive and unanchored (a search), as `-match` is in Entra.
//!
//! Work is bounded twice: each (instruction, position) state is explored at most once per
//! search, so a search costs at most `instructions × (input length + 1)` steps whatever the
//! pattern (`(a*)*b` cannot explode), and a search gives up after [`STEP_BUDGET`] steps. A
//! search that gives up reports [`None`] from [`Pattern::search`] and *no match* (`false`) from
//! [`Pattern::is_match`].

use std::collections::HashSet;
use std::fmt;

/// The most states a single search may explore before it gives up (and reports no match).
pub const STEP_BUDGET: u32 = 100_000;
/// The largest compiled program accepted; counted repetitions multiply their operand.
pub const MAX_INSTRUCTIONS: usize = 10_000;
/// The largest bound a counted repetition `{n,m}` may use.
pub const MAX_REPEAT: u32 = 1_000;
/// The deepest nesting of groups accepted.
pub const MAX_GROUP_DEPTH: usize = 50;
/// Below this many (instruction, position) states the visited set is a bitmap, above a hash set.
const BITMAP_MAX_STATES: usize = 1 << 20;

/// Why a pattern was rejected, with the 0-based character offset in the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at offset {offset} of the pattern)")]
pub struct PatternError {
    pub offset: usize,
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError { offset, message: message.into() })
}

/// A compiled, case-insensitive regular expression that remembers its source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    prog: Vec<Inst>,
}

impl Pattern {
    /// Parses and compiles `source`, rejecting unsupported or malformed syntax.
    pub fn new(source: &str) -> Result<Self, PatternError> {
        let mut parser = Parser { chars: source.chars().collect(), i: 0, depth: 0 };
        let node = parser.parse_alt()?;
        if parser.i < parser.chars.len() {
            // parse_alt only stops early at a ')' that closes nothing.
            return err(parser.i, "unmatched ')'");
        }
        let mut compiler = Compiler { prog: Vec::new() };
        compiler.compile(&node)?;
        compiler.emit(Inst::Match)?;
        Ok(Self { source: source.to_owned(), prog: compiler.prog })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches somewhere in `text`; `false` when the search ran out of
    /// its [`STEP_BUDGET`].
    pub fn is_match(&self, text: &str) -> bool {
        self.search(text).unwrap_or(false)
    }

    /// Whether the pattern matches somewhere in `text`, or `None` if the search gave up after
    /// [`STEP_BUDGET`] steps.
    pub fn search(&self, text: &str) -> Option<bool> {
        let chars: Vec<char> = text.chars().collect();
        let folded: Vec<char> = chars.iter().map(|&c| fold(c)).collect();
        let n = chars.len();
        let width = n + 1;
        let mut visited = Visited::new(self.prog.len().saturating_mul(width));
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let mut steps: u32 = 0;
        let anchored = matches!(self.prog.first(), Some(Inst::Start));
        for start in 0..=n {
            stack.push((0, start));
            while let Some((mut pc, mut pos)) = stack.pop() {
                loop {
                    if !visited.insert(pc * width + pos) {
                        break;
                    }
                    steps += 1;
                    if steps > STEP_BUDGET {
                        return None;
                    }
                    let Some(inst) = self.prog.get(pc) else { break };
                    match inst {
                        Inst::Char(c) => match folded.get(pos) {
                            Some(x) if x == c => {
                                pc += 1;
                                pos += 1;
                            }
                            _ => break,
                        },
                        Inst::Any => match chars.get(pos) {
                            Some(&x) if x != '\n' => {
                                pc += 1;
                                pos += 1;
                            }
                            _ => break,
                        },
                        Inst::Class(class) => match chars.get(pos) {
                            Some(&x) if class.matches(x) => {
                                pc += 1;
                                pos += 1;
                            }
                            _ => break,
                        },
                        Inst::Start => {
                            if pos != 0 {
                                break;
                            }
                            pc += 1;
                        }
                        Inst::End => {
                            let at_end = pos == n || (pos + 1 == n && chars.get(pos) == Some(&'\n'));
                            if !at_end {
                                break;
                            }
                            pc += 1;
                        }
                        Inst::WordBoundary(want) => {
                            let before = pos.checked_sub(1).and_then(|p| chars.get(p)).is_some_and(|&c| is_word(c));
                            let after = chars.get(pos).is_some_and(|&c| is_word(c));
                            if (before != after) != *want {
                                break;
                            }
                            pc += 1;
                        }
                        Inst::Split(first, second) => {
                            stack.push((*second, pos));
                            pc = *first;
                        }
                        Inst::Jmp(to) => pc = *to,
                        Inst::Match => return Some(true),
                    }
                }
            }
            if anchored {
                break;
            }
        }
        Some(false)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Two patterns are equal when written the same: the program follows from the source.
impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for Pattern {}

/// The (instruction, position) states already explored by one search.
enum Visited {
    Bits(Vec<u64>),
    Set(HashSet<usize>),
}

impl Visited {
    fn new(states: usize) -> Self {
        if states <= BITMAP_MAX_STATES { Self::Bits(vec![0; states / 64 + 1]) } else { Self::Set(HashSet::new()) }
    }

    /// Marks `state`; false if it was already marked.
    fn insert(&mut self, state: usize) -> bool {
        match self {
            Self::Bits(words) => match words.get_mut(state / 64) {
                Some(word) => {
                    let bit = 1u64 << (state % 64);
                    let fresh = *word & bit == 0;
                    *word |= bit;
                    fresh
                }
                None => false,
            },
            Self::Set(set) => set.insert(state),
        }
    }
}

/// Case folding for comparisons: the single-character lowercase of `c`, or `c` itself.
fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// The single-character uppercase of `c`, or `c` itself.
fn upper(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The shorthand classes `\d \D \w \W \s \S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Perl {
    Digit(bool),
    Word(bool),
    Space(bool),
}

impl Perl {
    fn from_escape(c: char) -> Option<Self> {
        match c {
            'd' => Some(Self::Digit(true)),
            'D' => Some(Self::Digit(false)),
            'w' => Some(Self::Word(true)),
            'W' => Some(Self::Word(false)),
            's' => Some(Self::Space(true)),
            'S' => Some(Self::Space(false)),
            _ => None,
        }
    }

    fn matches(self, c: char) -> bool {
        match self {
            Self::Digit(want) => c.is_ascii_digit() == want,
            Self::Word(want) => is_word(c) == want,
            Self::Space(want) => c.is_whitespace() == want,
        }
    }
}

/// A character class: ranges and shorthand classes, possibly negated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
    perls: Vec<Perl>,
}

impl Class {
    fn perl(p: Perl) -> Self {
        Self { negated: false, ranges: Vec::new(), perls: vec![p] }
    }

    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) || self.perls.iter().any(|p| p.matches(c))
    }

    /// Case-insensitive membership: `c`, its lowercase or its uppercase is in the class.
    fn matches(&self, c: char) -> bool {
        let hit = self.contains(c) || self.contains(fold(c)) || self.contains(upper(c));
        hit != self.negated
    }
}

/// The syntax tree of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Empty,
    /// A literal, already case-folded.
    Char(char),
    Any,
    Class(Class),
    Start,
    End,
    /// `\b` (true) or `\B` (false).
    WordBoundary(bool),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
}

struct Parser {
    chars: Vec<char>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn parse_alt(&mut self) -> Result<Node, PatternError> {
        let mut branches = vec![self.parse_concat()?];
        while self.peek() == Some('|') {
            self.i += 1;
            branches.push(self.parse_concat()?);
        }
        Ok(if branches.len() == 1 { branches.pop().unwrap_or(Node::Empty) } else { Node::Alt(branches) })
    }

    fn parse_concat(&mut self) -> Result<Node, PatternError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            items.push(self.parse_repeat()?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    fn parse_repeat(&mut self) -> Result<Node, PatternError> {
        let atom = self.parse_atom()?;
        let at = self.i;
        let Some((min, max)) = self.parse_quantifier()? else { return Ok(atom) };
        if matches!(atom, Node::Start | Node::End | Node::WordBoundary(_)) {
            return err(at, "a quantifier cannot follow an anchor");
        }
        let greedy = if self.peek() == Some('?') {
            self.i += 1;
            false
        } else {
            true
        };
        let again = self.i;
        if self.parse_quantifier()?.is_some() {
            return err(again, "nested quantifier: put the repeated part in a group");
        }
        Ok(Node::Repeat { node: Box::new(atom), min, max, greedy })
    }

    /// Reads `*`, `+`, `?` or a well-formed `{n}`, `{n,}`, `{n,m}`; a `{` that does not start
    /// one is left alone (it is a literal, as in .NET).
    fn parse_quantifier(&mut self) -> Result<Option<(u32, Option<u32>)>, PatternError> {
        let q = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => return self.parse_counted(),
            _ => return Ok(None),
        };
        self.i += 1;
        Ok(Some(q))
    }

    fn parse_counted(&mut self) -> Result<Option<(u32, Option<u32>)>, PatternError> {
        let open = self.i;
        let mut j = self.i + 1;
        let read_number = |j: &mut usize| -> Option<u64> {
            let start = *j;
            let mut value: u64 = 0;
            while let Some(d) = self.chars.get(*j).and_then(|c| c.to_digit(10)) {
                value = value.saturating_mul(10).saturating_add(u64::from(d));
                *j += 1;
            }
            (*j > start).then_some(value)
        };
        let Some(min) = read_number(&mut j) else { return Ok(None) };
        let max = match self.chars.get(j) {
            Some('}') => Some(min),
            Some(',') => {
                j += 1;
                let max = read_number(&mut j);
                if self.chars.get(j) != Some(&'}') {
                    return Ok(None);
                }
                max
            }
            _ => return Ok(None),
        };
        self.i = j + 1;
        let limit = u64::from(MAX_REPEAT);
        if min > limit || max.is_some_and(|m| m > limit) {
            return err(open, format!("a repetition count may be at most {MAX_REPEAT}"));
        }
        if max.is_some_and(|m| m < min) {
            return err(open, "the repetition range {n,m} has m smaller than n");
        }
        // Both are at most MAX_REPEAT, which fits in u32.
        let to_u32 = |v: u64| u32::try_from(v).unwrap_or(MAX_REPEAT);
        Ok(Some((to_u32(min), max.map(to_u32))))
    }

    fn parse_atom(&mut self) -> Result<Node, PatternError> {
        let at = self.i;
        let Some(c) = self.peek() else { return err(at, "unexpected end of pattern") };
        self.i += 1;
        match c {
            '(' => self.parse_group(at),
            '[' => self.parse_class(at),
            '.' => Ok(Node::Any),
            '^' => Ok(Node::Start),
            '$' => Ok(Node::End),
            '\\' => self.parse_escape(at),
            '*' | '+' | '?' => err(at, format!("nothing to repeat before '{c}'")),
            '{' => {
                self.i = at;
                if self.parse_counted()?.is_some() {
                    return err(at, "nothing to repeat before '{'");
                }
                self.i = at + 1;
                Ok(Node::Char('{'))
            }
            other => Ok(Node::Char(fold(other))),
        }
    }

    fn parse_group(&mut self, open: usize) -> Result<Node, PatternError> {
        if self.peek() == Some('?') {
            if self.peek_at(1) == Some(':') {
                self.i += 2;
            } else {
                return err(open, "unsupported group construct '(?': only ( ) and (?: ) groups are supported");
            }
        }
        self.depth += 1;
        if self.depth > MAX_GROUP_DEPTH {
            return err(open, format!("groups are nested more than {MAX_GROUP_DEPTH} levels deep"));
        }
        let inner = self.parse_alt()?;
        self.depth -= 1;
        if self.peek() != Some(')') {
            return err(open, "missing ')' for this '('");
        }
        self.i += 1;
        Ok(inner)
    }

    fn parse_escape(&mut self, at: usize) -> Result<Node, PatternError> {
        let Some(c) = self.peek() else { return err(at, "the pattern ends with a lone '\\'") };
        self.i += 1;
        if let Some(p) = Perl::from_escape(c) {
            return Ok(Node::Class(Class::perl(p)));
        }
        match c {
            'b' => Ok(Node::WordBoundary(true)),
            'B' => Ok(Node::WordBoundary(false)),
            _ => Ok(Node::Char(fold(simple_escape(c).ok_or_else(|| unsupported_escape(at, c))?))),
        }
    }

    fn parse_class(&mut self, open: usize) -> Result<Node, PatternError> {
        let mut class = Class { negated: false, ranges: Vec::new(), perls: Vec::new() };
        if self.peek() == Some('^') {
            class.negated = true;
            self.i += 1;
        }
        let mut first = true;
        loop {
            let at = self.i;
            let Some(c) = self.peek() else { return err(open, "missing ']' for this '['") };
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match self.class_atom(c, at)? {
                ClassAtom::Perl(p) => {
                    class.perls.push(p);
                    continue;
                }
                ClassAtom::Char(lo) => lo,
            };
            let is_range = self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']');
            if !is_range {
                class.ranges.push((lo, lo));
                continue;
            }
            self.i += 1;
            let hi_at = self.i;
            let Some(h) = self.peek() else { return err(open, "missing ']' for this '['") };
            self.i += 1;
            let hi = match self.class_atom(h, hi_at)? {
                ClassAtom::Char(hi) => hi,
                ClassAtom::Perl(_) => return err(hi_at, "a shorthand class cannot end a range"),
            };
            if hi < lo {
                return err(at, format!("the range {lo}-{hi} is out of order"));
            }
            class.ranges.push((lo, hi));
        }
        Ok(Node::Class(class))
    }

    /// One member of a class, `c` already consumed (a `\` reads one more character).
    fn class_atom(&mut self, c: char, at: usize) -> Result<ClassAtom, PatternError> {
        if c != '\\' {
            return Ok(ClassAtom::Char(c));
        }
        let Some(e) = self.peek() else { return err(at, "the pattern ends with a lone '\\'") };
        self.i += 1;
        if let Some(p) = Perl::from_escape(e) {
            return Ok(ClassAtom::Perl(p));
        }
        if e == 'b' {
            return Ok(ClassAtom::Char('\u{8}'));
        }
        simple_escape(e).map(ClassAtom::Char).ok_or_else(|| unsupported_escape(at, e))
    }
}

enum ClassAtom {
    Char(char),
    Perl(Perl),
}

/// The character a single-character escape stands for: control escapes and escaped punctuation.
fn simple_escape(c: char) -> Option<char> {
    match c {
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        c if c.is_alphanumeric() => None,
        c => Some(c),
    }
}

fn unsupported_escape(at: usize, c: char) -> PatternError {
    PatternError { offset: at, message: format!("unsupported escape '\\{c}'") }
}

/// The instructions of a compiled pattern.
#[derive(Debug, Clone)]
enum Inst {
    /// A case-folded literal.
    Char(char),
    Any,
    Class(Box<Class>),
    Start,
    End,
    WordBoundary(bool),
    /// Try the first target, then the second.
    Split(usize, usize),
    Jmp(usize),
    Match,
}

struct Compiler {
    prog: Vec<Inst>,
}

impl Compiler {
    fn emit(&mut self, inst: Inst) -> Result<usize, PatternError> {
        if self.prog.len() >= MAX_INSTRUCTIONS {
            return err(0, "the pattern is too complex (its repetitions expand too far)");
        }
        self.prog.push(inst);
        Ok(self.prog.len() - 1)
    }

    fn patch(&mut self, at: usize, inst: Inst) {
        if let Some(slot) = self.prog.get_mut(at) {
            *slot = inst;
        }
    }

    fn compile(&mut self, node: &Node) -> Result<(), PatternError> {
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.emit(Inst::Char(*c))?;
            }
            Node::Any => {
                self.emit(Inst::Any)?;
            }
            Node::Class(class) => {
                self.emit(Inst::Class(Box::new(class.clone())))?;
            }
            Node::Start => {
                self.emit(Inst::Start)?;
            }
            Node::End => {
                self.emit(Inst::End)?;
            }
            Node::WordBoundary(want) => {
                self.emit(Inst::WordBoundary(*want))?;
            }
            Node::Concat(items) => {
                for item in items {
                    self.compile(item)?;
                }
            }
            Node::Alt(branches) => {
                let mut exits = Vec::new();
                let last = branches.len().saturating_sub(1);
                for (k, branch) in branches.iter().enumerate() {
                    if k == last {
                        self.compile(branch)?;
                    } else {
                        let split = self.emit(Inst::Split(0, 0))?;
                        self.compile(branch)?;
                        exits.push(self.emit(Inst::Jmp(0))?);
                        let next = self.prog.len();
                        self.patch(split, Inst::Split(split + 1, next));
                    }
                }
                let end = self.prog.len();
                for exit in exits {
                    self.patch(exit, Inst::Jmp(end));
                }
            }
            Node::Repeat { node, min, max, greedy } => {
                for _ in 0..*min {
                    self.compile(node)?;
                }
                let order = |body: usize, out: usize| if *greedy { Inst::Split(body, out) } else { Inst::Split(out, body) };
                match max {
                    None => {
                        let split = self.emit(Inst::Split(0, 0))?;
                        self.compile(node)?;
                        self.emit(Inst::Jmp(split))?;
                        let out = self.prog.len();
                        self.patch(split, order(split + 1, out));
                    }
                    Some(max) => {
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.emit(Inst::Split(0, 0))?);
                            self.compile(node)?;
                        }
                        let out = self.prog.len();
                        for split in splits {
                            self.patch(split, order(split + 1, out));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}")).is_match(text)
    }

    #[test]
    fn matches_as_expected() {
        let cases: &[(&str, &str, bool)] = &[
            // literals, case-insensitive, unanchored
            ("abc", "abc", true),
            ("abc", "xxabcxx", true),
            ("abc", "ABC", true),
            ("ABC", "xabcx", true),
            ("abc", "ab", false),
            ("", "", true),
            ("", "anything", true),
            // dot
            ("a.c", "abc", true),
            ("a.c", "a-c", true),
            ("a.c", "ac", false),
            ("a.c", "a\nc", false),
            // anchors
            ("^abc", "abcd", true),
            ("^abc", "xabc", false),
            ("abc$", "xabc", true),
            ("abc$", "abcx", false),
            ("abc$", "abc\n", true),
            ("^abc$", "abc", true),
            ("^abc$", "abcabc", false),
            ("^$", "", true),
            ("^$", "a", false),
            ("^A.*e$", "Adele Vance", true),
            ("^A.*e$", "Alex Wilber", false),
            ("a^b", "a^b", false),
            // quantifiers
            ("ab*c", "ac", true),
            ("ab*c", "abbbc", true),
            ("ab+c", "ac", false),
            ("ab+c", "abbc", true),
            ("ab?c", "ac", true),
            ("ab?c", "abc", true),
            ("ab?c", "abbc", false),
            ("^a{3}$", "aaa", true),
            ("^a{3}$", "aa", false),
            ("^a{3}$", "aaaa", false),
            ("^a{2,}$", "a", false),
            ("^a{2,}$", "aaaaa", true),
            ("^a{2,3}$", "aaa", true),
            ("^a{2,3}$", "aaaa", false),
            ("^a{0,1}b$", "b", true),
            ("^\\d{5}$", "98052", true),
            ("^\\d{5}$", "9805", false),
            ("^a*?b$", "aaab", true),
            ("^a+?$", "aaa", true),
            ("^a??b$", "ab", true),
            ("^a{1,2}?b", "aab", true),
            ("a{", "a{", true),
            ("a{x}", "a{x}", true),
            ("a{1,x}", "a{1,x}", true),
            ("x{,2}", "x{,2}", true),
            // classes
            ("[abc]", "xbx", true),
            ("[abc]", "xyz", false),
            ("^[a-z]+$", "hello", true),
            ("^[a-z]+$", "HELLO", true),
            ("^[A-Z]+$", "hello", true),
            ("^[a-z]+$", "hello1", false),
            ("[^a-z]", "abc", false),
            ("[^a-z]", "ABC", false),
            ("[^a-z]", "ab1", true),
            ("^[0-9a-f-]+$", "00ff-12", true),
            ("[]a]", "]", true),
            ("[a-]", "-", true),
            ("[\\]]", "]", true),
            ("[\\d.]", ".", true),
            ("^[\\w-]+$", "e-1001_x", true),
            ("[\\s]", "a b", true),
            ("[\\S]", "   ", false),
            ("[.]", "a", false),
            ("[é]", "É", true),
            // escapes
            ("a\\.b", "a.b", true),
            ("a\\.b", "axb", false),
            ("\\d", "abc1", true),
            ("\\d", "abc", false),
            ("\\D", "123", false),
            ("\\D", "12a", true),
            ("^\\w+$", "abc_123", true),
            ("^\\w+$", "abc-123", false),
            ("\\W", "abc", false),
            ("\\s", "a b", true),
            ("\\s", "ab", false),
            ("\\S", " ", false),
            ("a\\tb", "a\tb", true),
            ("\\\\", "a\\b", true),
            ("\\$", "cost $5", true),
            ("\\^", "a^b", true),
            ("\\(\\)", "f()", true),
            ("\\bcat\\b", "a cat here", true),
            ("\\bcat\\b", "concatenate", false),
            ("\\Bcat\\B", "concatenate", true),
            ("@contoso\\.com$", "adele@CONTOSO.com", true),
            ("@contoso\\.com$", "adele@contoso.community", false),
            // alternation and groups
            ("cat|dog", "hotdog", true),
            ("cat|dog", "bird", false),
            ("^(cat|dog)$", "dog", true),
            ("^(cat|dog)$", "dogs", false),
            ("^(ab)+$", "ababab", true),
            ("^(ab)+$", "ababa", false),
            ("^(?:ab|cd)*$", "abcdab", true),
            ("^(a|b|c)$", "c", true),
            ("^(a|)$", "", true),
            ("^(|a)b$", "ab", true),
            ("^Sales|^Marketing", "marketing EU", true),
            ("^(Sales|Marketing) (EU|US)$", "Sales US", true),
            ("^(Sales|Marketing) (EU|US)$", "Sales UK", false),
            ("^((a|b)c)+$", "acbcac", true),
            ("^(a*)*b$", "aaab", true),
            ("^(a*)*$", "", true),
            ("^(a?)*$", "aa", true),
            ("(x+x+)+y", "xxxxy", true),
            // non-ASCII and case folding
            ("ÉCOLE", "école", true),
            ("straße", "STRASSE", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(m(pattern, text), *expected, "/{pattern}/ on {text:?}");
        }
    }

    #[test]
    fn rejects_invalid_patterns() {
        let cases: &[(&str, usize, &str)] = &[
            ("(a", 0, "missing ')'"),
            ("a(b(c)", 1, "missing ')'"),
            ("a)", 1, "unmatched ')'"),
            ("[a", 0, "missing ']'"),
            ("[", 0, "missing ']'"),
            ("[]", 0, "missing ']'"),
            ("[z-a]", 1, "out of order"),
            ("[a-\\d]", 3, "cannot end a range"),
            ("*a", 0, "nothing to repeat"),
            ("+", 0, "nothing to repeat"),
            ("a|?", 2, "nothing to repeat"),
            ("{2}", 0, "nothing to repeat"),
            ("a**", 2, "nested quantifier"),
            ("a{2}{3}", 4, "nested quantifier"),
            ("a+?+", 3, "nested quantifier"),
            ("\\", 0, "lone"),
            ("[\\", 1, "lone"),
            ("\\q", 0, "unsupported escape"),
            ("\\1", 0, "unsupported escape"),
            ("\\p{L}", 0, "unsupported escape"),
            ("[\\x41]", 1, "unsupported escape"),
            ("a{2,1}", 1, "smaller"),
            ("a{1001}", 1, "at most 1000"),
            ("a{99999999999999999999999}", 1, "at most 1000"),
            ("(?<n>a)", 0, "unsupported group"),
            ("(?i)a", 0, "unsupported group"),
            ("^*", 1, "anchor"),
            ("\\b+", 2, "anchor"),
            ("(a{1000}){1000}", 0, "too complex"),
            ("[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}", 0, "too complex"),
        ];
        for (pattern, offset, needle) in cases {
            let e = Pattern::new(pattern).unwrap_err();
            assert_eq!(e.offset, *offset, "/{pattern}/: {e}");
            assert!(e.message.contains(needle), "/{pattern}/: {e}");
        }
        let deep = format!("{}a{}", "(".repeat(51), ")".repeat(51));
        assert!(Pattern::new(&deep).unwrap_err().message.contains("nested"));
        let ok = format!("{}a{}", "(".repeat(50), ")".repeat(50));
        assert!(Pattern::new(&ok).unwrap().is_match("a"));
    }

    #[test]
    fn pathological_patterns_terminate_quickly() {
        let started = std::time::Instant::now();
        let text = format!("{}c", "a".repeat(30));
        for pattern in ["(a*)*b", "(a+)+b", "(a|aa)*b", "(a|a)*b", "(.*a){12}b", "^(a?){30}a{30}b$", "(\\w+\\s?)*$b"] {
            let p = Pattern::new(pattern).unwrap();
            assert_eq!(p.search(&text), Some(false), "/{pattern}/ should finish without a match");
        }
        // The same shapes still match when they should.
        assert_eq!(Pattern::new("(a*)*b").unwrap().search(&format!("{}b", "a".repeat(30))), Some(true));
        assert_eq!(Pattern::new("^(a?){30}a{30}$").unwrap().search(&"a".repeat(30)), Some(true));
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    #[test]
    fn budget_exhaustion_reports_no_match() {
        // Correct answer is "match" (starting at offset 1000), but the first start position
        // alone explores millions of states: the search gives up and `is_match` says false.
        let p = Pattern::new("[a-z]{0,1000}[a-z]{0,1000}0").unwrap();
        let text = format!("{}0", "a".repeat(3000));
        assert_eq!(p.search(&text), None);
        assert!(!p.is_match(&text));
        // Short inputs are fine, with the bitmap and with the hash-set visited sets.
        assert_eq!(p.search("abc0"), Some(true));
        let longer = format!("{}0", "b".repeat(300));
        assert_eq!(p.search(&longer), Some(true));
    }

    #[test]
    fn equality_and_display_use_the_source() {
        let a = Pattern::new("^a+$").unwrap();
        assert_eq!(a, Pattern::new("^a+$").unwrap());
        assert_ne!(a, Pattern::new("^a+").unwrap());
        assert_eq!(a.source(), "^a+$");
        assert_eq!(a.to_string(), "^a+$");
        assert_eq!(format!("{a:?}"), "Pattern(\"^a+$\")");
    }

    #[test]
    fn fuzzed_patterns_never_panic() {
        let alphabet: &[&str] = &[
            "a", "b", "A", ".", "*", "+", "?", "^", "$", "|", "(", ")", "(?:", "[", "]", "[^", "-", "\\", "\\d", "\\w",
            "\\s", "\\b", "{", "}", "{2}", "{1,3}", ",", "é", "\n", " ", "0", "9",
        ];
        let texts = ["", "a", "ab", "aaaaaaaaaaaaaaaaaaaab", "A-b 9\n", "é É", "ba|ab"];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut compiled = 0;
        for _ in 0..4000 {
            let len = next() % 12;
            let pattern: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            if let Ok(p) = Pattern::new(&pattern) {
                compiled += 1;
                for t in texts {
                    assert!(p.search(t).is_some(), "/{pattern}/ on {t:?} exhausted its budget");
                }
            }
        }
        assert!(compiled > 200, "only {compiled} fuzzed patterns compiled");
    }
}
