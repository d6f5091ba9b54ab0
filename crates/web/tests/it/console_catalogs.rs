//! The admin console's catalog, package and policy pages over HTTP, as a browser without
//! JavaScript uses them, signed in through the real OpenID Connect provider: an administrator
//! creates a catalog, adds a directory group found by name, creates an access package granting
//! the group's Member role and a two-stage policy through the editor's review step (then edits
//! and deletes it), and the API sees exactly that; invalid input answers 422 with the API's
//! error next to its field and writes nothing; a catalog reader reads but may not change; a user
//! without roles gets 403; forms without their CSRF token are refused.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::query::{CATALOGS, ListQuery, POLICIES};
use steward_app::sessions::SessionPolicy;
use steward_testpeers::OidcProvider;

use crate::app::{EM, Resp, TestApp};
use crate::pages::{form, input, signed_in, unescape};
use crate::signin::{Browser, Harness, PUBLIC, limits, portal_with};

const ADMINISTRATOR: &str = "5e3f5c8e-7a8b-4d2e-9f1a-57e3a4d0a001";
const CATALOG_READER: &str = "44272f93-9762-48e8-af59-1b5351b1d6b3";
const CATALOG_CREATOR: &str = "ba92d953-d8e0-4e39-a797-0cbedb0a89e8";

fn users() -> Value {
    json!({
        "ada": {"preferred_username": "ada@contoso.com", "email": "ada@contoso.com", "name": "Ada Admin"},
        "rita": {"preferred_username": "rita@contoso.com", "email": "rita@contoso.com", "name": "Rita Reader"},
        "nora": {"preferred_username": "nora@contoso.com", "email": "nora@contoso.com", "name": "Nora Nobody"},
    })
}

struct World {
    p: Harness,
    pat: String,
    group: String,
}

/// Ada administers Steward; Rita and Nora hold no role yet; Pat Approver is a second approver;
/// "Sales team" is a directory group.
async fn world() -> World {
    let p = portal_with(Some(OidcProvider::start(&users())), SessionPolicy::default(), limits(), PUBLIC).await;
    let app = &p.app;
    let ada = app.user("Ada Admin", "ada@contoso.com").await;
    app.user("Rita Reader", "rita@contoso.com").await;
    app.user("Nora Nobody", "nora@contoso.com").await;
    let pat = app.user("Pat Approver", "pat@contoso.com").await;
    app.user("Pat Other", "pat.other@contoso.com").await;
    grant(app, &ada, ADMINISTRATOR, "/").await;
    let group = app.group("Sales team").await;
    World { p, pat, group }
}

async fn grant(app: &TestApp, user: &str, role: &str, scope: &str) {
    app.post(
        "/v1.0/roleManagement/entitlementManagement/roleAssignments",
        &json!({"principalId": user, "roleDefinitionId": role, "appScopeId": scope}),
    )
    .await
    .expect(StatusCode::CREATED);
}

/// Every hidden field of a page, in order (the review page carries the whole policy so).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let marker = "<input type=\"hidden\" name=\"";
    html.match_indices(marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            let name = rest.split('"').next().unwrap().to_owned();
            let value = rest.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
            (name, unescape(value))
        })
        .collect()
}

async fn post(b: &mut Browser, app: &TestApp, path: &str, body: &str) -> Resp {
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", PUBLIC)];
    b.send(app, Method::POST, path, &headers, body).await
}

/// The id in a redirect to `/admin/{kind}/{id}?…`.
fn redirected_id(r: &Resp, kind: &str) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let to = r.header("location");
    let prefix = format!("/admin/{kind}/");
    assert!(to.starts_with(&prefix), "{to}");
    to[prefix.len()..].split('?').next().unwrap().to_owned()
}

async fn policies_of(app: &TestApp, package: &str) -> Vec<Value> {
    let r = app.get(&format!("{EM}/accessPackages/{package}/assignmentPolicies")).await;
    r.expect(StatusCode::OK);
    r.json()["value"].as_array().unwrap().clone()
}

