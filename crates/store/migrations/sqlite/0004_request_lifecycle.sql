-- The request lifecycle: assignment requests with their approval, assignments with their
-- per-resource deliveries, the job queue and the audit trail. Lists filter and sort on the
-- columns; the rest of a request (answers, schedule, stages) is one JSON document.
-- `open_key` / `active_key` hold "<target>:<package>" while a request is open or an
-- assignment active, and NULL afterwards: their unique indexes allow one of each at a time.

CREATE TABLE assignment_requests (
    id                TEXT PRIMARY KEY,
    request_type      TEXT NOT NULL,
    state             TEXT NOT NULL,
    status            TEXT NOT NULL,
    access_package_id TEXT NOT NULL,
    catalog_id        TEXT NOT NULL,
    policy_id         TEXT,
    target_id         TEXT NOT NULL,
    requestor_id      TEXT,
    assignment_id     TEXT,
    open_key          TEXT UNIQUE,
    detail            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    completed_at      BIGINT,
    modified_at       BIGINT NOT NULL,
    due               BIGINT
);
CREATE INDEX assignment_requests_created ON assignment_requests (created_at, id);
CREATE INDEX assignment_requests_target ON assignment_requests (target_id, created_at, id);
CREATE INDEX assignment_requests_package ON assignment_requests (access_package_id, created_at, id);
CREATE INDEX assignment_requests_due ON assignment_requests (due) WHERE due IS NOT NULL;

-- Everyone who is or was an approver of a request's stages, for filterByCurrentUser(on='approver').
CREATE TABLE request_approvers (
    user_id    TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES assignment_requests (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, request_id)
);

CREATE TABLE assignments (
    id                TEXT PRIMARY KEY,
    access_package_id TEXT NOT NULL,
    catalog_id        TEXT NOT NULL,
    policy_id         TEXT,
    target_id         TEXT NOT NULL,
    state             TEXT NOT NULL,
    status            TEXT NOT NULL,
    start_at          BIGINT NOT NULL,
    end_at            BIGINT,
    expired_at        BIGINT,
    active_key        TEXT UNIQUE,
    created_at        BIGINT NOT NULL,
    modified_at       BIGINT NOT NULL
);
CREATE INDEX assignments_target ON assignments (target_id, id);
CREATE INDEX assignments_package ON assignments (access_package_id, id);
CREATE INDEX assignments_policy ON assignments (policy_id, id);
CREATE INDEX assignments_ending ON assignments (end_at, id) WHERE active_key IS NOT NULL;

CREATE TABLE deliveries (
    assignment_id    TEXT NOT NULL REFERENCES assignments (id) ON DELETE CASCADE,
    resource_role_id TEXT NOT NULL,
    action           TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    detail           TEXT,
    PRIMARY KEY (assignment_id, resource_role_id, action)
);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    run_at      BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,
    singleton   TEXT UNIQUE
);
CREATE INDEX jobs_due ON jobs (run_at, id);

CREATE TABLE audit_events (
    id             TEXT PRIMARY KEY,
    at             BIGINT NOT NULL,
    activity       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    category       TEXT NOT NULL,
    initiator      TEXT NOT NULL,
    target_type    TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    result         TEXT NOT NULL,
    detail         TEXT
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_correlation ON audit_events (correlation_id, at, id);
