//! The provider's signing keys: parsing a JWKS into verification keys by `kid` (RSA and EC
//! P-256), and the cache that fetches it again when a token names an unknown key — at most
//! once per `jwks_min_refresh_seconds`, so made-up `kid`s cannot make us hammer the provider.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde_json::Value;

use crate::http;

/// At most this many keys are kept from one JWKS.
const MAX_KEYS: usize = 100;
/// RSA keys shorter than this are ignored.
const MIN_RSA_BITS: usize = 2048;

/// The kind of a public key, which decides the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
}

impl KeyKind {
    /// Whether a signature made with `alg` can come from a key of this kind.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::EcP256 => alg == Algorithm::ES256,
        }
    }
}

/// One verification key of the provider.
pub(crate) struct PublicKey {
    pub(crate) kind: KeyKind,
    /// The JWK's own `alg`, when it names one: a token must then use exactly it.
    pub(crate) alg: Option<String>,
    pub(crate) decoding: DecodingKey,
    /// The JWK as published, for `openidconnect`'s ID-token verifier.
    pub(crate) jwk: Value,
}

/// The keys of one fetched JWKS, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<PublicKey>>,
}

impl KeySet {
    pub(crate) fn get(&self, kid: &str) -> Option<Arc<PublicKey>> {
        self.by_kid.get(kid).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len()
    }

    /// The usable signing keys of a JWKS document. Keys without a `kid`, meant for encryption,
    /// of another type or curve, or malformed are skipped (a provider may publish keys we do
    /// not use); a document that is not a JWKS is an error.
    pub(crate) fn parse(doc: &Value) -> Result<Self, String> {
        let keys = doc.get("keys").and_then(Value::as_array).ok_or("the JWKS has no \"keys\" array")?;
        let mut by_kid = HashMap::new();
        for jwk in keys.iter().take(MAX_KEYS) {
            let Some(kid) = jwk.get("kid").and_then(Value::as_str) else { continue };
            match parse_key(jwk) {
                Ok(Some(key)) => {
                    if by_kid.contains_key(kid) {
                        tracing::warn!(kid, "the provider's JWKS names a key id twice; the first key is used");
                        continue;
                    }
                    by_kid.insert(kid.to_owned(), Arc::new(key));
                }
                Ok(None) => {}
                Err(why) => tracing::warn!(kid, why, "a key of the provider's JWKS is ignored"),
            }
        }
        Ok(Self { by_kid })
    }
}

fn str_field<'a>(jwk: &'a Value, name: &str) -> Result<&'a str, String> {
    jwk.get(name).and_then(Value::as_str).ok_or_else(|| format!("no {name:?}"))
}

fn b64(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(str_field(jwk, name)?).map_err(|e| format!("{name:?} is not base64url: {e}"))
}

/// A JWK as a verification key; `None` for keys that are not ours to use (encryption, other
/// types).
fn parse_key(jwk: &Value) -> Result<Option<PublicKey>, String> {
    if jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|o| o.as_str() == Some("verify"))
    {
        return Ok(None);
    }
    let alg = jwk.get("alg").and_then(Value::as_str).map(str::to_owned);
    let (kind, decoding) = match str_field(jwk, "kty")? {
        "RSA" => {
            let n = b64(jwk, "n")?;
            let e = b64(jwk, "e")?;
            let bits = n.iter().position(|b| *b != 0).map_or(0, |first| (n.len() - first) * 8);
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA key of {bits} bits (at least {MIN_RSA_BITS} are required)"));
            }
            if e.is_empty() || e.len() > 8 {
                return Err("RSA exponent out of range".into());
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            if str_field(jwk, "crv")? != "P-256" {
                return Ok(None);
            }
            let x = b64(jwk, "x")?;
            let y = b64(jwk, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            let decoding = DecodingKey::from_ec_components(str_field(jwk, "x")?, str_field(jwk, "y")?)
                .map_err(|e| format!("EC key: {e}"))?;
            (KeyKind::EcP256, decoding)
        }
        _ => return Ok(None),
    };
    Ok(Some(PublicKey { kind, alg, decoding, jwk: jwk.clone() }))
}

/// What a key lookup found.
pub(crate) enum Lookup {
    Found(Arc<PublicKey>),
    /// Not in the JWKS, even after a refetch (or the refetch was rate-limited).
    Unknown,
}

/// The provider's keys, fetched at discovery and again when a token names a key we do not
/// have (rate-limited) or on [`Jwks::refresh`].
pub(crate) struct Jwks {
    uri: Url,
    min_refresh: SignedDuration,
    keys: RwLock<Arc<KeySet>>,
    /// When the last refetch for an unknown key happened; the mutex also makes concurrent
    /// lookups of unknown keys wait for one fetch instead of each starting its own.
    last_refetch: tokio::sync::Mutex<Option<Timestamp>>,
    fetches: AtomicU64,
}

