-- SCIM 2.0 provisioning of the directory (`/scim/v2`, `steward_app::scim`): what a SCIM client
-- keeps about users and groups beyond Graph's properties, with the case-folded companions of
-- the text a filter compares ignoring case (filled by the store with Rust's `to_lowercase`,
-- null exactly when the value is). `row_version` is bumped by every write of the row (SCIM's
-- and Graph's), so a SCIM write lands only on the version it read; `modified_at` is the last
-- SCIM write (null: never written by SCIM, the creation time stands).
ALTER TABLE users ADD COLUMN external_id TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN given_name TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN given_name_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN family_name TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN family_name_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN formatted_name TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN formatted_name_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN scim_user_type TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN scim_user_type_fold TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN row_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN modified_at BIGINT;
CREATE INDEX users_external_id ON users (external_id);

ALTER TABLE groups ADD COLUMN external_id TEXT COLLATE "C";
ALTER TABLE groups ADD COLUMN row_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN modified_at BIGINT;
CREATE INDEX groups_external_id ON groups (external_id);
