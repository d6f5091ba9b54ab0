//! Portal sign-in over HTTP, against a real OpenID Connect provider (tests/oidc/provider.py on
//! loopback): the code flow through `/auth/login` and `/auth/callback`, the session cookie and
//! what it authenticates, `returnTo` (no open redirect), sign-ins taken once and expiring,
//! idle and absolute timeouts on a manual clock, disabled users, CSRF rules, logout, the
//! security headers, and rate limits (429 with `Retry-After`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use jiff::SignedDuration;
use serde_json::{Value, json};
use steward_app::auth::Authenticator;
use steward_app::identity::ClaimMapping;
use steward_app::ports::ManualClock;
use steward_app::sessions::SessionPolicy;
use steward_app::{Clock, SystemClock};
use steward_oidc::ProviderConfig;
use steward_testpeers::OidcProvider;
use steward_web::identity::IdentityProvider;
use steward_web::security::{RateLimit, RateLimits, SecurityOptions};
use steward_web::signin::{Portal, SignIn};

use crate::app::{ADMIN, EM, Resp, TestApp};

pub(crate) const PUBLIC: &str = "https://steward.test";
const PEER: &str = "192.0.2.10:40000";

fn users() -> Value {
    json!({
        "alice": {"preferred_username": "alice@contoso.com", "email": "alice@contoso.com", "name": "Alice",
                  "amr": ["pwd"], "deviceCompliant": true},
        "mallory": {"preferred_username": "mallory@contoso.com", "name": "Mallory"},
    })
}

pub(crate) struct Harness {
    pub(crate) app: TestApp,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) peer: Option<OidcProvider>,
}

pub(crate) fn limits() -> RateLimits {
    RateLimits::default()
}

pub(crate) async fn portal_with(
    peer: Option<OidcProvider>,
    sessions: SessionPolicy,
    limits: RateLimits,
    public: &str,
) -> Harness {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let mut auth = Authenticator::new(Some(ADMIN));
    let mut portal = Portal { sign_in: None, sessions };
    if let Some(peer) = &peer {
        let config = ProviderConfig::new(peer.issuer(), peer.client_id())
            .with_client_secret(peer.client_secret().to_owned().into())
            .with_audience([peer.api_audience().to_owned()]);
        let idp = IdentityProvider::new(config).unwrap();
        auth = auth.with_identity_provider(Arc::new(idp.clone()), ClaimMapping::default());
        // The provider accepts loopback redirect URIs only; the browser here is the test.
        portal.sign_in = Some(SignIn {
            provider: idp,
            redirect_url: "https://127.0.0.1/auth/callback".into(),
            post_logout_redirect_url: Some("https://127.0.0.1/".into()),
            scopes: vec![],
        });
    }
    let options = steward_web::Options {
        portal,
        security: SecurityOptions { trusted_proxies: vec![], tls: false, limits },
        ..Default::default()
    };
    let app = TestApp::with_options(auth, clock.clone(), Some(public), options).await;
    Harness { app, clock, peer }
}

async fn portal() -> Harness {
    let p = portal_with(Some(OidcProvider::start(&users())), SessionPolicy::default(), limits(), PUBLIC).await;
    p.app.user("Alice", "alice@contoso.com").await;
    p
}

/// A browser: its cookies, sent along from `PEER`.
#[derive(Default)]
pub(crate) struct Browser {
    pub(crate) cookies: HashMap<String, String>,
}

