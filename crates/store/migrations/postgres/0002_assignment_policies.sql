-- Assignment policies. The scalar properties that lists filter and sort on are columns; the
-- rest of the policy (targets, expiration, approval stages, questions, ...) is one JSON
-- document written and read by the domain model.

CREATE TABLE assignment_policies (
    id                   TEXT PRIMARY KEY,
    access_package_id    TEXT NOT NULL REFERENCES access_packages (id),
    catalog_id           TEXT NOT NULL REFERENCES catalogs (id),
    display_name         TEXT COLLATE "C" NOT NULL,
    description          TEXT,
    allowed_target_scope TEXT NOT NULL,
    settings             TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    modified_at          BIGINT NOT NULL
);
CREATE INDEX assignment_policies_package ON assignment_policies (access_package_id, display_name, id);
CREATE INDEX assignment_policies_name ON assignment_policies (display_name, id);
