//! Use cases of connections to delivery targets: register one (its settings checked by the
//! connector of its kind, its credentials sealed), change and delete it, test whether its
//! target answers, and discover the resources and roles the target offers.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;
use steward_domain::audit::Activity;
use steward_domain::connection::{self, Connection, Reconciliation};
use steward_domain::enums::ConnectionKind;
use steward_domain::ids::ConnectionId;
use steward_domain::text::{DESCRIPTION_MAX, DisplayName, bounded};

use crate::audit::{CONNECTION, admin_event, changed_properties, modified, named};
use crate::auth::AdminCap;
use crate::connector::{Connector, ConnectorError, ConnectorFactory, DiscoveredResource};
use crate::secrets::Sealer;
use crate::{AppError, Services};

/// What connections need besides the store: the factory that builds their connectors and,
/// to store credentials, the sealer made from the configured key.
#[derive(Clone, Default)]
pub struct ConnectionSetup {
    pub factory: Option<Arc<dyn ConnectorFactory>>,
    pub sealer: Option<Sealer>,
}

impl std::fmt::Debug for ConnectionSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSetup")
            .field("factory", &self.factory.is_some())
            .field("sealer", &self.sealer.is_some())
            .finish()
    }
}

/// The largest credentials object, in bytes of JSON.
pub const CREDENTIALS_MAX: usize = 4096;

/// A connection's secrets as given: a JSON object of strings (`{"password": "…"}`), kept as
/// its JSON text and never shown.
#[derive(Clone)]
pub struct Credentials(SecretString);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([REDACTED])")
    }
}

impl Credentials {
    pub fn from_json(v: &Value) -> Result<Self, AppError> {
        let Value::Object(fields) = v else {
            return Err(AppError::Invalid("credentials must be a JSON object of strings.".into()));
        };
        if let Some((name, _)) = fields.iter().find(|(_, v)| !v.is_string()) {
            return Err(AppError::Invalid(format!("credentials.{name} must be a string.")));
        }
        let text = v.to_string();
        if text.len() > CREDENTIALS_MAX {
            return Err(AppError::Invalid(format!("credentials must be at most {CREDENTIALS_MAX} bytes of JSON.")));
        }
        Ok(Self(SecretString::from(text)))
    }
}

#[derive(Debug, Clone)]
pub struct NewConnection {
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub kind: ConnectionKind,
    pub settings: Value,
    pub credentials: Option<Credentials>,
    pub reconciliation: Reconciliation,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionPatch {
    pub display_name: Option<DisplayName>,
    pub description: Option<Option<String>>,
    /// Replaces the settings whole.
    pub settings: Option<Value>,
    /// `Some(None)` removes the stored credentials.
    pub credentials: Option<Option<Credentials>>,
    pub reconciliation: Option<Reconciliation>,
}

/// The outcome of a connection test: said either way, since a failing target is an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub succeeded: bool,
    pub message: String,
}

fn factory(s: &Services) -> Result<&Arc<dyn ConnectorFactory>, AppError> {
    s.connection_setup
        .factory
        .as_ref()
        .ok_or_else(|| AppError::Invalid("This server has no connectors to build connections with.".into()))
}

fn check_settings(s: &Services, kind: ConnectionKind, settings: &Value) -> Result<(), AppError> {
    connection::check_settings_shape(settings)?;
    let f = factory(s)?;
    if !f.supports(kind) {
        return Err(AppError::Invalid(format!("Connections of kind '{kind}' are not supported yet.")));
    }
    f.check_settings(kind, settings).map_err(|m| AppError::Invalid(format!("settings: {m}")))
}

fn seal(s: &Services, id: ConnectionId, c: &Credentials) -> Result<String, AppError> {
    let sealer = s.connection_setup.sealer.as_ref().ok_or_else(|| {
        AppError::Invalid(
            "Credentials cannot be stored: this server has no secrets key (set secrets_key, or STEWARD_SECRETS_KEY, \
             to 32 random bytes in base64)."
                .into(),
        )
    })?;
    sealer.seal(&id.to_string(), &c.0).map_err(|e| AppError::Invalid(e.to_string()))
}

pub async fn create_connection(s: &Services, cap: AdminCap, new: NewConnection) -> Result<Connection, AppError> {
    let description = bounded("description", new.description, DESCRIPTION_MAX)?;
    check_settings(s, new.kind, &new.settings)?;
    let now = s.clock.now();
    let c = Connection {
        id: ConnectionId::new(),
        display_name: new.display_name,
        description,
        kind: new.kind,
        settings: new.settings,
        has_credentials: new.credentials.is_some(),
        reconciliation: new.reconciliation,
        created_date_time: now,
        modified_date_time: now,
    };
    let sealed = new.credentials.as_ref().map(|cr| seal(s, c.id, cr)).transpose()?;
    let event = admin_event(cap, Activity::CreateConnection, CONNECTION, c.id, now).with_detail(format!(
        "{}, kind {}",
        named(c.display_name.as_str()),
        c.kind
    ));
    s.store.insert_connection(&c, sealed.as_deref(), &event).await?;
    Ok(c)
}