impl Browser {
    pub(crate) async fn send(
        &mut self,
        app: &TestApp,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("cookie", jar.join("; "));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body.to_owned())).unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(PEER.parse::<std::net::SocketAddr>().unwrap()));
        let resp = app.request(req).await;
        for c in resp.headers.get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        resp
    }

    pub(crate) async fn get(&mut self, app: &TestApp, path: &str) -> Resp {
        self.send(app, Method::GET, path, &[], "").await
    }

    /// `/auth/login` up to the provider's answer: the callback path with code and state.
    pub(crate) async fn begin(&mut self, p: &Harness, login: &str, user: &str) -> String {
        let r = self.get(&p.app, login).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let to = r.header("location").to_owned();
        let peer = p.peer.as_ref().unwrap();
        assert!(to.starts_with(peer.issuer()), "{to}");
        let answer = peer.authorize(&to, "https://127.0.0.1/auth/callback", user).await;
        let state = percent_encoding::utf8_percent_encode(&answer.state, percent_encoding::NON_ALPHANUMERIC);
        let code = percent_encoding::utf8_percent_encode(&answer.code, percent_encoding::NON_ALPHANUMERIC);
        format!("/auth/callback?code={code}&state={state}")
    }

    /// Signs in as `user` through `login`; the callback's answer.
    pub(crate) async fn sign_in(&mut self, p: &Harness, login: &str, user: &str) -> Resp {
        let callback = self.begin(p, login, user).await;
        self.get(&p.app, &callback).await
    }

    fn session(&self) -> Option<&String> {
        self.cookies.get("__Host-steward_session")
    }
}

const MINE: &str = "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/filterByCurrentUser(on='target')";

#[tokio::test]
async fn signing_in_starts_a_session_that_authenticates_the_portal_and_the_api() {
    let p = portal().await;
    let mut b = Browser::default();
    let r = b.get(&p.app, "/auth/login?returnTo=/portal/requests%3Ftab%3Dmine").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let binding = r.header("set-cookie");
    assert!(binding.starts_with("__Host-steward_signin=") && binding.contains("HttpOnly"), "{binding}");
    let to = r.header("location");
    for part in ["code_challenge_method=S256", "state=", "nonce=", "response_type=code"] {
        assert!(to.contains(part), "{part} in {to}");
    }

    let mut b = Browser::default();
    let r = b.sign_in(&p, "/auth/login?returnTo=/portal/requests%3Ftab%3Dmine", "alice").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.header("location"), "/portal/requests?tab=mine");
    let set: Vec<&str> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = set.iter().find(|c| c.starts_with("__Host-steward_session=")).expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    let token = session.split(['=', ';']).nth(1).unwrap();
    assert_eq!(token.len(), 43, "32 random bytes");
    assert!(set.iter().any(|c| c.starts_with("__Host-steward_signin=;") && c.contains("Max-Age=0")), "{set:?}");
    assert!(!b.cookies.contains_key("__Host-steward_signin"));

    let me = b.get(&p.app, "/auth/me").await;
    me.expect(StatusCode::OK);
    let me = me.json();
    assert_eq!(me["userPrincipalName"], "alice@contoso.com");
    assert_eq!(me["displayName"], "Alice");
    assert_eq!(me["amr"], json!(["pwd"]));
    assert_eq!(me["deviceCompliant"], true);
    assert!(me["authTime"].is_string() && me["sessionExpiresDateTime"].is_string(), "{me}");
    assert!(me["csrfToken"].as_str().is_some_and(|t| t.len() == 43), "{me}");

    // The cookie authenticates the API as the user.
    b.get(&p.app, MINE).await.expect(StatusCode::OK);
    let r = b.get(&p.app, "/v1.0/users").await;
    r.expect(StatusCode::OK);

    // The session is stored as a hash: the token itself is nowhere in the database.
    assert!(p.app.services.store.session(&steward_app::auth::hash_secret(token)).await.unwrap().is_some());
    assert!(p.app.services.store.session(token).await.unwrap().is_none());
}

#[tokio::test]
async fn return_to_is_a_same_origin_path_or_nothing() {
    let p = portal().await;
    for (asked, landed) in [
        ("/auth/login?returnTo=//evil.example/x", "/"),
        ("/auth/login?returnTo=https%3A%2F%2Fevil.example%2F", "/"),
        ("/auth/login?returnTo=%2F%5Cevil.example", "/"),
        ("/auth/login?returnTo=javascript:alert(1)", "/"),
        ("/auth/login", "/"),
        ("/auth/login?returnTo=/portal", "/portal"),
    ] {
        let mut b = Browser::default();
        let r = b.sign_in(&p, asked, "alice").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{asked}: {}", r.text);
        assert_eq!(r.header("location"), landed, "{asked}");
    }
}

