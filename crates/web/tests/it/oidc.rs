//! The API with a real OpenID Connect provider (tests/oidc/provider.py, started on loopback):
//! its RS256 and ES256 access tokens name directory users, a user unknown to the directory is
//! created from the token's claims when configured, key rotation is followed, and every token
//! attack is refused with 401 and logged.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::identity::ClaimMapping;
use steward_oidc::{ProviderConfig, SignInOptions};
use steward_testpeers::{MintOptions, OidcProvider};
use steward_web::identity::IdentityProvider;

use crate::app::{EM, TestApp};

fn users() -> Value {
    json!({
        "alice": {"preferred_username": "alice@contoso.com", "email": "alice@contoso.com", "name": "Alice",
                  "department": "Sales", "amr": ["pwd"]},
        "newbie": {"preferred_username": "newbie@contoso.com", "email": "newbie@contoso.com", "name": "New Person",
                   "department": "Research", "job_title": "Chemist"},
    })
}

fn idp(peer: &OidcProvider) -> IdentityProvider {
    let config = ProviderConfig::new(peer.issuer(), peer.client_id())
        .with_client_secret(peer.client_secret().to_owned().into())
        .with_audience([peer.api_audience().to_owned()]);
    IdentityProvider::new(config).unwrap()
}

async fn app(peer: &OidcProvider, create_users: bool) -> TestApp {
    let mapping = ClaimMapping { create_users, ..ClaimMapping::default() };
    let app = TestApp::with_identity(idp(peer), mapping).await;
    app.user("Alice", "alice@contoso.com").await;
    app
}

/// Who `/v1.0/…/assignmentRequests/filterByCurrentUser(on='target')` answers for: a call only
/// a signed-in user can make.
async fn as_user(app: &TestApp, token: &str) -> (StatusCode, String) {
    let r = app.get_as(token, &format!("{EM}/assignmentRequests/filterByCurrentUser(on='target')")).await;
    (r.status, r.text)
}

/// Log lines, captured for the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_providers_access_tokens_name_directory_users() {
    let peer = OidcProvider::start(&users());
    let app = app(&peer, false).await;
    for alg in ["RS256", "ES256"] {
        let token = peer.mint(MintOptions { alg: Some(alg.into()), ..MintOptions::user("alice") }).await;
        let (status, text) = as_user(&app, &token).await;
        assert_eq!(status, StatusCode::OK, "{alg}: {text}");
        let me = app
            .get_as(&token, "/v1.0/users?$filter=userPrincipalName eq 'alice@contoso.com'".replace(' ', "%20").as_str())
            .await;
        me.expect(StatusCode::OK);
    }
    // A signed-in user is not an administrator.
    let token = peer.mint(MintOptions::user("alice")).await;
    app.json_as(&token, Method::POST, &format!("{EM}/catalogs"), &json!({"displayName": "x"}))
        .await
        .expect(StatusCode::FORBIDDEN);

    // A user the directory does not know is refused, unless users are created at sign-in.
    let newbie = peer.mint(MintOptions::user("newbie")).await;
    let (status, text) = as_user(&app, &newbie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("not a user of this directory"), "{text}");

    let creating = self::app(&peer, true).await;
    let (status, text) = as_user(&creating, &newbie).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let made = creating
        .get("/v1.0/users?$filter=userPrincipalName eq 'newbie@contoso.com'".replace(' ', "%20").as_str())
        .await
        .json();
    let made = &made["value"][0];
    assert_eq!(made["displayName"], "New Person");
    assert_eq!(made["department"], "Research");
    assert_eq!(made["jobTitle"], "Chemist");
    assert_eq!(made["userType"], "Member");
    // The second call finds the same user.
    as_user(&creating, &newbie).await;
    let n = creating.get("/v1.0/users/$count").await.text;
    assert_eq!(n, "2");
}

