//! The whole OData query string: splitting and percent-decoding it, dispatching the `$`
//! system query options, and parsing `$select`, `$orderby`, `$top`, `$skip`, `$count`,
//! `$search`, `$skiptoken` and `$format` (`$expand` lives in the `expand` submodule, `$filter` in
//! [`crate::filter`]).

mod expand;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::filter::{Expr, parse_filter};
use crate::{ODataError, is_identifier, is_property_path, shorten};

pub use expand::MAX_EXPAND_DEPTH;

/// Largest `$top` accepted (Graph's page-size ceiling).
pub const MAX_TOP: u32 = 999;

/// Longest `$search` term accepted, in characters. A search is a substring match, so a longer
/// term finds nothing useful, and SQLite refuses LIKE patterns over 50 000 bytes.
pub const MAX_SEARCH_CHARS: usize = 512;

/// Characters of a user-supplied value echoed back in an error message.
const ECHO_CHARS: usize = 100;

/// Every system query option of a request, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOptions {
    pub filter: Option<Expr>,
    /// `$select=id,displayName`; `None` when absent or `*`.
    pub select: Option<Vec<String>>,
    pub expand: Vec<ExpandItem>,
    pub orderby: Vec<OrderBy>,
    /// `1..=MAX_TOP`.
    pub top: Option<u32>,
    pub skip: Option<u32>,
    pub count: bool,
    pub search: Option<SearchTerm>,
    /// Opaque; passed through as decoded.
    pub skiptoken: Option<String>,
}

/// One `$expand` item, with the options given in its parentheses.
/// `$expand=*` is a single item whose `path` is `"*"`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExpandItem {
    /// The navigation property as written (`members`, `catalog/owner`, `*`).
    pub path: String,
    pub select: Option<Vec<String>>,
    pub expand: Vec<ExpandItem>,
    pub filter: Option<Expr>,
    pub top: Option<u32>,
    pub orderby: Vec<OrderBy>,
}

/// One `$orderby` key: `catalog/displayName desc` is `{["catalog","displayName"], true}`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub path: Vec<String>,
    pub descending: bool,
}

/// `$search="displayName:sales"` is `{Some("displayName"), "sales"}`; `$search="sales"` is
/// `{None, "sales"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchTerm {
    pub property: Option<String>,
    pub value: String,
}

/// The system query options this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SystemOption {
    Filter,
    Select,
    Expand,
    OrderBy,
    Top,
    Skip,
    Count,
    Search,
    SkipToken,
    Format,
}

impl SystemOption {
    const ALL: [Self; 10] = [
        Self::Filter,
        Self::Select,
        Self::Expand,
        Self::OrderBy,
        Self::Top,
        Self::Skip,
        Self::Count,
        Self::Search,
        Self::SkipToken,
        Self::Format,
    ];

    /// Case-insensitive lookup of a `$`-prefixed name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|option| option.name().eq_ignore_ascii_case(name))
    }

    fn name(self) -> &'static str {
        match self {
            Self::Filter => "$filter",
            Self::Select => "$select",
            Self::Expand => "$expand",
            Self::OrderBy => "$orderby",
            Self::Top => "$top",
            Self::Skip => "$skip",
            Self::Count => "$count",
            Self::Search => "$search",
            Self::SkipToken => "$skiptoken",
            Self::Format => "$format",
        }
    }
}

/// Parses a raw URL query string (without the leading `?`, still percent-encoded) into
/// [`QueryOptions`]; parameters without a `$` are ignored.
pub fn parse_query(raw: &str) -> Result<QueryOptions, ODataError> {
    parse_query_pairs(raw).map(|(options, _)| options)
}

/// Like [`parse_query`], also returning the decoded parameters whose names do not start
/// with `$` (such as `api-version`), in order.
pub fn parse_query_pairs(raw: &str) -> Result<(QueryOptions, Vec<(String, String)>), ODataError> {
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    let mut options = QueryOptions::default();
    let mut seen: Vec<SystemOption> = Vec::new();
    let mut others = Vec::new();
    for segment in raw.split('&').filter(|segment| !segment.is_empty()) {
        let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        let name = decode_component(raw_name)?;
        let value = decode_component(raw_value)?;
        if !name.starts_with('$') {
            others.push((name, value));
            continue;
        }
        let option = SystemOption::from_name(&name).ok_or_else(|| {
            ODataError::bad_request(format!("Query option '{}' is not supported.", shorten(&name, ECHO_CHARS)))
        })?;
        if seen.contains(&option) {
            return Err(ODataError::bad_request(format!(
                "Query option '{}' was specified more than once.",
                option.name()
            )));
        }
        seen.push(option);
        apply_option(&mut options, option, &value)?;
    }
    Ok((options, others))
}

/// Form-style decoding: `+` is a space, then `%XX` escapes. Malformed escapes stay as written.
fn decode_component(raw: &str) -> Result<String, ODataError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ODataError::bad_request("The query string is not valid UTF-8 after percent-decoding."))
}

fn apply_option(options: &mut QueryOptions, option: SystemOption, value: &str) -> Result<(), ODataError> {
    let name = option.name();
    match option {
        SystemOption::Filter => options.filter = Some(parse_filter(value)?),
        SystemOption::Select => options.select = parse_select(value, name)?,
        SystemOption::Expand => options.expand = expand::parse_expand(value)?,
        SystemOption::OrderBy => options.orderby = parse_orderby(value, name)?,
        SystemOption::Top => options.top = Some(parse_top(value, name)?),
        SystemOption::Skip => options.skip = Some(parse_skip(value)?),
        SystemOption::Count => options.count = parse_count(value)?,
        SystemOption::Search => options.search = Some(parse_search(value)?),
        SystemOption::SkipToken => options.skiptoken = Some(parse_skiptoken(value)?),
        SystemOption::Format => check_format(value)?,
    }
    Ok(())
}

