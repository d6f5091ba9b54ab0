//! Signing in through an OpenID Connect provider: the port that checks the provider's tokens
//! (`TokenVerifier`), what a checked token says about its bearer (`Identity`), how that names
//! a directory user or creates one from the token's claims (`ClaimMapping`), and the facts of
//! the sign-in that conditional requirements look at (`SignInFacts`).

use std::net::IpAddr;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};
use steward_domain::directory::User;
use steward_domain::enums::UserType;
use steward_domain::text::DisplayName;

use crate::auth::Principal;
use crate::directory::{self, NewUser, UserAttributes};
use crate::{AppError, Services};

/// What a verified token says about its bearer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The provider's stable id of the user.
    pub subject: String,
    pub name: Option<String>,
    /// Authentication methods (`pwd`, `mfa`, `otp`, …).
    pub amr: Vec<String>,
    /// Authentication context class.
    pub acr: Option<String>,
    pub auth_time: Option<Timestamp>,
    /// Every claim of the token.
    pub claims: Map<String, Value>,
}

impl Identity {
    pub fn claim_text(&self, name: &str) -> Option<String> {
        match self.claims.get(name)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Why a token was refused, in words fit for a 401 and the log (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The token is not acceptable (bad signature, expired, wrong audience, …).
    Invalid(String),
    /// The provider could not be asked (its keys could not be fetched).
    Unavailable(String),
}

/// Checks access tokens issued by the configured identity provider.
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    async fn verify(&self, token: &str, now: Timestamp) -> Result<Identity, VerifyError>;
}

/// How a token's claims name a directory user and, when users may be created at sign-in, fill
/// in the new user. Claim names are configurable because providers differ (Entra: `upn`,
/// Keycloak: `preferred_username`, Google: `email`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct ClaimMapping {
    /// Claims tried in order for the user principal name.
    pub user_principal_name: Vec<String>,
    /// Create a user unknown to the directory from the token's claims.
    pub create_users: bool,
    pub display_name: String,
    pub mail: String,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    pub employee_id: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// A claim holding `Member` or `Guest`.
    pub user_type: Option<String>,
    /// A claim holding the manager's user principal name (set when the manager is known).
    pub manager: Option<String>,
    /// A claim that is `true` when the device signing in is compliant (for the compliant-device
    /// requirement).
    pub device_compliant: Option<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            user_principal_name: vec!["upn".into(), "preferred_username".into(), "email".into()],
            create_users: false,
            display_name: "name".into(),
            mail: "email".into(),
            department: Some("department".into()),
            job_title: Some("job_title".into()),
            company_name: None,
            employee_id: None,
            city: None,
            country: None,
            user_type: Some("userType".into()),
            manager: None,
            device_compliant: Some("deviceCompliant".into()),
        }
    }
}

/// The facts of a sign-in that conditional requirements look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInFacts {
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub auth_time: Option<Timestamp>,
    pub device_compliant: Option<bool>,
    /// The caller's address, as the web layer determined it (trusted proxies considered).
    pub source: Option<IpAddr>,
}

impl ClaimMapping {
    fn text(&self, id: &Identity, claim: Option<&String>) -> Option<String> {
        claim.and_then(|c| id.claim_text(c))
    }

    /// The user principal name the token names, from the first configured claim it has.
    pub fn user_principal_name(&self, id: &Identity) -> Option<String> {
        self.user_principal_name.iter().find_map(|c| id.claim_text(c))
    }

    /// The sign-in facts the token carries (its address is added by the web layer).
    pub fn facts(&self, id: &Identity) -> SignInFacts {
        SignInFacts {
            amr: id.amr.clone(),
            acr: id.acr.clone(),
            auth_time: id.auth_time,
            device_compliant: self.text(id, self.device_compliant.as_ref()).map(|v| v.eq_ignore_ascii_case("true")),
            source: None,
        }
    }
}

