//! Notification email derived from the audit trail, sent by the worker into an in-memory
//! outbox: which moment mails whom, with what, once; the switches that turn mail off (a
//! policy's `notificationSettings`, the deployment's `disabled`), recipients without an
//! address, retries after a transient failure and giving up after a permanent one, the
//! sweep's timers (expiry warnings with an extend link, reviews), and no derivation without a
//! mailer.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::auth::{TokenHolder, create_token, local_operator};
use steward_app::mail::{MailError, Mailer, MemoryMailer, OutgoingMail};
use steward_app::notify::{NoticeState, NotificationKind, Settings};
use steward_domain::decision_link::{DecisionLink, LinkKey};

use crate::app::{EM, TestApp};

const START: &str = "2031-03-01T09:00:00Z";
const LINK_KEY: &[u8] = b"notify-test-link-key";
const AR: &str = "/v1.0/identityGovernance/accessReviews/definitions";

/// The in-memory outbox, refusing for good any recipient whose address starts with `reject`.
#[derive(Default)]
struct Outbox(MemoryMailer);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        if mail.to.iter().any(|a| a.email.starts_with("reject")) {
            return Err(MailError::Permanent("550 5.1.1 mailbox unavailable".into()));
        }
        self.0.send(mail).await
    }
}

struct Person {
    id: String,
    token: String,
    mail: Option<String>,
}

struct World {
    app: TestApp,
    clock: Arc<steward_app::ports::ManualClock>,
    outbox: Arc<Outbox>,
    catalog: String,
    package: String,
}

async fn world(settings: Settings) -> World {
    let outbox = Arc::new(Outbox::default());
    let (app, clock) = TestApp::with_mail(START, outbox.clone(), LINK_KEY, settings).await;
    let catalog = app.catalog("Finance").await;
    let (_, package) = app.group_package(&catalog, "Ledger users", "Ledger").await;
    World { app, clock, outbox, catalog, package }
}

impl World {
    async fn person(&self, name: &str, mail: Option<&str>) -> Person {
        let upn = format!("{name}@contoso.test");
        let mut body = json!({"displayName": name, "userPrincipalName": upn});
        if let Some(m) = mail {
            body["mail"] = json!(m);
        }
        let id = self.app.post("/v1.0/users", &body).await.expect(StatusCode::CREATED).id();
        let (_, secret) =
            create_token(&self.app.services, local_operator(), name, TokenHolder::User(id.parse().unwrap()), None)
                .await
                .unwrap();
        Person { id, token: secret.expose().to_owned(), mail: mail.map(str::to_owned) }
    }

    /// A policy members request themselves through two stages (`first`, then `second`), their
    /// access lasting 30 days; with `notifications` as its `notificationSettings`.
    async fn two_stage_policy(&self, first: &Person, second: &Person, notifications: Option<Value>) -> String {
        let stage = |p: &Person| {
            json!({"durationBeforeAutomaticDenial": "P7D",
                "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": p.id}]})
        };
        let mut body = json!({"accessPackage": {"id": self.package}, "displayName": "Two approvals",
            "allowedTargetScope": "allMemberUsers",
            "expiration": {"type": "afterDuration", "duration": "P30D"},
            "requestorSettings": {"enableTargetsToSelfAddAccess": true},
            "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [stage(first), stage(second)]}});
        if let Some(n) = notifications {
            body["notificationSettings"] = n;
        }
        self.app.post(&format!("{EM}/assignmentPolicies"), &body).await.expect(StatusCode::CREATED).id()
    }

    async fn request(&self, who: &Person, justification: &str) -> String {
        let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": self.package},
            "justification": justification});
        let r = self.app.json_as(&who.token, Method::POST, &format!("{EM}/assignmentRequests"), &body).await;
        r.expect(StatusCode::CREATED).id()
    }

    async fn decide(&self, approver: &Person, request: &str, approve: bool, why: &str) {
        let stages =
            self.app.get_as(&approver.token, &format!("{EM}/accessPackageAssignmentApprovals/{request}/stages")).await;
        let stages = stages.json();
        let stage = stages["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["assignedToMe"] == true && s["status"] == "InProgress")
            .unwrap_or_else(|| panic!("no stage waits for this approver: {stages}"));
        let url = format!("{EM}/accessPackageAssignmentApprovals/{request}/stages/{}", stage["id"].as_str().unwrap());
        let body = json!({"reviewResult": if approve { "Approve" } else { "Deny" }, "justification": why});
        self.app.json_as(&approver.token, Method::PATCH, &url, &body).await.expect(StatusCode::NO_CONTENT);
    }

    /// Runs what is due a second later (the sweep comes round every second), three times over.
    async fn drain(&self) {
        self.advance("PT1S").await;
        for _ in 0..3 {
            self.app.post("/ops/jobs/drain", &json!({})).await.expect(StatusCode::OK);
        }
    }

    async fn advance(&self, by: &str) {
        self.app.post("/ops/clock", &json!({"advance": by})).await.expect(StatusCode::OK);
    }

    async fn set_clock(&self, to: jiff::Timestamp) {
        self.app.post("/ops/clock", &json!({"set": to.to_string()})).await.expect(StatusCode::OK);
    }

    fn sent(&self) -> Vec<OutgoingMail> {
        self.outbox.0.sent()
    }
}

