//! Who is calling and what they may do. API tokens are random secrets shown once and kept only
//! as SHA-256 hashes; a token either acts as a global administrator or as one directory user.
//! Privileged use cases take a capability value (`AdminCap`) that only `Principal::admin`
//! hands out, so a forgotten check is a type error rather than a hole; the capability also
//! says which administrator holds it, for the audit trail.

use std::fmt;

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use steward_domain::ids::{TokenId, UserId};
use subtle::ConstantTimeEq;

use crate::lifecycle::Actor;
use crate::{AppError, Services};

/// A stored API token: never the secret, only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    /// Lowercase hex SHA-256 of the secret.
    pub hash: String,
    /// `None`: a global-administrator token; `Some`: acts as that directory user.
    pub user_id: Option<UserId>,
    pub created_at: Timestamp,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("hash", &"[REDACTED]")
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// A token secret in the clear: printed once at creation, never logged.
#[derive(Clone)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// 32 random bytes from the operating system, hex-encoded behind a recognisable prefix.
    pub fn generate() -> Result<Self, AppError> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AppError::Invalid(format!("no randomness available: {e}")))?;
        Ok(Self(format!("stw_{}", hex(&bytes))))
    }
    pub fn from_string(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret([REDACTED])")
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 of a token secret, hex.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A global administrator, through a stored token or the bootstrap token.
    Admin { token: Option<TokenId> },
    /// A directory user, through a personal token.
    User { user: UserId, token: TokenId },
}

/// Proof that the caller is a global administrator, naming which one so that the changes it
/// authorizes can be audited. Only `Principal::admin` (and `local_operator`, for the command
/// line) makes one.
#[derive(Debug, Clone, Copy)]
pub struct AdminCap(Holder);

/// Who holds an `AdminCap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Token(TokenId),
    Bootstrap,
    LocalOperator,
}

impl AdminCap {
    /// The holder, labelled as `Principal::label` labels them ("admin-token:…",
    /// "bootstrap-admin"), or "local-operator" for the command line.
    pub fn label(self) -> String {
        match self.0 {
            Holder::Token(t) => format!("admin-token:{t}"),
            Holder::Bootstrap => "bootstrap-admin".to_owned(),
            Holder::LocalOperator => "local-operator".to_owned(),
        }
    }

    /// The holder as the cause of a change, for the audit trail.
    pub fn actor(self) -> Actor {
        Actor::Admin(self.label())
    }
}

/// Proof that the caller is a signed-in directory user, acting as themselves (requesting,
/// approving, cancelling their own requests). Only `Principal::user` makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCap(UserId);

impl UserCap {
    pub fn id(self) -> UserId {
        self.0
    }
}

/// Proof that the caller may read the directory (every signed-in principal may, as in Entra).
#[derive(Debug, Clone, Copy)]
pub struct DirectoryReadCap(());

impl Principal {
    pub fn admin(&self) -> Result<AdminCap, AppError> {
        match self {
            Self::Admin { token: Some(t) } => Ok(AdminCap(Holder::Token(*t))),
            Self::Admin { token: None } => Ok(AdminCap(Holder::Bootstrap)),
            Self::User { .. } => Err(AppError::Forbidden(
                "Insufficient privileges to complete the operation: it needs the global administrator role.".into(),
            )),
        }
    }
    pub fn user(&self) -> Result<UserCap, AppError> {
        match self {
            Self::User { user, .. } => Ok(UserCap(*user)),
            Self::Admin { .. } => Err(AppError::Forbidden(
                "This action is taken by a signed-in user for themselves; an administrator token is not a user \
                 (administrators use adminAdd, adminUpdate and adminRemove)."
                    .into(),
            )),
        }
    }
    pub fn directory_reader(&self) -> DirectoryReadCap {
        DirectoryReadCap(())
    }
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { user, .. } => Some(*user),
            Self::Admin { .. } => None,
        }
    }
    /// A short label for logs and audit ("admin-token:…", "user:…").
    pub fn label(&self) -> String {
        match self {
            Self::Admin { token: Some(t) } => format!("admin-token:{t}"),
            Self::Admin { token: None } => "bootstrap-admin".to_owned(),
            Self::User { user, .. } => format!("user:{user}"),
        }
    }
}

