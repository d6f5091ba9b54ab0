//! End to end: a browser signs in to a real `steward serve` process over HTTPS (Steward's own
//! TLS, with a throwaway CA made by `openssl`) through a real OpenID Connect provider on
//! loopback (tests/oidc/provider.py), as an HTTP client with a cookie store that follows
//! redirects: `/auth/login` → the provider's login form → `/auth/callback` → the session
//! cookie (`__Host-`, HttpOnly, Secure, SameSite=Lax) → `/auth/me`; a cookie-authenticated
//! POST without `Origin` is refused and with it accepted; logout ends the session. Then a
//! client calls the API with the provider's own access token.
//!
//! Real processes and peers only: the `steward` binary, the provider, SQLite on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use steward_testpeers::{MintOptions, OidcProvider};

const TOKEN: &str = "e2e-sign-in-admin-token-0123456789abcdef";
const EM: &str = "/v1.0/identityGovernance/entitlementManagement";

/// The action and hidden fields of the provider's login form.
fn login_form(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].replace("&quot;", "\"").replace("&#x27;", "'").replace("&amp;", "&"))
    };
    let form = html.split("<form").nth(1).and_then(|s| s.split('>').next()).expect("a login form");
    let fields = html
        .split("<input")
        .skip(1)
        .filter_map(|s| s.split('>').next())
        .filter(|tag| attr(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect();
    (attr(form, "action").unwrap(), fields)
}

fn set_cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_browser_signs_in_over_https_and_the_providers_access_token_calls_the_api() {
    let peer = OidcProvider::start(&json!({
        "alice": {"preferred_username": "alice@contoso.com", "email": "alice@contoso.com", "name": "Alice", "amr": ["pwd"]},
    }));
    let server = common::HttpsSteward::start(&peer, &[], &[("STEWARD_BOOTSTRAP_ADMIN_TOKEN", TOKEN)]);
    let (dir, base) = (server.dir.clone(), server.base.clone());

    // Browsers trust the throwaway CA; one cookie jar for the two clients below.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder().tls_certs_only([ca.clone()]).cookie_provider(jar.clone()).build().unwrap();
    // The same browser, stopping at each redirect, to look at one answer's headers.
    let stepper = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();

    // Over TLS, with HSTS and the other security headers.
    let r = admin.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    assert_eq!(r.headers()["x-frame-options"], "DENY");

    // Alice is in the directory; a package she may request for herself.
    let post = |path: &str, body: Value| {
        let req = admin.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert!(status.is_success(), "{status}: {v}");
            v
        }
    };
    let alice = post("/v1.0/users", json!({"displayName": "Alice", "userPrincipalName": "alice@contoso.com"})).await;
    let catalog = post(&format!("{EM}/catalogs"), json!({"displayName": "Tools"})).await;
    let package =
        post(&format!("{EM}/accessPackages"), json!({"displayName": "Wiki", "catalog": {"id": catalog["id"]}})).await;
    post(
        &format!("{EM}/assignmentPolicies"),
        json!({"accessPackage": {"id": package["id"]}, "displayName": "Members", "allowedTargetScope": "allMemberUsers",
            "requestApprovalSettings": {"isApprovalRequiredForAdd": false, "stages": []}}),
    )
    .await;

    // /auth/login → (redirect) the provider's login form.
    let r = browser.get(format!("{base}/auth/login?returnTo=/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let form_url = r.url().clone();
    assert!(form_url.as_str().starts_with(peer.issuer()), "{form_url}");
    let (action, mut fields) = login_form(&r.text().await.unwrap());
    fields.push(("username".into(), "alice".into()));
    // Signing in there sends the browser back to Steward's callback.
    let r = stepper.post(form_url.join(&action).unwrap()).form(&fields).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{base}/auth/callback?")), "{callback}");
    let r = stepper.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    assert_eq!(r.headers()["location"], "/auth/me");
    let cookies = set_cookies(r.headers());
    let session = cookies.iter().find(|c| c.starts_with("__Host-steward_session=")).expect("a session cookie");
    for attribute in ["; HttpOnly", "; Secure", "; SameSite=Lax", "; Path=/"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.to_ascii_lowercase().contains("domain="), "{session}");
    // …and on to returnTo, following redirects with the cookie.
    let r = browser.get(format!("{base}/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["id"], alice["id"]);
    assert_eq!(me["userPrincipalName"], "alice@contoso.com");
    assert_eq!(me["amr"], json!(["pwd"]));
    let csrf = me["csrfToken"].as_str().unwrap().to_owned();

    // A state-changing request with the cookie: refused without Origin, accepted with it.
    let request = json!({"requestType": "userAdd", "assignment": {"accessPackageId": package["id"]}});
    let url = format!("{base}{EM}/assignmentRequests");
    let r = browser.post(&url).json(&request).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = browser.post(&url).header("origin", &base).json(&request).send().await.unwrap();
    let status = r.status();
    let made: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["requestType"], "userAdd");

    // Logout (a form with the token) ends the session and goes to the provider's logout.
    let r = stepper
        .post(format!("{base}/auth/logout"))
        .header("origin", &base)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(&format!("{}/logout?", peer.issuer())) && to.contains("id_token_hint="), "{to}");
    assert!(
        set_cookies(r.headers()).iter().any(|c| c.starts_with("__Host-steward_session=;") && c.contains("Max-Age=0"))
    );
    let r = browser.get(format!("{base}/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r =
        browser.get(format!("{base}{EM}/assignmentRequests/filterByCurrentUser(on='target')")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // The API with the provider's access token (aud api://steward).
    let token = peer.mint(MintOptions::user("alice")).await;
    let r = admin
        .get(format!("{base}{EM}/assignmentRequests/filterByCurrentUser(on='target')"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let mine: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["value"].as_array().map(Vec::len), Some(1), "the request made through the portal session");
    drop(server);
}
