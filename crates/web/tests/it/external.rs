//! External users over HTTP: connected organizations (CRUD, OData, sponsors through `$ref`,
//! the errors), who of them may request under each connected-organization scope, the guest a
//! request for someone not yet in the directory creates when it is approved, the settings, and
//! the governed guest's lifecycle: blocked when their last assignment ends, deleted after the
//! configured time (the test clock moved, never slept), unless a new assignment comes first.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::lifecycle::requests::{self, RequestInput};
use steward_domain::audit::Activity;

use crate::app::{ADMIN, EM, TestApp, UNKNOWN};

const ORGS: &str = "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations";
const SETTINGS: &str = "/v1.0/identityGovernance/entitlementManagement/settings";
const START: &str = "2031-03-01T09:00:00Z";

fn domain(d: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": d, "displayName": d})
}

async fn organization(app: &TestApp, name: &str, domains: &[&str], state: &str) -> String {
    let sources: Vec<Value> = domains.iter().map(|d| domain(d)).collect();
    let r = app.post(ORGS, &json!({"displayName": name, "identitySources": sources, "state": state})).await;
    r.expect(StatusCode::CREATED).id()
}

/// A directory user with a personal token, made a guest with this mail when `mail` is given.
async fn person(app: &TestApp, upn: &str, mail: Option<&str>) -> (String, String) {
    let (id, token) = app.person(upn).await;
    if let Some(m) = mail {
        app.patch(&format!("/v1.0/users/{id}"), &json!({"userType": "Guest", "mail": m}))
            .await
            .expect(StatusCode::NO_CONTENT);
    }
    (id, token)
}

