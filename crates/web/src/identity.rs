//! The identity provider as the app sees it: `steward_oidc::Provider` behind the app's
//! `TokenVerifier` port, discovered on first use (so Steward starts while the provider is
//! still starting, and retries discovery until it answers).

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use steward_app::identity::{Identity, TokenVerifier, VerifyError};
use steward_oidc::{Provider, ProviderConfig, TokenError, VerifiedToken};
use tokio::sync::OnceCell;

/// The configured provider, discovered when first needed.
#[derive(Clone)]
pub struct IdentityProvider {
    config: ProviderConfig,
    http: reqwest::Client,
    provider: Arc<OnceCell<Provider>>,
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider").field("issuer", &self.config.issuer).finish()
    }
}

impl IdentityProvider {
    /// Checks the configuration now; talks to the provider only when first needed.
    pub fn new(config: ProviderConfig) -> Result<Self, String> {
        let config = config.checked().map_err(|e| e.to_string())?;
        let http = steward_oidc::http_client(std::time::Duration::from_secs(10)).map_err(|e| e.to_string())?;
        Ok(Self { config, http, provider: Arc::new(OnceCell::new()) })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The discovered provider; discovery is retried on the next call after a failure.
    pub async fn provider(&self) -> Result<&Provider, String> {
        self.provider
            .get_or_try_init(|| Provider::discover(self.config.clone(), self.http.clone()))
            .await
            .map_err(|e| e.to_string())
    }
}

pub(crate) fn identity_of(t: VerifiedToken) -> Identity {
    Identity { subject: t.sub, name: t.name, amr: t.amr, acr: t.acr, auth_time: t.auth_time, claims: t.extra }
}

#[async_trait]
impl TokenVerifier for IdentityProvider {
    async fn verify(&self, token: &str, now: Timestamp) -> Result<Identity, VerifyError> {
        let provider = self.provider().await.map_err(VerifyError::Unavailable)?;
        match provider.verify_access_token(token, now).await {
            Ok(t) => Ok(identity_of(t)),
            Err(TokenError::ProviderUnavailable(m)) => Err(VerifyError::Unavailable(m)),
            Err(e) => Err(VerifyError::Invalid(e.to_string())),
        }
    }
}