async fn policy_count(app: &TestApp) -> usize {
    app.services.store.list_policies(&ListQuery::all(&POLICIES)).await.unwrap().items.len()
}

/// The two-stage policy of the story, as the editor's fields.
fn two_stage(csrf: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf_token", csrf.to_owned()),
        ("name", "Sales staff".into()),
        ("description", "Account executives <and> their assistants".into()),
        ("scope", "allMemberUsers".into()),
        ("approval", "on".into()),
        ("justification", "on".into()),
        ("stage1_kind", "manager".into()),
        ("stage1_days", "14".into()),
        ("stage2_kind", "user".into()),
        ("stage2_user", "Pat Approver".into()),
        ("stage2_days", "7".into()),
        ("stage2_justification", "on".into()),
        ("stage3_kind", String::new()),
        ("q1_text", "Ticket number?".into()),
        ("q1_kind", "text".into()),
        ("q1_required", "on".into()),
        ("q2_text", "Which region?".into()),
        ("q2_kind", "choice".into()),
        ("q2_choices", "EMEA\r\nAmericas\r\n".into()),
        ("expiration", "days".into()),
        ("expiration_days", "90".into()),
        ("extend", "on".into()),
        ("remove", "on".into()),
        ("custom_period", "on".into()),
    ]
}

