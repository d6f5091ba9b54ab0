-- External users (issue 5, point 6): connected organizations (Graph's connectedOrganization)
-- with their identity sources and sponsors, the tenant's entitlement-management settings, and
-- Steward's record of the external users it governs (the guests it invites on approval).

CREATE TABLE connected_organizations (
    id                TEXT COLLATE "C" PRIMARY KEY,
    display_name      TEXT COLLATE "C" NOT NULL,
    display_name_fold TEXT COLLATE "C",
    description       TEXT COLLATE "C",
    description_fold  TEXT COLLATE "C",
    state             TEXT COLLATE "C" NOT NULL,
    -- the identity sources as JSON (polymorphic on @odata.type), written and read through
    -- steward_domain::connected::IdentitySource
    identity_sources  TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    modified_at       BIGINT NOT NULL
);
CREATE INDEX connected_organizations_display_name ON connected_organizations (display_name, id);
CREATE INDEX connected_organizations_display_name_fold ON connected_organizations (display_name_fold);

-- One row per identity source of an organization, by its key: 'domain:<dns name>' (domain
-- identity sources and federated domains), 'tenant:<tenant id>', 'social:<provider>'. The
-- primary key makes a domain (a tenant, a provider) belong to one organization at most; a guest
-- belongs to the organization of 'domain:<the domain of their email>'.
CREATE TABLE organization_sources (
    source_key      TEXT COLLATE "C" PRIMARY KEY,
    organization_id TEXT COLLATE "C" NOT NULL REFERENCES connected_organizations (id) ON DELETE CASCADE
);
CREATE INDEX organization_sources_organization ON organization_sources (organization_id);

-- internalSponsors and externalSponsors ('internal' / 'external').
CREATE TABLE organization_sponsors (
    organization_id TEXT COLLATE "C" NOT NULL REFERENCES connected_organizations (id) ON DELETE CASCADE,
    kind            TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, kind, user_id)
);
CREATE INDEX organization_sponsors_user ON organization_sponsors (user_id);

-- The organizations each policy names in connectedOrganizationMembers (written with the policy):
-- a policy cannot name a missing organization, and an organization a policy names cannot be
-- deleted.
CREATE TABLE policy_organizations (
    policy_id       TEXT COLLATE "C" NOT NULL REFERENCES assignment_policies (id) ON DELETE CASCADE,
    organization_id TEXT COLLATE "C" NOT NULL REFERENCES connected_organizations (id),
    PRIMARY KEY (policy_id, organization_id)
);
CREATE INDEX policy_organizations_organization ON policy_organizations (organization_id);

-- The external users Steward governs (subjectLifecycle), and where their lifecycle stands:
-- blocked_at while their sign-in is blocked, delete_at while their deletion is planned.
-- connected_organization_id is where they came from when invited (no foreign key: the record
-- outlives the organization).
CREATE TABLE external_users (
    user_id                   TEXT COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    connected_organization_id TEXT COLLATE "C",
    lifecycle                 TEXT COLLATE "C" NOT NULL,
    blocked_at                BIGINT,
    delete_at                 BIGINT,
    created_at                BIGINT NOT NULL
);
CREATE INDEX external_users_delete_at ON external_users (delete_at) WHERE delete_at IS NOT NULL;

-- entitlementManagement/settings: one row once written (the defaults until then).
CREATE TABLE entitlement_settings (
    id                             TEXT COLLATE "C" PRIMARY KEY,
    external_user_lifecycle_action TEXT COLLATE "C" NOT NULL,
    -- durationUntilExternalUserDeletedAfterBlocked, in microseconds
    delete_after_blocked           BIGINT NOT NULL,
    modified_at                    BIGINT NOT NULL
);

-- Requests for someone known by email find them by userPrincipalName (upn_key) or by mail.
CREATE INDEX users_mail_fold ON users (mail_fold);

-- Who may request each policy's package now depends on connected organizations too
-- (connectedOrganizationMembers, allConfiguredConnectedOrganizationUsers): such policies are
-- indexed again when the store is next opened (SqlStore::index_missing_requestors).
UPDATE assignment_policies SET self_requestors = NULL
WHERE allowed_target_scope = 'allConfiguredConnectedOrganizationUsers'
   OR settings LIKE '%connectedOrganizationMembers%';
