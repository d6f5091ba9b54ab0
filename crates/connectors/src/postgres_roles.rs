//! PostgreSQL roles as a delivery target: a resource is a group role (a role that cannot log
//! in), its one resource role `Member` is membership in it, granted with `GRANT role TO login`
//! and taken back with `REVOKE`. Every name is quoted (`ident::pg_quote`); nothing from a user
//! or a role is ever spliced into a statement unquoted.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use steward_app::connector::{Comparison, Connector, ConnectorError, DiscoveredResource};
use steward_app::ports::RoleGrant;
use steward_domain::connection;
use steward_domain::directory::User;
use steward_domain::enums::ConnectionKind;

use crate::ident::{UserKey, pg_quote};

/// The `originSystem` of resources this connector serves.
pub const ORIGIN_POSTGRES_ROLE: &str = connection::origin_system(ConnectionKind::PostgreSqlRoles);
/// The origin id (and name) of a group role's one resource role.
pub const MEMBER: &str = "Member";

/// How TLS is used towards the target server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TlsMode {
    Disable,
    /// TLS when the server offers it (libpq's default).
    #[default]
    Prefer,
    Require,
    /// TLS, with the server's certificate checked against the system's roots and its name.
    VerifyFull,
}

/// Where the target server is and how Steward acts on it; no secret (the password is a
/// credential, stored apart and encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PgRoleSettings {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub database: String,
    /// The role Steward connects as: it needs `CREATEROLE` (or `ADMIN OPTION` on each group
    /// role it hands out), and nothing more.
    pub user: String,
    #[serde(default)]
    pub tls: TlsMode,
    /// Which user attribute is the user's login role name.
    #[serde(default)]
    pub user_key: UserKey,
    /// Create a user's login role (`CREATE ROLE … LOGIN`, no password) when it does not exist
    /// yet; otherwise a grant to a missing login fails with a clear reason.
    #[serde(default)]
    pub create_login_roles: bool,
    /// How long a call waits for a connection before it fails (and is retried later).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
}

fn default_port() -> u16 {
    5432
}

fn default_connect_timeout() -> u64 {
    10
}

/// Grants and revokes membership in group roles of one PostgreSQL server.
pub struct PgRoleConnector {
    pool: PgPool,
    settings: PgRoleSettings,
}

