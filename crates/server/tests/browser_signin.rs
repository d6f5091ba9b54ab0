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
        "pradeep": {"preferred_username": "pradeep.gupta@contoso.example", "name": "Pradeep Gupta", "amr": ["pwd"]},
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

    // Adele finds a package by search.
    chrome.goto(&format!("{base}/access-packages")).await;
    chrome.fill("#search", "SugarLearning").await;
    chrome.submit("form[role=search]").await;
    chrome.wait_for_url(&format!("{base}/access-packages?"), wait).await;
    let listed = chrome.text("main").await;
    assert!(listed.contains("SugarLearning Prod Contributor"), "{listed}");
    assert!(!listed.contains("Sales Toolkit"), "the search narrows the list: {listed}");
    chrome.screenshot_both("search").await;
    chrome.assert_accessible().await;
    chrome.click("main h2 a").await;
    chrome.wait_for("#justification", wait).await;
    let package_url = chrome.current_url().await;
    chrome.screenshot_both("package").await;
    chrome.assert_accessible().await;

    // Bad input: each answers on the page, next to the field, and sends nothing.
    let today = steward_app::Clock::now(&steward_app::SystemClock).to_zoned(jiff::tz::TimeZone::UTC).date();
    let day = |n: i64| today.checked_add(jiff::Span::new().days(n)).unwrap().to_string();
    // An empty justification, which the policy requires.
    request_form(&chrome, "", Some((day(1), day(30)))).await;
    let page = chrome.text("main").await;
    assert!(chrome.text("#error-justification").await.to_lowercase().contains("justification"), "{page}");
    assert_eq!(chrome.find("#justification").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    chrome.screenshot_both("request-error").await;
    chrome.assert_accessible().await;
    // An end before the start, and a period beyond the policy's 90 days.
    request_form(&chrome, "Release", Some((day(10), day(5)))).await;
    assert!(chrome.text("#error-period").await.contains("before"), "{}", chrome.text("main").await);
    request_form(&chrome, "Release", Some((day(1), day(200)))).await;
    assert!(
        chrome.text("#error-period").await.contains("later than the policy allows"),
        "{}",
        chrome.text("main").await
    );
    // A forged CSRF token: refused, with a message.
    chrome.goto(&package_url).await;
    chrome.wait_for("#justification", wait).await;
    answer_questions(&chrome).await;
    chrome.fill("#justification", "Forged").await;
    chrome
        .client()
        .execute("document.querySelector('main input[name=csrf_token]').value = 'forged'", vec![])
        .await
        .unwrap();
    submit_and_wait(&chrome, "main form[method=post]").await;
    assert!(chrome.text("main").await.contains("nothing was changed"), "{}", chrome.text("main").await);
    chrome.screenshot_both("refused").await;
    chrome.assert_accessible().await;
    // An expired session: the form says so and links to sign in again.
    chrome.goto(&package_url).await;
    chrome.wait_for("#justification", wait).await;
    answer_questions(&chrome).await;
    chrome.fill("#justification", "After lunch").await;
    end_sessions(&dir).await;
    submit_and_wait(&chrome, "main form[method=post]").await;
    let ended = chrome.text("main").await;
    assert!(ended.contains("Your session has ended") && ended.contains("nothing was changed"), "{ended}");
    chrome.screenshot_both("session-ended").await;
    chrome.assert_accessible().await;
    chrome.click("main a[href^='/auth/login']").await;
    chrome.wait_for("form input[name=username]", wait).await;
    chrome.fill("input[name=username]", USER).await;
    chrome.submit("form").await;
    chrome.wait_for_url(&package_url, wait).await;
    chrome.goto(&format!("{base}/requests")).await;
    assert!(chrome.text("main").await.contains("You have made no requests"), "nothing was sent");

    // She requests it with a justification and a period of her choosing, and the confirmation
    // names her manager as the approver.
    chrome.goto(&package_url).await;
    let (start, end) = (day(0), day(30)); // from today, so the access is active once approved
    request_form(&chrome, "On call for the release next month", Some((start.clone(), end.clone()))).await;
    let confirmation_url = chrome.current_url().await;
    assert!(confirmation_url.starts_with(&format!("{base}/requests/")), "{confirmation_url}");
    let confirmation = chrome.text("main").await;
    assert!(confirmation.contains("Isaiah Langer"), "who approves: {confirmation}");
    chrome.screenshot_both("request-submitted").await;
    chrome.assert_accessible().await;

    // A double submit of the read-only package (two posts of the same form at once, as a
    // double click sends them) makes one request, which she then cancels.
    chrome.goto(&format!("{base}/access-packages?search=Read-only")).await;
    chrome.click("main h2 a").await;
    chrome.wait_for("#justification", wait).await;
    answer_questions(&chrome).await;
    chrome.fill("#justification", "Reading the dashboards").await;
    let statuses = chrome
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const f = document.querySelector('main form[method=post]');
             const post = () => fetch(f.action, {method: 'POST', body: new URLSearchParams(new FormData(f)),
                 redirect: 'manual'}).then(r => r.type === 'opaqueredirect' ? 303 : r.status);
             Promise.all([post(), post()]).then(done, e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(statuses, json!([303, 303]), "both posts land on a request");
    chrome.goto(&format!("{base}/requests")).await;
    let requests = chrome.text("main").await;
    assert_eq!(requests.matches("SugarLearning Prod Read-only").count(), 1, "one request: {requests}");
    chrome.screenshot_both("requests").await;
    chrome.assert_accessible().await;
    let link = chrome
        .client()
        .execute(
            "return [...document.querySelectorAll('main td a')].find(a => a.textContent.includes('Read-only')).href",
            vec![],
        )
        .await
        .unwrap();
    chrome.goto(link.as_str().unwrap()).await;
    chrome.wait_for("form[action$='/cancel'] button", wait).await;
    chrome.screenshot_both("request").await;
    chrome.assert_accessible().await;
    submit_and_wait(&chrome, "form[action$='/cancel']").await;
    assert!(chrome.text("main").await.to_lowercase().contains("cancel"), "{}", chrome.text("main").await);

    let shots = steward_testpeers::chrome::screenshots_dir().join("browser_signin");
    for page in ["provider-login", "landing", "auth-me"] {
        for width in ["desktop", "phone"] {
            let png = std::fs::read(shots.join(format!("{page}-{width}.png"))).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{page}-{width}.png is a PNG");
        }
    }

    // Her manager signs in, in a browser of his own, finds the request under Approvals and
    // approves the first stage.
    let manager = signed_in(&peer, &dir, &base, "isaiah", "/approvals").await;
    let waiting = manager.text("main").await;
    assert!(waiting.contains("SugarLearning Prod Contributor") && waiting.contains("Adele Vance"), "{waiting}");
    assert!(!waiting.contains("Read-only"), "the cancelled request no longer waits: {waiting}");
    manager.screenshot_both("approvals-manager").await;
    manager.assert_accessible().await;
    manager.click("main h3 a").await;
    manager.wait_for("button[value=approve]", wait).await;
    let approval = manager.text("main").await;
    assert!(approval.contains("On call for the release next month"), "the justification is shown: {approval}");
    assert!(approval.contains("REL-42") && approval.contains("Production"), "and the answers: {approval}");
    manager.screenshot_both("approval").await;
    manager.assert_accessible().await;
    manager.fill("#justification", "Needed for the release").await;
    submit_and_wait(&manager, "button[value=approve]").await;
    let done = manager.text("main").await;
    assert!(!done.contains("This form is out of date"), "{done}");
    manager.goto(&format!("{base}/approvals")).await;
    let after = manager.text("main").await;
    assert!(after.contains("Needed for the release"), "his decision is in his history: {after}");
    manager.close().await;

    // The second stage: the owner of SugarLearning production approves, with the justification
    // this stage requires.
    let owner = signed_in(&peer, &dir, &base, "pradeep", "/approvals").await;
    let waiting = owner.text("main").await;
    assert!(waiting.contains("SugarLearning Prod Contributor") && waiting.contains("Adele Vance"), "{waiting}");
    owner.click("main h3 a").await;
    owner.wait_for("button[value=approve]", wait).await;
    assert!(owner.text("main").await.contains("Needed for the release"), "the first stage's decision is shown");
    owner.screenshot_both("approval-second-stage").await;
    owner.assert_accessible().await;
    owner.fill("#justification", "Approved for 30 days").await;
    submit_and_wait(&owner, "button[value=approve]").await;
    owner.goto(&format!("{base}/approvals")).await;
    assert!(owner.text("main").await.contains("Approved for 30 days"), "{}", owner.text("main").await);
    owner.close().await;

    // Adele sees the access under Access, delivered, until the end she asked for.
    let access = chrome.reload_until(&format!("{base}/access"), "Remove my access", wait).await;
    assert!(access.contains("SugarLearning Prod Contributor"), "{access}");
    let end_shown = chrome.find("main .card time:nth-of-type(2)").await.attr("datetime").await.unwrap().unwrap();
    assert!(end_shown.starts_with(&end), "ends on the day she asked for ({end}): {end_shown}");
    chrome.screenshot_both("access").await;
    chrome.assert_accessible().await;
    // She extends it (the policy needs no approval to extend) to a later end.
    let later = day(60);
    chrome
        .client()
        .execute(
            &format!("document.querySelector('form[action$=\"/extend\"] input[name=end]').value = '{later}'"),
            vec![],
        )
        .await
        .unwrap();
    chrome.fill("form[action$='/extend'] input[name=justification]", "The release slipped").await;
    submit_and_wait(&chrome, "form[action$='/extend']").await;
    let mut extended = String::new();
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        chrome.goto(&format!("{base}/access")).await;
        extended = chrome.find("main .card time:nth-of-type(2)").await.attr("datetime").await.unwrap().unwrap();
        if extended.starts_with(&later) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(extended.starts_with(&later), "extended to {later}: {extended}");
    chrome.screenshot_both("access-extended").await;
    // And removes it: it leaves Active and shows under Expired.
    submit_and_wait(&chrome, "form[action$='/remove']").await;
    let gone = chrome.reload_until(&format!("{base}/access"), "You have no access packages", wait).await;
    assert!(gone.contains("SugarLearning Prod Contributor"), "listed under Expired: {gone}");
    chrome.screenshot_both("access-removed").await;
    chrome.assert_accessible().await;
    chrome.close().await;

    // A browser not told of the throwaway certificate refuses Steward: the trust above is
    // that one key, not certificate errors ignored.
    let stranger = Chrome::start("browser_signin").await;
    stranger.goto(&format!("{base}/healthz")).await;
    let body = stranger.text("body").await;
    assert!(body.contains("NET::ERR_CERT_AUTHORITY_INVALID"), "Chromium's certificate warning: {body}");
    stranger.close().await;
    drop(server);
}

/// Fills the open package's request form (a justification, and a period when given; dates are
/// set directly, as typing them depends on the browser's locale) and submits it.
async fn request_form(chrome: &Chrome, justification: &str, period: Option<(String, String)>) {
    chrome.wait_for("#justification", Duration::from_secs(15)).await;
    answer_questions(chrome).await;
    chrome.client().execute("document.getElementById('justification').value = ''", vec![]).await.unwrap();
    if !justification.is_empty() {
        chrome.fill("#justification", justification).await;
    }
    if let Some((start, end)) = period {
        let script = format!(
            "document.querySelector('input[name=period]').checked = true;
             document.getElementById('start').value = '{start}';
             document.getElementById('end').value = '{end}';"
        );
        chrome.client().execute(&script, vec![]).await.unwrap();
    }
    submit_and_wait(chrome, "main form[method=post]").await;
}

/// Answers the Engineering policy's questions: the release, and Production.
async fn answer_questions(chrome: &Chrome) {
    chrome.fill("input[name='answer.ticket']", "REL-42").await;
    chrome.click("input[name='answer.environment'][value=production]").await;
}

/// Submits a form (or clicks a submit button) and waits for the page it answers with.
async fn submit_and_wait(chrome: &Chrome, css: &str) {
    chrome.client().execute("window.__stewardOld = true", vec![]).await.unwrap();
    let el = chrome.find(css).await;
    if el.tag_name().await.unwrap() == "button" {
        el.click().await.unwrap();
    } else {
        chrome.submit(css).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let old = chrome.client().execute("return window.__stewardOld === true", vec![]).await;
        if matches!(old, Ok(Value::Bool(false))) {
            let ready = chrome.client().execute("return document.readyState", vec![]).await;
            if matches!(ready, Ok(Value::String(ref s)) if s == "complete") {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no page after submitting {css}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A browser of its own in which `user` has signed in through the provider's form and landed on
/// `back`.
async fn signed_in(peer: &OidcProvider, dir: &std::path::Path, base: &str, user: &str, back: &str) -> Chrome {
    let chrome = Chrome::start_trusting("browser_signin", &[&dir.join("server.pem")]).await;
    chrome.goto(&format!("{base}/auth/login?returnTo={back}")).await;
    chrome.wait_for("form input[name=username]", Duration::from_secs(15)).await;
    assert!(chrome.current_url().await.starts_with(peer.issuer()));
    chrome.fill("input[name=username]", user).await;
    chrome.submit("form").await;
    chrome.wait_for_url(&format!("{base}{back}"), Duration::from_secs(15)).await;
    chrome
}

/// Ends every portal session in the server's database, as the idle timeout would.
async fn end_sessions(dir: &std::path::Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("steward.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let done = sqlx::query("UPDATE sessions SET last_seen_at = 0, expires_at = 0, ends_at = 0")
        .execute(&mut db)
        .await
        .unwrap();
    assert!(done.rows_affected() > 0, "a session to end");
    db.close().await.unwrap();
}
