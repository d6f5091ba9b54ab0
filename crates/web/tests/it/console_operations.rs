//! The admin console's operations pages over HTTP, as a browser without JavaScript uses them,
//! signed in: assignments (filters, CSV export, Assign directly, Remove, catalog scoping),
//! requests (list, detail with a denial's reasons, Cancel), connections (administrators only;
//! Test and Discover against the real PostgreSQL at `$DATABASE_URL`, adding what was found to a
//! catalog), separation of duties (incompatibilities and the violations they reveal) and the
//! audit page. Roles come from the roleManagement API; what the pages did is checked through the
//! Graph API. Invalid input answers 422 and writes nothing; a form without its CSRF token is
//! refused.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::auth::{TokenHolder, create_token, local_operator};
use steward_app::identity::SignInFacts;
use steward_app::lifecycle::worker::Worker;
use steward_app::sessions::SessionPolicy;
use steward_testpeers::OidcProvider;

use crate::app::{EM, Resp, TestApp};
use crate::pages::{enc, grant_membership, input, post_form, request_count, signed_in};
use crate::signin::{Browser, Harness, PUBLIC, limits, portal_with};

const ROLES: &str = "/v1.0/roleManagement/entitlementManagement/roleAssignments";
const ADMINISTRATOR: &str = "5e3f5c8e-7a8b-4d2e-9f1a-57e3a4d0a001";
const PACKAGE_MANAGER: &str = "7f480852-ebdc-47d4-87de-0d8498384a83";
const ASSIGNMENT_MANAGER: &str = "e2182095-804a-4656-ae11-64734e9b7ae5";

fn users() -> Value {
    let person = |name: &str, upn: &str| json!({"preferred_username": upn, "email": upn, "name": name});
    json!({
        "ada": person("Ada", "ada@contoso.com"),
        "bob": person("Bob", "bob@contoso.com"),
        "pam": person("Pam", "pam@contoso.com"),
        "nina": person("Nina", "nina@contoso.com"),
        "root": person("Root", "root@contoso.com"),
    })
}

struct World {
    p: Harness,
    crm: String,
    crm_admin: String,
    ledger: String,
    /// The only policy of `crm_admin`: approval by Dan.
    admin_policy: String,
    jim: String,
    ann: String,
    dan: String,
    auditors: String,
}

async fn give(app: &TestApp, user: &str, role: &str, scope: &str) {
    let body = json!({"principalId": user, "roleDefinitionId": role, "appScopeId": scope});
    app.post(ROLES, &body).await.expect(StatusCode::CREATED);
}

/// A package granting membership of `group` (already a resource of `cat`).
async fn package_with_group(app: &TestApp, cat: &str, name: &str, group: &str) -> String {
    let package = app.package(cat, name).await;
    grant_membership(app, cat, &package, group).await;
    package
}

async fn policy(app: &TestApp, package: &str, name: &str, approver: Option<&str>) -> String {
    let approval = match approver {
        Some(a) => json!({"isApprovalRequiredForAdd": true, "isRequestorJustificationRequired": true,
            "stages": [{"durationBeforeAutomaticDenial": "P14D",
                "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": a}]}]}),
        None => json!({"isApprovalRequiredForAdd": false, "isRequestorJustificationRequired": false, "stages": []}),
    };
    let body = json!({"accessPackage": {"id": package}, "displayName": name, "allowedTargetScope": "allMemberUsers",
        "expiration": {"type": "afterDuration", "duration": "P365D"},
        "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true,
            "enableTargetsToSelfUpdateAccess": true, "allowCustomAssignmentSchedule": true},
        "requestApprovalSettings": approval});
    app.post(&format!("{EM}/assignmentPolicies"), &body).await.expect(StatusCode::CREATED).id()
}

/// An adminAdd through the Graph API; the request's id.
async fn assign(app: &TestApp, policy: &str, target: &str) -> String {
    let body = json!({"requestType": "adminAdd", "assignment": {"targetId": target, "assignmentPolicyId": policy}});
    app.post(&format!("{EM}/assignmentRequests"), &body).await.expect(StatusCode::CREATED).id()
}

