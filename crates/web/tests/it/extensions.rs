//! Custom extensions over HTTP, with a receiver written here the way the README tells
//! receivers to write one: it recomputes the HMAC over "<t>.<body>" with the extension's
//! signing secret, compares in constant time, refuses a timestamp more than 300 s away and a
//! signature it has seen (a replay), and answers 202. Shown: managing extensions and naming
//! them in policies (checked); a fire-and-forget callout at requestCreated (and granted)
//! arrives signed while forged, stale and replayed ones are refused by the receiver; a
//! launch-and-wait callout holds the request until it is resumed, then it is delivered; a
//! resume with `denied` denies; a second resume of an instance is 409; no resume in time
//! denies with `callbackTimedOut`; an approved-stage wait holds delivery; a 14-day expiry
//! callout is sent once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use steward_app::Clock;
use steward_app::lifecycle::worker::Worker;
use steward_app::ports::ManualClock;

use crate::app::{EM, TestApp};
use crate::connections::KEY;

const START: &str = "2031-03-01T09:00:00Z";
const TOLERANCE_SECS: i64 = 300;

/// One callout as it arrived: the raw body and signature header, and the receiver's verdict.
#[derive(Debug, Clone)]
struct Arrival {
    body: Vec<u8>,
    signature: String,
    status: u16,
}

#[derive(Default)]
struct Seen {
    signatures: HashSet<String>,
    instances: HashSet<String>,
    arrivals: Vec<Arrival>,
}

/// The test's extension endpoint: verifies as the README's recipe says.
#[derive(Clone)]
struct Receiver {
    url: String,
    /// Signing secrets by extension id: one receiver serves several extensions.
    secrets: Arc<Mutex<std::collections::HashMap<String, String>>>,
    clock: Arc<ManualClock>,
    seen: Arc<Mutex<Seen>>,
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let v1: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={v1}")
}

