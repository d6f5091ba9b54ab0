//! The authorization-code sign-in with PKCE (S256), state and nonce, through the
//! `openidconnect` crate: the authorization URL and the server-side `PendingSignIn` that goes
//! with it, then the code exchange and the ID-token checks (signature through our JWKS cache,
//! nonce, `iss`, `aud`, `exp` at the time passed in).

use std::borrow::Cow;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdTokenVerifier, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessTokenHash, AuthUrl, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, IssuerUrl, LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::http::{Adapter, HttpError};
use crate::provider::Provider;
use crate::token::{self, Expectations, TokenError, VerifiedToken};

/// What to ask of the provider beyond signing in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInOptions {
    /// Space-separated authentication context classes to request (step-up, e.g. `mfa`).
    pub acr_values: Option<String>,
    /// The longest time since the user last authenticated, in seconds; the ID token's
    /// `auth_time` is then required and checked.
    pub max_age: Option<u64>,
    /// Space-separated `prompt` values (`login`, `consent`, `select_account`, `none`).
    pub prompt: Option<String>,
    /// Who is expected to sign in.
    pub login_hint: Option<String>,
    /// Scopes beyond `openid profile email` (for instance the API's).
    pub scopes: Vec<String>,
}

/// A sign-in begun and not yet finished, kept server-side (keyed by its state) until the
/// browser comes back with a code. Serializable for the database; `Debug` hides its secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    #[serde(serialize_with = "expose")]
    state: SecretString,
    #[serde(serialize_with = "expose")]
    nonce: SecretString,
    #[serde(serialize_with = "expose")]
    pkce_verifier: SecretString,
    redirect_uri: String,
    max_age: Option<u64>,
    acr_values: Option<String>,
}

fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

