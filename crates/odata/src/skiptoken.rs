//! `$skiptoken` cursors: wraps any serializable cursor value into an opaque, URL-safe token
//! (JSON, then unpadded base64url) and unwraps it again, rejecting anything tampered with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ODataError;

/// Longest token [`decode_skiptoken`] looks at, in bytes.
pub const MAX_SKIPTOKEN_LEN: usize = 4 * 1024;

/// The opaque token for `cursor`. Fails only if `cursor` cannot be serialized to JSON (for
/// example a map with non-string keys), which is a programming error.
pub fn encode_skiptoken<T: Serialize>(cursor: &T) -> Result<String, serde_json::Error> {
    serde_json::to_vec(cursor).map(|json| URL_SAFE_NO_PAD.encode(json))
}

/// The cursor inside a token made by [`encode_skiptoken`]. Any malformed, oversized or
/// foreign token is a `BadRequest`.
pub fn decode_skiptoken<T: DeserializeOwned>(token: &str) -> Result<T, ODataError> {
    if token.len() > MAX_SKIPTOKEN_LEN {
        return Err(invalid());
    }
    let json = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|_| invalid())?;
    serde_json::from_slice(&json).map_err(|_| invalid())
}

fn invalid() -> ODataError {
    ODataError::bad_request("The $skiptoken is invalid; use the @odata.nextLink returned by the previous page.")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Cursor {
        after: String,
        offset: u32,
    }

    #[test]
    fn round_trip_is_url_safe() {
        let cursor = Cursor { after: "é/+?&=".into(), offset: 7 };
        let token = encode_skiptoken(&cursor).unwrap();
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        assert_eq!(decode_skiptoken::<Cursor>(&token).unwrap(), cursor);
    }

    #[test]
    fn garbage_is_bad_request() {
        let wrong_shape = encode_skiptoken(&42).unwrap();
        let huge = "A".repeat(MAX_SKIPTOKEN_LEN + 1);
        for token in ["", "!!!", "e30", wrong_shape.as_str(), huge.as_str()] {
            let err = decode_skiptoken::<Cursor>(token).unwrap_err();
            assert_eq!(err.code, "BadRequest", "{token}");
            assert!(err.message.contains("$skiptoken"));
        }
    }
}
