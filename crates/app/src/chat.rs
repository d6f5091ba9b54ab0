//! Chat notifications: administrators give a catalog Teams or Slack incoming webhooks (the
//! address sealed like connection credentials), and the notification engine posts to them
//! what approvers and administrators of the catalog should hear of at once: a request waiting
//! for approval, escalated or cancelled, a delivery that failed. Messages go through the same
//! outbox as mail (`notify`), at most once each, retried on failure; the `ChatSender` port
//! does the posting.

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use steward_domain::audit::Activity;
use steward_domain::chat::{self, ChatFlavor, ChatMessage, ChatWebhook};
use steward_domain::ids::{AccessPackageId, CatalogId, ChatWebhookId};
use steward_domain::notification::NotificationKind as K;
use steward_domain::text::DisplayName;

use crate::audit::{admin_event, named};
use crate::auth::AdminCap;
use crate::mail::MailError;
use crate::notify::{Channel, Notice, compose};
use crate::{AppError, Services};

/// The audit target type of a webhook.
pub const CHAT_WEBHOOK: &str = "ChatWebhook";

/// The kinds a catalog's channel hears of.
pub const KINDS: &[K] = &[K::ActionRequired, K::Escalated, K::RequestCancelled, K::DeliveryFailed];

/// Posts a JSON body to a webhook's address. `Transient` failures (no answer, 408, 429, 5xx)
/// are retried; `Permanent` ones (any other refusal) are not. Errors never carry the address.
#[async_trait]
pub trait ChatSender: Send + Sync {
    async fn post(&self, url: &SecretString, body: &str) -> Result<(), MailError>;
}

/// A new webhook as an administrator describes it.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub display_name: DisplayName,
    pub flavor: ChatFlavor,
    /// The incoming webhook's address: a secret.
    pub url: SecretString,
}

fn sealer(s: &Services) -> Result<&crate::secrets::Sealer, AppError> {
    s.connection_setup.sealer.as_ref().ok_or_else(|| {
        AppError::Invalid(
            "Chat webhooks cannot be stored: this server has no secrets key (set secrets_key, or \
             STEWARD_SECRETS_KEY, to 32 random bytes in base64)."
                .into(),
        )
    })
}

/// Adds a webhook to a catalog.
pub async fn create_webhook(
    s: &Services,
    cap: AdminCap,
    catalog: CatalogId,
    new: NewWebhook,
) -> Result<ChatWebhook, AppError> {
    let host = chat::check_url(new.url.expose_secret())?;
    let w = ChatWebhook {
        id: ChatWebhookId::new(),
        catalog_id: catalog,
        display_name: new.display_name,
        flavor: new.flavor,
        host,
        created_date_time: s.clock.now(),
    };
    let sealed = sealer(s)?.seal(&w.id.to_string(), &new.url).map_err(|e| AppError::Invalid(e.to_string()))?;
    let event =
        admin_event(cap, Activity::CreateChatWebhook, CHAT_WEBHOOK, w.id, w.created_date_time).with_detail(format!(
            "{}, flavor '{}', host '{}', catalog {}",
            named(w.display_name.as_str()),
            w.flavor.as_str(),
            w.host,
            catalog
        ));
    s.store.insert_chat_webhook(&w, &sealed, &event).await?;
    Ok(w)
}

/// A catalog's webhooks, oldest first (`NotFound` when the catalog does not exist).
pub async fn list_webhooks(s: &Services, _cap: AdminCap, catalog: CatalogId) -> Result<Vec<ChatWebhook>, AppError> {
    if s.store.get_catalog(catalog).await?.is_none() {
        return Err(AppError::not_found("catalog", catalog));
    }
    Ok(s.store.chat_webhooks(catalog).await?)
}

/// Removes a webhook.
pub async fn delete_webhook(s: &Services, cap: AdminCap, id: ChatWebhookId) -> Result<(), AppError> {
    let event = admin_event(cap, Activity::DeleteChatWebhook, CHAT_WEBHOOK, id, s.clock.now());
    Ok(s.store.delete_chat_webhook(id, &event).await?)
}

/// Posts a test message to a webhook now and says how it went (a refusal is an answer, not
/// an error of this call).
pub async fn test_webhook(s: &Services, _cap: AdminCap, id: ChatWebhookId) -> Result<Result<(), String>, AppError> {
    let Some((w, sealed)) = s.store.chat_webhook(id).await? else {
        return Err(AppError::not_found("chat webhook", id));
    };
    let sender = s.chat.as_ref().ok_or_else(|| AppError::Conflict("This server sends no chat messages.".into()))?;
    let url = sealer(s)?.open(&w.id.to_string(), &sealed).map_err(|e| AppError::Conflict(e.to_string()))?;
    let message = ChatMessage {
        title: format!("Steward can post to {}", w.display_name.as_str()),
        lines: vec![
            "This is a test message. Requests in this catalog that wait for approval will be announced here.".into(),
        ],
        facts: Vec::new(),
        link: s.public_url.as_ref().map(|u| ("Open Steward".to_owned(), u.clone())),
    };
    let body = chat::payload(w.flavor, &message).to_string();
    Ok(sender.post(&url, &body).await.map_err(|e| e.to_string()))
}

