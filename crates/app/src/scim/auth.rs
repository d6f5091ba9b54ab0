//! The SCIM client's credential: one bearer token, configured on the server (`scim_token`,
//! `STEWARD_SCIM_TOKEN`), kept only as its SHA-256 and compared in constant time, as the
//! bootstrap administrator token is. It is separate from the Graph API's tokens: a Graph token
//! is not accepted here, and this token is not accepted by the Graph API (it is neither the
//! bootstrap token nor a stored token). What it allows is the `ScimCap` the use cases take.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::ScimError;
use crate::auth::hash_secret;

/// Proof that the caller is the configured SCIM client. Only `ScimAuthenticator` makes one.
#[derive(Debug, Clone, Copy)]
pub struct ScimCap(());

/// Checks the SCIM client's bearer token.
#[derive(Clone, Default)]
pub struct ScimAuthenticator {
    hash: Option<String>,
}

impl fmt::Debug for ScimAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimAuthenticator").field("enabled", &self.hash.is_some()).finish()
    }
}

impl ScimAuthenticator {
    /// With the configured token; `None` or an empty one leaves SCIM provisioning disabled.
    pub fn new(token: Option<&SecretString>) -> Self {
        Self { hash: token.map(|t| t.expose_secret()).filter(|t| !t.is_empty()).map(hash_secret) }
    }

    /// SCIM provisioning disabled: every request is refused.
    pub fn disabled() -> Self {
        Self::default()
    }

    pub fn is_enabled(&self) -> bool {
        self.hash.is_some()
    }

    /// Checks the bearer token of a request (`None`: the request had none).
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<ScimCap, ScimError> {
        let Some(hash) = &self.hash else {
            return Err(ScimError::new(
                401,
                None,
                "SCIM provisioning is not enabled on this server: set scim_token in the configuration \
                 (or STEWARD_SCIM_TOKEN) and give the identity provider that token.",
            ));
        };
        let Some(bearer) = bearer.filter(|b| !b.is_empty()) else {
            return Err(ScimError::new(401, None, "Send the SCIM token as Authorization: Bearer <token>."));
        };
        if bool::from(hash.as_bytes().ct_eq(hash_secret(bearer).as_bytes())) {
            Ok(ScimCap(()))
        } else {
            Err(ScimError::new(401, None, "The bearer token is not this server's SCIM token."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_checked_and_never_printed() {
        let secret = SecretString::from("scim-secret-token-0123456789".to_owned());
        let a = ScimAuthenticator::new(Some(&secret));
        assert!(a.is_enabled());
        assert!(a.authenticate(Some("scim-secret-token-0123456789")).is_ok());
        assert!(a.authenticate(Some("scim-secret-token-012345678")).is_err());
        assert!(a.authenticate(None).is_err());
        assert!(!format!("{a:?}").contains("scim-secret"));
        assert!(!format!("{a:?}").contains(&hash_secret("scim-secret-token-0123456789")));
    }

    #[test]
    fn without_a_token_nothing_is_accepted() {
        let empty = SecretString::from(String::new());
        for a in [ScimAuthenticator::disabled(), ScimAuthenticator::new(Some(&empty)), ScimAuthenticator::new(None)] {
            assert!(!a.is_enabled());
            let e = a.authenticate(Some("")).unwrap_err().to_string();
            assert!(e.contains("not enabled"), "{e}");
        }
    }
}
