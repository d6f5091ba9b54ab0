//! LDAP and Active Directory groups as a delivery target: a resource is a group entry (found
//! under the group base by its object class), its one resource role `Member` is a value of the
//! group's member attribute (`member` and `uniqueMember` hold the user's DN, `memberUid` their
//! uid). A Steward user is found by one of their attributes; every value put in a filter is
//! escaped (`ldap3::ldap_escape`), and DNs are only ever those the directory itself returned.
//! Over TLS (`ldaps://` or StartTLS) the directory's certificate is checked against the
//! system's CAs, or against exactly the CAs of the connection's `caCertificate` when set
//! (rustls with aws-lc-rs, the workspace's one TLS backend).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry, ldap_escape};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use steward_app::connector::{Comparison, Connector, ConnectorError, DiscoveredResource};
use steward_app::ports::RoleGrant;
use steward_domain::connection;
use steward_domain::directory::User;
use steward_domain::enums::ConnectionKind;

use crate::ident::UserKey;
use crate::postgres_roles::MEMBER;

/// The `originSystem` of resources this connector serves.
pub const ORIGIN_LDAP_GROUP: &str = connection::origin_system(ConnectionKind::Ldap);

/// The attribute of a group that lists its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MemberAttribute {
    /// `groupOfNames`, Active Directory: the member's DN.
    #[default]
    Member,
    /// `groupOfUniqueNames`: the member's DN.
    UniqueMember,
    /// `posixGroup`: the member's `uid`.
    MemberUid,
}

impl MemberAttribute {
    fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::UniqueMember => "uniqueMember",
            Self::MemberUid => "memberUid",
        }
    }
}

/// Where the directory is and how Steward finds users and groups in it; no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub start_tls: bool,
    /// The entry Steward binds as (its password is a credential).
    pub bind_dn: String,
    pub user_base_dn: String,
    pub group_base_dn: String,
    #[serde(default = "default_group_class")]
    pub group_object_class: String,
    #[serde(default)]
    pub member_attribute: MemberAttribute,
    /// Which Steward attribute identifies a user in the directory…
    #[serde(default = "default_user_key")]
    pub user_key: UserKey,
    /// …as the value of which directory attribute (`mail`, `uid`, `userPrincipalName`).
    #[serde(default = "default_user_attribute")]
    pub user_attribute: String,
    #[serde(default = "default_timeout")]
    pub connect_timeout_seconds: u64,
    /// The longest one operation (a bind, a search, a change) may take before it is given up
    /// and retried later: a directory that accepts connections but never answers cannot
    /// hold a worker.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_seconds: u64,
    /// PEM text of the CA certificate(s) a TLS connection trusts instead of the system's:
    /// for a directory whose certificate an internal CA issued. Public, not a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

fn default_group_class() -> String {
    "groupOfNames".into()
}
fn default_user_key() -> UserKey {
    UserKey::Mail
}
fn default_user_attribute() -> String {
    "mail".into()
}
fn default_timeout() -> u64 {
    10
}
fn default_operation_timeout() -> u64 {
    30
}

