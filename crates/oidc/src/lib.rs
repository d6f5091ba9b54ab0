//! Everything Steward says to an OpenID Connect provider: discovery, the provider's signing
//! keys (a JWKS cache that refetches, rate-limited, on an unknown `kid`), verification of API
//! access tokens with a time passed in, and the authorization-code sign-in with PKCE, state
//! and nonce (through `openidconnect`, over our own reqwest client that never follows
//! redirects). No other crate of Steward talks to the provider.
//!
//! ```no_run
//! # async fn f(now: jiff::Timestamp, bearer: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use steward_oidc::{Provider, ProviderConfig, SignInOptions};
//! let http = steward_oidc::http_client(std::time::Duration::from_secs(10))?;
//! let provider = Provider::discover(ProviderConfig::new("https://idp.example", "steward"), http).await?;
//! let user = provider.verify_access_token(bearer, now).await?;
//! let (url, pending) = provider.begin_sign_in("https://steward.example/auth/callback", &SignInOptions::default())?;
//! # Ok(()) }
//! ```

mod config;
mod discovery;
mod http;
mod jwks;
mod provider;
mod signin;
mod token;

pub use config::{ConfigError, ProviderConfig};
pub use discovery::{DiscoveryError, Metadata};
pub use http::{HttpError, MAX_BODY_BYTES, http_client};
pub use jsonwebtoken::Algorithm;
pub use provider::{Provider, install_crypto_provider};
pub use signin::{PendingSignIn, SignInError, SignInOptions, SignedIn};
pub use token::{TokenError, VerifiedToken};

/// The futures handlers await must be `Send` (axum runs them on a multi-threaded runtime).
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send(provider: &Provider, pending: &PendingSignIn) {
    fn is_send<T: Send>(_: T) {}
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Provider>();
    is_send(provider.verify_access_token("", jiff::Timestamp::UNIX_EPOCH));
    is_send(provider.finish_sign_in(pending, "", "", jiff::Timestamp::UNIX_EPOCH));
    is_send(provider.refresh_keys(jiff::Timestamp::UNIX_EPOCH));
}
