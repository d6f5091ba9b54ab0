//! Steward's use cases behind ports: the `Store` and `Clock` traits, the query schema of every
//! collection, authentication of API tokens and the capability values that authorize actions;
//! the `Mailer` port for notification email (`mail`) and the engine that derives, renders and
//! sends it (`notify`). Knows nothing of SQL, HTTP or SMTP.

pub mod audit;
pub mod auth;
pub mod catalogs;
pub mod chat;
pub mod connected_orgs;
pub mod connections;
pub mod connector;
pub mod decision_links;
pub mod directory;
pub mod error;
pub mod extensions;
pub mod identity;
pub mod jobs;
pub mod lifecycle;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod packages;
pub mod policies;
pub mod ports;
pub mod query;
pub mod reconcile;
pub mod reviews;
pub mod roles;
pub mod scim;
pub mod secrets;
pub mod sessions;

use std::sync::Arc;

pub use error::AppError;

/// How many times a read-modify-write is tried when another writer got in between. An
/// attempt only loses to a writer that committed after its read, so `k` callers changing one
/// object at once all land within `k` attempts (the last loses to each of the others once):
/// this many lets a burst of five concurrent changes of one object all succeed.
const WRITE_ATTEMPTS: usize = 5;

/// Checks an `If-Match` precondition against the object's current modification time.
pub(crate) fn check_if_match(if_match: Option<&str>, kind: &str, modified: jiff::Timestamp) -> Result<(), AppError> {
    match if_match {
        Some(tag) if !steward_domain::time::etag_matches(tag, modified) => Err(AppError::PreconditionFailed(format!(
            "The {kind} has changed since it was read (its ETag is now {}); read it again and retry.",
            steward_domain::time::etag(modified)
        ))),
        _ => Ok(()),
    }
}

/// What to do when an optimistic write lost a race: retry on a fresh read, unless the caller
/// pinned a version with `If-Match`, which then no longer holds.
pub(crate) fn lost_race(e: StoreError, if_match: Option<&str>, kind: &str) -> Result<(), AppError> {
    match (e, if_match) {
        (StoreError::Conflict(_), None) => Ok(()),
        (StoreError::Conflict(_), Some(_)) => Err(AppError::PreconditionFailed(format!(
            "The {kind} changed while it was being updated; read it again and retry."
        ))),
        (other, _) => Err(other.into()),
    }
}
pub use ports::{Clock, Store, StoreError, SystemClock};

/// Everything a request handler needs: the ports, shared and cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub connectors: connector::Connectors,
    pub connection_setup: connections::ConnectionSetup,
    /// Sends custom extensions' callouts; without one, callouts fail with a clear detail.
    pub callouts: Option<Arc<dyn extensions::CalloutSender>>,
    /// Signs the audit chain's checkpoints; without one, checkpoints are taken unsigned.
    pub audit_key: Option<steward_domain::audit_chain::CheckpointKey>,
    /// How long audit records are kept; `None` (the default) keeps them forever.
    pub audit_retention: Option<jiff::SignedDuration>,
    /// Signs one-click decision links in approvers' mail; without one, mail links to the
    /// approval page instead.
    pub decision_key: Option<steward_domain::decision_link::LinkKey>,
    /// Where people reach Steward (`https://steward.example.com`): the base of the links in
    /// notifications. Without it, notifications carry no links.
    pub public_url: Option<String>,
    /// Sends notification email; without one, no email is sent.
    pub mailer: Option<Arc<dyn mail::Mailer>>,
    /// Posts to catalogs' chat webhooks; without one, no chat message is sent.
    pub chat: Option<Arc<dyn chat::ChatSender>>,
    /// Which notifications are turned off everywhere, and when expiry warnings go out.
    pub notify: notify::Settings,
}

impl Services {
    /// The services with the built-in directory as the only delivery target.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let directory: Arc<dyn connector::Connector> = Arc::new(connector::DirectoryConnector::new(store.clone()));
        Self {
            store,
            clock,
            connectors: connector::Connectors::new(vec![directory]),
            connection_setup: connections::ConnectionSetup::default(),
            callouts: None,
            audit_key: None,
            audit_retention: None,
            decision_key: None,
            public_url: None,
            mailer: None,
            chat: None,
            notify: notify::Settings::default(),
        }
    }

    /// The same services, signing the audit chain's checkpoints with `key`.
    pub fn with_audit_key(mut self, key: steward_domain::audit_chain::CheckpointKey) -> Self {
        self.audit_key = Some(key);
        self
    }

    /// The same services, deleting audit records older than `retention`.
    pub fn with_audit_retention(mut self, retention: jiff::SignedDuration) -> Self {
        self.audit_retention = Some(retention);
        self
    }

    /// The same services, signing one-click decision links with `key`.
    pub fn with_decision_key(mut self, key: steward_domain::decision_link::LinkKey) -> Self {
        self.decision_key = Some(key);
        self
    }

    /// The same services, linking to Steward at `url` in notifications.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The same services, sending custom extensions' callouts through `sender`.
    pub fn with_callouts(mut self, sender: Arc<dyn extensions::CalloutSender>) -> Self {
        self.callouts = Some(sender);
        self
    }

    /// The same services, sending notification email through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn mail::Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The same services, posting to catalogs' chat webhooks through `sender`.
    pub fn with_chat(mut self, sender: Arc<dyn chat::ChatSender>) -> Self {
        self.chat = Some(sender);
        self
    }

    /// The same services, notifying as `settings` say.
    pub fn with_notify_settings(mut self, settings: notify::Settings) -> Self {
        self.notify = settings;
        self
    }

    /// The same services, able to build and store connections, and to deliver through them.
    pub fn with_connection_setup(mut self, setup: connections::ConnectionSetup) -> Self {
        let through: Arc<dyn connector::Connector> =
            Arc::new(connections::ConnectionConnector::new(self.store.clone(), setup.clone()));
        self.connectors.push(through);
        self.connection_setup = setup;
        self
    }

    pub fn with_connectors(mut self, connectors: connector::Connectors) -> Self {
        self.connectors = connectors;
        self
    }
}
