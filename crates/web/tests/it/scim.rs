//! The inbound SCIM 2.0 server at `/scim/v2`, over HTTP: its own token, discovery, users and
//! groups (create, read, replace, patch in the forms Entra ID sends, delete), filters, paging
//! and sorting, attribute selection, entity tags (304, 412), SCIM's error shape for every
//! mistake, the audit trail, and what provisioning does to access: a deactivated user loses
//! what Steward delivered (in the built-in directory and in a real PostgreSQL), and SCIM's
//! changes re-evaluate automatic assignment as Graph's do.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::lifecycle::worker::Worker;

use crate::app::{ADMIN, EM, Resp, TestApp};
use crate::connections::{target, url_password};

const TOKEN: &str = "scim-token-for-the-tests-0123456789";
const USERS: &str = "/scim/v2/Users";
const GROUPS: &str = "/scim/v2/Groups";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn call(app: &TestApp, method: Method, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
    let mut h = vec![("content-type", "application/scim+json")];
    h.extend_from_slice(headers);
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    app.send(method, path, Some(TOKEN), &h, body).await
}

async fn get(app: &TestApp, path: &str) -> Resp {
    call(app, Method::GET, path, None, &[]).await
}

async fn post(app: &TestApp, path: &str, body: &Value) -> Resp {
    call(app, Method::POST, path, Some(body), &[]).await
}

async fn patch(app: &TestApp, path: &str, ops: Value) -> Resp {
    call(app, Method::PATCH, path, Some(&json!({"schemas": [PATCH_OP], "Operations": ops})), &[]).await
}