pub async fn require_connection(s: &Services, id: ConnectionId) -> Result<Connection, AppError> {
    s.store.get_connection(id).await?.ok_or_else(|| AppError::not_found("connection", id))
}

pub async fn get_connection(s: &Services, _cap: AdminCap, id: ConnectionId) -> Result<Connection, AppError> {
    require_connection(s, id).await
}

pub async fn list_connections(s: &Services, _cap: AdminCap) -> Result<Vec<Connection>, AppError> {
    Ok(s.store.list_connections().await?)
}

/// Applies a patch; `if_match` (an ETag) makes it conditional.
pub async fn update_connection(
    s: &Services,
    cap: AdminCap,
    id: ConnectionId,
    p: ConnectionPatch,
    if_match: Option<&str>,
) -> Result<Connection, AppError> {
    let description = p.description.map(|d| bounded("description", d, DESCRIPTION_MAX)).transpose()?;
    let sealed = match &p.credentials {
        Some(Some(cr)) => Some(Some(seal(s, id, cr)?)),
        Some(None) => Some(None),
        None => None,
    };
    for _ in 0..crate::WRITE_ATTEMPTS {
        let before = require_connection(s, id).await?;
        crate::check_if_match(if_match, "connection", before.modified_date_time)?;
        let mut c = before.clone();
        let read_at = c.modified_date_time;
        if let Some(v) = &p.display_name {
            c.display_name = v.clone();
        }
        if let Some(v) = &description {
            c.description = v.clone();
        }
        if let Some(v) = &p.settings {
            check_settings(s, c.kind, v)?;
            c.settings = v.clone();
        }
        if let Some(v) = &sealed {
            c.has_credentials = v.is_some();
        }
        if let Some(v) = p.reconciliation {
            c.reconciliation = v;
        }
        let now = s.clock.now();
        c.modified_date_time = steward_domain::time::next_modified(read_at, now);
        let mut detail = changed_properties(&before, &c);
        if matches!(sealed, Some(Some(_))) {
            detail.push_str("; credentials replaced");
        }
        let event = admin_event(cap, Activity::UpdateConnection, CONNECTION, id, now)
            .with_detail(detail)
            .with_changes(modified(&before, &c));
        match s.store.update_connection(&c, sealed.as_ref().map(|v| v.as_deref()), read_at, &event).await {
            Ok(()) => {
                // A new interval counts from now.
                if c.reconciliation != before.reconciliation {
                    s.store.set_reconcile_at(id, c.reconciliation.next_after(now)).await?;
                }
                return Ok(c);
            }
            Err(e) => crate::lost_race(e, if_match, "connection")?,
        }
    }
    Err(AppError::Conflict("The connection kept changing while it was being updated; try again.".into()))
}

pub async fn delete_connection(
    s: &Services,
    cap: AdminCap,
    id: ConnectionId,
    if_match: Option<&str>,
) -> Result<(), AppError> {
    if if_match.is_some() {
        let c = require_connection(s, id).await?;
        crate::check_if_match(if_match, "connection", c.modified_date_time)?;
    }
    let event = admin_event(cap, Activity::DeleteConnection, CONNECTION, id, s.clock.now());
    Ok(s.store.delete_connection(id, &event).await?)
}

/// The connector of a connection, with its credentials opened for it.
async fn connector_for(s: &Services, c: &Connection) -> Result<Arc<dyn Connector>, AppError> {
    let sealed = s.store.connection_credentials(c.id).await?;
    assemble(&s.connection_setup, c, sealed.as_deref()).map_err(|e| AppError::Conflict(e.to_string()))
}

/// A connection's connector from its sealed credentials: opened with the setup's sealer,
/// built by its factory. The one place credentials are opened.
fn assemble(
    setup: &ConnectionSetup,
    c: &Connection,
    sealed: Option<&str>,
) -> Result<Arc<dyn Connector>, ConnectorError> {
    let credentials = match sealed {
        Some(sealed) => {
            let sealer = setup.sealer.as_ref().ok_or_else(|| {
                ConnectorError::Permanent(
                    "The connection's credentials cannot be opened: this server has no secrets key.".into(),
                )
            })?;
            Some(sealer.open(&c.id.to_string(), sealed).map_err(|e| ConnectorError::Permanent(e.to_string()))?)
        }
        None => None,
    };
    let factory =
        setup.factory.as_ref().ok_or_else(|| ConnectorError::Permanent("This server has no connectors.".into()))?;
    factory.build(c, credentials.as_ref())
}

