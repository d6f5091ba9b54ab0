//! Who is calling and what they may do. API tokens are random secrets shown once and kept only
//! as SHA-256 hashes; a token either acts as a global administrator or as one directory user.
//! Privileged use cases take a capability value (`AdminCap`) that only `Principal::admin`
//! hands out, so a forgotten check is a type error rather than a hole; the capability also
//! says which administrator holds it, for the audit trail.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use steward_domain::ids::{CatalogId, TokenId, UserId};
use steward_domain::role::{AppScope, Grants, Role, RoleAssignment, Task};
use subtle::ConstantTimeEq;

use crate::identity::{ClaimMapping, SignInFacts, TokenVerifier, VerifyError};
use crate::lifecycle::Actor;
use crate::{AppError, Services};

/// A stored API token: never the secret, only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    /// Lowercase hex SHA-256 of the secret.
    pub hash: String,
    /// `None`: a global-administrator or role-scoped token; `Some`: acts as that directory user.
    pub user_id: Option<UserId>,
    /// For a token of no user: the one role it holds, and where; `None` with no user: the
    /// administrator.
    pub role: Option<(Role, AppScope)>,
    pub created_at: Timestamp,
    /// After this instant the token is refused.
    pub expires_at: Option<Timestamp>,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("hash", &"[REDACTED]")
            .field("user_id", &self.user_id)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
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
    /// A directory user, through a personal token (`token`) or the identity provider's token
    /// (`sign_in`: how they signed in); `grants` are the delegated-administration roles
    /// assigned to them.
    User { user: UserId, token: Option<TokenId>, grants: Grants, sign_in: Option<Box<SignInFacts>> },
    /// A machine client whose token holds exactly one role (a role-scoped API token).
    Service { token: TokenId, grants: Grants },
    /// Someone the identity provider vouches for who is not in the directory, with an email of
    /// a connected organization's domain: they may request access for themselves, and become a
    /// guest when it is granted.
    External { email: String, name: Option<String>, sign_in: Box<SignInFacts> },
}

/// Proof that the caller is a global administrator, naming which one so that the changes it
/// authorizes can be audited. Only `Principal::admin` (and `local_operator`, for the command
/// line) makes one.
#[derive(Debug, Clone, Copy)]
pub struct AdminCap(Holder);

/// Who holds a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Token(TokenId),
    Service(TokenId),
    Bootstrap,
    LocalOperator,
    /// Users created at sign-in from the identity provider's claims.
    Provisioning,
    User(UserId),
    /// A person of a connected organization not yet in the directory.
    External,
}

impl Holder {
    fn label(self) -> String {
        match self {
            Self::Token(t) => format!("admin-token:{t}"),
            Self::Service(t) => format!("service-token:{t}"),
            Self::Bootstrap => "bootstrap-admin".to_owned(),
            Self::LocalOperator => "local-operator".to_owned(),
            Self::Provisioning => "identity-provider".to_owned(),
            Self::User(u) => format!("user:{u}"),
            Self::External => "external-user".to_owned(),
        }
    }
    fn actor(self) -> Actor {
        match self {
            Self::User(u) => Actor::User(u),
            other => Actor::Admin(other.label()),
        }
    }
}

impl AdminCap {
    /// The holder, labelled as `Principal::label` labels them ("admin-token:…",
    /// "bootstrap-admin", "user:…"), or "local-operator" for the command line.
    pub fn label(self) -> String {
        self.0.label()
    }

    /// The holder as the cause of a change, for the audit trail.
    pub fn actor(self) -> Actor {
        self.0.actor()
    }

    /// An administrator may do every catalog task in every catalog.
    pub fn in_catalog(self, catalog: CatalogId, task: Task) -> CatalogCap {
        CatalogCap { catalog, task, holder: self.0 }
    }

    /// An administrator creates catalogs (and does not become their owner).
    pub fn creator(self) -> CreatorCap {
        CreatorCap { holder: self.0, owner: None }
    }

