//! My Access over HTTP, as a browser without JavaScript uses it, signed in through the real
//! OpenID Connect provider: the redirect to sign in, search and the catalog filter, the request
//! form's errors (shown on the form, nothing written), CSRF refusals, a double submit making one
//! request, the confirmation, Requests, Approvals (the manager approves) and Access (the
//! requestor removes their access).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::Clock;
use steward_app::lifecycle::worker::Worker;
use steward_app::query::{ASSIGNMENT_REQUESTS, ListQuery};
use steward_app::sessions::SessionPolicy;
use steward_testpeers::OidcProvider;

use crate::app::{ADMIN, EM, Resp, TestApp};
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
}

/// A package granting membership of a group, with a role scope.
async fn package_with_group(app: &TestApp, cat: &str, name: &str, description: &str, group: &str) -> String {
    let body = json!({"displayName": name, "description": description, "catalog": {"id": cat}});
    let package = app.post(&format!("{EM}/accessPackages"), &body).await.expect(StatusCode::CREATED).id();
    let roles = app
        .get(&format!("{EM}/catalogs/{cat}/resourceRoles?$filter=originId eq 'Member_{group}'&$expand=resource($expand=scopes)").replace(' ', "%20"))
        .await
        .json();
    let role = &roles["value"][0];
    app.post(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        &json!({"role": {"id": role["id"], "originId": role["originId"], "originSystem": "AadGroup",
            "resource": {"id": role["resource"]["id"]}},
            "scope": {"id": role["resource"]["scopes"][0]["id"], "originId": group, "originSystem": "AadGroup"}}),
    )
    .await
    .expect(StatusCode::CREATED);
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
    let p = portal_with(Some(OidcProvider::start(&users())), SessionPolicy::default(), limits(), PUBLIC).await;
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
    World { p, package, other, hidden }
}

async fn signed_in(p: &Harness, user: &str) -> Browser {
    let mut b = Browser::default();
    b.sign_in(p, "/auth/login", user).await.expect(StatusCode::SEE_OTHER);
    b
}

/// The value of the first `name="…" value="…"` input in a page.
fn input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[at..].split('"').next().unwrap().to_owned()
}

async fn post_form(b: &mut Browser, app: &TestApp, path: &str, body: &str) -> Resp {
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", PUBLIC)];
    b.send(app, Method::POST, path, &headers, body).await
}

async fn request_count(app: &TestApp) -> usize {
    app.services.store.list_requests(&ListQuery::all(&ASSIGNMENT_REQUESTS)).await.unwrap().items.len()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn pages_need_a_session_and_send_the_browser_to_sign_in() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = Browser::default();
    let r = b.get(app, "/access-packages?search=crm").await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/auth/login?returnTo=%2Faccess%2Dpackages%3Fsearch%3Dcrm");
    for path in ["/requests", "/access", "/approvals", &format!("/access-packages/{}", w.package)] {
        let r = b.get(app, path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(r.header("location").starts_with("/auth/login?returnTo="), "{path}");
    }
    // A form posted without a session changes nothing and goes to sign in.
    let r = post_form(&mut b, app, &format!("/access-packages/{}/request", w.package), "justification=x").await;
    r.expect(StatusCode::SEE_OTHER);
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
    assert!(r.text.contains("later than the policy allows"), "{}", r.text);

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
    assert!(timeline.text.contains("Member of Sales team: done"), "{}", timeline.text);
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