impl Jwks {
    /// Fetches the JWKS at `uri` once.
    pub(crate) async fn fetch(client: &reqwest::Client, uri: Url, min_refresh_seconds: u64) -> Result<Self, String> {
        let jwks = Self {
            uri,
            min_refresh: SignedDuration::from_secs(i64::try_from(min_refresh_seconds).unwrap_or(i64::MAX)),
            keys: RwLock::new(Arc::new(KeySet::default())),
            last_refetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        };
        jwks.load(client).await?;
        Ok(jwks)
    }

    pub(crate) fn uri(&self) -> &Url {
        &self.uri
    }

    /// How many times the JWKS was fetched (discovery included).
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn load(&self, client: &reqwest::Client) -> Result<usize, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let doc = http::get_json(client, &self.uri).await.map_err(|e| format!("JWKS: {e}"))?;
        let set = KeySet::parse(&doc).map_err(|e| format!("JWKS at {}: {e}", self.uri))?;
        let n = set.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(n)
    }

    /// Fetches the JWKS now, whatever the rate limit (for a scheduled refresh or an
    /// administrator's request): keys the provider no longer publishes stop being accepted.
    pub(crate) async fn refresh(&self, client: &reqwest::Client, now: Timestamp) -> Result<usize, String> {
        let mut last = self.last_refetch.lock().await;
        *last = Some(now);
        self.load(client).await
    }

    /// The key named `kid`. An unknown `kid` makes one refetch, unless one happened less than
    /// `jwks_min_refresh_seconds` before `now`; a failed refetch is `Err` (provider
    /// unavailable) and keeps the keys we had.
    pub(crate) async fn key(&self, client: &reqwest::Client, kid: &str, now: Timestamp) -> Result<Lookup, String> {
        if let Some(key) = self.current().get(kid) {
            return Ok(Lookup::Found(key));
        }
        let mut last = self.last_refetch.lock().await;
        // Another lookup may have refetched while we waited for the lock.
        if let Some(key) = self.current().get(kid) {
            return Ok(Lookup::Found(key));
        }
        if let Some(at) = *last {
            // A clock set back (a test clock) does not block refetches for ever.
            if now >= at && now.duration_since(at) < self.min_refresh {
                tracing::debug!(kid, "unknown key id; the JWKS was fetched too recently to fetch it again");
                return Ok(Lookup::Unknown);
            }
        }
        *last = Some(now);
        tracing::info!(kid, jwks_uri = %self.uri, "unknown key id: fetching the provider's JWKS again");
        self.load(client).await?;
        Ok(self.current().get(kid).map_or(Lookup::Unknown, Lookup::Found))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    fn rsa_jwk(kid: &str, bytes: usize) -> Value {
        let mut n = vec![0xC5u8; bytes];
        n[bytes - 1] = 0x01;
        json!({"kty": "RSA", "kid": kid, "use": "sig", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
    }

    fn ec_jwk(kid: &str, crv: &str) -> Value {
        json!({"kty": "EC", "kid": kid, "crv": crv,
               "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])})
    }

    #[test]
    fn keeps_rsa_and_p256_signing_keys_by_kid() {
        let doc = json!({"keys": [
            rsa_jwk("r1", 256),
            ec_jwk("e1", "P-256"),
            ec_jwk("e384", "P-384"),
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AAAA"},
            {"kty": "RSA", "use": "sig", "n": "AQAB", "e": "AQAB"},
            rsa_jwk("small", 128),
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "bad", "n": "!!!", "e": "AQAB"},
        ]});
        let set = KeySet::parse(&doc).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.get("r1").unwrap().kind, KeyKind::Rsa);
        assert_eq!(set.get("e1").unwrap().kind, KeyKind::EcP256);
        assert!(set.get("small").is_none());
        assert!(set.get("h").is_none());
    }

    #[test]
    fn a_duplicate_kid_keeps_the_first_key() {
        let doc = json!({"keys": [rsa_jwk("k", 256), ec_jwk("k", "P-256")]});
        let set = KeySet::parse(&doc).unwrap();
        assert_eq!(set.get("k").unwrap().kind, KeyKind::Rsa);
    }

    #[test]
    fn not_a_jwks_is_an_error() {
        assert!(KeySet::parse(&json!({"issuer": "x"})).is_err());
        assert!(KeySet::parse(&json!({"keys": {}})).is_err());
    }

    #[test]
    fn key_kinds_fit_their_algorithms_only() {
        assert!(KeyKind::Rsa.fits(Algorithm::RS256));
        assert!(KeyKind::Rsa.fits(Algorithm::PS256));
        assert!(!KeyKind::Rsa.fits(Algorithm::ES256));
        assert!(!KeyKind::Rsa.fits(Algorithm::HS256));
        assert!(KeyKind::EcP256.fits(Algorithm::ES256));
        assert!(!KeyKind::EcP256.fits(Algorithm::ES384));
        assert!(!KeyKind::EcP256.fits(Algorithm::RS256));
        assert!(!KeyKind::EcP256.fits(Algorithm::HS256));
    }
}
