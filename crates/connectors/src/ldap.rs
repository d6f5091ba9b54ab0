//! LDAP and Active Directory groups as a delivery target: a resource is a group entry (found
//! under the group base by its object class), its one resource role `Member` is a value of the
//! group's member attribute (`member` and `uniqueMember` hold the user's DN, `memberUid` their
//! uid). A Steward user is found by one of their attributes; every value put in a filter is
//! escaped (`ldap3::ldap_escape`), and DNs are only ever those the directory itself returned.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry, ldap_escape};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use steward_app::connector::{Connector, ConnectorError, DiscoveredResource};
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
        Ok(())
    }
}

/// Grants and revokes group membership in one directory.
pub struct LdapConnector {
    settings: LdapSettings,
    password: Option<SecretString>,
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
        Self { settings, password }
    }

    /// A bound connection.
    async fn open(&self) -> Result<Ldap, ConnectorError> {
        let conn_settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(self.settings.connect_timeout_seconds.clamp(1, 300)))
            .set_starttls(self.settings.start_tls);
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &self.settings.url)
            .await
            .map_err(|e| ConnectorError::Transient(format!("the directory is unavailable: {e}")))?;
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

fn unavailable(e: LdapError) -> ConnectorError {
    ConnectorError::Transient(format!("the directory is unavailable: {e}"))
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
        let mut ldap = self.open().await?;
        let filter = format!("(objectClass={})", ldap_escape(&self.settings.group_object_class));
        let (entries, _) = ldap
            .search(&self.settings.group_base_dn, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .map_err(unavailable)?
            .success()
            .map_err(result_error)?;
        let _ = ldap.unbind().await;
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
            Err(e) => {
                let why = e.to_string();
                return items.iter().map(|_| Err(ConnectorError::Transient(why.clone()))).collect();
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
        let value = match self.member_value(&mut ldap, subject).await {
            Ok(v) => v,
            Err(ConnectorError::Permanent(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let filter = format!("({}={})", self.settings.member_attribute.name(), ldap_escape(&value));
        let found = ldap.search(group, Scope::Base, &filter, vec!["1.1"]).await.map_err(unavailable)?;
        let _ = ldap.unbind().await;
        match found.1.rc {
            0 => Ok(!found.0.is_empty()),
            NO_SUCH_OBJECT => Ok(false),
            rc => Err(refusal(rc, "reading a group", &found.1.text)),
        }
    }

    async fn discover(&self) -> Result<Vec<DiscoveredResource>, ConnectorError> {
        let mut ldap = self.open().await?;
        let filter = format!("(objectClass={})", ldap_escape(&self.settings.group_object_class));
        let (entries, _) = ldap
            .search(&self.settings.group_base_dn, Scope::Subtree, &filter, vec!["cn"])
            .await
            .map_err(unavailable)?
            .success()
            .map_err(result_error)?;
        let _ = ldap.unbind().await;
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