#[tokio::test]
async fn a_token_from_the_authorization_code_flow_calls_the_api() {
    let peer = OidcProvider::start(&users());
    let app = app(&peer, false).await;
    // A client of the provider (as MSAL would be): authorization code with PKCE, following
    // the provider's redirects and signing in on its form; then the access token it got.
    let http = steward_oidc::http_client(std::time::Duration::from_secs(10)).unwrap();
    let config = ProviderConfig::new(peer.issuer(), peer.client_id())
        .with_client_secret(peer.client_secret().to_owned().into())
        .with_audience([peer.api_audience().to_owned()]);
    let client = steward_oidc::Provider::discover(config, http).await.unwrap();
    let redirect = "http://127.0.0.1:9/client/callback";
    let options = SignInOptions { scopes: vec!["api://steward/.default".into()], ..SignInOptions::default() };
    let (url, pending) = client.begin_sign_in(redirect, &options).unwrap();
    let answer = peer.authorize(&url, redirect, "alice").await;
    let signed_in = client
        .finish_sign_in(&pending, &answer.code, &answer.state, steward_app::Clock::now(&steward_app::SystemClock))
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let token = signed_in.access_token.expose_secret().to_owned();
    let (status, text) = as_user(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn rotated_keys_are_followed() {
    let peer = OidcProvider::start(&users());
    let app = app(&peer, false).await;
    let before = peer.mint(MintOptions::user("alice")).await;
    assert_eq!(as_user(&app, &before).await.0, StatusCode::OK);
    peer.rotate_keys().await;
    let after = peer.mint(MintOptions::user("alice")).await;
    let (status, text) = as_user(&app, &after).await;
    assert_eq!(status, StatusCode::OK, "a token signed with the new key: {text}");
    assert_eq!(as_user(&app, &before).await.0, StatusCode::OK, "the old key is still published");
}

#[tokio::test]
async fn token_attacks_are_refused_with_401_and_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let peer = OidcProvider::start(&users());
    let app = app(&peer, false).await;
    let good = peer.mint(MintOptions::user("alice")).await;
    assert_eq!(as_user(&app, &good).await.0, StatusCode::OK);

    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = {
        use base64::Engine;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap()
    };
    let mut payload: Value = {
        use base64::Engine;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
    };
    let none = {
        let mut h = header.clone();
        h["alg"] = json!("none");
        format!("{}.{}.", b64(&h), parts[1])
    };
    let tampered = {
        payload["preferred_username"] = json!("admin@contoso.com");
        payload["department"] = json!("Finance");
        format!("{}.{}.{}", parts[0], b64(&payload), parts[2])
    };
    let attacks: Vec<(&str, String)> = vec![
        ("alg none", none),
        (
            "HS256 keyed with the public key",
            peer.mint(MintOptions {
                alg: Some("HS256".into()),
                hmac_secret: Some("pem".into()),
                ..MintOptions::user("alice")
            })
            .await,
        ),
        ("expired", peer.mint(MintOptions { lifetime: Some(-3600), ..MintOptions::user("alice") }).await),
        (
            "wrong audience",
            peer.mint(MintOptions { audience: Some(json!("api://someone-else")), ..MintOptions::user("alice") }).await,
        ),
        (
            "wrong issuer",
            peer.mint(MintOptions { issuer: Some("https://evil.example".into()), ..MintOptions::user("alice") }).await,
        ),
        ("unknown kid", peer.mint(MintOptions { unpublished_key: true, ..MintOptions::user("alice") }).await),
        ("tampered payload", tampered),
    ];
    for (name, token) in &attacks {
        let r = app.send(Method::GET, "/v1.0/users", Some(token), &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.text);
        r.graph_error();
        assert!(!r.text.contains(token.as_str()), "{name}: the token is echoed");
    }
    let log = logs.text();
    let refusals = log.matches("refused an identity-provider token").count();
    assert_eq!(refusals, attacks.len(), "every attack is logged:\n{log}");
    for token in attacks.iter().map(|(_, t)| t) {
        assert!(!log.contains(token.as_str()), "a token was logged");
    }
}

#[tokio::test]
async fn someone_of_a_connected_organization_requests_with_the_providers_token_and_becomes_a_guest() {
    let peer = OidcProvider::start(&json!({
        "john": {"preferred_username": "john@fabrikam.com", "email": "john@fabrikam.com", "name": "John Fabrikam"},
        "eve": {"preferred_username": "eve@unknown.example", "email": "eve@unknown.example"},
    }));
    let app = app(&peer, false).await;
    let org = app
        .post(
            &format!("{EM}/connectedOrganizations"),
            &json!({"displayName": "Fabrikam", "state": "configured", "identitySources": [
                {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "fabrikam.com", "displayName": "Fabrikam"}]}),
        )
        .await;
    org.expect(StatusCode::CREATED);
    let cat = app.catalog("Partners").await;
    let package = app.package(&cat, "Partner portal").await;
    app.post(
        &format!("{EM}/assignmentPolicies"),
        &json!({"accessPackage": {"id": package}, "displayName": "Partners",
            "allowedTargetScope": "allConfiguredConnectedOrganizationUsers",
            "expiration": {"type": "afterDuration", "duration": "P30D"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let ask = json!({"requestType": "userAdd", "assignment": {"accessPackageId": package}});

    // Someone of no connected organization is nobody here.
    let eve = peer.mint(MintOptions::user("eve")).await;
    let r = app.json_as(&eve, Method::POST, &format!("{EM}/assignmentRequests"), &ask).await;
    r.expect_error(StatusCode::UNAUTHORIZED);

    // John is not in the directory, but his organization is connected: he may request, and
    // nothing else until he is a guest.
    let john = peer.mint(MintOptions::user("john")).await;
    let before = app.get("/v1.0/users/$count").await.text;
    app.get_as(&john, "/v1.0/users").await.expect_error(StatusCode::FORBIDDEN);
    let r = app.json_as(&john, Method::POST, &format!("{EM}/assignmentRequests"), &ask).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.json()["state"], "delivered", "{}", r.text);
    // Granted: he is a guest now, and his token names him.
    let guest = app
        .get("/v1.0/users?$filter=userPrincipalName eq 'john@fabrikam.com'".replace(' ', "%20").as_str())
        .await
        .json();
    assert_eq!(guest["value"][0]["userType"], "Guest", "{guest}");
    assert_eq!(guest["value"][0]["displayName"], "John Fabrikam");
    assert_ne!(app.get("/v1.0/users/$count").await.text, before);
    let (status, text) = as_user(&app, &john).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["value"].as_array().unwrap().len(), 1, "{text}");
}
