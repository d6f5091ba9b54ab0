//! Tokens the provider issued: the typed error a refused token gets, the claims Steward uses
//! (`VerifiedToken`), and the pure checks — header (`alg`, `kid`), `exp`/`nbf`/`iat` against a
//! time passed in, `iss`, `aud` — around the signature check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

/// The longest token looked at; anything longer is refused before decoding.
pub(crate) const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a token was refused. The messages fit a 401 body and a log line; none repeats the
/// token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's signature algorithm is not allowed: {0}")]
    AlgorithmNotAllowed(String),
    #[error("the token is signed with a key the identity provider does not publish")]
    UnknownKey,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the identity provider could not be reached: {0}")]
    ProviderUnavailable(String),
}

/// The claims of a verified token that Steward uses, plus all of them in `extra`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The subject: the user's stable id at the provider.
    pub sub: String,
    /// Entra's object id of the user, when the provider sends one.
    pub oid: Option<String>,
    pub preferred_username: Option<String>,
    pub email: Option<String>,
    /// Entra's user principal name.
    pub upn: Option<String>,
    pub name: Option<String>,
    /// Authentication methods (`pwd`, `mfa`, …).
    pub amr: Vec<String>,
    /// Authentication context class.
    pub acr: Option<String>,
    pub auth_time: Option<Timestamp>,
    pub iat: Option<Timestamp>,
    pub exp: Timestamp,
    /// Entra's tenant id.
    pub tid: Option<String>,
    pub groups: Vec<String>,
    /// Delegated scopes (`scp`, space-separated or a list).
    pub scopes: Vec<String>,
    /// Application roles (`roles`).
    pub roles: Vec<String>,
    /// Every claim of the token, those above included, for configured claims such as a
    /// department or a device-compliance flag.
    pub extra: Map<String, Value>,
}

impl VerifiedToken {
    /// A claim by name, from all the token's claims.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.extra.get(name)
    }

    /// A claim as text: a string as it is, a number or boolean written out, else `None`.
    pub fn claim_text(&self, name: &str) -> Option<String> {
        match self.extra.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Whether `amr` names `method` (for instance `mfa`).
    pub fn has_amr(&self, method: &str) -> bool {
        self.amr.iter().any(|m| m == method)
    }
}

/// The parts of a JWS header we act on.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
}

/// Reads the header of a compact JWS: three base64url parts, `alg` allowed, a `kid`, no
/// `crit` extension we would not understand. Nothing here is trusted yet beyond choosing
/// which key checks the signature.
pub(crate) fn read_header(token: &str, allowed: &[Algorithm]) -> Result<Header, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("it is too long".into()));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("it is not a compact JWS (three parts separated by dots)".into()));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(TokenError::Malformed("it has an empty part".into()));
    }
    let header: Map<String, Value> = decode_json(header, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(s)) => s.as_str(),
        _ => return Err(TokenError::Malformed("the header names no algorithm".into())),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgorithmNotAllowed("none (unsigned)".into()));
    }
    let alg = alg
        .parse::<Algorithm>()
        .ok()
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| TokenError::AlgorithmNotAllowed(printable(alg)))?;
    if header.contains_key("crit") {
        return Err(TokenError::Malformed("the header has critical extensions (crit)".into()));
    }
    let kid = match header.get("kid") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenError::Malformed("the header names no key (kid)".into())),
    };
    Ok(Header { alg, kid })
}

/// A header value safe to echo in an error (and in HTML or JSON): short, letters, digits,
/// `-`, `_` and `+` only.
fn printable(s: &str) -> String {
    let mut out: String =
        s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+')).take(16).collect();
    if out.is_empty() {
        out.push('?');
    }
    out
}

fn decode_json(part: &str, what: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes =
        URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(format!("the {what} is not a JSON object")))
}

/// The payload of a compact JWS, decoded but not verified.
pub(crate) fn payload(token: &str) -> Result<Map<String, Value>, TokenError> {
    let part = token.split('.').nth(1).ok_or_else(|| TokenError::Malformed("it has no payload".into()))?;
    decode_json(part, "payload")
}