#[tokio::test]
async fn a_sign_in_is_finished_once_in_the_browser_that_began_it_within_ten_minutes() {
    let p = portal().await;
    // Replayed: the second callback finds nothing.
    let mut b = Browser::default();
    let callback = b.begin(&p, "/auth/login", "alice").await;
    let binding = b.cookies.clone();
    b.get(&p.app, &callback).await.expect(StatusCode::SEE_OTHER);
    let mut replay = Browser { cookies: binding };
    replay.cookies.remove("__Host-steward_session");
    let r = replay.get(&p.app, &callback).await;
    r.expect(StatusCode::BAD_REQUEST);
    assert!(r.header("content-type").starts_with("text/html"), "a page");
    assert!(r.text.contains("unknown"), "{}", r.text);
    assert!(replay.session().is_none());

    // Unknown state.
    let r = Browser::default().get(&p.app, "/auth/callback?code=x&state=made-up").await;
    r.expect(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("unknown"), "{}", r.text);

    // Expired: more than ten minutes between login and callback.
    let mut b = Browser::default();
    let callback = b.begin(&p, "/auth/login", "alice").await;
    p.clock.advance(SignedDuration::from_mins(11));
    let r = b.get(&p.app, &callback).await;
    r.expect(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("expired"), "{}", r.text);
    assert!(b.session().is_none());
    p.clock.set(SystemClock.now());

    // Another browser (no binding cookie) cannot finish it, and the sign-in is spent.
    let mut b = Browser::default();
    let callback = b.begin(&p, "/auth/login", "alice").await;
    let r = Browser::default().get(&p.app, &callback).await;
    r.expect(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("another browser"), "{}", r.text);
    b.get(&p.app, &callback).await.expect(StatusCode::BAD_REQUEST);

    // The provider's error answer.
    let mut b = Browser::default();
    let callback = b.begin(&p, "/auth/login", "alice").await;
    let state = callback.split("state=").nth(1).unwrap();
    let r =
        b.get(&p.app, &format!("/auth/callback?error=access_denied&error_description=no%3Cb%3E&state={state}")).await;
    r.expect(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("access_denied") && r.text.contains("no&lt;b&gt;"), "escaped: {}", r.text);

    // A user the directory does not know (and users are not created).
    let mut b = Browser::default();
    let r = b.sign_in(&p, "/auth/login", "mallory").await;
    r.expect(StatusCode::FORBIDDEN);
    assert!(r.text.contains("not a user of this directory"), "{}", r.text);
    assert!(b.session().is_none());
    p.app.assert_no_5xx();
}