/// The mails after the first `seen`, as (recipient, subject).
fn since(sent: &[OutgoingMail], seen: usize) -> Vec<(String, String)> {
    sent.iter().skip(seen).map(|m| (m.to[0].email.clone(), m.subject.clone())).collect()
}

fn find<'a>(sent: &'a [OutgoingMail], to: &str, subject_starts: &str) -> &'a OutgoingMail {
    sent.iter()
        .find(|m| m.to[0].email == to && m.subject.starts_with(subject_starts))
        .unwrap_or_else(|| panic!("no mail to {to} starting {subject_starts:?} among {:?}", since(sent, 0)))
}

fn token_of(url: &str) -> &str {
    url.split_once("?t=").unwrap_or_else(|| panic!("no token in {url}")).1
}

#[tokio::test]
async fn a_two_stage_request_mails_each_moment_once_then_warns_before_expiry() {
    let w = world(Settings::default()).await;
    let ada = w.person("ada", Some("ada@contoso.test")).await;
    let bob = w.person("bob", Some("bob@contoso.test")).await;
    let cy = w.person("cy", Some("cy@contoso.test")).await;
    w.two_stage_policy(&bob, &cy, None).await;
    w.drain().await;
    assert!(w.sent().is_empty(), "setting up mails nobody");

    let rid = w.request(&ada, "Quarter close <Q1>").await;
    w.drain().await;
    let sent = w.sent();
    let mut got = since(&sent, 0);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ada@contoso.test".to_owned(), "Submitted: your request for Ledger".to_owned()),
            ("bob@contoso.test".to_owned(), "Action required: approve or deny ada's request for Ledger".to_owned()),
        ]
    );
    let action = find(&sent, "bob@contoso.test", "Action required");
    assert_eq!(action.to[0].name.as_deref(), Some("bob"));
    assert!(action.text.contains("Justification: Quarter close <Q1>"), "{}", action.text);
    assert!(action.html.contains("Quarter close &#60;Q1&#62;"), "{}", action.html);
    assert!(action.text.contains("Approval: stage 1 of 2"), "{}", action.text);
    assert!(action.html.contains(&format!("href=\"https://steward.test/approvals/{rid}\"")), "{}", action.html);
    // The one-click links are signed for Bob, about this request, one each way.
    let key = LinkKey::derive(LINK_KEY);
    let now = w.clock_now().as_second();
    let links: Vec<&str> = action.text.lines().filter(|l| l.contains("/link?t=")).collect();
    assert_eq!(links.len(), 2, "{}", action.text);
    let approve = DecisionLink::check(token_of(links[0]), &key, now).unwrap();
    let deny = DecisionLink::check(token_of(links[1]), &key, now).unwrap();
    assert_eq!(
        (approve.request.to_string(), approve.approver.to_string(), approve.approve),
        (rid.clone(), bob.id.clone(), true)
    );
    assert!(!deny.approve && deny.nonce != approve.nonce);
    assert!(links[0].starts_with(&format!("Approve: https://steward.test/approvals/{rid}/link?t=")), "{}", links[0]);
    assert!(action.html.contains(token_of(links[0])), "the HTML body carries the same link");

    w.decide(&bob, &rid, true, "fine by me").await;
    w.drain().await;
    let sent = w.sent();
    let mut got = since(&sent, 2);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ada@contoso.test".to_owned(), "Stage 1 of 2 approved: your request for Ledger".to_owned()),
            ("cy@contoso.test".to_owned(), "Action required: approve or deny ada's request for Ledger".to_owned()),
        ]
    );
    assert!(find(&sent, "ada@contoso.test", "Stage 1").text.contains("approved by bob"));
    assert!(find(&sent, "cy@contoso.test", "Action required").text.contains("Approval: stage 2 of 2"));

    w.decide(&cy, &rid, true, "ok").await;
    w.drain().await;
    let sent = w.sent();
    let mut got = since(&sent, 4);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ada@contoso.test".to_owned(), "Approved: your request for Ledger".to_owned()),
            ("ada@contoso.test".to_owned(), "You now have access to Ledger".to_owned()),
        ]
    );
    let delivered = find(&sent, "ada@contoso.test", "You now have access");
    assert!(delivered.text.contains("- Ledger users (Member)"), "{}", delivered.text);
    assert!(delivered.html.contains("<li>Ledger users (Member)</li>"), "{}", delivered.html);
    w.drain().await;
    assert_eq!(w.sent().len(), 6, "each moment mails once");
    let ids: std::collections::HashSet<_> = w.sent().iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), 6, "each mail has its own Message-ID");
    assert!(ids.iter().all(|i| i.starts_with('<') && i.ends_with("@steward>")), "{ids:?}");

    // Before the end: 14 days, then one day, each once, with a link to extend.
    let a = w.app.get(&format!("{EM}/assignments?$filter=target/objectId%20eq%20'{}'", ada.id)).await.json();
    let end: jiff::Timestamp =
        a["value"][0]["schedule"]["expiration"]["endDateTime"].as_str().unwrap().parse().unwrap();
    w.set_clock(end.checked_sub(jiff::SignedDuration::from_hours(14 * 24 - 1)).unwrap()).await;
    w.drain().await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 6),
        vec![("ada@contoso.test".to_owned(), "Your access to Ledger ends in 14 days".to_owned())]
    );
    let warning = &w.sent()[6];
    assert!(warning.text.contains("Extend access: https://steward.test/access"), "{}", warning.text);
    w.set_clock(end.checked_sub(jiff::SignedDuration::from_hours(23)).unwrap()).await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 7),
        vec![("ada@contoso.test".to_owned(), "Your access to Ledger ends within a day".to_owned())]
    );
    // The end: access ended.
    w.set_clock(end.checked_add(jiff::SignedDuration::from_secs(5)).unwrap()).await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 8),
        vec![("ada@contoso.test".to_owned(), "Your access to Ledger has ended".to_owned())]
    );
    w.app.assert_no_5xx();
}

