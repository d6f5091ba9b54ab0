-- The audit chain moves out of `audit_events` into its own narrow, insert-only table, so that
-- chaining never rewrites an event (issue 8's benchmark: an `UPDATE` of `seq`, `prev_hash` and
-- `hash` could not be a HOT update, so every chained event was written again into every index
-- of `audit_events`, competing with the writers).
--
-- `audit_events` stays insert-only. Each event carries the id of the transaction that wrote it
-- (`chain_xid`, by default). The chainer (`Store::chain_audit`) takes, under the head row's
-- lock, the events after its cursor (`cursor_xid`, `cursor_at`, `cursor_id` on the head row) in
-- (chain_xid, at, id) order whose transaction is older than every transaction still running
-- (`pg_snapshot_xmin` of its statement's snapshot): those are all committed or rolled back, and
-- every transaction still running will write events that sort after the cursor. So nothing is
-- skipped however the writers' commits interleave, and the writers pay one narrow index entry.
-- Each chained event gets a row in `audit_links`: its place, its predecessor's hash, its hash.
CREATE TABLE audit_links (
    seq       BIGINT PRIMARY KEY,
    event_id  TEXT COLLATE "C" NOT NULL,
    prev_hash TEXT COLLATE "C" NOT NULL,
    hash      TEXT COLLATE "C" NOT NULL
);
INSERT INTO audit_links (seq, event_id, prev_hash, hash)
    SELECT seq, id, prev_hash, hash FROM audit_events WHERE seq IS NOT NULL;

-- What was chained sorts before the cursor (transaction 0, the greatest time); what was not
-- yet, after it (transaction 1: older than any real one, which start at 3).
ALTER TABLE audit_events ADD COLUMN chain_xid BIGINT;
UPDATE audit_events SET chain_xid = CASE WHEN seq IS NULL THEN 1 ELSE 0 END;
ALTER TABLE audit_events
    ALTER COLUMN chain_xid SET DEFAULT (pg_current_xact_id()::text::bigint),
    ALTER COLUMN chain_xid SET NOT NULL;
ALTER TABLE audit_chain
    ADD COLUMN cursor_xid BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cursor_at  BIGINT NOT NULL DEFAULT 9223372036854775807,
    ADD COLUMN cursor_id  TEXT COLLATE "C" NOT NULL DEFAULT '';

DROP INDEX audit_events_seq;
DROP INDEX audit_events_unchained;
ALTER TABLE audit_events DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash;
CREATE INDEX audit_events_chain_order ON audit_events (chain_xid, at, id);
