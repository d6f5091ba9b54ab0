//! OData query options in the Microsoft Graph v1.0 dialect: parses `$filter`, `$select`, `$expand`, `$orderby`, `$top`, `$skip`, `$count`, `$search` and `$skiptoken` into typed values. Pure: no I/O.
//!
//! Entry points: [`parse_query`] / [`parse_query_pairs`] for a whole URL query string, and
//! [`parse_filter`] for a single `$filter` expression; [`encode_skiptoken`] /
//! [`decode_skiptoken`] turn a paging cursor into an opaque `$skiptoken` and back.
//!
//! Every failure is an [`ODataError`] whose `code` is [`ODataError::INVALID_FILTER`] for any
//! `$filter` problem and [`ODataError::BAD_REQUEST`] for everything else.

pub mod filter;
pub mod query;
pub mod skiptoken;

pub use filter::{CmpOp, Expr, Func, Literal, parse_filter};
pub use query::{ExpandItem, OrderBy, QueryOptions, SearchTerm, parse_query, parse_query_pairs};
pub use skiptoken::{decode_skiptoken, encode_skiptoken};

/// A rejected query option. `message` is meant for humans (it goes into the Graph-style error
/// body as is); `code` is the machine-readable Graph error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ODataError {
    pub code: &'static str,
    pub message: String,
}

impl ODataError {
    /// Code for any problem with a `$filter` expression (including one nested in `$expand`).
    pub const INVALID_FILTER: &'static str = "InvalidFilter";
    /// Code for every other problem: bad `$top`, unknown `$option`, bad `$orderby`, ...
    pub const BAD_REQUEST: &'static str = "BadRequest";

    /// An error with code [`ODataError::INVALID_FILTER`].
    pub fn invalid_filter(message: impl Into<String>) -> Self {
        Self { code: Self::INVALID_FILTER, message: message.into() }
    }

    /// An error with code [`ODataError::BAD_REQUEST`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { code: Self::BAD_REQUEST, message: message.into() }
    }
}

/// True for an OData identifier as this crate accepts it: an ASCII letter or `_`, then ASCII
/// letters, digits or `_`.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => false,
    }
}

/// True for one or more identifiers separated by `/` (`catalog/displayName`).
pub(crate) fn is_property_path(s: &str) -> bool {
    s.split('/').all(is_identifier)
}

/// User text echoed in an error message, cut to `max_chars` characters (with `…`) so hostile
/// input cannot blow up the error body.
pub(crate) fn shorten(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or(s)),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["a", "_a", "displayName", "a1_b2", "_"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a@b", "@odata", "a b", "é", "a.b"] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(is_property_path("catalog/displayName"));
        assert!(!is_property_path("catalog/"));
        assert!(!is_property_path("/catalog"));
        assert!(!is_property_path("a//b"));
    }

    #[test]
    fn shorten_cuts_on_char_boundaries() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
        assert_eq!(shorten("ééééé", 2), "éé…");
    }

    #[test]
    fn error_constructors_set_codes() {
        let e = ODataError::invalid_filter("x");
        assert_eq!(e.code, "InvalidFilter");
        assert_eq!(e.to_string(), "x");
        assert_eq!(ODataError::bad_request("y").code, "BadRequest");
    }
}