impl Receiver {
    async fn start(clock: Arc<ManualClock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/steward-hook", listener.local_addr().unwrap());
        let r = Self { url, secrets: Arc::default(), clock, seen: Arc::default() };
        let app = axum::Router::new().route("/steward-hook", axum::routing::post(receive)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.seen.lock().unwrap().arrivals.clone()
    }

    /// The accepted callouts' payloads.
    fn accepted(&self) -> Vec<Value> {
        self.arrivals().iter().filter(|a| a.status == 202).map(|a| serde_json::from_slice(&a.body).unwrap()).collect()
    }

    /// The verdict: 202, or 401 (no, bad or stale signature), 409 (a replay).
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, &'static str) {
        let Some(header) = headers.get("steward-signature").and_then(|v| v.to_str().ok()) else {
            return (StatusCode::UNAUTHORIZED, "no signature");
        };
        let (mut t, mut v1) = (None, None);
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", v)) => t = v.parse::<i64>().ok(),
                Some(("v1", v)) => v1 = hex_decode(v),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else { return (StatusCode::UNAUTHORIZED, "malformed signature") };
        if (self.clock.now().as_second() - t).abs() > TOLERANCE_SECS {
            return (StatusCode::UNAUTHORIZED, "stale timestamp");
        }
        // The payload names its extension; that picks the key (nothing in it is trusted before the
        // signature holds).
        let payload: Value = serde_json::from_slice(body).unwrap_or_default();
        let extension = payload["data"]["customExtension"]["id"].as_str().unwrap_or_default();
        let Some(secret) = self.secrets.lock().unwrap().get(extension).cloned() else {
            return (StatusCode::UNAUTHORIZED, "unknown extension");
        };
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        if mac.verify_slice(&v1).is_err() {
            return (StatusCode::UNAUTHORIZED, "bad signature");
        }
        let mut seen = self.seen.lock().unwrap();
        if !seen.signatures.insert(header.to_owned()) {
            return (StatusCode::CONFLICT, "replay");
        }
        // A new signature for a known instance is Steward retrying: acknowledged, acted on once.
        let instance = payload["data"]["customExtensionStageInstanceId"].as_str().unwrap_or_default().to_owned();
        seen.instances.insert(instance);
        (StatusCode::ACCEPTED, "accepted")
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let verdict = r.verify(&headers, &body);
    let signature = headers.get("steward-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    r.seen.lock().unwrap().arrivals.push(Arrival { body: body.to_vec(), signature, status: verdict.0.as_u16() });
    verdict
}

/// A catalog with a group resource and a package granting its Member role, on a manual clock.
struct World {
    app: TestApp,
    clock: Arc<ManualClock>,
    receiver: Receiver,
    catalog: String,
    group: String,
}

impl World {
    async fn new() -> Self {
        let (app, clock) = TestApp::with_clock_and_connections(START, KEY).await;
        let receiver = Receiver::start(clock.clone()).await;
        let catalog = app.catalog("Sales").await;
        let group = app.group("Sales CRM").await;
        app.add_group(&catalog, &group).await.expect(StatusCode::CREATED);
        Self { app, clock, receiver, catalog, group }
    }

    async fn package(&self, name: &str) -> String {
        let app = &self.app;
        let package = app.package(&self.catalog, name).await;
        let filter = format!("originId eq 'Member_{}'", self.group).replace(' ', "%20");
        let roles = app
            .get(&format!(
                "{EM}/catalogs/{}/resourceRoles?$filter={filter}&$expand=resource($expand=scopes)",
                self.catalog
            ))
            .await
            .json();
        let role = &roles["value"][0];
        app.post(
            &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
            &json!({"role": {"id": role["id"], "originId": role["originId"], "originSystem": "AadGroup",
                "resource": {"id": role["resource"]["id"]}},
                "scope": {"id": role["resource"]["scopes"][0]["id"], "originId": self.group, "originSystem": "AadGroup"}}),
        )
        .await
        .expect(StatusCode::CREATED);
        package
    }

    /// A custom extension posting to the receiver; `wait` makes it launch-and-wait. The
    /// receiver learns its secret.
    async fn extension(&self, name: &str, kind: &str, wait: Option<&str>) -> String {
        let mut body = json!({"@odata.type": format!("#microsoft.graph.{kind}"), "displayName": name,
            "endpointConfiguration": {"@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": self.receiver.url},
            "clientConfiguration": {"timeoutInMilliseconds": 5000, "maximumRetries": 1}});
        if let Some(w) = wait {
            body["callbackConfiguration"] =
                json!({"@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration", "timeoutDuration": w});
        }
        let r = self.app.post(&format!("{EM}/catalogs/{}/customWorkflowExtensions", self.catalog), &body).await;
        r.expect(StatusCode::CREATED);
        let secret = r.json()["signingSecret"].as_str().unwrap().to_owned();
        self.receiver.secrets.lock().unwrap().insert(r.id(), secret);
        r.id()
    }

    /// A policy letting every member request `package` for themselves without approval (or
    /// direct assignment only, with `direct`), running `stages`.
    async fn policy(&self, package: &str, stages: &[(&str, &str)], extra: Value) -> String {
        let settings: Vec<Value> =
            stages.iter().map(|(stage, x)| json!({"stage": stage, "customExtension": {"id": x}})).collect();
        let mut body = json!({"accessPackage": {"id": package}, "displayName": "Members",
            "allowedTargetScope": "allMemberUsers", "requestorSettings": {"enableTargetsToSelfAddAccess": true},
            "customExtensionStageSettings": settings});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let r = self.app.post(&format!("{EM}/assignmentPolicies"), &body).await;
        r.expect(StatusCode::CREATED);
        r.id()
    }

    async fn drain(&self) {
        let worker = Worker::new(self.app.services.clone(), "extensions-it");
        worker.ensure_sweep().await.unwrap();
        worker.drain(50).await.unwrap();
    }

    async fn request(&self, id: &str) -> Value {
        self.app.get(&format!("{EM}/assignmentRequests/{id}")).await.expect(StatusCode::OK).json()
    }

    async fn user_request(&self, who: &str, package: &str) -> (String, Value) {
        let (_, token) = self.app.person(&format!("{who}@contoso.com")).await;
        let r = self
            .app
            .json_as(
                &token,
                axum::http::Method::POST,
                &format!("{EM}/assignmentRequests"),
                &json!({"requestType": "userAdd", "assignment": {"accessPackageId": package}}),
            )
            .await;
        r.expect(StatusCode::CREATED);
        (r.id(), r.json())
    }

    async fn resume(&self, request: &str, instance: &str, state: Option<&str>) -> crate::app::Resp {
        let mut data = json!({"@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData",
            "stage": "AssignmentRequestCreated", "customExtensionStageInstanceId": instance,
            "customExtensionStageInstanceDetail": "checked by the SoD service"});
        if let Some(s) = state {
            data["state"] = json!(s);
        }
        let body = json!({"source": "Contoso.SodCheck",
            "type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated", "data": data});
        self.app.post(&format!("{EM}/assignmentRequests/{request}/resume"), &body).await
    }
}

fn instances(request: &Value) -> Vec<(String, String)> {
    request["customExtensionCalloutInstances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_owned(), i["status"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn custom_extensions_are_managed_and_policies_name_them_checked() {
    let w = World::new().await;
    let app = &w.app;
    let base = format!("{EM}/catalogs/{}/customWorkflowExtensions", w.catalog);
    let good = json!({"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension",
        "displayName": "SoD check", "description": "asks the SoD service",
        "endpointConfiguration": {"@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": "https://sod.example.test/hook"},
        "callbackConfiguration": {"@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration", "timeoutDuration": "PT1H"}});

    // Refused, each with a message that says why.
    for (change, needle) in [
        (
            json!({"authenticationConfiguration": {"@odata.type": "#microsoft.graph.azureAdTokenAuthentication", "resourceId": "x"}}),
            "HMAC",
        ),
        (
            json!({"endpointConfiguration": {"@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": "http://sod.example.test/"}}),
            "https",
        ),
        (json!({"callbackConfiguration": {"timeoutDuration": "PT1M"}}), "PT5M"),
        (json!({"clientConfiguration": {"maximumRetries": 9}}), "maximumRetries"),
        (json!({"@odata.type": "#microsoft.graph.customCalloutExtension"}), "@odata.type"),
        (json!({"color": "blue"}), "color"),
    ] {
        let mut body = good.clone();
        if let (Value::Object(b), Value::Object(c)) = (&mut body, change) {
            b.extend(c);
        }
        let r = app.post(&base, &body).await;
        r.expect_error(StatusCode::BAD_REQUEST);
        assert!(r.text.contains(needle), "{needle}: {}", r.text);
    }
    let unkeyed = TestApp::new().await;
    let c = unkeyed.catalog("No key").await;
    let r = unkeyed.post(&format!("{EM}/catalogs/{c}/customWorkflowExtensions"), &good).await;
    r.expect_error(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("secrets key"), "{}", r.text);

    // Created: the secret is shown this once.
    let r = app.post(&base, &good).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("cache-control"), "no-store");
    let created = r.json();
    let secret = created["signingSecret"].as_str().unwrap();
    assert_eq!(secret.len(), 43);
    assert_eq!(created["@odata.type"], "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension");
    assert_eq!(created["callbackConfiguration"]["timeoutDuration"], "PT1H");
    assert_eq!(created["clientConfiguration"]["maximumRetries"], 3);
    let waits = r.id();
    let got = app.get(&format!("{base}/{waits}")).await;
    got.expect(StatusCode::OK);
    assert!(got.json().get("signingSecret").is_none() && !got.text.contains(secret), "never shown again");
    let list = app.get(&base).await.json();
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));
    assert_eq!(app.get(&format!("{base}/$count")).await.text, "1");
    let (_, user_token) = app.person("someone@contoso.com").await;
    app.get_as(&user_token, &base).await.expect_error(StatusCode::FORBIDDEN);
    let reminder = w.extension("Reminder", "accessPackageAssignmentWorkflowExtension", None).await;

