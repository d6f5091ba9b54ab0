//! Chat webhooks of catalogs in the store (migration 0018): the webhook as shown, its sealed
//! address kept in its own column and read only by `chat_webhook` for sending.

use steward_domain::chat::{ChatFlavor, ChatWebhook};
use steward_domain::ids::{CatalogId, ChatWebhookId};

use super::*;

const COLUMNS: &str = "id, catalog_id, display_name, flavor, host, created_at";

impl FromRow for ChatWebhook {
    const COLUMNS: &'static str = COLUMNS;
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ChatWebhook {
            id: c.parse()?,
            catalog_id: c.parse()?,
            display_name: c.name()?,
            flavor: ChatFlavor::parse(&c.text()?).map_err(|e| StoreError::Internal(e.to_string()))?,
            host: c.text()?,
            created_date_time: c.time()?,
        })
    }
}

/// A webhook and its sealed address.
struct WithSecret(ChatWebhook, String);

impl FromRow for WithSecret {
    const COLUMNS: &'static str = "";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        let w = ChatWebhook::from_cells(c)?;
        Ok(Self(w, c.text()?))
    }
}

impl SqlStore {
    pub(super) async fn insert_chat_webhook_impl(
        &self,
        w: &ChatWebhook,
        sealed_url: &str,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.insert(
            "INSERT INTO chat_webhooks (id, catalog_id, display_name, flavor, host, created_at, sealed_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                id(w.id),
                id(w.catalog_id),
                w.display_name.as_str().into(),
                w.flavor.as_str().into(),
                w.host.clone().into(),
                ts(w.created_date_time),
                sealed_url.to_owned().into(),
            ],
            Some(event),
            || format!("A chat webhook with id '{}' already exists.", w.id),
            &[("catalogs", "catalog", w.catalog_id.to_string())],
        )
        .await
    }

    pub(super) async fn chat_webhooks_impl(&self, catalog: CatalogId) -> StoreResult<Vec<ChatWebhook>> {
        let sql = format!("SELECT {COLUMNS} FROM chat_webhooks WHERE catalog_id = $1 ORDER BY created_at, id");
        self.rows(&sql, &[id(catalog)]).await
    }

    pub(super) async fn chat_webhook_impl(&self, w: ChatWebhookId) -> StoreResult<Option<(ChatWebhook, String)>> {
        let sql = format!("SELECT {COLUMNS}, sealed_url FROM chat_webhooks WHERE id = $1");
        Ok(self.rows::<WithSecret>(&sql, &[id(w)]).await?.into_iter().next().map(|WithSecret(w, s)| (w, s)))
    }

    pub(super) async fn delete_chat_webhook_impl(&self, w: ChatWebhookId, event: &AuditEvent) -> StoreResult<()> {
        self.write_one("DELETE FROM chat_webhooks WHERE id = $1", &[id(w)], Some(event), "chat webhook", w).await
    }
}
