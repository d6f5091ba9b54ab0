//! The `Connector` port: how Steward grants and revokes a resource role in the system the
//! resource lives in, reads who holds it, and discovers resources. The built-in directory is
//! the first implementation; LDAP, SCIM and PostgreSQL follow.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use steward_domain::connection::Connection;
use steward_domain::directory::User;
use steward_domain::enums::ConnectionKind;
use steward_domain::ids::GroupId;

use crate::ports::{RoleGrant, Store, StoreError};

/// What a connector can fail with. `Transient` failures are retried with backoff; `Permanent`
/// ones fail the delivery at once (with the message shown per resource).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for ConnectorError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => Self::Permanent(format!("{kind} '{id}' no longer exists")),
            StoreError::Rule(e) => Self::Permanent(e.to_string()),
            StoreError::Conflict(m) => Self::Transient(m),
            other => Self::Transient(other.to_string()),
        }
    }
}

/// A resource a connector found in its system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredResource {
    pub origin_id: String,
    pub display_name: String,
    /// The roles it offers, by origin id and name.
    pub roles: Vec<(String, String)>,
}

/// Who holds a role in a target, next to whom Steward granted it to (`Connector::compare`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Indices into `granted` of the users who do not hold the role.
    pub missing: Vec<usize>,
    /// Holders Steward neither granted the role to nor is granting or taking it from right
    /// now, as the target names them (a DN, a SCIM id, a role name).
    pub unexpected: Vec<String>,
}

