//! `/v1.0/steward/connections` over HTTP: a PostgreSQL roles connection is registered with a
//! password that never comes back out (nor sits in the database in the clear), tested and
//! discovered against the real PostgreSQL at `$DATABASE_URL`, changed and deleted; bad input
//! is refused with 400 and writes nothing.

use std::str::FromStr;

use crate::app::{Resp, TestApp};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

pub const KEY: &str = "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHM=";
const BASE: &str = "/v1.0/steward/connections";
const PASSWORD: &str = "pw-that-must-never-show";

/// Asserts the status and Graph's error shape; returns the message.
#[track_caller]
fn refused(r: &Resp, status: StatusCode) -> String {
    r.expect_error(status);
    r.json()["error"]["message"].as_str().unwrap_or_default().to_owned()
}

pub fn target() -> Value {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server for the connection tests (scripts/test.sh sets it)");
    let o = PgConnectOptions::from_str(&url).unwrap();
    json!({
        "host": o.get_host(),
        "port": o.get_port(),
        "database": o.get_database().unwrap_or("postgres"),
        "user": o.get_username(),
        "createLoginRoles": true,
        "connectTimeoutSeconds": 2,
    })
}

#[tokio::test]
async fn a_connection_is_registered_tested_discovered_and_never_shows_its_credentials() {
    let app = TestApp::with_connections(Some(KEY)).await;
    let created = app
        .post(
            BASE,
            &json!({
                "displayName": "Analytics database",
                "kind": "postgreSqlRoles",
                "settings": target(),
                "credentials": {"password": PASSWORD},
            }),
        )
        .await;
    created.expect(StatusCode::CREATED);
    assert!(!created.text.contains(PASSWORD), "{}", created.text);
    let v = created.json();
    assert_eq!(v["hasCredentials"], json!(true));
    assert_eq!(v["kind"], json!("postgreSqlRoles"));
    assert_eq!(v["originSystem"], json!("PostgreSqlRole"));
    let id = created.id();
    let cid = id.parse().unwrap();

    // At rest: sealed, not in the clear; through the API: never.
    let sealed = app.services.store.connection_credentials(cid).await.unwrap().unwrap();
    assert!(sealed.starts_with("v1:") && !sealed.contains(PASSWORD));
    for shown in [app.get(&format!("{BASE}/{id}")).await, app.get(BASE).await] {
        shown.expect(StatusCode::OK);
        assert!(!shown.text.contains(PASSWORD) && !shown.text.contains("v1:"), "{}", shown.text);
    }
    assert_eq!(app.get(BASE).await.json()["value"].as_array().unwrap().len(), 1);

    let tested = app.post(&format!("{BASE}/{id}/test"), &json!({})).await;
    tested.expect(StatusCode::OK);
    assert_eq!(tested.json()["succeeded"], json!(true), "{}", tested.text);
    assert!(tested.json()["message"].as_str().unwrap().contains("connected"), "{}", tested.text);

    // A group role to find, made by the superuser at DATABASE_URL and dropped afterwards.
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap()).await.unwrap();
    let role = format!("steward_http_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} NOLOGIN"))).execute(&admin).await.unwrap();
    let found = app.get(&format!("{BASE}/{id}/discover")).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {role}"))).execute(&admin).await.unwrap();
    found.expect(StatusCode::OK);
    let all = found.json()["value"].as_array().unwrap().clone();
    assert!(all.iter().any(|r| r["originId"] == json!(format!("{id}:{role}"))), "{all:?}");
    for r in &all {
        assert!(r["originId"].as_str().unwrap().starts_with(&format!("{id}:")), "{r}");
        assert_eq!(r["originSystem"], json!("PostgreSqlRole"));
        assert_eq!(r["roles"], json!([{"originId": "Member", "displayName": "Member"}]));
        assert!(!r["displayName"].as_str().unwrap().starts_with("pg_"));
    }

    // Pointed at a port where nothing listens: the test says so; discovery is a 502.
    let mut away = target();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    away["host"] = json!("127.0.0.1");
    away["port"] = json!(port);
    away["tls"] = json!("disable");
    away["connectTimeoutSeconds"] = json!(1);
    app.patch(&format!("{BASE}/{id}"), &json!({"settings": away, "displayName": "Moved"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let v = app.get(&format!("{BASE}/{id}")).await.json();
    assert_eq!(v["displayName"], json!("Moved"));
    assert_eq!(v["hasCredentials"], json!(true), "a patch without credentials keeps them");
    let tested = app.post(&format!("{BASE}/{id}/test"), &json!({})).await;
    assert_eq!(tested.json()["succeeded"], json!(false), "{}", tested.text);
    let e = refused(&app.get(&format!("{BASE}/{id}/discover")).await, StatusCode::BAD_GATEWAY);
    assert!(e.contains("Moved") && !e.contains(PASSWORD), "{e}");

    app.patch(&format!("{BASE}/{id}"), &json!({"credentials": null})).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("{BASE}/{id}")).await.json()["hasCredentials"], json!(false));
    assert!(app.services.store.connection_credentials(cid).await.unwrap().is_none());

    let history = app.services.store.events_of(&id).await.unwrap();
    let names: Vec<&str> = history.iter().map(|e| e.activity.display_name()).collect();
    assert_eq!(names, ["Create connection", "Update connection", "Update connection"], "{names:?}");
    assert!(history.iter().all(|e| !e.detail.as_deref().unwrap_or("").contains(PASSWORD)));

    app.delete(&format!("{BASE}/{id}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("{BASE}/{id}")).await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(app.services.store.events_of(&id).await.unwrap().len(), 4);
}

#[tokio::test]
async fn bad_connections_are_refused_and_nothing_is_written() {
    let app = TestApp::with_connections(Some(KEY)).await;
    let base = json!({"displayName": "Db", "kind": "postgreSqlRoles", "settings": target()});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let mut no_host = target();
    no_host.as_object_mut().unwrap().remove("host");
    let mut unknown = target();
    unknown["sslRootCert"] = json!("/etc/x");
    for (body, says) in [
        (with("kind", json!("mainframe")), "kind"),
        (with("kind", json!("scim")), "baseUrl"),
        (with("settings", json!(["host"])), "settings"),
        (with("settings", no_host), "host"),
        (with("settings", unknown), "sslRootCert"),
        (with("credentials", json!("just-a-password")), "credentials"),
        (with("credentials", json!({"password": 42})), "credentials.password"),
        (with("credentials", json!({"password": "x".repeat(5000)})), "4096"),
        (with("displayName", json!("")), "displayName"),
        (json!({"displayName": "Db", "settings": target()}), "kind"),
        (json!({"displayName": "Db", "kind": "postgreSqlRoles"}), "settings"),
    ] {
        let e = refused(&app.post(BASE, &body).await, StatusCode::BAD_REQUEST);
        assert!(e.contains(says), "{says}: {e}");
        assert!(!e.contains(PASSWORD));
    }
    assert_eq!(app.get(BASE).await.json()["value"], json!([]), "nothing was written");

    let id = app.post(BASE, &base).await.expect(StatusCode::CREATED).id();
    let e = refused(&app.patch(&format!("{BASE}/{id}"), &json!({"kind": "ldap"})).await, StatusCode::BAD_REQUEST);
    assert!(e.contains("kind cannot be changed"), "{e}");
    app.get(&format!("{BASE}/{}", uuid::Uuid::new_v4())).await.expect_error(StatusCode::NOT_FOUND);
    app.get(&format!("{BASE}/not-an-id")).await.expect_error(StatusCode::BAD_REQUEST);

    // A user may not see or change connections.
    let (_, token) = app.user_with_token().await;
    app.get_as(&token, BASE).await.expect_error(StatusCode::FORBIDDEN);

    // Without a secrets key, a connection without credentials is fine; with them, refused.
    let keyless = TestApp::with_connections(None).await;
    keyless.post(BASE, &base).await.expect(StatusCode::CREATED);
    let e = refused(
        &keyless.post(BASE, &with("credentials", json!({"password": PASSWORD}))).await,
        StatusCode::BAD_REQUEST,
    );
    assert!(e.contains("secrets key"), "{e}");
    assert_eq!(keyless.get(BASE).await.json()["value"].as_array().unwrap().len(), 1);
}

/// The password in `DATABASE_URL`, if it has one (a throwaway cluster's does).
pub fn url_password() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok()?;
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    userinfo.split_once(':').map(|(_, p)| p.to_owned())
}

/// A PostgreSQL group role found through a connection is added to a catalog, bundled in a
/// package and requested by a user: delivery grants it on the real server (the user's login
/// role created on the way), and an administrator's removal revokes it.
#[tokio::test]
async fn a_database_role_from_a_connection_is_delivered_and_revoked() {
    use axum::http::Method;
    use steward_app::lifecycle::worker::Worker;

    use crate::app::EM;

    let app = TestApp::with_connections(Some(KEY)).await;
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap()).await.unwrap();
    let role = format!("steward_e2e_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} NOLOGIN"))).execute(&admin).await.unwrap();

    let mut body = json!({"displayName": "Analytics", "kind": "postgreSqlRoles", "settings": target()});
    if let Some(p) = url_password() {
        body["credentials"] = json!({"password": p});
    }
    let cid = app.post(BASE, &body).await.expect(StatusCode::CREATED).id();
    let cat = app.catalog("Databases").await;
    let origin = format!("{cid}:{role}");
    // Only what the target has can be added, under the connection's own origin system.
    for (origin_id, system, status) in [
        (format!("{cid}:no_such_role_{role}"), "PostgreSqlRole", StatusCode::NOT_FOUND),
        (origin.clone(), "LdapGroup", StatusCode::BAD_REQUEST),
        (role.clone(), "PostgreSqlRole", StatusCode::BAD_REQUEST),
    ] {
        let r = app
            .post(
                &format!("{EM}/resourceRequests"),
                &json!({"requestType": "adminAdd", "catalog": {"id": cat},
                "resource": {"originId": origin_id, "originSystem": system}}),
            )
            .await;
        assert_eq!(r.status, status, "{origin_id} {system}: {}", r.text);
    }
    let added = app
        .post(
            &format!("{EM}/resourceRequests"),
            &json!({"requestType": "adminAdd", "catalog": {"id": cat},
            "resource": {"originId": origin, "originSystem": "PostgreSqlRole"}}),
        )
        .await;
    added.expect(StatusCode::CREATED);
    let package = app.package(&cat, "Analytics readers").await;
    let roles = app.get(&format!("{EM}/catalogs/{cat}/resourceRoles?$expand=resource($expand=scopes)")).await.json();
    let r = &roles["value"][0];
    assert_eq!(r["originId"], json!("Member"));
    assert_eq!(r["resource"]["displayName"], json!(role));
    app.post(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        &json!({"role": {"id": r["id"], "originId": "Member", "originSystem": "PostgreSqlRole",
            "resource": {"id": r["resource"]["id"]}},
            "scope": {"id": r["resource"]["scopes"][0]["id"], "originId": origin, "originSystem": "PostgreSqlRole"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    app.post(
        &format!("{EM}/assignmentPolicies"),
        &json!({"accessPackage": {"id": package}, "displayName": "Everyone",
        "allowedTargetScope": "allMemberUsers", "expiration": {"type": "noExpiration"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    // The connection cannot go while its resource is in a catalog.
    let e = refused(&app.delete(&format!("{BASE}/{cid}")).await, StatusCode::BAD_REQUEST);
    assert!(e.contains("resource"), "{e}");

    // Two requests, delivered in one round: the connection's grants go out together.
    let mut logins = Vec::new();
    let mut reqs = Vec::new();
    for _ in 0..2 {
        let (user, token) = app.user_with_token().await;
        let upn = app.get(&format!("/v1.0/users/{user}")).await.json()["userPrincipalName"].clone();
        logins.push(upn.as_str().unwrap().to_owned());
        let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": package}});
        let req = app.json_as(&token, Method::POST, &format!("{EM}/assignmentRequests"), &body).await;
        req.expect(StatusCode::CREATED);
        reqs.push(req.id());
    }
    let (login, req) = (logins[0].clone(), reqs[0].clone());
    Worker::new(app.services.clone(), "conn-e2e").drain(10).await.unwrap();
    let got = app.get(&format!("{EM}/assignmentRequests/{req}?$expand=assignment")).await.json();
    assert_eq!(got["state"], json!("delivered"), "{got}");
    let member = |admin: sqlx::PgPool, login: String, role: String| async move {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role($1, $2, 'MEMBER')",
        )
        .bind(login)
        .bind(role)
        .fetch_one(&admin)
        .await
        .unwrap()
    };
    for l in &logins {
        assert!(member(admin.clone(), l.clone(), role.clone()).await, "{l} is a member of {role}");
    }
    let second = app.get(&format!("{EM}/assignmentRequests/{}", reqs[1])).await.json();
    assert_eq!(second["state"], json!("delivered"), "{second}");

    let assignment = got["assignment"]["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("{EM}/assignmentRequests"),
        &json!({"requestType": "adminRemove", "assignment": {"id": assignment}}),
    )
    .await
    .expect(StatusCode::CREATED);
    Worker::new(app.services.clone(), "conn-e2e").drain(10).await.unwrap();
    assert!(!member(admin.clone(), login.clone(), role.clone()).await, "revoked");

    for r in std::iter::once(&role).chain(&logins) {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{}\"", r.replace('"', "\"\""))))
            .execute(&admin)
            .await;
    }
}
