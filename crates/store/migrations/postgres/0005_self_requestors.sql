-- Who may request each policy's package for themselves, as indexed facts, so
-- `filterByCurrentUser(on='allowedRequestor')` selects packages in SQL instead of evaluating
-- every policy in memory. Written with the policy, in the same transaction, from
-- `steward_domain::eligibility::SelfRequestors::of(settings)`. Policies that exist when this
-- runs are indexed by the store right after migrating (`SqlStore::index_missing_requestors`):
-- the facts come from the policy's JSON settings through Rust's rules (absent
-- requestorSettings, GUID spellings, ASCII case), which neither database's JSON functions
-- reproduce.

-- 'nobody', 'everyone', 'members', 'guests' or 'named'; NULL until the policy is indexed.
ALTER TABLE assignment_policies ADD COLUMN self_requestors TEXT COLLATE "C";

-- One row per requestor a policy admits: 'everyone', 'members', 'guests', 'user:<user id>',
-- 'group:<group id>' (its direct members) or 'rule:<rule key>' (users its membership rule
-- matches). A user may request a package when one of the package's rows names one of the
-- user's own requestors (everyone, their type, their id, their groups, the rules they match).
-- access_package_id repeats the policy's, so a package is tested with one index range, and a
-- requestor's packages are one range of the second index.
CREATE TABLE policy_requestors (
    policy_id         TEXT COLLATE "C" NOT NULL REFERENCES assignment_policies (id),
    access_package_id TEXT COLLATE "C" NOT NULL,
    requestor         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (policy_id, requestor)
);
CREATE INDEX policy_requestors_package ON policy_requestors (access_package_id, requestor);
CREATE INDEX policy_requestors_requestor ON policy_requestors (requestor, access_package_id);

-- Each distinct rule text once, under the hex SHA-256 of the text, so policies sharing a rule
-- share its evaluation. Rows are never deleted (policy_requestors says which rules are in
-- use); the text itself is not indexed, whatever its length.
CREATE TABLE membership_rules (
    rule_key TEXT COLLATE "C" PRIMARY KEY,
    rule     TEXT COLLATE "C" NOT NULL
);