async fn drain(app: &TestApp) {
    Worker::new(app.services.clone(), "console").drain(10).await.unwrap();
}

async fn world() -> World {
    let p = portal_with(Some(OidcProvider::start(&users())), SessionPolicy::default(), limits(), PUBLIC).await;
    let app = &p.app;
    let ada = app.user("Ada", "ada@contoso.com").await;
    let bob = app.user("Bob", "bob@contoso.com").await;
    let pam = app.user("Pam", "pam@contoso.com").await;
    app.user("Nina", "nina@contoso.com").await;
    let root = app.user("Root", "root@contoso.com").await;
    let jim = app.user("Doe, \"Jim\"", "jim@contoso.com").await;
    let ann = app.user("Ann", "ann@contoso.com").await;
    let dan = app.user("Dan", "dan@contoso.com").await;
    app.user("Kim", "kim@contoso.com").await;
    let sales = app.catalog("Sales").await;
    let finance = app.catalog("Finance").await;
    let team = app.group("Sales team").await;
    let readers = app.group("Ledger readers").await;
    let auditors = app.group("Auditors").await;
    app.add_group(&sales, &team).await.expect(StatusCode::CREATED);
    app.add_group(&finance, &readers).await.expect(StatusCode::CREATED);
    let crm = package_with_group(app, &sales, "CRM contributor", &team).await;
    let crm_admin = app.package(&sales, "CRM admin").await;
    let ledger = package_with_group(app, &finance, "Ledger reader", &readers).await;
    let crm_policy = policy(app, &crm, "Direct", None).await;
    let admin_policy = policy(app, &crm_admin, "Approved by Dan", Some(&dan)).await;
    let ledger_policy = policy(app, &ledger, "Direct", None).await;
    give(app, &ada, ASSIGNMENT_MANAGER, &format!("/AccessPackageCatalog/{sales}")).await;
    give(app, &bob, ASSIGNMENT_MANAGER, &format!("/AccessPackageCatalog/{finance}")).await;
    give(app, &pam, PACKAGE_MANAGER, &format!("/AccessPackageCatalog/{sales}")).await;
    give(app, &root, ADMINISTRATOR, "/").await;
    assign(app, &crm_policy, &jim).await;
    assign(app, &ledger_policy, &ann).await;
    drain(app).await;
    World { p, crm, crm_admin, ledger, admin_policy, jim, ann, dan, auditors }
}

/// The Graph API's assignments of `target`.
async fn assignments_of(app: &TestApp, target: &str) -> Vec<Value> {
    let path = format!("{EM}/assignments?$filter=target/objectId eq '{target}'").replace(' ', "%20");
    app.get(&path).await.json()["value"].as_array().unwrap().clone()
}

async fn incompatible(app: &TestApp, package: &str) -> usize {
    let url = format!("{EM}/accessPackages/{package}/incompatibleAccessPackages");
    app.get(&url).await.json()["value"].as_array().unwrap().len()
}

fn count_of(html: &str, marker: &str) -> usize {
    html.matches(marker).count()
}

