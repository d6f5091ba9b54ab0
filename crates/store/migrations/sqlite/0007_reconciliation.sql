-- Reconciliation of connections (issue 4): how often and how a target is compared with what
-- Steward granted there (`reconciliation`, JSON), when the next pass is due (`reconcile_at`,
-- NULL: only on request), and the holders a pass found that Steward did not grant (`drift`).
ALTER TABLE connections ADD COLUMN reconciliation TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connections ADD COLUMN reconcile_at BIGINT;
-- Connections made before this migration get their first pass at once.
UPDATE connections SET reconcile_at = modified_at;
CREATE INDEX connections_reconcile_at ON connections (reconcile_at);

CREATE TABLE drift (
    connection_id    TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    resource_role_id TEXT NOT NULL,
    holder           TEXT NOT NULL,
    first_seen_at    BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    PRIMARY KEY (resource_role_id, holder)
);
CREATE INDEX drift_connection ON drift (connection_id, resource_role_id, holder);

-- Who holds a role, for a reconciliation pass over a large group.
CREATE INDEX deliveries_role ON deliveries (resource_role_id);
