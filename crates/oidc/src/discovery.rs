//! OpenID Connect discovery: reading `{issuer}/.well-known/openid-configuration`, insisting
//! that it names exactly the configured issuer, and keeping the endpoints Steward uses.

use reqwest::Url;
use serde_json::Value;

use crate::config::check_endpoint;
use crate::http;

/// The endpoints of a discovered provider.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    pub end_session_endpoint: Option<Url>,
    pub jwks_uri: Url,
}

/// Why a provider could not be discovered.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error("the identity provider could not be reached: {0}")]
    Unavailable(String),
    #[error("the identity provider's discovery document names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the identity provider's discovery document is not usable: {0}")]
    Invalid(String),
}

/// The discovery URL of `issuer` (OpenID Connect Discovery 1.0 §4: the path is appended).
pub(crate) fn discovery_url(issuer: &str) -> Result<Url, DiscoveryError> {
    Url::parse(&format!("{issuer}/.well-known/openid-configuration"))
        .map_err(|e| DiscoveryError::Invalid(format!("the discovery URL cannot be formed: {e}")))
}

pub(crate) async fn discover(client: &reqwest::Client, issuer: &str) -> Result<Metadata, DiscoveryError> {
    let url = discovery_url(issuer)?;
    let doc = http::get_json(client, &url).await.map_err(|e| DiscoveryError::Unavailable(e.to_string()))?;
    parse(&doc, issuer)
}

/// The metadata of a discovery document that names `issuer` exactly.
pub(crate) fn parse(doc: &Value, issuer: &str) -> Result<Metadata, DiscoveryError> {
    let found = doc.get("issuer").and_then(Value::as_str).unwrap_or_default();
    if found != issuer {
        return Err(DiscoveryError::IssuerMismatch { expected: issuer.to_owned(), found: found.to_owned() });
    }
    let endpoint = |name: &str| -> Result<Option<Url>, DiscoveryError> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                check_endpoint(name, s).map(Some).map_err(|e| DiscoveryError::Invalid(e.to_string()))
            }
            Some(_) => Err(DiscoveryError::Invalid(format!("{name} is not a string"))),
        }
    };
    let required = |name: &str| -> Result<Url, DiscoveryError> {
        endpoint(name)?.ok_or_else(|| DiscoveryError::Invalid(format!("{name} is missing")))
    };
    if let Some(types) = doc.get("response_types_supported").and_then(Value::as_array)
        && !types.iter().any(|t| t.as_str() == Some("code"))
    {
        return Err(DiscoveryError::Invalid("the provider does not support the authorization code flow".into()));
    }
    Ok(Metadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: required("authorization_endpoint")?,
        token_endpoint: required("token_endpoint")?,
        userinfo_endpoint: endpoint("userinfo_endpoint")?,
        end_session_endpoint: endpoint("end_session_endpoint")?,
        jwks_uri: required("jwks_uri")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "issuer": "https://idp.example/t1",
            "authorization_endpoint": "https://idp.example/t1/authorize",
            "token_endpoint": "https://idp.example/t1/token",
            "userinfo_endpoint": "https://idp.example/t1/userinfo",
            "jwks_uri": "https://keys.idp.example/t1/jwks",
            "response_types_supported": ["code", "id_token"],
        })
    }

    #[test]
    fn reads_the_endpoints() {
        let m = parse(&doc(), "https://idp.example/t1").unwrap();
        assert_eq!(m.token_endpoint.as_str(), "https://idp.example/t1/token");
        assert_eq!(m.jwks_uri.as_str(), "https://keys.idp.example/t1/jwks");
        assert!(m.end_session_endpoint.is_none());
        assert_eq!(
            discovery_url("https://idp.example/t1").unwrap().as_str(),
            "https://idp.example/t1/.well-known/openid-configuration"
        );
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        for configured in ["https://idp.example/t1/", "https://IDP.example/t1", "https://idp.example/t2"] {
            assert!(matches!(parse(&doc(), configured), Err(DiscoveryError::IssuerMismatch { .. })), "{configured}");
        }
        let mut d = doc();
        d.as_object_mut().unwrap().remove("issuer");
        assert!(matches!(parse(&d, "https://idp.example/t1"), Err(DiscoveryError::IssuerMismatch { .. })));
    }

    #[test]
    fn endpoints_must_be_present_and_safe() {
        for (field, value) in [
            ("jwks_uri", Value::Null),
            ("token_endpoint", json!("http://idp.example/token")),
            ("authorization_endpoint", json!(42)),
            ("end_session_endpoint", json!("javascript:alert(1)")),
            ("response_types_supported", json!(["id_token"])),
        ] {
            let mut d = doc();
            d[field] = value;
            assert!(matches!(parse(&d, "https://idp.example/t1"), Err(DiscoveryError::Invalid(_))), "{field}");
        }
    }
}
