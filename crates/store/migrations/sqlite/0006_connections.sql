-- Connections to delivery targets (issue 4). `settings` is the connector's JSON settings, with
-- no secret in it; `credentials` is the sealed credentials (`steward_app::secrets`:
-- AES-256-GCM under the configured key, bound to the row's id), NULL when none are stored.
CREATE TABLE connections (
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    description       TEXT,
    kind              TEXT NOT NULL,
    settings          TEXT NOT NULL,
    credentials       TEXT,
    created_at        INTEGER NOT NULL,
    modified_at       INTEGER NOT NULL
);
CREATE INDEX connections_name ON connections (display_name, id);
