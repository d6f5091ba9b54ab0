//! Connected organizations: the external organizations whose people may request access
//! packages (Graph's `connectedOrganization`), each known by its identity sources (DNS
//! domains, Entra tenants, federations, a social provider), and how an external user is
//! matched to one: by the domain of their email address.
//!
//! A domain (and a tenant) belongs to at most one connected organization; the store keeps the
//! keys of `IdentitySource::key` unique. Only guests belong to a connected organization: a
//! member of the directory is an internal user, whatever their mail says.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::DomainError;
use crate::directory::{UPN_MAX, User};
use crate::enums::{ConnectedOrganizationState, SocialIdentitySourceType, UserType};
use crate::ids::ConnectedOrganizationId;
use crate::policy::{PolicySettings, SubjectSet};
use crate::text::{DISPLAY_NAME_MAX, DisplayName, clip};

/// Most identity sources one organization may list.
pub const SOURCES_MAX: usize = 100;
/// Longest issuer URI or cloud instance kept.
pub const URI_MAX: usize = 2048;

/// An external organization whose users may request access packages.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedOrganization {
    pub id: ConnectedOrganizationId,
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub identity_sources: Vec<IdentitySource>,
    pub state: ConnectedOrganizationState,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
    #[serde(with = "crate::time::serde_ts")]
    pub modified_date_time: Timestamp,
}

impl ConnectedOrganization {
    /// The keys of its identity sources (`domain:<name>`, `tenant:<id>`, `social:<type>`),
    /// which no other organization may share.
    pub fn keys(&self) -> Vec<String> {
        self.identity_sources.iter().map(IdentitySource::key).collect()
    }

    /// The DNS domains its users' email addresses end in.
    pub fn domains(&self) -> Vec<&str> {
        self.identity_sources.iter().filter_map(IdentitySource::domain).collect()
    }
}

/// Which sponsors of an organization: people of this directory (`internalSponsors`) or of the
/// organization itself (`externalSponsors`). Policies' approval stages name them
/// (`#microsoft.graph.internalSponsors`, `#microsoft.graph.externalSponsors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SponsorKind {
    Internal,
    External,
}

impl SponsorKind {
    /// As stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::External => "external",
        }
    }

    /// The navigation property.
    pub const fn nav(self) -> &'static str {
        match self {
            Self::Internal => "internalSponsors",
            Self::External => "externalSponsors",
        }
    }
}

/// Where an organization's users come from. Polymorphic on `@odata.type` (Graph's
/// `identitySource` subtypes), which is required on input and always emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@odata.type")]
pub enum IdentitySource {
    /// Users whose email is in a DNS domain.
    #[serde(rename = "#microsoft.graph.domainIdentitySource", rename_all = "camelCase")]
    Domain { domain_name: String, display_name: Option<String> },
    /// An Entra tenant.
    #[serde(rename = "#microsoft.graph.azureActiveDirectoryTenant", rename_all = "camelCase")]
    AzureActiveDirectoryTenant { tenant_id: String, display_name: Option<String> },
    /// An Entra tenant in another cloud.
    #[serde(rename = "#microsoft.graph.crossCloudAzureActiveDirectoryTenant", rename_all = "camelCase")]
    CrossCloudAzureActiveDirectoryTenant { cloud_instance: String, tenant_id: String, display_name: Option<String> },
    /// A domain federated through a SAML or WS-Fed identity provider.
    #[serde(rename = "#microsoft.graph.externalDomainFederation", rename_all = "camelCase")]
    ExternalDomainFederation { domain_name: String, issuer_uri: Option<String>, display_name: Option<String> },
    /// A social identity provider.
    #[serde(rename = "#microsoft.graph.socialIdentitySource", rename_all = "camelCase")]
    Social { social_identity_source_type: SocialIdentitySourceType, display_name: Option<String> },
}

