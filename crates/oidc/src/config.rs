//! The provider's configuration as an administrator writes it, and the checks that refuse
//! unsafe settings (HMAC or `none` algorithms, plain HTTP off loopback) before any I/O.

use jsonwebtoken::Algorithm;
use reqwest::Url;
use secrecy::SecretString;
use serde::Deserialize;

/// How Steward talks to one OpenID Connect provider.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The issuer identifier; the discovery document and every token must name exactly this.
    pub issuer: String,
    /// Steward's client id at the provider (also the audience of its ID tokens).
    pub client_id: String,
    /// The client secret, sent with HTTP Basic authentication to the token endpoint.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// The `aud` values accepted on API access tokens; empty means `[client_id]`.
    #[serde(default)]
    pub audience: Vec<String>,
    /// The signature algorithms accepted, on access and ID tokens alike. HMAC algorithms
    /// (the client secret as a key) and `none` are refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// A token naming an unknown key makes Steward fetch the JWKS again, at most once in this
    /// many seconds, so a flood of made-up `kid`s cannot turn into a flood of requests to the
    /// provider.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_seconds: u64,
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256, Algorithm::ES256]
}

const fn default_leeway() -> u64 {
    60
}

const fn default_min_refresh() -> u64 {
    30
}

impl ProviderConfig {
    /// A configuration with the defaults: audience `[client_id]`, RS256 and ES256, 60 s leeway,
    /// a JWKS refetch at most every 30 s.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Self {
            issuer: issuer.into(),
            audience: vec![client_id.clone()],
            client_id,
            client_secret: None,
            algorithms: default_algorithms(),
            leeway_seconds: default_leeway(),
            jwks_min_refresh_seconds: default_min_refresh(),
        }
    }

    /// Sets the client secret.
    #[must_use]
    pub fn with_client_secret(mut self, secret: SecretString) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// Sets the accepted access-token audiences.
    #[must_use]
    pub fn with_audience<I, S>(mut self, audience: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audience = audience.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the accepted algorithms.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// The configuration checked and completed (empty audience → `[client_id]`), or why it
    /// cannot be used.
    pub fn checked(mut self) -> Result<Self, ConfigError> {
        check_endpoint("issuer", &self.issuer)?;
        if self.issuer.ends_with('/') {
            // Issuers are compared exactly; `https://idp/` and `https://idp` are two issuers.
            // A trailing slash is legal but almost always a typo, and discovery would then ask
            // for `https://idp//.well-known/…`.
            return Err(ConfigError::Invalid("issuer must not end with '/'".into()));
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::Invalid("client_id is empty".into()));
        }
        if self.audience.is_empty() {
            self.audience = vec![self.client_id.clone()];
        }
        if self.audience.iter().any(|a| a.is_empty()) {
            return Err(ConfigError::Invalid("an audience is empty".into()));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::Invalid("no signature algorithm is allowed".into()));
        }
        for alg in &self.algorithms {
            if !is_supported(*alg) {
                return Err(ConfigError::Algorithm(format!("{alg:?}")));
            }
        }
        self.algorithms.dedup();
        Ok(self)
    }
}

/// Whether Steward accepts `alg` at all: RSA (PKCS#1 v1.5 and PSS) and ECDSA P-256. HMAC is
/// refused because its key would be the client secret or, worse, a public key; EdDSA and
/// P-384 are not supported by the key cache.
pub(crate) fn is_supported(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
    )
}

/// An endpoint must be HTTPS, except on a loopback host (tests, a provider on the same machine).
pub(crate) fn check_endpoint(what: &str, url: &str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|e| ConfigError::Invalid(format!("{what} is not a URL: {e}")))?;
    if parsed.cannot_be_a_base() || parsed.host_str().is_none() {
        return Err(ConfigError::Invalid(format!("{what} has no host")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::Invalid(format!("{what} carries credentials")));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(ConfigError::Invalid(format!("{what} must use https (plain http only on loopback)"))),
        other => Err(ConfigError::Invalid(format!("{what} has scheme {other:?}"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A configuration Steward refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("OpenID Connect configuration: {0}")]
    Invalid(String),
    #[error(
        "OpenID Connect configuration: algorithm {0} is not allowed (use RS256, RS384, RS512, PS256, PS384, PS512 or ES256; HMAC and none are refused)"
    )]
    Algorithm(String),
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("jwks_min_refresh_seconds", &self.jwks_min_refresh_seconds)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn debug_redacts_the_client_secret() {
        let c = ProviderConfig::new("https://idp.example", "steward")
            .with_client_secret(SecretString::from("hunter2-very-secret"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
        assert!(shown.contains("steward"), "{shown}");
    }

    #[test]
    fn defaults_and_audience_falls_back_to_client_id() {
        let c: ProviderConfig =
            serde_json::from_value(serde_json::json!({"issuer": "https://idp.example", "client_id": "steward"}))
                .unwrap();
        let c = c.checked().unwrap();
        assert_eq!(c.audience, vec!["steward".to_owned()]);
        assert_eq!(c.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(c.leeway_seconds, 60);
        assert_eq!(c.jwks_min_refresh_seconds, 30);
    }

    #[test]
    fn hmac_and_none_are_refused() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512, Algorithm::EdDSA, Algorithm::ES384] {
            let c = ProviderConfig::new("https://idp.example", "steward").with_algorithms(vec![Algorithm::RS256, alg]);
            assert!(matches!(c.checked(), Err(ConfigError::Algorithm(_))), "{alg:?}");
        }
        // `none` is not even an algorithm name that parses.
        let r: Result<ProviderConfig, _> = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example", "client_id": "steward", "algorithms": ["none"]}));
        assert!(r.is_err());
        let c = ProviderConfig::new("https://idp.example", "steward").with_algorithms(vec![]);
        assert!(c.checked().is_err());
    }

    #[test]
    fn issuer_must_be_https_off_loopback() {
        assert!(ProviderConfig::new("http://idp.example", "s").checked().is_err());
        assert!(ProviderConfig::new("http://127.0.0.1:8080", "s").checked().is_ok());
        assert!(ProviderConfig::new("http://[::1]:8080/tenant", "s").checked().is_ok());
        assert!(ProviderConfig::new("http://localhost:8080", "s").checked().is_ok());
        assert!(ProviderConfig::new("https://idp.example/tenant/v2.0", "s").checked().is_ok());
        assert!(ProviderConfig::new("https://idp.example/", "s").checked().is_err());
        assert!(ProviderConfig::new("ftp://idp.example", "s").checked().is_err());
        assert!(ProviderConfig::new("https://user:pw@idp.example", "s").checked().is_err());
        assert!(ProviderConfig::new("not a url", "s").checked().is_err());
        assert!(ProviderConfig::new("https://idp.example", " ").checked().is_err());
    }
}