impl World {
    fn clock_now(&self) -> jiff::Timestamp {
        use steward_app::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn denials_carry_the_justification_and_cancelling_tells_the_approvers() {
    let w = world(Settings::default()).await;
    let ada = w.person("ada", Some("ada@contoso.test")).await;
    let bob = w.person("bob", Some("bob@contoso.test")).await;
    let cy = w.person("cy", Some("cy@contoso.test")).await;
    w.two_stage_policy(&bob, &cy, None).await;
    let rid = w.request(&ada, "please").await;
    w.drain().await;
    w.decide(&bob, &rid, false, "Not for the <audit> team").await;
    w.drain().await;
    let sent = w.sent();
    let denied = find(&sent, "ada@contoso.test", "Denied");
    assert_eq!(denied.subject, "Denied: your request for Ledger");
    assert!(denied.text.contains("Reason: Not for the <audit> team"), "{}", denied.text);
    assert!(denied.text.contains("was denied by bob"), "{}", denied.text);
    assert!(denied.html.contains("Not for the &#60;audit&#62; team"), "{}", denied.html);
    assert_eq!(w.sent().len(), 3, "submitted, action required, denied: {:?}", since(&w.sent(), 0));

    let again = w.request(&ada, "please, again").await;
    w.drain().await;
    let before = w.sent().len();
    let r = w
        .app
        .send(
            Method::POST,
            &format!("{EM}/assignmentRequests/{again}/cancel"),
            Some(&ada.token),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    r.expect(StatusCode::NO_CONTENT);
    w.drain().await;
    assert_eq!(
        since(&w.sent(), before),
        vec![("bob@contoso.test".to_owned(), "Cancelled: ada's request for Ledger".to_owned())],
        "only the approver who was asked hears"
    );
}

#[tokio::test]
async fn switches_turn_mail_off_and_people_without_an_address_are_skipped() {
    let settings = Settings { disabled: vec![NotificationKind::StageApproved], ..Settings::default() };
    let w = world(settings).await;
    let ada = w.person("ada", Some("ada@contoso.test")).await;
    let bob = w.person("bob", None).await;
    let cy = w.person("cy", Some("cy@contoso.test")).await;
    // An unknown kind is refused by name, and nothing is written.
    let bad = json!({"accessPackage": {"id": w.package}, "displayName": "Bad", "allowedTargetScope": "allMemberUsers",
        "notificationSettings": {"disabledNotifications": ["accessEnded", "teaTime"]}});
    let r = w.app.post(&format!("{EM}/assignmentPolicies"), &bad).await;
    let code = r.expect_error(StatusCode::BAD_REQUEST);
    assert!(r.text.contains("teaTime"), "{code}: {}", r.text);
    w.two_stage_policy(&bob, &cy, Some(json!({"disabledNotifications": ["requestSubmitted", "accessDelivered"]})))
        .await;
    let rid = w.request(&ada, "please").await;
    w.drain().await;
    assert!(w.sent().is_empty(), "submitted is off, and Bob has no address: {:?}", since(&w.sent(), 0));
    w.decide(&bob, &rid, true, "ok").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 0),
        vec![("cy@contoso.test".to_owned(), "Action required: approve or deny ada's request for Ledger".to_owned())],
        "stage approved is off everywhere"
    );
    w.decide(&cy, &rid, true, "ok").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 1),
        vec![("ada@contoso.test".to_owned(), "Approved: your request for Ledger".to_owned())]
    );

    // Graph's switch: no requestor mail at all, approvers still hear.
    let w = world(Settings::default()).await;
    let ada = w.person("ada", Some("ada@contoso.test")).await;
    let bob = w.person("bob", Some("bob@contoso.test")).await;
    let cy = w.person("cy", Some("cy@contoso.test")).await;
    let policy = w.two_stage_policy(&bob, &cy, Some(json!({"isAssignmentNotificationDisabled": true}))).await;
    let got = w.app.get(&format!("{EM}/assignmentPolicies/{policy}")).await.json();
    assert_eq!(got["notificationSettings"]["isAssignmentNotificationDisabled"], true, "{got}");
    w.request(&ada, "please").await;
    w.drain().await;
    assert_eq!(since(&w.sent(), 0).iter().map(|(to, _)| to.as_str()).collect::<Vec<_>>(), ["bob@contoso.test"]);
    let _ = (ada.mail, cy.mail);
}