impl std::fmt::Debug for PgRoleConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRoleConnector").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl PgRoleConnector {
    /// A connector for `settings`; connections are opened when first needed, so a server
    /// that is down makes calls fail (and be retried), not this.
    pub fn new(settings: PgRoleSettings, password: Option<&SecretString>) -> Self {
        let mut options = PgConnectOptions::new()
            .host(&settings.host)
            .port(settings.port)
            .database(&settings.database)
            .username(&settings.user)
            .application_name("steward-connector")
            .ssl_mode(match settings.tls {
                TlsMode::Disable => PgSslMode::Disable,
                TlsMode::Prefer => PgSslMode::Prefer,
                TlsMode::Require => PgSslMode::Require,
                TlsMode::VerifyFull => PgSslMode::VerifyFull,
            });
        if let Some(p) = password {
            options = options.password(p.expose_secret());
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(settings.connect_timeout_seconds.clamp(1, 300)))
            .connect_lazy_with(options);
        Self { pool, settings }
    }

    fn names(&self, grant: &RoleGrant, subject: &User) -> Result<(String, String), ConnectorError> {
        if grant.role_origin_id != MEMBER {
            return Err(ConnectorError::Permanent(format!(
                "a PostgreSQL group role has one resource role, '{MEMBER}', not '{}'",
                grant.role_origin_id
            )));
        }
        let login = self.settings.user_key.of(subject).map_err(ConnectorError::Permanent)?;
        Ok((grant.resource_origin_id.clone(), login))
    }

    /// Runs a role statement. Role names cannot be bound as parameters, so every name in
    /// `sql` must have gone through `pg_quote`; the callers below build it only that way.
    async fn ddl(&self, sql: String) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&self.pool).await.map(|_| ())
    }

    async fn role_exists(&self, name: &str) -> Result<bool, ConnectorError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl Connector for PgRoleConnector {
    fn serves(&self, origin_system: &str) -> bool {
        origin_system.eq_ignore_ascii_case(ORIGIN_POSTGRES_ROLE)
    }

    /// Connects and says as whom, and whether that role can hand out group roles.
    async fn check(&self) -> Result<String, ConnectorError> {
        let (user, superuser, createrole): (String, bool, bool) =
            sqlx::query_as("SELECT rolname::text, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        let rights = if superuser {
            "superuser (more than it needs: CREATEROLE is enough)"
        } else if createrole {
            "CREATEROLE"
        } else {
            "neither superuser nor CREATEROLE: it can grant only roles it holds with ADMIN OPTION"
        };
        Ok(format!("connected to {}:{} as '{user}', {rights}", self.settings.host, self.settings.port))
    }

    async fn grant(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        let (role, login) = self.names(grant, subject)?;
        let (q_role, q_login) = (quoted(&role)?, quoted(&login)?);
        if !self.role_exists(&login).await? {
            if !self.settings.create_login_roles {
                return Err(ConnectorError::Permanent(format!(
                    "the login role '{login}' does not exist on the target server, and creating login roles is not \
                     configured"
                )));
            }
            match self.ddl(format!("CREATE ROLE {q_login} LOGIN")).await {
                Ok(_) => tracing::info!(login = %login, "created a login role"),
                // Created meanwhile by another delivery: what we wanted.
                Err(e) if sql_state(&e).as_deref() == Some(DUPLICATE_OBJECT) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        // Granting a membership that is held already only raises a notice.
        self.ddl(format!("GRANT {q_role} TO {q_login}")).await.map_err(|e| match sql_state(&e).as_deref() {
            Some(UNDEFINED_OBJECT) => {
                ConnectorError::Permanent(format!("the role '{role}' does not exist on the target server"))
            }
            _ => map_err(e),
        })?;
        Ok(())
    }

    async fn revoke(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        let (role, login) = self.names(grant, subject)?;
        let (q_role, q_login) = (quoted(&role)?, quoted(&login)?);
        // Revoking a membership that is not held only raises a warning; a role that is gone
        // holds nothing.
        match self.ddl(format!("REVOKE {q_role} FROM {q_login}")).await {
            Ok(_) => Ok(()),
            Err(e) if sql_state(&e).as_deref() == Some(UNDEFINED_OBJECT) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn holds(&self, grant: &RoleGrant, subject: &User) -> Result<bool, ConnectorError> {
        let (role, login) = self.names(grant, subject)?;
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
             JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = $1 AND u.rolname = $2)",
        )
        .bind(role)
        .bind(login)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)
    }

    /// The members of the group role, against the users' login role names (exact: role
    /// names are case-sensitive).
    async fn compare(
        &self,
        grant: &RoleGrant,
        granted: &[&User],
        in_flight: &[&User],
    ) -> Result<Comparison, ConnectorError> {
        if grant.role_origin_id != MEMBER {
            return Err(ConnectorError::Permanent(format!(
                "a PostgreSQL group role has one resource role, '{MEMBER}', not '{}'",
                grant.role_origin_id
            )));
        }
        let holders: Vec<String> = sqlx::query_scalar(
            "SELECT u.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
             JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = $1 ORDER BY 1",
        )
        .bind(&grant.resource_origin_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let held: std::collections::HashSet<&str> = holders.iter().map(String::as_str).collect();
        let name = |u: &User| self.settings.user_key.of(u).ok();
        let known: std::collections::HashSet<String> =
            granted.iter().chain(in_flight).filter_map(|u| name(u)).collect();
        let missing = granted
            .iter()
            .enumerate()
            .filter(|(_, u)| name(u).is_none_or(|n| !held.contains(n.as_str())))
            .map(|(k, _)| k)
            .collect();
        let unexpected = holders.iter().filter(|h| !known.contains(*h)).cloned().collect();
        Ok(Comparison { missing, unexpected })
    }

    async fn remove_holder(&self, grant: &RoleGrant, holder: &str) -> Result<(), ConnectorError> {
        let (q_role, q_login) = (quoted(&grant.resource_origin_id)?, quoted(holder)?);
        match self.ddl(format!("REVOKE {q_role} FROM {q_login}")).await {
            Ok(_) => Ok(()),
            Err(e) if sql_state(&e).as_deref() == Some(UNDEFINED_OBJECT) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    /// The group roles: roles that cannot log in, apart from PostgreSQL's own (`pg_*`).
    async fn discover(&self) -> Result<Vec<DiscoveredResource>, ConnectorError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE NOT rolcanlogin AND rolname NOT LIKE 'pg\\_%' ORDER BY rolname",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(names
            .into_iter()
            .map(|n| DiscoveredResource {
                origin_id: n.clone(),
                display_name: n,
                roles: vec![(MEMBER.to_owned(), MEMBER.to_owned())],
            })
            .collect())
    }
}

const UNDEFINED_OBJECT: &str = "42704";
const DUPLICATE_OBJECT: &str = "42710";
/// SQLSTATE classes that say the statement itself can never succeed as it is.
const PERMANENT_CLASSES: [&str; 4] = ["42", "0L", "0P", "22"];

fn quoted(name: &str) -> Result<String, ConnectorError> {
    pg_quote(name).map_err(ConnectorError::Permanent)
}

fn sql_state(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Refusals of the statement (a missing role, no privilege, a grant that would loop) are
/// permanent; anything else (the server down, a timeout, a dropped connection) is retried.
fn map_err(e: sqlx::Error) -> ConnectorError {
    match sql_state(&e) {
        Some(code) if PERMANENT_CLASSES.iter().any(|c| code.starts_with(c)) => {
            ConnectorError::Permanent(format!("the target server refused: {e}"))
        }
        _ => ConnectorError::Transient(format!("the target server is unavailable: {e}")),
    }
}