/// The `@odata.type` names of the identity sources, canonical spelling without `#`.
const SOURCE_TYPES: &[&str] = &[
    "microsoft.graph.domainIdentitySource",
    "microsoft.graph.azureActiveDirectoryTenant",
    "microsoft.graph.crossCloudAzureActiveDirectoryTenant",
    "microsoft.graph.externalDomainFederation",
    "microsoft.graph.socialIdentitySource",
];

impl IdentitySource {
    /// What makes the source unique across organizations.
    pub fn key(&self) -> String {
        match self {
            Self::Domain { domain_name, .. } | Self::ExternalDomainFederation { domain_name, .. } => {
                domain_key(domain_name)
            }
            Self::AzureActiveDirectoryTenant { tenant_id, .. }
            | Self::CrossCloudAzureActiveDirectoryTenant { tenant_id, .. } => format!("tenant:{tenant_id}"),
            Self::Social { social_identity_source_type, .. } => format!("social:{social_identity_source_type}"),
        }
    }

    /// The DNS domain users of this source have, for sources that name one.
    pub fn domain(&self) -> Option<&str> {
        match self {
            Self::Domain { domain_name, .. } | Self::ExternalDomainFederation { domain_name, .. } => Some(domain_name),
            _ => None,
        }
    }

    /// Reads one source of a body's `identitySources` (`at` says which, for messages): the
    /// `@odata.type` (with or without `#`, any letter case), then exactly the properties of
    /// that type.
    pub fn parse(v: &Value, at: usize) -> Result<Self, DomainError> {
        let here = format!("identitySources[{at}]");
        let Value::Object(m) = v else {
            return Err(DomainError::invalid(format!("{here} must be an object with an @odata.type.")));
        };
        let kind = match m.get("@odata.type") {
            Some(Value::String(t)) => {
                let bare = t.strip_prefix('#').unwrap_or(t);
                SOURCE_TYPES.iter().copied().find(|c| c.eq_ignore_ascii_case(bare)).ok_or_else(|| {
                    DomainError::invalid(format!(
                        "{here}: @odata.type '{}' is not an identity source; expected one of: {}.",
                        clip(t, 80),
                        SOURCE_TYPES.iter().map(|t| format!("#{t}")).collect::<Vec<_>>().join(", ")
                    ))
                })?
            }
            Some(_) => return Err(DomainError::invalid(format!("{here}: @odata.type must be a string."))),
            None => {
                return Err(DomainError::invalid(format!(
                    "{here} needs an @odata.type (for example #microsoft.graph.domainIdentitySource)."
                )));
            }
        };
        let mut r = Reader { m, here, read: vec!["@odata.type"] };
        let display_name = r.opt_text("displayName", DISPLAY_NAME_MAX)?;
        let source = match kind {
            "microsoft.graph.domainIdentitySource" => {
                Self::Domain { domain_name: parse_domain(&r.req_text("domainName", 253)?)?, display_name }
            }
            "microsoft.graph.azureActiveDirectoryTenant" => {
                Self::AzureActiveDirectoryTenant { tenant_id: r.tenant()?, display_name }
            }
            "microsoft.graph.crossCloudAzureActiveDirectoryTenant" => Self::CrossCloudAzureActiveDirectoryTenant {
                cloud_instance: r.req_text("cloudInstance", URI_MAX)?,
                tenant_id: r.tenant()?,
                display_name,
            },
            "microsoft.graph.externalDomainFederation" => Self::ExternalDomainFederation {
                domain_name: parse_domain(&r.req_text("domainName", 253)?)?,
                issuer_uri: r.opt_text("issuerUri", URI_MAX)?,
                display_name,
            },
            _ => {
                let t = r.req_text("socialIdentitySourceType", 64)?;
                Self::Social { social_identity_source_type: t.parse()?, display_name }
            }
        };
        r.finish()?;
        Ok(source)
    }
}