#[tokio::test]
async fn a_relay_that_defers_is_tried_again_later_and_one_that_refuses_is_given_up() {
    let w = world(Settings::default()).await;
    let ada = w.person("ada", Some("ada@contoso.test")).await;
    let bob = w.person("bob", Some("reject-bob@contoso.test")).await;
    let cy = w.person("cy", Some("cy@contoso.test")).await;
    w.two_stage_policy(&bob, &cy, None).await;
    w.outbox.0.set_failing(true);
    let started = std::time::Instant::now();
    let rid = w.request(&ada, "please").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a request never waits for mail");
    w.drain().await;
    assert!(w.sent().is_empty());
    // Bob's address is refused for good; Ada's submitted mail waits.
    w.outbox.0.set_failing(false);
    w.advance("PT10S").await;
    w.drain().await;
    assert!(w.sent().is_empty(), "not before the retry is due");
    w.advance("PT30S").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 0),
        vec![("ada@contoso.test".to_owned(), "Submitted: your request for Ledger".to_owned())]
    );
    w.advance("PT5M").await;
    w.drain().await;
    assert_eq!(w.sent().len(), 1, "sent once; the refused one is not tried again");
    let refused = steward_app::notify::key(
        NotificationKind::ActionRequired,
        &stage_source(&w, &rid).await,
        "reject-bob@contoso.test",
    );
    let n = w.app.services.store.get_notice(&refused).await.unwrap().expect("the refused notice is kept");
    assert_eq!(n.state, NoticeState::Failed);
    assert!(n.last_error.as_deref().unwrap_or_default().contains("550"), "{n:?}");
}

