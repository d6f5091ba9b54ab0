-- Steward foundation schema (PostgreSQL). Ids are lowercase hyphenated GUID text, timestamps are
-- unix microseconds (BIGINT) written from the application's clock, never the database's.
-- The SQLite tree has the same version numbers and the same tables and columns.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    display_name        TEXT COLLATE "C" NOT NULL,
    user_principal_name TEXT NOT NULL,
    upn_key             TEXT NOT NULL UNIQUE,
    mail                TEXT,
    user_type           TEXT NOT NULL,
    account_enabled     BOOLEAN NOT NULL,
    department          TEXT,
    job_title           TEXT,
    company_name        TEXT,
    employee_id         TEXT,
    city                TEXT,
    country             TEXT,
    manager_id          TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX users_display_name ON users (display_name, id);
CREATE INDEX users_manager ON users (manager_id);

CREATE TABLE user_sponsors (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sponsor_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, sponsor_id)
);

CREATE TABLE groups (
    id               TEXT PRIMARY KEY,
    display_name     TEXT COLLATE "C" NOT NULL,
    description      TEXT,
    mail_nickname    TEXT NOT NULL,
    mail_enabled     BOOLEAN NOT NULL,
    security_enabled BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX groups_display_name ON groups (display_name, id);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE group_owners (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE catalogs (
    id                    TEXT PRIMARY KEY,
    display_name          TEXT COLLATE "C" NOT NULL,
    description           TEXT,
    catalog_type          TEXT NOT NULL,
    state                 TEXT NOT NULL,
    is_externally_visible BOOLEAN NOT NULL,
    created_at            BIGINT NOT NULL,
    modified_at           BIGINT NOT NULL
);
CREATE INDEX catalogs_display_name ON catalogs (display_name, id);

CREATE TABLE resources (
    id            TEXT PRIMARY KEY,
    catalog_id    TEXT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    display_name  TEXT COLLATE "C" NOT NULL,
    description   TEXT,
    origin_id     TEXT NOT NULL,
    origin_system TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    modified_at   BIGINT NOT NULL,
    UNIQUE (catalog_id, origin_system, origin_id)
);
CREATE INDEX resources_origin ON resources (origin_system, origin_id);

CREATE TABLE resource_roles (
    id            TEXT PRIMARY KEY,
    resource_id   TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    display_name  TEXT COLLATE "C" NOT NULL,
    description   TEXT,
    origin_id     TEXT NOT NULL,
    origin_system TEXT NOT NULL
);
CREATE INDEX resource_roles_resource ON resource_roles (resource_id);
CREATE INDEX resource_roles_origin ON resource_roles (origin_id);

CREATE TABLE resource_scopes (
    id            TEXT PRIMARY KEY,
    resource_id   TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    display_name  TEXT COLLATE "C" NOT NULL,
    description   TEXT,
    origin_id     TEXT NOT NULL,
    origin_system TEXT NOT NULL,
    is_root_scope BOOLEAN NOT NULL
);
CREATE INDEX resource_scopes_resource ON resource_scopes (resource_id);

CREATE TABLE resource_requests (
    id           TEXT PRIMARY KEY,
    catalog_id   TEXT NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    resource_id  TEXT,
    request_type TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX resource_requests_catalog ON resource_requests (catalog_id, created_at);

CREATE TABLE access_packages (
    id           TEXT PRIMARY KEY,
    catalog_id   TEXT NOT NULL REFERENCES catalogs (id),
    display_name TEXT COLLATE "C" NOT NULL,
    description  TEXT,
    is_hidden    BOOLEAN NOT NULL,
    created_at   BIGINT NOT NULL,
    modified_at  BIGINT NOT NULL
);
CREATE INDEX access_packages_catalog_name ON access_packages (catalog_id, display_name, id);
CREATE INDEX access_packages_name ON access_packages (display_name, id);
CREATE INDEX access_packages_created ON access_packages (created_at, id);

CREATE TABLE role_scopes (
    id                TEXT PRIMARY KEY,
    access_package_id TEXT NOT NULL REFERENCES access_packages (id) ON DELETE CASCADE,
    role_id           TEXT NOT NULL REFERENCES resource_roles (id),
    scope_id          TEXT NOT NULL REFERENCES resource_scopes (id),
    created_at        BIGINT NOT NULL,
    UNIQUE (access_package_id, role_id, scope_id)
);
CREATE INDEX role_scopes_role ON role_scopes (role_id);
CREATE INDEX role_scopes_scope ON role_scopes (scope_id);

CREATE TABLE package_incompatible_packages (
    access_package_id TEXT NOT NULL REFERENCES access_packages (id) ON DELETE CASCADE,
    other_id          TEXT NOT NULL REFERENCES access_packages (id) ON DELETE CASCADE,
    PRIMARY KEY (access_package_id, other_id)
);
CREATE INDEX package_incompatible_packages_other ON package_incompatible_packages (other_id);

CREATE TABLE package_incompatible_groups (
    access_package_id TEXT NOT NULL REFERENCES access_packages (id) ON DELETE CASCADE,
    group_id          TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (access_package_id, group_id)
);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