#[tokio::test]
async fn sessions_end_after_the_idle_and_the_absolute_timeout() {
    let policy = SessionPolicy { idle: SignedDuration::from_mins(30), absolute: SignedDuration::from_hours(2) };
    let p = portal_with(Some(OidcProvider::start(&users())), policy, limits(), PUBLIC).await;
    p.app.user("Alice", "alice@contoso.com").await;

    // Idle: used at 29 minutes keeps it; 31 minutes unused ends it.
    let mut b = Browser::default();
    b.sign_in(&p, "/auth/login", "alice").await.expect(StatusCode::SEE_OTHER);
    p.clock.advance(SignedDuration::from_mins(29));
    b.get(&p.app, "/auth/me").await.expect(StatusCode::OK);
    p.clock.advance(SignedDuration::from_mins(29));
    b.get(&p.app, MINE).await.expect(StatusCode::OK);
    p.clock.advance(SignedDuration::from_mins(31));
    let r = b.get(&p.app, MINE).await;
    r.expect_error(StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("expired"), "{}", r.text);
    b.get(&p.app, "/auth/me").await.expect(StatusCode::UNAUTHORIZED);

    // Absolute: used every 20 minutes, it still ends two hours after sign-in.
    p.clock.set(SystemClock.now());
    let mut b = Browser::default();
    b.sign_in(&p, "/auth/login", "alice").await.expect(StatusCode::SEE_OTHER);
    for _ in 0..5 {
        p.clock.advance(SignedDuration::from_mins(20));
        b.get(&p.app, "/auth/me").await.expect(StatusCode::OK);
    }
    p.clock.advance(SignedDuration::from_mins(20));
    b.get(&p.app, "/auth/me").await.expect(StatusCode::UNAUTHORIZED);

    // Ended sessions are deleted (refused ones at once, the rest by the sweep).
    p.clock.set(SystemClock.now());
    let mut b = Browser::default();
    b.sign_in(&p, "/auth/login", "alice").await.expect(StatusCode::SEE_OTHER);
    let hash = steward_app::auth::hash_secret(b.session().unwrap());
    assert!(p.app.services.store.session(&hash).await.unwrap().is_some());
    p.clock.advance(SignedDuration::from_hours(3));
    assert_eq!(steward_app::sessions::sweep(&p.app.services, p.clock.now()).await.unwrap(), 1);
    assert!(p.app.services.store.session(&hash).await.unwrap().is_none());
}

