//! In a real browser: headless Chromium (Debian's, under chromedriver; `steward-testpeers`'
//! `Chrome`) drives the admin console of a real `steward serve` process with demo data over
//! HTTPS, signed in through the test OpenID Connect provider's login form, as
//! `browser_signin.rs` does. Megan Bowen, the demo's Steward administrator, creates a catalog,
//! adds a directory group to it, creates an access package granting the group's Member role and
//! a two-stage policy (her manager, then Pradeep Gupta) through the editor's review step; then
//! Adele Vance, in a browser of her own, finds the package under Access packages and requests
//! it, and the confirmation names her manager, Isaiah Langer, as the approver. Every console
//! page visited is kept as screenshots at desktop and phone widths under
//! `target/screenshots/browser_console/` and must have no serious or critical axe-core
//! violation.
//!
//! Megan then reviews the package's assignments in the portal's Reviews tab (an access review
//! made through the API names her) and denies one.
//!
//! Real processes and peers only: the `steward` binary, the provider, Chromium, SQLite on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use serde_json::json;
use steward_testpeers::oidc::MintOptions;
use steward_testpeers::slapd::{ADMIN, BASE, PASSWORD};
use steward_testpeers::{Chrome, OidcProvider, Slapd};

const CATALOG: &str = "Release tooling";
const GROUP: &str = "SugarLearning Prod Readers";
const PACKAGE: &str = "Release readers";

