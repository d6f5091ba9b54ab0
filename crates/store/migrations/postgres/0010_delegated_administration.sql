-- Delegated administration (Graph's /roleManagement/entitlementManagement/roleAssignments):
-- one row per role given to a user, on the whole service ('/', catalog_id NULL) or on one
-- catalog ('/AccessPackageCatalog/{id}'). Removing the user or the catalog removes the row.
CREATE TABLE role_assignments (
    id           TEXT COLLATE "C" PRIMARY KEY,
    principal_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id      TEXT COLLATE "C" NOT NULL,
    app_scope    TEXT COLLATE "C" NOT NULL,
    catalog_id   TEXT COLLATE "C" REFERENCES catalogs (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    UNIQUE (principal_id, role_id, app_scope)
);
CREATE INDEX role_assignments_catalog ON role_assignments (catalog_id);
CREATE INDEX role_assignments_role ON role_assignments (role_id, app_scope);

-- API tokens: an expiry, and for machine tokens the one role they hold (NULL with no user:
-- the administrator, as before).
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN role_id TEXT COLLATE "C";
ALTER TABLE api_tokens ADD COLUMN app_scope TEXT COLLATE "C";
