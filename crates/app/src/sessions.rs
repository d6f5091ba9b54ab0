//! Portal sessions: the sign-ins in flight between `/auth/login` and `/auth/callback`, and the
//! server-side sessions of users who signed in through the identity provider.
//!
//! Nothing secret is stored in the clear. A session is a random 32-byte token in the browser's
//! cookie; the store keeps its SHA-256. A sign-in in flight is kept under the SHA-256 of its
//! `state`, bound to the browser that began it by the SHA-256 of a second random cookie. What
//! must be kept (the provider's pending sign-in with its PKCE verifier and nonce, the ID token
//! for the logout hint) is sealed with AES-256-GCM under a key derived from the secret the
//! browser presents (the `state`, the session token), so the database alone opens nothing.
//!
//! A session ends at the earlier of its absolute expiry and its idle timeout after it was last
//! seen; `last_seen_at` is written at most once a minute (`TOUCH_EVERY`), to spare writes. An
//! ended session, or one whose user is disabled, is refused and deleted; a deleted user's
//! sessions go with them (foreign key). Time comes from the `Clock`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use steward_domain::ids::UserId;
use subtle::ConstantTimeEq;

use crate::auth::hash_secret;
use crate::identity::SignInFacts;
use crate::secrets::Sealer;
use crate::{AppError, Services};

/// How long a sign-in may take between `/auth/login` and `/auth/callback`.
pub const SIGN_IN_TTL: SignedDuration = SignedDuration::from_mins(10);
/// `last_seen_at` is written when it is at least this old: an idle timeout is then exact to
/// within a minute, and a busy session costs one write a minute, not one per request.
pub const TOUCH_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session not used for this long ends.
    pub idle: SignedDuration,
    /// A session ends this long after sign-in, however busy.
    pub absolute: SignedDuration,
}

impl Default for SessionPolicy {
    /// 30 minutes idle, 12 hours in all.
    fn default() -> Self {
        Self { idle: SignedDuration::from_mins(30), absolute: SignedDuration::from_hours(12) }
    }
}

/// A secret the browser holds (a session token, a sign-in's browser binding): 32 random bytes
/// in base64url. `Debug` never shows it.
#[derive(Clone)]
pub struct BrowserSecret(SecretString);

impl BrowserSecret {
    /// 32 random bytes from the operating system.
    pub fn generate() -> Result<Self, AppError> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AppError::Invalid(format!("no randomness available: {e}")))?;
        Ok(Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// A secret as the browser sent it back (a cookie's value).
    pub fn from_cookie(value: &str) -> Self {
        Self(SecretString::from(value.to_owned()))
    }

    /// The value for the cookie.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the store keeps: SHA-256, hex.
    pub fn hash(&self) -> String {
        hash_secret(self.0.expose_secret())
    }

    /// The session's anti-CSRF token: derived from the session token (one-way), so it needs no
    /// storage, is the same for the whole session, and cannot be made without the cookie,
    /// which scripts of other origins can neither read nor send along with a header.
    pub fn csrf_token(&self) -> String {
        URL_SAFE_NO_PAD.encode(derive("csrf", self.0.expose_secret()))
    }

    /// Whether `presented` is this session's anti-CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf_token().as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl fmt::Debug for BrowserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BrowserSecret([REDACTED])")
    }
}

/// SHA-256 over a purpose label and a secret: a key or token that is useless for any other
/// purpose and reveals nothing of the secret.
fn derive(purpose: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"steward-session\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

fn sealer_for(purpose: &str, secret: &str) -> Sealer {
    Sealer::from_key(&derive(purpose, secret))
}

/// A sign-in in flight, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSignIn {
    /// SHA-256 (hex) of the `state` sent to the provider.
    pub state_hash: String,
    /// SHA-256 (hex) of the binding cookie of the browser that began the sign-in.
    pub browser_hash: String,
    /// The provider's pending sign-in, sealed under a key derived from the state.
    pub sealed: String,
    /// Where to send the browser once signed in (a checked same-origin path).
    pub return_to: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl fmt::Debug for StoredSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSignIn")
            .field("return_to", &self.return_to)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A portal session, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the session token.
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute end.
    pub expires_at: Timestamp,
    pub idle_timeout: SignedDuration,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub auth_time: Option<Timestamp>,
    pub device_compliant: Option<bool>,
    /// The provider's ID token (for `id_token_hint` at logout), sealed under a key derived
    /// from the session token.
    pub id_token: Option<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .field("idle_timeout", &self.idle_timeout)
            .field("amr", &self.amr)
            .field("acr", &self.acr)
            .field("auth_time", &self.auth_time)
            .field("device_compliant", &self.device_compliant)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// When the session ends if it is not used again: the earlier of its absolute expiry and
    /// the idle timeout after it was last seen.
    pub fn ends_at(&self) -> Timestamp {
        let idle_end = self.last_seen_at.checked_add(self.idle_timeout).unwrap_or(self.expires_at);
        idle_end.min(self.expires_at)
    }

    /// The facts of the sign-in behind the session (its address is the web layer's to add).
    pub fn facts(&self) -> SignInFacts {
        SignInFacts {
            amr: self.amr.clone(),
            acr: self.acr.clone(),
            auth_time: self.auth_time,
            device_compliant: self.device_compliant,
            source: None,
        }
    }
}