impl LdapSettings {
    /// What cannot work whatever the directory says.
    pub fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("ldap://") || self.url.starts_with("ldaps://")) {
            return Err("url must start with ldap:// or ldaps://".into());
        }
        if self.start_tls && self.url.starts_with("ldaps://") {
            return Err("startTls is for ldap:// URLs; ldaps:// is TLS already".into());
        }
        let attr_ok = |a: &str| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';');
        if !attr_ok(&self.user_attribute) || !attr_ok(&self.group_object_class) {
            return Err("userAttribute and groupObjectClass must be attribute names (letters, digits, '-')".into());
        }
        for (name, dn) in
            [("bindDn", &self.bind_dn), ("userBaseDn", &self.user_base_dn), ("groupBaseDn", &self.group_base_dn)]
        {
            if dn.trim().is_empty() {
                return Err(format!("{name} must not be empty"));
            }
        }
        if let Some(pem) = &self.ca_certificate {
            if self.url.starts_with("ldap://") && !self.start_tls {
                return Err("caCertificate is only used over TLS: use an ldaps:// url or set startTls".into());
            }
            ca_roots(pem)?;
        }
        Ok(())
    }

    /// The TLS configuration trusting exactly `caCertificate`, or `None` for ldap3's default
    /// (the system's CAs).
    fn tls_config(&self) -> Result<Option<Arc<ClientConfig>>, String> {
        let Some(pem) = &self.ca_certificate else { return Ok(None) };
        let roots = ca_roots(pem)?;
        // The provider is named rather than taken from the process default, so this never
        // depends on (or panics for lack of) a provider installed elsewhere.
        let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("no TLS configuration for the directory: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }
}

/// The trust anchors in the PEM text `pem`: one or more `CERTIFICATE` sections, each a CA
/// certificate; anything else (no certificate, bad PEM, a certificate that does not parse,
/// a private key pasted along) is refused.
fn ca_roots(pem: &str) -> Result<RootCertStore, String> {
    if pem.contains("PRIVATE KEY-----") {
        return Err("caCertificate holds a private key: give only the CA's certificate, and replace that key".into());
    }
    let mut roots = RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let cert = cert.map_err(|e| format!("caCertificate is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("certificate {} of caCertificate is not a usable CA certificate: {e}", n + 1))?;
    }
    if roots.is_empty() {
        return Err("caCertificate holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(roots)
}

/// Grants and revokes group membership in one directory.
pub struct LdapConnector {
    settings: LdapSettings,
    password: Option<SecretString>,
    /// Built once from `caCertificate`; an unusable one fails every operation, permanently.
    tls: Result<Option<Arc<ClientConfig>>, String>,
}

impl std::fmt::Debug for LdapConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConnector").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// LDAP result codes this connector tells apart.
const NO_SUCH_OBJECT: u32 = 32;
const NO_SUCH_ATTRIBUTE: u32 = 16;
const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
const UNAVAILABLE: [u32; 3] = [51, 52, 80]; // busy, unavailable, other

impl LdapConnector {
    pub fn new(settings: LdapSettings, password: Option<SecretString>) -> Self {
        let tls = settings.tls_config();
        Self { settings, password, tls }
    }

    /// Runs one directory operation, giving up (transiently) after the operation timeout.
    async fn bounded<T>(
        &self,
        doing: &str,
        op: impl Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        let limit = Duration::from_secs(self.settings.operation_timeout_seconds.clamp(1, 3600));
        tokio::time::timeout(limit, op).await.unwrap_or_else(|_| {
            Err(ConnectorError::Transient(format!("the directory did not answer {doing} within {} s", limit.as_secs())))
        })
    }

    /// A bound connection.
    async fn open(&self) -> Result<Ldap, ConnectorError> {
        self.bounded("connecting and binding", self.open_unbounded()).await
    }

    async fn open_unbounded(&self) -> Result<Ldap, ConnectorError> {
        let mut conn_settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(self.settings.connect_timeout_seconds.clamp(1, 300)))
            .set_starttls(self.settings.start_tls);
        match &self.tls {
            Ok(Some(config)) => conn_settings = conn_settings.set_config(Arc::clone(config)),
            Ok(None) => {}
            Err(e) => return Err(ConnectorError::Permanent(e.clone())),
        }
        let (conn, mut ldap) =
            LdapConnAsync::with_settings(conn_settings, &self.settings.url).await.map_err(connect_error)?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "an LDAP connection ended");
            }
        });
        let password = self.password.as_ref().map(|p| p.expose_secret().to_owned()).unwrap_or_default();
        let bound = ldap.simple_bind(&self.settings.bind_dn, &password).await.map_err(unavailable)?;
        if bound.rc != 0 {
            return Err(refusal(bound.rc, &format!("binding as '{}'", self.settings.bind_dn), &bound.text));
        }
        Ok(ldap)
    }

    /// The value the member attribute holds for `subject`: their entry's DN, or their `uid`.
    async fn member_value(&self, ldap: &mut Ldap, subject: &User) -> Result<String, ConnectorError> {
        let key = self.settings.user_key.of(subject).map_err(ConnectorError::Permanent)?;
        let filter = format!("({}={})", self.settings.user_attribute, ldap_escape(&key));
        let attrs = match self.settings.member_attribute {
            MemberAttribute::MemberUid => vec!["uid"],
            _ => vec!["1.1"],
        };
        let (entries, result) = ldap
            .search(&self.settings.user_base_dn, Scope::Subtree, &filter, attrs)
            .await
            .map_err(unavailable)?
            .success()
            .map_err(result_error)?;
        let _ = result;
        let mut entries = entries.into_iter().map(SearchEntry::construct);
        let (Some(entry), None) = (entries.next(), entries.next()) else {
            return Err(ConnectorError::Permanent(format!(
                "the directory has no single entry with {} '{}' under {}",
                self.settings.user_attribute, key, self.settings.user_base_dn
            )));
        };
        match self.settings.member_attribute {
            MemberAttribute::MemberUid => entry
                .attrs
                .get("uid")
                .and_then(|v| v.first().cloned())
                .ok_or_else(|| ConnectorError::Permanent(format!("the entry '{}' has no uid", entry.dn))),
            _ => Ok(entry.dn),
        }
    }

    /// The member values of `users` in the directory, by index (`None`: no single entry has
    /// their key): one search each for a few users, one paged search of the user base for
    /// many (a reconciliation of a large group).
    async fn member_values(&self, ldap: &mut Ldap, users: &[&User]) -> Result<Vec<Option<String>>, ConnectorError> {
        if users.len() <= BULK_LOOKUP {
            let mut out = Vec::with_capacity(users.len());
            for u in users {
                out.push(match self.member_value(ldap, u).await {
                    Ok(v) => Some(v),
                    Err(ConnectorError::Permanent(_)) => None,
                    Err(e) => return Err(e),
                });
            }
            return Ok(out);
        }
        let attr = self.settings.user_attribute.as_str();
        let filter = format!("({attr}=*)");
        let mut attrs = vec![attr];
        if self.settings.member_attribute == MemberAttribute::MemberUid {
            attrs.push("uid");
        }
        let adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(1000))];
        let mut stream = ldap
            .streaming_search_with(adapters, &self.settings.user_base_dn, Scope::Subtree, &filter, attrs)
            .await
            .map_err(unavailable)?;
        // Key (lower case: mail and uid compare ignoring case) to value; `None` when two
        // entries share a key, as `member_value` refuses them too.
        let mut by_key: HashMap<String, Option<String>> = HashMap::new();
        while let Some(entry) = stream.next().await.map_err(unavailable)? {
            let e = SearchEntry::construct(entry);
            let value = match self.settings.member_attribute {
                MemberAttribute::MemberUid => attribute(&e, "uid").and_then(|v| v.first().cloned()),
                _ => Some(e.dn.clone()),
            };
            for key in attribute(&e, attr).into_iter().flatten() {
                by_key.entry(key.to_lowercase()).and_modify(|v| *v = None).or_insert_with(|| value.clone());
            }
        }
        stream.finish().await.success().map_err(result_error)?;
        Ok(users
            .iter()
            .map(|u| {
                let key = self.settings.user_key.of(u).ok()?;
                by_key.get(&key.to_lowercase()).cloned().flatten()
            })
            .collect())
    }

    /// The group entries under the group base, with `attrs`, over a connection of their own.
    async fn group_entries(&self, attrs: Vec<&str>) -> Result<Vec<ldap3::ResultEntry>, ConnectorError> {
        let mut ldap = self.open().await?;
        let filter = format!("(objectClass={})", ldap_escape(&self.settings.group_object_class));
        let search = async {
            ldap.search(&self.settings.group_base_dn, Scope::Subtree, &filter, attrs)
                .await
                .map_err(unavailable)?
                .success()
                .map_err(result_error)
        };
        let (entries, _) = self.bounded("a search", search).await?;
        let _ = ldap.unbind().await;
        Ok(entries)
    }

    /// The values of a group's member attribute.
    async fn holders(&self, ldap: &mut Ldap, group: &str) -> Result<Vec<String>, ConnectorError> {
        let attr = self.settings.member_attribute.name();
        let (entries, _) = ldap
            .search(group, Scope::Base, "(objectClass=*)", vec![attr])
            .await
            .map_err(unavailable)?
            .success()
            .map_err(result_error)?;
        Ok(entries
            .into_iter()
            .map(SearchEntry::construct)
            .flat_map(|e| attribute(&e, attr).cloned().unwrap_or_default())
            .collect())
    }

    fn group(grant: &RoleGrant) -> Result<&str, ConnectorError> {
        if grant.role_origin_id != MEMBER {
            return Err(ConnectorError::Permanent(format!(
                "an LDAP group has one resource role, '{MEMBER}', not '{}'",
                grant.role_origin_id
            )));
        }
        Ok(&grant.resource_origin_id)
    }

    async fn change(&self, grant: &RoleGrant, subject: &User, add: bool) -> Result<(), ConnectorError> {
        let mut ldap = self.open().await?;
        let done = self.change_on(&mut ldap, grant, subject, add).await;
        let _ = ldap.unbind().await;
        done
    }

    /// One membership change on a bound connection.
    async fn change_on(
        &self,
        ldap: &mut Ldap,
        grant: &RoleGrant,
        subject: &User,
        add: bool,
    ) -> Result<(), ConnectorError> {
        self.bounded("a membership change", self.change_on_unbounded(ldap, grant, subject, add)).await
    }

    async fn change_on_unbounded(
        &self,
        ldap: &mut Ldap,
        grant: &RoleGrant,
        subject: &User,
        add: bool,
    ) -> Result<(), ConnectorError> {
        let group = Self::group(grant)?;
        let value = match self.member_value(ldap, subject).await {
            Ok(v) => v,
            // Someone the directory does not know holds nothing in it.
            Err(ConnectorError::Permanent(_)) if !add => return Ok(()),
            Err(e) => return Err(e),
        };
        let attr = self.settings.member_attribute.name();
        let values = HashSet::from([value.as_str()]);
        let change = if add { Mod::Add(attr, values) } else { Mod::Delete(attr, values) };
        let done = ldap.modify(group, vec![change]).await.map_err(unavailable)?;
        match (done.rc, add) {
            (0, _) | (ATTRIBUTE_OR_VALUE_EXISTS, true) | (NO_SUCH_ATTRIBUTE, false) => Ok(()),
            (NO_SUCH_OBJECT, false) => Ok(()),
            (rc, _) => Err(refusal(rc, &format!("changing the members of '{group}'"), &done.text)),
        }
    }
}