    // Policies name extensions of their catalog that fit the stage.
    let package = w.package("CRM").await;
    let policy_with = |stage: &str, x: &str| {
        json!({"accessPackage": {"id": package}, "displayName": "P", "allowedTargetScope": "allMemberUsers",
            "customExtensionStageSettings": [{"stage": stage, "customExtension": {"id": x}}]})
    };
    for (stage, x, needle) in [
        ("assignmentRequestGranted", waits.as_str(), "callback"),
        ("assignmentRequestCreated", reminder.as_str(), "cannot run at stage"),
        ("assignmentRequestCreated", crate::app::UNKNOWN, "does not exist"),
        ("sometime", waits.as_str(), "accessPackageCustomExtensionStage"),
    ] {
        let r = app.post(&format!("{EM}/assignmentPolicies"), &policy_with(stage, x)).await;
        r.expect_error(StatusCode::BAD_REQUEST);
        assert!(r.text.contains(needle), "{stage}: {}", r.text);
    }
    let other = app.catalog("Other").await;
    let r = app.post(&format!("{EM}/catalogs/{other}/customWorkflowExtensions"), &good).await;
    let foreign = r.expect(StatusCode::CREATED).id();
    let r = app.post(&format!("{EM}/assignmentPolicies"), &policy_with("assignmentRequestCreated", &foreign)).await;
    r.expect_error(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("another catalog"), "{}", r.text);
    let r = app.post(&format!("{EM}/assignmentPolicies"), &policy_with("AssignmentRequestCreated", &waits)).await;
    r.expect(StatusCode::CREATED);
    let policy = r.id();
    let p = app.get(&format!("{EM}/assignmentPolicies/{policy}")).await.json();
    let settings = &p["customExtensionStageSettings"][0];
    assert_eq!(
        (settings["stage"].as_str(), settings["customExtension"]["id"].as_str()),
        (Some("assignmentRequestCreated"), Some(waits.as_str()))
    );
    assert!(settings["id"].as_str().is_some_and(|s| !s.is_empty()));
    let p = app
        .get(&format!("{EM}/assignmentPolicies/{policy}?$expand=customExtensionStageSettings($expand=customExtension)"))
        .await
        .json();
    assert_eq!(p["customExtensionStageSettings"][0]["customExtension"]["displayName"], "SoD check");
    // An extension named by a policy cannot start waiting where waiting is not allowed, nor go.
    let r = app.patch(&format!("{base}/{reminder}"), &json!({"displayName": "Expiry reminder"})).await;
    r.expect(StatusCode::NO_CONTENT);
    let r = app
        .patch(
            &format!("{base}/{waits}"),
            &json!({"@odata.type": "#microsoft.graph.accessPackageAssignmentWorkflowExtension"}),
        )
        .await;
    r.expect_error(StatusCode::BAD_REQUEST);
    let r = app.delete(&format!("{base}/{waits}")).await;
    r.expect_error(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("assignment policy"), "{}", r.text);
    app.delete(&format!("{EM}/assignmentPolicies/{policy}")).await.expect(StatusCode::NO_CONTENT);
    app.delete(&format!("{base}/{waits}")).await.expect(StatusCode::NO_CONTENT);
    app.get(&format!("{base}/{waits}")).await.expect_error(StatusCode::NOT_FOUND);
    app.get(&format!("{EM}/catalogs/{other}/customWorkflowExtensions/{reminder}"))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    app.assert_no_5xx();
}

