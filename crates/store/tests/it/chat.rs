//! Chat webhooks: written with their audit event, listed per catalog without their sealed
//! address, which is read apart; a webhook of a catalog that does not exist is refused, and a
//! webhook goes with its catalog.

use steward_app::{Store, StoreError};
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::chat::{ChatFlavor, ChatWebhook};
use steward_domain::ids::{CatalogId, ChatWebhookId};
use steward_domain::text::DisplayName;
use steward_store::SqlStore;

use crate::fixtures::{at, catalog_named};

fn event(activity: Activity, id: ChatWebhookId) -> AuditEvent {
    let id = id.to_string();
    AuditEvent::new(at(5), activity, Initiator::App("test".into()), "ChatWebhook", &id, &id)
}

fn webhook(catalog: CatalogId, name: &str, flavor: ChatFlavor, created: i64) -> ChatWebhook {
    ChatWebhook {
        id: ChatWebhookId::new(),
        catalog_id: catalog,
        display_name: DisplayName::parse(name).unwrap(),
        flavor,
        host: "hooks.example.test".into(),
        created_date_time: at(created),
    }
}

pub async fn chat_webhooks_round_trip_and_go_with_their_catalog(s: SqlStore) {
    let (c, other) = (catalog_named("Finance"), catalog_named("Sales"));
    let none = || AuditEvent::new(at(0), Activity::CreateCatalog, Initiator::System, "Catalog", "c", "c");
    s.insert_catalog(&c, None, &none()).await.unwrap();
    s.insert_catalog(&other, None, &none()).await.unwrap();
    let (a, b) = (webhook(c.id, "Approvers", ChatFlavor::Teams, 2), webhook(c.id, "Admins", ChatFlavor::Slack, 1));
    let elsewhere = webhook(other.id, "Sales", ChatFlavor::Slack, 1);
    for (w, sealed) in [(&a, "v1:sealed-a"), (&b, "v1:sealed-b"), (&elsewhere, "v1:sealed-c")] {
        s.insert_chat_webhook(w, sealed, &event(Activity::CreateChatWebhook, w.id)).await.unwrap();
    }
    assert_eq!(s.chat_webhooks(c.id).await.unwrap(), vec![b.clone(), a.clone()], "oldest first, this catalog's");
    assert_eq!(s.chat_webhook(a.id).await.unwrap(), Some((a.clone(), "v1:sealed-a".to_owned())));
    assert_eq!(s.chat_webhook(ChatWebhookId::new()).await.unwrap(), None);

    let orphan = webhook(CatalogId::new(), "Nowhere", ChatFlavor::Slack, 3);
    let e = s.insert_chat_webhook(&orphan, "v1:x", &event(Activity::CreateChatWebhook, orphan.id)).await;
    assert!(matches!(e, Err(StoreError::NotFound { kind: "catalog", .. })), "{e:?}");
    assert!(s.events_of(&orphan.id.to_string()).await.unwrap().is_empty(), "no event for what was not written");

    s.delete_chat_webhook(b.id, &event(Activity::DeleteChatWebhook, b.id)).await.unwrap();
    let again = s.delete_chat_webhook(b.id, &event(Activity::DeleteChatWebhook, b.id)).await;
    assert!(matches!(again, Err(StoreError::NotFound { .. })), "{again:?}");
    assert_eq!(s.chat_webhooks(c.id).await.unwrap(), vec![a.clone()]);
    let history: Vec<Activity> =
        s.events_of(&b.id.to_string()).await.unwrap().into_iter().map(|e| e.activity).collect();
    assert_eq!(history, [Activity::CreateChatWebhook, Activity::DeleteChatWebhook]);

    s.delete_catalog(c.id, &none()).await.unwrap();
    assert_eq!(s.chat_webhook(a.id).await.unwrap(), None, "gone with its catalog");
    assert_eq!(s.chat_webhooks(other.id).await.unwrap(), vec![elsewhere]);
}