fn body_of(fields: &[(&str, String)]) -> String {
    form(&fields.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
}

fn with(mut fields: Vec<(&'static str, String)>, key: &'static str, value: &str) -> Vec<(&'static str, String)> {
    fields.retain(|(k, _)| *k != key);
    fields.push((key, value.to_owned()));
    fields
}

#[tokio::test]
async fn an_administrator_builds_a_catalog_a_package_and_a_two_stage_policy() {
    let w = world().await;
    let app = &w.p.app;
    let mut b = signed_in(&w.p, "ada").await;

    let admin = b.get(app, "/admin").await;
    admin.expect(StatusCode::OK);
    assert!(admin.text.contains("href=\"/admin/catalogs\""), "{}", admin.text);
    let list = b.get(app, "/admin/catalogs").await;
    list.expect(StatusCode::OK);
    assert!(list.text.contains("New catalog") && list.text.contains("0 catalogs"), "{}", list.text);
    let csrf = input(&list.text, "csrf_token");

    // A catalog.
    let body = form(&[
        ("csrf_token", &csrf),
        ("name", "Sales"),
        ("description", "Tools of the sales team"),
        ("state", "published"),
        ("external", "on"),
    ]);
    let r = post(&mut b, app, "/admin/catalogs", &body).await;
    let cid = redirected_id(&r, "catalogs");
    assert!(r.header("location").ends_with("?notice=catalog-created"));
    let page = b.get(app, r.header("location")).await;
    page.expect(StatusCode::OK);
    for part in ["<h1>Sales</h1>", "The catalog was created", "Add a group", "New access package", "No resource yet"] {
        assert!(page.text.contains(part), "{part} in {}", page.text);
    }
    let api = app.get(&format!("{EM}/catalogs/{cid}")).await.json();
    assert_eq!(api["displayName"], "Sales");
    assert_eq!(api["isExternallyVisible"], true);
    assert_eq!(api["state"], "published");

    // A group, found by its name and added.
    let found = b.get(app, &format!("/admin/catalogs/{cid}?group_search=sales")).await;
    found.expect(StatusCode::OK);
    assert!(found.text.contains("Sales team"), "{}", found.text);
    assert!(found.text.contains(&format!("name=\"group\" value=\"{}\"", w.group)), "{}", found.text);
    let body = form(&[("csrf_token", &csrf), ("group", &w.group), ("group_search", "sales")]);
    let r = post(&mut b, app, &format!("/admin/catalogs/{cid}/resources"), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), format!("/admin/catalogs/{cid}?notice=group-added"));
    let page = b.get(app, r.header("location")).await;
    assert!(page.text.contains("<td>Sales team</td>") && page.text.contains(">AadGroup</td>"), "{}", page.text);
    assert!(page.text.contains("Member"), "its roles: {}", page.text);
    let again = b.get(app, &format!("/admin/catalogs/{cid}?group_search=sales")).await;
    assert!(again.text.contains("In the catalog"), "{}", again.text);
    let resources = app.get(&format!("{EM}/catalogs/{cid}/resources")).await.json();
    assert_eq!(resources["value"].as_array().unwrap().len(), 1, "{resources}");

    // An access package.
    let body = form(&[("csrf_token", &csrf), ("name", "CRM contributor"), ("description", "Edit the CRM")]);
    let r = post(&mut b, app, &format!("/admin/catalogs/{cid}/packages"), &body).await;
    let pid = redirected_id(&r, "packages");
    let page = b.get(app, r.header("location")).await;
    page.expect(StatusCode::OK);
    assert!(page.text.contains("The access package was created"), "{}", page.text);
    assert!(page.text.contains("It grants nothing yet.") && page.text.contains("No policy yet"), "{}", page.text);
    assert!(page.text.contains(&format!("href=\"/admin/separation-of-duties/{pid}\"")), "{}", page.text);

    // The group's Member role.
    let marker = ">Member of Sales team (AadGroup)</option>";
    let at = page.text.find(marker).unwrap_or_else(|| panic!("no Member option in {}", page.text));
    let role = page.text[..at].rsplit("<option value=\"").next().unwrap().split('"').next().unwrap().to_owned();
    let r =
        post(&mut b, app, &format!("/admin/packages/{pid}/roles"), &form(&[("csrf_token", &csrf), ("role", &role)]))
            .await;
    r.expect(StatusCode::SEE_OTHER);
    let page = b.get(app, r.header("location")).await;
    assert!(page.text.contains("<td>Member</td>") && page.text.contains(">Sales team</td>"), "{}", page.text);
    let scopes = app.get(&format!("{EM}/accessPackages/{pid}/resourceRoleScopes")).await.json();
    assert_eq!(scopes["value"].as_array().unwrap().len(), 1, "{scopes}");

    // The policy editor, its review (nothing written yet) and Back.
    let editor = b.get(app, &format!("/admin/packages/{pid}/policies/new")).await;
    editor.expect(StatusCode::OK);
    for part in
        ["1. Basics", "2. Who may request", "3. Approval", "4. Requestor information", "5. Lifecycle", "6. Review"]
    {
        assert!(editor.text.contains(part), "{part} in {}", editor.text);
    }
    for id in ["name", "stage1_kind", "stage2_user", "stage3_days", "q1_text", "expiration_days", "custom_period"] {
        assert!(editor.text.contains(&format!("id=\"{id}\" name=\"{id}\"")), "{id} in {}", editor.text);
    }
    let fields = two_stage(&csrf);
    let review = post(&mut b, app, &format!("/admin/packages/{pid}/policies/review"), &body_of(&fields)).await;
    review.expect(StatusCode::OK);
    let summary = "Members of the directory may request; approved by their manager, then by Pat Approver; access lasts \
                   90 days and may be extended.";
    assert!(review.text.contains(summary), "{}", review.text);
    for part in [
        "Stage 2: approved by Pat Approver, within 7 days or the request is denied; the approver says why.",
        "“Ticket number?” (required, answered in words)",
        "“Which region?” (optional, one of EMEA or Americas)",
        "Requestors may ask for a specific period.",
        "Create policy",
        "value=\"back\"",
    ] {
        assert!(review.text.contains(part), "{part} in {}", review.text);
    }
    assert_eq!(policy_count(app).await, 0, "a review writes nothing");
    let carried = hidden_fields(&review.text);
    assert!(carried.contains(&("stage2_user".into(), "Pat Approver".into())), "{carried:?}");
    assert!(carried.contains(&("q2_choices".into(), "EMEA\r\nAmericas\r\n".into())), "{carried:?}");
    let carried_body = |step: &str| {
        let mut all: Vec<(&str, &str)> = carried.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.push(("step", step));
        form(&all)
    };
    let back = post(&mut b, app, &format!("/admin/packages/{pid}/policies"), &carried_body("back")).await;
    back.expect(StatusCode::OK);
    assert!(
        back.text.contains("value=\"Pat Approver\"") && back.text.contains("value=\"Sales staff\""),
        "{}",
        back.text
    );
    assert!(back.text.contains("<option value=\"user\" selected>"), "{}", back.text);
    assert_eq!(policy_count(app).await, 0, "Back writes nothing");

    // Create policy.
    let r = post(&mut b, app, &format!("/admin/packages/{pid}/policies"), &carried_body("save")).await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), format!("/admin/packages/{pid}?notice=policy-created"));
    let created = policies_of(app, &pid).await;
    assert_eq!(created.len(), 1);
    let p = &created[0];
    assert_eq!(p["displayName"], "Sales staff");
    assert_eq!(p["description"], "Account executives <and> their assistants");
    assert_eq!(p["allowedTargetScope"], "allMemberUsers");
    let stages = p["requestApprovalSettings"]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2, "{p}");
    assert_eq!(stages[0]["primaryApprovers"][0]["@odata.type"], "#microsoft.graph.requestorManager");
    assert_eq!(stages[0]["durationBeforeAutomaticDenial"], "P14D");
    assert_eq!(stages[1]["primaryApprovers"][0]["userId"], w.pat.as_str());
    assert_eq!(stages[1]["isApproverJustificationRequired"], true);
    assert_eq!(p["requestApprovalSettings"]["isRequestorJustificationRequired"], true);
    assert_eq!(p["expiration"]["duration"], "P90D");
    assert_eq!(p["requestorSettings"]["allowCustomAssignmentSchedule"], true);
    assert_eq!(p["requestorSettings"]["enableTargetsToSelfUpdateAccess"], true);
    assert_eq!(p["questions"].as_array().unwrap().len(), 2);
    assert_eq!(p["questions"][1]["choices"][1]["actualValue"], "Americas");
    let policy = p["id"].as_str().unwrap().to_owned();
    let question = p["questions"][0]["id"].as_str().unwrap().to_owned();
    let page = b.get(app, r.header("location")).await;
    assert!(page.text.contains("The policy was created.") && page.text.contains(summary), "{}", page.text);

    // Edit: the form holds the stored policy; a changed name keeps everything else.
    let edit = b.get(app, &format!("/admin/policies/{policy}/edit")).await;
    edit.expect(StatusCode::OK);
    assert!(edit.text.contains("value=\"pat@contoso.com\""), "the approver by address: {}", edit.text);
    assert!(edit.text.contains(&format!("name=\"q1_id\" value=\"{question}\"")), "{}", edit.text);
    let mut fields = hidden_fields(&edit.text);
    assert!(fields.iter().any(|(k, _)| k == "version"), "{fields:?}");
    let typed = [
        ("name", "Sales staff and partners"),
        ("description", ""),
        ("scope", "allMemberUsers"),
        ("approval", "on"),
        ("justification", "on"),
        ("stage1_kind", "manager"),
        ("stage1_days", "14"),
        ("stage2_kind", "user"),
        ("stage2_user", "pat@contoso.com"),
        ("stage2_days", "7"),
        ("q1_text", "Ticket number?"),
        ("q1_kind", "text"),
        ("expiration", "days"),
        ("expiration_days", "30"),
    ];
    fields.extend(typed.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let body = form(&fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
    let review = post(&mut b, app, &format!("/admin/policies/{policy}/review"), &body).await;
    review.expect(StatusCode::OK);
    assert!(review.text.contains("Save policy") && review.text.contains("access lasts 30 days"), "{}", review.text);
    let mut carried: Vec<(String, String)> = hidden_fields(&review.text);
    carried.push(("step".into(), "save".into()));
    let body = form(&carried.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
    let r = post(&mut b, app, &format!("/admin/policies/{policy}"), &body).await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), format!("/admin/packages/{pid}?notice=policy-saved"));
    let saved = policies_of(app, &pid).await;
    assert_eq!(saved[0]["displayName"], "Sales staff and partners");
    assert_eq!(saved[0]["expiration"]["duration"], "P30D");
    assert_eq!(saved[0]["requestApprovalSettings"]["stages"].as_array().unwrap().len(), 2);
    assert_eq!(saved[0]["questions"][0]["id"], question.as_str(), "the question keeps its id");
    assert_eq!(saved[0]["questions"].as_array().unwrap().len(), 1);

    // The same form again is out of date: nothing is overwritten.
    let stale = post(&mut b, app, &format!("/admin/policies/{policy}"), &body).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    assert!(stale.text.contains("changed while it was being updated"), "{}", stale.text);

    // Delete.
    let r = post(&mut b, app, &format!("/admin/policies/{policy}/delete"), &form(&[("csrf_token", &csrf)])).await;
    r.expect(StatusCode::SEE_OTHER);
    assert!(policies_of(app, &pid).await.is_empty());
    app.assert_no_5xx();
}

