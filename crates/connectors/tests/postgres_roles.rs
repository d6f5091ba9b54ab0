//! The PostgreSQL role connector against a real PostgreSQL server ($DATABASE_URL, which the
//! test command always provides; without it these tests fail, they never skip). The
//! connector connects as a role of its own with CREATEROLE and ADMIN OPTION on the group
//! roles, as the documentation recommends, never as the superuser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::str::FromStr;

use secrecy::SecretString;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{AssertSqlSafe, ConnectOptions as _};
use steward_app::connector::{Connector, ConnectorError};
use steward_app::ports::RoleGrant;
use steward_connectors::ident::{UserKey, pg_quote};
use steward_connectors::postgres_roles::{MEMBER, ORIGIN_POSTGRES_ROLE, PgRoleConnector, PgRoleSettings, TlsMode};
use steward_domain::ids::ResourceRoleId;

fn database_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a PostgreSQL server for the PostgreSQL connector tests (scripts/test.sh sets it)",
    )
}

/// The superuser side: sets the scene and checks the outcome directly on the server.
struct Server {
    admin: PgPool,
    options: PgConnectOptions,
    suffix: String,
    created: Vec<String>,
}

impl Server {
    async fn new() -> Self {
        let options = PgConnectOptions::from_str(&database_url()).unwrap().disable_statement_logging();
        let admin = PgPool::connect_with(options.clone()).await.expect("PostgreSQL at DATABASE_URL answers");
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        Self { admin, options, suffix, created: Vec::new() }
    }

    async fn exec(&self, sql: String) {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&self.admin).await.unwrap();
    }

    /// A role created for this test (dropped at the end), with the given `name` + suffix.
    async fn role(&mut self, name: &str, attributes: &str) -> String {
        let full = format!("{name}{}", self.suffix);
        self.exec(format!("CREATE ROLE {} {attributes}", pg_quote(&full).unwrap())).await;
        self.created.push(full.clone());
        full
    }

    async fn member(&self, login: &str, role: &str) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role($1, $2, 'MEMBER')",
        )
        .bind(login)
        .bind(role)
        .fetch_one(&self.admin)
        .await
        .unwrap()
    }

    async fn exists(&self, role: &str) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&self.admin)
            .await
            .unwrap()
    }

    fn settings(&self, user: &str, create_login_roles: bool) -> PgRoleSettings {
        PgRoleSettings {
            host: self.options.get_host().to_owned(),
            port: self.options.get_port(),
            database: self.options.get_database().unwrap_or("postgres").to_owned(),
            user: user.to_owned(),
            tls: TlsMode::Prefer,
            user_key: UserKey::UserPrincipalName,
            create_login_roles,
            connect_timeout_seconds: 10,
        }
    }

    async fn cleanup(&self, extra: &[String]) {
        for r in self.created.iter().chain(extra).rev() {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE IF EXISTS {}", pg_quote(r).unwrap())))
                .execute(&self.admin)
                .await;
        }
    }
}

fn grant_of(role: &str) -> RoleGrant {
    RoleGrant {
        role_id: ResourceRoleId::new(),
        role_name: MEMBER.into(),
        role_origin_id: MEMBER.into(),
        origin_system: ORIGIN_POSTGRES_ROLE.into(),
        resource_origin_id: role.into(),
        resource_name: role.into(),
    }
}