/// A delivery target. Every call is idempotent: granting what is held, or revoking what is
/// not, succeeds and changes nothing. No call is made while a database row lock is held.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The origin systems (`AadGroup`, …) this connector serves.
    fn serves(&self, origin_system: &str) -> bool;
    async fn grant(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError>;
    async fn revoke(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError>;
    /// Grants several roles (a worker round's grants through this connector), one result per
    /// item, in order. One by one unless the connector can do better (one statement, one
    /// request per group).
    async fn grant_all(&self, items: &[(&RoleGrant, &User)]) -> Vec<Result<(), ConnectorError>> {
        let mut out = Vec::with_capacity(items.len());
        for (grant, subject) in items {
            out.push(self.grant(grant, subject).await);
        }
        out
    }
    /// Checks that the target can be reached and acted on ("connected as …"); for a
    /// connection's test. The built-in directory always can.
    async fn check(&self) -> Result<String, ConnectorError> {
        Ok("nothing to check: this target is Steward's own database".to_owned())
    }
    /// Whether `subject` holds the role now.
    async fn holds(&self, grant: &RoleGrant, subject: &User) -> Result<bool, ConnectorError>;
    /// Reads who holds the role in the target and compares them with `granted` (the users
    /// Steward granted it to) and `in_flight` (those it is granting it to or taking it from
    /// just now, who are neither missing nor unexpected). For reconciliation.
    async fn compare(
        &self,
        grant: &RoleGrant,
        granted: &[&User],
        in_flight: &[&User],
    ) -> Result<Comparison, ConnectorError> {
        let _ = (grant, granted, in_flight);
        Err(ConnectorError::Permanent("this target cannot be reconciled".into()))
    }
    /// Takes the role from a holder Steward did not grant it to, named as `compare` named
    /// them (for connections that are authoritative). Idempotent.
    async fn remove_holder(&self, grant: &RoleGrant, holder: &str) -> Result<(), ConnectorError> {
        let _ = (grant, holder);
        Err(ConnectorError::Permanent("this target cannot be reconciled".into()))
    }
    async fn discover(&self) -> Result<Vec<DiscoveredResource>, ConnectorError>;
}

/// Builds the connectors of configured connections (the `steward-connectors` crate implements
/// it). Settings carry no secret; credentials come opened, as the JSON object they were given.
pub trait ConnectorFactory: Send + Sync {
    /// Whether connections of `kind` can be built here.
    fn supports(&self, kind: ConnectionKind) -> bool;
    /// Checks `settings` for a connection of `kind`; the error says what is wrong, in words.
    fn check_settings(&self, kind: ConnectionKind, settings: &serde_json::Value) -> Result<(), String>;
    /// A connector for `connection`, which should be kept and reused: it may hold a pool.
    fn build(
        &self,
        connection: &Connection,
        credentials: Option<&SecretString>,
    ) -> Result<Arc<dyn Connector>, ConnectorError>;
}

/// Steward's own directory: group membership (`Member_<id>`) and ownership (`Owner_<id>`).
pub struct DirectoryConnector {
    store: Arc<dyn Store>,
}

impl DirectoryConnector {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn target(grant: &RoleGrant) -> Result<(GroupId, bool), ConnectorError> {
        let group: GroupId = grant
            .resource_origin_id
            .parse()
            .map_err(|_| ConnectorError::Permanent(format!("'{}' is not a group id", grant.resource_origin_id)))?;
        let owner = grant.role_origin_id.starts_with("Owner_") || grant.role_name.eq_ignore_ascii_case("Owner");
        Ok((group, owner))
    }
}

#[async_trait]
impl Connector for DirectoryConnector {
    fn serves(&self, origin_system: &str) -> bool {
        origin_system.eq_ignore_ascii_case(steward_domain::catalog::ORIGIN_AAD_GROUP)
    }

    async fn grant(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        let (group, owner) = Self::target(grant)?;
        let r = if owner {
            self.store.add_owner(group, subject.id).await
        } else {
            self.store.add_member(group, subject.id).await
        };
        match r {
            Ok(()) => Ok(()),
            // Already held: granting is idempotent.
            Err(StoreError::Conflict(_)) if self.holds(grant, subject).await? => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// All memberships in one statement and all ownerships in another; should either add
    /// fewer links than asked (some already held, a group gone), its items are granted one by
    /// one, which tells which.
    async fn grant_all(&self, items: &[(&RoleGrant, &User)]) -> Vec<Result<(), ConnectorError>> {
        let mut out: Vec<Option<Result<(), ConnectorError>>> = items.iter().map(|_| None).collect();
        for owners in [false, true] {
            let mut picked = Vec::new();
            let mut links = Vec::new();
            for (k, (grant, subject)) in items.iter().enumerate() {
                match Self::target(grant) {
                    Ok((group, owner)) if owner == owners => {
                        picked.push(k);
                        links.push((group, subject.id));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if let Some(slot) = out.get_mut(k) {
                            *slot = Some(Err(e));
                        }
                    }
                }
            }
            if links.is_empty() {
                continue;
            }
            let all_added =
                matches!(self.store.add_group_links(&links, owners).await, Ok(n) if n == links.len() as u64);
            for k in picked {
                let r = match (all_added, items.get(k)) {
                    (true, _) => Ok(()),
                    (false, Some((grant, subject))) => self.grant(grant, subject).await,
                    (false, None) => continue,
                };
                if let Some(slot) = out.get_mut(k) {
                    *slot = Some(r);
                }
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(ConnectorError::Permanent("not attempted".into())))).collect()
    }

    async fn revoke(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        let (group, owner) = Self::target(grant)?;
        let r = if owner {
            self.store.remove_owner(group, subject.id).await
        } else {
            self.store.remove_member(group, subject.id).await
        };
        match r {
            // Not held (or the group is gone): revoking is idempotent.
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn holds(&self, grant: &RoleGrant, subject: &User) -> Result<bool, ConnectorError> {
        let (group, owner) = Self::target(grant)?;
        if owner {
            Ok(self.store.owner_ids(group).await?.contains(&subject.id))
        } else {
            Ok(self.store.member_ids(group).await?.contains(&subject.id))
        }
    }

    async fn discover(&self) -> Result<Vec<DiscoveredResource>, ConnectorError> {
        Ok(Vec::new())
    }
}

/// The connectors of a running Steward, found by origin system.
#[derive(Clone, Default)]
pub struct Connectors(Vec<Arc<dyn Connector>>);

impl Connectors {
    pub fn new(list: Vec<Arc<dyn Connector>>) -> Self {
        Self(list)
    }
    /// Adds a connector, asked after those already here.
    pub fn push(&mut self, c: Arc<dyn Connector>) {
        self.0.push(c);
    }
    pub fn for_origin(&self, origin_system: &str) -> Option<&Arc<dyn Connector>> {
        self.0.iter().find(|c| c.serves(origin_system))
    }
}