#[tokio::test]
async fn an_assignment_manager_lists_filters_exports_assigns_and_removes_in_their_catalog_only() {
    let w = world().await;
    let app = &w.p.app;
    let mut ada = signed_in(&w.p, "ada").await;

    let page = ada.get(app, "/admin/assignments").await;
    page.expect(StatusCode::OK);
    for part in
        ["Doe, &#34;Jim&#34;", "jim@contoso.com", "CRM contributor", "Delivered", "<time datetime=\"", "1 assignment."]
    {
        assert!(page.text.contains(part), "{part} in {}", page.text);
    }
    assert!(page.text.contains(&format!("href=\"/admin/packages/{}\"", w.crm)), "{}", page.text);
    // Catalog B's assignment (Ann's Ledger reader) is nowhere, not even among the filters.
    assert!(!page.text.contains("Ledger") && !page.text.contains("Ann"), "{}", page.text);
    assert!(!page.text.contains("<style") && !page.text.contains("<script>"));

    // Filters: target name, package, state; another catalog's package finds nothing.
    let by_name = ada.get(app, "/admin/assignments?target=jim").await;
    assert!(by_name.text.contains("jim@contoso.com") && by_name.text.contains("value=\"jim\""), "{}", by_name.text);
    let nobody = ada.get(app, "/admin/assignments?target=zelda").await;
    assert!(nobody.text.contains("No assignment matches."), "{}", nobody.text);
    let by_package = ada.get(app, &format!("/admin/assignments?package={}&state=active", w.crm)).await;
    assert!(by_package.text.contains("jim@contoso.com"), "{}", by_package.text);
    assert!(by_package.text.contains(&format!("value=\"{}\" selected", w.crm)), "{}", by_package.text);
    let expired = ada.get(app, "/admin/assignments?state=expired").await;
    assert!(expired.text.contains("No assignment matches."), "{}", expired.text);
    let elsewhere = ada.get(app, &format!("/admin/assignments?package={}", w.ledger)).await;
    assert!(!elsewhere.text.contains("Ann"), "{}", elsewhere.text);

    // CSV of the same list: a header row, Jim's row with the comma and quotes escaped.
    let csv = ada.get(app, "/admin/assignments.csv?target=jim").await;
    csv.expect(StatusCode::OK);
    assert!(csv.header("content-type").starts_with("text/csv"), "{}", csv.header("content-type"));
    assert!(csv.header("content-disposition").starts_with("attachment"), "{}", csv.header("content-disposition"));
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{}", csv.text);
    assert!(lines[0].starts_with("Target,Target user principal name,Access package,Catalog,State"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("\"Doe, \"\"Jim\"\"\",jim@contoso.com,CRM contributor,Sales,delivered,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(&w.jim) && lines[1].contains(&w.crm), "{}", lines[1]);
    let all = ada.get(app, "/admin/assignments.csv").await;
    assert!(!all.text.contains("Ledger") && !all.text.contains("ann@"), "{}", all.text);

    // Assign directly: invalid input is shown next to its field, answered 422, and writes nothing.
    let before = request_count(app).await;
    let csrf = input(&page.text, "csrf_token");
    let r =
        post_form(&mut ada, app, "/admin/assignments/assign", &format!("csrf_token={}&policy=&user=zelda", enc(&csrf)))
            .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-policy\">Choose the access package and policy"), "{}", r.text);
    assert!(r.text.contains("id=\"error-user\">Nobody in the directory matches &#39;zelda&#39;."), "{}", r.text);
    assert!(r.text.contains("aria-invalid=\"true\" aria-describedby=\"error-user\""), "{}", r.text);
    assert!(r.text.contains("value=\"zelda\""), "kept: {}", r.text);
    let body = format!("csrf_token={}&policy={}&user=Kim&start=2030-06-10&end=2030-06-01", enc(&csrf), w.admin_policy);
    let r = post_form(&mut ada, app, "/admin/assignments/assign", &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-period\">The schedule ends"), "the app's words: {}", r.text);
    assert!(r.text.contains(&format!("value=\"{}\" selected", w.admin_policy)), "kept: {}", r.text);
    let body = format!("csrf_token={}&policy={}&user=Kim&end=31.12.2030", enc(&csrf), w.admin_policy);
    let r = post_form(&mut ada, app, "/admin/assignments/assign", &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-period\">&#39;31.12.2030&#39; is not a date"), "{}", r.text);
    // Without the CSRF token, or from another site: refused.
    let body = format!("policy={}&user=Kim", w.admin_policy);
    let r = post_form(&mut ada, app, "/admin/assignments/assign", &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("nothing was changed"), "{}", r.text);
    let evil = [("content-type", "application/x-www-form-urlencoded"), ("origin", "https://evil.example")];
    let r = ada.send(app, Method::POST, "/admin/assignments/assign", &evil, &format!("csrf_token={csrf}&{body}")).await;
    r.expect(StatusCode::FORBIDDEN);
    assert_eq!(request_count(app).await, before, "nothing was written");

    // Assigned: the request's page, and the Graph API shows an adminAdd and Kim's assignment.
    let body = format!("csrf_token={}&policy={}&user=Kim&justification=Covering+for+Jim", enc(&csrf), w.admin_policy);
    let r = post_form(&mut ada, app, "/admin/assignments/assign", &body).await;
    r.expect(StatusCode::SEE_OTHER);
    let to = r.header("location").to_owned();
    assert!(to.starts_with("/admin/requests/") && to.ends_with("?notice=assigned"), "{to}");
    let rid = to.trim_start_matches("/admin/requests/").split('?').next().unwrap().to_owned();
    drain(app).await;
    let shown = ada.get(app, &to).await;
    shown.expect(StatusCode::OK);
    for part in
        ["Assigned: an adminAdd request was submitted.", "CRM admin", "Kim (kim@contoso.com)", "Covering for Jim"]
    {
        assert!(shown.text.contains(part), "{part} in {}", shown.text);
    }
    let req = app.get(&format!("{EM}/assignmentRequests/{rid}")).await.json();
    assert_eq!((req["requestType"].as_str(), req["state"].as_str()), (Some("adminAdd"), Some("delivered")), "{req}");
    let kim = app.get("/v1.0/users/kim@contoso.com").await.id();
    let kims = assignments_of(app, &kim).await;
    assert_eq!(kims.len(), 1, "{kims:?}");
    assert_eq!(kims[0]["state"], json!("delivered"));
    let aid = kims[0]["id"].as_str().unwrap().to_owned();

    // Bob manages Finance: he sees Ann's assignment, not Kim's, and cannot remove Kim's.
    let mut bob = signed_in(&w.p, "bob").await;
    let bobs = bob.get(app, "/admin/assignments").await;
    assert!(bobs.text.contains("Ann") && bobs.text.contains("Ledger reader"), "{}", bobs.text);
    assert!(!bobs.text.contains("Kim") && !bobs.text.contains("CRM"), "{}", bobs.text);
    let body = format!("csrf_token={}", enc(&input(&bobs.text, "csrf_token")));
    let r = post_form(&mut bob, app, &format!("/admin/assignments/{aid}/remove"), &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    bob.get(app, &format!("/admin/requests/{rid}")).await.expect(StatusCode::NOT_FOUND);
    assert_eq!(assignments_of(app, &kim).await[0]["state"], json!("delivered"));

    // Remove, without the token: refused; with it: an adminRemove, and the assignment ends.
    let path = format!("/admin/assignments/{aid}/remove");
    post_form(&mut ada, app, &path, "target=kim").await.expect(StatusCode::FORBIDDEN);
    let r = post_form(&mut ada, app, &path, &format!("csrf_token={}&target=kim", enc(&csrf))).await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/admin/assignments?target=kim&notice=removed");
    drain(app).await;
    let after = ada.get(app, r.header("location")).await;
    assert!(
        after.text.contains("an adminRemove request was submitted") && after.text.contains("Expired"),
        "{}",
        after.text
    );
    assert_eq!(assignments_of(app, &kim).await[0]["state"], json!("expired"));
    let removals = app
        .get(&format!("{EM}/assignmentRequests?$filter=requestType eq 'adminRemove'").replace(' ', "%20"))
        .await
        .json();
    let removals = removals["value"].as_array().unwrap();
    assert_eq!(removals.len(), 1, "{removals:?}");
    assert_eq!(removals[0]["state"], json!("delivered"));

    // Someone without the role: refused, never shown the data.
    let mut nina = signed_in(&w.p, "nina").await;
    for path in ["/admin/assignments", "/admin/assignments.csv", "/admin/requests", &format!("/admin/requests/{rid}")] {
        let r = nina.get(app, path).await;
        assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{path}: {}", r.status);
        assert!(!r.text.contains("jim@contoso.com") && !r.text.contains("Kim"), "{path}: {}", r.text);
    }
    let body = format!(
        "csrf_token={}&policy={}&user=Kim",
        enc(&input(&nina.get(app, "/access").await.text, "csrf_token")),
        w.admin_policy
    );
    post_form(&mut nina, app, "/admin/assignments/assign", &body).await.expect(StatusCode::FORBIDDEN);
    app.assert_no_5xx();
}

