//! The notification engine: email about what happened, fed from the audit trail. Each worker
//! round, after the audit chain's pass, turns the newly chained events into notices
//! (`derive`), the sweep queues what the clock brings (`timers`: expiry warnings, approval
//! reminders, reviews ending, the administrators' digest), both rendered from templates
//! (`compose`) into an outbox in the store, and the round then sends the due ones through the
//! `Mailer` port (`send`) with retries. Requests never send mail: they only write audit events.

pub mod compose;
pub mod derive;
pub mod send;
pub mod timers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use steward_domain::directory::User;
use steward_domain::ids::{PolicyId, UserId};
pub use steward_domain::notification::NotificationKind;
use steward_domain::notification::{NotificationKind as K, PolicySwitches};
use steward_domain::policy::AssignmentPolicy;

use crate::{AppError, Services, mail};

/// Where a notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    /// Waiting to be sent (again) at `next_at`.
    Pending,
    Sent,
    /// Given up: the server refused it for good, or it could not be sent for `GIVE_UP_AFTER`.
    Failed,
}

impl NoticeState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed].into_iter().find(|x| x.as_str() == s)
    }
}

/// How a notice goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An email to `recipient`.
    Mail,
    /// A message to the chat webhook whose id is `recipient`; `text_body` is its JSON body.
    Chat,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Mail, Self::Chat].into_iter().find(|x| x.as_str() == s)
    }
}

/// One rendered mail or chat message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `key(kind, source, recipient)`: the same notice is queued at most once.
    pub id: String,
    pub kind: NotificationKind,
    pub channel: Channel,
    /// The recipient's email address, or the chat webhook's id.
    pub recipient: String,
    pub recipient_name: Option<String>,
    /// The directory user it is for.
    pub user_id: Option<UserId>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// What it came from: an audit event id, or a timer's key.
    pub source: String,
    pub created_at: Timestamp,
    /// When it is (next) due to be sent.
    pub next_at: Timestamp,
    /// Send attempts so far.
    pub attempts: u32,
    pub state: NoticeState,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
}

impl Notice {
    /// A notice of `kind` through `channel` to `recipient`, from `source`, with its id (`key`)
    /// and no content yet, due at `now` and not tried: the caller fills in what it says.
    pub fn due(kind: NotificationKind, channel: Channel, recipient: String, source: &str, now: Timestamp) -> Self {
        Self {
            id: key(kind, source, &recipient),
            kind,
            channel,
            recipient,
            recipient_name: None,
            user_id: None,
            subject: String::new(),
            text_body: String::new(),
            html_body: String::new(),
            source: source.to_owned(),
            created_at: now,
            next_at: now,
            attempts: 0,
            state: NoticeState::Pending,
            last_error: None,
            sent_at: None,
        }
    }

    /// The mail's Message-ID: the same for every attempt, so a mail sent again is recognisable.
    pub fn message_id(&self) -> String {
        format!("<{}@steward>", self.id)
    }
}

/// A notice's id: the lowercase hex SHA-256 of `kind|source|recipient` (the address folded to
/// lowercase).
pub fn key(kind: NotificationKind, source: &str, recipient: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_str().as_bytes());
    h.update(b"|");
    h.update(source.as_bytes());
    h.update(b"|");
    h.update(recipient.to_lowercase().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The deployment's switches (`[notifications]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Kinds never sent.
    pub disabled: Vec<NotificationKind>,
    /// How many days before an assignment ends its target is warned, each once.
    pub expiry_warning_days: Vec<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { disabled: Vec::new(), expiry_warning_days: vec![14, 1] }
    }
}

impl Settings {
    pub fn allows(&self, kind: NotificationKind) -> bool {
        !self.disabled.contains(&kind)
    }
}

/// What one notification round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Audit events read and turned into notices (or found to need none).
    pub events: usize,
    /// Notices tried (sent, deferred or failed).
    pub tried: usize,
}