/// The directory user a verified token names: by user principal name; created from the claims
/// when the mapping allows it; `None` for someone the directory does not know. A disabled
/// account is refused.
pub async fn user_for(s: &Services, mapping: &ClaimMapping, id: &Identity) -> Result<Option<User>, AppError> {
    let upn = mapping.user_principal_name(id).ok_or_else(|| {
        AppError::Unauthenticated(format!(
            "The token names no user: none of the claims {} is present.",
            mapping.user_principal_name.join(", ")
        ))
    })?;
    let user = match s.store.user_by_upn(&upn).await? {
        Some(u) => u,
        None if mapping.create_users => create_from_claims(s, mapping, id, &upn).await?,
        None => return Ok(None),
    };
    if !user.account_enabled {
        return Err(AppError::Unauthenticated("The user account is disabled.".into()));
    }
    Ok(Some(user))
}

/// Someone the directory does not know: an external requestor when their email (the mapping's
/// mail claim, else the name that identified them) is of a connected organization's domain;
/// refused otherwise.
pub async fn external(s: &Services, mapping: &ClaimMapping, id: &Identity) -> Result<Principal, AppError> {
    let named = mapping.user_principal_name(id).unwrap_or_default();
    let unknown = || {
        AppError::Unauthenticated(format!(
            "'{}' is not a user of this directory (and users are not created at sign-in), nor of a connected \
             organization.",
            steward_domain::text::clip(&named, 120)
        ))
    };
    let email = id.claim_text(&mapping.mail).unwrap_or_else(|| named.clone());
    let Ok(parsed) = steward_domain::connected::Email::parse(&email) else { return Err(unknown()) };
    if s.store.organization_of_domain(parsed.domain()).await?.is_none() {
        return Err(unknown());
    }
    let name = id.claim_text(&mapping.display_name).or_else(|| id.name.clone());
    Ok(Principal::External { email: parsed.as_str().to_owned(), name, sign_in: Box::new(mapping.facts(id)) })
}

async fn create_from_claims(s: &Services, m: &ClaimMapping, id: &Identity, upn: &str) -> Result<User, AppError> {
    let name = id.claim_text(&m.display_name).or_else(|| id.name.clone()).unwrap_or_else(|| upn.to_owned());
    let display_name = DisplayName::parse(steward_domain::text::clip(&name, 256))?;
    let user_type = match m.text(id, m.user_type.as_ref()) {
        Some(t) if t.eq_ignore_ascii_case("guest") => Some(UserType::Guest),
        _ => Some(UserType::Member),
    };
    let new = NewUser {
        display_name,
        user_principal_name: upn.to_owned(),
        user_type,
        account_enabled: Some(true),
        attributes: UserAttributes {
            mail: id.claim_text(&m.mail),
            department: m.text(id, m.department.as_ref()),
            job_title: m.text(id, m.job_title.as_ref()),
            company_name: m.text(id, m.company_name.as_ref()),
            employee_id: m.text(id, m.employee_id.as_ref()),
            city: m.text(id, m.city.as_ref()),
            country: m.text(id, m.country.as_ref()),
        },
    };
    let cap = crate::auth::provisioning();
    let user = match directory::create_user(s, cap, new).await {
        Ok(u) => u,
        // Two first requests of the same person at once: the other one created them.
        Err(AppError::Conflict(_)) => {
            s.store.user_by_upn(upn).await?.ok_or_else(|| AppError::Conflict("The user changed; try again.".into()))?
        }
        Err(e) => return Err(e),
    };
    if let Some(manager) = m.text(id, m.manager.as_ref())
        && let Some(mgr) = s.store.user_by_upn(&manager).await?
    {
        directory::set_manager(s, cap, user.id, Some(mgr.id)).await?;
    }
    tracing::info!(user = %user.id, "created a user at sign-in from the identity provider's claims");
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_configured_claim_names_the_user() {
        let mut id = Identity::default();
        id.claims.insert("email".into(), Value::String("a@x.io".into()));
        id.claims.insert("preferred_username".into(), Value::String("alice@x.io".into()));
        let m = ClaimMapping::default();
        assert_eq!(m.user_principal_name(&id).as_deref(), Some("alice@x.io"));
        id.claims.insert("upn".into(), Value::String("  ".into()));
        assert_eq!(m.user_principal_name(&id).as_deref(), Some("alice@x.io"));
        id.claims.insert("deviceCompliant".into(), Value::Bool(true));
        assert_eq!(m.facts(&id).device_compliant, Some(true));
    }
}