/// Asserts SCIM's error shape with this status (and `scimType`, when given).
#[track_caller]
fn scim_error(r: &Resp, status: StatusCode, scim_type: Option<&str>) -> String {
    assert_eq!(r.status, status, "body: {}", r.text);
    assert!(r.header("content-type").starts_with("application/scim+json"), "{}", r.header("content-type"));
    let v = r.json();
    assert_eq!(v["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{v}");
    assert_eq!(v["status"], json!(status.as_u16().to_string()), "status is a string: {v}");
    assert_eq!(v["scimType"].as_str(), scim_type, "{v}");
    let detail = v["detail"].as_str().unwrap_or_default().to_owned();
    assert!(!detail.is_empty(), "{v}");
    detail
}

async fn create_user(app: &TestApp, user_name: &str, extra: Value) -> Value {
    let mut body = json!({"schemas": [USER], "userName": user_name});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let r = post(app, USERS, &body).await;
    r.expect(StatusCode::CREATED);
    r.json()
}

#[tokio::test]
async fn scim_has_its_own_token() {
    // Not configured: every request is refused, saying why.
    let off = TestApp::new().await;
    for token in [Some(TOKEN), Some(ADMIN), None] {
        let r = off.send(Method::GET, USERS, token, &[], Body::empty()).await;
        let d = scim_error(&r, StatusCode::UNAUTHORIZED, None);
        assert!(d.contains("not enabled") && d.contains("STEWARD_SCIM_TOKEN"), "{d}");
    }

    let app = TestApp::with_scim(TOKEN).await;
    for (token, says) in [(None, "Bearer"), (Some(ADMIN), "not this server's SCIM token"), (Some("x"), "SCIM token")] {
        let r = app.send(Method::GET, USERS, token, &[], Body::empty()).await;
        let d = scim_error(&r, StatusCode::UNAUTHORIZED, None);
        assert!(d.contains(says), "{d}");
        assert!(r.header("www-authenticate").starts_with("Bearer"), "{:?}", r.headers);
    }
    // A Graph token does not work here, and the SCIM token does not work on the Graph API.
    let (_, personal) = app.user_with_token().await;
    scim_error(
        &app.send(Method::GET, USERS, Some(&personal), &[], Body::empty()).await,
        StatusCode::UNAUTHORIZED,
        None,
    );
    app.get_as(TOKEN, "/v1.0/users").await.expect_error(StatusCode::UNAUTHORIZED);
    get(&app, USERS).await.expect(StatusCode::OK);
    app.assert_no_5xx();
}

#[tokio::test]
async fn discovery_announces_what_is_supported() {
    let app = TestApp::with_scim(TOKEN).await;
    let spc = get(&app, "/scim/v2/ServiceProviderConfig").await;
    assert!(spc.header("content-type").starts_with("application/scim+json"));
    let spc = spc.json();
    for (feature, supported) in
        [("patch", true), ("bulk", false), ("filter", true), ("changePassword", false), ("sort", true), ("etag", true)]
    {
        assert_eq!(spc[feature]["supported"], json!(supported), "{feature}: {spc}");
    }
    assert_eq!(spc["filter"]["maxResults"], json!(200));
    assert_eq!(spc["authenticationSchemes"][0]["type"], json!("oauthbearertoken"));

    let schemas = get(&app, "/scim/v2/Schemas").await.json();
    assert_eq!(schemas["totalResults"], json!(6), "{schemas}");
    let user = get(&app, &format!("/scim/v2/Schemas/{USER}")).await.json();
    let names: Vec<&str> = user["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["userName", "name", "displayName", "title", "userType", "active", "emails", "addresses"]);
    get(&app, &format!("/scim/v2/Schemas/{ENTERPRISE}")).await.expect(StatusCode::OK);
    scim_error(&get(&app, "/scim/v2/Schemas/urn:nothing").await, StatusCode::NOT_FOUND, None);
    let types = get(&app, "/scim/v2/ResourceTypes").await.json();
    assert_eq!(types["Resources"][0]["schemaExtensions"][0]["schema"], json!(ENTERPRISE), "{types}");
    assert_eq!(get(&app, "/scim/v2/ResourceTypes/Group").await.json()["endpoint"], json!("/Groups"));
    // Discovery is read-only; unknown paths are SCIM 404s; everything is SCIM-shaped.
    for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        scim_error(
            &call(&app, m, "/scim/v2/ServiceProviderConfig", None, &[]).await,
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        );
    }
    scim_error(&get(&app, "/scim/v2/Nothing").await, StatusCode::NOT_FOUND, None);
    // A search at the root finds users and groups; a filter applies where it can.
    create_user(&app, "root@contoso.example", json!({"displayName": "Root"})).await;
    post(&app, "/scim/v2/Groups", &json!({"displayName": "Rooters"})).await.expect(StatusCode::CREATED);
    let all =
        post(&app, "/scim/v2/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}))
            .await;
    assert_eq!(all.json()["totalResults"], json!(2), "{}", all.text);
    let some =
        post(&app, "/scim/v2/.search", &json!({"filter": "userName sw \"root\"", "startIndex": 1, "count": 5})).await;
    assert_eq!(some.json()["Resources"][0]["displayName"], json!("Root"), "{}", some.text);
    let paged =
        post(&app, "/scim/v2/.search", &json!({"filter": "displayName sw \"Root\"", "startIndex": 2, "count": 5}))
            .await;
    assert_eq!(paged.json()["Resources"][0]["displayName"], json!("Rooters"), "{}", paged.text);
    assert_eq!(paged.json()["totalResults"], json!(2));
    scim_error(
        &post(&app, "/scim/v2/.search", &json!({"filter": "nickName eq \"x\""})).await,
        StatusCode::BAD_REQUEST,
        Some("invalidFilter"),
    );
    // SCIM is not part of the Graph API's description.
    let doc = app.get("/openapi.json").await.text;
    assert!(!doc.contains("/scim/"), "SCIM stays out of the OpenAPI document");
    app.assert_no_5xx();
}

#[tokio::test]
async fn users_are_created_read_replaced_and_deleted_as_graph_users() {
    let app = TestApp::with_scim(TOKEN).await;
    let boss = create_user(&app, "boss@contoso.example", json!({})).await;
    let boss_id = boss["id"].as_str().unwrap();
    let body = json!({
        "schemas": [USER, ENTERPRISE],
        "userName": "Ada.Lovelace@contoso.example",
        "externalId": "ext-ADA",
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada King"},
        "displayName": "Ada Lovelace",
        "title": "Analyst",
        "userType": "Employee",
        "active": true,
        "emails": [{"value": "ada@contoso.example", "type": "work", "primary": true}],
        "addresses": [{"type": "work", "locality": "London", "country": "GB", "primary": true}],
        ENTERPRISE: {"employeeNumber": "1815", "organization": "Engines Ltd", "department": "R&D",
            "manager": {"value": boss_id}},
    });
    let r = post(&app, USERS, &body).await;
    r.expect(StatusCode::CREATED);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(r.header("content-type").starts_with("application/scim+json"));
    assert!(r.header("location").ends_with(&format!("/scim/v2/Users/{id}")), "{}", r.header("location"));
    assert_eq!(r.header("etag"), created["meta"]["version"].as_str().unwrap());
    assert!(r.header("etag").starts_with("W/\""));
    assert_eq!(created["meta"]["resourceType"], json!("User"));
    for k in ["userName", "externalId", "name", "displayName", "title", "userType", "active"] {
        assert_eq!(created[k], body[k], "{k}: {created}");
    }
    assert_eq!(created["emails"], json!([{"value": "ada@contoso.example", "type": "work"}]));
    assert_eq!(created["addresses"], json!([{"type": "work", "locality": "London", "country": "GB"}]));
    assert_eq!(created[ENTERPRISE]["department"], json!("R&D"));
    assert!(created[ENTERPRISE]["manager"]["$ref"].as_str().unwrap().ends_with(&format!("/Users/{boss_id}")));

    // The same user through Graph.
    let g = app.get(&format!("/v1.0/users/{id}")).await.json();
    for (k, v) in [
        ("userPrincipalName", "Ada.Lovelace@contoso.example"),
        ("displayName", "Ada Lovelace"),
        ("mail", "ada@contoso.example"),
        ("jobTitle", "Analyst"),
        ("department", "R&D"),
        ("employeeId", "1815"),
        ("companyName", "Engines Ltd"),
        ("city", "London"),
        ("country", "GB"),
        ("userType", "Member"),
    ] {
        assert_eq!(g[k], json!(v), "{k}: {g}");
    }
    assert_eq!(g["accountEnabled"], json!(true));
    assert_eq!(app.get(&format!("/v1.0/users/{id}/manager")).await.json()["id"], json!(boss_id));

    let read = get(&app, &format!("{USERS}/{id}")).await;
    assert_eq!(read.json(), created, "read back as created");

    // userName is unique regardless of case.
    let dup = post(&app, USERS, &json!({"userName": "ADA.LOVELACE@contoso.example"})).await;
    let d = scim_error(&dup, StatusCode::CONFLICT, Some("uniqueness"));
    assert!(d.contains("already taken"), "{d}");

    // A replacement: what it leaves out is gone, except `active`, which stays as it was.
    let put = call(
        &app,
        Method::PUT,
        &format!("{USERS}/{id}"),
        Some(&json!({"schemas": [USER], "userName": "ada@contoso.example", "displayName": "Ada"})),
        &[],
    )
    .await;
    put.expect(StatusCode::OK);
    let replaced = put.json();
    assert_eq!(replaced["userName"], json!("ada@contoso.example"));
    assert_eq!(replaced["active"], json!(true));
    for gone in ["externalId", "name", "title", "emails", "addresses", ENTERPRISE] {
        assert!(replaced.get(gone).is_none(), "{gone}: {replaced}");
    }
    assert_ne!(put.header("etag"), r.header("etag"), "a change changes the entity tag");
    assert!(app.get(&format!("/v1.0/users/{id}/manager")).await.status == StatusCode::NOT_FOUND);

    // Unknown ids, GUID or not, are 404.
    for bad in ["6f1c2d3e-0000-4000-8000-00000000000a", "not-a-guid"] {
        scim_error(&get(&app, &format!("{USERS}/{bad}")).await, StatusCode::NOT_FOUND, None);
    }
    call(&app, Method::DELETE, &format!("{USERS}/{id}"), None, &[]).await.expect(StatusCode::NO_CONTENT);
    scim_error(&get(&app, &format!("{USERS}/{id}")).await, StatusCode::NOT_FOUND, None);
    scim_error(&call(&app, Method::DELETE, &format!("{USERS}/{id}"), None, &[]).await, StatusCode::NOT_FOUND, None);
    app.get(&format!("/v1.0/users/{id}")).await.expect_error(StatusCode::NOT_FOUND);

    // Every change is audited with the SCIM client as the initiator.
    let events = app.services.store.events_of(boss_id).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].activity, steward_domain::audit::Activity::AddUser);
    assert_eq!(events[0].initiator, steward_domain::audit::Initiator::App("scim-client".into()));
    let events = app.services.store.events_of(&id).await.unwrap();
    let activities: Vec<_> = events.iter().map(|e| e.activity).collect();
    use steward_domain::audit::Activity::{AddUser, DeleteUser, UpdateUser};
    assert_eq!(activities, [AddUser, UpdateUser, DeleteUser]);
    assert!(events[1].detail.as_deref().unwrap().contains("userName"), "{:?}", events[1].detail);
    app.assert_no_5xx();
}

