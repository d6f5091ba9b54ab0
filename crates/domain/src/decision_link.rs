//! One-click decisions from email: the approve and deny links an approver's mail carries. A
//! link names the request, the approver it was sent to, the decision, when it stops working
//! and a nonce that makes it single-use (the store records the nonces used), signed with
//! HMAC-SHA256 under a key derived from Steward's `secrets_key`. The link only says what to
//! decide: the approver must still be signed in (with MFA when the policy asks) to record it.
//!
//! Token: `<request>.<approver>.<a|d>.<expires unix seconds>.<nonce>.<signature hex>`, made of
//! URL-safe characters only.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::extension::hmac_hex;
use crate::ids::{RequestId, UserId};

/// The key that signs decision links.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl LinkKey {
    pub fn derive(secret: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"steward-decision-link-key/v1");
        h.update(secret);
        Self(h.finalize().into())
    }

    fn sign(&self, body: &str) -> String {
        // A 32-byte key always suits HMAC-SHA256.
        hmac_hex(&self.0, &[b"steward-decision-link/v1\n", body.as_bytes()]).unwrap_or_default()
    }
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey([REDACTED])")
    }
}

/// What a link asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionLink {
    pub request: RequestId,
    /// The approver the link was sent to: only they may use it.
    pub approver: UserId,
    pub approve: bool,
    /// Unix seconds after which the link is refused.
    pub expires: i64,
    /// Single use: a nonce recorded once used.
    pub nonce: String,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("This link is not a decision link Steward made.")]
    Malformed,
    #[error("This link was altered: its signature does not match what it says.")]
    Altered,
    #[error("This link has expired. Open the request in My Access to decide.")]
    Expired,
}

impl DecisionLink {
    fn body(&self) -> String {
        let d = if self.approve { "a" } else { "d" };
        format!("{}.{}.{d}.{}.{}", self.request, self.approver, self.expires, self.nonce)
    }

    /// The signed token.
    pub fn token(&self, key: &LinkKey) -> String {
        let body = self.body();
        let sig = key.sign(&body);
        format!("{body}.{sig}")
    }

    /// The link a token stands for, if `key` signed it and it has not expired at `now` (unix
    /// seconds). Whether it was used already is the store's to say.
    pub fn check(token: &str, key: &LinkKey, now: i64) -> Result<Self, LinkError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [request, approver, decision, expires, nonce, sig] = parts.as_slice() else {
            return Err(LinkError::Malformed);
        };
        let link = DecisionLink {
            request: request.parse().map_err(|_| LinkError::Malformed)?,
            approver: approver.parse().map_err(|_| LinkError::Malformed)?,
            approve: match *decision {
                "a" => true,
                "d" => false,
                _ => return Err(LinkError::Malformed),
            },
            expires: expires.parse().map_err(|_| LinkError::Malformed)?,
            nonce: (*nonce).to_owned(),
        };
        if link.nonce.is_empty()
            || link.nonce.len() > 64
            || !link.nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(LinkError::Malformed);
        }
        // The signature covers the text as received; re-rendering it must give the same text,
        // so an id spelled otherwise (upper case) is an alteration too.
        let body = link.body();
        if token.len() != body.len() + 1 + sig.len() || !token.starts_with(&body) {
            return Err(LinkError::Altered);
        }
        if !constant_time_eq(key.sign(&body).as_bytes(), sig.as_bytes()) {
            return Err(LinkError::Altered);
        }
        if now > link.expires {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> DecisionLink {
        DecisionLink {
            request: RequestId::new(),
            approver: UserId::new(),
            approve: true,
            expires: 1_000,
            nonce: "5f0e2c1a-0000-4000-8000-000000000001".into(),
        }
    }

    #[test]
    fn a_link_checks_until_it_expires() {
        let key = LinkKey::derive(b"k");
        let l = link();
        let t = l.token(&key);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'), "{t}");
        assert_eq!(DecisionLink::check(&t, &key, 1_000), Ok(l));
        assert_eq!(DecisionLink::check(&t, &key, 1_001), Err(LinkError::Expired));
    }

    #[test]
    fn an_altered_or_foreign_link_is_refused() {
        let key = LinkKey::derive(b"k");
        let t = link().token(&key);
        assert_eq!(DecisionLink::check(&t.replacen(".a.", ".d.", 1), &key, 0), Err(LinkError::Altered));
        assert_eq!(DecisionLink::check(&t.replacen(".1000.", ".9999.", 1), &key, 0), Err(LinkError::Altered));
        assert_eq!(DecisionLink::check(&t, &LinkKey::derive(b"other"), 0), Err(LinkError::Altered));
        let mut flipped = t.clone();
        let last = if flipped.ends_with('0') { '1' } else { '0' };
        flipped.pop();
        flipped.push(last);
        assert_eq!(DecisionLink::check(&flipped, &key, 0), Err(LinkError::Altered));
        assert_eq!(DecisionLink::check(&t.to_uppercase(), &key, 0), Err(LinkError::Malformed));
        assert_eq!(DecisionLink::check("x.y", &key, 0), Err(LinkError::Malformed));
        assert_eq!(format!("{key:?}"), "LinkKey([REDACTED])");
    }
}
