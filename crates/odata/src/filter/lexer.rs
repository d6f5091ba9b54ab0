//! Tokenizer for `$filter` text: splits it into tokens carrying byte positions, and classifies
//! literals (quoted strings, numbers, dates, DateTimeOffsets, GUIDs, typed `guid'…'` forms).

use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use super::Literal;

/// Length of a GUID in its canonical `8-4-4-4-12` form.
const GUID_LEN: usize = 36;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
    /// An identifier or keyword, as written.
    Word(String),
    /// Any literal except `true`/`false`/`null`, which stay words until the parser sees them.
    Lit(Literal),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: Tok,
    /// Byte offset of the first character.
    pub(super) start: usize,
    /// Byte offset just past the last character.
    pub(super) end: usize,
}

/// A syntax problem at a byte offset; turned into an `ODataError` by the caller, which knows the
/// whole input.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SyntaxError {
    pub(super) pos: usize,
    pub(super) detail: String,
}

impl SyntaxError {
    pub(super) fn new(pos: usize, detail: impl Into<String>) -> Self {
        Self { pos, detail: detail.into() }
    }
}

/// Splits `src` into tokens; the last one is always [`Tok::Eof`] at `src.len()`.
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer { src, bytes: src.as_bytes(), pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.pos;
        let Some(byte) = lexer.byte_at(start) else {
            tokens.push(Token { kind: Tok::Eof, start, end: start });
            return Ok(tokens);
        };
        let kind = lexer.lex_token(byte)?;
        tokens.push(Token { kind, start, end: lexer.pos });
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn byte_at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.byte_at(self.pos).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    /// Advances while `keep` holds and returns the text consumed.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &str {
        let start = self.pos;
        while self.byte_at(self.pos).is_some_and(&keep) {
            self.pos += 1;
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn lex_token(&mut self, byte: u8) -> Result<Tok, SyntaxError> {
        let punct = match byte {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            b'/' => Some(Tok::Slash),
            _ => None,
        };
        if let Some(tok) = punct {
            self.pos += 1;
            return Ok(tok);
        }
        if byte == b'\'' {
            return self.lex_string().map(|s| Tok::Lit(Literal::String(s)));
        }
        if let Some(guid) = self.guid_here() {
            self.pos += GUID_LEN;
            return Ok(Tok::Lit(Literal::Guid(guid)));
        }
        let signed_digit =
            matches!(byte, b'-' | b'+') && self.byte_at(self.pos + 1).is_some_and(|b| b.is_ascii_digit());
        if byte.is_ascii_digit() || signed_digit {
            return self.lex_unquoted_literal();
        }
        if byte.is_ascii_alphabetic() || byte == b'_' {
            return self.lex_word();
        }
        Err(self.unexpected_char())
    }

    fn unexpected_char(&self) -> SyntaxError {
        let c = self.src.get(self.pos..).and_then(|rest| rest.chars().next()).unwrap_or('?');
        let hint = match c {
            '"' => "; string literals use single quotes, e.g. 'text'",
            '@' => "; property names cannot contain '@'",
            _ => "",
        };
        SyntaxError::new(self.pos, format!("unexpected character '{}'{hint}", printable(c)))
    }

    /// Lexes `'…'` with `''` standing for one quote. `self.pos` is on the opening quote.
    fn lex_string(&mut self) -> Result<String, SyntaxError> {
        let open = self.pos;
        let mut value = String::new();
        let mut i = open + 1;
        loop {
            let Some(offset) = self.bytes.get(i..).and_then(|b| b.iter().position(|&c| c == b'\'')) else {
                return Err(SyntaxError::new(open, "unterminated string literal (missing closing single quote)"));
            };
            let quote = i + offset;
            value.push_str(self.src.get(i..quote).unwrap_or(""));
            if self.byte_at(quote + 1) == Some(b'\'') {
                value.push('\'');
                i = quote + 2;
            } else {
                self.pos = quote + 1;
                return Ok(value);
            }
        }
    }

    /// A GUID starting at `self.pos` and not running on into more literal characters.
    fn guid_here(&self) -> Option<String> {
        let candidate = self.src.get(self.pos..self.pos + GUID_LEN)?;
        let next_continues = self
            .byte_at(self.pos + GUID_LEN)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        (is_guid(candidate) && !next_continues).then(|| candidate.to_ascii_lowercase())
    }

    /// Numbers, dates and DateTimeOffsets: a run of `[0-9A-Za-z.:+-]` classified afterwards.
    fn lex_unquoted_literal(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        let text = self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'+' | b'-'));
        classify_unquoted(text).map(Tok::Lit).map_err(|detail| SyntaxError::new(start, detail))
    }

    /// An identifier, or a typed literal such as `guid'…'` when a quote follows immediately.
    fn lex_word(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        let word = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_').to_owned();
        if self.byte_at(self.pos) != Some(b'\'') {
            return Ok(Tok::Word(word));
        }
        let body = self.lex_string()?;
        typed_literal(&word, &body).map(Tok::Lit).map_err(|detail| SyntaxError::new(start, detail))
    }
}