/// Checks bearer tokens: the bootstrap token from the environment (compared in constant time)
/// or a stored token by hash.
#[derive(Clone, Default)]
pub struct Authenticator {
    bootstrap_hash: Option<String>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("bootstrap", &self.bootstrap_hash.is_some()).finish()
    }
}

impl Authenticator {
    pub fn new(bootstrap: Option<&str>) -> Self {
        Self { bootstrap_hash: bootstrap.filter(|s| !s.is_empty()).map(hash_secret) }
    }

    pub async fn authenticate(&self, services: &Services, bearer: &str) -> Result<Principal, AppError> {
        let hash = hash_secret(bearer);
        if let Some(b) = &self.bootstrap_hash
            && bool::from(b.as_bytes().ct_eq(hash.as_bytes()))
        {
            return Ok(Principal::Admin { token: None });
        }
        let Some((token, enabled)) = services.store.token_for_sign_in(&hash).await? else {
            return Err(AppError::Unauthenticated("The access token is not valid.".into()));
        };
        match (token.user_id, enabled) {
            (None, _) => Ok(Principal::Admin { token: Some(token.id) }),
            (Some(user), Some(true)) => Ok(Principal::User { user, token: token.id }),
            (Some(_), _) => Err(AppError::Unauthenticated("The token's user account is disabled.".into())),
        }
    }
}

/// Creates a token (administrator, or personal for `user`) and returns the secret, once.
pub async fn create_token(
    services: &Services,
    _cap: AdminCap,
    name: &str,
    user: Option<UserId>,
) -> Result<(ApiToken, TokenSecret), AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AppError::Invalid("A token needs a name of 1 to 128 characters.".into()));
    }
    if let Some(u) = user
        && services.store.get_user(u).await?.is_none()
    {
        return Err(AppError::not_found("user", u));
    }
    let secret = TokenSecret::generate()?;
    let token = ApiToken {
        id: TokenId::new(),
        name: name.to_owned(),
        hash: secret.hash(),
        user_id: user,
        created_at: services.clock.now(),
    };
    services.store.insert_token(&token).await?;
    Ok((token, secret))
}

/// The capability the command line holds: whoever runs `steward token create` on the server
/// machine with access to its database is an administrator by definition.
pub fn local_operator() -> AdminCap {
    AdminCap(Holder::LocalOperator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = TokenSecret::generate().unwrap();
        assert!(s.expose().starts_with("stw_"));
        assert_eq!(s.expose().len(), 4 + 64);
        assert!(!format!("{s:?}").contains(s.expose()));
        let t = ApiToken {
            id: TokenId::new(),
            name: "ci".into(),
            hash: s.hash(),
            user_id: None,
            created_at: Timestamp::UNIX_EPOCH,
        };
        assert!(!format!("{t:?}").contains(&t.hash));
        let a = Authenticator::new(Some("bootstrap-secret"));
        assert!(!format!("{a:?}").contains("bootstrap-secret"));
    }

    #[test]
    fn two_secrets_differ() {
        assert_ne!(TokenSecret::generate().unwrap().expose(), TokenSecret::generate().unwrap().expose());
    }

    #[test]
    fn users_are_not_admins() {
        let p = Principal::User { user: UserId::new(), token: TokenId::new() };
        assert!(p.admin().is_err());
        assert!(Principal::Admin { token: None }.admin().is_ok());
    }

    #[test]
    fn an_admin_capability_names_its_holder_as_the_principal_does() {
        let t = TokenId::new();
        for p in [Principal::Admin { token: Some(t) }, Principal::Admin { token: None }] {
            assert_eq!(p.admin().unwrap().label(), p.label());
            assert_eq!(p.admin().unwrap().actor(), Actor::Admin(p.label()));
        }
        assert_eq!(local_operator().label(), "local-operator");
    }
}