fn empty_option(option: &str) -> ODataError {
    ODataError::bad_request(format!("Query option '{option}' must not be empty."))
}

fn empty_item(option: &str) -> ODataError {
    ODataError::bad_request(format!("Query option '{option}' contains an empty item."))
}

/// `id,displayName` (paths allowed); `*` anywhere in the list means all properties (`None`).
fn parse_select(value: &str, option: &str) -> Result<Option<Vec<String>>, ODataError> {
    if value.trim().is_empty() {
        return Err(empty_option(option));
    }
    let mut properties = Vec::new();
    let mut all = false;
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(empty_item(option));
        }
        if item == "*" {
            all = true;
        } else if is_property_path(item) {
            properties.push(item.to_owned());
        } else {
            return Err(ODataError::bad_request(format!(
                "Invalid property '{}' in query option '{option}'.",
                shorten(item, ECHO_CHARS)
            )));
        }
    }
    Ok((!all).then_some(properties))
}

/// `displayName, createdDateTime desc, catalog/displayName asc`.
fn parse_orderby(value: &str, option: &str) -> Result<Vec<OrderBy>, ODataError> {
    if value.trim().is_empty() {
        return Err(empty_option(option));
    }
    value.split(',').map(|item| parse_orderby_item(item, option)).collect()
}

fn parse_orderby_item(item: &str, option: &str) -> Result<OrderBy, ODataError> {
    let mut words = item.split_whitespace();
    let path = words.next().ok_or_else(|| empty_item(option))?;
    if !is_property_path(path) {
        return Err(ODataError::bad_request(format!(
            "Invalid property '{}' in query option '{option}'.",
            shorten(path, ECHO_CHARS)
        )));
    }
    let descending = match words.next() {
        None => false,
        Some(dir) if dir.eq_ignore_ascii_case("asc") => false,
        Some(dir) if dir.eq_ignore_ascii_case("desc") => true,
        Some(dir) => {
            return Err(ODataError::bad_request(format!(
                "Invalid sort direction '{}' in query option '{option}': expected 'asc' or 'desc'.",
                shorten(dir, ECHO_CHARS)
            )));
        }
    };
    if let Some(extra) = words.next() {
        return Err(ODataError::bad_request(format!(
            "Unexpected '{}' after '{}' in query option '{option}'; separate sort keys with ','.",
            shorten(extra, ECHO_CHARS),
            shorten(item.trim(), ECHO_CHARS)
        )));
    }
    Ok(OrderBy { path: path.split('/').map(str::to_owned).collect(), descending })
}

/// Plain decimal digits (no sign), as a `u32`.
fn parse_digits(value: &str) -> Option<u32> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `1..=MAX_TOP`.
fn parse_top(value: &str, option: &str) -> Result<u32, ODataError> {
    parse_digits(value).filter(|top| (1..=MAX_TOP).contains(top)).ok_or_else(|| {
        ODataError::bad_request(format!(
            "Invalid value '{}' for query option '{option}': expected an integer from 1 to {MAX_TOP}.",
            shorten(value, ECHO_CHARS)
        ))
    })
}

fn parse_skip(value: &str) -> Result<u32, ODataError> {
    parse_digits(value).ok_or_else(|| {
        ODataError::bad_request(format!(
            "Invalid value '{}' for query option '$skip': expected an integer from 0 to {}.",
            shorten(value, ECHO_CHARS),
            u32::MAX
        ))
    })
}

fn parse_count(value: &str) -> Result<bool, ODataError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ODataError::bad_request(format!(
            "Invalid value '{}' for query option '$count': expected 'true' or 'false'.",
            shorten(value, ECHO_CHARS)
        )))
    }
}

/// `"sales"`, `sales`, `"displayName:sales"`, `displayName:"sales"`.
fn parse_search(value: &str) -> Result<SearchTerm, ODataError> {
    let term = strip_double_quotes(value.trim())?;
    let (property, value) = match term.split_once(':') {
        Some((property, rest)) if is_identifier(property.trim()) => {
            (Some(property.trim().to_owned()), strip_double_quotes(rest.trim())?)
        }
        _ => (None, term),
    };
    if value.trim().is_empty() {
        return Err(ODataError::bad_request(
            "Query option '$search' must not be empty; expected e.g. \"sales\" or \"displayName:sales\".",
        ));
    }
    let chars = value.chars().count();
    if chars > MAX_SEARCH_CHARS {
        return Err(ODataError::bad_request(format!(
            "Query option '$search' is too long ({chars} characters); the limit is {MAX_SEARCH_CHARS}."
        )));
    }
    Ok(SearchTerm { property, value: value.to_owned() })
}

/// The text inside a pair of surrounding double quotes, or the text itself when unquoted.
fn strip_double_quotes(text: &str) -> Result<&str, ODataError> {
    match text.strip_prefix('"') {
        None => Ok(text),
        Some(rest) => rest.strip_suffix('"').ok_or_else(|| {
            ODataError::bad_request(format!(
                "Invalid value '{}' for query option '$search': unbalanced double quote.",
                shorten(text, ECHO_CHARS)
            ))
        }),
    }
}

fn parse_skiptoken(value: &str) -> Result<String, ODataError> {
    if value.is_empty() {
        return Err(empty_option("$skiptoken"));
    }
    Ok(value.to_owned())
}

/// Only JSON is served: `json` or `application/json` (parameters after `;` ignored).
fn check_format(value: &str) -> Result<(), ODataError> {
    let media = value.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("json") || media.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ODataError::bad_request(format!(
        "Unsupported value '{}' for query option '$format': only 'json' is supported.",
        shorten(value, ECHO_CHARS)
    )))
}