/// Users looked up one search each, up to this many; more are found with one paged search.
const BULK_LOOKUP: usize = 200;

/// The values of `name` in an entry, whatever case the directory spells the name in.
fn attribute<'e>(e: &'e SearchEntry, name: &str) -> Option<&'e Vec<String>> {
    e.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// A member value as compared: DNs ignore case and the spaces after separators.
fn normal(value: &str) -> String {
    value.split(',').map(|rdn| rdn.trim().to_lowercase()).collect::<Vec<_>>().join(",")
}

fn unavailable(e: LdapError) -> ConnectorError {
    ConnectorError::Transient(format!("the directory is unavailable: {e}"))
}

/// Why a connection (TCP, then TLS or StartTLS) failed. A certificate the settings do not
/// trust, or a TLS handshake that cannot succeed, stays so on retry: permanent. A directory
/// that cannot be reached is transient.
fn connect_error(e: LdapError) -> ConnectorError {
    let tls = match &e {
        // StartTLS refused (by a directory without TLS, say).
        LdapError::LdapResult { result } => return refusal(result.rc, "StartTLS", &result.text),
        LdapError::DNSName { source } => {
            return ConnectorError::Permanent(format!(
                "the directory's certificate cannot be checked: the url's host is no TLS server name ({source})"
            ));
        }
        LdapError::Rustls { source } => Some(source),
        // tokio-rustls reports handshake failures as I/O errors wrapping the rustls error.
        LdapError::Io { source } => source.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    match tls {
        Some(rustls::Error::InvalidCertificate(why)) => {
            let why = match why {
                CertificateError::UnknownIssuer => {
                    "it is not issued by a trusted CA (caCertificate names the CA that issued it)".to_owned()
                }
                CertificateError::BadSignature => {
                    "its signature does not verify with the trusted CA of its issuer's name".to_owned()
                }
                other => other.to_string(),
            };
            ConnectorError::Permanent(format!("the directory's certificate is not trusted: {why}"))
        }
        Some(rustls::Error::NoCertificatesPresented) => {
            ConnectorError::Permanent("the directory's certificate is not trusted: it presented none".into())
        }
        Some(
            why @ (rustls::Error::PeerIncompatible(_)
            | rustls::Error::PeerMisbehaved(_)
            | rustls::Error::AlertReceived(_)
            | rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateHandshakeMessage { .. }
            | rustls::Error::InappropriateMessage { .. }),
        ) => ConnectorError::Permanent(format!("no TLS session with the directory could be agreed: {why}")),
        _ => unavailable(e),
    }
}

fn result_error(e: LdapError) -> ConnectorError {
    match e {
        LdapError::LdapResult { result } => refusal(result.rc, "searching", &result.text),
        other => unavailable(other),
    }
}

fn refusal(rc: u32, doing: &str, text: &str) -> ConnectorError {
    let message = format!(
        "the directory refused {doing}: result {rc}{}",
        if text.is_empty() { String::new() } else { format!(" ({text})") }
    );
    // Busy or unavailable servers are retried; a wrong password, missing rights or a bad
    // entry are not.
    if UNAVAILABLE.contains(&rc) { ConnectorError::Transient(message) } else { ConnectorError::Permanent(message) }
}

#[async_trait]
impl Connector for LdapConnector {
    fn serves(&self, origin_system: &str) -> bool {
        origin_system.eq_ignore_ascii_case(ORIGIN_LDAP_GROUP)
    }

    async fn check(&self) -> Result<String, ConnectorError> {
        let entries = self.group_entries(vec!["1.1"]).await?;
        Ok(format!(
            "connected to {} as '{}'; {} group(s) under {}",
            self.settings.url,
            self.settings.bind_dn,
            entries.len(),
            self.settings.group_base_dn
        ))
    }

    async fn grant(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        self.change(grant, subject, true).await
    }

    async fn revoke(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        self.change(grant, subject, false).await
    }

    /// A round's grants over one bound connection (not a connection and a bind each); a
    /// connection that fails part-way leaves the rest transient, to be retried.
    async fn grant_all(&self, items: &[(&RoleGrant, &User)]) -> Vec<Result<(), ConnectorError>> {
        let mut out = Vec::with_capacity(items.len());
        let mut ldap = match self.open().await {
            Ok(l) => l,
            // Every item fails as the connection did: an outage is retried, an untrusted
            // certificate or a refused bind is not (as for a single `grant`).
            Err(e) => {
                let permanent = matches!(e, ConnectorError::Permanent(_));
                let why = e.to_string();
                let each = || {
                    if permanent {
                        ConnectorError::Permanent(why.clone())
                    } else {
                        ConnectorError::Transient(why.clone())
                    }
                };
                return items.iter().map(|_| Err(each())).collect();
            }
        };
        for (grant, subject) in items {
            out.push(self.change_on(&mut ldap, grant, subject, true).await);
        }
        let _ = ldap.unbind().await;
        out
    }

    async fn holds(&self, grant: &RoleGrant, subject: &User) -> Result<bool, ConnectorError> {
        let group = Self::group(grant)?;
        let mut ldap = self.open().await?;
        let value = match self.bounded("a search", self.member_value(&mut ldap, subject)).await {
            Ok(v) => v,
            Err(ConnectorError::Permanent(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let filter = format!("({}={})", self.settings.member_attribute.name(), ldap_escape(&value));
        let search = async { ldap.search(group, Scope::Base, &filter, vec!["1.1"]).await.map_err(unavailable) };
        let found = self.bounded("a search", search).await?;
        let _ = ldap.unbind().await;
        match found.1.rc {
            0 => Ok(!found.0.is_empty()),
            NO_SUCH_OBJECT => Ok(false),
            rc => Err(refusal(rc, "reading a group", &found.1.text)),
        }
    }

    async fn compare(
        &self,
        grant: &RoleGrant,
        granted: &[&User],
        in_flight: &[&User],
    ) -> Result<Comparison, ConnectorError> {
        let group = Self::group(grant)?;
        let mut ldap = self.open().await?;
        let read = async {
            let holders = self.holders(&mut ldap, group).await?;
            let everyone: Vec<&User> = granted.iter().chain(in_flight).copied().collect();
            let values = self.member_values(&mut ldap, &everyone).await?;
            Ok((holders, values))
        };
        // A large group takes longer than one operation.
        let read = tokio::time::timeout(
            Duration::from_secs(self.settings.operation_timeout_seconds.clamp(1, 3600) * 10),
            read,
        );
        let (holders, values): (Vec<String>, Vec<Option<String>>) = read.await.unwrap_or_else(|_| {
            Err(ConnectorError::Transient("the directory did not answer the comparison in time".into()))
        })?;
        let _ = ldap.unbind().await;
        let held: HashSet<String> = holders.iter().map(|h| normal(h)).collect();
        let known: HashSet<String> = values.iter().flatten().map(|v| normal(v)).collect();
        let missing = values
            .iter()
            .take(granted.len())
            .enumerate()
            .filter(|(_, v)| v.as_ref().is_none_or(|v| !held.contains(&normal(v))))
            .map(|(k, _)| k)
            .collect();
        let unexpected = holders.into_iter().filter(|h| !known.contains(&normal(h))).collect();
        Ok(Comparison { missing, unexpected })
    }

    async fn remove_holder(&self, grant: &RoleGrant, holder: &str) -> Result<(), ConnectorError> {
        let group = Self::group(grant)?;
        let mut ldap = self.open().await?;
        let attr = self.settings.member_attribute.name();
        let change =
            async { ldap.modify(group, vec![Mod::Delete(attr, HashSet::from([holder]))]).await.map_err(unavailable) };
        let done = self.bounded("a membership change", change).await?;
        let _ = ldap.unbind().await;
        match done.rc {
            0 | NO_SUCH_ATTRIBUTE | NO_SUCH_OBJECT => Ok(()),
            rc => Err(refusal(rc, &format!("removing '{holder}' from '{group}'"), &done.text)),
        }
    }

    async fn discover(&self) -> Result<Vec<DiscoveredResource>, ConnectorError> {
        let entries = self.group_entries(vec!["cn"]).await?;
        let mut out: Vec<DiscoveredResource> = entries
            .into_iter()
            .map(SearchEntry::construct)
            .map(|e| DiscoveredResource {
                display_name: e.attrs.get("cn").and_then(|v| v.first().cloned()).unwrap_or_else(|| e.dn.clone()),
                origin_id: e.dn,
                roles: vec![(MEMBER.to_owned(), MEMBER.to_owned())],
            })
            .collect();
        out.sort_by(|a, b| a.display_name.cmp(&b.display_name).then_with(|| a.origin_id.cmp(&b.origin_id)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate (P-256), made for these tests; its key was thrown away.
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBkjCCATmgAwIBAgIUKh1QIAVXpUKvT5XbasJpBP2Ffc8wCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUU3Rld2FyZCB1bml0LXRlc3QgQ0EwHhcNMjYxMjAyMTM1ODU5
WhcNMzYxMTI5MTM1ODU5WjAfMR0wGwYDVQQDDBRTdGV3YXJkIHVuaXQtdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIkq/+KUoBAVA0uinTAxNyEFY72C
xWc8BvowkZWd5H9ikixwrAR5CyBnJTkq4OsH+guf9l81MoFIDg2jYO0yGFqjUzBR
MB0GA1UdDgQWBBSSj8jl8pdvPkV9pjTXv1BDAV16sDAfBgNVHSMEGDAWgBSSj8jl
8pdvPkV9pjTXv1BDAV16sDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cA
MEQCICcQAJkmtwb3hlDD6QWJbF1yzLeYhRAW3uF4BqMXPlREAiBrbFr+NCHJM4fq
43RNWzSB9yFtiOucQ53wneLaTFvg1g==
-----END CERTIFICATE-----
";

    fn settings(json: serde_json::Value) -> LdapSettings {
        let mut base = serde_json::json!({
            "url": "ldaps://ldap.example.test",
            "bindDn": "cn=steward,dc=example,dc=test",
            "userBaseDn": "ou=people,dc=example,dc=test",
            "groupBaseDn": "ou=groups,dc=example,dc=test",
        });
        if let (Some(base), serde_json::Value::Object(more)) = (base.as_object_mut(), json) {
            base.extend(more);
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_ca_certificate_is_checked_and_only_taken_over_tls() {
        let ok = settings(serde_json::json!({ "caCertificate": CA }));
        assert_eq!(ok.check(), Ok(()));
        assert!(matches!(ok.tls_config(), Ok(Some(_))));
        let two = format!("{CA}\n{CA}");
        assert_eq!(settings(serde_json::json!({ "caCertificate": two })).check(), Ok(()));
        let starttls = serde_json::json!({ "url": "ldap://ldap.example.test", "startTls": true, "caCertificate": CA });
        assert_eq!(settings(starttls).check(), Ok(()));
        assert!(matches!(settings(serde_json::json!({})).tls_config(), Ok(None)), "no CA: ldap3's default roots");

        let refused = |more: serde_json::Value, says: &str| {
            let why = settings(more).check().unwrap_err();
            assert!(why.contains(says), "{why}");
        };
        refused(serde_json::json!({ "url": "ldap://ldap.example.test", "caCertificate": CA }), "only used over TLS");
        refused(serde_json::json!({ "caCertificate": "" }), "no PEM certificate");
        refused(serde_json::json!({ "caCertificate": "not a certificate at all" }), "no PEM certificate");
        let truncated = CA.replace("-----END CERTIFICATE-----", "");
        refused(serde_json::json!({ "caCertificate": truncated }), "not valid PEM");
        let garbage = "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n";
        refused(serde_json::json!({ "caCertificate": garbage }), "certificate 1 of caCertificate is not a usable CA");
        let with_key = format!("{CA}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        refused(serde_json::json!({ "caCertificate": with_key }), "holds a private key");
    }

    #[test]
    fn tls_failures_are_permanent_and_unreachability_transient() {
        let io = |e: rustls::Error| LdapError::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        match connect_error(io(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))) {
            ConnectorError::Permanent(m) => assert!(m.starts_with("the directory's certificate is not trusted"), "{m}"),
            other => panic!("{other:?}"),
        }
        match connect_error(io(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))) {
            ConnectorError::Permanent(m) => assert!(m.starts_with("the directory's certificate is not trusted"), "{m}"),
            other => panic!("{other:?}"),
        }
        let refused = LdapError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(connect_error(refused), ConnectorError::Transient(_)));
    }
}