/// Why a sign-in's callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInRefused {
    #[error("This sign-in is unknown: it was already finished, or never began here. Start again.")]
    Unknown,
    #[error("This sign-in took too long (more than 10 minutes) and has expired. Start again.")]
    Expired,
    #[error("This sign-in was begun in another browser (or its cookie is missing). Start again.")]
    OtherBrowser,
    #[error(transparent)]
    App(#[from] AppError),
}

/// Why a session was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionRefused {
    #[error("The session is not valid; sign in again.")]
    Unknown,
    #[error("The session has expired; sign in again.")]
    Expired,
    #[error("The user account is disabled.")]
    Disabled,
    #[error(transparent)]
    App(#[from] AppError),
}

/// Keeps a sign-in begun now: `pending` (the provider's pending sign-in, serialized) sealed
/// under `state`, bound to the browser holding `browser`, until `SIGN_IN_TTL` from now.
pub async fn remember_sign_in(
    s: &Services,
    state: &str,
    browser: &BrowserSecret,
    pending: &SecretString,
    return_to: &str,
) -> Result<(), AppError> {
    let now = s.clock.now();
    let sealed = sealer_for("sign-in", state)
        .seal("sign-in", pending)
        .map_err(|e| AppError::Invalid(format!("the sign-in could not be kept: {e}")))?;
    let row = StoredSignIn {
        state_hash: hash_secret(state),
        browser_hash: browser.hash(),
        sealed,
        return_to: return_to.to_owned(),
        created_at: now,
        expires_at: now.checked_add(SIGN_IN_TTL).unwrap_or(now),
    };
    s.store.insert_sign_in(&row).await?;
    Ok(())
}

/// A sign-in taken back at its callback: the provider's pending sign-in and where to go next.
#[derive(Debug)]
pub struct TakenSignIn {
    pub pending: SecretString,
    pub return_to: String,
}

/// Takes the sign-in whose `state` came back, once: the row is deleted whatever happens next,
/// so a replayed callback finds nothing. Refused when unknown, expired, or begun by another
/// browser than the one presenting `browser`.
pub async fn take_sign_in(
    s: &Services,
    state: &str,
    browser: Option<&BrowserSecret>,
) -> Result<TakenSignIn, SignInRefused> {
    let now = s.clock.now();
    let row = s.store.take_sign_in(&hash_secret(state)).await.map_err(AppError::from)?.ok_or(SignInRefused::Unknown)?;
    if now >= row.expires_at {
        return Err(SignInRefused::Expired);
    }
    let same_browser = browser.is_some_and(|b| bool::from(b.hash().as_bytes().ct_eq(row.browser_hash.as_bytes())));
    if !same_browser {
        return Err(SignInRefused::OtherBrowser);
    }
    let pending = sealer_for("sign-in", state).open("sign-in", &row.sealed).map_err(|_| SignInRefused::Unknown)?;
    Ok(TakenSignIn { pending, return_to: row.return_to })
}

/// Starts a session for `user`, signed in with `facts`; keeps `id_token` (sealed) for the
/// logout hint. Returns the token for the cookie, shown this once.
pub async fn start(
    s: &Services,
    policy: &SessionPolicy,
    user: UserId,
    facts: &SignInFacts,
    id_token: Option<&SecretString>,
) -> Result<(BrowserSecret, Session), AppError> {
    let token = BrowserSecret::generate()?;
    let now = s.clock.now();
    let id_token = match id_token {
        Some(t) => Some(
            sealer_for("id-token", token.expose())
                .seal("id-token", t)
                .map_err(|e| AppError::Invalid(format!("the session could not be kept: {e}")))?,
        ),
        None => None,
    };
    let session = Session {
        id_hash: token.hash(),
        user_id: user,
        created_at: now,
        last_seen_at: now,
        expires_at: now.checked_add(policy.absolute).unwrap_or(now),
        idle_timeout: policy.idle,
        amr: facts.amr.clone(),
        acr: facts.acr.clone(),
        auth_time: facts.auth_time,
        device_compliant: facts.device_compliant,
        id_token,
    };
    s.store.insert_session(&session).await?;
    // Access reviews recommend removing access of people who have not signed in for long.
    if let Err(e) = s.store.note_sign_in(user, now).await {
        tracing::warn!(user = %user, error = %e, "the sign-in could not be noted");
    }
    tracing::info!(user = %user, "portal session started");
    Ok((token, session))
}