/// Screenshots of the page and its accessibility check; at a phone's width nothing may be wider
/// than the screen.
async fn keep(chrome: &Chrome, page: &str) {
    assert_eq!(chrome.content_type().await, "text/html", "{page}");
    chrome.set_window_size(390, 844).await;
    let wide = chrome
        .client()
        .execute(
            "return [...document.querySelectorAll('main *')]
               .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
               .map(e => e.tagName + '#' + e.id).join(' ')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(wide.as_str(), Some(""), "{page}: wider than a phone's screen");
    chrome.screenshot_both(page).await;
    chrome.assert_accessible().await;
}

/// Signs `user` in through the provider's login form, coming back to `back`.
async fn sign_in(chrome: &Chrome, base: &str, peer: &OidcProvider, user: &str, back: &str) {
    let wait = Duration::from_secs(15);
    chrome.goto(&format!("{base}/auth/login?returnTo={back}")).await;
    chrome.wait_for("form input[name=username]", wait).await;
    assert!(chrome.current_url().await.starts_with(peer.issuer()), "{}", chrome.current_url().await);
    chrome.fill("input[name=username]", user).await;
    chrome.submit("form").await;
    chrome.wait_for_url(&format!("{base}{back}"), wait).await;
}

#[tokio::test]
async fn an_administrator_sets_up_a_package_in_the_console_and_a_user_requests_it() {
    let peer = OidcProvider::start(&json!({
        "megan": {"preferred_username": "megan.bowen@contoso.example", "email": "megan.bowen@contoso.example",
                  "name": "Megan Bowen", "amr": ["pwd"]},
        "adele": {"preferred_username": "adele.vance@contoso.example", "email": "adele.vance@contoso.example",
                  "name": "Adele Vance", "amr": ["pwd"]},
    }));
    // A secrets key, so the connection below can keep its directory password.
    let key = ("STEWARD_SECRETS_KEY", "YnJvd3Nlci1jb25zb2xlLXRlc3Qta2V5LTMyLWJ5dGU=");
    let server = common::HttpsSteward::start(&peer, &["--demo"], &[key]);
    let (dir, base) = (server.dir.clone(), server.base.clone());
    let wait = Duration::from_secs(15);

    // Megan opens Admin.
    let chrome = Chrome::start_trusting("browser_console", &[&dir.join("server.pem")]).await;
    sign_in(&chrome, &base, &peer, "megan", "/access-packages").await;
    chrome.click("header nav a[href='/admin']").await;
    chrome.wait_for_url(&format!("{base}/admin"), wait).await;
    keep(&chrome, "console-admin").await;
    chrome.click("main a[href='/admin/catalogs']").await;
    chrome.wait_for("#catalog-name", wait).await;
    let listed = chrome.text("main").await;
    assert!(listed.contains("Engineering") && listed.contains("Sales and Marketing"), "{listed}");
    keep(&chrome, "console-catalogs").await;

    // A catalog.
    chrome.fill("#catalog-name", CATALOG).await;
    chrome.fill("#catalog-description", "What release managers need to see production").await;
    chrome.submit("form[method=post][action='/admin/catalogs']").await;
    chrome.wait_for_url(&format!("{base}/admin/catalogs/"), wait).await;
    let page = chrome.text("main").await;
    assert!(page.contains(CATALOG) && page.contains("The catalog was created"), "{page}");
    keep(&chrome, "console-catalog").await;

    // A group, found by its name.
    chrome.fill("#group_search", "SugarLearning").await;
    chrome.submit("form[role=search]").await;
    chrome.wait_for_url(&format!("{base}/admin/catalogs/"), wait).await;
    chrome.wait_for(&format!("button[aria-label='Add {GROUP}']"), wait).await;
    keep(&chrome, "console-catalog-group-search").await;
    chrome.click(&format!("button[aria-label='Add {GROUP}']")).await;
    let added = chrome.wait_for_url(&format!("{base}/admin/catalogs/"), wait).await;
    chrome.wait_for("p.notice", wait).await;
    let page = chrome.text("main").await;
    assert!(page.contains("The group was added") && page.contains(GROUP), "{added}: {page}");
    keep(&chrome, "console-catalog-group-added").await;

    // An access package.
    chrome.fill("#package-name", PACKAGE).await;
    chrome.fill("#package-description", "Read SugarLearning production during a release").await;
    chrome.submit("form[action$='/packages']").await;
    let package_url = chrome.wait_for_url(&format!("{base}/admin/packages/"), wait).await;
    let package =
        package_url.trim_start_matches(&format!("{base}/admin/packages/")).split('?').next().unwrap().to_owned();
    chrome.wait_for("#role", wait).await;
    keep(&chrome, "console-package").await;

    // The group's Member role.
    let role = chrome
        .client()
        .execute(
            &format!(
                "const s = document.getElementById('role');
                 const o = [...s.options].find(o => o.text.startsWith('Member of {GROUP}'));
                 s.value = o.value; return o.value;"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert!(role.as_str().is_some_and(|r| !r.is_empty()), "{role}");
    chrome.submit("form[action$='/roles']").await;
    chrome.wait_for_url(&format!("{base}/admin/packages/{package}?notice=role-added"), wait).await;
    let page = chrome.text("main").await;
    assert!(page.contains("Member") && page.contains(GROUP), "{page}");
    keep(&chrome, "console-package-role-added").await;

    // A two-stage policy: the requestor's manager, then Pradeep Gupta.
    chrome.click(&format!("a[href='/admin/packages/{package}/policies/new']")).await;
    chrome.wait_for("#stage2_kind", wait).await;
    keep(&chrome, "console-policy-editor").await;
    chrome.fill("#name", "Release managers").await;
    chrome.fill("#description", "Members ask; their manager and the system's owner approve.").await;
    chrome.click("#stage2_kind option[value=user]").await;
    chrome.fill("#stage2_user", "Pradeep Gupta").await;
    chrome.fill("#expiration_days", "90").await;
    chrome.submit("form.policy-form").await;
    chrome.wait_for_url(&format!("{base}/admin/packages/{package}/policies/review"), wait).await;
    let review = chrome.text("#summary").await;
    assert_eq!(
        review,
        "Members of the directory may request; approved by their manager, then by Pradeep Gupta; access lasts 90 \
         days and may be extended."
    );
    keep(&chrome, "console-policy-review").await;
    // Back keeps what was typed; reviewing again and creating writes the policy.
    chrome.click("button[value=back]").await;
    chrome.wait_for("#stage2_user", wait).await;
    let typed = chrome.find("#stage2_user").await.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(typed, "Pradeep Gupta");
    chrome.submit("form.policy-form").await;
    chrome.wait_for_url(&format!("{base}/admin/packages/{package}/policies/review"), wait).await;
    chrome.click("button[value=save]").await;
    chrome.wait_for_url(&format!("{base}/admin/packages/{package}?notice=policy-created"), wait).await;
    let page = chrome.text("main").await;
    assert!(page.contains("Release managers") && page.contains("then by Pradeep Gupta"), "{page}");
    keep(&chrome, "console-package-policy").await;
    let policy_edit = chrome
        .client()
        .execute("return document.querySelector('a[href$=\"/edit\"][href^=\"/admin/policies/\"]').href", vec![])
        .await
        .unwrap();

    // Adele finds the package under Access packages and requests it; her manager approves first.
    let adele = Chrome::start_trusting("browser_console", &[&dir.join("server.pem")]).await;
    sign_in(&adele, &base, &peer, "adele", "/access-packages").await;
    adele.fill("#search", PACKAGE).await;
    adele.submit("form[role=search]").await;
    adele.wait_for_url(&format!("{base}/access-packages?"), wait).await;
    let listed = adele.text("main").await;
    assert!(listed.contains(PACKAGE) && listed.contains(&format!("Member of {GROUP}")), "{listed}");
    adele.click("main h2 a").await;
    adele.wait_for("#justification", wait).await;
    let shown = adele.text("main").await;
    assert!(shown.contains("Stage 1: Isaiah Langer") && shown.contains("Stage 2: Pradeep Gupta"), "{shown}");
    adele.fill("#justification", "Release 4.2 goes out next week").await;
    adele.submit("main form[method=post]").await;
    adele.wait_for_url(&format!("{base}/requests/"), wait).await;
    let confirmation = adele.text("main").await;
    assert!(confirmation.contains("Isaiah Langer"), "who approves: {confirmation}");
    // Her Reviews tab: nothing assigned to her yet.
    adele.click("header nav a[href='/reviews']").await;
    adele.wait_for_url(&format!("{base}/reviews"), wait).await;
    keep(&adele, "reviews").await;
    adele.close().await;

    // Back in the console, Megan follows the request, assigns the package directly, and looks
    // at separation of duties, the package's audit trail and the policy's editor.
    chrome.goto(&format!("{base}/admin/requests")).await;
    let requests = chrome.text("main").await;
    assert!(requests.contains(PACKAGE) && requests.contains("Adele Vance"), "{requests}");
    keep(&chrome, "console-requests").await;
    chrome.click("main td a[href^='/admin/requests/']").await;
    chrome.wait_for_url(&format!("{base}/admin/requests/"), wait).await;
    let request = chrome.text("main").await;
    assert!(request.contains("Release 4.2 goes out next week") && request.contains("Isaiah Langer"), "{request}");
    keep(&chrome, "console-request").await;

    chrome.goto(&format!("{base}/admin/assignments")).await;
    chrome.wait_for("#a-policy", wait).await;
    keep(&chrome, "console-assignments").await;
    let chosen = chrome
        .client()
        .execute(
            "const s = document.getElementById('a-policy');
             const o = [...s.options].find(o => o.text.includes('Release managers'));
             s.value = o.value; return o.value;",
            vec![],
        )
        .await
        .unwrap();
    assert!(chosen.as_str().is_some_and(|v| !v.is_empty()), "{chosen}");
    chrome.fill("#a-user", "Pradeep Gupta").await;
    chrome.fill("#a-why", "On call for the release").await;
    chrome.submit("form[action='/admin/assignments/assign']").await;
    chrome.wait_for_url(&format!("{base}/admin/requests/"), wait).await;
    let assigned = chrome.text("main").await;
    assert!(assigned.contains("Pradeep Gupta") && assigned.contains(PACKAGE), "{assigned}");
    let listed = chrome.reload_until(&format!("{base}/admin/assignments?target=Pradeep"), PACKAGE, wait).await;
    assert!(listed.contains("Pradeep Gupta"), "{listed}");

    chrome.goto(&format!("{base}/admin/separation-of-duties")).await;
    keep(&chrome, "console-separation-of-duties").await;
    chrome.goto(&format!("{base}/admin/separation-of-duties/{package}")).await;
    chrome.wait_for("main h1", wait).await;
    assert!(chrome.text("main").await.contains(PACKAGE));
    keep(&chrome, "console-separation-of-duties-package").await;
    chrome.goto(&format!("{base}/admin/audit?object={package}")).await;
    let audit = chrome.text("main").await;
    assert!(!audit.contains("No events"), "the package's creation is audited: {audit}");
    keep(&chrome, "console-audit").await;
    chrome.goto(policy_edit.as_str().unwrap()).await;
    chrome.wait_for("#stage2_user", wait).await;
    keep(&chrome, "console-policy-edit").await;

    // A connection to a real directory (made through the API with Megan's access token): the
    // console tests it and discovers its groups.
    let slapd = Slapd::start(&format!(
        "dn: cn=Release managers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Release managers\n\
         member: cn=nobody,{BASE}\n"
    ));
    let token = peer.mint(MintOptions::user("megan")).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let api = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let made = api
        .post(format!("{base}/v1.0/steward/connections"))
        .bearer_auth(&token)
        .json(&json!({"displayName": "Corporate directory", "kind": "ldap",
            "settings": {"url": slapd.url, "bindDn": ADMIN, "userBaseDn": format!("ou=people,{BASE}"),
                "groupBaseDn": format!("ou=groups,{BASE}"), "userKey": "userPrincipalName", "connectTimeoutSeconds": 2},
            "credentials": {"password": PASSWORD}}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    chrome.goto(&format!("{base}/admin/connections")).await;
    assert!(chrome.text("main").await.contains("Corporate directory"));
    keep(&chrome, "console-connections").await;
    chrome.click("main td a[href^='/admin/connections/']").await;
    chrome.wait_for("button[type=submit]", wait).await;
    chrome.submit("form:has(input[name=test])").await;
    chrome.wait_for("#outcome", wait).await;
    assert!(chrome.text("main").await.contains("Succeeded"), "{}", chrome.text("main").await);
    chrome.submit("form:has(input[name=discover])").await;
    chrome.wait_for("#found", wait).await;
    assert!(chrome.text("main").await.contains("Release managers"), "{}", chrome.text("main").await);
    keep(&chrome, "console-connection").await;

    // An access review of the package's assignments (made through the API), with Megan as the
    // reviewer: she finds it under Reviews, sees Pradeep's access with its recommendation, and
    // denies it.
    let users: serde_json::Value = api
        .get(format!("{base}/v1.0/users?$filter=userPrincipalName%20eq%20'megan.bowen@contoso.example'"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let megan = users["value"][0]["id"].as_str().unwrap().to_owned();
    let scope = format!(
        "/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{package}')"
    );
    let review = api
        .post(format!("{base}/v1.0/identityGovernance/accessReviews/definitions"))
        .bearer_auth(&token)
        .json(&json!({"displayName": "Release readers, monthly", "descriptionForReviewers": "Does this person still need to read production?",
            "scope": {"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": scope, "queryType": "MicrosoftGraph"},
            "reviewers": [{"query": format!("/users/{megan}"), "queryType": "MicrosoftGraph"}],
            "settings": {"instanceDurationInDays": 7, "recommendationsEnabled": true, "justificationRequiredOnApproval": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), 201, "{}", review.text().await.unwrap());
    chrome.reload_until(&format!("{base}/reviews"), "Release readers, monthly", wait).await;
    keep(&chrome, "reviews-assigned").await;
    chrome.click("main h3 a").await;
    chrome.wait_for("input[name=decision][value=Deny]", wait).await;
    let shown = chrome.text("main").await;
    assert!(shown.contains("Pradeep Gupta") && shown.contains("Recommendation"), "{shown}");
    keep(&chrome, "review").await;
    chrome.click("input[name=decision][value=Deny]").await;
    chrome.fill("main form[action*='/decisions/'] input[name=justification]", "The release is out").await;
    chrome.submit("main form[action*='/decisions/']").await;
    chrome.wait_for("p.notice", wait).await;
    let saved = chrome.text("main").await;
    assert!(saved.contains("Your decision was recorded.") && saved.contains("Denied on"), "{saved}");
    keep(&chrome, "review-decided").await;
    chrome.close().await;

    let shots = steward_testpeers::chrome::screenshots_dir().join("browser_console");
    for page in ["console-admin", "console-catalog", "console-policy-editor", "console-policy-review"] {
        for width in ["desktop", "phone"] {
            let png = std::fs::read(shots.join(format!("{page}-{width}.png"))).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{page}-{width}.png is a PNG");
        }
    }
    drop(server);
}
