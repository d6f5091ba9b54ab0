-- Text is compared and ordered bytewise on both databases. 0001/0002 gave only display names
-- the "C" collation, so every other text column followed the database's default collation
-- (an ICU or glibc locale on most clusters): ORDER BY description, mail or city, and
-- comparisons such as description gt 'e', differed from SQLite's. Every text column is now
-- "C" (ids and foreign keys too: they are ordered on as keyset tie-breakers).
--
-- Case-insensitive text tests (contains, startswith, endswith, tolower, $search) compare
-- folded companion columns: the value lowercased by the store in Rust with
-- `str::to_lowercase`, null exactly when the value is. PostgreSQL's lower() follows the
-- collation (ASCII-only under "C", locale rules under ICU, and neither is Rust's), so the
-- folding cannot happen here: rows that exist when this runs are folded by the store right
-- after migrating (`SqlStore::fold_missing`). `users.upn_key` already is the folded
-- userPrincipalName. The SQLite tree of this version adds the same columns.

ALTER TABLE users
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN user_principal_name TYPE TEXT COLLATE "C",
    ALTER COLUMN upn_key TYPE TEXT COLLATE "C",
    ALTER COLUMN mail TYPE TEXT COLLATE "C",
    ALTER COLUMN user_type TYPE TEXT COLLATE "C",
    ALTER COLUMN department TYPE TEXT COLLATE "C",
    ALTER COLUMN job_title TYPE TEXT COLLATE "C",
    ALTER COLUMN company_name TYPE TEXT COLLATE "C",
    ALTER COLUMN employee_id TYPE TEXT COLLATE "C",
    ALTER COLUMN city TYPE TEXT COLLATE "C",
    ALTER COLUMN country TYPE TEXT COLLATE "C",
    ALTER COLUMN manager_id TYPE TEXT COLLATE "C";
ALTER TABLE user_sponsors
    ALTER COLUMN user_id TYPE TEXT COLLATE "C",
    ALTER COLUMN sponsor_id TYPE TEXT COLLATE "C";
ALTER TABLE groups
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN description TYPE TEXT COLLATE "C",
    ALTER COLUMN mail_nickname TYPE TEXT COLLATE "C";
ALTER TABLE group_members
    ALTER COLUMN group_id TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE group_owners
    ALTER COLUMN group_id TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE catalogs
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN description TYPE TEXT COLLATE "C",
    ALTER COLUMN catalog_type TYPE TEXT COLLATE "C",
    ALTER COLUMN state TYPE TEXT COLLATE "C";
ALTER TABLE resources
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN catalog_id TYPE TEXT COLLATE "C",
    ALTER COLUMN description TYPE TEXT COLLATE "C",
    ALTER COLUMN origin_id TYPE TEXT COLLATE "C",
    ALTER COLUMN origin_system TYPE TEXT COLLATE "C";
ALTER TABLE resource_roles
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN resource_id TYPE TEXT COLLATE "C",
    ALTER COLUMN description TYPE TEXT COLLATE "C",
    ALTER COLUMN origin_id TYPE TEXT COLLATE "C",
    ALTER COLUMN origin_system TYPE TEXT COLLATE "C";
ALTER TABLE resource_scopes
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN resource_id TYPE TEXT COLLATE "C",
    ALTER COLUMN description TYPE TEXT COLLATE "C",
    ALTER COLUMN origin_id TYPE TEXT COLLATE "C",
    ALTER COLUMN origin_system TYPE TEXT COLLATE "C";
ALTER TABLE resource_requests
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN catalog_id TYPE TEXT COLLATE "C",
    ALTER COLUMN resource_id TYPE TEXT COLLATE "C",
    ALTER COLUMN request_type TYPE TEXT COLLATE "C",
    ALTER COLUMN state TYPE TEXT COLLATE "C";
ALTER TABLE access_packages
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN catalog_id TYPE TEXT COLLATE "C",
    ALTER COLUMN description TYPE TEXT COLLATE "C";
ALTER TABLE role_scopes
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN access_package_id TYPE TEXT COLLATE "C",
    ALTER COLUMN role_id TYPE TEXT COLLATE "C",
    ALTER COLUMN scope_id TYPE TEXT COLLATE "C";
ALTER TABLE package_incompatible_packages
    ALTER COLUMN access_package_id TYPE TEXT COLLATE "C",
    ALTER COLUMN other_id TYPE TEXT COLLATE "C";
ALTER TABLE package_incompatible_groups
    ALTER COLUMN access_package_id TYPE TEXT COLLATE "C",
    ALTER COLUMN group_id TYPE TEXT COLLATE "C";
ALTER TABLE api_tokens
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN name TYPE TEXT COLLATE "C",
    ALTER COLUMN hash TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE assignment_policies
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN access_package_id TYPE TEXT COLLATE "C",
    ALTER COLUMN catalog_id TYPE TEXT COLLATE "C",
    ALTER COLUMN description TYPE TEXT COLLATE "C",
    ALTER COLUMN allowed_target_scope TYPE TEXT COLLATE "C";

ALTER TABLE users ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN mail_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN department_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN job_title_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN company_name_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN employee_id_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN city_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN country_fold TEXT COLLATE "C";
CREATE INDEX users_display_name_fold ON users (display_name_fold);

ALTER TABLE groups ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE groups ADD COLUMN description_fold TEXT COLLATE "C";
ALTER TABLE groups ADD COLUMN mail_nickname_fold TEXT COLLATE "C";
CREATE INDEX groups_display_name_fold ON groups (display_name_fold);

ALTER TABLE catalogs ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE catalogs ADD COLUMN description_fold TEXT COLLATE "C";

ALTER TABLE access_packages ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE access_packages ADD COLUMN description_fold TEXT COLLATE "C";

ALTER TABLE resources ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE resources ADD COLUMN description_fold TEXT COLLATE "C";
ALTER TABLE resources ADD COLUMN origin_id_fold TEXT COLLATE "C";
ALTER TABLE resources ADD COLUMN origin_system_fold TEXT COLLATE "C";

ALTER TABLE resource_roles ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE resource_roles ADD COLUMN description_fold TEXT COLLATE "C";
ALTER TABLE resource_roles ADD COLUMN origin_id_fold TEXT COLLATE "C";
ALTER TABLE resource_roles ADD COLUMN origin_system_fold TEXT COLLATE "C";

ALTER TABLE resource_scopes ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE resource_scopes ADD COLUMN description_fold TEXT COLLATE "C";
ALTER TABLE resource_scopes ADD COLUMN origin_id_fold TEXT COLLATE "C";
ALTER TABLE resource_scopes ADD COLUMN origin_system_fold TEXT COLLATE "C";

ALTER TABLE assignment_policies ADD COLUMN display_name_fold TEXT COLLATE "C";
ALTER TABLE assignment_policies ADD COLUMN description_fold TEXT COLLATE "C";