/// The session of `token`, if it is still valid now: unknown, ended (idle or absolute) and
/// disabled users' sessions are refused, and the last two deleted. Marks it seen when
/// `TOUCH_EVERY` has passed since it last was.
pub async fn resume(s: &Services, token: &BrowserSecret) -> Result<Session, SessionRefused> {
    let hash = token.hash();
    let Some((mut session, enabled)) = s.store.session(&hash).await.map_err(AppError::from)? else {
        return Err(SessionRefused::Unknown);
    };
    let now = s.clock.now();
    if !enabled {
        s.store.delete_session(&hash).await.map_err(AppError::from)?;
        return Err(SessionRefused::Disabled);
    }
    if now >= session.ends_at() {
        s.store.delete_session(&hash).await.map_err(AppError::from)?;
        return Err(SessionRefused::Expired);
    }
    if now.duration_since(session.last_seen_at) >= TOUCH_EVERY {
        session.last_seen_at = now;
        s.store.touch_session(&hash, now, session.ends_at()).await.map_err(AppError::from)?;
        // Using the portal is activity too (at most once a minute, with the touch).
        if let Err(e) = s.store.note_sign_in(session.user_id, now).await {
            tracing::warn!(user = %session.user_id, error = %e, "the sign-in could not be noted");
        }
    }
    Ok(session)
}

/// Ends the session of `token` (signing out); the ID token it kept, for the provider's logout.
pub async fn end(s: &Services, token: &BrowserSecret) -> Result<Option<SecretString>, AppError> {
    let hash = token.hash();
    let session = s.store.session(&hash).await?;
    s.store.delete_session(&hash).await?;
    let id_token = session
        .and_then(|(session, _)| session.id_token)
        .and_then(|sealed| sealer_for("id-token", token.expose()).open("id-token", &sealed).ok());
    Ok(id_token)
}

/// Deletes the sign-ins and sessions that have ended by `now`; how many.
pub async fn sweep(s: &Services, now: Timestamp) -> Result<u64, AppError> {
    Ok(s.store.sweep_sessions(now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_derive_one_way() {
        let t = BrowserSecret::generate().unwrap();
        assert_eq!(t.expose().len(), 43, "32 bytes in base64url");
        assert!(!format!("{t:?}").contains(t.expose()));
        assert_ne!(t.expose(), BrowserSecret::generate().unwrap().expose());
        let csrf = t.csrf_token();
        assert!(t.csrf_matches(&csrf));
        assert!(!t.csrf_matches(&t.hash()) && !t.csrf_matches("") && !t.csrf_matches(t.expose()));
        assert_ne!(csrf, BrowserSecret::generate().unwrap().csrf_token());
        let back = BrowserSecret::from_cookie(t.expose());
        assert_eq!(back.hash(), t.hash());
    }

    #[test]
    fn a_session_ends_at_the_earlier_of_idle_and_absolute() {
        let at = |s: i64| Timestamp::from_second(1_900_000_000 + s).unwrap();
        let mut s = Session {
            id_hash: "h".into(),
            user_id: UserId::new(),
            created_at: at(0),
            last_seen_at: at(0),
            expires_at: at(3600),
            idle_timeout: SignedDuration::from_secs(600),
            amr: vec!["pwd".into()],
            acr: None,
            auth_time: None,
            device_compliant: None,
            id_token: Some("sealed-id-token".into()),
        };
        assert_eq!(s.ends_at(), at(600));
        s.last_seen_at = at(3500);
        assert_eq!(s.ends_at(), at(3600));
        assert!(!format!("{s:?}").contains("sealed-id-token"));
    }

    #[test]
    fn sealed_values_open_only_with_the_browsers_secret() {
        let state = "state-1";
        let sealed = sealer_for("sign-in", state).seal("sign-in", &SecretString::from("pending")).unwrap();
        assert!(!sealed.contains("pending"));
        assert_eq!(sealer_for("sign-in", state).open("sign-in", &sealed).unwrap().expose_secret(), "pending");
        assert!(sealer_for("sign-in", "state-2").open("sign-in", &sealed).is_err());
        assert!(sealer_for("id-token", state).open("sign-in", &sealed).is_err());
    }
}