/// Whether the connection's target answers and lets Steward act, in words.
pub async fn test_connection(s: &Services, _cap: AdminCap, id: ConnectionId) -> Result<TestOutcome, AppError> {
    let c = require_connection(s, id).await?;
    let connector = connector_for(s, &c).await?;
    Ok(match connector.check().await {
        Ok(message) => TestOutcome { succeeded: true, message },
        Err(ConnectorError::Transient(m) | ConnectorError::Permanent(m)) => {
            TestOutcome { succeeded: false, message: m }
        }
    })
}

/// The connection and the resources its target offers, with origin ids that name the connection
/// (`connection::origin_id`), ready for a resource request.
pub async fn discover(
    s: &Services,
    _cap: AdminCap,
    id: ConnectionId,
) -> Result<(Connection, Vec<DiscoveredResource>), AppError> {
    let c = require_connection(s, id).await?;
    let found = connector_for(s, &c).await?.discover().await.map_err(|e| {
        AppError::Upstream(format!("Discovery through connection '{}' failed: {e}", c.display_name.as_str()))
    })?;
    let found = found
        .into_iter()
        .map(|r| DiscoveredResource { origin_id: connection::origin_id(c.id, &r.origin_id), ..r })
        .collect();
    Ok((c, found))
}

/// The object `origin_id` (`<connection id>:<object>`) names, as its connection's discovery
/// reports it: how a resource request checks that what it adds exists, and learns its name
/// and roles.
pub async fn find_object(s: &Services, origin_system: &str, origin_id: &str) -> Result<DiscoveredResource, AppError> {
    let (cid, object) = connection::split_origin_id(origin_id).ok_or_else(|| {
        AppError::Invalid(format!(
            "resource.originId '{}' must be '<connection id>:<object>', as a connection's discovery gives it.",
            steward_domain::text::clip(origin_id, 80)
        ))
    })?;
    let c = require_connection(s, cid).await?;
    if connection::origin_system(c.kind) != origin_system {
        return Err(AppError::Invalid(format!(
            "Connection '{}' is of kind {}, whose resources have originSystem {}, not {origin_system}.",
            c.display_name.as_str(),
            c.kind,
            connection::origin_system(c.kind)
        )));
    }
    let found = connector_for(s, &c).await?.discover().await.map_err(|e| {
        AppError::Upstream(format!("Discovery through connection '{}' failed: {e}", c.display_name.as_str()))
    })?;
    found.into_iter().find(|r| r.origin_id == object).ok_or_else(|| AppError::not_found("resource", origin_id))
}

/// The delivery target of every connection: finds the connection an origin id names, builds
/// its connector (kept while the connection is unchanged) and hands it the grant with the
/// target's own object id.
pub struct ConnectionConnector {
    store: Arc<dyn crate::ports::Store>,
    setup: ConnectionSetup,
    built: std::sync::Mutex<std::collections::HashMap<ConnectionId, Built>>,
}

/// A connection's connector, and the version of the connection it was built from.
type Built = (jiff::Timestamp, Arc<dyn Connector>);

impl ConnectionConnector {
    pub fn new(store: Arc<dyn crate::ports::Store>, setup: ConnectionSetup) -> Self {
        Self { store, setup, built: std::sync::Mutex::default() }
    }

    /// The connection an origin id names, and the grant as its connector sees it.
    fn split(grant: &crate::ports::RoleGrant) -> Result<(ConnectionId, crate::ports::RoleGrant), ConnectorError> {
        let (cid, object) = connection::split_origin_id(&grant.resource_origin_id)
            .ok_or_else(|| ConnectorError::Permanent(format!("'{}' names no connection", grant.resource_origin_id)))?;
        Ok((cid, crate::ports::RoleGrant { resource_origin_id: object.to_owned(), ..grant.clone() }))
    }

    /// The connector of connection `cid`: one read of the connection, and a build only when
    /// the connection changed since the last one.
    async fn connector(&self, cid: ConnectionId) -> Result<Arc<dyn Connector>, ConnectorError> {
        let c = self
            .store
            .get_connection(cid)
            .await?
            .ok_or_else(|| ConnectorError::Permanent(format!("connection '{cid}' no longer exists")))?;
        let kept =
            self.built.lock().ok().and_then(|m| m.get(&cid).filter(|(at, _)| *at == c.modified_date_time).cloned());
        if let Some((_, connector)) = kept {
            return Ok(connector);
        }
        let sealed = self.store.connection_credentials(cid).await?;
        let connector = assemble(&self.setup, &c, sealed.as_deref())?;
        if let Ok(mut m) = self.built.lock() {
            m.insert(cid, (c.modified_date_time, connector.clone()));
        }
        Ok(connector)
    }