#[tokio::test]
async fn requests_are_listed_and_a_denied_request_shows_why() {
    let w = world().await;
    let app = &w.p.app;
    // Ann asks for CRM admin; Dan denies it, saying why.
    let ann = create_token(&app.services, local_operator(), "t", TokenHolder::User(w.ann.parse().unwrap()), None)
        .await
        .unwrap()
        .1;
    let dan = create_token(&app.services, local_operator(), "t", TokenHolder::User(w.dan.parse().unwrap()), None)
        .await
        .unwrap()
        .1;
    let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": w.crm_admin}, "justification": "Need the admin screens"});
    let rid = app
        .json_as(ann.expose(), Method::POST, &format!("{EM}/assignmentRequests"), &body)
        .await
        .expect(StatusCode::CREATED)
        .id();
    let stages = app.get_as(dan.expose(), &format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages")).await.json();
    let stage = stages["value"][0]["id"].as_str().unwrap().to_owned();
    let decision = json!({"reviewResult": "Deny", "justification": "Not without the training"});
    let url = format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages/{stage}");
    app.json_as(dan.expose(), Method::PATCH, &url, &decision).await.expect(StatusCode::NO_CONTENT);

    let mut ada = signed_in(&w.p, "ada").await;
    let list = ada.get(app, "/admin/requests").await;
    list.expect(StatusCode::OK);
    for part in ["CRM admin", "Denied", "Ann", "Requested by the user", "CRM contributor", "Assigned directly"] {
        assert!(list.text.contains(part), "{part} in {}", list.text);
    }
    assert!(!list.text.contains("Ledger"), "catalog B's requests are not shown: {}", list.text);
    let denied = ada.get(app, "/admin/requests?state=denied&person=ann").await;
    assert_eq!(count_of(&denied.text, "href=\"/admin/requests/"), 2, "one row, two links: {}", denied.text);
    assert!(denied.text.contains(&format!("/admin/requests/{rid}")), "{}", denied.text);
    let delivered = ada.get(app, "/admin/requests?state=delivered").await;
    assert!(!delivered.text.contains(&rid) && delivered.text.contains("CRM contributor"), "{}", delivered.text);
    let nobody = ada.get(app, "/admin/requests?person=zelda").await;
    assert!(nobody.text.contains("No request matches."), "{}", nobody.text);

    let detail = ada.get(app, &format!("/admin/requests/{rid}")).await;
    detail.expect(StatusCode::OK);
    for part in [
        "Denied",
        "Approval stage 1",
        "Denied by Dan on ",
        ": Not without the training",
        "Need the admin screens",
        "Ann (ann@contoso.com)",
        "User requests access package assignment",
        "Deny access package assignment request",
    ] {
        assert!(detail.text.contains(part), "{part} in {}", detail.text);
    }
    assert!(!detail.text.contains("Cancel this request") && !detail.text.contains("Retry"), "{}", detail.text);
    // Bob manages another catalog: as if it did not exist.
    let mut bob = signed_in(&w.p, "bob").await;
    bob.get(app, &format!("/admin/requests/{rid}")).await.expect(StatusCode::NOT_FOUND);
    assert!(!bob.get(app, "/admin/requests").await.text.contains("CRM"));

    // Ann asks again; Ada cancels it (not without the token), and the API agrees.
    let again = app
        .json_as(ann.expose(), Method::POST, &format!("{EM}/assignmentRequests"), &body)
        .await
        .expect(StatusCode::CREATED)
        .id();
    let page = ada.get(app, &format!("/admin/requests/{again}")).await;
    assert!(page.text.contains("Waiting for approval") && page.text.contains("Cancel this request"), "{}", page.text);
    assert!(page.text.contains("Approvers: Dan."), "{}", page.text);
    let path = format!("/admin/requests/{again}/cancel");
    post_form(&mut ada, app, &path, "").await.expect(StatusCode::FORBIDDEN);
    let r = post_form(&mut ada, app, &path, &format!("csrf_token={}", enc(&input(&page.text, "csrf_token")))).await;
    r.expect(StatusCode::SEE_OTHER);
    let after = ada.get(app, r.header("location")).await;
    assert!(after.text.contains("The request was cancelled.") && after.text.contains("Cancelled"), "{}", after.text);
    let state = app.get(&format!("{EM}/assignmentRequests/{again}")).await.json()["state"].clone();
    assert_eq!(state, json!("canceled"));
    // Cancelling twice: the app's answer, on the page.
    let r = post_form(&mut ada, app, &path, &format!("csrf_token={}", enc(&input(&page.text, "csrf_token")))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("id=\"error-action\">The request is canceled"), "{}", r.text);
    app.assert_no_5xx();
}

#[tokio::test]
async fn separation_of_duties_shows_violations_and_its_changes_are_audited() {
    let w = world().await;
    let app = &w.p.app;
    // Jim also holds CRM admin, and is an auditor.
    assign(app, &w.admin_policy, &w.jim).await;
    drain(app).await;
    let link = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", w.jim)});
    app.post(&format!("/v1.0/groups/{}/members/$ref", w.auditors), &link).await.expect(StatusCode::NO_CONTENT);

    let mut pam = signed_in(&w.p, "pam").await;
    let list = pam.get(app, "/admin/separation-of-duties").await;
    list.expect(StatusCode::OK);
    assert!(list.text.contains("CRM contributor") && list.text.contains("CRM admin"), "{}", list.text);
    assert!(!list.text.contains("Ledger"), "{}", list.text);
    let base = format!("/admin/separation-of-duties/{}", w.crm);
    let page = pam.get(app, &base).await;
    page.expect(StatusCode::OK);
    assert!(page.text.contains("Nobody who holds this package also holds something incompatible"), "{}", page.text);
    let csrf = input(&page.text, "csrf_token");

    // Invalid input: 422, next to the field, nothing written; no token: refused.
    let r = post_form(
        &mut pam,
        app,
        &format!("{base}/incompatible-packages"),
        &format!("csrf_token={}&package=", enc(&csrf)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-package\">Choose the access package"), "{}", r.text);
    let body = format!("csrf_token={}&package={}", enc(&csrf), w.crm);
    let r = post_form(&mut pam, app, &format!("{base}/incompatible-packages"), &body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "itself: {}", r.text);
    assert!(r.text.contains("aria-describedby=\"error-package\""), "{}", r.text);
    let r = post_form(
        &mut pam,
        app,
        &format!("{base}/incompatible-groups"),
        &format!("csrf_token={}&group=zelda", enc(&csrf)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-group\">No group matches &#39;zelda&#39;."), "{}", r.text);
    assert!(r.text.contains("value=\"zelda\""), "kept: {}", r.text);
    let r =
        post_form(&mut pam, app, &format!("{base}/incompatible-packages"), &format!("package={}", w.crm_admin)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(incompatible(app, &w.crm).await, 0, "nothing was written");

    // CRM admin is incompatible: Jim, who holds both, is a violation.
    let body = format!("csrf_token={}&package={}", enc(&csrf), w.crm_admin);
    let r = post_form(&mut pam, app, &format!("{base}/incompatible-packages"), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), format!("{base}?notice=added"));
    assert_eq!(incompatible(app, &w.crm).await, 1);
    let page = pam.get(app, r.header("location")).await;
    for part in
        ["The incompatibility was added.", "1 violation.", "Doe, &#34;Jim&#34;", "also holds access package CRM admin"]
    {
        assert!(page.text.contains(part), "{part} in {}", page.text);
    }
    // And from the other side, CRM admin's page names who declared it.
    let other = pam.get(app, &format!("/admin/separation-of-duties/{}", w.crm_admin)).await;
    assert!(
        other.text.contains("Declared incompatible by other packages") && other.text.contains("1 violation."),
        "{}",
        other.text
    );

    // Auditors is an incompatible group, by name.
    let r = post_form(
        &mut pam,
        app,
        &format!("{base}/incompatible-groups"),
        &format!("csrf_token={}&group=auditors", enc(&csrf)),
    )
    .await;
    r.expect(StatusCode::SEE_OTHER);
    let page = pam.get(app, &base).await;
    assert!(
        page.text.contains("2 violations.") && page.text.contains("is a member of group Auditors"),
        "{}",
        page.text
    );
    let groups = app.get(&format!("{EM}/accessPackages/{}/incompatibleGroups", w.crm)).await.json();
    assert_eq!(groups["value"][0]["id"], json!(w.auditors));

    // Removing the package incompatibility leaves the group's.
    let r = post_form(
        &mut pam,
        app,
        &format!("{base}/incompatible-packages/{}/remove", w.crm_admin),
        &format!("csrf_token={}", enc(&csrf)),
    )
    .await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(incompatible(app, &w.crm).await, 0);
    assert!(pam.get(app, &base).await.text.contains("1 violation."));

    // Pam manages Sales only; Ada manages assignments, not packages.
    pam.get(app, &format!("/admin/separation-of-duties/{}", w.ledger)).await.expect(StatusCode::FORBIDDEN);
    let body = format!("csrf_token={}&package={}", enc(&csrf), w.crm);
    let r = post_form(&mut pam, app, &format!("/admin/separation-of-duties/{}/incompatible-packages", w.ledger), &body)
        .await;
    r.expect(StatusCode::FORBIDDEN);
    let mut ada = signed_in(&w.p, "ada").await;
    ada.get(app, "/admin/separation-of-duties").await.expect(StatusCode::FORBIDDEN);
    ada.get(app, &base).await.expect(StatusCode::FORBIDDEN);

    // The audit page: administrators only; the package's history by its id.
    for who in ["ada", "pam", "nina"] {
        let mut b = signed_in(&w.p, who).await;
        let r = b.get(app, &format!("/admin/audit?object={}", w.crm)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}");
        assert!(!r.text.contains("Create access package"), "{}", r.text);
    }
    let mut root = signed_in(&w.p, "root").await;
    let audit = root.get(app, "/admin/audit").await;
    audit.expect(StatusCode::OK);
    assert!(audit.text.contains("arrives with the audit trail issue"), "{}", audit.text);
    let history = root.get(app, &format!("/admin/audit?object={}", w.crm)).await;
    history.expect(StatusCode::OK);
    for part in ["Create access package", "Create incompatible access package", "Pam", "incompatible access package"] {
        assert!(history.text.contains(part), "{part} in {}", history.text);
    }
    let bad = root.get(app, "/admin/audit?object=not-an-id").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text.contains("aria-describedby=\"error-object\"") && bad.text.contains("is not an id"),
        "{}",
        bad.text
    );
    app.assert_no_5xx();
}

