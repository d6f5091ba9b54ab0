-- The request lifecycle: assignment requests with their approval, assignments with their
-- per-resource deliveries, the job queue and the audit trail. Lists filter and sort on the
-- columns; the rest of a request (answers, schedule, stages) is one JSON document.
-- `open_key` / `active_key` hold "<target>:<package>" while a request is open or an
-- assignment active, and NULL afterwards: their unique indexes allow one of each at a time.

CREATE TABLE assignment_requests (
    id                TEXT COLLATE "C" PRIMARY KEY,
    request_type      TEXT COLLATE "C" NOT NULL,
    state             TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,
    access_package_id TEXT COLLATE "C" NOT NULL,
    catalog_id        TEXT COLLATE "C" NOT NULL,
    policy_id         TEXT COLLATE "C",
    target_id         TEXT COLLATE "C" NOT NULL,
    requestor_id      TEXT COLLATE "C",
    assignment_id     TEXT COLLATE "C",
    open_key          TEXT COLLATE "C" UNIQUE,
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
    user_id    TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL REFERENCES assignment_requests (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, request_id)
);

CREATE TABLE assignments (
    id                TEXT COLLATE "C" PRIMARY KEY,
    access_package_id TEXT COLLATE "C" NOT NULL,
    catalog_id        TEXT COLLATE "C" NOT NULL,
    policy_id         TEXT COLLATE "C",
    target_id         TEXT COLLATE "C" NOT NULL,
    state             TEXT COLLATE "C" NOT NULL,
    status            TEXT COLLATE "C" NOT NULL,
    start_at          BIGINT NOT NULL,
    end_at            BIGINT,
    expired_at        BIGINT,
    active_key        TEXT COLLATE "C" UNIQUE,
    created_at        BIGINT NOT NULL,
    modified_at       BIGINT NOT NULL
);
CREATE INDEX assignments_target ON assignments (target_id, id);
CREATE INDEX assignments_package ON assignments (access_package_id, id);
CREATE INDEX assignments_policy ON assignments (policy_id, id);
CREATE INDEX assignments_ending ON assignments (end_at, id) WHERE active_key IS NOT NULL;

CREATE TABLE deliveries (
    assignment_id    TEXT COLLATE "C" NOT NULL REFERENCES assignments (id) ON DELETE CASCADE,
    resource_role_id TEXT COLLATE "C" NOT NULL,
    action           TEXT COLLATE "C" NOT NULL,
    state            TEXT COLLATE "C" NOT NULL,
    attempts         BIGINT NOT NULL,
    detail           TEXT,
    PRIMARY KEY (assignment_id, resource_role_id, action)
);

CREATE TABLE jobs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL,
    payload     TEXT NOT NULL,
    run_at      BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,
    singleton   TEXT COLLATE "C" UNIQUE
);
CREATE INDEX jobs_due ON jobs (run_at, id);

CREATE TABLE audit_events (
    id             TEXT COLLATE "C" PRIMARY KEY,
    at             BIGINT NOT NULL,
    activity       TEXT COLLATE "C" NOT NULL,
    display_name   TEXT COLLATE "C" NOT NULL,
    category       TEXT COLLATE "C" NOT NULL,
    initiator      TEXT NOT NULL,
    target_type    TEXT COLLATE "C" NOT NULL,
    target_id      TEXT COLLATE "C" NOT NULL,
    correlation_id TEXT COLLATE "C" NOT NULL,
    result         TEXT COLLATE "C" NOT NULL,
    detail         TEXT
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_correlation ON audit_events (correlation_id, at, id);