/// The properties of one identity source being read.
struct Reader<'a> {
    m: &'a Map<String, Value>,
    here: String,
    read: Vec<&'static str>,
}

impl Reader<'_> {
    fn get(&mut self, name: &'static str) -> Option<&Value> {
        self.read.push(name);
        self.m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    fn opt_text(&mut self, name: &'static str, max: usize) -> Result<Option<String>, DomainError> {
        let here = self.here.clone();
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max => {
                Err(DomainError::invalid(format!("{here}.{name} is longer than {max} characters.")))
            }
            Some(Value::String(s)) if s.chars().any(char::is_control) => {
                Err(DomainError::invalid(format!("{here}.{name} must not contain control characters.")))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(DomainError::invalid(format!("{here}.{name} must be a string."))),
        }
    }

    fn req_text(&mut self, name: &'static str, max: usize) -> Result<String, DomainError> {
        match self.opt_text(name, max)? {
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => Err(DomainError::invalid(format!("{}.{name} is required.", self.here))),
        }
    }

    fn tenant(&mut self) -> Result<String, DomainError> {
        let t = self.req_text("tenantId", 64)?;
        match uuid::Uuid::try_parse(&t) {
            Ok(u) if t.len() == 36 => Ok(u.hyphenated().to_string()),
            _ => Err(DomainError::invalid(format!(
                "{}.tenantId '{}' is not a tenant id: expected a GUID.",
                self.here,
                clip(&t, 64)
            ))),
        }
    }

    fn finish(self) -> Result<(), DomainError> {
        match self.m.keys().find(|k| !k.starts_with('@') && !self.read.iter().any(|r| r.eq_ignore_ascii_case(k))) {
            None => Ok(()),
            Some(k) => Err(DomainError::invalid(format!(
                "{}: property '{}' does not exist on this identity source.",
                self.here,
                clip(k, 80)
            ))),
        }
    }
}

/// Reads a body's `identitySources`: an array of at most `SOURCES_MAX` sources, no two with the
/// same domain, tenant or provider.
pub fn parse_sources(v: &Value) -> Result<Vec<IdentitySource>, DomainError> {
    let Value::Array(items) = v else {
        return Err(DomainError::invalid("identitySources must be an array of identity sources."));
    };
    if items.len() > SOURCES_MAX {
        return Err(DomainError::invalid(format!("identitySources may list at most {SOURCES_MAX} sources.")));
    }
    let sources = items.iter().enumerate().map(|(i, v)| IdentitySource::parse(v, i)).collect::<Result<Vec<_>, _>>()?;
    check_sources(&sources)?;
    Ok(sources)
}

/// An organization names at least one source, each once.
pub fn check_sources(sources: &[IdentitySource]) -> Result<(), DomainError> {
    if sources.is_empty() {
        return Err(DomainError::invalid(
            "identitySources needs at least one identity source (for example a #microsoft.graph.domainIdentitySource \
             with its domainName): without one, nobody belongs to the organization.",
        ));
    }
    let mut keys: Vec<String> = Vec::with_capacity(sources.len());
    for s in sources {
        let k = s.key();
        if keys.contains(&k) {
            return Err(DomainError::invalid(format!("identitySources lists {} twice.", describe_key(&k))));
        }
        keys.push(k);
    }
    Ok(())
}

/// A source key in words: `domain:fabrikam.com` → `domain 'fabrikam.com'`.
pub fn describe_key(key: &str) -> String {
    match key.split_once(':') {
        Some((kind, value)) => format!("{kind} '{value}'"),
        None => format!("'{key}'"),
    }
}

/// The source key of a DNS domain (already normalised by `parse_domain`).
pub fn domain_key(domain: &str) -> String {
    format!("domain:{domain}")
}