/// What the claims of a signed token must satisfy.
pub(crate) struct Expectations<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audiences: &'a [String],
    pub(crate) now: Timestamp,
    pub(crate) leeway_seconds: u64,
}

/// Checks the time, issuer and audience claims of a token whose signature was verified, and
/// picks out the claims Steward uses.
pub(crate) fn check_claims(claims: Map<String, Value>, expect: &Expectations<'_>) -> Result<VerifiedToken, TokenError> {
    let now = expect.now.as_second();
    let leeway = i64::try_from(expect.leeway_seconds).unwrap_or(i64::MAX);
    let exp = numeric_date(&claims, "exp")?.ok_or_else(|| TokenError::Malformed("it has no expiry (exp)".into()))?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    let iat = numeric_date(&claims, "iat")?;
    if let Some(iat) = iat
        && now.saturating_add(leeway) < iat
    {
        return Err(TokenError::NotYetValid);
    }
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expect.issuer => {}
        _ => return Err(TokenError::WrongIssuer),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => expect.audiences.iter().any(|a| a == aud),
        Some(Value::Array(auds)) => {
            auds.iter().filter_map(Value::as_str).any(|aud| expect.audiences.iter().any(|a| a == aud))
        }
        _ => false,
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenError::Malformed("it names no subject (sub)".into())),
    };
    let auth_time = numeric_date(&claims, "auth_time")?;
    Ok(VerifiedToken {
        sub,
        oid: text(&claims, "oid"),
        preferred_username: text(&claims, "preferred_username"),
        email: text(&claims, "email"),
        upn: text(&claims, "upn"),
        name: text(&claims, "name"),
        amr: list(&claims, "amr"),
        acr: text(&claims, "acr"),
        auth_time: auth_time.map(to_timestamp).transpose()?,
        iat: iat.map(to_timestamp).transpose()?,
        exp: to_timestamp(exp)?,
        tid: text(&claims, "tid"),
        groups: list(&claims, "groups"),
        scopes: list(&claims, "scp"),
        roles: list(&claims, "roles"),
        extra: claims,
    })
}

/// A JWT NumericDate claim in whole seconds (fractions are cut); absent is `None`, anything
/// but a number is malformed.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f.trunc() as i64))
            .map(Some)
            .ok_or_else(|| TokenError::Malformed(format!("{name} is not a time"))),
        Some(_) => Err(TokenError::Malformed(format!("{name} is not a number"))),
    }
}

fn to_timestamp(seconds: i64) -> Result<Timestamp, TokenError> {
    Timestamp::from_second(seconds).map_err(|_| TokenError::Malformed("a time claim is out of range".into()))
}

fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// A claim that is a list of strings, or one space-separated string (`scp`).
fn list(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    fn jws(header: &Value, payload: &Value) -> String {
        format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    const ALLOWED: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];

    #[test]
    fn header_needs_an_allowed_alg_and_a_kid() {
        let p = json!({"sub": "x"});
        let h = read_header(&jws(&json!({"alg": "RS256", "kid": "k1"}), &p), ALLOWED).unwrap();
        assert_eq!((h.alg, h.kid.as_str()), (Algorithm::RS256, "k1"));
        for (header, want) in [
            (json!({"alg": "none", "kid": "k"}), "none"),
            (json!({"alg": "None", "kid": "k"}), "none"),
            (json!({"alg": "HS256", "kid": "k"}), "HS256"),
            (json!({"alg": "PS256", "kid": "k"}), "PS256"),
            (json!({"alg": "XX1", "kid": "k"}), "XX1"),
        ] {
            match read_header(&jws(&header, &p), ALLOWED) {
                Err(TokenError::AlgorithmNotAllowed(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{header}: {other:?}"),
            }
        }
        for header in [
            json!({"alg": "RS256"}),
            json!({"alg": "RS256", "kid": ""}),
            json!({"kid": "k"}),
            json!({"alg": "RS256", "kid": "k", "crit": ["b64"]}),
        ] {
            assert!(matches!(read_header(&jws(&header, &p), ALLOWED), Err(TokenError::Malformed(_))), "{header}");
        }
    }

    #[test]
    fn malformed_shapes_are_refused() {
        for t in ["", "a", "a.b", "a.b.c.d", ".b.c", "a..c", "!!.b.c", "e30.!!.c"] {
            assert!(matches!(read_header(t, ALLOWED), Err(TokenError::Malformed(_))), "{t}");
        }
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(read_header(&long, ALLOWED), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn error_messages_never_echo_the_token() {
        let header = json!({"alg": "<script>alert(1)</script>-very-long-algorithm-name", "kid": "k"});
        let t = jws(&header, &json!({}));
        let e = read_header(&t, ALLOWED).unwrap_err().to_string();
        assert!(!e.contains(&t) && !e.contains('<') && !e.contains("very-long"), "{e}");
    }

    fn base() -> Map<String, Value> {
        json!({"iss": "https://idp", "aud": "api://steward", "sub": "u1", "exp": 2_000, "iat": 1_000,
               "amr": ["pwd", "mfa"], "scp": "read write", "groups": ["g1"], "department": "Finance",
               "auth_time": 990, "email": "a@example.com", "oid": "o1", "tid": "t1"})
        .as_object()
        .unwrap()
        .clone()
    }

    fn check(claims: Map<String, Value>, now: i64) -> Result<VerifiedToken, TokenError> {
        let audiences = vec!["api://steward".to_owned(), "other".to_owned()];
        check_claims(
            claims,
            &Expectations {
                issuer: "https://idp",
                audiences: &audiences,
                now: Timestamp::from_second(now).unwrap(),
                leeway_seconds: 60,
            },
        )
    }

    #[test]
    fn claims_are_picked_out() {
        let t = check(base(), 1_500).unwrap();
        assert_eq!(t.sub, "u1");
        assert_eq!(t.amr, vec!["pwd", "mfa"]);
        assert!(t.has_amr("mfa"));
        assert_eq!(t.scopes, vec!["read", "write"]);
        assert_eq!(t.groups, vec!["g1"]);
        assert_eq!(t.exp, Timestamp::from_second(2_000).unwrap());
        assert_eq!(t.auth_time, Some(Timestamp::from_second(990).unwrap()));
        assert_eq!(t.claim_text("department").as_deref(), Some("Finance"));
        assert_eq!(t.oid.as_deref(), Some("o1"));
        assert_eq!(t.tid.as_deref(), Some("t1"));
    }

    #[test]
    fn expiry_with_leeway() {
        assert!(check(base(), 2_059).is_ok());
        assert_eq!(check(base(), 2_060), Err(TokenError::Expired));
        let mut c = base();
        c.remove("exp");
        assert!(matches!(check(c, 1_500), Err(TokenError::Malformed(_))));
        let mut c = base();
        c.insert("exp".into(), json!("2000"));
        assert!(matches!(check(c, 1_500), Err(TokenError::Malformed(_))));
        let mut c = base();
        c.insert("exp".into(), json!(2000.9));
        assert!(check(c, 1_500).is_ok());
    }

    #[test]
    fn not_before_and_issued_in_the_future() {
        let mut c = base();
        c.insert("nbf".into(), json!(1_100));
        assert!(check(c.clone(), 1_040).is_ok());
        assert_eq!(check(c, 1_039), Err(TokenError::NotYetValid));
        assert_eq!(check(base(), 939), Err(TokenError::NotYetValid));
    }

    #[test]
    fn issuer_and_audience() {
        let mut c = base();
        c.insert("iss".into(), json!("https://idp/"));
        assert_eq!(check(c, 1_500), Err(TokenError::WrongIssuer));
        let mut c = base();
        c.remove("iss");
        assert_eq!(check(c, 1_500), Err(TokenError::WrongIssuer));
        let mut c = base();
        c.insert("aud".into(), json!(["x", "other"]));
        assert!(check(c, 1_500).is_ok());
        let mut c = base();
        c.insert("aud".into(), json!(["x", "y"]));
        assert_eq!(check(c, 1_500), Err(TokenError::WrongAudience));
        let mut c = base();
        c.remove("aud");
        assert_eq!(check(c, 1_500), Err(TokenError::WrongAudience));
        let mut c = base();
        c.remove("sub");
        assert!(matches!(check(c, 1_500), Err(TokenError::Malformed(_))));
    }
}
