-- Access reviews of access package assignments (Graph's accessReviewScheduleDefinition,
-- accessReviewInstance and accessReviewInstanceDecisionItem; `steward_domain::review`).
-- Definitions, instances and decisions are written through the lifecycle's batches, so opening
-- an instance, recording decisions and applying them land in one transaction with the
-- requests, events and jobs they cause; every row carries the `modified_at` a conditional
-- write compares with what it read.

-- A definition: its Graph body (`body`, what `DefinitionInput::parse` reads back) and where its
-- schedule stands. `policy_id` names the assignment policy whose reviewSettings keep it in step
-- (one definition per policy at most; several without one). `scope_query` is the scope's query
-- in canonical form, for `$filter` (with its case-folded companion, as every filterable text).
CREATE TABLE review_definitions (
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    display_name_fold TEXT,
    scope_query       TEXT NOT NULL,
    scope_query_fold  TEXT,
    status            TEXT NOT NULL,
    policy_id         TEXT UNIQUE,
    next_start        BIGINT,
    next_occurrence   BIGINT NOT NULL,
    created_by        TEXT,
    created_at        BIGINT NOT NULL,
    modified_at       BIGINT NOT NULL,
    body              TEXT NOT NULL
);
-- The sweep's question: which definitions open an instance now.
CREATE INDEX review_definitions_due ON review_definitions (next_start) WHERE next_start IS NOT NULL;

-- One occurrence of a review; `stage_end` is when the stage under way ends.
CREATE TABLE review_instances (
    id            TEXT PRIMARY KEY,
    definition_id TEXT NOT NULL REFERENCES review_definitions (id) ON DELETE CASCADE,
    occurrence    BIGINT NOT NULL,
    start_at      BIGINT NOT NULL,
    end_at        BIGINT NOT NULL,
    status        TEXT NOT NULL,
    stage         BIGINT NOT NULL,
    stage_end     BIGINT NOT NULL,
    modified_at   BIGINT NOT NULL
);
CREATE INDEX review_instances_definition ON review_instances (definition_id, start_at, id);
-- The sweep's question: which instances in progress reached the end of their stage.
CREATE INDEX review_instances_ending ON review_instances (status, stage_end);

-- The decision on one assignment in one instance; `history` holds the earlier stages'
-- decisions (JSON). The definition, principal, package and policy are copied from the
-- instance and the assignment when it opens, so lists filter without joins. `reviewers` is
-- who may decide it at its stage (their ids, sorted, comma-separated), read with the row; the
-- same pairs are indexed in `review_decision_reviewers`, rewritten only when they change.
CREATE TABLE review_decisions (
    id                    TEXT PRIMARY KEY,
    instance_id           TEXT NOT NULL REFERENCES review_instances (id) ON DELETE CASCADE,
    definition_id         TEXT NOT NULL,
    assignment_id         TEXT NOT NULL,
    principal_id          TEXT NOT NULL,
    access_package_id     TEXT NOT NULL,
    policy_id             TEXT,
    stage                 BIGINT NOT NULL,
    decision              TEXT NOT NULL,
    justification         TEXT,
    reviewed_by           TEXT,
    reviewed_at           BIGINT,
    recommendation        TEXT NOT NULL,
    recommendation_reason TEXT,
    apply_result          TEXT NOT NULL,
    applied_by            TEXT,
    applied_at            BIGINT,
    history               TEXT NOT NULL,
    reviewers             TEXT NOT NULL,
    modified_at           BIGINT NOT NULL,
    UNIQUE (instance_id, assignment_id)
);
-- An instance's decisions in id order (paging, stage changes, applying) and by principal.
CREATE INDEX review_decisions_instance ON review_decisions (instance_id, id);
CREATE INDEX review_decisions_principal ON review_decisions (instance_id, principal_id);

-- Who may decide a decision at its current stage, one row per reviewer (the index of
-- `review_decisions.reviewers`). `instance_id` is the decision's, so a reviewer's decisions of
-- one instance are one range of the index.
CREATE TABLE review_decision_reviewers (
    decision_id TEXT NOT NULL REFERENCES review_decisions (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (decision_id, user_id)
);
CREATE INDEX review_decision_reviewers_user ON review_decision_reviewers (user_id, instance_id, decision_id);

-- A user's last sign-in to Steward (the portal, or the API with their token), for the
-- recommendations of reviews; only ever moves forward.
ALTER TABLE users ADD COLUMN last_sign_in_at BIGINT;