#[tokio::test]
async fn filters_pages_sorting_and_attribute_selection() {
    let app = TestApp::with_scim(TOKEN).await;
    for (i, (name, ext, mail, active)) in [
        ("Alice Archer", "E-1", "alice@work.example", true),
        ("Bob Baker", "e-1", "bob@home.example", false),
        ("Carol Cole", "E-3", "carol@work.example", true),
        ("Dave Drake", "E-4", "", true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut extra = json!({"displayName": name, "externalId": ext, "active": active});
        if !mail.is_empty() {
            extra["emails"] = json!([{"value": mail, "type": "work"}]);
        }
        create_user(&app, &format!("user{i}@contoso.example"), extra).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"].as_array().unwrap().iter().map(|r| r["displayName"].as_str().unwrap().to_owned()).collect()
    };
    let q = |f: &str| format!("{USERS}?filter={}&sortBy=displayName", urlencode(f));
    for (filter, want) in [
        (r#"userName eq "USER1@CONTOSO.EXAMPLE""#, vec!["Bob Baker"]),
        (r#"externalId eq "E-1""#, vec!["Alice Archer"]),
        (r#"displayName co "a""#, vec!["Alice Archer", "Bob Baker", "Carol Cole", "Dave Drake"]),
        (r#"displayName sw "c""#, vec!["Carol Cole"]),
        (r#"displayName ew "KER""#, vec!["Bob Baker"]),
        (r#"emails.value ew "@work.example""#, vec!["Alice Archer", "Carol Cole"]),
        (r#"emails[type eq "work" and value sw "bob"]"#, vec!["Bob Baker"]),
        (r#"emails pr"#, vec!["Alice Archer", "Bob Baker", "Carol Cole"]),
        (r#"not (emails pr)"#, vec!["Dave Drake"]),
        (r#"active eq false"#, vec!["Bob Baker"]),
        (r#"active eq true and (displayName sw "a" or displayName sw "d")"#, vec!["Alice Archer", "Dave Drake"]),
        (r#"externalId ne "E-1""#, vec!["Bob Baker", "Carol Cole", "Dave Drake"]),
        (
            r#"meta.lastModified gt "2000-01-01T00:00:00Z""#,
            vec!["Alice Archer", "Bob Baker", "Carol Cole", "Dave Drake"],
        ),
        (r#"meta.created lt "2000-01-01T00:00:00Z""#, vec![]),
        (r#"id eq "6f1c2d3e-0000-4000-8000-00000000000a""#, vec![]),
    ] {
        let r = get(&app, &q(filter)).await;
        r.expect(StatusCode::OK);
        let v = r.json();
        assert_eq!(names(&v), want, "{filter}: {v}");
        assert_eq!(v["totalResults"], json!(want.len()), "{filter}");
        assert_eq!(v["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
    }
    for bad in [r#"userName eq"#, r#"nickName eq "x""#, r#"active eq "perhaps""#, "((((", r#"userName zz "a""#] {
        let r = get(&app, &q(bad)).await;
        let d = scim_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"));
        assert!(!d.is_empty(), "{bad}");
    }

    // Paging: startIndex is 1-based, count bounds the page, totalResults counts them all.
    let page = get(&app, &format!("{USERS}?sortBy=userName&sortOrder=descending&startIndex=2&count=2")).await.json();
    assert_eq!(
        (page["totalResults"].clone(), page["startIndex"].clone(), page["itemsPerPage"].clone()),
        (json!(4), json!(2), json!(2))
    );
    assert_eq!(names(&page), ["Carol Cole", "Bob Baker"]);
    let none = get(&app, &format!("{USERS}?count=0")).await.json();
    assert_eq!((none["totalResults"].clone(), none["Resources"].clone()), (json!(4), json!([])));
    let past = get(&app, &format!("{USERS}?startIndex=10")).await.json();
    assert_eq!(past["itemsPerPage"], json!(0));
    scim_error(&get(&app, &format!("{USERS}?count=many")).await, StatusCode::BAD_REQUEST, Some("invalidValue"));
    scim_error(&get(&app, &format!("{USERS}?sortBy=nickName")).await, StatusCode::BAD_REQUEST, Some("invalidValue"));

    // attributes / excludedAttributes, on lists, reads and .search.
    let v = get(
        &app,
        &format!("{USERS}?attributes=userName,emails.value&filter={}", urlencode(r#"displayName eq "Alice Archer""#)),
    )
    .await
    .json();
    let alice = &v["Resources"][0];
    let mut keys: Vec<&String> = alice.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["emails", "id", "schemas", "userName"], "{alice}");
    assert_eq!(alice["emails"], json!([{"value": "alice@work.example"}]));
    let id = alice["id"].as_str().unwrap();
    let one = get(&app, &format!("{USERS}/{id}?excludedAttributes=emails,meta")).await.json();
    assert!(one.get("emails").is_none() && one.get("meta").is_none() && one.get("userName").is_some(), "{one}");
    let s = post(
        &app,
        &format!("{USERS}/.search"),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "active eq false",
            "attributes": ["displayName"], "startIndex": 1, "count": 10}),
    )
    .await;
    s.expect(StatusCode::OK);
    assert_eq!(
        s.json()["Resources"],
        json!([{"schemas": [USER], "id": s.json()["Resources"][0]["id"], "displayName": "Bob Baker"}])
    );
    app.assert_no_5xx();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn entity_tags_make_reads_conditional_and_writes_safe() {
    let app = TestApp::with_scim(TOKEN).await;
    let u = create_user(&app, "etag@contoso.example", json!({"displayName": "E"})).await;
    let path = format!("{USERS}/{}", u["id"].as_str().unwrap());
    let tag = u["meta"]["version"].as_str().unwrap().to_owned();

    let r = call(&app, Method::GET, &path, None, &[("if-none-match", &tag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.text.is_empty());
    assert_eq!(r.header("etag"), tag);
    call(&app, Method::GET, &path, None, &[("if-none-match", "W/\"other\"")]).await.expect(StatusCode::OK);

    let ops = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "T1"}]});
    let ok = call(&app, Method::PATCH, &path, Some(&ops), &[("if-match", &tag)]).await;
    ok.expect(StatusCode::OK);
    let new_tag = ok.header("etag").to_owned();
    assert_ne!(new_tag, tag);
    // The old tag no longer holds: PUT, PATCH and DELETE are refused and change nothing.
    let put = json!({"userName": "etag@contoso.example", "displayName": "Changed"});
    for (m, body) in [(Method::PUT, Some(&put)), (Method::PATCH, Some(&ops)), (Method::DELETE, None)] {
        scim_error(&call(&app, m, &path, body, &[("if-match", &tag)]).await, StatusCode::PRECONDITION_FAILED, None);
    }
    let now = get(&app, &path).await;
    assert_eq!((now.json()["title"].clone(), now.header("etag")), (json!("T1"), new_tag.as_str()));
    // A change through Graph changes the tag too.
    app.patch(&format!("/v1.0/users/{}", u["id"].as_str().unwrap()), &json!({"jobTitle": "T2"}))
        .await
        .expect(StatusCode::NO_CONTENT);
    scim_error(
        &call(&app, Method::PATCH, &path, Some(&ops), &[("if-match", &new_tag)]).await,
        StatusCode::PRECONDITION_FAILED,
        None,
    );
    call(&app, Method::DELETE, &path, None, &[("if-match", "*")]).await.expect(StatusCode::NO_CONTENT);
    app.assert_no_5xx();
}

#[tokio::test]
async fn patch_accepts_what_entra_sends_and_refuses_mistakes_whole() {
    let app = TestApp::with_scim(TOKEN).await;
    let boss = create_user(&app, "boss@contoso.example", json!({})).await;
    let boss_id = boss["id"].as_str().unwrap();
    let u = create_user(&app, "pat@contoso.example", json!({"displayName": "Pat"})).await;
    let path = format!("{USERS}/{}", u["id"].as_str().unwrap());
    let r = patch(
        &app,
        &path,
        json!([
            {"op": "Replace", "path": "displayName", "value": "Pat Smith"},
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "pat@contoso.example"},
            {"op": "Add", "path": "name.givenName", "value": "Pat"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].country", "value": "NO"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": boss_id},
            {"op": "Replace", "value": {"title": "Engineer", format!("{ENTERPRISE}:department"): "Ops", "name.familyName": "Smith"}},
            {"op": "Add", "path": "externalId", "value": "X-9"},
        ]),
    )
    .await;
    r.expect(StatusCode::OK);
    let v = r.json();
    assert_eq!(v["displayName"], json!("Pat Smith"));
    assert_eq!(v["emails"], json!([{"value": "pat@contoso.example", "type": "work"}]));
    assert_eq!(v["name"], json!({"givenName": "Pat", "familyName": "Smith"}));
    assert_eq!(v["addresses"], json!([{"type": "work", "country": "NO"}]));
    assert_eq!(v["title"], json!("Engineer"));
    assert_eq!(v[ENTERPRISE]["department"], json!("Ops"));
    assert_eq!(v[ENTERPRISE]["manager"]["value"], json!(boss_id));
    assert_eq!(v["externalId"], json!("X-9"));
    assert_eq!(get(&app, &path).await.json(), v, "the response is what is stored");

    // A PATCH with one bad operation changes nothing.
    let before = get(&app, &path).await.json();
    for (ops, status, scim_type) in [
        (
            json!([{"op": "replace", "path": "title", "value": "X"}, {"op": "replace", "path": "id", "value": "y"}]),
            400,
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "X"}, {"op": "remove", "path": "userName"}]),
            400,
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "X"}, {"op": "replace", "path": "emails[type eq", "value": "x"}]),
            400,
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "X"}, {"op": "replace", "path": "active", "value": "sometimes"}]),
            400,
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": "6f1c2d3e-0000-4000-8000-00000000000a"}]),
            400,
            "invalidValue",
        ),
        (json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": u["id"]}]), 400, "invalidValue"),
        (json!([{"op": "remove"}]), 400, "noTarget"),
        (json!([{"op": "jump", "path": "title"}]), 400, "invalidSyntax"),
        (json!([]), 400, "invalidSyntax"),
    ] {
        let r = patch(&app, &path, ops.clone()).await;
        scim_error(&r, StatusCode::from_u16(status).unwrap(), Some(scim_type));
    }
    assert_eq!(get(&app, &path).await.json(), before, "nothing of the refused patches was written");

    // Removing the manager, and a userName taken by someone else.
    let r = patch(&app, &path, json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}])).await;
    assert!(r.json()[ENTERPRISE].get("manager").is_none(), "{}", r.text);
    let r = patch(&app, &path, json!([{"op": "replace", "path": "userName", "value": "BOSS@contoso.example"}])).await;
    scim_error(&r, StatusCode::CONFLICT, Some("uniqueness"));
    app.assert_no_5xx();
}

#[tokio::test]
async fn bad_bodies_get_scim_errors_and_write_nothing() {
    let app = TestApp::with_scim(TOKEN).await;
    let raw = |ct: &'static str, body: &'static str| {
        let app = &app;
        async move { app.send(Method::POST, USERS, Some(TOKEN), &[("content-type", ct)], body).await }
    };
    scim_error(&raw("application/scim+json", "{not json").await, StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    scim_error(&raw("text/plain", "{}").await, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    scim_error(&raw("application/json", "[]").await, StatusCode::BAD_REQUEST, Some("invalidValue"));
    scim_error(&raw("application/json", "").await, StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    for (body, says) in [
        (json!({"displayName": "No name"}), "userName is required"),
        (json!({"userName": "two words"}), "spaces"),
        (json!({"userName": "a@x.io", "active": "perhaps"}), "active"),
        (json!({"userName": "a@x.io", "emails": "a@x.io"}), "emails[0]"),
        (json!({"userName": "a@x.io", "title": "t".repeat(300)}), "title"),
        (json!({"userName": "a@x.io", ENTERPRISE: {"manager": {"value": "nobody"}}}), "manager"),
        (json!({"userName": "x".repeat(200)}), "userName"),
    ] {
        let d = scim_error(&post(&app, USERS, &body).await, StatusCode::BAD_REQUEST, Some("invalidValue"));
        assert!(d.contains(says), "{body}: {d}");
    }
    // Larger than the body limit: still SCIM's shape.
    let huge = json!({"userName": "a@x.io", "title": "x".repeat(2 * 1024 * 1024)});
    scim_error(&post(&app, USERS, &huge).await, StatusCode::PAYLOAD_TOO_LARGE, Some("tooMany"));
    let list = get(&app, USERS).await.json();
    assert_eq!(list["totalResults"], json!(0), "nothing was written: {list}");
    // The application/json media type is accepted too.
    let ok = app
        .send(
            Method::POST,
            USERS,
            Some(TOKEN),
            &[("content-type", "application/json")],
            json!({"userName": "j@x.io"}).to_string(),
        )
        .await;
    ok.expect(StatusCode::CREATED);
    app.assert_no_5xx();
}

#[tokio::test]
async fn groups_and_their_members() {
    let app = TestApp::with_scim(TOKEN).await;
    let mut ids = Vec::new();
    for n in ["a", "b", "c"] {
        ids.push(
            create_user(&app, &format!("{n}@contoso.example"), json!({})).await["id"].as_str().unwrap().to_owned(),
        );
    }
    let r = post(
        &app,
        GROUPS,
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales", "externalId": "g-1",
            "members": [{"value": ids[0]}, {"value": ids[1], "type": "User"}]}),
    )
    .await;
    r.expect(StatusCode::CREATED);
    let g = r.json();
    let gid = g["id"].as_str().unwrap().to_owned();
    let path = format!("{GROUPS}/{gid}");
    let members = |v: &Value| -> Vec<String> {
        let mut m: Vec<String> = v["members"]
            .as_array()
            .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        m.sort();
        m
    };
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(members(&g), want);
    assert_eq!(g["members"][0]["type"], json!("User"));
    // The same group and members through Graph.
    let graph = app.get(&format!("/v1.0/groups/{gid}/members")).await.json();
    assert_eq!(graph["value"].as_array().unwrap().len(), 2, "{graph}");

    // Entra's forms: add a list, remove by filter, remove by value list.
    let r = patch(&app, &path, json!([{"op": "Add", "path": "members", "value": [{"value": ids[2]}]}])).await;
    assert_eq!(members(&r.json()).len(), 3);
    let r = patch(&app, &path, json!([{"op": "Remove", "path": format!("members[value eq \"{}\"]", ids[0])}])).await;
    assert!(!members(&r.json()).contains(&ids[0]));
    let r = patch(&app, &path, json!([{"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}])).await;
    assert_eq!(members(&r.json()), [ids[2].clone()]);
    let r = patch(
        &app,
        &path,
        json!([{"op": "Replace", "path": "members", "value": [{"value": ids[0]}, {"value": ids[1]}]},
        {"op": "Replace", "path": "displayName", "value": "Sales EU"}]),
    )
    .await;
    let v = r.json();
    assert_eq!(members(&v), want);
    assert_eq!(v["displayName"], json!("Sales EU"));
    // Filters on groups, members excluded as Entra asks.
    let f = format!("{GROUPS}?filter={}&excludedAttributes=members", urlencode(r#"displayName eq "sales eu""#));
    let l = get(&app, &f).await.json();
    assert_eq!(l["totalResults"], json!(1));
    assert!(l["Resources"][0].get("members").is_none());
    let f = format!("{GROUPS}?filter={}", urlencode(&format!("members[value eq \"{}\"]", ids[1])));
    assert_eq!(get(&app, &f).await.json()["totalResults"], json!(1));
    let f = format!("{GROUPS}?filter={}", urlencode(&format!("members[value eq \"{}\"]", ids[2])));
    assert_eq!(get(&app, &f).await.json()["totalResults"], json!(0));

    // Mistakes change nothing.
    let before = get(&app, &path).await.json();
    for (ops, scim_type) in [
        (
            json!([{"op": "add", "path": "members", "value": [{"value": "6f1c2d3e-0000-4000-8000-00000000000a"}]}]),
            "invalidValue",
        ),
        (json!([{"op": "add", "path": "members", "value": [{"value": gid, "type": "Group"}]}]), "invalidValue"),
        (json!([{"op": "replace", "path": "members[value eq \"nobody\"]", "value": {"value": ids[2]}}]), "noTarget"),
        (json!([{"op": "remove", "path": "displayName"}]), "invalidValue"),
    ] {
        scim_error(&patch(&app, &path, ops).await, StatusCode::BAD_REQUEST, Some(scim_type));
    }
    assert_eq!(get(&app, &path).await.json(), before);
    // A member's deletion leaves the group; then the group goes.
    call(&app, Method::DELETE, &format!("{USERS}/{}", ids[0]), None, &[]).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(members(&get(&app, &path).await.json()), [ids[1].clone()]);
    call(&app, Method::DELETE, &path, None, &[]).await.expect(StatusCode::NO_CONTENT);
    scim_error(&get(&app, &path).await, StatusCode::NOT_FOUND, None);
    let events = app.services.store.events_of(&gid).await.unwrap();
    use steward_domain::audit::Activity::*;
    let kinds: Vec<_> = events.iter().map(|e| e.activity).collect();
    assert_eq!(kinds.first(), Some(&AddGroup));
    assert_eq!(kinds.last(), Some(&DeleteGroup));
    assert_eq!(kinds.iter().filter(|k| **k == AddMemberToGroup).count(), 5, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == RemoveMemberFromGroup).count(), 3, "{kinds:?}");
    app.assert_no_5xx();
}

/// An access package granting membership of a directory group, assigned to `user`.
async fn package_of_group(app: &TestApp, group: &str) -> String {
    let cat = app.catalog("SCIM").await;
    app.add_group(&cat, group).await.expect(StatusCode::CREATED);
    let package = app.package(&cat, "Members").await;
    let roles = app.get(&format!("{EM}/catalogs/{cat}/resourceRoles?$expand=resource($expand=scopes)")).await.json();
    let r = roles["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["originId"] == json!(format!("Member_{group}")))
        .unwrap_or(&roles["value"][0])
        .clone();
    app.post(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        &json!({"role": {"id": r["id"], "originId": r["originId"], "originSystem": "AadGroup", "resource": {"id": r["resource"]["id"]}},
            "scope": {"id": r["resource"]["scopes"][0]["id"], "originId": group, "originSystem": "AadGroup"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    package
}

async fn drain(app: &TestApp) {
    let worker = Worker::new(app.services.clone(), "scim-it");
    worker.drain(50).await.unwrap();
}

#[tokio::test]
async fn a_deactivated_user_loses_delivered_access_and_reactivation_gives_nothing_back() {
    let app = TestApp::with_scim(TOKEN).await;
    let u = create_user(&app, "leaver@contoso.example", json!({"displayName": "Leaver"})).await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let group = app.group("Finance").await;
    let package = package_of_group(&app, &group).await;
    let policy = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": package}, "displayName": "Direct",
            "allowedTargetScope": "allMemberUsers", "expiration": {"type": "noExpiration"}}),
        )
        .await;
    policy.expect(StatusCode::CREATED);
    app.post(
        &format!("{EM}/assignmentRequests"),
        &json!({"requestType": "adminAdd", "assignment": {"targetId": uid, "assignmentPolicyId": policy.id(), "accessPackageId": package}}),
    )
    .await
    .expect(StatusCode::CREATED);
    drain(&app).await;
    let member = |app: &TestApp| {
        let (g, u) = (group.clone(), uid.clone());
        let s = app.services.clone();
        async move { s.store.member_ids(g.parse().unwrap()).await.unwrap().contains(&u.parse().unwrap()) }
    };
    assert!(member(&app).await, "delivered into the group");

    // Entra's deactivation.
    let r =
        patch(&app, &format!("{USERS}/{uid}"), json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.json()["active"], json!(false));
    drain(&app).await;
    assert!(!member(&app).await, "the membership was revoked");
    let filter = urlencode(&format!("target/id eq '{uid}'"));
    let assignments = app.get(&format!("{EM}/assignments?$filter={filter}")).await.json();
    assert!(assignments["value"].as_array().unwrap().iter().all(|a| a["state"] != json!("delivered")), "{assignments}");
    let requests = app
        .get(&format!("{EM}/assignmentRequests?$filter={}", urlencode("requestType eq 'systemRemove'")))
        .await
        .json();
    assert_eq!(requests["value"].as_array().unwrap().len(), 1, "{requests}");
    assert!(app.get(&format!("/v1.0/users/{uid}")).await.json()["accountEnabled"] == json!(false));

    // Reactivation gives nothing back.
    patch(&app, &format!("{USERS}/{uid}"), json!([{"op": "replace", "value": {"active": true}}]))
        .await
        .expect(StatusCode::OK);
    drain(&app).await;
    assert!(!member(&app).await, "reactivation does not restore access");
    app.assert_no_5xx();
}

#[tokio::test]
async fn scim_changes_reevaluate_automatic_assignment() {
    let app = TestApp::with_scim(TOKEN).await;
    let u = create_user(&app, "auto@contoso.example", json!({})).await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let target_group = app.group("Tools").await;
    let package = package_of_group(&app, &target_group).await;
    app.post(
        &format!("{EM}/assignmentPolicies"),
        &json!({"accessPackage": {"id": package}, "displayName": "Sales get tools",
            "allowedTargetScope": "specificDirectoryUsers",
            "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.attributeRuleMembers",
                "membershipRule": "user.department -eq \"Sales\""}],
            "automaticRequestSettings": {"requestAccessForAllowedTargets": true, "removeAccessWhenTargetLeavesAllowedTargets": true},
            "expiration": {"type": "noExpiration"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    drain(&app).await;
    let holds = |app: &TestApp| {
        let (t, u) = (target_group.clone(), uid.clone());
        let s = app.services.clone();
        async move { s.store.member_ids(t.parse().unwrap()).await.unwrap().contains(&u.parse().unwrap()) }
    };
    assert!(!holds(&app).await);
    let user = format!("{USERS}/{uid}");
    patch(&app, &user, json!([{"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}]))
        .await
        .expect(StatusCode::OK);
    drain(&app).await;
    assert!(holds(&app).await, "joining Sales through SCIM assigned the package automatically");

    // A membership change through SCIM queues the same re-evaluation a Graph change does.
    let g = post(&app, GROUPS, &json!({"displayName": "Engineers"})).await.json();
    assert_eq!(app.services.store.pending_jobs().await.unwrap(), 0, "an empty group changes no membership");
    patch(
        &app,
        &format!("{GROUPS}/{}", g["id"].as_str().unwrap()),
        json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
    )
    .await
    .expect(StatusCode::OK);
    assert!(app.services.store.pending_jobs().await.unwrap() > 0, "the membership change queued a reconciliation");
    drain(&app).await;

    patch(&app, &user, json!([{"op": "replace", "value": {format!("{ENTERPRISE}:department"): "Marketing"}}]))
        .await
        .expect(StatusCode::OK);
    drain(&app).await;
    assert!(!holds(&app).await, "leaving Sales through SCIM removed it");
    app.assert_no_5xx();
}

/// The story of issue 5 against a real target: a user provisioned by SCIM holds a PostgreSQL
/// group role delivered by Steward; Entra's `active: "False"` removes it from the server and
/// ends the assignment.
#[tokio::test]
async fn deactivation_through_scim_revokes_a_real_postgresql_role() {
    let app = TestApp::with_scim(TOKEN).await;
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").expect("DATABASE_URL names a PostgreSQL server"))
        .await
        .unwrap();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let role = format!("steward_scim_{tag}");
    let login = format!("scim-{tag}@example.test");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} NOLOGIN"))).execute(&admin).await.unwrap();
    let u = create_user(&app, &login, json!({"displayName": "Warehouse user"})).await;
    let uid = u["id"].as_str().unwrap().to_owned();

    let mut settings = target();
    settings["userKey"] = json!("userPrincipalName");
    let mut body = json!({"displayName": "Warehouse", "kind": "postgreSqlRoles", "settings": settings});
    if let Some(p) = url_password() {
        body["credentials"] = json!({"password": p});
    }
    let cid = app.post("/v1.0/steward/connections", &body).await.expect(StatusCode::CREATED).id();
    let cat = app.catalog("Databases").await;
    let origin = format!("{cid}:{role}");
    app.post(
        &format!("{EM}/resourceRequests"),
        &json!({"requestType": "adminAdd", "catalog": {"id": cat}, "resource": {"originId": origin, "originSystem": "PostgreSqlRole"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let package = app.package(&cat, "Warehouse readers").await;
    let roles = app.get(&format!("{EM}/catalogs/{cat}/resourceRoles?$expand=resource($expand=scopes)")).await.json();
    let r = &roles["value"][0];
    app.post(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        &json!({"role": {"id": r["id"], "originId": "Member", "originSystem": "PostgreSqlRole", "resource": {"id": r["resource"]["id"]}},
            "scope": {"id": r["resource"]["scopes"][0]["id"], "originId": origin, "originSystem": "PostgreSqlRole"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let policy = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": package}, "displayName": "Direct",
            "allowedTargetScope": "allMemberUsers", "expiration": {"type": "noExpiration"}}),
        )
        .await;
    policy.expect(StatusCode::CREATED);
    let req = app
        .post(
            &format!("{EM}/assignmentRequests"),
            &json!({"requestType": "adminAdd", "assignment": {"targetId": uid, "assignmentPolicyId": policy.id(), "accessPackageId": package}}),
        )
        .await;
    req.expect(StatusCode::CREATED);
    drain(&app).await;
    let holds = || {
        let (admin, login, role) = (admin.clone(), login.clone(), role.clone());
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role($1, $2, 'MEMBER')",
            )
            .bind(login)
            .bind(role)
            .fetch_one(&admin)
            .await
            .unwrap()
        }
    };
    let got = app.get(&format!("{EM}/assignmentRequests/{}?$expand=assignment", req.id())).await.json();
    assert_eq!(got["assignment"]["state"], json!("delivered"), "{got}");
    assert!(holds().await, "the role was granted on the server");

    patch(&app, &format!("{USERS}/{uid}"), json!([{"op": "Replace", "path": "active", "value": "False"}]))
        .await
        .expect(StatusCode::OK);
    drain(&app).await;
    assert!(!holds().await, "the role was revoked on the server");
    let a = got["assignment"]["id"].as_str().unwrap();
    let after = app.get(&format!("{EM}/assignments/{a}")).await.json();
    assert_ne!(after["state"], json!("delivered"), "{after}");
    assert!(
        after["expiredDateTime"].is_string() || after["state"] == json!("expired"),
        "the assignment ended: {after}"
    );
    let deliveries = app.get(&format!("/v1.0/steward/assignments/{a}/deliveries")).await.json();
    let revoke = deliveries["value"].as_array().unwrap().iter().find(|d| d["action"] == json!("revoke")).cloned();
    assert_eq!(revoke.map(|d| d["state"].clone()), Some(json!("done")), "{deliveries}");
    for r in [login, role] {
        let q = format!("DROP ROLE IF EXISTS \"{}\"", r.replace('"', "\"\""));
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(q)).execute(&admin).await;
    }
    app.assert_no_5xx();
}
