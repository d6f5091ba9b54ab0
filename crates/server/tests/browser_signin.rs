//! In a real browser: headless Chromium (Debian's, under chromedriver; `steward-testpeers`'
//! `Chrome`) signs in to a real `steward serve` process with demo data over HTTPS (Steward's
//! own TLS, a throwaway CA made by `openssl`, the server's key accepted by the browser) through
//! the test OpenID Connect provider's login form (tests/oidc/provider.py), lands back on
//! Steward with its session cookie and reads `/auth/me`. Each page is kept as screenshots at
//! desktop and phone widths under `target/screenshots/browser_signin/`, and Steward's HTML
//! pages must have no serious or critical axe-core violation.
//!
//! Real processes and peers only: the `steward` binary, the provider, Chromium, SQLite on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use steward_testpeers::{Chrome, OidcProvider};

/// A demo user of `crates/server/src/demo.rs`, as the provider knows her.
const USER: &str = "adele";
const UPN: &str = "adele.vance@contoso.example";

#[tokio::test]
async fn a_demo_user_signs_in_with_chromium_and_the_pages_are_accessible() {
    let peer = OidcProvider::start(&json!({
        USER: {"preferred_username": UPN, "email": UPN, "name": "Adele Vance", "amr": ["pwd"]},
        "isaiah": {"preferred_username": "isaiah.langer@contoso.example", "name": "Isaiah Langer", "amr": ["pwd"]},
    }));
    let server = common::HttpsSteward::start(&peer, &["--demo"], &[]);
    let (dir, base) = (server.dir.clone(), server.base.clone());

    // Chromium accepts Steward's throwaway certificate by its key, and nothing else.
    let chrome = Chrome::start_trusting("browser_signin", &[&dir.join("server.pem")]).await;
    let wait = Duration::from_secs(15);

    // /auth/login sends the browser to the provider's login form.
    chrome.goto(&format!("{base}/auth/login")).await;
    chrome.wait_for("form input[name=username]", wait).await;
    assert!(chrome.current_url().await.starts_with(peer.issuer()), "{}", chrome.current_url().await);
    chrome.screenshot_both("provider-login").await;

    // Signing in there lands back on Steward, with a session.
    chrome.fill("input[name=username]", USER).await;
    chrome.submit("form").await;
    let landing = chrome.wait_for_url(&format!("{base}/"), wait).await;
    assert!(!landing.contains("/auth/callback"), "{landing}");
    chrome.screenshot_both("landing").await;
    if chrome.content_type().await == "text/html" {
        chrome.assert_accessible().await;
    }

    // /auth/me names her (JSON: a screenshot, nothing for axe to check).
    chrome.goto(&format!("{base}/auth/me")).await;
    let me: Value = serde_json::from_str(&chrome.text("body").await).expect("/auth/me is JSON");
    assert_eq!(me["userPrincipalName"], UPN, "{me}");
    assert_eq!(chrome.content_type().await, "application/json");
    chrome.screenshot_both("auth-me").await;

    // My Access's pages, where this build has them (the portal is being built: a page still
    // missing answers 404 and is passed over, with a note).
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let probe =
        reqwest::Client::builder().tls_certs_only([ca]).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (page, path) in [
        ("access-packages", "/access-packages"),
        ("requests", "/requests"),
        ("access", "/access"),
        ("approvals", "/approvals"),
    ] {
        let status = probe.get(format!("{base}{path}")).send().await.unwrap().status();
        assert_ne!(status, 404, "{path}");
        chrome.goto(&format!("{base}{path}")).await;
        assert_eq!(chrome.content_type().await, "text/html", "{path}");
        assert!(chrome.current_url().await.starts_with(&format!("{base}{path}")), "{}", chrome.current_url().await);
        chrome.screenshot_both(page).await;
        chrome.assert_accessible().await;
    }

    // Adele finds a package by search, requests it with a justification and a period of her
    // choosing, and the confirmation names her manager as the approver.
    chrome.goto(&format!("{base}/access-packages")).await;
    chrome.fill("#search", "SugarLearning").await;
    chrome.submit("form[role=search]").await;
    chrome.wait_for_url(&format!("{base}/access-packages?"), Duration::from_secs(10)).await;
    let listed = chrome.text("main").await;
    assert!(listed.contains("SugarLearning Prod Contributor"), "{listed}");
    assert!(!listed.contains("Sales Toolkit"), "the search narrows the list: {listed}");
    chrome.screenshot_both("search").await;
    chrome.click("main h2 a").await;
    chrome.wait_for("#justification", Duration::from_secs(10)).await;
    chrome.screenshot_both("package").await;
    chrome.assert_accessible().await;
    chrome.fill("#justification", "On call for the release next month").await;
    chrome.click("input[name=period]").await;
    let today = steward_app::Clock::now(&steward_app::SystemClock).to_zoned(jiff::tz::TimeZone::UTC).date();
    let start = today.checked_add(jiff::Span::new().days(1)).unwrap();
    let end = today.checked_add(jiff::Span::new().days(30)).unwrap();
    // Date inputs take what a person types in the browser's locale; the value is set directly.
    for (id, day) in [("start", start), ("end", end)] {
        chrome.client().execute(&format!("document.getElementById('{id}').value = '{day}'"), vec![]).await.unwrap();
    }
    chrome.submit("main form[method=post]").await;
    chrome.wait_for_url(&format!("{base}/requests/"), Duration::from_secs(10)).await;
    let confirmation = chrome.text("main").await;
    assert!(confirmation.contains("Isaiah Langer"), "who approves: {confirmation}");
    chrome.screenshot_both("request-submitted").await;
    chrome.assert_accessible().await;

    let shots = steward_testpeers::chrome::screenshots_dir().join("browser_signin");
    for page in ["provider-login", "landing", "auth-me"] {
        for width in ["desktop", "phone"] {
            let png = std::fs::read(shots.join(format!("{page}-{width}.png"))).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{page}-{width}.png is a PNG");
        }
    }
    chrome.close().await;

    // Her manager signs in, in a browser of his own, finds the request under Approvals and
    // approves it.
    let manager = Chrome::start_trusting("browser_signin", &[&dir.join("server.pem")]).await;
    manager.goto(&format!("{base}/auth/login?returnTo=/approvals")).await;
    manager.wait_for("form input[name=username]", wait).await;
    manager.fill("input[name=username]", "isaiah").await;
    manager.submit("form").await;
    manager.wait_for_url(&format!("{base}/approvals"), wait).await;
    let waiting = manager.text("main").await;
    assert!(waiting.contains("SugarLearning Prod Contributor") && waiting.contains("Adele Vance"), "{waiting}");
    manager.screenshot_both("approvals-manager").await;
    manager.assert_accessible().await;
    manager.click("main h3 a").await;
    manager.wait_for("button[value=approve]", wait).await;
    let approval = manager.text("main").await;
    assert!(approval.contains("On call for the release next month"), "the justification is shown: {approval}");
    manager.screenshot_both("approval").await;
    manager.assert_accessible().await;
    manager.fill("#justification", "Needed for the release").await;
    let form_url = manager.current_url().await;
    manager.click("button[value=approve]").await;
    // The decision answers with another page (a redirect after the POST).
    let deadline = std::time::Instant::now() + wait;
    while manager.current_url().await == form_url && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = manager.text("main").await;
    assert!(!done.contains("This form is out of date"), "{done}");
    manager.goto(&format!("{base}/approvals")).await;
    let after = manager.text("main").await;
    assert!(after.contains("Needed for the release"), "his decision is in his history: {after}");
    manager.close().await;

    // A browser not told of the throwaway certificate refuses Steward: the trust above is
    // that one key, not certificate errors ignored.
    let stranger = Chrome::start("browser_signin").await;
    stranger.goto(&format!("{base}/healthz")).await;
    let body = stranger.text("body").await;
    assert!(body.contains("NET::ERR_CERT_AUTHORITY_INVALID"), "Chromium's certificate warning: {body}");
    stranger.close().await;
    drop(server);
}