/// Renders `drafts` into notices for their recipients, leaving out what is switched off
/// (globally, or by the policy's `notificationSettings`) and recipients without an email
/// address. Approvers' "action required", reminder and escalation mails carry one-click links
/// when a link key and a public URL are configured.
pub(crate) fn notices(
    s: &Services,
    drafts: &[compose::Draft],
    users: &HashMap<UserId, User>,
    policies: &HashMap<PolicyId, AssignmentPolicy>,
    now: Timestamp,
) -> Vec<Notice> {
    let mut out: Vec<Notice> = Vec::new();
    if s.mailer.is_none() {
        return out;
    }
    let switches = Switches::new(s, policies);
    for d in drafts {
        if !switches.allow(d) {
            continue;
        }
        let Some(user) = users.get(&d.to) else { continue };
        let Some(email) = user.mail.as_deref().map(str::trim).filter(|m| !m.is_empty()) else {
            tracing::debug!(user = %user.id, kind = %d.kind, "no email address: notice skipped");
            continue;
        };
        if let Err(e) = mail::Address::new(Some(user.display_name.as_str().to_owned()), email) {
            tracing::warn!(user = %user.id, error = %e, "unusable email address: notice skipped");
            continue;
        }
        let mut links = compose::Links { base: s.public_url.clone(), decision: None };
        if let (K::ActionRequired | K::ApprovalReminder | K::Escalated, compose::Topic::Request(r)) = (d.kind, &d.topic)
        {
            let latest = now.saturating_add(crate::decision_links::VALID_FOR).unwrap_or(now);
            let expires = r.deadline.map_or(latest, |t| t.min(latest));
            links.decision = crate::decision_links::urls(s, r.request, d.to, expires);
        }
        match compose::notice(d, user, email, &links, now) {
            Ok(n) if !out.iter().any(|o| o.id == n.id) => out.push(n),
            Ok(_) => {}
            Err(e) => tracing::error!(kind = %d.kind, error = %e, "a notification could not be rendered"),
        }
    }
    out
}

/// The global switches and the policies' `notificationSettings`, each policy's parsed once.
pub(crate) struct Switches<'a> {
    settings: &'a Settings,
    policies: &'a HashMap<PolicyId, AssignmentPolicy>,
    parsed: std::sync::Mutex<HashMap<PolicyId, PolicySwitches>>,
}

impl<'a> Switches<'a> {
    pub(crate) fn new(s: &'a Services, policies: &'a HashMap<PolicyId, AssignmentPolicy>) -> Self {
        Self { settings: &s.notify, policies, parsed: std::sync::Mutex::default() }
    }

    /// Whether `d` is switched on, globally and by its policy.
    pub(crate) fn allow(&self, d: &compose::Draft) -> bool {
        if !self.settings.allows(d.kind) {
            return false;
        }
        let Some(p) = d.policy.and_then(|p| self.policies.get(&p)) else { return true };
        let mut parsed = self.parsed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        parsed
            .entry(p.id)
            .or_insert_with(|| {
                PolicySwitches::parse(p.settings.notification_settings.as_ref()).unwrap_or_else(|e| {
                    tracing::warn!(policy = %p.id, error = %e, "a policy's notificationSettings do not parse; nothing is turned off");
                    PolicySwitches::default()
                })
            })
            .allows(d.kind)
    }
}

/// Said once per process when no mailer is configured.
static NO_MAILER_SAID: AtomicBool = AtomicBool::new(false);

/// One round of the engine, after the audit chain's pass: derive notices (mail, and chat
/// messages for catalogs' webhooks) from the events chained since the last round, then send
/// what is due. With neither a mailer nor a chat sender nothing is derived (the cursor moves
/// on, so configuring them later does not notify about the past). `chained` is how many
/// events the round's chain pass chained.
pub async fn round(s: &Services, owner: &str, now: Timestamp, chained: u32) -> Result<Round, AppError> {
    if s.mailer.is_none() && !NO_MAILER_SAID.swap(true, Ordering::Relaxed) {
        tracing::info!("no SMTP relay is configured ([smtp]): notification email is off");
    }
    if s.mailer.is_none() && s.chat.is_none() {
        if chained > 0 {
            derive::skip(s).await?;
        }
        return Ok(Round::default());
    }
    let events = derive::pass(s, now).await?;
    let tried = send::pass(s, owner, now).await?;
    Ok(Round { events, tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_fold_the_address() {
        let a = key(NotificationKind::ActionRequired, "stage:1", "Ada@Example.test");
        assert_eq!(a, key(NotificationKind::ActionRequired, "stage:1", "ada@example.test"));
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, key(NotificationKind::Escalated, "stage:1", "ada@example.test"));
        assert_ne!(a, key(NotificationKind::ActionRequired, "stage:2", "ada@example.test"));
    }

    #[test]
    fn states_round_trip() {
        for s in [NoticeState::Pending, NoticeState::Sent, NoticeState::Failed] {
            assert_eq!(NoticeState::parse(s.as_str()), Some(s));
        }
    }
}
