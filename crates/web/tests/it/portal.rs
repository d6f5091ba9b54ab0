//! My Access over HTTP, as a browser without JavaScript uses it, signed in through the real
//! OpenID Connect provider: the redirect to sign in, search and the catalog filter, the request
//! form's errors (shown next to their fields in the lifecycle's words, nothing written), CSRF
//! refusals, an expired session, a double submit making one request, the confirmation, a
//! manager requesting for someone who reports to them, Requests, Approvals (the time left, a
//! separation-of-duties conflict, the decisions so far; the manager approves), Access (the
//! requestor removes their access) and the Reviews tab.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::Clock;
use steward_app::lifecycle::worker::Worker;
use steward_app::sessions::SessionPolicy;
use steward_testpeers::OidcProvider;

use crate::app::{ADMIN, EM, TestApp};
use crate::pages::{enc, grant_membership, input, post_form, request_count, signed_in};
use crate::signin::{Browser, Harness, PUBLIC, limits, portal_with};

fn users() -> Value {
    json!({
        "alice": {"preferred_username": "alice@contoso.com", "email": "alice@contoso.com", "name": "Alice"},
        "mona": {"preferred_username": "mona@contoso.com", "email": "mona@contoso.com", "name": "Mona"},
        "sam": {"preferred_username": "sam@contoso.com", "email": "sam@contoso.com", "name": "Sam"},
    })
}

struct World {
    p: Harness,
    package: String,
    other: String,
    hidden: String,
    alice: String,
    mona: String,
    sales: String,
    ledger_group: String,
}

/// A package granting membership of a group, with a role scope.
async fn package_with_group(app: &TestApp, cat: &str, name: &str, description: &str, group: &str) -> String {
    let body = json!({"displayName": name, "description": description, "catalog": {"id": cat}});
    let package = app.post(&format!("{EM}/accessPackages"), &body).await.expect(StatusCode::CREATED).id();
    grant_membership(app, cat, &package, group).await;
    package
}

