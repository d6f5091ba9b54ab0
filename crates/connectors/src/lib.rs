//! Delivery targets outside Steward's own directory, each an implementation of the app's
//! `Connector` port: PostgreSQL roles (`postgres_roles`), LDAP groups (`ldap`) and SCIM 2.0
//! groups (`scim`). `Factory` builds them for configured connections. `callout` sends custom
//! extensions' signed callouts (the app's `CalloutSender` port) over HTTP; `smtp` sends
//! notification email (the app's `Mailer` port) through an SMTP relay.

pub mod callout;
pub mod ident;
pub mod ldap;
pub mod postgres_roles;
pub mod scim;
pub mod smtp;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use steward_app::connector::{Connector, ConnectorError, ConnectorFactory};
use steward_domain::connection::Connection;
use steward_domain::enums::ConnectionKind;

use crate::ldap::{LdapConnector, LdapSettings};
use crate::postgres_roles::{PgRoleConnector, PgRoleSettings};
use crate::scim::{ScimConnector, ScimSettings};

/// Builds the connectors of configured connections.
#[derive(Debug, Default, Clone, Copy)]
pub struct Factory;

/// The credentials of a PostgreSQL roles or LDAP connection: a password.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordCredentials {
    password: Option<String>,
}

/// The password in a connection's opened credentials, if any. The error never repeats them.
fn password(credentials: Option<&SecretString>) -> Result<Option<SecretString>, String> {
    let Some(c) = credentials else { return Ok(None) };
    let c: PasswordCredentials = serde_json::from_str(c.expose_secret())
        .map_err(|_| "the credentials must be {\"password\": \"…\"}".to_owned())?;
    Ok(c.password.map(SecretString::from))
}

/// The credentials of a SCIM connection: a bearer token.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BearerCredentials {
    bearer_token: Option<String>,
}

/// The bearer token in a connection's opened credentials, if any. The error never repeats them.
fn bearer_token(credentials: Option<&SecretString>) -> Result<Option<SecretString>, String> {
    let Some(c) = credentials else { return Ok(None) };
    let c: BearerCredentials = serde_json::from_str(c.expose_secret())
        .map_err(|_| "the credentials must be {\"bearerToken\": \"…\"}".to_owned())?;
    Ok(c.bearer_token.map(SecretString::from))
}

/// The innermost cause of an HTTP client error (what refused, reset or timed out), without
/// the URL that the error's own text repeats; `clean` makes it fit to show.
fn innermost_cause(e: &reqwest::Error, clean: impl Fn(&str) -> String) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut deepest = None;
    while let Some(s) = source {
        deepest = Some(s.to_string());
        source = s.source();
    }
    deepest.map(|d| clean(&d))
}

fn settings<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

impl ConnectorFactory for Factory {
    fn supports(&self, kind: ConnectionKind) -> bool {
        matches!(kind, ConnectionKind::PostgreSqlRoles | ConnectionKind::Ldap | ConnectionKind::Scim)
    }

    fn check_settings(&self, kind: ConnectionKind, v: &serde_json::Value) -> Result<(), String> {
        match kind {
            ConnectionKind::PostgreSqlRoles => {
                let s: PgRoleSettings = settings(v)?;
                if s.host.trim().is_empty() || s.database.trim().is_empty() || s.user.trim().is_empty() {
                    return Err("host, database and user must not be empty".into());
                }
                Ok(())
            }
            ConnectionKind::Ldap => settings::<LdapSettings>(v)?.check(),
            ConnectionKind::Scim => settings::<ScimSettings>(v)?.check(),
        }
    }

    fn build(
        &self,
        connection: &Connection,
        credentials: Option<&SecretString>,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let bad = |m: String| ConnectorError::Permanent(format!("connection '{}': {m}", connection.id));
        match connection.kind {
            ConnectionKind::PostgreSqlRoles => {
                let s: PgRoleSettings = settings(&connection.settings).map_err(bad)?;
                let password = password(credentials).map_err(bad)?;
                Ok(Arc::new(PgRoleConnector::new(s, password.as_ref())))
            }
            ConnectionKind::Ldap => {
                let s: LdapSettings = settings(&connection.settings).map_err(bad)?;
                Ok(Arc::new(LdapConnector::new(s, password(credentials).map_err(bad)?)))
            }
            ConnectionKind::Scim => {
                let s: ScimSettings = settings(&connection.settings).map_err(bad)?;
                let token = bearer_token(credentials).map_err(bad)?;
                Ok(Arc::new(ScimConnector::new(s, token).map_err(bad)?))
            }
        }
    }
}
