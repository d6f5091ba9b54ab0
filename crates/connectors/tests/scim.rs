//! The SCIM connector against PyPI's `scim2-server`, started by this test on loopback
//! (`steward-testpeers`; the test command installs it in the project's virtualenv; without it
//! this test fails, it never skips), and against a hostile application of our own that answers
//! with oversized, malformed, forged and redirecting responses. What the connector wrote is
//! read back with plain SCIM requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::json;
use steward_app::connector::{Connector, ConnectorError};
use steward_app::ports::RoleGrant;
use steward_connectors::ident::UserKey;
use steward_connectors::postgres_roles::MEMBER;
use steward_connectors::scim::{ENTITLEMENTS, ScimConnector, ScimMatch, ScimSettings};
use steward_domain::directory::User;
use steward_domain::ids::ResourceRoleId;
use steward_testpeers::Scim2Server;

fn settings(base_url: &str, create_users: bool) -> ScimSettings {
    ScimSettings {
        base_url: base_url.to_owned(),
        user_key: UserKey::UserPrincipalName,
        match_attribute: ScimMatch::UserName,
        create_users,
        timeout_seconds: 2,
        entitlements: vec!["Admin".into(), "Editor".into()],
    }
}

fn connector(server: &Scim2Server, create_users: bool) -> ScimConnector {
    ScimConnector::new(settings(&server.base_url, create_users), Some(SecretString::from(server.token.clone())))
        .unwrap()
}

fn group(id: &str) -> RoleGrant {
    RoleGrant {
        role_id: ResourceRoleId::new(),
        role_name: MEMBER.into(),
        role_origin_id: MEMBER.into(),
        origin_system: "ScimGroup".into(),
        resource_origin_id: id.into(),
        resource_name: id.into(),
    }
}

fn entitlement(value: &str) -> RoleGrant {
    RoleGrant {
        role_id: ResourceRoleId::new(),
        role_name: value.into(),
        role_origin_id: value.into(),
        origin_system: "ScimGroup".into(),
        resource_origin_id: ENTITLEMENTS.into(),
        resource_name: "App roles (entitlements)".into(),
    }
}

fn user(upn: &str) -> User {
    common::person(upn, Some(upn))
}