    async fn target(
        &self,
        grant: &crate::ports::RoleGrant,
    ) -> Result<(Arc<dyn Connector>, crate::ports::RoleGrant), ConnectorError> {
        let (cid, inner) = Self::split(grant)?;
        Ok((self.connector(cid).await?, inner))
    }
}

#[async_trait::async_trait]
impl Connector for ConnectionConnector {
    fn serves(&self, origin_system: &str) -> bool {
        ConnectionKind::ALL.iter().any(|k| connection::origin_system(*k).eq_ignore_ascii_case(origin_system))
    }

    async fn grant(
        &self,
        grant: &crate::ports::RoleGrant,
        subject: &steward_domain::directory::User,
    ) -> Result<(), ConnectorError> {
        let (c, inner) = self.target(grant).await?;
        c.grant(&inner, subject).await
    }

    /// Each connection's grants of the round go to its connector together (`grant_all`), so a
    /// directory is bound once per round, not once per grant.
    async fn grant_all(
        &self,
        items: &[(&crate::ports::RoleGrant, &steward_domain::directory::User)],
    ) -> Vec<Result<(), ConnectorError>> {
        let mut out: Vec<Option<Result<(), ConnectorError>>> = items.iter().map(|_| None).collect();
        let mut by_connection: Vec<(ConnectionId, Vec<(usize, crate::ports::RoleGrant)>)> = Vec::new();
        for (k, (grant, _)) in items.iter().enumerate() {
            match Self::split(grant) {
                Ok((cid, inner)) => match by_connection.iter_mut().find(|(known, _)| *known == cid) {
                    Some((_, list)) => list.push((k, inner)),
                    None => by_connection.push((cid, vec![(k, inner)])),
                },
                Err(e) => {
                    if let Some(slot) = out.get_mut(k) {
                        *slot = Some(Err(e));
                    }
                }
            }
        }
        let mut by_connector = Vec::with_capacity(by_connection.len());
        for (cid, list) in by_connection {
            match self.connector(cid).await {
                Ok(c) => by_connector.push((c, list)),
                Err(e) => {
                    for (k, _) in list {
                        if let Some(slot) = out.get_mut(k) {
                            *slot = Some(Err(match &e {
                                ConnectorError::Transient(m) => ConnectorError::Transient(m.clone()),
                                ConnectorError::Permanent(m) => ConnectorError::Permanent(m.clone()),
                            }));
                        }
                    }
                }
            }
        }
        for (connector, list) in by_connector {
            let batch: Vec<(&crate::ports::RoleGrant, &steward_domain::directory::User)> =
                list.iter().filter_map(|(k, g)| items.get(*k).map(|(_, u)| (g, *u))).collect();
            for ((k, _), r) in list.iter().zip(connector.grant_all(&batch).await) {
                if let Some(slot) = out.get_mut(*k) {
                    *slot = Some(r);
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ConnectorError::Transient("the grant was not attempted".into()))))
            .collect()
    }

    async fn revoke(
        &self,
        grant: &crate::ports::RoleGrant,
        subject: &steward_domain::directory::User,
    ) -> Result<(), ConnectorError> {
        let (c, inner) = self.target(grant).await?;
        c.revoke(&inner, subject).await
    }

    async fn holds(
        &self,
        grant: &crate::ports::RoleGrant,
        subject: &steward_domain::directory::User,
    ) -> Result<bool, ConnectorError> {
        let (c, inner) = self.target(grant).await?;
        c.holds(&inner, subject).await
    }

    async fn compare(
        &self,
        grant: &crate::ports::RoleGrant,
        granted: &[&steward_domain::directory::User],
        in_flight: &[&steward_domain::directory::User],
    ) -> Result<crate::connector::Comparison, ConnectorError> {
        let (c, inner) = self.target(grant).await?;
        c.compare(&inner, granted, in_flight).await
    }

    async fn remove_holder(&self, grant: &crate::ports::RoleGrant, holder: &str) -> Result<(), ConnectorError> {
        let (c, inner) = self.target(grant).await?;
        c.remove_holder(&inner, holder).await
    }

    /// Each connection discovers its own objects (`discover` above); this one has none.
    async fn discover(&self) -> Result<Vec<DiscoveredResource>, ConnectorError> {
        Ok(Vec::new())
    }
}
