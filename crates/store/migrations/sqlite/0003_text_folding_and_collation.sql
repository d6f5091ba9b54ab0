-- Case-insensitive text tests (contains, startswith, endswith, tolower, $search) compare
-- folded companion columns: the value lowercased by the store in Rust with
-- `str::to_lowercase`, null exactly when the value is. SQLite's lower() only knows ASCII, so
-- the folding cannot happen here: rows that exist when this runs are folded by the store
-- right after migrating (`SqlStore::fold_missing`). `users.upn_key` already is the folded
-- userPrincipalName.
--
-- SQLite compares text bytewise (BINARY) already; the PostgreSQL tree of this version also
-- moves every text column to the "C" collation.

ALTER TABLE users ADD COLUMN display_name_fold TEXT;
ALTER TABLE users ADD COLUMN mail_fold TEXT;
ALTER TABLE users ADD COLUMN department_fold TEXT;
ALTER TABLE users ADD COLUMN job_title_fold TEXT;
ALTER TABLE users ADD COLUMN company_name_fold TEXT;
ALTER TABLE users ADD COLUMN employee_id_fold TEXT;
ALTER TABLE users ADD COLUMN city_fold TEXT;
ALTER TABLE users ADD COLUMN country_fold TEXT;
CREATE INDEX users_display_name_fold ON users (display_name_fold);

ALTER TABLE groups ADD COLUMN display_name_fold TEXT;
ALTER TABLE groups ADD COLUMN description_fold TEXT;
ALTER TABLE groups ADD COLUMN mail_nickname_fold TEXT;
CREATE INDEX groups_display_name_fold ON groups (display_name_fold);

ALTER TABLE catalogs ADD COLUMN display_name_fold TEXT;
ALTER TABLE catalogs ADD COLUMN description_fold TEXT;

ALTER TABLE access_packages ADD COLUMN display_name_fold TEXT;
ALTER TABLE access_packages ADD COLUMN description_fold TEXT;

ALTER TABLE resources ADD COLUMN display_name_fold TEXT;
ALTER TABLE resources ADD COLUMN description_fold TEXT;
ALTER TABLE resources ADD COLUMN origin_id_fold TEXT;
ALTER TABLE resources ADD COLUMN origin_system_fold TEXT;

ALTER TABLE resource_roles ADD COLUMN display_name_fold TEXT;
ALTER TABLE resource_roles ADD COLUMN description_fold TEXT;
ALTER TABLE resource_roles ADD COLUMN origin_id_fold TEXT;
ALTER TABLE resource_roles ADD COLUMN origin_system_fold TEXT;

ALTER TABLE resource_scopes ADD COLUMN display_name_fold TEXT;
ALTER TABLE resource_scopes ADD COLUMN description_fold TEXT;
ALTER TABLE resource_scopes ADD COLUMN origin_id_fold TEXT;
ALTER TABLE resource_scopes ADD COLUMN origin_system_fold TEXT;

ALTER TABLE assignment_policies ADD COLUMN display_name_fold TEXT;
ALTER TABLE assignment_policies ADD COLUMN description_fold TEXT;