async fn policy(app: &TestApp, package: &str, approval: bool, conditions: Option<Value>) {
    let approval = if approval {
        json!({"isApprovalRequiredForAdd": true, "isRequestorJustificationRequired": true,
            "stages": [{"durationBeforeAutomaticDenial": "P14D",
                "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]}]})
    } else {
        json!({"isApprovalRequiredForAdd": false, "isRequestorJustificationRequired": false, "stages": []})
    };
    let mut body = json!({"accessPackage": {"id": package}, "displayName": "Sales staff", "allowedTargetScope": "allMemberUsers",
            "expiration": {"type": "afterDuration", "duration": "P30D"},
            "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true,
                "enableTargetsToSelfUpdateAccess": true, "allowCustomAssignmentSchedule": true},
            "requestApprovalSettings": approval,
            "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": "ticket",
                "text": "Ticket number?", "isRequired": true, "isSingleLineQuestion": true}]});
    if let Some(c) = conditions {
        body["conditionalRequirements"] = c;
    }
    app.post(&format!("{EM}/assignmentPolicies"), &body).await.expect(StatusCode::CREATED);
}

async fn world() -> World {
    world_with(SessionPolicy::default()).await
}

async fn world_with(sessions: SessionPolicy) -> World {
    let p = portal_with(Some(OidcProvider::start(&users())), sessions, limits(), PUBLIC).await;
    let app = &p.app;
    let mona = app.user("Mona", "mona@contoso.com").await;
    let alice = app.user("Alice", "alice@contoso.com").await;
    app.user("Sam", "sam@contoso.com").await;
    app.json_as(
        ADMIN,
        Method::PUT,
        &format!("/v1.0/users/{alice}/manager/$ref"),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{mona}")}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let sales = app.catalog("Sales").await;
    let finance = app.catalog("Finance").await;
    let g1 = app.group("Sales team").await;
    let g2 = app.group("Ledger <readers>").await;
    app.add_group(&sales, &g1).await.expect(StatusCode::CREATED);
    app.add_group(&finance, &g2).await.expect(StatusCode::CREATED);
    let package = package_with_group(app, &sales, "CRM contributor", "Edit the CRM's accounts.", &g1).await;
    let other = package_with_group(app, &finance, "Ledger reader", "Read the <ledger> & reports.", &g2).await;
    let hidden = package_with_group(app, &sales, "Secret CRM admin", "Only by link.", &g1).await;
    let r = app.patch(&format!("{EM}/accessPackages/{hidden}"), &json!({"isHidden": true})).await;
    assert!(r.status.is_success(), "{}", r.text);
    policy(app, &package, true, None).await;
    policy(app, &other, false, Some(json!({"onRequest": {"multiFactorAuthentication": true}}))).await;
    policy(app, &hidden, false, None).await;
    World { p, package, other, hidden, alice, mona, sales, ledger_group: g2 }
}

#[tokio::test]
async fn pages_need_a_session_and_send_the_browser_to_sign_in() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = Browser::default();
    let r = b.get(app, "/access-packages?search=crm").await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/auth/login?returnTo=%2Faccess%2Dpackages%3Fsearch%3Dcrm");
    for path in ["/requests", "/access", "/approvals", "/reviews", &format!("/access-packages/{}", w.package)] {
        let r = b.get(app, path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(r.header("location").starts_with("/auth/login?returnTo="), "{path}");
    }
    // A form posted without a session changes nothing, and the page says so and links to sign
    // in (what was typed could not survive the trip to the provider).
    let r = post_form(&mut b, app, &format!("/access-packages/{}/request", w.package), "justification=x").await;
    r.expect(StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("Your session has ended") && r.text.contains("nothing was changed"), "{}", r.text);
    assert!(r.text.contains("/auth/login?returnTo="), "{}", r.text);
    assert_eq!(request_count(app).await, 0);
    let r = b.get(app, "/").await;
    assert_eq!(r.header("location"), "/access-packages");
    // Our own stylesheet and script, cacheable; the pages load nothing else.
    let css = b.get(app, "/static/steward.css").await;
    css.expect(StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css") && css.header("cache-control").contains("max-age"));
    b.get(app, "/static/steward.js").await.expect(StatusCode::OK);

    // Signed in, the same link lands on the page.
    let mut b = signed_in(&w.p, "alice").await;
    let r = b.get(app, "/access-packages").await;
    r.expect(StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/html"));
    assert!(r.header("content-security-policy").contains("default-src 'self'"));
    for part in ["<main id=\"main\"", "Skip to content", "/static/steward.css", "Alice", "action=\"/auth/logout\""] {
        assert!(r.text.contains(part), "{part} in {}", r.text);
    }
    assert!(!r.text.contains("<style") && !r.text.contains("style="), "no inline styles");
    assert!(!r.text.contains("<script>"), "no inline scripts");
}

#[tokio::test]
async fn packages_are_searched_and_filtered_by_catalog_and_hidden_ones_need_their_link() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = signed_in(&w.p, "alice").await;
    let all = b.get(app, "/access-packages").await;
    all.expect(StatusCode::OK);
    assert!(all.text.contains("CRM contributor") && all.text.contains("Ledger reader"), "{}", all.text);
    assert!(all.text.contains("Member of Sales team"), "what it grants: {}", all.text);
    assert!(all.text.contains("Read the &#60;ledger&#62; &#38; reports."), "escaped: {}", all.text);
    assert!(!all.text.contains("Secret CRM admin"), "hidden packages are not listed");
    assert!(all.text.contains("2 packages"), "{}", all.text);

    let found = b.get(app, "/access-packages?search=ledger").await;
    assert!(found.text.contains("Ledger reader") && !found.text.contains("CRM contributor"), "{}", found.text);
    assert!(found.text.contains("value=\"ledger\""), "the search is kept");
    // The Finance catalog's option.
    let at = all.text.find(">Finance</option>").unwrap();
    let option = &all.text[..at];
    let finance = option.rsplit("<option value=\"").next().unwrap().split('"').next().unwrap();
    let filtered = b.get(app, &format!("/access-packages?catalog={finance}")).await;
    assert!(filtered.text.contains("Ledger reader") && !filtered.text.contains("CRM contributor"));
    assert!(filtered.text.contains("selected>Finance"), "{}", filtered.text);
    let none = b.get(app, &format!("/access-packages?catalog={finance}&search=crm")).await;
    assert!(none.text.contains("No access package matches."), "{}", none.text);

    // The hidden package by its link: what it grants, and its form.
    let hidden = b.get(app, &format!("/access-packages/{}", w.hidden)).await;
    hidden.expect(StatusCode::OK);
    assert!(hidden.text.contains("Secret CRM admin") && hidden.text.contains("Submit request"), "{}", hidden.text);
    assert!(hidden.text.contains("No approval is needed"), "{}", hidden.text);
    let other = b.get(app, &format!("/access-packages/{}", w.other)).await;
    assert!(other.text.contains("Member of Ledger &#60;readers&#62;"), "{}", other.text);
    b.get(app, "/access-packages/not-an-id").await.expect(StatusCode::NOT_FOUND);

    // 25 a page, with next and previous links.
    let finance = finance.to_owned();
    for i in 0..24 {
        let body = json!({"displayName": format!("Bulk {i:02}"), "catalog": {"id": finance}});
        let id = app.post(&format!("{EM}/accessPackages"), &body).await.expect(StatusCode::CREATED).id();
        policy(app, &id, false, None).await;
    }
    let first = b.get(app, "/access-packages").await;
    assert!(first.text.contains("26 packages") && first.text.contains("Page 1"), "{}", first.text);
    assert!(first.text.contains("href=\"/access-packages?page=2\" rel=\"next\""), "{}", first.text);
    assert!(!first.text.contains("rel=\"prev\""));
    let second = b.get(app, "/access-packages?page=2").await;
    assert_eq!(second.text.matches("class=\"card\"").count(), 1, "{}", second.text);
    assert!(second.text.contains("href=\"/access-packages?page=1\" rel=\"prev\""), "{}", second.text);
    assert!(!second.text.contains("rel=\"next\""));
}

#[tokio::test]
async fn unmet_conditional_requirements_link_to_a_stronger_sign_in_that_comes_back() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = signed_in(&w.p, "alice").await;
    let page = b.get(app, &format!("/access-packages/{}", w.other)).await;
    let csrf = input(&page.text, "csrf_token");
    let path = format!("/access-packages/{}/request", w.other);
    let body = format!("csrf_token={}&answer.ticket=FIN-7", enc(&csrf));
    let r = post_form(&mut b, app, &path, &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("multi-factor authentication"), "{}", r.text);
    assert!(r.text.contains("value=\"FIN-7\""), "kept: {}", r.text);
    assert_eq!(request_count(app).await, 0);
    let marker = "<a href=\"/auth/login?";
    let at = r.text.find(marker).unwrap() + "<a href=\"".len();
    let link = r.text[at..].split('"').next().unwrap().replace("&#38;", "&");
    assert_eq!(link, format!("/auth/login?returnTo=%2Faccess%2Dpackages%2F{}&acr_values=mfa", enc(&w.other)));
    // The stronger sign-in comes back to the package, and the request goes through.
    let back = b.sign_in(&w.p, &link, "alice").await;
    back.expect(StatusCode::SEE_OTHER);
    assert_eq!(back.header("location"), format!("/access-packages/{}", w.other));
    let page = b.get(app, back.header("location")).await;
    let body = format!("csrf_token={}&answer.ticket=FIN-7", enc(&input(&page.text, "csrf_token")));
    let r = post_form(&mut b, app, &path, &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(request_count(app).await, 1);
}

#[tokio::test]
async fn the_request_form_shows_errors_next_to_their_fields_and_writes_nothing() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = signed_in(&w.p, "alice").await;
    let page = b.get(app, &format!("/access-packages/{}", w.package)).await;
    page.expect(StatusCode::OK);
    assert!(page.text.contains("Who approves?") && page.text.contains("Stage 1: Mona"), "{}", page.text);
    assert!(page.text.contains("Ticket number?") && page.text.contains("Justification (required)"));
    assert!(page.text.contains("Access lasts at most 30 days."), "{}", page.text);
    let csrf = input(&page.text, "csrf_token");
    let path = format!("/access-packages/{}/request", w.package);
    let today = w.p.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let day = |n: i64| today.checked_add(jiff::Span::new().days(n)).unwrap().to_string();

    // Justification required.
    let r = post_form(&mut b, app, &path, &format!("csrf_token={csrf}&answer.ticket=FIN-42&justification=+")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-justification\">The policy requires a justification"), "{}", r.text);
    assert!(r.text.contains("value=\"FIN-42\""), "what was typed is kept: {}", r.text);

    // End before start.
    let body = format!(
        "csrf_token={csrf}&answer.ticket=FIN-42&justification=Quarter+%3Cclose%3E&period=on&start={}&end={}",
        day(10),
        day(5)
    );
    let r = post_form(&mut b, app, &path, &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-period\">The schedule ends"), "{}", r.text);
    assert!(r.text.contains("Quarter &#60;close&#62;</textarea>"), "kept and escaped: {}", r.text);
    assert!(r.text.contains(&format!("value=\"{}\"", day(10))), "{}", r.text);

    // Beyond the policy's 30 days.
    let body = format!("csrf_token={csrf}&answer.ticket=FIN-42&justification=Quarter&period=on&start=&end={}", day(60));
    let r = post_form(&mut b, app, &path, &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-period\">The requested end"), "{}", r.text);
    assert!(r.text.contains("later than the policy allows"), "{}", r.text);
    assert!(r.text.contains("aria-describedby=\"error-period\""), "the field points at its error: {}", r.text);

    // A required question left empty: the lifecycle's words, next to the questions.
    let body = format!("csrf_token={csrf}&answer.ticket=+&justification=Quarter");
    let r = post_form(&mut b, app, &path, &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("id=\"error-answers\">Question 1 (&#39;Ticket number?&#39;) requires an answer."),
        "{}",
        r.text
    );
    assert!(r.text.contains("Quarter</textarea>"), "kept: {}", r.text);

    // A forged token, no token, another site: refused, nothing written.
    let good = "answer.ticket=FIN-42&justification=Quarter+close";
    for body in [format!("csrf_token=forged&{good}"), good.to_owned()] {
        let r = post_form(&mut b, app, &path, &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.text.contains("nothing was changed"), "{}", r.text);
    }
    let evil = [("content-type", "application/x-www-form-urlencoded"), ("origin", "https://evil.example")];
    let r = b.send(app, Method::POST, &path, &evil, &format!("csrf_token={csrf}&{good}")).await;
    r.expect(StatusCode::FORBIDDEN);
    assert_eq!(request_count(app).await, 0, "nothing was written");

    // A double submit makes one request; the second lands on it.
    let body = format!("csrf_token={}&{good}&period=on&start={}&end={}", enc(&csrf), day(1), day(20));
    let first = post_form(&mut b, app, &path, &body).await;
    first.expect(StatusCode::SEE_OTHER);
    let second = post_form(&mut b, app, &path, &body).await;
    second.expect(StatusCode::SEE_OTHER);
    let id = first.header("location").trim_start_matches("/requests/").split('?').next().unwrap().to_owned();
    assert_eq!(second.header("location"), format!("/requests/{id}?existing=1"));
    assert_eq!(request_count(app).await, 1);
    let shown = b.get(app, second.header("location")).await;
    assert!(shown.text.contains("You already have an open request"), "{}", shown.text);
}

