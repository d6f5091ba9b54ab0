-- Connections to delivery targets (issue 4). `settings` is the connector's JSON settings, with
-- no secret in it; `credentials` is the sealed credentials (`steward_app::secrets`:
-- AES-256-GCM under the configured key, bound to the row's id), NULL when none are stored.
CREATE TABLE connections (
    id                TEXT COLLATE "C" PRIMARY KEY,
    display_name      TEXT NOT NULL,
    description       TEXT,
    kind              TEXT COLLATE "C" NOT NULL,
    settings          TEXT NOT NULL,
    credentials       TEXT,
    created_at        BIGINT NOT NULL,
    modified_at       BIGINT NOT NULL
);
CREATE INDEX connections_name ON connections (display_name, id);
