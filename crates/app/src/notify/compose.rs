//! The words of every notification: what each kind says about its topic (subject, heading,
//! paragraphs, facts, a list, buttons), rendered through one pair of askama templates
//! (`templates/mail/notice.html`, escaped, and `notice.txt`) into the plain-text and HTML
//! bodies, with deep links into the portal built from the public URL.

use askama::Template;
use jiff::Timestamp;
use steward_domain::directory::User;
use steward_domain::ids::{AccessPackageId, PolicyId, RequestId, ReviewDefinitionId, ReviewInstanceId, UserId};
use steward_domain::notification::NotificationKind as K;

use super::Notice;
use crate::decision_links::DecisionUrls;

/// A request as its mails tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTopic {
    pub request: RequestId,
    pub package: String,
    pub package_id: AccessPackageId,
    /// Who the access is for.
    pub target: String,
    /// Who asked on the target's behalf, when that is someone else.
    pub on_behalf_of: Option<String>,
    /// Whether it asks to extend an assignment rather than for new access.
    pub extension: bool,
    /// The requestor's justification.
    pub justification: Option<String>,
    /// The stage concerned, counted from 1, and how many there are.
    pub stage: Option<(usize, usize)>,
    /// Who decided (an approval or a denial).
    pub by: Option<String>,
    /// Why it ended as it did (a denial's justification, a failure).
    pub reason: Option<String>,
    /// Resources granted, or those whose delivery failed.
    pub resources: Vec<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// When the open stage escalates or times out.
    pub deadline: Option<Timestamp>,
}

/// An access review as its mails tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewTopic {
    pub definition: ReviewDefinitionId,
    pub instance: ReviewInstanceId,
    pub name: String,
    /// Decisions waiting for the recipient.
    pub pending: usize,
    /// When the stage under way (or the review) ends.
    pub end: Timestamp,
}

/// The administrators' digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTopic {
    pub since: Timestamp,
    pub until: Timestamp,
    /// One line per failed delivery, newest last.
    pub failures: Vec<String>,
    pub more_failures: usize,
    /// One line per holder found in a target whom Steward did not grant the role.
    pub drift: Vec<String>,
    pub more_drift: usize,
}

/// What a mail is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    Request(Box<RequestTopic>),
    /// An assignment that ends soon (expiry warning) or ended.
    Access {
        package: String,
        package_id: AccessPackageId,
        end: Timestamp,
        removed: bool,
    },
    Review(ReviewTopic),
    Digest(DigestTopic),
}

/// One notice to queue, before it is rendered for its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub kind: K,
    /// The audit event or timer key it comes from (part of its id).
    pub source: String,
    pub to: UserId,
    /// The policy whose `notificationSettings` apply, if any.
    pub policy: Option<PolicyId>,
    pub topic: Topic,
}

/// One label and value shown as a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

/// A button-styled link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub label: String,
    pub url: String,
    pub primary: bool,
}

/// A mail before it is rendered: what both bodies say, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub heading: String,
    pub greeting: String,
    pub paragraphs: Vec<String>,
    pub facts: Vec<Fact>,
    pub items_title: String,
    pub items: Vec<String>,
    pub actions: Vec<Action>,
    pub footer: String,
}

#[derive(Template)]
#[template(path = "mail/notice.html")]
struct Html<'a> {
    mail: &'a Mail,
}

#[derive(Template)]
#[template(path = "mail/notice.txt")]
struct Text<'a> {
    mail: &'a Mail,
}

/// Why a mail could not be rendered (a template error: a bug, never the data).
#[derive(Debug, thiserror::Error)]
#[error("a notification could not be rendered: {0}")]
pub struct RenderError(#[from] askama::Error);

/// The links a mail may carry.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The portal's base URL (no trailing slash); without it mails carry no links.
    pub base: Option<String>,
    /// An approver's one-click links, for "action required".
    pub decision: Option<DecisionUrls>,
}

impl Links {
    fn to(&self, path: &str) -> Option<String> {
        self.base.as_ref().map(|b| format!("{b}{path}"))
    }
}

/// A date as people read it, in UTC.
pub fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Text that goes into a header: one line, clipped.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    steward_domain::text::clip(flat.trim(), max)
}