    /// An administrator sees every catalog.
    pub fn everywhere(self) -> CatalogScope {
        CatalogScope(None)
    }
}

/// Proof that the caller may do `task` in one catalog (Entra's catalog roles, or the
/// administrator). Use cases that change or read a catalog's contents take one and check, once
/// they have read the object, that it belongs to that catalog (`CatalogCap::covers`).
#[derive(Debug, Clone, Copy)]
pub struct CatalogCap {
    catalog: CatalogId,
    task: Task,
    holder: Holder,
}

impl CatalogCap {
    pub fn catalog(self) -> CatalogId {
        self.catalog
    }
    pub fn task(self) -> Task {
        self.task
    }
    /// The holder as the cause of a change, for the audit trail.
    pub fn actor(self) -> Actor {
        self.holder.actor()
    }
    pub fn label(self) -> String {
        self.holder.label()
    }
    /// Refuses a capability checked for another task than the one a use case carries out (a
    /// reader's capability handed to a write, say): a programming error, refused all the same.
    pub fn require(self, task: Task) -> Result<(), AppError> {
        if self.task == task {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Insufficient privileges: the caller was allowed to {}, which is not to {}.",
                self.task.describe(),
                task.describe()
            )))
        }
    }

    /// Refuses an object of another catalog than the one the capability was checked for.
    pub fn covers(self, catalog: CatalogId) -> Result<(), AppError> {
        if catalog == self.catalog {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Insufficient privileges: the object belongs to catalog {catalog}, not to catalog {} for which the caller may {}.",
                self.catalog,
                self.task.describe()
            )))
        }
    }
}

/// Proof that the caller may do a task in some catalogs, and which: what reads narrow their
/// answers with. Only the checks in this module make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogScope(Option<Vec<CatalogId>>);

impl CatalogScope {
    /// Whether objects of this catalog may be read.
    pub fn includes(&self, catalog: CatalogId) -> bool {
        self.0.as_ref().is_none_or(|ids| ids.contains(&catalog))
    }
    /// The catalogs, or `None` for all of them.
    pub fn catalogs(&self) -> Option<&[CatalogId]> {
        self.0.as_deref()
    }
    /// Refuses an object of a catalog outside the scope.
    pub fn check(&self, catalog: CatalogId) -> Result<(), AppError> {
        if self.includes(catalog) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Insufficient privileges: the caller has no role in catalog {catalog} that allows this."
            )))
        }
    }
}

impl CatalogCap {
    /// The one catalog, as a read scope.
    pub fn scope(self) -> CatalogScope {
        CatalogScope(Some(vec![self.catalog]))
    }
}

/// Proof that the caller may create catalogs (administrator or catalog creator); the user who
/// creates one becomes its first owner.
#[derive(Debug, Clone, Copy)]
pub struct CreatorCap {
    holder: Holder,
    /// The user to make the new catalog's first owner (a catalog creator), if any.
    pub owner: Option<UserId>,
}

impl CreatorCap {
    pub fn actor(self) -> Actor {
        self.holder.actor()
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

fn forbidden(task: Task) -> AppError {
    AppError::Forbidden(format!(
        "Insufficient privileges to complete the operation: the caller has no role that allows them to {}.",
        task.describe()
    ))
}

fn administrator() -> &'static Grants {
    static ADMIN: std::sync::OnceLock<Grants> = std::sync::OnceLock::new();
    ADMIN.get_or_init(Grants::administrator)
}

impl Principal {
    /// The caller's delegated-administration roles (everything, for an administrator token).
    pub fn grants(&self) -> &Grants {
        static NONE: std::sync::OnceLock<Grants> = std::sync::OnceLock::new();
        match self {
            Self::Admin { .. } => administrator(),
            Self::User { grants, .. } | Self::Service { grants, .. } => grants,
            Self::External { .. } => NONE.get_or_init(Grants::default),
        }
    }

