-- Custom extensions (Graph's customCalloutExtension family), per catalog. `settings` is the
-- endpoint, client and callback configuration as JSON; `signing_secret` is the HMAC key of
-- the extension's callouts, sealed (`steward_app::secrets`: AES-256-GCM under the configured
-- key, bound to the row's id).
CREATE TABLE custom_extensions (
    id             TEXT PRIMARY KEY,
    catalog_id     TEXT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    description    TEXT,
    settings       TEXT NOT NULL,
    signing_secret TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    modified_at    BIGINT NOT NULL
);
CREATE INDEX custom_extensions_catalog ON custom_extensions (catalog_id, display_name, id);

-- Which extension each policy runs at which stage (from its customExtensionStageSettings,
-- written with the policy): an extension a policy names cannot be deleted, and the sweep finds
-- the assignments whose policy runs an extension before expiry.
CREATE TABLE policy_extensions (
    policy_id    TEXT NOT NULL REFERENCES assignment_policies (id) ON DELETE CASCADE,
    stage        TEXT NOT NULL,
    extension_id TEXT NOT NULL REFERENCES custom_extensions (id),
    PRIMARY KEY (policy_id, stage)
);
CREATE INDEX policy_extensions_extension ON policy_extensions (extension_id);
CREATE INDEX policy_extensions_stage ON policy_extensions (stage, policy_id);

-- Each call of an extension at a stage (Graph's customExtensionCalloutInstance). Kept as
-- history: no foreign key, the extension may be deleted later.
CREATE TABLE callout_instances (
    id            TEXT PRIMARY KEY,
    extension_id  TEXT NOT NULL,
    request_id    TEXT,
    assignment_id TEXT,
    stage         TEXT NOT NULL,
    status        TEXT NOT NULL,
    detail        TEXT,
    created_at    BIGINT NOT NULL,
    modified_at   BIGINT NOT NULL
);
CREATE INDEX callout_instances_request ON callout_instances (request_id, created_at, id);
CREATE INDEX callout_instances_assignment ON callout_instances (assignment_id, stage);