/// The character itself, or its escape when it is a control character.
fn printable(c: char) -> String {
    if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }
}

/// `8-4-4-4-12` hexadecimal digits.
pub(super) fn is_guid(s: &str) -> bool {
    s.len() == GUID_LEN
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn classify_unquoted(text: &str) -> Result<Literal, String> {
    if starts_like_date(text) {
        return parse_date_or_timestamp(text);
    }
    if strip_sign(text).is_some_and(all_digits) {
        return text.parse::<i64>().map(Literal::Int).map_err(|_| format!("integer literal '{text}' is out of range"));
    }
    if strip_sign(text).is_some_and(is_decimal) {
        return match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Literal::Float(value)),
            _ => Err(format!("decimal literal '{text}' is out of range")),
        };
    }
    Err(format!("'{text}' is not a valid literal"))
}

/// The text without one leading `+`/`-`, if anything is left.
fn strip_sign(text: &str) -> Option<&str> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    (!unsigned.is_empty()).then_some(unsigned)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Index just past the run of ASCII digits starting at `from`.
fn skip_digits(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// `digits ('.' digits)? ([eE] [+-]? digits)?` with at least the fraction or the exponent.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = skip_digits(b, 0);
    if i == 0 {
        return false;
    }
    let mut has_fraction_or_exponent = false;
    if b.get(i) == Some(&b'.') {
        let end = skip_digits(b, i + 1);
        if end == i + 1 {
            return false;
        }
        i = end;
        has_fraction_or_exponent = true;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = skip_digits(b, i);
        if end == i {
            return false;
        }
        i = end;
        has_fraction_or_exponent = true;
    }
    has_fraction_or_exponent && i == b.len()
}

/// Four digits then `-`: the start of `YYYY-MM-DD`.
fn starts_like_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.get(..4).is_some_and(|y| y.iter().all(u8::is_ascii_digit)) && b.get(4) == Some(&b'-')
}