    fn holder(&self) -> Holder {
        match self {
            Self::Admin { token: Some(t) } => Holder::Token(*t),
            Self::Service { token, .. } => Holder::Service(*token),
            Self::Admin { token: None } => Holder::Bootstrap,
            Self::User { user, .. } => Holder::User(*user),
            Self::External { .. } => Holder::External,
        }
    }

    pub fn admin(&self) -> Result<AdminCap, AppError> {
        if self.grants().is_administrator() {
            Ok(AdminCap(self.holder()))
        } else {
            Err(AppError::Forbidden(
                "Insufficient privileges to complete the operation: it needs the Steward administrator role.".into(),
            ))
        }
    }

    /// The check for a task in one catalog.
    pub fn in_catalog(&self, catalog: CatalogId, task: Task) -> Result<CatalogCap, AppError> {
        if self.grants().allows_in(catalog, task) {
            Ok(CatalogCap { catalog, task, holder: self.holder() })
        } else {
            Err(forbidden(task))
        }
    }

    /// The catalogs in which the caller may do `task`; refused (403) when there are none, so a
    /// caller without any such role learns nothing about what exists.
    pub fn catalogs_for(&self, task: Task) -> Result<CatalogScope, AppError> {
        let g = self.grants();
        if !g.allows_somewhere(task) {
            return Err(forbidden(task));
        }
        Ok(CatalogScope(g.catalogs_for(task)))
    }

    /// Refuses early a caller who may do `task` nowhere, before any object is read.
    pub fn may_somewhere(&self, task: Task) -> Result<(), AppError> {
        if self.grants().allows_somewhere(task) { Ok(()) } else { Err(forbidden(task)) }
    }

    pub fn catalog_creator(&self) -> Result<CreatorCap, AppError> {
        let g = self.grants();
        if !g.allows_everywhere(Task::CreateCatalog) {
            return Err(forbidden(Task::CreateCatalog));
        }
        let owner = match self {
            Self::User { user, .. } if !g.is_administrator() => Some(*user),
            _ => None,
        };
        Ok(CreatorCap { holder: self.holder(), owner })
    }

    pub fn user(&self) -> Result<UserCap, AppError> {
        match self {
            Self::User { user, .. } => Ok(UserCap(*user)),
            Self::Admin { .. } | Self::Service { .. } => Err(AppError::Forbidden(
                "This action is taken by a signed-in user for themselves; an administrator or service token is not a \
                 user (administrators use adminAdd, adminUpdate and adminRemove)."
                    .into(),
            )),
            Self::External { .. } => Err(AppError::Forbidden(
                "Someone not yet in the directory may only request access for themselves (userAdd); the rest opens \
                 once a request is granted and they are a guest."
                    .into(),
            )),
        }
    }
    /// Every signed-in member of the directory, and every token, reads the directory; someone
    /// not yet in it (an external requestor) does not.
    pub fn directory_reader(&self) -> Result<DirectoryReadCap, AppError> {
        match self {
            Self::External { .. } => Err(AppError::Forbidden(
                "Someone not yet in the directory may not read it; it opens once a request is granted.".into(),
            )),
            _ => Ok(DirectoryReadCap(())),
        }
    }
    /// The principal calling from `source` (what network requirements look at). A user with a
    /// personal token gets sign-in facts holding only the address.
    pub fn seen_from(self, source: Option<std::net::IpAddr>) -> Self {
        match self {
            Self::User { user, token, grants, sign_in } => {
                let mut facts = sign_in.unwrap_or_default();
                facts.source = source;
                Self::User { user, token, grants, sign_in: Some(facts) }
            }
            Self::External { email, name, mut sign_in } => {
                sign_in.source = source;
                Self::External { email, name, sign_in }
            }
            other => other,
        }
    }

