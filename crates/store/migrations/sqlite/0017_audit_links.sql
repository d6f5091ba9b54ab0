-- The audit chain moves out of `audit_events` into its own narrow, insert-only table (see the
-- PostgreSQL migration of the same number for why). SQLite runs one writer at a time, so the
-- chainer finds what waits to be chained by a flag (`chained` is null until then, in a partial
-- index) instead of PostgreSQL's transaction-id cursor.
CREATE TABLE audit_links (
    seq       INTEGER PRIMARY KEY,
    event_id  TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_links (seq, event_id, prev_hash, hash)
    SELECT seq, id, prev_hash, hash FROM audit_events WHERE seq IS NOT NULL;

ALTER TABLE audit_events ADD COLUMN chained INTEGER;
UPDATE audit_events SET chained = 1 WHERE seq IS NOT NULL;

DROP INDEX audit_events_seq;
DROP INDEX audit_events_unchained;
ALTER TABLE audit_events DROP COLUMN seq;
ALTER TABLE audit_events DROP COLUMN prev_hash;
ALTER TABLE audit_events DROP COLUMN hash;
CREATE INDEX audit_events_unchained ON audit_events (at, id) WHERE chained IS NULL;
