//! Access review history reports over HTTP: after a review whose manager denied one assignment
//! and approved another, and left a third to the default decision (Deny), a report over the
//! period lists all three with their values and names, downloaded as CSV through the
//! `downloadUri` that `generateDownloadUri` gives; the decision filter, the period and the scope
//! leave out what they should; bad bodies are a 400 in Graph's error shape, unknown ids a 404,
//! and anyone but an administrator is refused.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{ADMIN, UNKNOWN, path_of};
use crate::review_support::{AR, Person, World, advance, drain, of, world};

const HD: &str = "/v1.0/identityGovernance/accessReviews/historyDefinitions";

/// A CSV report's lines as fields (RFC 4180: quoted fields may hold commas and doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (mut fields, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        rows.push(fields);
    }
    rows
}

/// A report's rows as header name → value maps.
fn rows_of(csv: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = parse_csv(csv).into_iter();
    let header = lines.next().expect("a header line");
    assert_eq!(header[0], "Review", "{csv}");
    lines.map(|l| header.iter().cloned().zip(l).collect()).collect()
}

/// Creates a report from `body` and downloads it through its instance's `downloadUri`.
async fn report(w: &World, body: Value) -> (String, String) {
    let d = w.app.post(HD, &body).await;
    d.expect(StatusCode::CREATED);
    let d = d.id();
    let list = w.app.get(&format!("{HD}/{d}/instances")).await.json();
    let instances = list["value"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{list}");
    let i = instances[0]["id"].as_str().unwrap().to_owned();
    let with_uri = w.app.post(&format!("{HD}/{d}/instances/{i}/generateDownloadUri"), &json!({})).await;
    with_uri.expect(StatusCode::OK);
    let uri = with_uri.json()["downloadUri"].as_str().unwrap().to_owned();
    assert!(uri.ends_with(&format!("/instances/{i}/report.csv")), "{uri}");
    let csv = w.app.get(&path_of(&uri)).await;
    csv.expect(StatusCode::OK);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(csv.header("content-disposition").starts_with("attachment"), "{:?}", csv.headers);
    (d, csv.text.clone())
}

fn period(start: &str, end: &str) -> Value {
    json!({"reviewHistoryPeriodStartDateTime": start, "reviewHistoryPeriodEndDateTime": end})
}

fn body(name: &str, extra: Value) -> Value {
    let mut b = json!({"@odata.type": "#microsoft.graph.accessReviewHistoryDefinition", "displayName": name,
        "reviewHistoryPeriodStartDateTime": "2031-01-01T00:00:00Z", "reviewHistoryPeriodEndDateTime": "2031-02-01T00:00:00Z",
        "scopes": [{"@odata.type": "#microsoft.graph.accessReviewQueryScope", "queryType": "MicrosoftGraph",
            "query": "/identityGovernance/accessReviews/definitions?$filter=contains(scope/query, 'accessPackageAssignments')"}]});
    b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    b
}

/// A one-time review by managers (default Deny, applied at the end): Ann denied, Bob approved,
/// Cid left unanswered, then ended. The review definition's id and the three people.
async fn reviewed(w: &World, policy: &str) -> (String, Person, Person, Person, Person) {
    let manager = w.person("hmanager@contoso.com", None).await;
    let ann = w.person("hann@contoso.com", Some(&manager)).await;
    let bob = w.person("hbob@contoso.com", Some(&manager)).await;
    let cid = w.person("hcid@contoso.com", Some(&manager)).await;
    w.assign(policy, &[&ann, &bob, &cid]).await;
    let d = w
        .create(json!({"displayName": "Ledger, first quarter", "scope": w.scope(),
            "reviewers": [{"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}],
            "settings": {"instanceDurationInDays": 14, "defaultDecisionEnabled": true, "defaultDecision": "Deny",
                "autoApplyDecisionsEnabled": true}}))
        .await;
    drain(&w.app).await;
    let i = w.only_instance(&d).await;
    let every = w.decisions(ADMIN, &d, &i, false).await;
    let id = |p: &Person| of(&every, p)["id"].as_str().unwrap().to_owned();
    w.record(&manager.token, &d, &i, &id(&ann), "Deny", Some("Moved team, \"finance\""))
        .await
        .expect(StatusCode::NO_CONTENT);
    w.record(&manager.token, &d, &i, &id(&bob), "Approve", Some("Closes the books"))
        .await
        .expect(StatusCode::NO_CONTENT);
    advance(&w.app, "P14D").await;
    drain(&w.app).await;
    assert_eq!(w.app.get(&format!("{AR}/{d}/instances/{i}")).await.json()["status"], "Applied");
    (d, manager, ann, bob, cid)
}

#[tokio::test]
async fn a_report_over_the_period_lists_every_decision_of_the_review_with_names() {
    let (w, policy) = world().await;
    let (review, manager, ann, bob, cid) = reviewed(&w, &policy).await;

    let created = w.app.post(HD, &body("Ledger audit", json!({}))).await;
    created.expect(StatusCode::CREATED);
    let v = created.json();
    assert_eq!(
        v["@odata.context"].as_str().unwrap().rsplit('#').next(),
        Some("identityGovernance/accessReviews/historyDefinitions/$entity")
    );
    assert_eq!((v["displayName"].as_str(), v["status"].as_str()), (Some("Ledger audit"), Some("done")));
    assert_eq!(v["decisions"], json!([]), "none named: every decision");
    assert_eq!(v["reviewHistoryPeriodStartDateTime"], "2031-01-01T00:00:00Z");
    assert_eq!(v["scopes"][0]["query"], "/identityGovernance/accessReviews/definitions");
    assert_eq!(v["scopes"][0]["@odata.type"], "#microsoft.graph.accessReviewQueryScope");
    assert!(v["createdDateTime"].is_string() && v.get("createdBy").is_some(), "{v}");
    let d = v["id"].as_str().unwrap().to_owned();
    assert_eq!(w.app.get(&format!("{HD}/{d}")).await.json()["displayName"], "Ledger audit");
    let instances = w.app.get(&format!("{HD}/{d}/instances")).await.json();
    let inst = &instances["value"][0];
    assert_eq!(inst["status"], "done");
    let run = inst["runDateTime"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let expires = inst["expirationDateTime"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert_eq!(expires.duration_since(run).as_hours(), 30 * 24, "{inst}");
    assert_eq!(inst["fulfilledDateTime"], inst["runDateTime"]);
    assert!(inst["downloadUri"].is_null(), "only generateDownloadUri gives it");
    let i = inst["id"].as_str().unwrap();
    assert_eq!(w.app.get(&format!("{HD}/{d}/instances/{i}")).await.json()["id"], i);

    let (_, csv) = report(&w, body("Ledger audit", json!({}))).await;
    let rows = rows_of(&csv);
    assert_eq!(rows.len(), 3, "{csv}");
    let row = |p: &Person| rows.iter().find(|r| r["Principal id"] == p.id).unwrap_or_else(|| panic!("{csv}"));
    for (p, upn, decision, justification, reviewer) in [
        (&ann, "hann@contoso.com", "Deny", "Moved team, \"finance\"", "Person"),
        (&bob, "hbob@contoso.com", "Approve", "Closes the books", "Person"),
        (&cid, "hcid@contoso.com", "Deny", "default decision (Deny)", ""),
    ] {
        let r = row(p);
        assert_eq!(r["Principal user principal name"], upn, "{r:?}");
        assert_eq!(r["Principal"], "Person");
        assert_eq!(r["Decision"], decision, "{r:?}");
        assert!(r["Justification"].contains(justification), "{r:?}");
        assert_eq!(r["Reviewed by"], reviewer, "{r:?}");
        assert_eq!(r["Review"], "Ledger, first quarter");
        assert_eq!(r["Review definition id"], review);
        assert_eq!(r["Access package"], "Ledger");
        assert_eq!(r["Access package id"], w.package);
        assert_eq!(r["Apply result"], "AppliedSuccessfully", "{r:?}");
        assert_eq!(r["Applied by"], "Steward", "applied automatically at the end");
    }
    assert!(row(&ann)["Reviewed"].starts_with("2031-01-"), "{:?}", row(&ann));
    assert_eq!(w.app.get(&format!("/v1.0/users/{}", manager.id)).await.json()["displayName"], "Person");

    // The decision filter and the scope keep what they name; another period keeps nothing.
    let (_, approved) = report(&w, body("Approvals", json!({"decisions": ["approve"]}))).await;
    let approved = rows_of(&approved);
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["Principal id"], bob.id);
    let (_, denied) = report(&w, body("Denials", json!({"decisions": ["Deny", "dontKnow"]}))).await;
    assert_eq!(rows_of(&denied).len(), 2);
    let (_, later) = report(&w, body("Spring", period("2031-03-01T00:00:00Z", "2031-04-01T00:00:00Z"))).await;
    assert!(rows_of(&later).is_empty(), "{later}");
    let (_, before) = report(&w, body("Winter", period("2030-12-01T00:00:00Z", "2031-01-05T09:00:00Z"))).await;
    assert!(rows_of(&before).is_empty(), "the review started when this period ends: {before}");
    let this = json!({"scopes": [{"query": format!("/identityGovernance/accessReviews/definitions/{review}")}]});
    let (_, scoped) = report(&w, body("This review", this)).await;
    assert_eq!(rows_of(&scoped).len(), 3);
    let other = json!({"scopes": [{"query": format!("/identityGovernance/accessReviews/definitions/{UNKNOWN}")}]});
    let (_, none) = report(&w, body("Another review", other)).await;
    assert!(rows_of(&none).is_empty());

    // Lists filter and page like Graph's; deleting takes the instances and the report.
    let list = w.app.get(&format!("{HD}?$filter=startswith(displayName,'ledger')&$top=1&$count=true")).await.json();
    assert_eq!(list["@odata.count"], 2, "{list}");
    assert!(list["@odata.nextLink"].is_string(), "{list}");
    let all = w.app.get(HD).await.json();
    assert_eq!(all["value"].as_array().unwrap().len(), 8, "{all}");
    w.app.delete(&format!("{HD}/{d}")).await.expect(StatusCode::NO_CONTENT);
    w.app.get(&format!("{HD}/{d}")).await.expect_error(StatusCode::NOT_FOUND);
    w.app.get(&format!("{HD}/{d}/instances/{i}")).await.expect_error(StatusCode::NOT_FOUND);
    w.app.get(&format!("{HD}/{d}/instances/{i}/report.csv")).await.expect_error(StatusCode::NOT_FOUND);
    w.app.delete(&format!("{HD}/{d}")).await.expect_error(StatusCode::NOT_FOUND);
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn bad_reports_are_a_400_unknown_ids_a_404_and_only_administrators_may() {
    let (w, policy) = world().await;
    let (_, manager, ..) = reviewed(&w, &policy).await;
    for (bad, says) in [
        (json!({"displayName": ""}), "displayName"),
        (period("2031-02-01T00:00:00Z", "2031-01-01T00:00:00Z"), "must be after"),
        (json!({"reviewHistoryPeriodStartDateTime": "yesterday"}), "yesterday"),
        (period("2020-01-01T00:00:00Z", "2031-01-01T00:00:00Z"), "at most"),
        (json!({"decisions": ["maybe"]}), "decision filter"),
        (json!({"decisions": "deny"}), "list"),
        (json!({"scopes": [{"query": "/groups"}]}), "not supported"),
        (json!({"scopes": [{"query": "/identityGovernance/accessReviews/definitions/nope"}]}), "nope"),
        (
            json!({"scheduleSettings": {"reportRange": "P1M", "recurrence": {"pattern": {"type": "monthly"}}}}),
            "Recurring",
        ),
        (json!({"@odata.type": "#microsoft.graph.accessReviewScheduleDefinition"}), "accessReviewHistoryDefinition"),
    ] {
        let e = w.app.post(HD, &body("Bad", bad.clone())).await;
        e.expect_error(StatusCode::BAD_REQUEST);
        assert!(e.text.contains(says), "{bad}: {}", e.text);
    }
    let e = w.app.post(HD, &json!({"reviewHistoryPeriodStartDateTime": "2031-01-01T00:00:00Z"})).await;
    e.expect_error(StatusCode::BAD_REQUEST);
    w.app.raw_post(HD, "application/json", "{not json").await.expect_error(StatusCode::BAD_REQUEST);
    w.app.post(HD, &json!(["a list"])).await.expect_error(StatusCode::BAD_REQUEST);
    w.app.get(&format!("{HD}?$filter=colour eq 'red'").replace(' ', "%20")).await.expect_error(StatusCode::BAD_REQUEST);

    let d = w.app.post(HD, &body("Audit", json!({}))).await;
    d.expect(StatusCode::CREATED);
    let d = d.id();
    let i = w.app.get(&format!("{HD}/{d}/instances")).await.json()["value"][0]["id"].as_str().unwrap().to_owned();
    for path in [
        format!("{HD}/{UNKNOWN}"),
        format!("{HD}/{UNKNOWN}/instances"),
        format!("{HD}/{d}/instances/{UNKNOWN}"),
        format!("{HD}/{UNKNOWN}/instances/{i}"),
        format!("{HD}/{UNKNOWN}/instances/{i}/report.csv"),
    ] {
        w.app.get(&path).await.expect_error(StatusCode::NOT_FOUND);
    }
    w.app.get(&format!("{HD}/not-a-guid")).await.expect_error(StatusCode::BAD_REQUEST);
    w.app
        .post(&format!("{HD}/{d}/instances/{UNKNOWN}/generateDownloadUri"), &json!({}))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    w.app
        .post(&format!("{HD}/{d}/instances/{i}/generateDownloadUri"), &json!({"unexpected": 1}))
        .await
        .expect_error(StatusCode::BAD_REQUEST);

    // A reviewer (or any user without the administrator role) may do nothing with reports.
    let t = &manager.token;
    w.app.json_as(t, Method::POST, HD, &body("Mine", json!({}))).await.expect_error(StatusCode::FORBIDDEN);
    w.app.get_as(t, HD).await.expect_error(StatusCode::FORBIDDEN);
    w.app.get_as(t, &format!("{HD}/{d}")).await.expect_error(StatusCode::FORBIDDEN);
    w.app.get_as(t, &format!("{HD}/{d}/instances/{i}/report.csv")).await.expect_error(StatusCode::FORBIDDEN);
    w.app
        .json_as(t, Method::POST, &format!("{HD}/{d}/instances/{i}/generateDownloadUri"), &json!({}))
        .await
        .expect_error(StatusCode::FORBIDDEN);
    w.app
        .send(Method::GET, &format!("{HD}/{d}"), None, &[], axum::body::Body::empty())
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    w.app.json_as(t, Method::DELETE, &format!("{HD}/{d}"), &json!({})).await.expect_error(StatusCode::FORBIDDEN);
    w.app.get(&format!("{HD}/{d}")).await.expect(StatusCode::OK);

    // Thirty days after it ran, a report can no longer be downloaded.
    let csv = format!("{HD}/{d}/instances/{i}/report.csv");
    advance(&w.app, "P29DT23H").await;
    w.app.get(&csv).await.expect(StatusCode::OK);
    advance(&w.app, "PT1H").await;
    let e = w.app.get(&csv).await;
    e.expect_error(StatusCode::CONFLICT);
    assert!(e.text.contains("expired"), "{}", e.text);
    w.app.assert_no_5xx();
}
