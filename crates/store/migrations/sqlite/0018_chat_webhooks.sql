-- Chat notifications (`steward_domain::chat`): a catalog's Teams or Slack incoming webhooks.
-- The address is a secret (whoever holds it can post to the channel): it is stored sealed under
-- the secrets key, bound to the webhook's id, and never read back out through the API; `host`
-- is what an administrator sees of it. A webhook goes with its catalog.
CREATE TABLE chat_webhooks (
    id           TEXT PRIMARY KEY,
    catalog_id   TEXT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    flavor       TEXT NOT NULL,
    host         TEXT NOT NULL,
    sealed_url   TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX chat_webhooks_catalog ON chat_webhooks (catalog_id, created_at, id);

-- The outbox carries chat messages beside mail: for those, `recipient` is the webhook's id and
-- `text_body` the message's JSON body.
ALTER TABLE notifications ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail';
