-- The audit trail as Graph's directoryAudits (`steward_app::audit`) and its tamper evidence
-- (`steward_domain::audit_chain`).
--
-- Writers only insert events (`seq` null); the chainer (`Store::chain_audit`, run by every
-- worker round) takes the unchained ones in (at, id) order under the head row's lock and gives
-- each its `seq`, the hash of its predecessor (`prev_hash`) and its own `hash`, so concurrent
-- writers never wait for one another on the chain. `audit_chain` is that head (one row), with
-- the anchor a verification starts from (the last pruned record, or nothing); checkpoints
-- vouch for the head from time to time, signed with a key derived from `secrets_key`.
ALTER TABLE audit_events ADD COLUMN ip_address TEXT;
ALTER TABLE audit_events ADD COLUMN modified_properties TEXT;
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;
-- For `$filter`: the display name case-folded (every activity name is ASCII, so `lower` folds
-- the rows already written as Rust does) and the initiating user's id out of `initiator`.
ALTER TABLE audit_events ADD COLUMN display_name_fold TEXT;
ALTER TABLE audit_events ADD COLUMN initiator_user_id TEXT;
UPDATE audit_events SET display_name_fold = lower(display_name), initiator_user_id = json_extract(initiator, '$.user');

CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);
CREATE INDEX audit_events_unchained ON audit_events (at, id) WHERE seq IS NULL;
CREATE INDEX audit_events_initiator ON audit_events (initiator_user_id, at, id);
CREATE INDEX audit_events_target ON audit_events (target_id, at, id);

CREATE TABLE audit_chain (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    anchor_seq  BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);
INSERT INTO audit_chain (id, seq, hash, anchor_seq, anchor_hash) VALUES
    (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
     0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
    seq             BIGINT PRIMARY KEY,
    hash            TEXT NOT NULL,
    at              BIGINT NOT NULL,
    signature       TEXT,
    key_fingerprint TEXT
);

-- One-click decision links (`steward_domain::decision_link`) that were used: a link works once.
CREATE TABLE decision_link_uses (
    nonce      TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    used_at    BIGINT NOT NULL
);
