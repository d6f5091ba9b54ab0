//! `Provider`: one discovered OpenID Connect provider — its endpoints, its key cache, and the
//! verification of API access tokens against them with a time passed in.

use std::sync::Arc;

use jiff::Timestamp;
use jsonwebtoken::{Algorithm, Validation};
use reqwest::Url;
use serde_json::{Map, Value};

use crate::config::ProviderConfig;
use crate::discovery::{self, DiscoveryError, Metadata};
use crate::jwks::{Jwks, Lookup, PublicKey};
use crate::token::{self, Expectations, TokenError, VerifiedToken};

/// A discovered provider. Cheap to clone; clones share the key cache.
#[derive(Clone)]
pub struct Provider {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ProviderConfig,
    pub(crate) metadata: Metadata,
    pub(crate) http: reqwest::Client,
    pub(crate) jwks: Jwks,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("config", &self.inner.config).field("metadata", &self.inner.metadata).finish()
    }
}

/// Installs aws-lc-rs as jsonwebtoken's crypto provider for this process (the one backend
/// the workspace compiles). Called by [`Provider::discover`]; harmless to call again.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already (by an earlier call).
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

impl Provider {
    /// Discovers the provider of `config`: its discovery document (which must name exactly the
    /// configured issuer) and its JWKS. `http` should come from [`crate::http_client`]: it must
    /// not follow redirects (responses from another URL are refused in any case).
    #[tracing::instrument(skip_all, fields(issuer = %config.issuer), err)]
    pub async fn discover(config: ProviderConfig, http: reqwest::Client) -> Result<Self, DiscoveryError> {
        install_crypto_provider();
        let config = config.checked()?;
        let metadata = discovery::discover(&http, &config.issuer).await?;
        let jwks = Jwks::fetch(&http, metadata.jwks_uri.clone(), config.jwks_min_refresh_seconds)
            .await
            .map_err(DiscoveryError::Unavailable)?;
        Ok(Self { inner: Arc::new(Inner { config, metadata, http, jwks }) })
    }

    /// The configuration, checked (audience filled in).
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// The discovered endpoints.
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    pub fn jwks_uri(&self) -> &Url {
        self.inner.jwks.uri()
    }

    /// How many times the JWKS has been fetched since discovery (discovery's own fetch
    /// included): for metrics and tests of the refetch rate limit.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks.fetches()
    }

    /// Fetches the JWKS now, whatever the rate limit; the number of usable keys. Keys the
    /// provider stopped publishing are no longer accepted afterwards.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.config.issuer), err)]
    pub async fn refresh_keys(&self, now: Timestamp) -> Result<usize, TokenError> {
        self.inner.jwks.refresh(&self.inner.http, now).await.map_err(TokenError::ProviderUnavailable)
    }

    /// The key a token's header names, refetching the JWKS (rate-limited) when it is unknown,
    /// and checked to fit the header's algorithm.
    pub(crate) async fn key_for(
        &self,
        alg: Algorithm,
        kid: &str,
        now: Timestamp,
    ) -> Result<Arc<PublicKey>, TokenError> {
        let key = match self.inner.jwks.key(&self.inner.http, kid, now).await {
            Ok(Lookup::Found(key)) => key,
            Ok(Lookup::Unknown) => return Err(TokenError::UnknownKey),
            Err(e) => return Err(TokenError::ProviderUnavailable(e)),
        };
        // The algorithm must be one the key can make: an RS256 header on an EC key, or (were
        // HMAC ever allowed) HS256 "signed" with an RSA public key, is refused here.
        if !key.kind.fits(alg) {
            return Err(TokenError::AlgorithmNotAllowed(format!("{alg:?} does not fit the key {kid:?}")));
        }
        if let Some(key_alg) = &key.alg
            && key_alg != &format!("{alg:?}")
        {
            return Err(TokenError::AlgorithmNotAllowed(format!("{alg:?}, but the key {kid:?} is for {key_alg}")));
        }
        Ok(key)
    }

    /// Verifies an API access token (a JWT bearer token) at time `now`: header `alg` in the
    /// allow-list and fitting the key its `kid` names, signature, `exp` (required) and `nbf`
    /// with leeway, `iss` exactly the issuer, `aud` one of the accepted audiences.
    #[tracing::instrument(level = "debug", skip_all, fields(issuer = %self.inner.config.issuer))]
    pub async fn verify_access_token(&self, token: &str, now: Timestamp) -> Result<VerifiedToken, TokenError> {
        let config = &self.inner.config;
        let header = token::read_header(token, &config.algorithms)?;
        let key = self.key_for(header.alg, &header.kid, now).await?;
        let claims = verify_signature(token, header.alg, &key)?;
        token::check_claims(
            claims,
            &Expectations {
                issuer: &config.issuer,
                audiences: &config.audience,
                now,
                leeway_seconds: config.leeway_seconds,
            },
        )
    }

    /// Where to send the browser to sign out at the provider, when it has an
    /// `end_session_endpoint` (RP-Initiated Logout 1.0): with `id_token_hint` (the ID token of
    /// the sign-in) and `post_logout_redirect_uri`, which the provider must have registered.
    pub fn logout_url(&self, id_token_hint: Option<&str>, post_logout_redirect_uri: Option<&str>) -> Option<String> {
        let mut url = self.inner.metadata.end_session_endpoint.clone()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            if let Some(uri) = post_logout_redirect_uri {
                q.append_pair("post_logout_redirect_uri", uri);
            }
            q.append_pair("client_id", &self.inner.config.client_id);
        }
        Some(url.into())
    }
}

/// The claims of `token` if `key` made its signature with `alg`. jsonwebtoken checks the
/// signature only: its own `exp`/`nbf`/`aud`/`iss` checks are off (they read the system
/// clock); [`token::check_claims`] does them with the time passed in.
pub(crate) fn verify_signature(token: &str, alg: Algorithm, key: &PublicKey) -> Result<Map<String, Value>, TokenError> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName
            | jsonwebtoken::errors::ErrorKind::MissingAlgorithm
            | jsonwebtoken::errors::ErrorKind::UnsupportedAlgorithm => {
                TokenError::AlgorithmNotAllowed(format!("{alg:?}"))
            }
            jsonwebtoken::errors::ErrorKind::Base64(_)
            | jsonwebtoken::errors::ErrorKind::Json(_)
            | jsonwebtoken::errors::ErrorKind::Utf8(_)
            | jsonwebtoken::errors::ErrorKind::InvalidToken => TokenError::Malformed("it could not be decoded".into()),
            // A key the crypto library cannot use cannot have made the signature.
            _ => TokenError::BadSignature,
        }),
    }
}