/// A policy of `pkg` for `scope`, naming `orgs` in connectedOrganizationMembers, letting its
/// targets request for themselves; `extra` is merged in.
async fn policy(app: &TestApp, pkg: &str, scope: &str, orgs: &[&str], extra: Value) -> String {
    let targets: Vec<Value> = orgs
        .iter()
        .map(|o| json!({"@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": o}))
        .collect();
    let mut body = json!({"accessPackage": {"id": pkg}, "displayName": format!("{scope} policy"),
        "allowedTargetScope": scope, "specificAllowedTargets": targets,
        "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true}});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let r = app.post(&format!("{EM}/assignmentPolicies"), &body).await;
    r.expect(StatusCode::CREATED).id()
}

fn admin_add(pkg: &str, policy: &str, email: &str, name: &str) -> Value {
    json!({"requestType": "adminAdd", "assignment": {"accessPackageId": pkg, "assignmentPolicyId": policy,
        "target": {"email": email, "displayName": name, "subjectType": "user"}}})
}

async fn drain(app: &TestApp) {
    app.post("/ops/jobs/drain", &json!({})).await.expect(StatusCode::OK);
}

async fn advance(app: &TestApp, by: &str) {
    app.post("/ops/clock", &json!({"advance": by})).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn connected_organizations_crud_odata_sponsors_and_errors() {
    let app = TestApp::new().await;
    let tenant = "3f1c2d3e-0000-4000-8000-00000000000b";
    let r = app
        .post(
            ORGS,
            &json!({"displayName": "Fabrikam", "description": "Our partner", "identitySources": [
                {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "Fabrikam.COM", "displayName": "Fabrikam"},
                {"@odata.type": "microsoft.graph.azureActiveDirectoryTenant", "tenantId": tenant, "displayName": "Fabrikam tenant"},
                {"@odata.type": "#microsoft.graph.externalDomainFederation", "domainName": "fabrikam.example", "issuerUri": "https://idp.fabrikam.example/saml"},
                {"@odata.type": "#microsoft.graph.socialIdentitySource", "socialIdentitySourceType": "facebook"}]}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    assert!(r.header("location").ends_with(&r.id()), "{}", r.header("location"));
    let created = r.json();
    let fab = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["@odata.type"], "#microsoft.graph.connectedOrganization");
    assert_eq!(created["state"], "configured", "configured unless said otherwise");
    assert_eq!(created["description"], "Our partner");
    assert_eq!(
        created["identitySources"][0],
        json!({"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "fabrikam.com", "displayName": "Fabrikam"})
    );
    assert_eq!(created["identitySources"][1]["@odata.type"], "#microsoft.graph.azureActiveDirectoryTenant");
    assert_eq!(created["identitySources"][1]["tenantId"], tenant);
    assert_eq!(created["identitySources"][2]["issuerUri"], "https://idp.fabrikam.example/saml");
    assert_eq!(created["identitySources"][3]["socialIdentitySourceType"], "facebook");
    assert!(created["createdDateTime"].as_str().unwrap().ends_with('Z'));
    let got = app.get(&format!("{ORGS}/{fab}")).await;
    got.expect(StatusCode::OK);
    assert_eq!(got.json()["identitySources"], created["identitySources"]);
    assert_eq!(
        got.json()["@odata.context"],
        "http://localhost/v1.0/$metadata#identityGovernance/entitlementManagement/connectedOrganizations/$entity"
    );
    let wood = organization(&app, "Woodgrove", &["woodgrove.example"], "Proposed").await;
    let tail = organization(&app, "Tailspin", &["tailspin.example"], "configured").await;

    // The OData options the other collections take.
    let list = app.get(&format!("{ORGS}?$filter=state%20eq%20'proposed'&$count=true")).await;
    list.expect(StatusCode::OK);
    assert_eq!(list.json()["@odata.count"], 1);
    assert_eq!(list.json()["value"][0]["id"], wood.as_str());
    let list = app.get(&format!("{ORGS}?$orderby=displayName%20desc&$select=displayName,state")).await.json();
    let names: Vec<&str> =
        list["value"].as_array().unwrap().iter().map(|o| o["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Woodgrove", "Tailspin", "Fabrikam"]);
    assert!(list["value"][0].get("identitySources").is_none(), "$select");
    let page = app.get(&format!("{ORGS}?$top=2&$count=true")).await.json();
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    let next = crate::app::path_of(page["@odata.nextLink"].as_str().unwrap());
    let rest = app.get(&next).await.json();
    assert_eq!(rest["value"][0]["id"], wood.as_str(), "the $skiptoken page");
    assert_eq!(rest["@odata.count"], 3);
    let found = app.get(&format!("{ORGS}?$search=%22fabri%22")).await.json();
    assert_eq!(found["value"].as_array().unwrap().len(), 1);
    let found = app.get(&format!("{ORGS}?$filter=contains(tolower(displayName),'tail')")).await.json();
    assert_eq!(found["value"][0]["id"], tail.as_str());
    let count = app.get(&format!("{ORGS}/$count")).await;
    assert_eq!((count.status, count.text.as_str()), (StatusCode::OK, "3"));
    app.get(&format!("{ORGS}?$filter=colour%20eq%20'red'")).await.expect_error(StatusCode::BAD_REQUEST);
    app.get(&format!("{ORGS}?$expand=members")).await.expect_error(StatusCode::BAD_REQUEST);

    // PATCH: 204, then read back; identity sources replaced whole.
    let r = app
        .patch(
            &format!("{ORGS}/{wood}"),
            &json!({"state": "configured", "description": "now configured",
            "identitySources": [domain("woodgrove.example"), domain("woodgrove.test")]}),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    let w = app.get(&format!("{ORGS}/{wood}")).await.json();
    assert_eq!((w["state"].as_str(), w["description"].as_str()), (Some("configured"), Some("now configured")));
    assert_eq!(w["identitySources"].as_array().unwrap().len(), 2);

    // Clear errors, never a 5xx; a domain (or tenant) belongs to one organization.
    for (body, status, needle) in [
        (json!({"displayName": "X"}), StatusCode::BAD_REQUEST, "identitySources"),
        (json!({"displayName": "X", "identitySources": []}), StatusCode::BAD_REQUEST, "at least one"),
        (
            json!({"displayName": "X", "identitySources": [{"domainName": "x.example"}]}),
            StatusCode::BAD_REQUEST,
            "@odata.type",
        ),
        (
            json!({"displayName": "X", "identitySources": [{"@odata.type": "#microsoft.graph.everyone"}]}),
            StatusCode::BAD_REQUEST,
            "not an identity source",
        ),
        (
            json!({"displayName": "X", "identitySources": [domain("not a domain")]}),
            StatusCode::BAD_REQUEST,
            "DNS domain",
        ),
        (
            json!({"displayName": "X", "identitySources": [{"@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": "t1"}]}),
            StatusCode::BAD_REQUEST,
            "GUID",
        ),
        (
            json!({"displayName": "X", "identitySources": [domain("x.example")], "state": "unknownFutureValue"}),
            StatusCode::BAD_REQUEST,
            "configured",
        ),
        (
            json!({"displayName": "X", "identitySources": [domain("x.example")], "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (json!({"displayName": "", "identitySources": [domain("x.example")]}), StatusCode::BAD_REQUEST, "displayName"),
        (json!({"identitySources": [domain("x.example")]}), StatusCode::BAD_REQUEST, "displayName"),
        (json!({"displayName": "X", "identitySources": [domain("FABRIKAM.com")]}), StatusCode::CONFLICT, "Fabrikam"),
        (
            json!({"displayName": "X", "identitySources": [{"@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": tenant}]}),
            StatusCode::CONFLICT,
            "tenant",
        ),
        (
            json!({"displayName": "X", "identitySources": [domain("x.example"), domain("X.example")]}),
            StatusCode::BAD_REQUEST,
            "twice",
        ),
    ] {
        let r = app.post(ORGS, &body).await;
        r.expect_error(status);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(needle), "{body}: {}", r.text);
    }
    let r = app.patch(&format!("{ORGS}/{tail}"), &json!({"identitySources": [domain("woodgrove.test")]})).await;
    r.expect_error(StatusCode::CONFLICT);
    assert!(r.text.contains("Woodgrove"), "{}", r.text);
    app.patch(&format!("{ORGS}/{tail}"), &json!({"identitySources": null})).await.expect_error(StatusCode::BAD_REQUEST);
    app.patch(&format!("{ORGS}/{tail}"), &json!({"state": "sideways"})).await.expect_error(StatusCode::BAD_REQUEST);
    app.get(&format!("{ORGS}/not-a-guid")).await.expect_error(StatusCode::BAD_REQUEST);
    app.get(&format!("{ORGS}/{UNKNOWN}")).await.expect_error(StatusCode::NOT_FOUND);
    app.patch(&format!("{ORGS}/{UNKNOWN}"), &json!({"description": "x"})).await.expect_error(StatusCode::NOT_FOUND);
    app.delete(&format!("{ORGS}/{UNKNOWN}")).await.expect_error(StatusCode::NOT_FOUND);
    let stale = app
        .send(
            Method::PATCH,
            &format!("{ORGS}/{tail}"),
            Some(ADMIN),
            &[("content-type", "application/json"), ("if-match", "W/\"1\"")],
            json!({"description": "x"}).to_string(),
        )
        .await;
    stale.expect_error(StatusCode::PRECONDITION_FAILED);

    // Sponsors through $ref: internal ones from the directory, external ones from the partner.
    let (inside, _) = person(&app, "irene@contoso.com", None).await;
    let (outside, _) = person(&app, "oscar@contoso.com", Some("oscar@fabrikam.com")).await;
    let to = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{id}")});
    app.post(&format!("{ORGS}/{fab}/internalSponsors/$ref"), &to(&inside)).await.expect(StatusCode::NO_CONTENT);
    app.post(&format!("{ORGS}/{fab}/externalSponsors/$ref"), &to(&outside)).await.expect(StatusCode::NO_CONTENT);
    app.post(&format!("{ORGS}/{fab}/internalSponsors/$ref"), &to(&inside)).await.expect_error(StatusCode::CONFLICT);
    app.post(&format!("{ORGS}/{fab}/internalSponsors/$ref"), &to(UNKNOWN)).await.expect_error(StatusCode::NOT_FOUND);
    app.post(&format!("{ORGS}/{UNKNOWN}/internalSponsors/$ref"), &to(&inside))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    let wrong = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/groups/{inside}")});
    app.post(&format!("{ORGS}/{fab}/internalSponsors/$ref"), &wrong).await.expect_error(StatusCode::BAD_REQUEST);
    app.post(&format!("{ORGS}/{fab}/internalSponsors/$ref"), &json!({})).await.expect_error(StatusCode::BAD_REQUEST);
    let internal = app.get(&format!("{ORGS}/{fab}/internalSponsors?$select=id,displayName")).await;
    internal.expect(StatusCode::OK);
    assert_eq!(internal.json()["value"].as_array().unwrap().len(), 1);
    assert_eq!(internal.json()["value"][0]["id"], inside.as_str());
    assert_eq!(internal.json()["value"][0]["@odata.type"], "#microsoft.graph.user");
    let external = app.get(&format!("{ORGS}/{fab}/externalSponsors")).await.json();
    assert_eq!(external["value"][0]["id"], outside.as_str());
    let expanded = app.get(&format!("{ORGS}/{fab}?$expand=internalSponsors($select=id),externalSponsors")).await.json();
    assert_eq!(expanded["internalSponsors"][0]["id"], inside.as_str());
    assert_eq!(expanded["externalSponsors"][0]["id"], outside.as_str());
    app.delete(&format!("{ORGS}/{fab}/externalSponsors/{outside}/$ref")).await.expect(StatusCode::NO_CONTENT);
    app.delete(&format!("{ORGS}/{fab}/externalSponsors/{outside}/$ref")).await.expect_error(StatusCode::NOT_FOUND);
    assert!(app.get(&format!("{ORGS}/{fab}/externalSponsors")).await.json()["value"].as_array().unwrap().is_empty());

    // Deletion is refused while a policy names the organization; a policy cannot name a missing one.
    let cat = app.catalog("Partners").await;
    let pkg = app.package(&cat, "Partner portal").await;
    let bad = json!({"accessPackage": {"id": pkg}, "displayName": "P", "allowedTargetScope": "specificConnectedOrganizationUsers"});
    for (targets, needle) in [
        (
            json!([{"@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": UNKNOWN}]),
            "does not exist",
        ),
        (
            json!([{"@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": "fabrikam"}]),
            "GUID",
        ),
        (json!([{"@odata.type": "#microsoft.graph.connectedOrganizationMembers"}]), "connectedOrganizationId"),
    ] {
        let mut body = bad.clone();
        body["specificAllowedTargets"] = targets;
        let r = app.post(&format!("{EM}/assignmentPolicies"), &body).await;
        r.expect_error(StatusCode::BAD_REQUEST);
        assert!(r.text.contains(needle), "{}", r.text);
    }
    let pol = policy(&app, &pkg, "specificConnectedOrganizationUsers", &[&fab], json!({})).await;
    let r = app.delete(&format!("{ORGS}/{fab}")).await;
    r.expect_error(StatusCode::CONFLICT);
    assert!(r.text.contains("policy"), "{}", r.text);
    app.delete(&format!("{EM}/assignmentPolicies/{pol}")).await.expect(StatusCode::NO_CONTENT);
    app.delete(&format!("{ORGS}/{fab}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("{ORGS}/{fab}")).await.expect_error(StatusCode::NOT_FOUND);
    // Its domain is free again.
    organization(&app, "Fabrikam II", &["fabrikam.com"], "configured").await;

    // Administrators only.
    let (_, token) = app.person("nosy@contoso.com").await;
    app.get_as(&token, ORGS).await.expect_error(StatusCode::FORBIDDEN);
    app.json_as(&token, Method::POST, ORGS, &json!({"displayName": "X", "identitySources": [domain("y.example")]}))
        .await
        .expect_error(StatusCode::FORBIDDEN);
    app.get_as(&token, SETTINGS).await.expect_error(StatusCode::FORBIDDEN);

    // Audited with Entra's activity names, as the organization's history.
    let events = app.services.store.events_of(&wood).await.unwrap();
    let names: Vec<Activity> = events.iter().map(|e| e.activity).collect();
    assert_eq!(names, vec![Activity::CreateConnectedOrganization, Activity::UpdateConnectedOrganization]);
    let events = app.services.store.events_of(&fab).await.unwrap();
    let names: Vec<Activity> = events.iter().map(|e| e.activity).collect();
    assert!(names.contains(&Activity::AssignInternalSponsor) && names.contains(&Activity::RemoveExternalSponsor));
    assert_eq!(names.last(), Some(&Activity::DeleteConnectedOrganization));
    app.assert_no_5xx();
}

#[tokio::test]
async fn settings_read_and_patch() {
    let app = TestApp::new().await;
    let r = app.get(SETTINGS).await;
    r.expect(StatusCode::OK);
    let v = r.json();
    assert_eq!(v["@odata.type"], "#microsoft.graph.entitlementManagementSettings");
    assert_eq!(v["externalUserLifecycleAction"], "blockSignInAndDelete", "the default");
    assert_eq!(v["durationUntilExternalUserDeletedAfterBlocked"], "P30D", "the default");
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()));
    // Python's timedelta strings, as msgraph-sdk sends them, and ISO 8601.
    app.patch(SETTINGS, &json!({"durationUntilExternalUserDeletedAfterBlocked": "10 days, 0:00:00"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.patch(SETTINGS, &json!({"externalUserLifecycleAction": "BlockSignIn"})).await.expect(StatusCode::NO_CONTENT);
    let v = app.get(&format!("{SETTINGS}?$select=externalUserLifecycleAction")).await.json();
    assert_eq!(v["externalUserLifecycleAction"], "blockSignIn");
    assert!(v.get("durationUntilExternalUserDeletedAfterBlocked").is_none(), "$select");
    let v = app.get(SETTINGS).await.json();
    assert_eq!(v["durationUntilExternalUserDeletedAfterBlocked"], "P10D");
    for (bad, needle) in [
        (json!({"externalUserLifecycleAction": "deleteAtOnce"}), "externalUserLifecycleAction"),
        (json!({"externalUserLifecycleAction": "unknownFutureValue"}), "externalUserLifecycleAction"),
        (json!({"durationUntilExternalUserDeletedAfterBlocked": "soon"}), "duration"),
        (json!({"durationUntilExternalUserDeletedAfterBlocked": 30}), "duration"),
        (json!({"durationUntilExternalUserDeletedAfterBlocked": "-P1D"}), "negative"),
        (json!({"daysUntilExternalUserDeletedAfterBlocked": 30}), "daysUntilExternalUserDeletedAfterBlocked"),
    ] {
        let r = app.patch(SETTINGS, &bad).await;
        r.expect_error(StatusCode::BAD_REQUEST);
        assert!(r.text.contains(needle), "{bad}: {}", r.text);
    }
    assert_eq!(app.get(SETTINGS).await.json()["externalUserLifecycleAction"], "blockSignIn", "refused changes left it");
    let events = app.services.store.events_of(steward_domain::external::SETTINGS_ID).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.activity == Activity::UpdateTenantSetting));
    app.assert_no_5xx();
}

/// The packages a user may request (`filterByCurrentUser(on='allowedRequestor')`), by name.
async fn requestable(app: &TestApp, token: &str) -> Vec<String> {
    let r = app.get_as(token, &format!("{EM}/accessPackages/filterByCurrentUser(on='allowedRequestor')")).await;
    r.expect(StatusCode::OK);
    let mut names: Vec<String> =
        r.json()["value"].as_array().unwrap().iter().map(|p| p["displayName"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn who_may_request_under_each_connected_organization_scope() {
    let app = TestApp::new().await;
    let fabrikam = organization(&app, "Fabrikam", &["fabrikam.com"], "configured").await;
    let woodgrove = organization(&app, "Woodgrove", &["woodgrove.example"], "proposed").await;
    let cat = app.catalog("Partners").await;
    let specific = app.package(&cat, "Specific").await;
    let configured = app.package(&cat, "Configured").await;
    let external = app.package(&cat, "External").await;
    policy(&app, &specific, "specificConnectedOrganizationUsers", &[&woodgrove.to_uppercase()], json!({})).await;
    policy(&app, &configured, "allConfiguredConnectedOrganizationUsers", &[], json!({})).await;
    policy(&app, &external, "allExternalUsers", &[], json!({})).await;

    let (_, member) = person(&app, "mia@fabrikam.com", None).await;
    let (_, of_fabrikam) = person(&app, "fred@contoso.com", Some("Fred@Fabrikam.com")).await;
    // An Entra-style guest userPrincipalName places them by the invited address's domain.
    let (wendy, of_woodgrove) = person(&app, "wendy_woodgrove.example#EXT#@contoso.com", None).await;
    app.patch(&format!("/v1.0/users/{wendy}"), &json!({"userType": "Guest"})).await.expect(StatusCode::NO_CONTENT);
    let (_, of_nobody) = person(&app, "nora@contoso.com", Some("nora@elsewhere.example")).await;

    assert!(requestable(&app, &member).await.is_empty(), "a member belongs to no connected organization");
    assert_eq!(requestable(&app, &of_fabrikam).await, vec!["Configured", "External"]);
    assert_eq!(requestable(&app, &of_woodgrove).await, vec!["External", "Specific"], "proposed: named only");
    assert_eq!(requestable(&app, &of_nobody).await, vec!["External"], "any guest");

    // Requests follow the same rules.
    let ask = |pkg: &str| json!({"requestType": "userAdd", "assignment": {"accessPackageId": pkg}});
    let reqs = format!("{EM}/assignmentRequests");
    app.json_as(&of_woodgrove, Method::POST, &reqs, &ask(&specific)).await.expect(StatusCode::CREATED);
    app.json_as(&of_fabrikam, Method::POST, &reqs, &ask(&specific)).await.expect_error(StatusCode::FORBIDDEN);
    app.json_as(&of_nobody, Method::POST, &reqs, &ask(&configured)).await.expect_error(StatusCode::FORBIDDEN);
    app.json_as(&member, Method::POST, &reqs, &ask(&external)).await.expect_error(StatusCode::FORBIDDEN);
    app.json_as(&of_fabrikam, Method::POST, &reqs, &ask(&configured)).await.expect(StatusCode::CREATED);

    // The organization's state and domains are read at request time.
    app.patch(&format!("{ORGS}/{woodgrove}"), &json!({"state": "configured"})).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(requestable(&app, &of_woodgrove).await, vec!["Configured", "External", "Specific"]);
    app.patch(&format!("{ORGS}/{fabrikam}"), &json!({"identitySources": [domain("fabrikam.net")]}))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(requestable(&app, &of_fabrikam).await, vec!["External"], "fabrikam.com is no partner's any more");
    app.assert_no_5xx();
}

/// An approval stage whose approvers are the target's connected organization's internal sponsors.
fn sponsor_approval() -> Value {
    json!({"requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [{"durationBeforeAutomaticDenial": "P14D",
        "primaryApprovers": [{"@odata.type": "#microsoft.graph.internalSponsors"}]}]}})
}

#[tokio::test]
async fn a_guest_is_created_when_a_request_for_them_is_approved() {
    let app = TestApp::new().await;
    let fabrikam = organization(&app, "Fabrikam", &["fabrikam.com"], "configured").await;
    organization(&app, "Proposed Ltd", &["proposed.example"], "proposed").await;
    let (sponsor, sponsor_token) = person(&app, "sam@contoso.com", None).await;
    app.post(
        &format!("{ORGS}/{fabrikam}/internalSponsors/$ref"),
        &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{sponsor}")}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let cat = app.catalog("Partners").await;
    let direct = app.package(&cat, "Partner portal").await;
    let direct_policy = policy(&app, &direct, "allConfiguredConnectedOrganizationUsers", &[], json!({})).await;
    let members_only = app.package(&cat, "Staff only").await;
    let members_policy = policy(&app, &members_only, "allMemberUsers", &[], json!({})).await;

    // adminAdd of someone not in the directory: the guest exists with the assignment.
    let reqs = format!("{EM}/assignmentRequests");
    let r = app.post(&reqs, &admin_add(&direct, &direct_policy, "Jane.Doe@Fabrikam.com", "Jane Doe")).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.json()["state"], "delivered", "{}", r.text);
    let jane = app.get("/v1.0/users/Jane.Doe@fabrikam.com").await;
    jane.expect(StatusCode::OK);
    let jane = jane.json();
    assert_eq!(jane["userType"], "Guest");
    assert_eq!(jane["displayName"], "Jane Doe");
    assert_eq!(jane["mail"], "Jane.Doe@fabrikam.com");
    assert_eq!(jane["accountEnabled"], true);
    let jane_id = jane["id"].as_str().unwrap().to_owned();
    let a =
        app.get(&format!("{EM}/assignments?$expand=target&$filter=target/objectId%20eq%20'{jane_id}'")).await.json();
    assert_eq!(a["value"].as_array().unwrap().len(), 1, "{a}");
    let target = &a["value"][0]["target"];
    assert_eq!(
        (target["subjectLifecycle"].as_str(), target["principalName"].as_str()),
        (Some("governed"), Some("Jane.Doe@fabrikam.com"))
    );
    let events = app.services.store.events_of(r.json()["id"].as_str().unwrap()).await.unwrap();
    assert!(events.iter().any(|e| e.activity == Activity::InviteExternalUser), "{events:?}");
    // The same person again (any case) is the guest that exists now.
    let again = app.post(&reqs, &admin_add(&direct, &direct_policy, "jane.doe@FABRIKAM.com", "Jane")).await;
    again.expect_error(StatusCode::CONFLICT);
    assert!(again.text.contains("already has"), "{}", again.text);

    // Refused, clearly, and nobody is created.
    for (body, status, needle) in [
        (
            admin_add(&direct, &direct_policy, "joe@unknown.example", "Joe"),
            StatusCode::FORBIDDEN,
            "no connected organization",
        ),
        (admin_add(&direct, &direct_policy, "pat@proposed.example", "Pat"), StatusCode::FORBIDDEN, "proposed"),
        (admin_add(&members_only, &members_policy, "max@fabrikam.com", "Max"), StatusCode::FORBIDDEN, "member"),
        (admin_add(&direct, &direct_policy, "not an email", "X"), StatusCode::BAD_REQUEST, "email"),
    ] {
        let r = app.post(&reqs, &body).await;
        r.expect_error(status);
        assert!(r.text.contains(needle), "{body}: {}", r.text);
    }
    for upn in ["joe@unknown.example", "pat@proposed.example", "max@fabrikam.com"] {
        app.get(&format!("/v1.0/users/{upn}")).await.expect_error(StatusCode::NOT_FOUND);
    }
    let (_, someone) = app.person("ursula@contoso.com").await;
    let r = app
        .json_as(&someone, Method::POST, &reqs,
            &json!({"requestType": "userAdd", "assignment": {"accessPackageId": direct, "target": {"email": "x@fabrikam.com"}}}))
        .await;
    r.expect_error(StatusCode::BAD_REQUEST);

    // A self-request by an external identity (what sign-in through a provider calls), with an
    // approval by the organization's internal sponsor: the guest is created on approval.
    let approved_pkg = app.package(&cat, "Partner data room").await;
    policy(&app, &approved_pkg, "specificConnectedOrganizationUsers", &[&fabrikam], sponsor_approval()).await;
    let input = || RequestInput { access_package_id: Some(approved_pkg.parse().unwrap()), ..RequestInput::default() };
    let req =
        requests::request_as_external(&app.services, "john@fabrikam.com", Some("John"), None, input()).await.unwrap();
    assert_eq!(req.state.as_str(), "pendingApproval");
    app.get("/v1.0/users/john@fabrikam.com").await.expect_error(StatusCode::NOT_FOUND);
    let stages = app.get_as(&sponsor_token, &format!("{EM}/accessPackageAssignmentApprovals/{}/stages", req.id)).await;
    stages.expect(StatusCode::OK);
    let stage = stages.json()["value"][0]["id"].as_str().unwrap().to_owned();
    app.json_as(
        &sponsor_token,
        Method::PATCH,
        &format!("{EM}/accessPackageAssignmentApprovals/{}/stages/{stage}", req.id),
        &json!({"reviewResult": "Approve", "justification": "Known partner"}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let john = app.get("/v1.0/users/john@fabrikam.com").await;
    john.expect(StatusCode::OK);
    assert_eq!(john.json()["id"], req.target_id.to_string().as_str(), "the id the request named");
    assert_eq!(john.json()["displayName"], "John");
    let r = app.get(&format!("{EM}/assignmentRequests/{}", req.id)).await.json();
    assert_eq!(r["state"], "delivered", "{r}");
    // Someone of no connected organization, or a member, cannot ask this way.
    let e = requests::request_as_external(&app.services, "eve@unknown.example", None, None, input()).await.unwrap_err();
    assert!(matches!(e, steward_app::AppError::Forbidden(_)), "{e}");
    let e = requests::request_as_external(&app.services, "ursula@contoso.com", None, None, input()).await.unwrap_err();
    assert!(matches!(e, steward_app::AppError::Forbidden(_)), "{e}");
    // A guest already in the directory asks as themselves (a second package: one request each).
    let again =
        requests::request_as_external(&app.services, "jane.doe@fabrikam.com", None, None, input()).await.unwrap();
    assert_eq!(again.target_id.to_string(), jane_id);
    app.assert_no_5xx();
}

#[tokio::test]
async fn a_guests_last_assignment_ends_then_they_are_blocked_and_deleted_after_the_configured_time() {
    let app = TestApp::with_test_clock(START).await;
    let fabrikam = organization(&app, "Fabrikam", &["fabrikam.com"], "configured").await;
    app.patch(
        SETTINGS,
        &json!({"externalUserLifecycleAction": "blockSignInAndDelete",
        "durationUntilExternalUserDeletedAfterBlocked": "P10D"}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);

    // Package A grants a group's membership; package B grants nothing and lasts seven days.
    let cat = app.catalog("Partners").await;
    let group = app.group("Partner portal users").await;
    app.add_group(&cat, &group).await.expect(StatusCode::CREATED);
    let a_pkg = app.package(&cat, "Partner portal").await;
    let roles = app
        .get(&format!("{EM}/catalogs/{cat}/resourceRoles?$filter=originId%20eq%20'Member_{group}'&$expand=resource($expand=scopes)"))
        .await
        .json();
    let role = &roles["value"][0];
    app.post(
        &format!("{EM}/accessPackages/{a_pkg}/resourceRoleScopes"),
        &json!({"role": {"id": role["id"], "originId": role["originId"], "originSystem": "AadGroup",
            "resource": {"id": role["resource"]["id"]}},
            "scope": {"id": role["resource"]["scopes"][0]["id"], "originId": group, "originSystem": "AadGroup"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let a_policy = policy(&app, &a_pkg, "specificConnectedOrganizationUsers", &[&fabrikam], json!({})).await;
    let b_pkg = app.package(&cat, "Partner wiki").await;
    let b_policy = policy(
        &app,
        &b_pkg,
        "allConfiguredConnectedOrganizationUsers",
        &[],
        json!({"expiration": {"type": "afterDuration", "duration": "P7D"}}),
    )
    .await;
    let reqs = format!("{EM}/assignmentRequests");

    let invited = app.post(&reqs, &admin_add(&a_pkg, &a_policy, "jane@fabrikam.com", "Jane")).await;
    invited.expect(StatusCode::CREATED);
    drain(&app).await;
    let jane = app.get("/v1.0/users/jane@fabrikam.com").await.id();
    let path = format!("/v1.0/users/{jane}");
    assert_eq!(app.get(&path).await.json()["accountEnabled"], true);
    let members = app.get(&format!("/v1.0/groups/{group}/members")).await.json();
    assert_eq!(members["value"][0]["id"], jane.as_str(), "delivered into the group");
    let assignment =
        app.get(&format!("{EM}/assignments?$filter=target/objectId%20eq%20'{jane}'")).await.json()["value"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();

    // Her last assignment ends (removed): blocked at that moment, revoked from the group.
    app.post(&reqs, &json!({"requestType": "adminRemove", "assignment": {"id": assignment}}))
        .await
        .expect(StatusCode::CREATED);
    drain(&app).await;
    assert_eq!(app.get(&path).await.json()["accountEnabled"], false, "sign-in blocked");
    assert!(app.get(&format!("/v1.0/groups/{group}/members")).await.json()["value"].as_array().unwrap().is_empty());
    let record = app.services.store.get_external_user(jane.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(record.delete_at.map(|t| t.to_string()), Some("2031-03-11T09:00:00Z".to_owned()), "ten days later");

    // Five days on she gets package B: unblocked, her deletion cancelled.
    advance(&app, "P5D").await;
    let b_req = app.post(&reqs, &admin_add(&b_pkg, &b_policy, "JANE@fabrikam.com", "Jane")).await;
    b_req.expect(StatusCode::CREATED);
    drain(&app).await;
    assert_eq!(app.get(&path).await.json()["accountEnabled"], true, "reinstated by a new assignment");
    // Past the first planned deletion: still there.
    advance(&app, "P6D").await;
    drain(&app).await;
    app.get(&path).await.expect(StatusCode::OK);
    assert_eq!(app.get(&path).await.json()["accountEnabled"], true);

    // B expires (seven days after it began): blocked again, deletion ten days from then.
    advance(&app, "P1D").await;
    drain(&app).await;
    let ended = app
        .get(&format!("{EM}/assignments?$filter=target/objectId%20eq%20'{jane}'%20and%20state%20eq%20'expired'"))
        .await;
    let statuses: Vec<Value> = ended.json()["value"].as_array().unwrap().iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, vec![json!("Removed"), json!("Expired")], "{}", ended.text);
    assert_eq!(app.get(&path).await.json()["accountEnabled"], false, "blocked when B expired");
    advance(&app, "P9D").await;
    drain(&app).await;
    app.get(&path).await.expect(StatusCode::OK);
    // The configured time has passed: deleted, with what hung on her.
    advance(&app, "P1D").await;
    drain(&app).await;
    app.get(&path).await.expect_error(StatusCode::NOT_FOUND);
    app.get("/v1.0/users/jane@fabrikam.com").await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(app.services.store.get_external_user(jane.parse().unwrap()).await.unwrap(), None);

    // Every step is audited: the guest's own history, and the requests that invited and
    // reinstated her.
    let store = &app.services.store;
    let history: Vec<Activity> = store.events_of(&jane).await.unwrap().iter().map(|e| e.activity).collect();
    assert_eq!(history, vec![Activity::BlockExternalUser, Activity::BlockExternalUser, Activity::DeleteExternalUser]);
    let of = |r: &crate::app::Resp| r.id();
    let invite = store.events_of(&of(&invited)).await.unwrap();
    assert!(invite.iter().any(|e| e.activity == Activity::InviteExternalUser && e.target_id == jane), "{invite:?}");
    let reinstate = store.events_of(&of(&b_req)).await.unwrap();
    assert!(reinstate.iter().any(|e| e.activity == Activity::UnblockExternalUser), "{reinstate:?}");

    // A later request for her (blockSignIn only now) invites her again, under the same id.
    app.patch(SETTINGS, &json!({"externalUserLifecycleAction": "blockSignIn"})).await.expect(StatusCode::NO_CONTENT);
    app.post(&reqs, &admin_add(&a_pkg, &a_policy, "jane@fabrikam.com", "Jane")).await.expect(StatusCode::CREATED);
    drain(&app).await;
    assert_eq!(app.get(&path).await.json()["accountEnabled"], true);
    app.assert_no_5xx();
}