/// The `connectedOrganizationId`s a policy's subject sets name (`connectedOrganizationMembers`
/// among its targets and its on-behalf requestors), as written (`None`: the set names none).
pub fn organizations_named(settings: &PolicySettings) -> Vec<Option<&str>> {
    let on_behalf = settings.requestor_settings.iter().flat_map(|r| r.on_behalf_requestors.iter());
    settings
        .specific_allowed_targets
        .iter()
        .chain(on_behalf)
        .filter_map(|set| match set {
            SubjectSet::ConnectedOrganizationMembers { connected_organization_id, .. } => {
                Some(connected_organization_id.as_deref())
            }
            _ => None,
        })
        .collect()
}

/// The organizations a policy names, parsed, each once, sorted (ids that do not parse are left
/// out: they name nothing).
pub fn organization_ids(settings: &PolicySettings) -> Vec<ConnectedOrganizationId> {
    let mut ids: Vec<ConnectedOrganizationId> =
        organizations_named(settings).into_iter().flatten().filter_map(|o| o.parse().ok()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A DNS domain name, lowercased: at least two dot-separated labels of ASCII letters, digits and
/// hyphens (1 to 63 each, no hyphen first or last), at most 253 characters. Internationalised
/// names are written in their ASCII (punycode) form.
pub fn parse_domain(s: &str) -> Result<String, DomainError> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let labels: Vec<&str> = d.split('.').collect();
    if d.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) {
        Ok(d)
    } else {
        Err(DomainError::invalid(format!(
            "'{}' is not a DNS domain name such as fabrikam.com (ASCII letters, digits and hyphens; \
             internationalised names in their xn-- form).",
            clip(s, 80)
        )))
    }
}

/// An email address as Steward keeps it for an external user: the local part as written, the
/// domain lowercased and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    domain: String,
}

impl Email {
    /// `local@domain`, without spaces or control characters, short enough to be a
    /// userPrincipalName.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = || {
            DomainError::invalid(format!(
                "'{}' is not an email address such as jane@fabrikam.com (at most {UPN_MAX} characters).",
                clip(s, 120)
            ))
        };
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let clean = |p: &str| !p.is_empty() && !p.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@');
        if !clean(local) || local.contains("#EXT#") || s.len() > UPN_MAX {
            return Err(bad());
        }
        let domain = parse_domain(domain).map_err(|_| bad())?;
        Ok(Self { address: format!("{local}@{domain}"), domain })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// The domain that places a user in a connected organization: for a guest, the domain of their