#[tokio::test]
async fn a_request_is_approved_by_the_manager_and_the_access_removed_by_its_holder() {
    let w = world().await;
    let app = &w.p.app;
    let mut alice = signed_in(&w.p, "alice").await;
    let page = alice.get(app, "/access-packages?search=CRM").await;
    assert!(page.text.contains(&format!("href=\"/access-packages/{}\"", w.package)), "{}", page.text);
    let page = alice.get(app, &format!("/access-packages/{}", w.package)).await;
    let csrf = input(&page.text, "csrf_token");
    let body = format!("csrf_token={}&answer.ticket=FIN-42&justification=Quarter+close", enc(&csrf));
    let r = post_form(&mut alice, app, &format!("/access-packages/{}/request", w.package), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let confirmation = alice.get(app, r.header("location")).await;
    confirmation.expect(StatusCode::OK);
    for part in
        ["Your request was submitted.", "Waiting for approval", "Mona will approve or deny it", "Ticket number? FIN-42"]
    {
        assert!(confirmation.text.contains(part), "{part} in {}", confirmation.text);
    }
    assert!(confirmation.text.contains("Cancel this request"));
    let mine = alice.get(app, "/requests").await;
    assert!(mine.text.contains("CRM contributor") && mine.text.contains("Waiting for approval"), "{}", mine.text);
    // Alice approves nothing.
    assert!(alice.get(app, "/approvals").await.text.contains("Nothing waits for your approval."));

    // Mona sees it under Approvals, with the justification and answers, and approves.
    let mut mona = signed_in(&w.p, "mona").await;
    let list = mona.get(app, "/approvals").await;
    for part in ["CRM contributor", "for Alice", "Quarter close", "Ticket number? FIN-42", "denied automatically after"]
    {
        assert!(list.text.contains(part), "{part} in {}", list.text);
    }
    let rid = r.header("location").trim_start_matches("/requests/").split('?').next().unwrap().to_owned();
    // Someone neither asked nor asking sees nothing of it, and cannot cancel it.
    let mut sam = signed_in(&w.p, "sam").await;
    sam.get(app, &format!("/requests/{rid}")).await.expect(StatusCode::NOT_FOUND);
    sam.get(app, &format!("/approvals/{rid}")).await.expect(StatusCode::NOT_FOUND);
    let sams = sam.get(app, "/requests").await;
    assert!(!sams.text.contains("CRM contributor"), "{}", sams.text);
    let body = format!("csrf_token={}", enc(&input(&sams.text, "csrf_token")));
    post_form(&mut sam, app, &format!("/requests/{rid}/cancel"), &body).await.expect(StatusCode::NOT_FOUND);
    let detail = mona.get(app, &format!("/approvals/{rid}")).await;
    detail.expect(StatusCode::OK);
    assert!(detail.text.contains("Member of Sales team"), "{}", detail.text);
    let body = format!(
        "csrf_token={}&stage={}&justification=Fine&decision=approve",
        enc(&input(&detail.text, "csrf_token")),
        input(&detail.text, "stage")
    );
    // Alice's token is not Mona's.
    let forged = format!("csrf_token={}&stage={}&decision=approve", enc(&csrf), input(&detail.text, "stage"));
    post_form(&mut mona, app, &format!("/approvals/{rid}/decide"), &forged).await.expect(StatusCode::FORBIDDEN);
    let r = post_form(&mut mona, app, &format!("/approvals/{rid}/decide"), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let after = mona.get(app, r.header("location")).await;
    assert!(after.text.contains("Your decision was recorded.") && after.text.contains("Approved"), "{}", after.text);
    assert!(after.text.contains("Nothing waits for your approval."));
    Worker::new(app.services.clone(), "test").drain(10).await.unwrap();

    // Alice sees the decision in the timeline and the access under Access, and removes it.
    let timeline = alice.get(app, &format!("/requests/{rid}")).await;
    assert!(timeline.text.contains("Approved by Mona") && timeline.text.contains(": Fine"), "{}", timeline.text);
    assert!(timeline.text.contains("Member of Sales team (grant): done"), "{}", timeline.text);
    let access = alice.get(app, "/access").await;
    assert!(access.text.contains("CRM contributor") && access.text.contains("until <time"), "{}", access.text);
    assert!(access.text.contains("Extend") && access.text.contains("Remove my access"), "{}", access.text);
    let at = access.text.find("/remove\"").unwrap();
    let aid = access.text[..at].rsplit("/access/").next().unwrap().to_owned();
    let body = format!("csrf_token={}", enc(&input(&access.text, "csrf_token")));

    // Extend: an end before the current one is refused next to the assignment; without a date,
    // the policy's full length from now.
    let soon = w.p.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date().tomorrow().unwrap();
    let r = post_form(&mut alice, app, &format!("/access/{aid}/extend"), &format!("{body}&end={soon}")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("An extension must move the end later"), "{}", r.text);
    let before = request_count(app).await;
    w.p.clock.advance(jiff::SignedDuration::from_mins(10));
    let r = post_form(&mut alice, app, &format!("/access/{aid}/extend"), &format!("{body}&justification=More")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(r.header("location").ends_with("?submitted=1"), "{}", r.header("location"));
    assert_eq!(request_count(app).await, before + 1);
    let extension = alice.get(app, r.header("location")).await;
    assert!(extension.text.contains("Extension request"), "{}", extension.text);
    Worker::new(app.services.clone(), "test").drain(10).await.unwrap();
    let r = post_form(&mut alice, app, &format!("/access/{aid}/remove"), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    Worker::new(app.services.clone(), "test").drain(10).await.unwrap();
    let access = alice.get(app, r.header("location")).await;
    assert!(access.text.contains("Your access was removed."), "{}", access.text);
    assert!(access.text.contains("You have no access packages."), "{}", access.text);
    assert!(access.text.contains("Access that has ended"), "{}", access.text);

    // Alice cannot decide on her own request: no form for her there.
    let own = alice.get(app, &format!("/approvals/{rid}")).await;
    assert!(own.text.contains("Nothing here waits for your decision."), "{}", own.text);
}

#[tokio::test]
async fn an_expired_session_writes_nothing_and_leads_back_through_sign_in() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = signed_in(&w.p, "alice").await;
    let page = b.get(app, &format!("/access-packages/{}", w.package)).await;
    let csrf = input(&page.text, "csrf_token");
    // Past the 30 minutes a session may stay idle.
    w.p.clock.advance(jiff::SignedDuration::from_mins(31));
    let path = format!("/access-packages/{}/request", w.package);
    let body = format!("csrf_token={}&answer.ticket=FIN-42&justification=Quarter+close", enc(&csrf));
    let r = post_form(&mut b, app, &path, &body).await;
    r.expect(StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("Your session has ended") && r.text.contains("nothing was changed"), "{}", r.text);
    let back = format!("/auth/login?returnTo={}", enc(&format!("/access-packages/{}", w.package)));
    assert!(r.text.contains(&back), "signing in comes back to the package: {}", r.text);
    assert_eq!(request_count(app).await, 0, "nothing was written");
    // Pages: straight to sign in, and back.
    let r = b.get(app, "/requests").await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/auth/login?returnTo=%2Frequests");
    // Signed in again, the same form goes through.
    let mut b = signed_in(&w.p, "alice").await;
    let page = b.get(app, &format!("/access-packages/{}", w.package)).await;
    let body = format!(
        "csrf_token={}&answer.ticket=FIN-42&justification=Quarter+close",
        enc(&input(&page.text, "csrf_token"))
    );
    post_form(&mut b, app, &path, &body).await.expect(StatusCode::SEE_OTHER);
    assert_eq!(request_count(app).await, 1);
}

/// A package Mona may request for the people who report to her (`onBehalfAdd`), approved
/// automatically.
async fn on_behalf_package(w: &World) -> String {
    let app = &w.p.app;
    let body =
        json!({"displayName": "Team laptop", "description": "A laptop for the team.", "catalog": {"id": w.sales}});
    let package = app.post(&format!("{EM}/accessPackages"), &body).await.expect(StatusCode::CREATED).id();
    app.post(
        &format!("{EM}/assignmentPolicies"),
        &json!({"accessPackage": {"id": package}, "displayName": "Staff, or their manager for them",
            "allowedTargetScope": "allMemberUsers",
            "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableOnBehalfRequestorsToAddAccess": true,
                "onBehalfRequestors": [{"@odata.type": "#microsoft.graph.targetManager", "managerLevel": 1}]},
            "requestApprovalSettings": {"isApprovalRequiredForAdd": false, "stages": []}}),
    )
    .await
    .expect(StatusCode::CREATED);
    package
}

#[tokio::test]
async fn a_manager_requests_for_someone_who_reports_to_them_where_the_policy_allows_it() {
    let w = world().await;
    let app = &w.p.app;
    let laptop = on_behalf_package(&w).await;
    let alana = app.user("Alana", "alana@contoso.com").await;
    app.json_as(
        ADMIN,
        Method::PUT,
        &format!("/v1.0/users/{alana}/manager/$ref"),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", w.mona)}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);

    // Alice manages no one: the form is for herself only; so is a package whose policy does not
    // allow requests on behalf of others, even for Mona.
    let mut alice = signed_in(&w.p, "alice").await;
    let page = alice.get(app, &format!("/access-packages/{laptop}")).await;
    assert!(
        page.text.contains("Submit request") && !page.text.contains("<legend>Request for</legend>"),
        "{}",
        page.text
    );
    let mut mona = signed_in(&w.p, "mona").await;
    let crm = mona.get(app, &format!("/access-packages/{}", w.package)).await;
    assert!(!crm.text.contains("<legend>Request for</legend>"), "{}", crm.text);

    let page = mona.get(app, &format!("/access-packages/{laptop}")).await;
    for part in ["<legend>Request for</legend>", "value=\"me\" checked> Myself", "Someone else who reports to me"] {
        assert!(page.text.contains(part), "{part} in {}", page.text);
    }
    let csrf = enc(&input(&page.text, "csrf_token"));
    let path = format!("/access-packages/{laptop}/request");
    let before = request_count(app).await;

    // Nobody named, someone who does not report to her, several matches: said next to the
    // field, nothing written.
    for (person, status, says) in [
        ("", StatusCode::UNPROCESSABLE_ENTITY, "Type the name or email of the person"),
        ("Sam", StatusCode::UNPROCESSABLE_ENTITY, "No one who reports to you matches &#39;Sam&#39;."),
        ("Al", StatusCode::UNPROCESSABLE_ENTITY, "Several people match &#39;Al&#39;; choose one."),
    ] {
        let body = format!("csrf_token={csrf}&for=other&person={}&justification=For+the+team", enc(person));
        let r = post_form(&mut mona, app, &path, &body).await;
        assert_eq!(r.status, status, "{person}: {}", r.text);
        assert!(r.text.contains(&format!("id=\"error-person\">{says}")), "{person}: {}", r.text);
        assert!(r.text.contains("aria-describedby=\"error-person\""), "{}", r.text);
        assert!(r.text.contains("value=\"other\" checked"), "the choice is kept: {}", r.text);
    }
    let r = post_form(&mut mona, app, &path, &format!("csrf_token={csrf}&for=other&person=Al")).await;
    assert!(r.text.contains("Alice (alice@contoso.com)") && r.text.contains("Alana (alana@contoso.com)"), "{}", r.text);
    assert_eq!(request_count(app).await, before);

    // Someone who does not report to her, chosen by id (a forged form): the lifecycle refuses,
    // in its own words, next to the field.
    let sam = app.services.store.user_by_upn("sam@contoso.com").await.unwrap().unwrap().id;
    let r = post_form(&mut mona, app, &path, &format!("csrf_token={csrf}&for=other&person=Sam&person_id={sam}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("id=\"error-person\">This request on behalf of another user is not allowed"), "{}", r.text);
    assert_eq!(request_count(app).await, before);

    // Alice, found by her email; then Alana, chosen among those matching.
    let body = format!("csrf_token={csrf}&for=other&person={}", enc("ALICE@contoso.com"));
    let r = post_form(&mut mona, app, &path, &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let shown = mona.get(app, r.header("location")).await;
    assert!(
        shown.text.contains("Your request was submitted.") && shown.text.contains("By Mona for Alice."),
        "{}",
        shown.text
    );
    let body = format!("csrf_token={csrf}&for=other&person=Al&person_id={alana}");
    post_form(&mut mona, app, &path, &body).await.expect(StatusCode::SEE_OTHER);
    assert_eq!(request_count(app).await, before + 2);
    let mine = mona.get(app, "/requests").await;
    assert!(mine.text.contains("for Alice") && mine.text.contains("for Alana"), "{}", mine.text);
    Worker::new(app.services.clone(), "test").drain(10).await.unwrap();
    let access = alice.get(app, "/access").await;
    assert!(access.text.contains("Team laptop"), "Alice has it: {}", access.text);
    let theirs = alice.get(app, "/requests").await;
    assert!(theirs.text.contains("Team laptop"), "{}", theirs.text);
    // For someone who has it already: the lifecycle's words.
    let body = format!("csrf_token={csrf}&for=other&person=alice%40contoso.com");
    let r = post_form(&mut mona, app, &path, &body).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("The target already has access package"), "{}", r.text);
    assert_eq!(request_count(app).await, before + 2);
}

#[tokio::test]
async fn approvers_see_the_time_left_conflicts_what_is_granted_and_what_they_decided() {
    // Sessions that outlast the days the clock moves on (the provider's tokens would not).
    let long = jiff::SignedDuration::from_hours(40 * 24);
    let w = world_with(SessionPolicy { idle: long, absolute: long }).await;
    let app = &w.p.app;
    let mut alice = signed_in(&w.p, "alice").await;
    let mut mona = signed_in(&w.p, "mona").await;
    let page = alice.get(app, &format!("/access-packages/{}", w.package)).await;
    let body = format!(
        "csrf_token={}&answer.ticket=FIN-42&justification=Quarter+close",
        enc(&input(&page.text, "csrf_token"))
    );
    let r = post_form(&mut alice, app, &format!("/access-packages/{}/request", w.package), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let rid = r.header("location").trim_start_matches("/requests/").split('?').next().unwrap().to_owned();

    // While it waits, Alice joins a group the package is then declared incompatible with.
    app.post(
        &format!("/v1.0/groups/{}/members/$ref", w.ledger_group),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", w.alice)}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    app.post(
        &format!("{EM}/accessPackages/{}/incompatibleGroups/$ref", w.package),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/groups/{}", w.ledger_group)}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    // A day later (the stage allows 14).
    w.p.clock.advance(jiff::SignedDuration::from_hours(24));
    let conflict = "Alice is a member of group &#39;Ledger &#60;readers&#62;&#39;, which is incompatible with \
                    &#39;CRM contributor&#39;.";
    let list = mona.get(app, "/approvals").await;
    list.expect(StatusCode::OK);
    for part in ["times out in 13 days", conflict, "Member of Sales team", "Quarter close", "Ticket number? FIN-42"] {
        assert!(list.text.contains(part), "{part} in {}", list.text);
    }
    let detail = mona.get(app, &format!("/approvals/{rid}")).await;
    for part in ["times out in 13 days", conflict, "is approved, it is denied instead", "Member of Sales team"] {
        assert!(detail.text.contains(part), "{part} in {}", detail.text);
    }
    assert!(!detail.text.contains("Decisions so far"), "{}", detail.text);
    // Half a day before the end, in hours.
    w.p.clock.advance(jiff::SignedDuration::from_hours(12 * 24 + 12));
    let detail = mona.get(app, &format!("/approvals/{rid}")).await;
    assert!(detail.text.contains("times out in 12 hours"), "{}", detail.text);

    // She approves; the lifecycle denies it for the conflict, and her decision stays listed.
    let body = format!(
        "csrf_token={}&stage={}&justification=Looks+fine&decision=approve",
        enc(&input(&detail.text, "csrf_token")),
        input(&detail.text, "stage")
    );
    post_form(&mut mona, app, &format!("/approvals/{rid}/decide"), &body).await.expect(StatusCode::SEE_OTHER);
    let list = mona.get(app, "/approvals").await;
    assert!(list.text.contains("Nothing waits for your approval."), "{}", list.text);
    assert!(list.text.contains("<td>Approved</td>") && list.text.contains("Looks fine"), "{}", list.text);
    let detail = mona.get(app, &format!("/approvals/{rid}")).await;
    assert!(detail.text.contains("<strong>State:</strong> Denied"), "{}", detail.text);
    assert!(detail.text.contains("Decisions so far"), "{}", detail.text);
    assert!(detail.text.contains("Stage 1: Approved by Mona (you) on"), "{}", detail.text);
    assert!(detail.text.contains(": Looks fine</li>"), "{}", detail.text);
    assert!(detail.text.contains("Nothing here waits for your decision."), "{}", detail.text);
}

#[tokio::test]
async fn the_reviews_tab_says_there_is_nothing_to_review_yet() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = signed_in(&w.p, "alice").await;
    let r = b.get(app, "/reviews").await;
    r.expect(StatusCode::OK);
    for part in [
        "<h1>Reviews</h1>",
        "Access reviews assigned to you",
        "set up by administrators",
        "href=\"/reviews\" aria-current=\"page\"",
        "<main id=\"main\"",
    ] {
        assert!(r.text.contains(part), "{part} in {}", r.text);
    }
}

#[tokio::test]
async fn approved_access_that_starts_later_is_listed_as_starting_later_until_its_start_date() {
    let w = world().await;
    let app = &w.p.app;
    let mut alice = signed_in(&w.p, "alice").await;
    let today = w.p.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let day = |n: i64| today.checked_add(jiff::Span::new().days(n)).unwrap().to_string();
    let page = alice.get(app, &format!("/access-packages/{}", w.hidden)).await;
    let csrf = input(&page.text, "csrf_token");
    let body = format!(
        "csrf_token={}&answer.ticket=FIN-7&justification=Next+quarter&period=on&start={}&end={}",
        enc(&csrf),
        day(5),
        day(20)
    );
    let r = post_form(&mut alice, app, &format!("/access-packages/{}/request", w.hidden), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    Worker::new(app.services.clone(), "test").drain(10).await.unwrap();
    let access = alice.get(app, "/access").await;
    let later = access.text.split("<h2>Starting later</h2>").nth(1).unwrap_or_else(|| panic!("{}", access.text));
    let later = later.split("<h2>Expired</h2>").next().unwrap();
    assert!(
        later.contains("Secret CRM admin") && later.contains(&format!("datetime=\"{}T00:00:00Z\"", day(5))),
        "{later}"
    );
    assert!(access.text.contains("You have no access packages."), "nothing is active yet: {}", access.text);
}

#[tokio::test]
async fn a_manager_decides_a_review_in_the_reviews_tab_with_errors_next_to_the_decision() {
    let w = world().await;
    let app = &w.p.app;
    let policies = app
        .get(&format!("{EM}/assignmentPolicies?$filter=accessPackage/id eq '{}'", w.hidden).replace(' ', "%20"))
        .await
        .json();
    let policy = policies["value"][0]["id"].as_str().unwrap().to_owned();
    let body = json!({"requestType": "adminAdd", "assignment": {"targetId": w.alice, "assignmentPolicyId": policy}});
    app.post(&format!("{EM}/assignmentRequests"), &body).await.expect(StatusCode::CREATED);
    Worker::new(app.services.clone(), "test").drain(10).await.unwrap();
    let scope = format!(
        "/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{}')",
        w.hidden
    );
    let definition = json!({"displayName": "CRM admins, quarterly", "descriptionForReviewers": "Still needed?",
        "scope": {"@odata.type": "#microsoft.graph.accessReviewQueryScope", "query": scope, "queryType": "MicrosoftGraph"},
        "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
        "settings": {"instanceDurationInDays": 7, "justificationRequiredOnApproval": true, "recommendationsEnabled": true}});
    app.post("/v1.0/identityGovernance/accessReviews/definitions", &definition).await.expect(StatusCode::CREATED);
    let later = w.p.clock.now().checked_add(jiff::SignedDuration::from_secs(1)).unwrap();
    w.p.clock.set(later);
    steward_app::reviews::sweep(&app.services, later).await.unwrap();

    // Mona, Alice's manager, finds it under Reviews with the recommendation and its reason.
    let mut mona = signed_in(&w.p, "mona").await;
    let list = mona.get(app, "/reviews").await;
    assert!(
        list.text.contains("CRM admins, quarterly") && list.text.contains("1 to review, 0 decided"),
        "{}",
        list.text
    );
    let link = list.text.split("href=\"/reviews/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let page = mona.get(app, &format!("/reviews/{link}")).await;
    page.expect(StatusCode::OK);
    assert!(page.text.contains("Alice") && page.text.contains("Secret CRM admin"), "{}", page.text);
    assert!(page.text.contains("Recommendation: <strong>Deny</strong>: Inactive"), "{}", page.text);
    let action = page.text.split("action=\"/reviews/").find(|s| s.contains("/decisions/")).unwrap();
    let action = format!("/reviews/{}", action.split('"').next().unwrap());
    let csrf = input(&page.text, "csrf_token");

    // Approving without the justification this review requires: the error next to the decision.
    let r = post_form(&mut mona, app, &action, &format!("csrf_token={}&page=1&decision=Approve", enc(&csrf))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("requires a justification to approve") && r.text.contains("aria-invalid=\"true\""),
        "{}",
        r.text
    );
    // No choice at all.
    let r = post_form(&mut mona, app, &action, &format!("csrf_token={}&page=1", enc(&csrf))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Deny, with a reason: recorded.
    let body = format!("csrf_token={}&page=1&decision=Deny&justification=Moved+to+finance", enc(&csrf));
    let r = post_form(&mut mona, app, &action, &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let shown = mona.get(app, r.header("location")).await;
    assert!(shown.text.contains("Your decision was recorded.") && shown.text.contains("Denied on"), "{}", shown.text);
    assert!(shown.text.contains("value=\"Moved to finance\""), "{}", shown.text);

    // Alice reviews nothing, and may not decide her own.
    let mut alice = signed_in(&w.p, "alice").await;
    assert!(alice.get(app, "/reviews").await.text.contains("No access review asks you to decide anything."));
    let csrf = input(&alice.get(app, "/access").await.text, "csrf_token");
    let body = format!("csrf_token={}&page=1&decision=Approve&justification=Mine", enc(&csrf));
    let r = post_form(&mut alice, app, &action, &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

/// One-click links from an approver's mail: opening one decides nothing (the page asks to
/// confirm), only after signing in, only for the approver it was sent to; it decides once; a
/// reused, expired or altered link is refused, and a link whose stage was decided finds nothing
/// to decide.
#[tokio::test]
async fn a_one_click_link_approves_once_for_its_approver_and_a_reused_expired_or_altered_one_is_refused() {
    use steward_app::decision_links;
    use steward_domain::ids::{RequestId, UserId};

    let w = world().await;
    let app = &w.p.app;
    let mut alice = signed_in(&w.p, "alice").await;
    let page = alice.get(app, &format!("/access-packages/{}", w.package)).await;
    let body = format!("csrf_token={}&answer.ticket=FIN-7&justification=Audit", enc(&input(&page.text, "csrf_token")));
    let r = post_form(&mut alice, app, &format!("/access-packages/{}/request", w.package), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let rid: RequestId =
        r.header("location").trim_start_matches("/requests/").split('?').next().unwrap().parse().unwrap();
    let mona: UserId = w.mona.parse().unwrap();
    let now = w.p.clock.now();
    let day = jiff::SignedDuration::from_hours(24);
    let links = decision_links::urls(&app.services, rid, mona, now.checked_add(day).unwrap()).unwrap();
    assert!(links.approve.starts_with(&format!("https://steward.test/approvals/{rid}/link?t=")), "{}", links.approve);
    let path = |url: &str| crate::app::path_of(url);

    // Not signed in: off to sign in first, nothing decided.
    let mut stranger = crate::signin::Browser::default();
    let r = stranger.get(app, &path(&links.approve)).await;
    assert!(r.status.is_redirection(), "{} {}", r.status, r.text);
    // Someone else's link.
    let mut sam = signed_in(&w.p, "sam").await;
    let r = sam.get(app, &path(&links.approve)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("sent to another approver"), "{}", r.text);

    let mut mona_b = signed_in(&w.p, "mona").await;
    // Altered: the deny link's decision letter changed, or its expiry moved.
    let altered = path(&links.deny).replacen(".d.", ".a.", 1);
    let r = mona_b.get(app, &altered).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("altered"), "{}", r.text);
    // Expired.
    let old = decision_links::urls(&app.services, rid, mona, now.checked_sub(day).unwrap()).unwrap();
    let r = mona_b.get(app, &path(&old.approve)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("expired"), "{}", r.text);

    // Opening decides nothing: a page to confirm.
    let confirm = mona_b.get(app, &path(&links.approve)).await;
    confirm.expect(StatusCode::OK);
    assert!(
        confirm.text.contains("You opened the <strong>Approve</strong> link")
            && confirm.text.contains("Confirm: approve")
    );
    let pending = alice.get(app, &format!("/requests/{rid}")).await;
    assert!(pending.text.contains("Waiting for approval"), "{}", pending.text);
    // The form's token is the link's; a forged CSRF token is refused.
    let form = |csrf: &str| {
        format!("csrf_token={}&t={}&justification=Looks+right", enc(csrf), enc(&input(&confirm.text, "t")))
    };
    let link_path = format!("/approvals/{rid}/link");
    post_form(&mut mona_b, app, &link_path, &form("forged")).await.expect(StatusCode::FORBIDDEN);
    let r = post_form(&mut mona_b, app, &link_path, &form(&input(&confirm.text, "csrf_token"))).await;
    r.expect(StatusCode::SEE_OTHER);
    let done = alice.get(app, &format!("/requests/{rid}")).await;
    assert!(done.text.contains("Approved by Mona"), "{}", done.text);

    // Reused: refused when opened and when posted again.
    let r = mona_b.get(app, &path(&links.approve)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("used already"), "{}", r.text);
    let r = post_form(&mut mona_b, app, &link_path, &form(&input(&confirm.text, "csrf_token"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // The other link of the pair finds nothing left to decide.
    let r = mona_b.get(app, &path(&links.deny)).await;
    r.expect(StatusCode::OK);
    let r = post_form(
        &mut mona_b,
        app,
        &link_path,
        &format!(
            "csrf_token={}&t={}",
            enc(&input(&r.text, "csrf_token")),
            enc(path(&links.deny).split("t=").nth(1).unwrap())
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("Nothing on this request waits for your decision"), "{}", r.text);
}
