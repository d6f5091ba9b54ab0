-- Notification email (`steward_app::notify`): an outbox fed from the audit trail.
--
-- Every worker round turns the audit events chained since `notify_cursor.seq` into notices and
-- moves the cursor in the same transaction (compare-and-set, so of several processes exactly
-- one queues a stretch of the chain). A notice's id is the SHA-256 of its kind, its source (the
-- audit event or timer it came from) and its recipient, so the same notice is queued at most
-- once. Senders lease due pending notices (`lease_owner`, `lease_until`), send them outside any
-- transaction, and mark them sent, due again later (`next_at`, `attempts`, `last_error`) or
-- failed. `notify_timers` keeps, per timer (expiry warnings, reviews ending, the admin digest),
-- how far the sweep has looked, so each moment is considered once.
CREATE TABLE notifications (
    id             TEXT COLLATE "C" PRIMARY KEY,
    kind           TEXT COLLATE "C" NOT NULL,
    recipient      TEXT COLLATE "C" NOT NULL,
    recipient_name TEXT COLLATE "C",
    user_id        TEXT COLLATE "C",
    subject        TEXT COLLATE "C" NOT NULL,
    text_body      TEXT COLLATE "C" NOT NULL,
    html_body      TEXT COLLATE "C" NOT NULL,
    source         TEXT COLLATE "C" NOT NULL,
    created_at     BIGINT NOT NULL,
    next_at        BIGINT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    state          TEXT COLLATE "C" NOT NULL,
    lease_owner    TEXT COLLATE "C",
    lease_until    BIGINT,
    last_error     TEXT COLLATE "C",
    sent_at        BIGINT
);
CREATE INDEX notifications_due ON notifications (state, next_at);

-- The last chained audit record turned into notices: the chain's head when this migration
-- runs, so an upgrade does not mail about what happened before it.
CREATE TABLE notify_cursor (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO notify_cursor (id, seq) SELECT 1, seq FROM audit_chain WHERE id = 1;

CREATE TABLE notify_timers (
    name  TEXT COLLATE "C" PRIMARY KEY,
    until BIGINT NOT NULL
);