#[tokio::test]
async fn invalid_input_is_shown_next_to_its_field_with_status_422_and_nothing_is_written() {
    let w = world().await;
    let app = &w.p.app;
    let cid = app.catalog("Sales").await;
    let pid = app.package(&cid, "CRM contributor").await;
    let mut b = signed_in(&w.p, "ada").await;
    let csrf = input(&b.get(app, "/admin/catalogs").await.text, "csrf_token");
    let review = format!("/admin/packages/{pid}/policies/review");
    let create = format!("/admin/packages/{pid}/policies");

    // An empty name: the API's words, next to the name, what was typed kept.
    let fields = with(two_stage(&csrf), "name", "  ");
    let r = post(&mut b, app, &review, &body_of(&fields)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"name-error\">displayName must not be empty."), "{}", r.text);
    assert!(r.text.contains("aria-invalid=\"true\" aria-describedby=\"name-error\""), "{}", r.text);
    assert!(r.text.contains("Account executives &#60;and&#62; their assistants</textarea>"), "kept: {}", r.text);
    assert!(r.text.contains("value=\"Pat Approver\""), "kept: {}", r.text);

    // A stage for a specific user, with none chosen.
    let fields = with(two_stage(&csrf), "stage2_user", "");
    let r = post(&mut b, app, &review, &body_of(&fields)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"stage2_user-error\">Choose the user who approves at stage 2"), "{}", r.text);
    // A name that matches no one, and one that matches two people.
    let r = post(&mut b, app, &review, &body_of(&with(two_stage(&csrf), "stage2_user", "Zed"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"stage2_user-error\">No user is named “Zed”"), "{}", r.text);
    let r = post(&mut b, app, &review, &body_of(&with(two_stage(&csrf), "stage2_user", "Pat"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("2 users match “Pat”: Pat Approver (pat@contoso.com), Pat Other"), "{}", r.text);

    // Zero days before automatic denial: the API's check, next to that stage's days.
    let fields = with(two_stage(&csrf), "stage1_days", "0");
    let r = post(&mut b, app, &review, &body_of(&fields)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains(
            "id=\"stage1_days-error\">Approval stage 1: durationBeforeAutomaticDenial must be longer than zero"
        ),
        "{}",
        r.text
    );
    assert!(r.text.contains("aria-describedby=\"stage1_days-error\""), "{}", r.text);
    // … and the same when creating: nothing written.
    let mut fields = with(two_stage(&csrf), "stage1_days", "0");
    fields.push(("step", "save".into()));
    let r = post(&mut b, app, &create, &body_of(&fields)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"stage1_days-error\">"), "{}", r.text);

    // Not a number; specific users with no one named; a multiple-choice question without choices.
    let r = post(&mut b, app, &review, &body_of(&with(two_stage(&csrf), "expiration_days", "ninety"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"expiration_days-error\">“ninety” is not a number of days"), "{}", r.text);
    let r = post(&mut b, app, &review, &body_of(&with(two_stage(&csrf), "scope", "specificDirectoryUsers"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("id=\"target_users-error\">allowedTargetScope specificDirectoryUsers needs at least one entry"),
        "{}",
        r.text
    );
    let r = post(&mut b, app, &review, &body_of(&with(two_stage(&csrf), "q2_choices", ""))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("id=\"q2_choices-error\">Multiple-choice question 2 needs at least one choice."),
        "{}",
        r.text
    );
    // Approval required without any stage.
    let fields = with(with(two_stage(&csrf), "stage1_kind", ""), "stage2_kind", "");
    let r = post(&mut b, app, &review, &body_of(&fields)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"stage1_kind-error\">Approval is required"), "{}", r.text);
    assert_eq!(policy_count(app).await, 0, "nothing was written");

    // The catalog and package forms say the same.
    let catalogs = app.services.store.list_catalogs(&ListQuery::all(&CATALOGS)).await.unwrap().items.len();
    let r =
        post(&mut b, app, "/admin/catalogs", &form(&[("csrf_token", &csrf), ("name", ""), ("description", "kept")]))
            .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"catalog-name-error\">displayName must not be empty."), "{}", r.text);
    assert!(r.text.contains(">kept</textarea>"), "{}", r.text);
    assert_eq!(app.services.store.list_catalogs(&ListQuery::all(&CATALOGS)).await.unwrap().items.len(), catalogs);
    let r =
        post(&mut b, app, &format!("/admin/catalogs/{cid}/packages"), &form(&[("csrf_token", &csrf), ("name", "")]))
            .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"package-name-error\">displayName must not be empty."), "{}", r.text);
    let long = "x".repeat(4001);
    let r = post(
        &mut b,
        app,
        &format!("/admin/packages/{pid}"),
        &form(&[("csrf_token", &csrf), ("name", "CRM"), ("description", &long)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"package-description-error\">description is 4001 characters long"), "{}", r.text);
    assert_eq!(app.get(&format!("{EM}/accessPackages/{pid}")).await.json()["displayName"], "CRM contributor");
    app.assert_no_5xx();
}