impl PendingSignIn {
    /// The `state` sent to the provider: the key to store this under.
    pub fn state(&self) -> &str {
        self.state.expose_secret()
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The `acr_values` requested, to compare with what the ID token says was done.
    pub fn acr_values(&self) -> Option<&str> {
        self.acr_values.as_deref()
    }

    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("state", &"[REDACTED]")
            .field("nonce", &"[REDACTED]")
            .field("pkce_verifier", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .field("max_age", &self.max_age)
            .field("acr_values", &self.acr_values)
            .finish()
    }
}

/// A finished sign-in: who signed in (the ID token's claims) and the tokens the provider gave.
#[derive(Clone)]
pub struct SignedIn {
    /// The ID token's claims (signature, nonce, issuer, audience and expiry checked).
    pub claims: VerifiedToken,
    /// The ID token itself, for `id_token_hint` at sign-out.
    pub id_token: SecretString,
    pub access_token: SecretString,
    /// When the access token expires, if the provider said (`expires_in`).
    pub access_token_expires_at: Option<Timestamp>,
    /// The scopes granted, if the provider said.
    pub scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("claims", &self.claims)
            .field("id_token", &"[REDACTED]")
            .field("access_token", &"[REDACTED]")
            .field("access_token_expires_at", &self.access_token_expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a sign-in could not be finished. Messages are fit for logs and an error page; none
/// holds a code, token or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in request could not be formed: {0}")]
    Request(String),
    #[error("the sign-in answer does not belong to this sign-in (state mismatch)")]
    StateMismatch,
    #[error("the identity provider refused the authorization code: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    CodeRejected { error: String, description: Option<String> },
    #[error("the identity provider returned no ID token")]
    MissingIdToken,
    #[error("the ID token was refused: {0}")]
    IdToken(TokenError),
    #[error("the ID token was refused: its nonce does not match this sign-in")]
    NonceMismatch,
    #[error("the ID token was refused: the user authenticated too long ago for the max_age requested")]
    StaleAuthentication,
    #[error("the ID token was refused: its at_hash does not match the access token")]
    AccessTokenMismatch,
    #[error("the identity provider could not be reached: {0}")]
    ProviderUnavailable(String),
}

fn core_alg(alg: jsonwebtoken::Algorithm) -> Option<CoreJwsSigningAlgorithm> {
    use jsonwebtoken::Algorithm as A;
    Some(match alg {
        A::RS256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        A::RS384 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        A::RS512 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        A::PS256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        A::PS384 => CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        A::PS512 => CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        A::ES256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        _ => return None,
    })
}

fn to_chrono(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().unsigned_abs()).unwrap_or_default()
}

impl Provider {
    /// Starts a sign-in: the provider's authorization URL (code flow, PKCE S256, fresh state
    /// and nonce, `openid profile email` plus `options.scopes`) and what must be kept until the
    /// browser comes back to `redirect_uri`.
    pub fn begin_sign_in(
        &self,
        redirect_uri: &str,
        options: &SignInOptions,
    ) -> Result<(String, PendingSignIn), SignInError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| SignInError::Request(e.to_string()))?;
        let client = self.oidc_client()?.set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge);
        for scope in &options.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(acr) = &options.acr_values {
            for value in acr.split_whitespace() {
                request = request.add_auth_context_value(AuthenticationContextClass::new(value.to_owned()));
            }
        }
        if let Some(max_age) = options.max_age {
            request = request.set_max_age(Duration::from_secs(max_age));
        }
        if let Some(prompt) = &options.prompt {
            for value in prompt.split_whitespace() {
                request = request.add_prompt(match value {
                    "none" => CoreAuthPrompt::None,
                    "login" => CoreAuthPrompt::Login,
                    "consent" => CoreAuthPrompt::Consent,
                    "select_account" => CoreAuthPrompt::SelectAccount,
                    other => CoreAuthPrompt::Extension(other.to_owned()),
                });
            }
        }
        if let Some(hint) = &options.login_hint {
            request = request.set_login_hint(LoginHint::new(hint.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = PendingSignIn {
            state: SecretString::from(state.secret().clone()),
            nonce: SecretString::from(nonce.secret().clone()),
            pkce_verifier: SecretString::from(verifier.secret().clone()),
            redirect_uri: redirect_uri.to_owned(),
            max_age: options.max_age,
            acr_values: options.acr_values.clone(),
        };
        Ok((url.into(), pending))
    }

    /// Finishes a sign-in when the browser comes back with `code` and `returned_state`: checks
    /// the state (in constant time), exchanges the code (client secret by HTTP Basic, the PKCE
    /// verifier), and verifies the ID token at time `now`.
    ///
    /// `openidconnect` checks the ID token's signature (with the key its `kid` names, from our
    /// JWKS cache, refetched as for access tokens), issuer, audience, nonce, `auth_time`
    /// against `max_age`, and expiry against the time function we give it: `now` minus the
    /// configured leeway, since its own comparison has none. `nbf` and a future `iat` are
    /// then checked as for access tokens.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.config.issuer), err)]
    pub async fn finish_sign_in(
        &self,
        pending: &PendingSignIn,
        code: &str,
        returned_state: &str,
        now: Timestamp,
    ) -> Result<SignedIn, SignInError> {
        let expected = pending.state.expose_secret().as_bytes();
        if !bool::from(expected.ct_eq(returned_state.as_bytes())) {
            return Err(SignInError::StateMismatch);
        }
        let redirect =
            RedirectUrl::new(pending.redirect_uri.clone()).map_err(|e| SignInError::Request(e.to_string()))?;
        let client = self.oidc_client()?;
        let http = Adapter(&self.inner.http);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.expose_secret().to_owned()))
            .set_redirect_uri(Cow::Owned(redirect))
            .request_async(&http)
            .await
            .map_err(token_request_error)?;

        let id_token = response.id_token().ok_or(SignInError::MissingIdToken)?;
        let raw = id_token.to_string();
        let config = &self.inner.config;
        let header = token::read_header(&raw, &config.algorithms).map_err(SignInError::IdToken)?;
        let key = self.key_for(header.alg, &header.kid, now).await.map_err(SignInError::IdToken)?;
        let jwk: CoreJsonWebKey = serde_json::from_value(key.jwk.clone())
            .map_err(|e| SignInError::IdToken(TokenError::ProviderUnavailable(format!("unusable JWK: {e}"))))?;
        let leeway = SignedDuration::from_secs(i64::try_from(config.leeway_seconds).unwrap_or(i64::MAX));
        let exp_now = to_chrono(now.checked_sub(leeway).unwrap_or(now));
        let max_age = pending.max_age;
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(config.client_id.clone()),
            self.issuer_url()?,
            CoreJsonWebKeySet::new(vec![jwk]),
        )
        .set_allowed_algs(config.algorithms.iter().copied().filter_map(core_alg))
        .set_time_fn(move || exp_now)
        .set_auth_time_verifier_fn(move |auth_time| {
            let Some(max_age) = max_age else { return Ok(()) };
            let Some(auth_time) = auth_time else { return Err("auth_time is missing".into()) };
            let age = now.as_second().saturating_sub(auth_time.timestamp());
            let allowed = i64::try_from(max_age).unwrap_or(i64::MAX).saturating_add(leeway.as_secs());
            if age > allowed { Err("the authentication is older than max_age".into()) } else { Ok(()) }
        });
        let nonce = Nonce::new(pending.nonce.expose_secret().to_owned());
        let verified = id_token.claims(&verifier, &nonce).map_err(claims_error)?;

        if let Some(expected) = verified.access_token_hash() {
            let alg =
                id_token.signing_alg().map_err(|e| claims_error(ClaimsVerificationError::SignatureVerification(e)))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| claims_error(ClaimsVerificationError::SignatureVerification(e)))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|_| SignInError::AccessTokenMismatch)?;
            if actual.as_bytes().ct_eq(expected.as_bytes()).unwrap_u8() != 1 {
                return Err(SignInError::AccessTokenMismatch);
            }
        }

        let claims = token::check_claims(
            token::payload(&raw).map_err(SignInError::IdToken)?,
            &Expectations {
                issuer: &config.issuer,
                audiences: std::slice::from_ref(&config.client_id),
                now,
                leeway_seconds: config.leeway_seconds,
            },
        )
        .map_err(SignInError::IdToken)?;
        let access_token_expires_at =
            response.expires_in().and_then(|d| SignedDuration::try_from(d).ok()).and_then(|d| now.checked_add(d).ok());
        Ok(SignedIn {
            claims,
            id_token: SecretString::from(raw),
            access_token: SecretString::from(response.access_token().secret().clone()),
            access_token_expires_at,
            scopes: response.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()),
        })
    }

    fn issuer_url(&self) -> Result<IssuerUrl, SignInError> {
        IssuerUrl::new(self.inner.config.issuer.clone()).map_err(|e| SignInError::Request(e.to_string()))
    }

    /// `openidconnect`'s client for this provider. Its key set is empty: ID tokens are checked
    /// by a verifier built per sign-in from our JWKS cache.
    fn oidc_client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
        >,
        SignInError,
    > {
        let meta = &self.inner.metadata;
        let auth = AuthUrl::from_url(meta.authorization_endpoint.clone());
        let token = TokenUrl::from_url(meta.token_endpoint.clone());
        let mut client = CoreClient::new(
            ClientId::new(self.inner.config.client_id.clone()),
            self.issuer_url()?,
            CoreJsonWebKeySet::new(Vec::new()),
        )
        .set_auth_uri(auth)
        .set_token_uri(token)
        .set_auth_type(openidconnect::AuthType::BasicAuth);
        if let Some(secret) = &self.inner.config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        Ok(client)
    }
}