/// Exactly `YYYY-MM-DD` (jiff alone would also take other ISO 8601 spellings).
fn is_plain_date(text: &str) -> bool {
    text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn parse_date_or_timestamp(text: &str) -> Result<Literal, String> {
    if text.len() == 10 {
        return parse_date(text);
    }
    if matches!(text.as_bytes().get(10), Some(b'T' | b't')) && is_plain_date(text.get(..10).unwrap_or("")) {
        return parse_timestamp(text);
    }
    Err(format!("'{text}' is not a valid date or DateTimeOffset (expected e.g. 2024-01-01 or 2024-01-01T00:00:00Z)"))
}

fn parse_date(text: &str) -> Result<Literal, String> {
    if !is_plain_date(text) {
        return Err(format!("'{text}' is not a valid date (expected YYYY-MM-DD)"));
    }
    Date::from_str(text).map(Literal::Date).map_err(|_| format!("'{text}' is not a valid date (expected YYYY-MM-DD)"))
}

/// A DateTimeOffset: the offset (`Z` or `±HH:MM`) is required.
fn parse_timestamp(text: &str) -> Result<Literal, String> {
    if let Ok(ts) = Timestamp::from_str(text) {
        return Ok(Literal::DateTime(ts));
    }
    if DateTime::from_str(text).is_ok() {
        return Err(format!(
            "DateTimeOffset literal '{text}' has no time zone offset; add 'Z' or an offset such as \
             '+02:00' (in a URL, '+' must be percent-encoded as %2B)"
        ));
    }
    Err(format!("'{text}' is not a valid DateTimeOffset (expected e.g. 2024-01-01T00:00:00Z)"))
}

/// Graph's older typed forms: `guid'…'`, `datetimeoffset'…'`, `datetime'…'` (UTC when no
/// offset is given) and `date'…'`.
fn typed_literal(prefix: &str, body: &str) -> Result<Literal, String> {
    match prefix.to_ascii_lowercase().as_str() {
        "guid" if is_guid(body) => Ok(Literal::Guid(body.to_ascii_lowercase())),
        "guid" => Err(format!("'{body}' is not a valid GUID")),
        "datetimeoffset" => parse_timestamp(body),
        "datetime" => parse_timestamp(body).or_else(|err| {
            DateTime::from_str(body)
                .ok()
                .and_then(|dt| dt.to_zoned(TimeZone::UTC).ok())
                .map(|zoned| Literal::DateTime(zoned.timestamp()))
                .ok_or(err)
        }),
        "date" => parse_date(body),
        _ => Err(format!("typed literal prefix '{prefix}' is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn punctuation_words_and_positions() {
        let tokens = tokenize(" a/b eq ( 'x' ,1):").unwrap();
        let summary: Vec<(Tok, usize, usize)> = tokens.into_iter().map(|t| (t.kind, t.start, t.end)).collect();
        assert_eq!(
            summary,
            vec![
                (Tok::Word("a".into()), 1, 2),
                (Tok::Slash, 2, 3),
                (Tok::Word("b".into()), 3, 4),
                (Tok::Word("eq".into()), 5, 7),
                (Tok::LParen, 8, 9),
                (Tok::Lit(Literal::String("x".into())), 10, 13),
                (Tok::Comma, 14, 15),
                (Tok::Lit(Literal::Int(1)), 15, 16),
                (Tok::RParen, 16, 17),
                (Tok::Colon, 17, 18),
                (Tok::Eof, 18, 18),
            ]
        );
    }

    #[test]
    fn strings_with_escapes_and_unicode() {
        assert_eq!(
            kinds("'it''s' 'é''' ''''"),
            vec![
                Tok::Lit(Literal::String("it's".into())),
                Tok::Lit(Literal::String("é'".into())),
                Tok::Lit(Literal::String("'".into())),
                Tok::Eof,
            ]
        );
        assert_eq!(kinds("''"), vec![Tok::Lit(Literal::String(String::new())), Tok::Eof]);
    }

    #[test]
    fn unterminated_string_points_at_opening_quote() {
        let err = tokenize("a eq 'abc''").unwrap_err();
        assert_eq!(err.pos, 5);
        assert!(err.detail.contains("unterminated"));
    }

    #[test]
    fn numbers() {
        let cases: &[(&str, Literal)] = &[
            ("0", Literal::Int(0)),
            ("42", Literal::Int(42)),
            ("-7", Literal::Int(-7)),
            ("+7", Literal::Int(7)),
            ("9223372036854775807", Literal::Int(i64::MAX)),
            ("-9223372036854775808", Literal::Int(i64::MIN)),
            ("1.5", Literal::Float(1.5)),
            ("-0.25", Literal::Float(-0.25)),
            ("1e3", Literal::Float(1000.0)),
            ("2.5E-1", Literal::Float(0.25)),
        ];
        for (src, want) in cases {
            assert_eq!(kinds(src), vec![Tok::Lit(want.clone()), Tok::Eof], "{src}");
        }
    }

    #[test]
    fn bad_numbers() {
        for src in ["9223372036854775808", "1.", "1.e5", "1e", "12abc", "1e999", "1..2", "1-2"] {
            let err = tokenize(src).unwrap_err();
            assert!(err.detail.contains(src), "{src}: {}", err.detail);
        }
    }

    #[test]
    fn guids_any_case_are_lowercased() {
        let g = "1AFA2b3c-0000-4def-8abc-0123456789AB";
        assert_eq!(kinds(g), vec![Tok::Lit(Literal::Guid(g.to_ascii_lowercase())), Tok::Eof]);
        let letter_first = "deadbeef-0000-4def-8abc-0123456789ab";
        assert_eq!(
            kinds(&format!("({letter_first})")),
            vec![Tok::LParen, Tok::Lit(Literal::Guid(letter_first.into())), Tok::RParen, Tok::Eof]
        );
        assert!(tokenize("deadbeef-0000-4def-8abc-0123456789abc").is_err());
        assert!(is_guid("00000000-0000-0000-0000-000000000000"));
        assert!(!is_guid("00000000-0000-0000-0000-00000000000g"));
        assert!(!is_guid("00000000000000000000000000000000"));
    }

    #[test]
    fn dates_and_timestamps() {
        let date = Date::constant(2024, 2, 29);
        assert_eq!(kinds("2024-02-29"), vec![Tok::Lit(Literal::Date(date)), Tok::Eof]);
        let cases = [
            ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
            ("2024-01-01T00:00Z", "2024-01-01T00:00:00Z"),
            ("2024-01-01T00:00:00.1234567+02:00", "2023-12-31T22:00:00.1234567Z"),
            ("2024-06-30T23:59:59-05:30", "2024-07-01T05:29:59Z"),
        ];
        for (src, utc) in cases {
            let want: Timestamp = utc.parse().unwrap();
            assert_eq!(kinds(src), vec![Tok::Lit(Literal::DateTime(want)), Tok::Eof], "{src}");
        }
    }

    #[test]
    fn bad_dates_and_timestamps() {
        for src in ["2024-13-01", "2023-02-29", "2024-1-01", "2024-01-01X", "2024-01-01T25:00:00Z"] {
            let err = tokenize(src).unwrap_err();
            assert!(err.detail.contains(src), "{src}: {}", err.detail);
        }
        let err = tokenize("2024-01-01T00:00:00").unwrap_err();
        assert!(err.detail.contains("no time zone offset"), "{}", err.detail);
        assert!(err.detail.contains("%2B"), "{}", err.detail);
    }

    #[test]
    fn typed_literals() {
        let g = "1afa2b3c-0000-4def-8abc-0123456789ab";
        assert_eq!(kinds(&format!("guid'{}'", g.to_uppercase())), vec![Tok::Lit(Literal::Guid(g.into())), Tok::Eof]);
        let ts: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        for src in [
            "datetimeoffset'2024-01-01T00:00:00Z'",
            "datetime'2024-01-01T00:00:00'",
            "DateTime'2024-01-01T01:00:00+01:00'",
        ] {
            assert_eq!(kinds(src), vec![Tok::Lit(Literal::DateTime(ts)), Tok::Eof], "{src}");
        }
        assert_eq!(kinds("date'2024-01-01'"), vec![Tok::Lit(Literal::Date(Date::constant(2024, 1, 1))), Tok::Eof]);
        assert!(tokenize("guid'nope'").unwrap_err().detail.contains("nope"));
        assert!(tokenize("binary'AAA='").unwrap_err().detail.contains("binary"));
        assert!(tokenize("datetimeoffset'2024-01-01T00:00:00'").is_err());
    }

    #[test]
    fn unexpected_characters() {
        for (src, pos, needle) in [
            ("a @b", 2, "'@'"),
            ("a eq \"x\"", 5, "single quotes"),
            ("a eq é", 5, "'é'"),
            ("a - b", 2, "'-'"),
            ("a.b", 1, "'.'"),
            ("[1]", 0, "'['"),
            ("a eq \u{7}", 5, "'\\u{7}'"),
        ] {
            let err = tokenize(src).unwrap_err();
            assert_eq!(err.pos, pos, "{src}");
            assert!(err.detail.contains(needle), "{src}: {}", err.detail);
        }
    }
}