/// Whole days from `now` to `end`, rounded up (ends in 30 hours: 2 days).
pub fn days_until(now: Timestamp, end: Timestamp) -> i64 {
    let secs = end.duration_since(now).as_secs().max(0);
    (secs + 86_399) / 86_400
}

fn in_days(days: i64) -> String {
    match days {
        ..=0 => "today".to_owned(),
        1 => "within a day".to_owned(),
        n => format!("in {n} days"),
    }
}

/// What `kind` says about `topic` to `to`, at `now`.
pub fn mail(kind: K, topic: &Topic, to: &User, links: &Links, now: Timestamp) -> Mail {
    let mut m = Mail {
        greeting: format!("Hello {},", to.display_name.as_str()),
        footer: "This message was sent by Steward, which manages access in your organization. It was sent \
                 automatically; replies are not read."
            .to_owned(),
        ..Mail::default()
    };
    match topic {
        Topic::Request(r) => request_mail(kind, r, links, now, &mut m),
        Topic::Access { package, end, removed, .. } => {
            if kind == K::ExpiryWarning {
                let days = days_until(now, *end);
                m.subject = format!("Your access to {package} ends {}", in_days(days));
                m.heading = format!("Your access to {package} ends soon");
                m.paragraphs.push(format!(
                    "Your access to {package} ends on {}. If you still need it after that, ask to extend it before \
                     it ends.",
                    when(*end)
                ));
                m.facts.push(Fact { label: "Ends".into(), value: when(*end) });
                if let Some(url) = links.to("/access") {
                    m.actions.push(Action { label: "Extend access".into(), url, primary: true });
                }
            } else {
                m.subject = format!("Your access to {package} has ended");
                m.heading = m.subject.clone();
                let how = if *removed { "was removed" } else { "expired" };
                m.paragraphs.push(format!("Your access to {package} {how} on {}.", when(*end)));
                m.paragraphs.push("If you need it again, you can request it in My Access.".into());
                if let Some(url) = links.to("/access-packages") {
                    m.actions.push(Action { label: "Open My Access".into(), url, primary: false });
                }
            }
        }
        Topic::Review(r) => review_mail(kind, r, links, &mut m),
        Topic::Digest(d) => digest_mail(d, links, &mut m),
    }
    m.subject = one_line(&m.subject, 180);
    m
}