/// The source of the first stage's "action required": `stage:<stage id>`.
async fn stage_source(w: &World, rid: &str) -> String {
    let r = w.app.services.store.get_request(rid.parse().unwrap()).await.unwrap().unwrap();
    format!("stage:{}", r.detail.stages[0].id)
}

#[tokio::test]
async fn reviewers_hear_that_a_review_started_halfway_through_and_before_it_ends() {
    let w = world(Settings::default()).await;
    let policy = w
        .app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": w.package}, "displayName": "Direct", "allowedTargetScope": "notSpecified"}),
        )
        .await
        .expect(StatusCode::CREATED)
        .id();
    let ann = w.person("ann", Some("ann@contoso.test")).await;
    let rev = w.person("rev", Some("rev@contoso.test")).await;
    let body = json!({"requestType": "adminAdd", "assignment": {"accessPackageId": w.package,
        "assignmentPolicyId": policy, "targetId": ann.id}});
    w.app.post(&format!("{EM}/assignmentRequests"), &body).await.expect(StatusCode::CREATED);
    w.drain().await;
    let delivered = w.sent().len();
    assert_eq!(delivered, 1, "an administrator's assignment: delivered only: {:?}", since(&w.sent(), 0));
    let scope = json!({"@odata.type": "#microsoft.graph.accessReviewQueryScope", "queryType": "MicrosoftGraph",
        "query": format!("/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{}')", w.package)});
    let d = w
        .app
        .post(
            AR,
            &json!({"displayName": "Ledger <quarterly>", "scope": scope,
                "reviewers": [{"query": format!("/users/{}", rev.id), "queryType": "MicrosoftGraph"}],
                "settings": {"instanceDurationInDays": 10, "mailNotificationsEnabled": true,
                    "reminderNotificationsEnabled": true}}),
        )
        .await
        .expect(StatusCode::CREATED)
        .id();
    w.drain().await;
    let inst = w.app.get(&format!("{AR}/{d}/instances")).await.json()["value"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        since(&w.sent(), delivered),
        vec![("rev@contoso.test".to_owned(), "Access review: Ledger <quarterly>".to_owned())]
    );
    let started = w.sent()[delivered].clone();
    assert!(
        started.text.contains(&format!("Start reviewing: https://steward.test/reviews/{d}/{inst}")),
        "{}",
        started.text
    );
    assert!(started.html.contains("Ledger &#60;quarterly&#62;"), "{}", started.html);
    // Halfway through: the reminder job.
    w.advance("P5DT1H").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), delivered + 1),
        vec![(
            "rev@contoso.test".to_owned(),
            "Reminder: 1 decision wait for you in the access review Ledger <quarterly>".to_owned()
        )]
    );
    // Two days before the end.
    w.advance("P3D").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), delivered + 2),
        vec![("rev@contoso.test".to_owned(), "Ending soon: the access review Ledger <quarterly>".to_owned())]
    );
    w.advance("P1D").await;
    w.drain().await;
    assert_eq!(w.sent().len(), delivered + 3, "once each");
    let _ = &w.catalog;
}