#[tokio::test]
async fn a_disabled_or_deleted_users_session_stops_working() {
    let p = portal().await;
    let mut b = Browser::default();
    b.sign_in(&p, "/auth/login", "alice").await.expect(StatusCode::SEE_OTHER);
    let me = b.get(&p.app, "/auth/me").await.json();
    let id = me["id"].as_str().unwrap().to_owned();
    p.app.patch(&format!("/v1.0/users/{id}"), &json!({"accountEnabled": false})).await.expect(StatusCode::NO_CONTENT);
    let r = b.get(&p.app, MINE).await;
    r.expect_error(StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("disabled"), "{}", r.text);

    p.app.patch(&format!("/v1.0/users/{id}"), &json!({"accountEnabled": true})).await.expect(StatusCode::NO_CONTENT);
    let mut b = Browser::default();
    b.sign_in(&p, "/auth/login", "alice").await.expect(StatusCode::SEE_OTHER);
    b.get(&p.app, MINE).await.expect(StatusCode::OK);
    p.app.delete(&format!("/v1.0/users/{id}")).await.expect(StatusCode::NO_CONTENT);
    b.get(&p.app, MINE).await.expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_requests_that_change_state_must_come_from_this_site() {
    let p = portal().await;
    let mut b = Browser::default();
    b.sign_in(&p, "/auth/login", "alice").await.expect(StatusCode::SEE_OTHER);
    let csrf = b.get(&p.app, "/auth/me").await.json()["csrfToken"].as_str().unwrap().to_owned();
    let path = format!("{EM}/assignmentRequests");
    let json_ct = ("content-type", "application/json");

    // No Origin nor Referer, another site's Origin, a look-alike Referer: refused before anything.
    for headers in [
        vec![json_ct],
        vec![json_ct, ("origin", "https://evil.example")],
        vec![json_ct, ("origin", "null")],
        vec![json_ct, ("origin", "http://steward.test")],
        vec![json_ct, ("referer", "https://steward.test.evil.example/")],
    ] {
        let r = b.send(&p.app, Method::POST, &path, &headers, "{}").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}: {}", r.text);
        assert!(r.text.contains("must come from this site"), "{}", r.text);
    }
    // This site's Origin (or Referer): the request is authenticated and goes on to the body.
    for headers in [vec![json_ct, ("origin", PUBLIC)], vec![json_ct, ("referer", "https://steward.test/portal")]] {
        let r = b.send(&p.app, Method::POST, &path, &headers, "{}").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{headers:?}: {}", r.text);
    }
    // A body a form of another site could send needs the session's token, even from this site.
    let form = [("content-type", "application/x-www-form-urlencoded"), ("origin", PUBLIC)];
    let r = b.send(&p.app, Method::POST, &path, &form, "a=1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("X-CSRF-Token"), "{}", r.text);
    let with_token = [form[0], form[1], ("x-csrf-token", csrf.as_str())];
    let r = b.send(&p.app, Method::POST, &path, &with_token, "a=1").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);
    let wrong = [json_ct, ("origin", PUBLIC), ("x-csrf-token", "not-the-token")];
    b.send(&p.app, Method::POST, &path, &wrong, "{}").await.expect(StatusCode::FORBIDDEN);
    // Reads need no Origin; bearer tokens need none of this.
    b.get(&p.app, MINE).await.expect(StatusCode::OK);
    p.app.send(Method::POST, &path, Some(ADMIN), &[json_ct], "{}").await.expect(StatusCode::BAD_REQUEST);

    // Logout is a form: this site's Origin and the token, else refused.
    let form_ct = ("content-type", "application/x-www-form-urlencoded");
    let body = format!("csrf_token={csrf}");
    let r = b.send(&p.app, Method::POST, "/auth/logout", &[form_ct], &body).await;
    r.expect(StatusCode::FORBIDDEN);
    let r = b.send(&p.app, Method::POST, "/auth/logout", &[form_ct, ("origin", PUBLIC)], "csrf_token=nope").await;
    r.expect(StatusCode::FORBIDDEN);
    b.get(&p.app, "/auth/me").await.expect(StatusCode::OK);
    let r = b.send(&p.app, Method::POST, "/auth/logout", &[form_ct, ("origin", PUBLIC)], &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let to = r.header("location");
    let peer = p.peer.as_ref().unwrap();
    assert!(to.starts_with(&format!("{}/logout?", peer.issuer())), "{to}");
    assert!(to.contains("id_token_hint=eyJ") && to.contains("post_logout_redirect_uri="), "{to}");
    assert!(b.session().is_none(), "the cookie is cleared");
    b.get(&p.app, "/auth/me").await.expect(StatusCode::UNAUTHORIZED);
}

fn assert_security_headers(r: &Resp, hsts: bool) {
    let csp = r.header("content-security-policy");
    for part in ["default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("x-frame-options"), "DENY");
    assert_eq!(r.header("referrer-policy"), "same-origin");
    assert_eq!(r.header("strict-transport-security").is_empty(), !hsts, "HSTS only over HTTPS");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let https = portal_with(None, SessionPolicy::default(), limits(), "https://steward.test").await;
    let plain = portal_with(None, SessionPolicy::default(), limits(), "http://127.0.0.1:8080").await;
    for (p, hsts) in [(&https, true), (&plain, false)] {
        let mut b = Browser::default();
        for path in ["/v1.0/users", "/healthz", "/v1.0/nothing-here", "/auth/me", "/auth/login", "/scim/v2/Users"] {
            let r = b.get(&p.app, path).await;
            assert_security_headers(&r, hsts);
        }
        assert_security_headers(&p.app.get("/v1.0/users").await, hsts);
    }
    // With a provider, its origin may receive the logout form's redirect.
    let p = portal().await;
    let r = p.app.get("/v1.0/users").await;
    let origin = p.peer.as_ref().unwrap().issuer().to_owned();
    assert!(r.header("content-security-policy").contains(&format!("form-action 'self' {origin}")));
    assert_security_headers(&Browser::default().get(&p.app, "/auth/login").await, true);
}

#[tokio::test]
async fn sign_in_and_failed_authentications_are_rate_limited_per_address() {
    let tight = RateLimit { burst: 2, every: Duration::from_secs(60) };
    let p = portal_with(
        None,
        SessionPolicy::default(),
        RateLimits { login: tight, callback: tight, failed_auth: tight },
        PUBLIC,
    )
    .await;
    let mut b = Browser::default();
    for _ in 0..2 {
        b.get(&p.app, "/auth/login").await.expect(StatusCode::NOT_FOUND);
    }
    let r = b.get(&p.app, "/auth/login").await;
    r.expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), "60");
    for _ in 0..2 {
        b.get(&p.app, "/auth/callback?state=x&code=y").await.expect(StatusCode::NOT_FOUND);
    }
    b.get(&p.app, "/auth/callback?state=x&code=y").await.expect(StatusCode::TOO_MANY_REQUESTS);

    // Failed bearer tokens: two 401s, then even a good token from that address gets 429.
    let users = "/v1.0/users";
    let from = |peer: &'static str, token: &'static str| {
        let app = &p.app;
        async move { app.json_from(peer, token, Method::GET, users, &Value::Null).await }
    };
    from(PEER, "stw_wrong").await.expect(StatusCode::UNAUTHORIZED);
    from(PEER, ADMIN).await.expect(StatusCode::OK);
    from(PEER, "stw_wrong").await.expect(StatusCode::UNAUTHORIZED);
    let r = from(PEER, ADMIN).await;
    assert_eq!(r.expect_error(StatusCode::TOO_MANY_REQUESTS), "TooManyRequests");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    from("198.51.100.7:1", ADMIN).await.expect(StatusCode::OK);
    // SCIM's bearer token counts the same way, answered in SCIM's shape.
    let mut req =
        Request::builder().uri("/scim/v2/Users").header("authorization", "Bearer x").body(Body::empty()).unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(PEER.parse::<std::net::SocketAddr>().unwrap()));
    let r = p.app.request(req).await;
    r.expect(StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text.contains("urn:ietf:params:scim:api:messages:2.0:Error"), "{}", r.text);
}