/// A browser signed in as `user` on an app without portal sign-in: a session started directly.
async fn session_for(app: &TestApp, user: &str) -> Browser {
    let (token, _) = steward_app::sessions::start(
        &app.services,
        &SessionPolicy::default(),
        user.parse().unwrap(),
        &SignInFacts::default(),
        None,
    )
    .await
    .unwrap();
    let mut b = Browser::default();
    b.cookies.insert("__Host-steward_session".into(), token.expose().to_owned());
    b
}

/// A form post from this site (the app has no public URL: Origin must match Host).
async fn post_local(b: &mut Browser, app: &TestApp, path: &str, body: &str) -> Resp {
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", "http://console.test"),
        ("host", "console.test"),
    ];
    b.send(app, Method::POST, path, &headers, body).await
}

#[tokio::test]
async fn an_administrator_tests_and_discovers_a_connection_and_adds_what_it_found_to_a_catalog() {
    let app = TestApp::with_connections(Some(crate::connections::KEY)).await;
    let root = app.user("Root", "root@contoso.com").await;
    let nina = app.user("Nina", "nina@contoso.com").await;
    give(&app, &root, ADMINISTRATOR, "/").await;
    let cat = app.catalog("Analytics").await;
    let created = app
        .post(
            "/v1.0/steward/connections",
            &json!({"displayName": "Analytics database", "kind": "postgreSqlRoles",
                "settings": crate::connections::target(), "credentials": {"password": "pw-console"}}),
        )
        .await;
    created.expect(StatusCode::CREATED);
    let id = created.id();

    // Not an administrator: refused, nothing shown.
    let mut b = session_for(&app, &nina).await;
    for path in ["/admin/connections".to_owned(), format!("/admin/connections/{id}?test=1&discover=1")] {
        let r = b.get(&app, &path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        assert!(!r.text.contains("Analytics database"), "{}", r.text);
    }

    let mut b = session_for(&app, &root).await;
    let list = b.get(&app, "/admin/connections").await;
    list.expect(StatusCode::OK);
    for part in
        ["Analytics database", "PostgreSQL roles", "PostgreSqlRole", "Stored", &format!("/admin/connections/{id}")]
    {
        assert!(list.text.contains(part), "{part} in {}", list.text);
    }
    assert!(!list.text.contains("pw-console"));
    let tested = b.get(&app, &format!("/admin/connections/{id}?test=1")).await;
    tested.expect(StatusCode::OK);
    assert!(tested.text.contains("Succeeded:") && tested.text.contains("connected"), "{}", tested.text);

    // A role to find, made by the superuser at DATABASE_URL and dropped afterwards.
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap()).await.unwrap();
    let role = format!("steward_console_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} NOLOGIN"))).execute(&admin).await.unwrap();
    let origin = format!("{id}:{role}");
    let found = b.get(&app, &format!("/admin/connections/{id}?discover=1&search={role}")).await;
    let csrf = input(&found.text, "csrf_token");
    let path = format!("/admin/connections/{id}/resources");
    let no_catalog = format!("csrf_token={}&origin_id={}&catalog=&discover=1&search={role}", enc(&csrf), enc(&origin));
    let refused = post_local(&mut b, &app, &path, &no_catalog).await;
    let no_token = post_local(&mut b, &app, &path, &format!("origin_id={}&catalog={cat}", enc(&origin))).await;
    let body = format!("csrf_token={}&origin_id={}&catalog={cat}&discover=1&search={role}", enc(&csrf), enc(&origin));
    let added = post_local(&mut b, &app, &path, &body).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {role}"))).execute(&admin).await.unwrap();

    found.expect(StatusCode::OK);
    assert!(found.text.contains(&origin) && found.text.contains("1 resource."), "{}", found.text);
    assert!(found.text.contains("<label for=\"catalog-1\">"), "{}", found.text);
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert!(refused.text.contains("id=\"error-1\">Choose the catalog"), "{}", refused.text);
    assert!(refused.text.contains("aria-describedby=\"error-1\""), "{}", refused.text);
    assert_eq!(no_token.status, StatusCode::FORBIDDEN, "{}", no_token.text);
    added.expect(StatusCode::SEE_OTHER);
    let to = added.header("location").to_owned();
    assert_eq!(to, format!("/admin/connections/{id}?discover=1&search={role}&added={cat}"));
    let resources = app.get(&format!("{EM}/catalogs/{cat}/resources")).await.json();
    let resources = resources["value"].as_array().unwrap();
    assert_eq!(resources.len(), 1, "added once: {resources:?}");
    assert_eq!(resources[0]["originId"], json!(origin));
    assert_eq!(resources[0]["originSystem"], json!("PostgreSqlRole"));

    let shown = b.get(&app, &to).await;
    assert!(
        shown.text.contains(&format!("added to catalog <a href=\"/admin/catalogs/{cat}\">Analytics</a>")),
        "{}",
        shown.text
    );

    // Pointed where nothing listens: the test says so, and discovery's failure is shown.
    let mut away = crate::connections::target();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    away["host"] = json!("127.0.0.1");
    away["port"] = json!(port);
    away["tls"] = json!("disable");
    away["connectTimeoutSeconds"] = json!(1);
    app.patch(&format!("/v1.0/steward/connections/{id}"), &json!({"settings": away}))
        .await
        .expect(StatusCode::NO_CONTENT);
    let tested = b.get(&app, &format!("/admin/connections/{id}?test=1")).await;
    tested.expect(StatusCode::OK);
    assert!(tested.text.contains("Failed:"), "{}", tested.text);
    let found = b.get(&app, &format!("/admin/connections/{id}?discover=1")).await;
    assert_eq!(found.status, StatusCode::BAD_GATEWAY, "{}", found.text);
    assert!(found.text.contains("Discovery through connection &#39;Analytics database&#39; failed"), "{}", found.text);
}