fn token_request_error(e: RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>) -> SignInError {
    match e {
        RequestTokenError::ServerResponse(r) => SignInError::CodeRejected {
            error: r.error().as_ref().to_owned(),
            description: r.error_description().map(|d| d.chars().take(200).collect()),
        },
        RequestTokenError::Request(e) => SignInError::ProviderUnavailable(e.to_string()),
        RequestTokenError::Parse(e, _) => {
            SignInError::ProviderUnavailable(format!("the token endpoint's answer could not be read: {e}"))
        }
        RequestTokenError::Other(e) => SignInError::ProviderUnavailable(format!("the token endpoint answered: {e}")),
    }
}

fn claims_error(e: ClaimsVerificationError) -> SignInError {
    let token_error = match e {
        ClaimsVerificationError::Expired(_) => TokenError::Expired,
        ClaimsVerificationError::InvalidAudience(_) => TokenError::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => TokenError::WrongIssuer,
        ClaimsVerificationError::InvalidNonce(_) => return SignInError::NonceMismatch,
        ClaimsVerificationError::InvalidAuthTime(_) => return SignInError::StaleAuthentication,
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::DisallowedAlg(a) | SignatureVerificationError::UnsupportedAlg(a) => {
                TokenError::AlgorithmNotAllowed(a.chars().take(40).collect())
            }
            SignatureVerificationError::NoMatchingKey | SignatureVerificationError::AmbiguousKeyId(_) => {
                TokenError::UnknownKey
            }
            _ => TokenError::BadSignature,
        },
        other => TokenError::Malformed(other.to_string().chars().take(120).collect()),
    };
    SignInError::IdToken(token_error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    fn pending() -> PendingSignIn {
        PendingSignIn {
            state: SecretString::from("state-abc-123"),
            nonce: SecretString::from("nonce-def-456"),
            pkce_verifier: SecretString::from("verifier-ghi-789"),
            redirect_uri: "https://steward.example/auth/callback".into(),
            max_age: Some(300),
            acr_values: Some("mfa".into()),
        }
    }

    #[test]
    fn pending_sign_in_debug_hides_its_secrets() {
        let shown = format!("{:?}", pending());
        for secret in ["state-abc", "nonce-def", "verifier-ghi"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("auth/callback"), "{shown}");
    }

    #[test]
    fn pending_sign_in_round_trips_through_json() {
        let json = serde_json::to_string(&pending()).unwrap();
        let back: PendingSignIn = serde_json::from_str(&json).unwrap();
        assert_eq!(back.state(), "state-abc-123");
        assert_eq!(back.pkce_verifier.expose_secret(), "verifier-ghi-789");
        assert_eq!(back.nonce.expose_secret(), "nonce-def-456");
        assert_eq!(back.max_age(), Some(300));
        assert_eq!(back.acr_values(), Some("mfa"));
    }

    #[test]
    fn signed_in_debug_hides_the_tokens() {
        let claims = crate::token::check_claims(
            serde_json::json!({"iss": "i", "aud": "a", "sub": "s", "exp": 100}).as_object().unwrap().clone(),
            &Expectations {
                issuer: "i",
                audiences: &["a".to_owned()],
                now: Timestamp::from_second(50).unwrap(),
                leeway_seconds: 0,
            },
        )
        .unwrap();
        let s = SignedIn {
            claims,
            id_token: SecretString::from("eyJ-id-token"),
            access_token: SecretString::from("eyJ-access-token"),
            access_token_expires_at: None,
            scopes: None,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("eyJ-"), "{shown}");
    }

    #[test]
    fn every_allowed_algorithm_maps_to_openidconnect() {
        use jsonwebtoken::Algorithm as A;
        for alg in [A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512, A::ES256] {
            assert!(crate::config::is_supported(alg));
            assert!(core_alg(alg).is_some(), "{alg:?}");
        }
        assert!(core_alg(A::HS256).is_none());
    }
}
