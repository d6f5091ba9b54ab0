//! What the portal's and the console's page tests share: a signed-in browser, form posts from
//! this site, reading a page's fields, and a package granting a group's Member role.

use axum::http::{Method, StatusCode};
use serde_json::json;
use steward_app::query::{ASSIGNMENT_REQUESTS, ListQuery};

use crate::app::{EM, Resp, TestApp};
use crate::signin::{Browser, Harness, PUBLIC};

/// A browser signed in as `user` through the test provider.
pub(crate) async fn signed_in(p: &Harness, user: &str) -> Browser {
    let mut b = Browser::default();
    b.sign_in(p, "/auth/login", user).await.expect(StatusCode::SEE_OTHER);
    b
}

/// Percent-encodes one value of a form body.
pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An urlencoded form body.
pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// Posts a form body as a page of this site does (its `Origin`).
pub(crate) async fn post_form(b: &mut Browser, app: &TestApp, path: &str, body: &str) -> Resp {
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", PUBLIC)];
    b.send(app, Method::POST, path, &headers, body).await
}

/// What askama's escaping made of a value, back as it was.
pub(crate) fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"").replace("&#39;", "'").replace("&#60;", "<").replace("&#62;", ">").replace("&#38;", "&")
}

/// The value of the first `name="…" value="…"` input in a page.
pub(crate) fn input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    unescape(html[at..].split('"').next().unwrap())
}

/// How many assignment requests the store holds.
pub(crate) async fn request_count(app: &TestApp) -> usize {
    app.services.store.list_requests(&ListQuery::all(&ASSIGNMENT_REQUESTS)).await.unwrap().items.len()
}

/// Adds catalog `cat`'s Member role of directory group `group` to `package`.
pub(crate) async fn grant_membership(app: &TestApp, cat: &str, package: &str, group: &str) {
    let path = format!(
        "{EM}/catalogs/{cat}/resourceRoles?$filter=originId eq 'Member_{group}'&$expand=resource($expand=scopes)"
    );
    let roles = app.get(&path.replace(' ', "%20")).await.json();
    let role = &roles["value"][0];
    app.post(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        &json!({"role": {"id": role["id"], "originId": role["originId"], "originSystem": "AadGroup",
            "resource": {"id": role["resource"]["id"]}},
            "scope": {"id": role["resource"]["scopes"][0]["id"], "originId": group, "originSystem": "AadGroup"}}),
    )
    .await
    .expect(StatusCode::CREATED);
}