fn request_mail(kind: K, r: &RequestTopic, links: &Links, now: Timestamp, m: &mut Mail) {
    let (pkg, target) = (&r.package, &r.target);
    let what = if r.extension { "extension of access to" } else { "access to" };
    let asked = match &r.on_behalf_of {
        Some(by) => format!("{by} asked, on behalf of {target}, for {what} {pkg}."),
        None => format!("{target} asked for {what} {pkg}."),
    };
    let stage = r.stage.filter(|(_, of)| *of > 1).map(|(n, of)| format!("stage {n} of {of}"));
    let approval_page = links.to(&format!("/approvals/{}", r.request));
    let request_page = links.to(&format!("/requests/{}", r.request));
    let mine = if r.extension { format!("your request to extend {pkg}") } else { format!("your request for {pkg}") };
    let facts_of_request = |m: &mut Mail| {
        m.facts.push(Fact { label: "Access package".into(), value: pkg.clone() });
        m.facts.push(Fact { label: "For".into(), value: target.clone() });
        if let Some(j) = &r.justification {
            m.facts.push(Fact { label: "Justification".into(), value: j.clone() });
        }
        if let Some(s) = &stage {
            m.facts.push(Fact { label: "Approval".into(), value: s.clone() });
        }
        if let Some(d) = r.deadline {
            m.facts.push(Fact { label: "Decide by".into(), value: when(d) });
        }
    };
    let see_request = |m: &mut Mail| {
        if let Some(url) = request_page.clone() {
            m.actions.push(Action { label: "View the request".into(), url, primary: false });
        }
    };
    match kind {
        K::ActionRequired | K::ApprovalReminder | K::Escalated => {
            (m.subject, m.heading) = match kind {
                K::ApprovalReminder => (
                    format!("Reminder: approve or deny {target}'s request for {pkg}"),
                    "A request still waits for your decision".to_owned(),
                ),
                K::Escalated => (
                    format!("Escalated to you: {target}'s request for {pkg}"),
                    "A request was escalated to you".to_owned(),
                ),
                _ => (
                    format!("Action required: approve or deny {target}'s request for {pkg}"),
                    "A request waits for your approval".to_owned(),
                ),
            };
            m.paragraphs.push(asked);
            if kind == K::Escalated {
                m.paragraphs.push("Its approvers did not decide in time, so the decision is now yours.".into());
            }
            facts_of_request(m);
            match &links.decision {
                Some(d) => {
                    m.paragraphs.push(
                        "Approve or deny with one click below (you will be asked to sign in), or open the request to \
                         read it in full first."
                            .into(),
                    );
                    m.actions.push(Action { label: "Approve".into(), url: d.approve.clone(), primary: true });
                    m.actions.push(Action { label: "Deny".into(), url: d.deny.clone(), primary: false });
                    if let Some(url) = approval_page {
                        m.actions.push(Action { label: "Open the request".into(), url, primary: false });
                    }
                }
                None => {
                    if let Some(url) = approval_page {
                        m.actions.push(Action { label: "Review the request".into(), url, primary: true });
                    }
                }
            }
        }
        K::RequestCancelled => {
            m.subject = format!("Cancelled: {target}'s request for {pkg}");
            m.heading = "A request you were asked to approve was cancelled".into();
            m.paragraphs.push(asked);
            m.paragraphs.push("It was cancelled, so no decision is needed from you any more.".into());
            facts_of_request(m);
        }
        K::RequestSubmitted => {
            m.subject = format!("Submitted: {mine}");
            m.heading = "Your request was submitted".into();
            m.paragraphs.push(asked);
            m.paragraphs.push("It now waits for approval. You will hear from us when it is decided.".into());
            facts_of_request(m);
            see_request(m);
        }
        K::StageApproved => {
            let (n, of) = r.stage.unwrap_or((1, 1));
            m.subject = format!("Stage {n} of {of} approved: {mine}");
            m.heading = format!("Approval stage {n} of {of} is complete");
            let by = r.by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default();
            m.paragraphs.push(format!("Stage {n} of the approval of {mine} was approved{by}."));
            m.paragraphs.push(format!("It now waits for stage {} of {of}.", n + 1));
            see_request(m);
        }
        K::RequestApproved => {
            m.subject = format!("Approved: {mine}");
            m.heading = "Your request was approved".into();
            let by = r.by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default();
            m.paragraphs.push(format!("{} was approved{by}.", capitalise(&mine)));
            match r.start {
                Some(s) if s > now && !r.extension => {
                    m.paragraphs.push(format!("Your access starts on {}.", when(s)));
                }
                _ if r.extension => {
                    if let Some(e) = r.end {
                        m.paragraphs.push(format!("Your access now lasts until {}.", when(e)));
                    }
                }
                _ => m.paragraphs.push("Your access is being set up; you will hear when it is ready.".into()),
            }
            see_request(m);
        }
        K::RequestDenied => {
            m.subject = format!("Denied: {mine}");
            m.heading = "Your request was denied".into();
            let by = r.by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default();
            m.paragraphs.push(format!("{} was denied{by}.", capitalise(&mine)));
            if let Some(why) = &r.reason {
                m.facts.push(Fact { label: "Reason".into(), value: why.clone() });
            }
            see_request(m);
        }
        K::RequestTimedOut => {
            m.subject = format!("Timed out: {mine}");
            m.heading = "Your request timed out".into();
            m.paragraphs
                .push(format!("Nobody decided on {mine} in time, so it was closed. You can request the access again."));
            see_request(m);
        }
        K::ScheduledStart => {
            m.subject = format!("Your access to {pkg} starts now");
            m.heading = m.subject.clone();
            m.paragraphs.push(format!(
                "The start you asked for has come: your access to {pkg} is being set up. You will hear when it is \
                 ready."
            ));
            see_request(m);
        }
        K::AccessDelivered => {
            m.subject = format!("You now have access to {pkg}");
            m.heading = m.subject.clone();
            m.paragraphs.push(format!("Your access to {pkg} is ready."));
            if let Some(e) = r.end {
                m.facts.push(Fact { label: "Until".into(), value: when(e) });
            }
            if !r.resources.is_empty() {
                m.items_title = "You now have".into();
                m.items = r.resources.clone();
            }
            if let Some(url) = links.to("/access") {
                m.actions.push(Action { label: "See your access".into(), url, primary: true });
            }
        }
        K::DeliveryFailed => {
            m.subject = format!("Access to {pkg} could not be set up");
            m.heading = m.subject.clone();
            m.paragraphs.push(format!(
                "Your request for {pkg} was approved, but some of the access could not be set up. Administrators \
                 have been told and can try again."
            ));
            if !r.resources.is_empty() {
                m.items_title = "What failed".into();
                m.items = r.resources.clone();
            }
            see_request(m);
        }
        K::AccessEnded => {
            m.subject = format!("Your access to {pkg} has ended");
            m.heading = m.subject.clone();
            m.paragraphs.push(format!("Your access to {pkg} was removed."));
        }
        // Not about a request; `derive` never pairs these with one.
        K::ExpiryWarning | K::ReviewStarted | K::ReviewReminder | K::ReviewEnding | K::AdminDigest => {
            m.subject = format!("About your request for {pkg}");
            m.heading = m.subject.clone();
            see_request(m);
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn review_mail(kind: K, r: &ReviewTopic, links: &Links, m: &mut Mail) {
    let (name, n) = (&r.name, r.pending);
    let decisions = if n == 1 { "1 decision".to_owned() } else { format!("{n} decisions") };
    (m.subject, m.heading) = match kind {
        K::ReviewReminder => (
            format!("Reminder: {decisions} wait for you in the access review {name}"),
            "Reminder: an access review waits for you".to_owned(),
        ),
        K::ReviewEnding => (format!("Ending soon: the access review {name}"), "An access review ends soon".to_owned()),
        _ => (format!("Access review: {name}"), "You were asked to review access".to_owned()),
    };
    m.paragraphs
        .push(format!("You are a reviewer of {name}: {decisions} about who should keep their access wait for you."));
    m.paragraphs
        .push(format!("Please decide by {}. Decisions not made by then take the review's default.", when(r.end)));
    m.facts.push(Fact { label: "Review".into(), value: name.clone() });
    m.facts.push(Fact { label: "To decide".into(), value: decisions });
    m.facts.push(Fact { label: "Ends".into(), value: when(r.end) });
    if let Some(url) = links.to(&format!("/reviews/{}/{}", r.definition, r.instance)) {
        m.actions.push(Action { label: "Start reviewing".into(), url, primary: true });
    }
}

fn digest_mail(d: &DigestTopic, links: &Links, m: &mut Mail) {
    let failures = d.failures.len() + d.more_failures;
    let drift = d.drift.len() + d.more_drift;
    m.subject = format!("Steward digest: {failures} failed deliveries, {drift} holders not granted by Steward");
    m.heading = "What needs your attention".into();
    m.paragraphs.push(format!("Between {} and {}:", when(d.since), when(d.until)));
    let mut items: Vec<String> = Vec::new();
    items.extend(d.failures.iter().map(|f| format!("Delivery failed: {f}")));
    if d.more_failures > 0 {
        items.push(format!("… and {} more failed deliveries", d.more_failures));
    }
    items.extend(d.drift.iter().map(|x| format!("Drift: {x}")));
    if d.more_drift > 0 {
        items.push(format!("… and {} more holders not granted by Steward", d.more_drift));
    }
    m.items_title = "Found".into();
    m.items = items;
    if let Some(url) = links.to("/admin/requests") {
        m.actions.push(Action { label: "Open the admin console".into(), url, primary: true });
    }
}

/// Renders `mail` into both bodies.
pub fn render(mail: &Mail) -> Result<(String, String), RenderError> {
    let text = Text { mail }.render()?;
    let html = Html { mail }.render()?;
    Ok((text, html))
}

/// The notice of `draft` for `to` (who has an address), rendered, due at `now`.
pub fn notice(draft: &Draft, to: &User, email: &str, links: &Links, now: Timestamp) -> Result<Notice, RenderError> {
    let m = mail(draft.kind, &draft.topic, to, links, now);
    let (text_body, html_body) = render(&m)?;
    Ok(Notice {
        recipient_name: Some(to.display_name.as_str().to_owned()),
        user_id: Some(to.id),
        subject: m.subject,
        text_body,
        html_body,
        ..Notice::due(draft.kind, super::Channel::Mail, email.to_owned(), &draft.source, now)
    })
}

#[cfg(test)]
mod tests {
    use steward_domain::enums::UserType;
    use steward_domain::text::DisplayName;

    use super::*;

    fn user(name: &str) -> User {
        User {
            id: UserId::new(),
            display_name: DisplayName::parse(name).unwrap(),
            user_principal_name: "u@example.test".into(),
            mail: Some("u@example.test".into()),
            user_type: UserType::Member,
            account_enabled: true,
            department: None,
            job_title: None,
            company_name: None,
            employee_id: None,
            city: None,
            country: None,
            created_date_time: Timestamp::UNIX_EPOCH,
            manager: None,
        }
    }

    fn topic() -> RequestTopic {
        RequestTopic {
            request: RequestId::new(),
            package: "Sales <Reports> & Co".into(),
            package_id: AccessPackageId::new(),
            target: "Ada".into(),
            on_behalf_of: None,
            extension: false,
            justification: Some("Quarterly \"numbers\"".into()),
            stage: Some((1, 2)),
            by: None,
            reason: None,
            resources: vec!["Sales group (Member)".into()],
            start: None,
            end: None,
            deadline: None,
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = topic();
        let links = Links {
            base: Some("https://steward.test".into()),
            decision: Some(DecisionUrls {
                approve: "https://steward.test/a?t=1".into(),
                deny: "https://steward.test/d?t=1".into(),
            }),
        };
        let now: Timestamp = "2031-03-01T09:00:00Z".parse().unwrap();
        let m = mail(K::ActionRequired, &Topic::Request(Box::new(t.clone())), &user("Bea <b>"), &links, now);
        let (text, html) = render(&m).unwrap();
        assert!(html.contains("Sales &#60;Reports&#62; &#38; Co"), "{html}");
        assert!(!html.contains("<Reports>") && !html.contains("<b>"), "{html}");
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"), "{html}");
        assert!(html.contains("<h1"), "{html}");
        assert!(html.contains(&format!("href=\"https://steward.test/approvals/{}\"", t.request)), "{html}");
        assert!(html.contains("href=\"https://steward.test/a?t=1\""), "{html}");
        assert!(text.contains("Sales <Reports> & Co"), "{text}");
        assert!(text.contains("Approve: https://steward.test/a?t=1"), "{text}");
        assert!(text.contains("Justification: Quarterly \"numbers\""), "{text}");
        assert!(text.contains("Approval: stage 1 of 2"), "{text}");
        assert!(m.subject.starts_with("Action required"), "{}", m.subject);
    }

    #[test]
    fn without_a_public_url_there_are_no_links() {
        let now: Timestamp = "2031-03-01T09:00:00Z".parse().unwrap();
        for kind in steward_domain::notification::NotificationKind::ALL {
            let m = mail(*kind, &Topic::Request(Box::new(topic())), &user("Bea"), &Links::default(), now);
            let (text, html) = render(&m).unwrap();
            assert!(!text.contains("http") && !html.contains("href"), "{kind}: {text}");
            assert!(!m.subject.is_empty() && !m.subject.contains('\n'), "{kind}");
        }
    }

    #[test]
    fn expiry_warnings_count_days_and_link_to_extend() {
        let now: Timestamp = "2031-03-01T09:00:00Z".parse().unwrap();
        let end: Timestamp = "2031-03-15T09:00:00Z".parse().unwrap();
        let links = Links { base: Some("https://steward.test".into()), decision: None };
        let topic = Topic::Access { package: "VPN".into(), package_id: AccessPackageId::new(), end, removed: false };
        let m = mail(K::ExpiryWarning, &topic, &user("Ada"), &links, now);
        assert_eq!(m.subject, "Your access to VPN ends in 14 days");
        assert_eq!(m.actions[0].url, "https://steward.test/access");
        let m = mail(K::ExpiryWarning, &topic, &user("Ada"), &links, "2031-03-14T09:00:00Z".parse().unwrap());
        assert_eq!(m.subject, "Your access to VPN ends within a day");
        assert_eq!(days_until(now, "2031-03-02T15:00:00Z".parse().unwrap()), 2);
    }
}
