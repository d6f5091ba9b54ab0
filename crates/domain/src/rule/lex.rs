//! The tokenizer of membership-rule text: punctuation, `-operators`, bare words and quoted
//! strings, each with its 1-based character position for error messages.

use crate::DomainError;

use super::syntax_error;

/// One token of rule text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `-name`: an operator, the name as written without its dash.
    Dash(String),
    /// A bare word: `user.department`, `true`, `null`, or a value someone forgot to quote.
    Word(String),
    /// A quoted string, with its escapes resolved.
    Str(String),
    End,
}

impl Tok {
    /// How the token is named in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::LParen => "'('".to_owned(),
            Self::RParen => "')'".to_owned(),
            Self::LBracket => "'['".to_owned(),
            Self::RBracket => "']'".to_owned(),
            Self::Comma => "','".to_owned(),
            Self::Dash(name) => format!("'-{}'", crate::text::clip(name, 40)),
            Self::Word(word) => format!("'{}'", crate::text::clip(word, 40)),
            Self::Str(s) => format!("the string \"{}\"", crate::text::clip(s, 40)),
            Self::End => "the end of the rule".to_owned(),
        }
    }
}

/// A token and where it starts (1-based, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

/// Splits `text` into tokens, ending with [`Tok::End`] at one past the last character.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, DomainError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let pos = i + 1;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = single {
            tokens.push(Token { tok, pos });
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' {
            let start = i + 1;
            let mut end = start;
            while chars.get(end).is_some_and(|c| c.is_ascii_alphabetic()) {
                end += 1;
            }
            if end == start {
                return Err(syntax_error(pos, "expected an operator name such as -eq right after '-'"));
            }
            let name: String = chars.get(start..end).unwrap_or_default().iter().collect();
            tokens.push(Token { tok: Tok::Dash(name), pos });
            i = end;
        } else if c == '"' || c == '\'' {
            let (value, next) = read_string(&chars, i, c)?;
            tokens.push(Token { tok: Tok::Str(value), pos });
            i = next;
        } else if is_word_char(c) {
            let start = i;
            while chars.get(i).is_some_and(|&c| is_word_char(c)) {
                i += 1;
            }
            let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
            tokens.push(Token { tok: Tok::Word(word), pos });
        } else {
            return Err(syntax_error(pos, unexpected_character(c)));
        }
    }
    tokens.push(Token { tok: Tok::End, pos: chars.len() + 1 });
    Ok(tokens)
}

/// Reads the string opened by `quote` at `open`; `\` before the same quote escapes it, every
/// other backslash is kept as written (so regular expressions such as `"\d+"` survive).
fn read_string(chars: &[char], open: usize, quote: char) -> Result<(String, usize), DomainError> {
    let mut value = String::new();
    let mut i = open + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(syntax_error(
                    open + 1,
                    format!(
                        "this string is never closed: add the closing {quote} (write \\{quote} for a {quote} inside it)"
                    ),
                ));
            }
            Some('\\') if chars.get(i + 1) == Some(&quote) => {
                value.push(quote);
                i += 2;
            }
            Some(&c) if c == quote => return Ok((value, i + 1)),
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

fn unexpected_character(c: char) -> String {
    match c {
        '\u{201C}' | '\u{201D}' | '\u{2018}' | '\u{2019}' => {
            format!("unexpected typographic quote '{c}': quote values with straight quotes (\" or ')")
        }
        '\u{2013}' | '\u{2014}' => format!("unexpected dash '{c}': operators start with a plain '-', as in -eq"),
        '=' | '!' | '<' | '>' | '&' | '|' => format!(
            "unexpected character '{c}': comparisons and logic are written with operators such as -eq, -ne, -and, -or, -not"
        ),
        c if c.is_control() => format!("unexpected control character U+{:04X}", u32::from(c)),
        c => format!("unexpected character '{c}'"),
    }
}