#[tokio::test]
async fn without_a_mailer_nothing_is_derived_and_the_cursor_follows_the_chain() {
    let app = TestApp::with_test_clock(START).await;
    let user = app.user("Ada", "ada@contoso.test").await;
    let cat = app.catalog("C").await;
    let pkg = app.package(&cat, "P").await;
    let policy = app
        .post(
            &format!("{EM}/assignmentPolicies"),
            &json!({"accessPackage": {"id": pkg}, "displayName": "Direct", "allowedTargetScope": "notSpecified"}),
        )
        .await
        .expect(StatusCode::CREATED)
        .id();
    let body = json!({"requestType": "adminAdd", "assignment": {"accessPackageId": pkg, "assignmentPolicyId": policy,
        "targetId": user}});
    app.post(&format!("{EM}/assignmentRequests"), &body).await.expect(StatusCode::CREATED);
    app.post("/ops/clock", &json!({"advance": "PT1S"})).await.expect(StatusCode::OK);
    app.post("/ops/jobs/drain", &json!({})).await.expect(StatusCode::OK);
    let store = &app.services.store;
    let head = store.audit_chain_state().await.unwrap().head.seq;
    assert!(head > 0);
    assert_eq!(store.notify_cursor().await.unwrap(), head, "moved on without mailing");
    assert!(store.claim_notices("x", jiff::Timestamp::MAX, jiff::Timestamp::MAX, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn approvers_are_reminded_a_day_ahead_then_escalated_to_and_the_requestor_hears_of_the_timeout() {
    let w = world(Settings::default()).await;
    let ada = w.person("ada", Some("ada@contoso.test")).await;
    let bob = w.person("bob", Some("bob@contoso.test")).await;
    let cy = w.person("cy", Some("cy@contoso.test")).await;
    let body = json!({"accessPackage": {"id": w.package}, "displayName": "Escalating",
        "allowedTargetScope": "allMemberUsers", "requestorSettings": {"enableTargetsToSelfAddAccess": true},
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [{
            "durationBeforeAutomaticDenial": "P4D", "isEscalationEnabled": true, "durationBeforeEscalation": "P2D",
            "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": bob.id}],
            "escalationApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": cy.id}]}]}});
    w.app.post(&format!("{EM}/assignmentPolicies"), &body).await.expect(StatusCode::CREATED);
    w.drain().await;
    let rid = w.request(&ada, "please").await;
    w.drain().await;
    assert_eq!(w.sent().len(), 2, "{:?}", since(&w.sent(), 0));
    w.advance("PT12H").await;
    w.drain().await;
    assert_eq!(w.sent().len(), 2, "not yet");
    w.advance("PT13H").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 2),
        vec![("bob@contoso.test".to_owned(), "Reminder: approve or deny ada's request for Ledger".to_owned())]
    );
    let reminder = &w.sent()[2];
    assert!(reminder.text.contains("Decide by: 2031-03-03 09:00 UTC"), "{}", reminder.text);
    assert_eq!(reminder.text.matches("/link?t=").count(), 2, "{}", reminder.text);
    w.advance("P1D").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 3),
        vec![("cy@contoso.test".to_owned(), "Escalated to you: ada's request for Ledger".to_owned())]
    );
    let escalated = &w.sent()[3];
    let token = escalated.text.lines().find(|l| l.starts_with("Approve: ")).map(token_of).unwrap();
    let link = DecisionLink::check(token, &LinkKey::derive(LINK_KEY), w.clock_now().as_second()).unwrap();
    assert_eq!(link.approver.to_string(), cy.id);
    // A day before the timeout, Cy is reminded; then Ada hears it timed out.
    w.advance("P1DT1H").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 4),
        vec![("cy@contoso.test".to_owned(), "Reminder: approve or deny ada's request for Ledger".to_owned())]
    );
    w.advance("P1D").await;
    w.drain().await;
    assert_eq!(
        since(&w.sent(), 5),
        vec![("ada@contoso.test".to_owned(), "Timed out: your request for Ledger".to_owned())]
    );
    let r = w.app.get(&format!("{EM}/assignmentRequests/{rid}")).await.json();
    assert_eq!(r["state"], "denied", "{r}");
    w.advance("P2D").await;
    w.drain().await;
    assert_eq!(w.sent().len(), 6, "once each");
}