#[tokio::test]
async fn a_catalog_reader_reads_the_catalog_but_may_not_change_it() {
    let w = world().await;
    let app = &w.p.app;
    let cid = app.catalog("Sales").await;
    let other = app.catalog("Finance").await;
    app.add_group(&cid, &w.group).await.expect(StatusCode::CREATED);
    let pid = app.package(&cid, "CRM contributor").await;
    let rita = app.services.store.user_by_upn("rita@contoso.com").await.unwrap().unwrap().id.to_string();
    grant(app, &rita, CATALOG_READER, &format!("/AccessPackageCatalog/{cid}")).await;
    let mut b = signed_in(&w.p, "rita").await;

    let list = b.get(app, "/admin/catalogs").await;
    list.expect(StatusCode::OK);
    assert!(list.text.contains("Sales") && !list.text.contains("Finance"), "{}", list.text);
    assert!(!list.text.contains("New catalog"), "not a catalog creator: {}", list.text);
    let page = b.get(app, &format!("/admin/catalogs/{cid}")).await;
    page.expect(StatusCode::OK);
    assert!(page.text.contains("Sales team") && page.text.contains("CRM contributor"), "{}", page.text);
    for absent in ["New access package", "Add a group", "Save details", ">Remove<"] {
        assert!(!page.text.contains(absent), "{absent} in {}", page.text);
    }
    let package = b.get(app, &format!("/admin/packages/{pid}")).await;
    package.expect(StatusCode::OK);
    assert!(!package.text.contains("New policy") && !package.text.contains("Add role"), "{}", package.text);

    // Writing is refused as the API refuses it, and nothing is written.
    let csrf = input(&page.text, "csrf_token");
    let r = post(
        &mut b,
        app,
        &format!("/admin/catalogs/{cid}/packages"),
        &form(&[("csrf_token", &csrf), ("name", "Mine")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let packages = app.get(&format!("{EM}/catalogs/{cid}/accessPackages")).await.json();
    assert_eq!(packages["value"].as_array().unwrap().len(), 1);
    for path in [format!("/admin/catalogs/{cid}"), format!("/admin/catalogs/{cid}/resources")] {
        let r =
            post(&mut b, app, &path, &form(&[("csrf_token", &csrf), ("name", "Renamed"), ("group", &w.group)])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
    }
    b.get(app, &format!("/admin/packages/{pid}/policies/new")).await.expect(StatusCode::FORBIDDEN);
    let r = post(&mut b, app, &format!("/admin/packages/{pid}/policies"), &body_of(&two_stage(&csrf))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(policy_count(app).await, 0);
    let r = post(&mut b, app, "/admin/catalogs", &form(&[("csrf_token", &csrf), ("name", "Mine")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Another catalog is not hers.
    let r = b.get(app, &format!("/admin/catalogs/{other}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(!r.text.contains("Finance"), "{}", r.text);
    app.assert_no_5xx();
}

#[tokio::test]
async fn a_catalog_creator_creates_a_catalog_owns_it_and_a_stale_form_changes_nothing() {
    let w = world().await;
    let app = &w.p.app;
    app.catalog("Someone else's").await;
    let nora = app.services.store.user_by_upn("nora@contoso.com").await.unwrap().unwrap().id.to_string();
    grant(app, &nora, CATALOG_CREATOR, "/").await;
    let mut b = signed_in(&w.p, "nora").await;

    // No catalog to read yet, but the form to create one.
    let list = b.get(app, "/admin/catalogs").await;
    list.expect(StatusCode::OK);
    assert!(list.text.contains("0 catalogs") && list.text.contains("New catalog"), "{}", list.text);
    assert!(!list.text.contains("Someone else"), "{}", list.text);
    let csrf = input(&list.text, "csrf_token");
    let body = form(&[("csrf_token", &csrf), ("name", "Nora's tools"), ("state", "unpublished")]);
    let cid = redirected_id(&post(&mut b, app, "/admin/catalogs", &body).await, "catalogs");
    // She owns it: she edits it and creates packages in it.
    let page = b.get(app, &format!("/admin/catalogs/{cid}")).await;
    page.expect(StatusCode::OK);
    assert!(page.text.contains("Save details") && page.text.contains("New access package"), "{}", page.text);
    assert!(page.text.contains("value=\"unpublished\" checked"), "{}", page.text);
    let version = input(&page.text, "version");
    let edit =
        |name: &str| form(&[("csrf_token", &csrf), ("version", &version), ("name", name), ("state", "published")]);
    let r = post(&mut b, app, &format!("/admin/catalogs/{cid}"), &edit("Nora's release tools")).await;
    r.expect(StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), format!("/admin/catalogs/{cid}?notice=saved"));
    // The same form again was read before that change: refused, the change kept.
    let stale = post(&mut b, app, &format!("/admin/catalogs/{cid}"), &edit("Something else")).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    assert!(stale.text.contains("id=\"details-error\""), "{}", stale.text);
    assert!(stale.text.contains("value=\"Something else\""), "what was typed is kept: {}", stale.text);
    let api = app.get(&format!("{EM}/catalogs/{cid}")).await.json();
    assert_eq!(api["displayName"], "Nora's release tools");
    assert_eq!(api["state"], "published");
    app.assert_no_5xx();
}

#[tokio::test]
async fn without_a_role_or_a_csrf_token_nothing_is_shown_or_written() {
    let w = world().await;
    let app = &w.p.app;
    let cid = app.catalog("Secret catalog").await;
    let pid = app.package(&cid, "Secret package").await;

    // Not signed in: to sign in.
    let mut anonymous = Browser::default();
    let r = anonymous.get(app, "/admin/catalogs").await;
    r.expect(StatusCode::SEE_OTHER);
    assert!(r.header("location").starts_with("/auth/login?returnTo="), "{}", r.header("location"));

    // No role: 403 everywhere, and nothing of the catalog on the pages.
    let mut b = signed_in(&w.p, "nora").await;
    for path in [
        "/admin".to_owned(),
        "/admin/catalogs".to_owned(),
        format!("/admin/catalogs/{cid}"),
        format!("/admin/packages/{pid}"),
        format!("/admin/packages/{pid}/policies/new"),
    ] {
        let r = b.get(app, &path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        assert!(!r.text.contains("Secret"), "{path}: {}", r.text);
    }
    let nav = b.get(app, "/access-packages").await;
    assert!(!nav.text.contains("href=\"/admin\""), "no Admin tab: {}", nav.text);
    let csrf = input(&nav.text, "csrf_token");
    let r = post(&mut b, app, "/admin/catalogs", &form(&[("csrf_token", &csrf), ("name", "Mine")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // An administrator's form without its token, or with another, is refused.
    let mut b = signed_in(&w.p, "ada").await;
    let before = app.services.store.list_catalogs(&ListQuery::all(&CATALOGS)).await.unwrap().items.len();
    for body in [form(&[("name", "Forged")]), form(&[("csrf_token", "forged"), ("name", "Forged")])] {
        let r = post(&mut b, app, "/admin/catalogs", &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.text.contains("nothing was changed"), "{}", r.text);
    }
    let r = post(&mut b, app, &format!("/admin/packages/{pid}/policies"), &body_of(&two_stage("forged"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(app.services.store.list_catalogs(&ListQuery::all(&CATALOGS)).await.unwrap().items.len(), before);
    assert_eq!(policy_count(app).await, 0);
    // A missing object is a 404 page for someone who could see it.
    b.get(app, "/admin/catalogs/6f1c2d3e-0000-4000-8000-00000000000a").await.expect(StatusCode::NOT_FOUND);
    b.get(app, "/admin/packages/not-an-id").await.expect(StatusCode::NOT_FOUND);
    app.assert_no_5xx();
}

#[tokio::test]
async fn catalogs_are_searched_and_listed_25_a_page() {
    let w = world().await;
    let app = &w.p.app;
    for i in 0..27 {
        app.catalog(&format!("Bulk {i:02}")).await;
    }
    app.catalog("Engineering").await;
    let mut b = signed_in(&w.p, "ada").await;
    let first = b.get(app, "/admin/catalogs").await;
    assert!(first.text.contains("28 catalogs") && first.text.contains("Page 1"), "{}", first.text);
    assert_eq!(first.text.matches("<td><a href=\"/admin/catalogs/").count(), 25, "{}", first.text);
    assert!(first.text.contains("href=\"/admin/catalogs?page=2\" rel=\"next\""), "{}", first.text);
    let second = b.get(app, "/admin/catalogs?page=2").await;
    assert_eq!(second.text.matches("<td><a href=\"/admin/catalogs/").count(), 3, "{}", second.text);
    assert!(second.text.contains("rel=\"prev\"") && !second.text.contains("rel=\"next\""), "{}", second.text);
    let found = b.get(app, "/admin/catalogs?search=engin").await;
    assert!(found.text.contains(">Engineering</a>") && !found.text.contains("Bulk"), "{}", found.text);
    assert!(found.text.contains("value=\"engin\""), "{}", found.text);
}