/// mail, else of their userPrincipalName (an Entra-style `jane_fabrikam.com#EXT#@contoso.com`
/// is read as jane@fabrikam.com). Members belong to no connected organization: `None`.
pub fn external_domain(user: &User) -> Option<String> {
    if user.user_type != UserType::Guest {
        return None;
    }
    if let Some(d) = user.mail.as_deref().and_then(|m| Email::parse(m).ok()) {
        return Some(d.domain);
    }
    let upn = &user.user_principal_name;
    match upn.split_once("#EXT#") {
        Some((invited, _)) => invited.rsplit_once('_').and_then(|(_, d)| parse_domain(d).ok()),
        None => upn.rsplit_once('@').and_then(|(_, d)| parse_domain(d).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sources(v: Value) -> Result<Vec<IdentitySource>, String> {
        parse_sources(&v).map_err(|e| e.to_string())
    }

    #[test]
    fn every_identity_source_type_parses_and_is_emitted_with_its_type() {
        let tenant = "A3F2C2B1-0000-4000-8000-0000000000AA";
        let s = sources(json!([
            {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "Fabrikam.COM", "displayName": "Fabrikam"},
            {"@odata.type": "microsoft.graph.azureActiveDirectoryTenant", "tenantId": tenant, "displayName": "Fabrikam tenant"},
            {"@odata.type": "#microsoft.graph.crossCloudAzureActiveDirectoryTenant", "tenantId": "a3f2c2b1-0000-4000-8000-0000000000bb", "cloudInstance": "microsoftonline.us"},
            {"@odata.type": "#Microsoft.Graph.ExternalDomainFederation", "domainName": "woodgrove.example", "issuerUri": "https://idp.woodgrove.example/saml"},
            {"@odata.type": "#microsoft.graph.socialIdentitySource", "socialIdentitySourceType": "Facebook"},
        ]))
        .unwrap();
        assert_eq!(s[0].domain(), Some("fabrikam.com"));
        assert_eq!(s[1].key(), "tenant:a3f2c2b1-0000-4000-8000-0000000000aa");
        assert_eq!(s[3].key(), "domain:woodgrove.example");
        assert_eq!(s[4].key(), "social:facebook");
        let out = serde_json::to_value(&s).unwrap();
        assert_eq!(
            out[0],
            json!({"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "fabrikam.com", "displayName": "Fabrikam"})
        );
        assert_eq!(out[3]["@odata.type"], "#microsoft.graph.externalDomainFederation");
        assert_eq!(out[4]["socialIdentitySourceType"], "facebook");
    }

    #[test]
    fn bad_sources_are_named() {
        for (v, needle) in [
            (json!({}), "array"),
            (json!([]), "at least one"),
            (json!([{"domainName": "x.com"}]), "@odata.type"),
            (json!([{"@odata.type": "#microsoft.graph.everyone"}]), "not an identity source"),
            (json!([{"@odata.type": "#microsoft.graph.domainIdentitySource"}]), "domainName is required"),
            (
                json!([{"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "not a domain"}]),
                "DNS domain",
            ),
            (
                json!([{"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "x.com", "colour": 1}]),
                "colour",
            ),
            (json!([{"@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": "t-1"}]), "GUID"),
            (
                json!([{"@odata.type": "#microsoft.graph.socialIdentitySource", "socialIdentitySourceType": "myspace"}]),
                "facebook",
            ),
            (
                json!([{"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "x.com"},
                       {"@odata.type": "#microsoft.graph.externalDomainFederation", "domainName": "X.com"}]),
                "twice",
            ),
        ] {
            let e = sources(v.clone()).unwrap_err();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn domains_and_emails() {
        assert_eq!(parse_domain("Contoso.COM.").unwrap(), "contoso.com");
        assert_eq!(parse_domain("xn--rzte-hra.example").unwrap(), "xn--rzte-hra.example");
        for bad in ["contoso", "-x.com", "x-.com", "a..b", "ärzte.de", "x.com/", ""] {
            assert!(parse_domain(bad).is_err(), "{bad}");
        }
        let e = Email::parse(" Jane.Doe@Fabrikam.COM ").unwrap();
        assert_eq!((e.as_str(), e.domain()), ("Jane.Doe@fabrikam.com", "fabrikam.com"));
        for bad in ["jane", "@x.com", "a b@x.com", "jane@", "jane@x", "a_x.com#EXT#@c.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_guests_have_an_external_domain() {
        let mut u = User {
            id: crate::ids::UserId::new(),
            display_name: DisplayName::parse("Jane").unwrap(),
            user_principal_name: "jane_fabrikam.com#EXT#@contoso.com".into(),
            mail: None,
            user_type: UserType::Guest,
            account_enabled: true,
            department: None,
            job_title: None,
            company_name: None,
            employee_id: None,
            city: None,
            country: None,
            created_date_time: Timestamp::UNIX_EPOCH,
            manager: None,
        };
        assert_eq!(external_domain(&u).as_deref(), Some("fabrikam.com"));
        u.mail = Some("jane@Woodgrove.example".into());
        assert_eq!(external_domain(&u).as_deref(), Some("woodgrove.example"), "mail first");
        u.mail = None;
        u.user_principal_name = "jane@Fabrikam.com".into();
        assert_eq!(external_domain(&u).as_deref(), Some("fabrikam.com"));
        u.user_type = UserType::Member;
        assert_eq!(external_domain(&u), None);
    }
}