/// The chat messages of `drafts` for the webhooks of the catalogs they concern: one per kind,
/// source and webhook, whichever of the drafts' recipients it was drafted for.
pub(crate) async fn notices(
    s: &Services,
    drafts: &[compose::Draft],
    allowed: impl Fn(&compose::Draft) -> bool,
    now: Timestamp,
) -> Result<Vec<Notice>, AppError> {
    if s.chat.is_none() {
        return Ok(Vec::new());
    }
    let mut hooks: HashMap<AccessPackageId, Vec<ChatWebhook>> = HashMap::new();
    let mut out: Vec<Notice> = Vec::new();
    for d in drafts.iter().filter(|d| KINDS.contains(&d.kind) && allowed(d)) {
        let compose::Topic::Request(r) = &d.topic else { continue };
        let targets = match hooks.entry(r.package_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(match s.store.get_package(r.package_id).await? {
                Some(p) => s.store.chat_webhooks(p.catalog_id).await?,
                None => Vec::new(),
            }),
        };
        let mut message = None;
        for w in targets.iter() {
            let due = Notice::due(d.kind, Channel::Chat, w.id.to_string(), &d.source, now);
            if out.iter().any(|n| n.id == due.id) {
                continue;
            }
            let m = message.get_or_insert_with(|| self::message(d.kind, r, s.public_url.as_deref()));
            out.push(Notice {
                recipient_name: Some(w.display_name.as_str().to_owned()),
                subject: m.title.clone(),
                text_body: chat::payload(w.flavor, m).to_string(),
                ..due
            });
        }
    }
    Ok(out)
}

/// What a channel is told of a request: in the third person (a channel is not the approver nor
/// the requestor a mail would address), with the request's facts and, for approvals, a link
/// to the approval page (never a one-click decision link).
fn message(kind: K, r: &compose::RequestTopic, base: Option<&str>) -> ChatMessage {
    let subject = format!("{}'s request for {}", r.target, r.package);
    let mut facts = vec![("Access package".to_owned(), r.package.clone()), ("For".to_owned(), r.target.clone())];
    if let Some(by) = &r.on_behalf_of {
        facts.push(("Asked by".into(), by.clone()));
    }
    if let Some(j) = &r.justification {
        facts.push(("Justification".into(), j.clone()));
    }
    if let Some((n, of)) = r.stage.filter(|(_, of)| *of > 1) {
        facts.push(("Approval".into(), format!("stage {n} of {of}")));
    }
    let approvals = base.map(|b| ("Open the approval".to_owned(), format!("{b}/approvals/{}", r.request)));
    let (title, line, link) = match kind {
        K::Escalated => (
            format!("Escalated: {subject}"),
            "Its approvers did not decide in time; the escalation approvers decide now.".to_owned(),
            approvals,
        ),
        K::RequestCancelled => (
            format!("Cancelled: {subject}"),
            "The request was cancelled: no decision is needed any more.".to_owned(),
            None,
        ),
        K::DeliveryFailed => {
            if !r.resources.is_empty() {
                facts.push(("What failed".into(), r.resources.join(", ")));
            }
            (
                format!("Delivery failed: {subject}"),
                "The request was approved, but some of the access could not be set up; an administrator can \
                 try again."
                    .to_owned(),
                None,
            )
        }
        _ => {
            if let Some(d) = r.deadline {
                facts.push(("Decide by".into(), compose::when(d)));
            }
            (format!("Approval needed: {subject}"), "It waits for its approvers' decision.".to_owned(), approvals)
        }
    };
    ChatMessage { title, lines: vec![line], facts, link }
}

/// Posts a chat notice: its webhook's address opened, its body as queued.
pub(crate) async fn send(s: &Services, sender: &dyn ChatSender, n: &Notice) -> Result<(), MailError> {
    let id: ChatWebhookId =
        n.recipient.parse().map_err(|_| MailError::Permanent(format!("'{}' is not a chat webhook id", n.recipient)))?;
    let found = s.store.chat_webhook(id).await.map_err(|e| MailError::Transient(e.to_string()))?;
    let Some((w, sealed)) = found else {
        return Err(MailError::Permanent("the chat webhook was removed".into()));
    };
    let url = sealer(s)
        .and_then(|sl| sl.open(&w.id.to_string(), &sealed).map_err(|e| AppError::Conflict(e.to_string())))
        .map_err(|e| MailError::Permanent(e.to_string()))?;
    sender.post(&url, &n.text_body).await
}

#[cfg(test)]
mod tests {
    use steward_domain::ids::RequestId;

    use super::*;

    fn topic() -> compose::RequestTopic {
        compose::RequestTopic {
            request: RequestId::new(),
            package: "Ledger".into(),
            package_id: AccessPackageId::new(),
            target: "Ada".into(),
            on_behalf_of: None,
            extension: false,
            justification: Some("Quarter close".into()),
            stage: Some((1, 2)),
            by: None,
            reason: None,
            resources: vec!["Ledger users (Member)".into()],
            start: None,
            end: None,
            deadline: None,
        }
    }

    #[test]
    fn channels_are_told_in_the_third_person_with_links_only_to_approvals() {
        let r = topic();
        let m = message(K::ActionRequired, &r, Some("https://steward.test"));
        assert_eq!(m.title, "Approval needed: Ada's request for Ledger");
        assert!(m.facts.contains(&("Approval".into(), "stage 1 of 2".into())), "{m:?}");
        assert_eq!(m.link, Some(("Open the approval".into(), format!("https://steward.test/approvals/{}", r.request))));
        let failed = message(K::DeliveryFailed, &r, Some("https://steward.test"));
        assert_eq!(failed.title, "Delivery failed: Ada's request for Ledger");
        assert!(!format!("{failed:?}").to_lowercase().contains("your"), "{failed:?}");
        assert!(failed.facts.contains(&("What failed".into(), "Ledger users (Member)".into())), "{failed:?}");
        assert_eq!(message(K::RequestCancelled, &r, None).link, None);
        assert_eq!(message(K::Escalated, &r, None).link, None, "no public URL, no link");
    }
}