fn permanent(r: Result<(), ConnectorError>) -> String {
    match r {
        Err(ConnectorError::Permanent(m)) => m,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

/// A membership is granted (creating the login role when configured), seen by
/// `pg_has_role`, granted again without harm, revoked, and revoked again without harm; names
/// full of quotes and semicolons stay names.
#[tokio::test]
async fn grants_and_revokes_group_roles_idempotently() {
    let mut server = Server::new().await;
    let password = SecretString::from(format!("pw-{}", server.suffix));
    let agent = server
        .role(
            "steward_agent_",
            &format!("LOGIN CREATEROLE PASSWORD '{}'", {
                use secrecy::ExposeSecret;
                password.expose_secret().to_owned()
            }),
        )
        .await;
    let victim = server.role("victim_", "NOLOGIN").await;
    let hostile = format!("readers\"; DROP ROLE \"{victim}\"; --");
    let hostile = server.role(&hostile[..hostile.len().min(40)], "NOLOGIN").await;
    let plain = server.role("analytics_read_", "NOLOGIN").await;
    for r in [&hostile, &plain] {
        server.exec(format!("GRANT {} TO {} WITH ADMIN OPTION", pg_quote(r).unwrap(), pg_quote(&agent).unwrap())).await;
    }
    let login = format!("o'brien\";DROP ROLE x;--{}@contoso.test", server.suffix);

    let c = PgRoleConnector::new(server.settings(&agent, false), Some(&password));
    let said = c.check().await.unwrap();
    assert!(said.contains("CREATEROLE") && said.contains(&agent), "{said}");
    assert!(c.serves("PostgreSqlRole") && c.serves("postgresqlrole") && !c.serves("AadGroup"));

    let found = c.discover().await.unwrap();
    let names: Vec<&str> = found.iter().map(|r| r.origin_id.as_str()).collect();
    assert!(names.contains(&hostile.as_str()) && names.contains(&plain.as_str()), "{names:?}");
    assert!(!names.contains(&agent.as_str()), "a login role is not a resource");
    assert!(names.iter().all(|n| !n.starts_with("pg_")));
    assert!(found.iter().all(|r| r.roles == vec![(MEMBER.to_owned(), MEMBER.to_owned())]));

    // Without login-role creation, a user with no login role is refused, clearly.
    let who = person(&login);
    let why = permanent(c.grant(&grant_of(&plain), &who).await);
    assert!(why.contains("does not exist") && why.contains("creating login roles is not configured"), "{why}");
    assert!(!server.exists(&login).await);

    let c = PgRoleConnector::new(server.settings(&agent, true), Some(&password));
    for role in [&hostile, &plain] {
        c.grant(&grant_of(role), &who).await.unwrap();
        c.grant(&grant_of(role), &who).await.unwrap();
        assert!(server.member(&login, role).await, "{login} is a member of {role}");
        assert!(c.holds(&grant_of(role), &who).await.unwrap());
    }
    assert!(server.exists(&victim).await, "the hostile names ran nothing");
    c.revoke(&grant_of(&hostile), &who).await.unwrap();
    c.revoke(&grant_of(&hostile), &who).await.unwrap();
    assert!(!server.member(&login, &hostile).await);
    assert!(!c.holds(&grant_of(&hostile), &who).await.unwrap());
    assert!(server.member(&login, &plain).await, "only the one role was revoked");

    // Revoking from a login or a role that does not exist holds nothing: fine.
    c.revoke(&grant_of(&plain), &person(&format!("nobody-{}@contoso.test", server.suffix))).await.unwrap();
    c.revoke(&grant_of(&format!("gone_{}", server.suffix)), &who).await.unwrap();
    // Granting a role that does not exist, or a name no role can have, fails for good.
    let why = permanent(c.grant(&grant_of(&format!("gone_{}", server.suffix)), &who).await);
    assert!(why.contains("does not exist"), "{why}");
    let why = permanent(c.grant(&grant_of(&"r".repeat(64)), &who).await);
    assert!(why.contains("63 bytes"), "{why}");
    let why = permanent(c.grant(&grant_of("nul\0role"), &who).await);
    assert!(why.contains("NUL"), "{why}");
    let mut owner = grant_of(&plain);
    owner.role_origin_id = "Owner".into();
    assert!(permanent(c.grant(&owner, &who).await).contains("Member"));

    server.cleanup(&[login]).await;
}

/// A server that does not answer is a transient failure (retried later), not a permanent one.
#[tokio::test]
async fn an_unreachable_server_is_a_transient_failure() {
    let server = Server::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut settings = server.settings("nobody", true);
    settings.host = "127.0.0.1".into();
    settings.port = port; // bound a moment ago and released: nothing listens there now
    settings.tls = TlsMode::Disable;
    settings.connect_timeout_seconds = 1;
    let c = PgRoleConnector::new(settings, None);
    match c.grant(&grant_of("analytics"), &person("a@contoso.test")).await {
        Err(ConnectorError::Transient(m)) => assert!(m.contains("unavailable"), "{m}"),
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(matches!(c.check().await, Err(ConnectorError::Transient(_))));
}

fn person(upn: &str) -> steward_domain::directory::User {
    common::person(upn, None)
}
