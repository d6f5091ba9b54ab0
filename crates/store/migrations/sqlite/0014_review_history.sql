-- Access review history reports (Graph's accessReviewHistoryDefinition and
-- accessReviewHistoryInstance; `steward_domain::review_history`, `steward_app::reviews::history`).
-- Reports are one-time: a definition is written with its one instance, whose report is made at
-- once and kept as CSV text, in one transaction with the audit event.

-- A definition: its Graph body (`body`: displayName, decisions, the period and scopes, what
-- `HistoryInput::parse` reads back), with its display name and its case-folded companion for
-- `$filter`, as every filterable text.
CREATE TABLE review_history_definitions (
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    display_name_fold TEXT,
    status            TEXT NOT NULL,
    created_by        TEXT,
    created_at        BIGINT NOT NULL,
    body              TEXT NOT NULL
);
CREATE INDEX review_history_definitions_created ON review_history_definitions (created_at, id);

-- One run of a definition over its period: when it ran, was fulfilled and expires, and the
-- report it made (CSV, `report_csv`), read only when it is downloaded.
CREATE TABLE review_history_instances (
    id            TEXT PRIMARY KEY,
    definition_id TEXT NOT NULL REFERENCES review_history_definitions (id) ON DELETE CASCADE,
    period_start  BIGINT NOT NULL,
    period_end    BIGINT NOT NULL,
    run_at        BIGINT NOT NULL,
    fulfilled_at  BIGINT,
    expiration_at BIGINT NOT NULL,
    status        TEXT NOT NULL,
    report        TEXT NOT NULL
);
CREATE INDEX review_history_instances_definition ON review_history_instances (definition_id, run_at, id);