    /// How the caller signed in, when through the identity provider.
    pub fn sign_in(&self) -> Option<&SignInFacts> {
        match self {
            Self::User { sign_in, .. } => sign_in.as_deref(),
            Self::External { sign_in, .. } => Some(sign_in),
            Self::Admin { .. } | Self::Service { .. } => None,
        }
    }
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User { user, .. } => Some(*user),
            Self::Admin { .. } | Self::Service { .. } | Self::External { .. } => None,
        }
    }
    /// A short label for logs and audit ("admin-token:…", "user:…").
    pub fn label(&self) -> String {
        self.holder().label()
    }
    /// The caller as the cause of a change, for the audit trail.
    pub fn actor(&self) -> Actor {
        self.holder().actor()
    }
}

/// Checks bearer tokens: the identity provider's JWTs when one is configured, the bootstrap
/// token from the environment (compared in constant time), or a stored token by hash.
#[derive(Clone, Default)]
pub struct Authenticator {
    bootstrap_hash: Option<String>,
    identity: Option<(Arc<dyn TokenVerifier>, Arc<ClaimMapping>)>,
    /// When each user's sign-in was last noted (`Store::note_sign_in`), so a user's token
    /// costs at most one write a minute however many calls it makes.
    noted: Arc<std::sync::Mutex<std::collections::HashMap<UserId, Timestamp>>>,
}

/// How often a bearer token's use is noted as a sign-in, per user.
const NOTE_SIGN_IN_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_mins(1);
/// Users remembered before the map is emptied (it only spares writes).
const NOTED_MAX: usize = 10_000;

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("bootstrap", &self.bootstrap_hash.is_some())
            .field("identity_provider", &self.identity.is_some())
            .finish()
    }
}

/// Whether a bearer token has the shape of a JWT (three base64url parts), as opposed to one of
/// Steward's own tokens (`stw_…`).
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

impl Authenticator {
    pub fn new(bootstrap: Option<&str>) -> Self {
        Self {
            bootstrap_hash: bootstrap.filter(|s| !s.is_empty()).map(hash_secret),
            identity: None,
            noted: Arc::default(),
        }
    }

    /// Notes that `user` used Steward at `now` (what access reviews' recommendations read),
    /// at most once a minute per user; a failure to note is logged, never the caller's.
    async fn note_sign_in(&self, services: &Services, user: UserId, now: Timestamp) {
        let due = match self.noted.lock() {
            Ok(mut m) => {
                let due = m.get(&user).is_none_or(|last| now.duration_since(*last) >= NOTE_SIGN_IN_EVERY);
                if due {
                    if m.len() >= NOTED_MAX {
                        m.clear();
                    }
                    m.insert(user, now);
                }
                due
            }
            Err(_) => true,
        };
        if due && let Err(e) = services.store.note_sign_in(user, now).await {
            tracing::warn!(user = %user, error = %e, "the sign-in could not be noted");
        }
    }

    /// Also accepts the identity provider's access tokens, naming users as `mapping` says.
    pub fn with_identity_provider(mut self, verifier: Arc<dyn TokenVerifier>, mapping: ClaimMapping) -> Self {
        self.identity = Some((verifier, Arc::new(mapping)));
        self
    }

    /// The claim mapping, when an identity provider is configured.
    pub fn claim_mapping(&self) -> Option<&ClaimMapping> {
        self.identity.as_ref().map(|(_, m)| m.as_ref())
    }

    /// The principal of a directory user who signed in, with their roles.
    pub async fn signed_in(services: &Services, user: UserId, facts: SignInFacts) -> Result<Principal, AppError> {
        let grants = Grants::from_assignments(&services.store.role_assignments_of(user).await?);
        Ok(Principal::User { user, token: None, grants, sign_in: Some(Box::new(facts)) })
    }