#[tokio::test]
async fn grants_and_revokes_scim_group_membership() {
    let scim = Scim2Server::start();
    let editors = scim.create_group("Editors").await;
    let viewers = scim.create_group("Viewers").await;
    let ada_id = scim.create_user("ada@example.com").await;
    let c = connector(&scim, false);

    let said = c.check().await.unwrap();
    assert!(said.contains("PATCH") && said.contains("2 group(s)"), "{said}");
    let found = c.discover().await.unwrap();
    let names: Vec<&str> = found.iter().map(|r| r.display_name.as_str()).collect();
    assert_eq!(names, ["Editors", "Viewers", "App roles (entitlements)"]);
    assert_eq!(found[0].origin_id, editors);
    assert_eq!(found[2].origin_id, ENTITLEMENTS);
    let roles: Vec<&str> = found[2].roles.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(roles, ["Admin", "Editor"]);

    // userName is case-insensitive in SCIM: ADA@… is the same user.
    let ada = user("ADA@example.com");
    c.grant(&group(&editors), &ada).await.unwrap();
    c.grant(&group(&editors), &ada).await.unwrap(); // already a member: fine
    assert_eq!(scim.group_members(&editors).await, std::slice::from_ref(&ada_id));
    assert!(c.holds(&group(&editors), &ada).await.unwrap());
    assert!(!c.holds(&group(&viewers), &ada).await.unwrap());

    // Without user creation, someone the application lacks gets a clear, permanent reason.
    match c.grant(&group(&editors), &user("bob@example.com")).await {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("no user with userName 'bob@example.com'"), "{m}"),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    assert!(scim.users_named("bob@example.com").await.is_empty());

    // With it, they are created once, however often they are granted.
    let creating = connector(&scim, true);
    let bob = user("bob@example.com");
    creating.grant(&group(&viewers), &bob).await.unwrap();
    creating.grant(&group(&editors), &bob).await.unwrap();
    let bob_ids = scim.users_named("bob@example.com").await;
    assert_eq!(bob_ids.len(), 1);
    assert_eq!(scim.group_members(&viewers).await, bob_ids);

    // A round: one lookup and one PATCH per group, each item with its own outcome.
    let carol = user("carol@example.com");
    let nobody = user("nobody@example.com");
    let (e, v, missing) = (group(&editors), group(&viewers), group("no-such-group"));
    let round = creating.grant_all(&[(&e, &carol), (&v, &ada), (&v, &carol), (&missing, &ada)]).await;
    assert!(round[0].is_ok() && round[1].is_ok() && round[2].is_ok(), "{round:?}");
    assert!(matches!(&round[3], Err(ConnectorError::Permanent(m)) if m.contains("404")), "{round:?}");
    let carol_id = scim.users_named("carol@example.com").await.pop().unwrap();
    assert_eq!(scim.group_members(&editors).await.len(), 3);
    assert!(scim.group_members(&viewers).await.contains(&carol_id));
    let round = c.grant_all(&[(&e, &nobody)]).await;
    assert!(matches!(&round[0], Err(ConnectorError::Permanent(_))), "{round:?}");

    // Filter metacharacters in a user name match exactly that name, nobody else.
    for hostile in ["x\" or userName pr or \"y", "*", "ada@example.com\" or \"1\" eq \"1", "back\\slash\""] {
        match c.grant(&group(&viewers), &user(hostile)).await {
            Err(ConnectorError::Permanent(m)) => assert!(m.contains("no user with userName"), "{hostile}: {m}"),
            other => panic!("{hostile}: expected a permanent refusal, got {other:?}"),
        }
    }
    assert_eq!(scim.group_members(&viewers).await.len(), 3, "no hostile value added anyone");
    let odd = "o'hara\" or userName pr";
    creating.grant(&group(&viewers), &user(odd)).await.unwrap();
    assert_eq!(scim.users_named(odd).await.len(), 1, "created under exactly that name");

    c.revoke(&group(&editors), &ada).await.unwrap();
    c.revoke(&group(&editors), &ada).await.unwrap(); // not a member any more: fine
    c.revoke(&group(&editors), &nobody).await.unwrap(); // unknown: holds nothing
    c.revoke(&group("no-such-group"), &ada).await.unwrap(); // gone: holds nothing
    assert!(!scim.group_members(&editors).await.contains(&ada_id));
    assert!(!c.holds(&group(&editors), &ada).await.unwrap());

    // A wrong token: permanent, and the token is not repeated.
    let wrong = ScimConnector::new(settings(&scim.base_url, false), Some(SecretString::from("wrong-token".to_owned())))
        .unwrap();
    match wrong.grant(&group(&editors), &ada).await {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("401") && !m.contains("wrong-token"), "{m}"),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }

    // A hung application: transient, to be retried; once it answers again, the grant holds.
    scim.freeze();
    match c.grant(&group(&viewers), &ada).await {
        Err(ConnectorError::Transient(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("expected a transient failure, got {other:?}"),
    }
    scim.thaw();
    c.grant(&group(&viewers), &ada).await.unwrap();
    let viewers_now = scim.group_members(&viewers).await;
    assert_eq!(viewers_now.iter().filter(|m| **m == ada_id).count(), 1, "no duplicate member: {viewers_now:?}");

    // The application gone: transient.
    let base = scim.base_url.clone();
    drop(scim);
    let gone = ScimConnector::new(settings(&base, false), None).unwrap();
    assert!(matches!(gone.grant(&group(&viewers), &ada).await, Err(ConnectorError::Transient(_))));
}

#[tokio::test]
async fn applications_without_patch_are_changed_by_put() {
    let config = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": 1000},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "Bearer", "description": "Bearer token"}]
    });
    let scim = Scim2Server::start_with(Some(&config));
    let team = scim.create_group("Team").await;
    let ada_id = scim.create_user("ada@example.com").await;
    let bob_id = scim.create_user("bob@example.com").await;
    let c = connector(&scim, false);
    assert!(c.check().await.unwrap().contains("PUT"));
    let (ada, bob) = (user("ada@example.com"), user("bob@example.com"));
    c.grant(&group(&team), &ada).await.unwrap();
    c.grant(&group(&team), &bob).await.unwrap();
    c.grant(&group(&team), &ada).await.unwrap();
    assert_eq!(scim.group_members(&team).await, [ada_id, bob_id.clone()]);
    c.revoke(&group(&team), &ada).await.unwrap();
    c.revoke(&group(&team), &ada).await.unwrap();
    assert_eq!(scim.group_members(&team).await, [bob_id]);
    assert_eq!(scim.create_group("Other").await.len(), 32, "the server still answers");
}

/// What the hostile application has been asked, per scenario.
#[derive(Default)]
struct Seen {
    followed_redirect: AtomicUsize,
}