#[tokio::test]
async fn fire_and_forget_callouts_arrive_signed_and_forgeries_are_refused() {
    let w = World::new().await;
    let package = w.package("CRM").await;
    let x = w.extension("Notify", "accessPackageAssignmentRequestWorkflowExtension", None).await;
    w.policy(&package, &[("assignmentRequestCreated", &x), ("assignmentRequestGranted", &x)], json!({})).await;
    let (request, created) = w.user_request("ada", &package).await;
    assert_ne!(created["status"], "WaitingForCallback", "fire-and-forget does not hold the request");
    w.drain().await;
    let r = w.request(&request).await;
    assert_eq!(r["state"], "delivered", "{r}");
    let accepted = w.receiver.accepted();
    let stages: Vec<&str> = accepted.iter().map(|p| p["data"]["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["assignmentRequestCreated", "assignmentRequestGranted"], "{accepted:?}");
    let first = &accepted[0];
    assert_eq!(first["source"], "Steward");
    assert_eq!(first["type"], "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated");
    assert_eq!(first["data"]["accessPackageAssignmentRequestId"], request.as_str());
    assert_eq!(first["data"]["accessPackage"]["id"], package.as_str());
    assert_eq!(first["data"]["target"]["userPrincipalName"], "ada@contoso.com");
    assert!(first["data"].get("callbackUriPath").is_none(), "nothing waits");
    let recorded = instances(&r);
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|(_, status)| status == "calloutSent"), "{recorded:?}");
    assert_eq!(recorded[0].0, first["data"]["customExtensionStageInstanceId"].as_str().unwrap());

    // What reaches the receiver otherwise is refused.
    let captured = w.receiver.arrivals()[0].clone();
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, signature: String| {
        http.post(&w.receiver.url)
            .header("content-type", "application/json")
            .header("Steward-Signature", signature)
            .body(body)
            .send()
    };
    let mut tampered = captured.body.clone();
    let at = tampered.iter().position(|b| *b == b'a').unwrap();
    tampered[at] = b'b';
    assert_eq!(post(tampered, captured.signature.clone()).await.unwrap().status(), 401, "a tampered body");
    let now = w.clock.now().as_second();
    assert_eq!(
        post(captured.body.clone(), sign("not-the-secret", now, &captured.body)).await.unwrap().status(),
        401,
        "another key"
    );
    let secret = w.receiver.secrets.lock().unwrap()[&x].clone();
    let stale = sign(&secret, now - TOLERANCE_SECS - 1, &captured.body);
    assert_eq!(post(captured.body.clone(), stale).await.unwrap().status(), 401, "an old timestamp");
    assert_eq!(post(captured.body.clone(), String::new()).await.unwrap().status(), 401, "no signature");
    assert_eq!(post(captured.body.clone(), captured.signature.clone()).await.unwrap().status(), 409, "a replay");
    assert_eq!(w.receiver.accepted().len(), 2, "nothing forged was accepted");
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn launch_and_wait_holds_requests_until_resumed_denied_or_timed_out() {
    let w = World::new().await;
    let package = w.package("CRM").await;
    let x = w.extension("SoD check", "accessPackageAssignmentRequestWorkflowExtension", Some("PT1H")).await;
    w.policy(&package, &[("assignmentRequestCreated", &x)], json!({})).await;

    // Held until the extension calls back.
    let (request, created) = w.user_request("ada", &package).await;
    assert_eq!(
        (created["state"].as_str(), created["status"].as_str()),
        (Some("submitted"), Some("WaitingForCallback"))
    );
    w.drain().await;
    let r = w.request(&request).await;
    assert_eq!((r["state"].as_str(), r["status"].as_str()), (Some("submitted"), Some("WaitingForCallback")), "{r}");
    let [(instance, status)] = instances(&r).try_into().unwrap();
    assert_eq!(status, "waitingForCallback");
    let payload = &w.receiver.accepted()[0];
    assert_eq!(payload["data"]["customExtensionStageInstanceId"], instance.as_str());
    assert_eq!(
        payload["data"]["callbackUriPath"],
        format!("/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{request}/resume")
    );
    assert_eq!(payload["data"]["callbackConfiguration"]["timeoutDuration"], "PT1H");

    // Only administrators resume, only the instance the request waits for, only once.
    let (_, user_token) = w.app.person("mallory@contoso.com").await;
    let body = json!({"data": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData", "customExtensionStageInstanceId": instance}});
    let path = format!("{EM}/assignmentRequests/{request}/resume");
    w.app.json_as(&user_token, axum::http::Method::POST, &path, &body).await.expect_error(StatusCode::FORBIDDEN);
    w.resume(&request, crate::app::UNKNOWN, None).await.expect_error(StatusCode::NOT_FOUND);
    let wrong_stage = json!({"type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestApproved",
        "data": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData", "customExtensionStageInstanceId": instance}});
    w.app.post(&path, &wrong_stage).await.expect_error(StatusCode::BAD_REQUEST);
    w.resume(&request, &instance, None).await.expect(StatusCode::NO_CONTENT);
    w.resume(&request, &instance, None).await.expect_error(StatusCode::CONFLICT);
    w.drain().await;
    let r = w.request(&request).await;
    assert_eq!(r["state"], "delivered", "{r}");
    assert_eq!(instances(&r), [(instance.clone(), "callbackReceived".to_owned())]);
    w.resume(&request, &instance, None).await.expect_error(StatusCode::CONFLICT);

    // A resume of another request's instance is not found on this one.
    let (denied, _) = w.user_request("bob", &package).await;
    w.drain().await;
    let [(bobs, _)] = instances(&w.request(&denied).await).try_into().unwrap();
    w.resume(&request, &bobs, None).await.expect_error(StatusCode::NOT_FOUND);
    // Denied by the extension, with its reason.
    w.resume(&denied, &bobs, Some("Denied")).await.expect(StatusCode::NO_CONTENT);
    let r = w.request(&denied).await;
    assert_eq!((r["state"].as_str(), r["status"].as_str()), (Some("denied"), Some("Denied")), "{r}");
    let stored = w.app.services.store.get_request(denied.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        stored.detail.reason.as_deref(),
        Some("checked by the SoD service"),
        "the extension's detail is the reason"
    );
    let events = w.app.services.store.events_of(&denied).await.unwrap();
    assert!(events.iter().any(|e| e.detail.as_deref() == Some("assignmentRequestCreated denied by Contoso.SodCheck")));
    w.resume(&denied, &bobs, Some("Denied")).await.expect_error(StatusCode::CONFLICT);

    // No callback in time: denied, the instance timed out.
    let (late, _) = w.user_request("carol", &package).await;
    w.drain().await;
    w.clock.advance(jiff::SignedDuration::from_mins(59));
    w.drain().await;
    assert_eq!(w.request(&late).await["status"], "WaitingForCallback", "not yet");
    w.clock.advance(jiff::SignedDuration::from_mins(2));
    w.drain().await;
    let r = w.request(&late).await;
    assert_eq!((r["state"].as_str(), r["status"].as_str()), (Some("denied"), Some("TimedOut")), "{r}");
    let [(carols, status)] = instances(&r).try_into().unwrap();
    assert_eq!(status, "callbackTimedOut");
    w.resume(&late, &carols, None).await.expect_error(StatusCode::CONFLICT);
    w.app.assert_no_5xx();
}

#[tokio::test]
async fn an_approved_stage_wait_holds_delivery_and_expiry_callouts_come_once() {
    let w = World::new().await;
    let package = w.package("CRM").await;
    let approval =
        w.extension("Provisioning gate", "accessPackageAssignmentRequestWorkflowExtension", Some("P1D")).await;
    let reminder = w.extension("Expiry reminder", "accessPackageAssignmentWorkflowExtension", None).await;
    let direct = json!({"allowedTargetScope": "notSpecified", "requestorSettings": null,
        "expiration": {"type": "afterDuration", "duration": "P20D"}});
    w.policy(
        &package,
        &[("assignmentRequestApproved", &approval), ("assignmentFourteenDaysBeforeExpiration", &reminder)],
        direct,
    )
    .await;
    let target = w.app.user("Dana", "dana@contoso.com").await;
    let r = w
        .app
        .post(
            &format!("{EM}/assignmentRequests"),
            &json!({"requestType": "adminAdd", "assignment": {"accessPackageId": package, "targetId": target}}),
        )
        .await;
    r.expect(StatusCode::CREATED);
    let request = r.id();
    assert_eq!(r.json()["status"], "WaitingForCallback", "{}", r.text);
    w.drain().await;
    let r = w.request(&request).await;
    assert_eq!(r["status"], "WaitingForCallback", "no delivery before the callback: {r}");
    let [(instance, _)] = instances(&r).try_into().unwrap();
    let body = json!({"type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestApproved",
        "data": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData",
            "stage": "assignmentRequestApproved", "customExtensionStageInstanceId": instance}});
    w.app.post(&format!("{EM}/assignmentRequests/{request}/resume"), &body).await.expect(StatusCode::NO_CONTENT);
    w.drain().await;
    let r = w.app.get(&format!("{EM}/assignmentRequests/{request}?$expand=assignment")).await.json();
    assert_eq!(r["state"], "delivered", "{r}");
    let assignment = r["assignment"]["id"].as_str().unwrap().to_owned();

    // Fourteen days before the end (day 6 of 20), once.
    w.clock.advance(jiff::SignedDuration::from_hours(24 * 5));
    w.drain().await;
    let stage_of = |p: &Value| p["data"]["stage"].as_str().unwrap().to_owned();
    assert!(
        !w.receiver.accepted().iter().any(|p| stage_of(p) == "assignmentFourteenDaysBeforeExpiration"),
        "too early"
    );
    w.clock.advance(jiff::SignedDuration::from_hours(24 * 2));
    w.drain().await;
    w.clock.advance(jiff::SignedDuration::from_hours(1));
    w.drain().await;
    let expiry: Vec<Value> =
        w.receiver.accepted().into_iter().filter(|p| stage_of(p) == "assignmentFourteenDaysBeforeExpiration").collect();
    assert_eq!(expiry.len(), 1, "{expiry:?}");
    assert_eq!(expiry[0]["data"]["accessPackageAssignmentId"], assignment.as_str());
    assert!(expiry[0]["data"]["expirationDateTime"].is_string());
    // The expiry call is the assignment's; the approval gate's is the request's.
    let a = w.app.get(&format!("{EM}/assignments/{assignment}")).await.json();
    let on_assignment = a["customExtensionCalloutInstances"].as_array().unwrap();
    assert_eq!(on_assignment.len(), 1, "{a}");
    assert_eq!(on_assignment[0]["status"], "calloutSent");
    assert_eq!(on_assignment[0]["customExtensionId"], reminder.as_str());
    assert_eq!(instances(&w.request(&request).await), [(instance, "callbackReceived".to_owned())]);
    w.app.assert_no_5xx();
}