    pub async fn authenticate(&self, services: &Services, bearer: &str) -> Result<Principal, AppError> {
        if looks_like_jwt(bearer) {
            let Some((verifier, mapping)) = &self.identity else {
                return Err(AppError::Unauthenticated(
                    "The token is a JWT, but no identity provider is configured to check it.".into(),
                ));
            };
            let id = match verifier.verify(bearer, services.clock.now()).await {
                Ok(id) => id,
                Err(VerifyError::Invalid(reason)) => {
                    tracing::warn!(%reason, "refused an identity-provider token");
                    return Err(AppError::Unauthenticated(format!("The access token is not valid: {reason}")));
                }
                Err(VerifyError::Unavailable(reason)) => {
                    tracing::warn!(%reason, "could not check an identity-provider token");
                    return Err(AppError::Upstream(format!(
                        "The identity provider's signing keys could not be read: {reason}"
                    )));
                }
            };
            return match crate::identity::user_for(services, mapping, &id).await? {
                Some(user) => {
                    self.note_sign_in(services, user.id, services.clock.now()).await;
                    Self::signed_in(services, user.id, mapping.facts(&id)).await
                }
                None => crate::identity::external(services, mapping, &id).await,
            };
        }
        let hash = hash_secret(bearer);
        if let Some(b) = &self.bootstrap_hash
            && bool::from(b.as_bytes().ct_eq(hash.as_bytes()))
        {
            return Ok(Principal::Admin { token: None });
        }
        let Some((token, enabled)) = services.store.token_for_sign_in(&hash).await? else {
            return Err(AppError::Unauthenticated("The access token is not valid.".into()));
        };
        if token.expires_at.is_some_and(|end| services.clock.now() >= end) {
            return Err(AppError::Unauthenticated("The access token has expired.".into()));
        }
        match (token.user_id, token.role, enabled) {
            (None, None, _) => Ok(Principal::Admin { token: Some(token.id) }),
            (None, Some((role, scope)), _) => {
                Ok(Principal::Service { token: token.id, grants: Grants::single(role, scope) })
            }
            (Some(user), _, Some(true)) => {
                self.note_sign_in(services, user, services.clock.now()).await;
                let grants = Grants::from_assignments(&services.store.role_assignments_of(user).await?);
                Ok(Principal::User { user, token: Some(token.id), grants, sign_in: None })
            }
            (Some(_), _, _) => Err(AppError::Unauthenticated("The token's user account is disabled.".into())),
        }
    }
}

/// What a new API token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHolder {
    /// The Steward administrator.
    Administrator,
    /// Acts as this directory user, with the user's own roles.
    User(UserId),
    /// A machine client holding exactly this role, where it applies.
    Role(Role, AppScope),
}

/// Creates a token and returns the secret, once.
pub async fn create_token(
    services: &Services,
    _cap: AdminCap,
    name: &str,
    holder: TokenHolder,
    expires_at: Option<Timestamp>,
) -> Result<(ApiToken, TokenSecret), AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AppError::Invalid("A token needs a name of 1 to 128 characters.".into()));
    }
    let now = services.clock.now();
    if expires_at.is_some_and(|end| end <= now) {
        return Err(AppError::Invalid("expirationDateTime must be in the future.".into()));
    }
    let (user, role) = match holder {
        TokenHolder::Administrator => (None, None),
        TokenHolder::User(u) => {
            if services.store.get_user(u).await?.is_none() {
                return Err(AppError::not_found("user", u));
            }
            (Some(u), None)
        }
        TokenHolder::Role(role, scope) => {
            // the same checks as a role assignment
            RoleAssignment::new(UserId::new(), role, scope)?;
            if let AppScope::Catalog(c) = scope
                && services.store.get_catalog(c).await?.is_none()
            {
                return Err(AppError::not_found("catalog", c));
            }
            (None, Some((role, scope)))
        }
    };
    let secret = TokenSecret::generate()?;
    let token = ApiToken {
        id: TokenId::new(),
        name: name.to_owned(),
        hash: secret.hash(),
        user_id: user,
        role,
        created_at: now,
        expires_at,
    };
    services.store.insert_token(&token).await?;
    Ok((token, secret))
}

/// The capability of creating a user at sign-in from the identity provider's claims.
pub(crate) fn provisioning() -> AdminCap {
    AdminCap(Holder::Provisioning)
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
            role: None,
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: None,
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
        let p = Principal::User { user: UserId::new(), token: None, grants: Grants::default(), sign_in: None };
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