#[tokio::test]
async fn a_future_start_is_announced_when_it_comes() {
    let w = world(Settings::default()).await;
    let ada = w.person("ada", Some("ada@contoso.test")).await;
    let body = json!({"accessPackage": {"id": w.package}, "displayName": "Self-service",
        "allowedTargetScope": "allMemberUsers",
        "requestorSettings": {"enableTargetsToSelfAddAccess": true, "allowCustomAssignmentSchedule": true}});
    w.app.post(&format!("{EM}/assignmentPolicies"), &body).await.expect(StatusCode::CREATED);
    w.drain().await;
    let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": w.package},
        "schedule": {"startDateTime": "2031-03-05T09:00:00Z"}});
    w.app
        .json_as(&ada.token, Method::POST, &format!("{EM}/assignmentRequests"), &body)
        .await
        .expect(StatusCode::CREATED);
    w.drain().await;
    assert!(w.sent().is_empty(), "no approval asked, nothing started: {:?}", since(&w.sent(), 0));
    w.set_clock("2031-03-05T09:00:00Z".parse().unwrap()).await;
    w.drain().await;
    let mut got = since(&w.sent(), 0);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("ada@contoso.test".to_owned(), "You now have access to Ledger".to_owned()),
            ("ada@contoso.test".to_owned(), "Your access to Ledger starts now".to_owned()),
        ]
    );
}

#[tokio::test]
async fn administrators_get_a_daily_digest_of_failed_deliveries() {
    use steward_domain::audit::{Activity, AuditEvent, Initiator};
    let w = world(Settings::default()).await;
    let admin = w.person("root", Some("root@contoso.test")).await;
    let quiet = w.person("quiet", None).await;
    for who in [&admin, &quiet] {
        w.app
            .post(
                "/v1.0/roleManagement/entitlementManagement/roleAssignments",
                &json!({"principalId": who.id, "roleDefinitionId": "5e3f5c8e-7a8b-4d2e-9f1a-57e3a4d0a001",
                    "directoryScopeId": "/", "appScopeId": "/"}),
            )
            .await
            .expect(StatusCode::CREATED);
    }
    w.drain().await;
    let fail = |detail: &str| {
        use steward_app::Clock;
        AuditEvent::new(w.clock.now(), Activity::Failed, Initiator::System, "AccessPackageAssignment", "a-1", "r-1")
            .with_detail(detail)
            .failed()
    };
    let store = &w.app.services.store;
    store
        .apply(&steward_app::ports::Batch {
            events: vec![fail("Grant Member of Ledger users: <gone>")],
            ..Default::default()
        })
        .await
        .unwrap();
    w.advance("PT12H").await;
    w.drain().await;
    assert!(w.sent().is_empty(), "not before a day has passed");
    w.advance("PT12H").await;
    w.drain().await;
    assert_eq!(since(&w.sent(), 0).len(), 1, "{:?}", since(&w.sent(), 0));
    let digest = &w.sent()[0];
    assert_eq!(digest.to[0].email, "root@contoso.test");
    assert!(digest.subject.starts_with("Steward digest: 1 failed deliveries"), "{}", digest.subject);
    assert!(digest.text.contains("Delivery failed: Grant Member of Ledger users: <gone>"), "{}", digest.text);
    assert!(digest.html.contains("&#60;gone&#62;"), "{}", digest.html);
    // Nothing new: no digest; something new: the next one, a day later at the earliest.
    w.advance("P1D").await;
    w.drain().await;
    assert_eq!(w.sent().len(), 1);
    store
        .apply(&steward_app::ports::Batch {
            events: vec![fail("Grant Member of Ledger users: again")],
            ..Default::default()
        })
        .await
        .unwrap();
    w.advance("PT2H").await;
    w.drain().await;
    assert_eq!(w.sent().len(), 1, "at most one a day");
    w.advance("P1D").await;
    w.drain().await;
    assert_eq!(w.sent().len(), 2);
    assert!(w.sent()[1].text.contains("again") && !w.sent()[1].text.contains("<gone>"), "{}", w.sent()[1].text);
}