#[tokio::test]
async fn a_portal_user_missing_a_condition_is_sent_to_sign_in_again_with_step_up() {
    let p = portal().await;
    let cat = p.app.catalog("Finance").await;
    let package = p.app.package(&cat, "Ledger").await;
    p.app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": package}, "displayName": "Guarded", "allowedTargetScope": "allMemberUsers",
                "conditionalRequirements": {"onRequest": {"multiFactorAuthentication": true}}}),
        )
        .await
        .expect(StatusCode::CREATED);
    let mut b = Browser::default();
    b.sign_in(&p, "/auth/login", "alice").await.expect(StatusCode::SEE_OTHER);
    let ask = |csrf: String| {
        let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": package}}).to_string();
        (csrf, body)
    };
    let csrf = b.get(&p.app, "/auth/me").await.json()["csrfToken"].as_str().unwrap().to_owned();
    let (csrf, body) = ask(csrf);
    let headers = [("content-type", "application/json"), ("origin", PUBLIC), ("x-csrf-token", csrf.as_str())];
    let r = b.send(&p.app, Method::POST, &format!("{EM}/assignmentRequests"), &headers, &body).await;
    r.expect(StatusCode::FORBIDDEN);
    let details = r.json()["error"]["details"].clone();
    assert_eq!(details[0]["code"], "multiFactorAuthentication", "{details}");
    let again = details[1]["target"].as_str().unwrap().to_owned();
    assert_eq!(again, "/auth/login?acr_values=mfa");

    // Following it: the provider is asked for MFA, and the new session shows it.
    b.sign_in(&p, &format!("{again}&returnTo=/portal"), "alice").await.expect(StatusCode::SEE_OTHER);
    let me = b.get(&p.app, "/auth/me").await.json();
    assert!(me["amr"].as_array().unwrap().iter().any(|m| m == "mfa"), "{me}");
    let (csrf, body) = ask(me["csrfToken"].as_str().unwrap().to_owned());
    let headers = [("content-type", "application/json"), ("origin", PUBLIC), ("x-csrf-token", csrf.as_str())];
    let r = b.send(&p.app, Method::POST, &format!("{EM}/assignmentRequests"), &headers, &body).await;
    r.expect(StatusCode::CREATED);
}