/// An application that answers `/{scenario}/…` badly, one way per scenario.
async fn hostile(State(seen): State<Arc<Seen>>, Path((scenario, rest)): Path<(String, String)>) -> Response {
    if rest == "ServiceProviderConfig" {
        return (StatusCode::OK, axum::Json(json!({"patch": {"supported": true}}))).into_response();
    }
    match scenario.as_str() {
        // Ten megabytes of junk with control characters, as a server error.
        "huge" => (StatusCode::INTERNAL_SERVER_ERROR, "\r\nERROR forged\u{1b}[31m".repeat(700_000)).into_response(),
        // A SCIM error whose detail tries to forge a log line and is very long.
        "forged" => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                "scimType": "invalidFilter\nINFO granted", "detail": format!("bad\r\nINFO all access granted{}", "!".repeat(5000))})),
        )
            .into_response(),
        // A login page instead of JSON.
        "html" => {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
            (StatusCode::OK, h, "<html><body>Please sign in</body></html>").into_response()
        }
        // A redirect elsewhere, which must not be followed (the token would go with it).
        "redirect" => {
            let mut h = HeaderMap::new();
            h.insert(header::LOCATION, "/followed/Users".parse().unwrap());
            (StatusCode::FOUND, h).into_response()
        }
        "followed" => {
            seen.followed_redirect.fetch_add(1, Ordering::SeqCst);
            (StatusCode::OK, axum::Json(json!({"Resources": []}))).into_response()
        }
        // Throttled.
        _ => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
    }
}

#[tokio::test]
async fn hostile_scim_answers_give_clear_bounded_errors() {
    let seen = Arc::new(Seen::default());
    let app = Router::new().route("/{scenario}/{*rest}", axum::routing::any(hostile)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let at = |scenario: &str| {
        ScimConnector::new(
            settings(&format!("http://{addr}/{scenario}"), true),
            Some(SecretString::from("t".to_owned())),
        )
        .unwrap()
    };
    let ada = user("ada@example.com");
    let g = group("g1");

    match at("huge").grant(&g, &ada).await {
        Err(ConnectorError::Transient(m)) => {
            assert!(m.contains("HTTP 500") && m.len() < 400 && !m.contains('\r') && !m.contains('\u{1b}'), "{m}")
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    match at("forged").grant(&g, &ada).await {
        Err(ConnectorError::Permanent(m)) => {
            assert!(m.contains("HTTP 400") && m.contains("bad  INFO all access granted"), "{m}");
            assert!(!m.contains('\n') && !m.contains('\r') && m.chars().count() < 800, "{m}");
        }
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    match at("html").discover().await {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("not the SCIM JSON expected"), "{m}"),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    match at("redirect").grant(&g, &ada).await {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("redirect") && m.contains("baseUrl"), "{m}"),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    assert_eq!(seen.followed_redirect.load(Ordering::SeqCst), 0, "the redirect was not followed");
    match at("throttled").grant(&g, &ada).await {
        Err(ConnectorError::Transient(m)) => assert!(m.contains("HTTP 429"), "{m}"),
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn app_roles_modelled_as_entitlements_are_granted_compared_and_revoked() {
    for patch in [true, false] {
        let config = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": patch}, "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 1000}, "changePassword": {"supported": false},
            "sort": {"supported": false}, "etag": {"supported": true},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "Bearer", "description": "Bearer token"}]
        });
        let scim = Scim2Server::start_with(Some(&config));
        scim.create_user("ada@example.com").await;
        let bob_id = scim.create_user("bob@example.com").await;
        let c = connector(&scim, false);
        let (ada, bob) = (user("ada@example.com"), user("bob@example.com"));
        let admin = entitlement("Admin");
        c.grant(&admin, &ada).await.unwrap();
        c.grant(&admin, &ada).await.unwrap(); // held already: nothing changes
        assert!(c.holds(&admin, &ada).await.unwrap());
        assert!(!c.holds(&entitlement("Editor"), &ada).await.unwrap());
        let round = c.grant_all(&[(&admin, &bob), (&entitlement("Owner"), &bob)]).await;
        assert!(round[0].is_ok(), "{round:?}");
        assert!(matches!(&round[1], Err(ConnectorError::Permanent(m)) if m.contains("not one of the entitlements")));

        // Reconciliation: bob holds it without Steward having granted it.
        let cmp = c.compare(&admin, &[&ada], &[]).await.unwrap();
        assert!(cmp.missing.is_empty(), "{cmp:?}");
        assert_eq!(cmp.unexpected, std::slice::from_ref(&bob_id));
        c.remove_holder(&admin, &bob_id).await.unwrap();
        c.remove_holder(&admin, &bob_id).await.unwrap();
        assert!(!c.holds(&admin, &bob).await.unwrap());

        c.revoke(&admin, &ada).await.unwrap();
        c.revoke(&admin, &ada).await.unwrap();
        assert!(!c.holds(&admin, &ada).await.unwrap(), "patch supported: {patch}");
        let cmp = c.compare(&admin, &[&ada], &[]).await.unwrap();
        assert_eq!(cmp.missing, [0], "{cmp:?}");
    }
}
