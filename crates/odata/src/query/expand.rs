//! `$expand`: the comma-separated item list, each item's navigation path and its nested
//! options in parentheses (`members($select=id;$expand=manager($select=id))`).

use super::{ExpandItem, empty_item, empty_option, parse_orderby, parse_select, parse_top};
use crate::filter::parse_filter;
use crate::{ODataError, is_property_path, shorten};

/// Deepest nesting of `$expand` inside `$expand` accepted.
pub const MAX_EXPAND_DEPTH: usize = 8;

const OPTION: &str = "$expand";
const ECHO_CHARS: usize = 100;

/// Parses a decoded `$expand` value.
pub(super) fn parse_expand(value: &str) -> Result<Vec<ExpandItem>, ODataError> {
    parse_list(value, 1)
}

fn parse_list(value: &str, depth: usize) -> Result<Vec<ExpandItem>, ODataError> {
    if depth > MAX_EXPAND_DEPTH {
        return Err(ODataError::bad_request(format!(
            "Query option '{OPTION}' is nested more than {MAX_EXPAND_DEPTH} levels deep."
        )));
    }
    if value.trim().is_empty() {
        return Err(empty_option(OPTION));
    }
    split_top_level(value, ',')?.into_iter().map(|item| parse_item(item, depth)).collect()
}

/// `path` or `path(options)`.
fn parse_item(text: &str, depth: usize) -> Result<ExpandItem, ODataError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(empty_item(OPTION));
    }
    let (path, options) = match text.split_once('(') {
        None => (text, None),
        Some((path, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| invalid(&format!("unexpected text after the ')' in '{}'", shorten(text, ECHO_CHARS))))?;
            (path.trim(), Some(inner))
        }
    };
    if path != "*" && !is_property_path(path) {
        return Err(invalid(&format!("'{}' is not a valid navigation property", shorten(path, ECHO_CHARS))));
    }
    let mut item = ExpandItem { path: path.to_owned(), ..ExpandItem::default() };
    if let Some(inner) = options {
        if path == "*" {
            return Err(invalid("'*' cannot take options in parentheses"));
        }
        apply_options(&mut item, inner, depth)?;
    }
    Ok(item)
}

/// The `;`-separated `$name=value` options inside an item's parentheses.
fn apply_options(item: &mut ExpandItem, inner: &str, depth: usize) -> Result<(), ODataError> {
    let parts: Vec<&str> =
        split_top_level(inner, ';')?.into_iter().map(str::trim).filter(|part| !part.is_empty()).collect();
    if parts.is_empty() {
        return Err(invalid(&format!("empty parentheses after '{}'", item.path)));
    }
    let mut seen: Vec<String> = Vec::new();
    for part in parts {
        let (name, value) = part.split_once('=').ok_or_else(|| {
            invalid(&format!(
                "'{}' in the options of '{}' must have the form $option=value",
                shorten(part, ECHO_CHARS),
                item.path
            ))
        })?;
        let name = name.trim().to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(invalid(&format!("'{name}' is specified more than once for '{}'", item.path)));
        }
        apply_option(item, &name, value, depth)?;
        seen.push(name);
    }
    Ok(())
}

/// One nested option; `name` is lower-cased.
fn apply_option(item: &mut ExpandItem, name: &str, value: &str, depth: usize) -> Result<(), ODataError> {
    match name {
        "$select" => item.select = parse_select(value, "$select")?,
        "$expand" => item.expand = parse_list(value, depth + 1)?,
        "$filter" => item.filter = Some(parse_filter(value)?),
        "$top" => item.top = Some(parse_top(value, "$top")?),
        "$orderby" => item.orderby = parse_orderby(value, "$orderby")?,
        _ => {
            return Err(invalid(&format!(
                "the option '{}' is not supported inside '{}'; supported: $select, $expand, \
                 $filter, $top, $orderby",
                shorten(name, ECHO_CHARS),
                item.path
            )));
        }
    }
    Ok(())
}

fn invalid(detail: &str) -> ODataError {
    ODataError::bad_request(format!("Invalid query option '{OPTION}': {detail}."))
}

/// Splits `text` at `sep` where it is outside parentheses and outside single-quoted strings
/// (so `a($select=x,y),b` and `a($filter=n eq 'x,y')` split correctly).
pub(super) fn split_top_level(text: &str, sep: char) -> Result<Vec<&str>, ODataError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut in_quote = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '\'' => in_quote = !in_quote,
            '(' if !in_quote => depth += 1,
            ')' if !in_quote => {
                depth = depth.checked_sub(1).ok_or_else(|| invalid("unbalanced ')'"))?;
            }
            c if c == sep && !in_quote && depth == 0 => {
                parts.push(text.get(start..i).unwrap_or(""));
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if in_quote {
        return Err(invalid("unterminated string literal (missing closing single quote)"));
    }
    if depth != 0 {
        return Err(invalid("unbalanced '(' (missing ')')"));
    }
    parts.push(text.get(start..).unwrap_or(""));
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_parens_and_quotes() {
        let cases: &[(&str, char, &[&str])] = &[
            ("a,b", ',', &["a", "b"]),
            ("a(x,y),b", ',', &["a(x,y)", "b"]),
            ("a($filter=n eq 'x,(y'),b", ',', &["a($filter=n eq 'x,(y')", "b"]),
            ("a eq 'it''s;x';b", ';', &["a eq 'it''s;x'", "b"]),
            ("", ',', &[""]),
            ("a,", ',', &["a", ""]),
            ("é,ü", ',', &["é", "ü"]),
        ];
        for (text, sep, want) in cases {
            assert_eq!(split_top_level(text, *sep).unwrap(), *want, "{text}");
        }
    }

    #[test]
    fn split_rejects_unbalanced() {
        for (text, needle) in [("a)", "unbalanced ')'"), ("a(", "unbalanced '('"), ("'a", "unterminated")] {
            let err = split_top_level(text, ',').unwrap_err();
            assert_eq!(err.code, "BadRequest");
            assert!(err.message.contains(needle), "{text}: {}", err.message);
        }
    }
}
