//! The ports Steward's use cases depend on: the `Store` (one trait, a SQLite and a PostgreSQL
//! implementation, one contract suite) and the `Clock`.

use async_trait::async_trait;
use jiff::Timestamp;
use steward_domain::DomainError;
use steward_domain::assignment::{Assignment, Delivery};
use steward_domain::audit::AuditEvent;
use steward_domain::audit_chain::{Anchor, Checkpoint, Link};
use steward_domain::catalog::{Catalog, GroupResource, Resource, ResourceRequest, ResourceRole, ResourceScope};
use steward_domain::chat::ChatWebhook;
use steward_domain::connection::Connection;
use steward_domain::directory::{Group, User};
use steward_domain::enums::CustomExtensionStage;
use steward_domain::extension::{CalloutInstance, CustomExtension};
use steward_domain::ids::{
    AccessPackageId, AssignmentId, AuditEventId, CalloutInstanceId, CatalogId, ChatWebhookId, ConnectionId,
    CustomExtensionId, GroupId, JobId, PolicyId, RequestId, ResourceId, ResourceRoleId, ResourceRoleScopeId,
    ResourceScopeId, ReviewDecisionId, ReviewDefinitionId, ReviewInstanceId, RoleAssignmentId, TokenId, UserId,
};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::policy::AssignmentPolicy;
use steward_domain::request::AssignmentRequest;
use steward_domain::review::{ReviewDecision, ReviewDefinition, ReviewInstance};
use steward_domain::role::{AppScope, Role, RoleAssignment};
use steward_domain::rule::MembershipRule;

use crate::auth::ApiToken;
use crate::jobs::{Job, NewJob};
use crate::query::{ListQuery, Value};
use crate::scim::query::{ScimPage, ScimQuery};
use crate::scim::{ScimGroup, ScimUser};

/// Where "now" comes from. Logic is always handed `now`; only the shell reads a clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock, for the running server.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Microsecond precision: what both stores keep, so an object reads back exactly as the
    /// response that created it showed it.
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
    }
}

/// A clock tests set and move by hand.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(std::sync::Mutex::new(start))
    }
    pub fn set(&self, t: Timestamp) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
    pub fn advance(&self, d: jiff::SignedDuration) {
        if let Ok(mut g) = self.0.lock() {
            *g = g.checked_add(d).unwrap_or(*g);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.lock().map(|g| *g).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// What one pass of the audit chainer did: how many events it chained, and the head after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProgress {
    pub chained: u32,
    pub head: Anchor,
    /// The newest checkpoint, when the pass chained anything (read in its transaction).
    pub last_checkpoint: Option<Checkpoint>,
}

/// The audit chain as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    /// The last chained record (seq 0 and the genesis hash before the first).
    pub head: Anchor,
    /// Where a verification starts: before the first record, or after the last pruned one.
    pub anchor: Anchor,
    pub last_checkpoint: Option<Checkpoint>,
    /// Events written but not chained yet.
    pub unchained: u64,
}

/// A page of a list: the rows, the total when asked for, and the sort key of the last row when
/// more rows follow (the keyset cursor of the next page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub count: Option<u64>,
    pub next: Option<Vec<Value>>,
}

/// What a store can fail with. Constraint violations arrive as `Conflict` or `NotFound`, rules
/// checked inside a transaction as `Rule`; everything else is the database's trouble.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} '{id}' was not found.")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Rule(#[from] DomainError),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which role assignments to list; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleAssignmentFilter {
    pub principal: Option<UserId>,
    pub role: Option<Role>,
    pub scope: Option<AppScope>,
    /// Only assignments on these catalogs (what a catalog owner may see).
    pub catalogs: Option<Vec<CatalogId>>,
}

/// Persistence of every Steward object. Each method is one transaction; rules that depend on
/// other rows (a catalog may not be deleted while it holds packages) are checked inside it by
/// calling the domain's rule functions, so two concurrent callers cannot both pass the check.
#[async_trait]
pub trait Store: Send + Sync {
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    // API tokens
    async fn insert_token(&self, token: &ApiToken) -> StoreResult<()>;
    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<ApiToken>>;
    /// `token_by_hash` with, for a personal token, whether its user's account is enabled:
    /// what signing in needs, in one read. `None` as the flag for an administrator token.
    async fn token_for_sign_in(&self, hash: &str) -> StoreResult<Option<(ApiToken, Option<bool>)>>;
    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>>;
    async fn delete_token(&self, id: TokenId) -> StoreResult<()>;

    // delegated administration
    /// `Conflict` when the user already holds the role there, `NotFound` for a missing user
    /// or catalog.
    async fn insert_role_assignment(&self, a: &RoleAssignment, at: Timestamp, event: &AuditEvent) -> StoreResult<()>;
    async fn delete_role_assignment(&self, id: RoleAssignmentId, event: &AuditEvent) -> StoreResult<()>;
    async fn get_role_assignment(&self, id: RoleAssignmentId) -> StoreResult<Option<RoleAssignment>>;
    /// In creation order.
    async fn list_role_assignments(&self, filter: &RoleAssignmentFilter) -> StoreResult<Vec<RoleAssignment>>;
    /// Every role the user holds, where: what their `Grants` are made of.
    async fn role_assignments_of(&self, user: UserId) -> StoreResult<Vec<RoleAssignment>>;

    // users
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    async fn delete_user(&self, id: UserId) -> StoreResult<()>;
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn user_by_upn(&self, upn: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, q: &ListQuery) -> StoreResult<Page<User>>;
    /// Everyone the membership rule admits, sorted by id: exactly the users for whom
    /// `rule.matches(&user)` holds (the in-memory evaluator is the reference).
    async fn users_matching(&self, rule: &MembershipRule) -> StoreResult<Vec<UserId>>;
    async fn add_sponsor(&self, user: UserId, sponsor: UserId) -> StoreResult<()>;
    async fn remove_sponsor(&self, user: UserId, sponsor: UserId) -> StoreResult<()>;

    // groups
    async fn insert_group(&self, group: &Group) -> StoreResult<()>;
    async fn update_group(&self, group: &Group) -> StoreResult<()>;
    async fn delete_group(&self, id: GroupId) -> StoreResult<()>;
    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>>;
    async fn list_groups(&self, q: &ListQuery) -> StoreResult<Page<Group>>;
    async fn add_member(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    /// Adds members (or, with `owners`, owners) in bulk, skipping pairs already linked and
    /// pairs whose group or user does not exist; returns how many links were added.
    async fn add_group_links(&self, links: &[(GroupId, UserId)], owners: bool) -> StoreResult<u64>;
    async fn remove_member(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    async fn add_owner(&self, group: GroupId, user: UserId) -> StoreResult<()>;
    async fn remove_owner(&self, group: GroupId, user: UserId) -> StoreResult<()>;

    // Catalogs, their resources, access packages and assignment policies: every write below
    // records its `event` (an administrator's change, see `AuditEvent`) in the transaction
    // of the change. A change that fails records nothing, and an event that cannot be
    // written fails the change.

    // catalogs and their resources
    /// With `owner`, the catalog creator's owner role is written in the same transaction.
    async fn insert_catalog(
        &self,
        catalog: &Catalog,
        owner: Option<&RoleAssignment>,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// Writes the catalog if its stored `modifiedDateTime` is still `read_at` (optimistic
    /// concurrency); `Conflict` when someone changed it in between, `NotFound` when it is gone.
    async fn update_catalog(&self, catalog: &Catalog, read_at: Timestamp, event: &AuditEvent) -> StoreResult<()>;
    /// Deletes a catalog and its resources, if `check_catalog_deletable` allows.
    async fn delete_catalog(&self, id: CatalogId, event: &AuditEvent) -> StoreResult<()>;
    async fn get_catalog(&self, id: CatalogId) -> StoreResult<Option<Catalog>>;
    async fn list_catalogs(&self, q: &ListQuery) -> StoreResult<Page<Catalog>>;
    /// Adds a group resource with its roles and scope, recording the request. Conflict when the
    /// catalog already holds a resource with the same origin.
    async fn add_resource(
        &self,
        added: &GroupResource,
        request: &ResourceRequest,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// Removes a resource, if `check_resource_removable` allows, recording the request.
    async fn remove_resource(&self, id: ResourceId, request: &ResourceRequest, event: &AuditEvent) -> StoreResult<()>;
    async fn get_resource(&self, id: ResourceId) -> StoreResult<Option<Resource>>;
    async fn list_resources(&self, q: &ListQuery) -> StoreResult<Page<Resource>>;
    async fn get_resource_role(&self, id: ResourceRoleId) -> StoreResult<Option<ResourceRole>>;
    async fn list_resource_roles(&self, q: &ListQuery) -> StoreResult<Page<ResourceRole>>;
    async fn get_resource_scope(&self, id: ResourceScopeId) -> StoreResult<Option<ResourceScope>>;
    async fn list_resource_scopes(&self, q: &ListQuery) -> StoreResult<Page<ResourceScope>>;
    async fn list_resource_requests(&self, q: &ListQuery) -> StoreResult<Page<ResourceRequest>>;

    // access packages
    async fn insert_package(&self, package: &AccessPackage, event: &AuditEvent) -> StoreResult<()>;
    /// Like `update_catalog`: only if the package is unchanged since `read_at`.
    async fn update_package(&self, package: &AccessPackage, read_at: Timestamp, event: &AuditEvent) -> StoreResult<()>;
    /// Deletes a package with its role scopes and incompatibility links, if
    /// `check_package_deletable` allows.
    async fn delete_package(&self, id: AccessPackageId, event: &AuditEvent) -> StoreResult<()>;
    async fn get_package(&self, id: AccessPackageId) -> StoreResult<Option<AccessPackage>>;
    async fn list_packages(&self, q: &ListQuery) -> StoreResult<Page<AccessPackage>>;
    async fn add_role_scope(&self, rrs: &ResourceRoleScope, event: &AuditEvent) -> StoreResult<()>;
    async fn remove_role_scope(
        &self,
        package: AccessPackageId,
        id: ResourceRoleScopeId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    async fn get_role_scope(&self, id: ResourceRoleScopeId) -> StoreResult<Option<ResourceRoleScope>>;
    async fn list_role_scopes(&self, q: &ListQuery) -> StoreResult<Page<ResourceRoleScope>>;
    async fn add_incompatible_package(
        &self,
        package: AccessPackageId,
        other: AccessPackageId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    async fn remove_incompatible_package(
        &self,
        package: AccessPackageId,
        other: AccessPackageId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    async fn add_incompatible_group(
        &self,
        package: AccessPackageId,
        group: GroupId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    async fn remove_incompatible_group(
        &self,
        package: AccessPackageId,
        group: GroupId,
        event: &AuditEvent,
    ) -> StoreResult<()>;

    // assignment policies
    async fn insert_policy(&self, policy: &AssignmentPolicy, event: &AuditEvent) -> StoreResult<()>;
    /// Like `update_catalog`: only if the policy is unchanged since `read_at`.
    async fn update_policy(&self, policy: &AssignmentPolicy, read_at: Timestamp, event: &AuditEvent)
    -> StoreResult<()>;
    /// Deletes a policy, unless an active assignment or an open request still uses it.
    async fn delete_policy(&self, id: PolicyId, event: &AuditEvent) -> StoreResult<()>;
    async fn get_policy(&self, id: PolicyId) -> StoreResult<Option<AssignmentPolicy>>;
    async fn list_policies(&self, q: &ListQuery) -> StoreResult<Page<AssignmentPolicy>>;
    /// The access packages `user` may request for themselves
    /// (`filterByCurrentUser(on='allowedRequestor')`), filtered, ordered and paged by `q`:
    /// exactly those with a policy for which `eligibility::self_request_allowed(&settings,
    /// Facts { user, groups })` holds, `groups` being the user's direct groups as stored.
    async fn requestable_packages(&self, user: &User, q: &ListQuery) -> StoreResult<Page<AccessPackage>>;
    /// Every policy of a package, in creation order.
    async fn policies_of_package(&self, package: AccessPackageId) -> StoreResult<Vec<AssignmentPolicy>>;

    // The directory as the lifecycle reads it.
    /// The groups `user` is a direct member of.
    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<GroupId>>;
    /// The direct members of `group`.
    async fn member_ids(&self, group: GroupId) -> StoreResult<Vec<UserId>>;
    /// The direct owners of `group`.
    async fn owner_ids(&self, group: GroupId) -> StoreResult<Vec<UserId>>;
    /// The sponsors of `user`.
    async fn sponsor_ids(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    /// One resource role with the origin of its resource, whatever package grants it.
    async fn role_grant(&self, role: ResourceRoleId) -> StoreResult<Option<RoleGrant>>;
    /// The package's grants: each role scope's role with the origin of its resource.
    async fn package_grants(&self, package: AccessPackageId) -> StoreResult<Vec<RoleGrant>>;
    /// Packages that `package` names as incompatible, and packages naming it (both directions).
    async fn incompatible_packages(&self, package: AccessPackageId) -> StoreResult<Vec<AccessPackageId>>;
    /// Groups that `package` names as incompatible.
    async fn incompatible_groups(&self, package: AccessPackageId) -> StoreResult<Vec<GroupId>>;
    /// Both of the above in one read (sorted, as each returns them): every request and every
    /// delivery checks separation of duties, and almost always finds neither.
    async fn incompatibilities(&self, package: AccessPackageId) -> StoreResult<(Vec<AccessPackageId>, Vec<GroupId>)>;

    // The request lifecycle.
    /// Writes a decision's changes in one transaction: requests, assignments, deliveries, jobs
    /// and audit events. A `Put::Changed` whose row changed since `read_at` fails the whole
    /// batch with `Conflict`, as does a second open request or active assignment for one
    /// target and package.
    async fn apply(&self, batch: &Batch) -> StoreResult<()>;
    async fn get_request(&self, id: RequestId) -> StoreResult<Option<AssignmentRequest>>;
    /// Deletes a request that has ended, recording `event` in the same transaction; `Conflict`
    /// while it is still open.
    async fn delete_request(&self, id: RequestId, event: &AuditEvent) -> StoreResult<()>;
    async fn list_requests(&self, q: &ListQuery) -> StoreResult<Page<AssignmentRequest>>;
    /// The open request of `target` for `package`, if any.
    async fn open_request(&self, target: UserId, package: AccessPackageId) -> StoreResult<Option<AssignmentRequest>>;
    async fn get_assignment(&self, id: AssignmentId) -> StoreResult<Option<Assignment>>;
    async fn list_assignments(&self, q: &ListQuery) -> StoreResult<Page<Assignment>>;
    /// The active assignments of `target`.
    async fn active_assignments_of(&self, target: UserId) -> StoreResult<Vec<Assignment>>;
    /// The active assignment of `target` to `package`, if any.
    async fn active_assignment(&self, target: UserId, package: AccessPackageId) -> StoreResult<Option<Assignment>>;
    /// Whether any active assignment other than `except` grants `role` to `target`.
    async fn role_held_elsewhere(
        &self,
        target: UserId,
        role: ResourceRoleId,
        except: AssignmentId,
    ) -> StoreResult<bool>;
    async fn deliveries(&self, assignment: AssignmentId) -> StoreResult<Vec<Delivery>>;
    /// Records on a still pending delivery how many attempts it took so far and why the last
    /// one failed, for whoever looks at it while it waits to be retried. Changes nothing
    /// once the delivery is done or failed.
    async fn note_delivery_retry(&self, delivery: &Delivery) -> StoreResult<()>;
    /// Open requests whose `due` time has come, oldest first.
    async fn due_requests(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<AssignmentRequest>>;
    /// Active assignments whose end has come, earliest first.
    async fn ending_assignments(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Assignment>>;
    /// Existing separation-of-duties violations: active assignments whose target also holds an
    /// incompatible package (either side declared it) or is a member of an incompatible group.
    async fn sod_violations(&self, limit: u32) -> StoreResult<Vec<Violation>>;
    /// The audit events of one correlation id (a request, or the object an administrator
    /// changed), in order.
    async fn events_of(&self, correlation_id: &str) -> StoreResult<Vec<AuditEvent>>;

    // The audit trail (`audit::trail`) and its hash chain (`audit::chain`).
    /// A page of audit events (`/auditLogs/directoryAudits`).
    async fn list_audit_events(&self, q: &ListQuery) -> StoreResult<Page<AuditEvent>>;
    async fn get_audit_event(&self, id: AuditEventId) -> StoreResult<Option<AuditEvent>>;
    /// Chains up to `limit` of the events not chained yet, oldest (`at`, then id) first, after
    /// the chain's head, holding the head's lock so that chainers in several processes take
    /// turns; returns how many it chained and the new head. Writers never wait for it.
    async fn chain_audit(&self, limit: u32) -> StoreResult<ChainProgress>;
    /// The chain's head and anchor, the newest checkpoint and how many events wait to be chained.
    async fn audit_chain_state(&self) -> StoreResult<ChainState>;
    /// Records a checkpoint; a second one for the same record is ignored.
    async fn insert_audit_checkpoint(&self, c: &Checkpoint) -> StoreResult<()>;
    async fn audit_checkpoints(&self) -> StoreResult<Vec<Checkpoint>>;
    /// Up to `limit` chained records with `seq` above `after`, in `seq` order, every column as
    /// stored: what `steward audit verify` walks.
    async fn audit_links(&self, after: i64, limit: u32) -> StoreResult<Vec<Link>>;
    /// How far a prune of the records older than `before` can go: the last record of the run
    /// after the anchor whose records are all older, at most `limit` records on; `None` when
    /// the record after the anchor is not older.
    async fn audit_prune_point(&self, before: Timestamp, limit: u32) -> StoreResult<Option<Anchor>>;
    /// Deletes the records after the anchor `from` up to `to`, with `vouch` (the checkpoint at
    /// `to`, so a verification can trust the new anchor) written first, and makes `to` the
    /// anchor, under the head's lock; false, with nothing done, when the anchor is no longer
    /// `from` (another process pruned).
    async fn prune_audit(&self, from: &Anchor, to: &Anchor, vouch: &Checkpoint) -> StoreResult<bool>;
    /// Whether the one-click decision link with `nonce` was used.
    async fn decision_link_used(&self, nonce: &str) -> StoreResult<bool>;
    /// Records that `user` used the link with `nonce` on `request`; false when it was already.
    async fn use_decision_link(
        &self,
        nonce: &str,
        request: RequestId,
        user: UserId,
        at: Timestamp,
    ) -> StoreResult<bool>;

    // Bulk reads, for the job runner's rounds: the rows that exist among `ids`, in no
    // particular order (missing ids are simply absent).
    async fn assignments_by_id(&self, ids: &[AssignmentId]) -> StoreResult<Vec<Assignment>>;
    async fn requests_by_id(&self, ids: &[RequestId]) -> StoreResult<Vec<AssignmentRequest>>;
    async fn users_by_id(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    /// `role_grant` for several roles.
    async fn role_grants(&self, roles: &[ResourceRoleId]) -> StoreResult<Vec<RoleGrant>>;
    /// The deliveries of several assignments, by assignment, role and action.
    async fn deliveries_of(&self, assignments: &[AssignmentId]) -> StoreResult<Vec<Delivery>>;
    // Bulk reads for pages that show many objects at once (My Access): one read per kind of
    // row instead of one per row shown.
    async fn packages_by_id(&self, ids: &[AccessPackageId]) -> StoreResult<Vec<AccessPackage>>;
    async fn policies_by_id(&self, ids: &[PolicyId]) -> StoreResult<Vec<AssignmentPolicy>>;
    /// `package_grants` for several packages: each package with one of its grants, by package
    /// and role.
    async fn package_grants_of(&self, packages: &[AccessPackageId]) -> StoreResult<Vec<(AccessPackageId, RoleGrant)>>;
    /// `incompatibilities` for several packages: each package with what it conflicts with
    /// (packages in both directions, groups it declares), in no particular order.
    async fn incompatibilities_of(
        &self,
        packages: &[AccessPackageId],
    ) -> StoreResult<Vec<(AccessPackageId, Conflicting)>>;
    /// The catalogs holding the packages `requestable_packages(user, q)` would list over all its
    /// pages (`q`'s filter and search apply, its order and paging do not), by display name and
    /// id, at most `limit`: what a requestor's catalog filter offers, in one read.
    async fn requestable_catalogs(&self, user: &User, q: &ListQuery, limit: u32) -> StoreResult<Vec<Catalog>>;
    /// How many packages `requestable_packages(user, q)` lists over all its pages (`q`'s filter
    /// and search apply, its order and paging do not), counting no further than `cap`: the
    /// total if it is at most `cap`, else `cap`. Enough for "more than 1,000" without visiting
    /// every package, which an exact `$count` must.
    async fn count_requestable(&self, user: &User, q: &ListQuery, cap: u32) -> StoreResult<u64>;

    // Jobs: a lease-based queue several processes share.
    /// Leases up to `limit` due jobs to `owner` until `lease_until`; a job whose lease ran out
    /// is due again.
    async fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// Leases those of `ids` that are due and not leased to anyone (as `claim_jobs` would),
    /// found by id rather than by searching for due jobs; in the order the jobs are due.
    async fn claim_jobs_by_id(
        &self,
        owner: &str,
        ids: &[JobId],
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<Job>>;
    /// Removes a job `owner` holds and applies its effects, in one transaction. `Conflict` when
    /// the lease was lost (another process may be running it).
    async fn finish_job(&self, id: JobId, owner: &str, effects: &Batch) -> StoreResult<()>;
    /// `finish_job` for several jobs at once, with their effects merged into one batch: all
    /// or nothing. `Conflict` when any lease was lost or any row of the batch changed.
    async fn finish_jobs(&self, ids: &[JobId], owner: &str, effects: &Batch) -> StoreResult<()>;
    /// Gives a job back to run again at `run_at`, recording why it failed.
    async fn retry_job(&self, id: JobId, owner: &str, run_at: Timestamp, error: &str) -> StoreResult<()>;
    /// How many jobs wait (for metrics and tests).
    async fn pending_jobs(&self) -> StoreResult<u64>;

    // Connections to delivery targets, with their sealed credentials kept apart.
    /// Inserts a connection with its sealed credentials, if any, and the audit `event`.
    async fn insert_connection(&self, c: &Connection, sealed: Option<&str>, event: &AuditEvent) -> StoreResult<()>;
    /// Writes `c` if it has not changed since `read_at` (else `Conflict`). `sealed`: `None`
    /// keeps the stored credentials, `Some(None)` removes them, `Some(Some(_))` replaces them.
    async fn update_connection(
        &self,
        c: &Connection,
        sealed: Option<Option<&str>>,
        read_at: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// Deletes a connection; `Rule` while a catalog holds a resource from it.
    async fn delete_connection(&self, id: ConnectionId, event: &AuditEvent) -> StoreResult<()>;
    async fn get_connection(&self, id: ConnectionId) -> StoreResult<Option<Connection>>;
    /// Every connection, by display name.
    async fn list_connections(&self) -> StoreResult<Vec<Connection>>;
    /// A connection's sealed credentials (`None`: none stored, or no such connection).
    async fn connection_credentials(&self, id: ConnectionId) -> StoreResult<Option<String>>;

    // Chat webhooks of catalogs, with their sealed addresses kept apart.
    /// Inserts a webhook with its sealed address and the audit `event`; `NotFound` when its
    /// catalog does not exist.
    async fn insert_chat_webhook(&self, w: &ChatWebhook, sealed_url: &str, event: &AuditEvent) -> StoreResult<()>;
    /// A catalog's webhooks, oldest first.
    async fn chat_webhooks(&self, catalog: CatalogId) -> StoreResult<Vec<ChatWebhook>>;
    /// A webhook with its sealed address.
    async fn chat_webhook(&self, id: ChatWebhookId) -> StoreResult<Option<(ChatWebhook, String)>>;
    /// Deletes a webhook with the audit `event`; `NotFound` when there is none.
    async fn delete_chat_webhook(&self, id: ChatWebhookId, event: &AuditEvent) -> StoreResult<()>;

    // Reconciliation.
    /// Connections whose reconciliation pass is due at `now`.
    async fn due_reconciliations(&self, now: Timestamp) -> StoreResult<Vec<Connection>>;
    /// When a connection's next reconciliation pass is due (`None`: only on request).
    async fn set_reconcile_at(&self, id: ConnectionId, at: Option<Timestamp>) -> StoreResult<()>;
    /// The resource roles of a connection's resources (origin ids `<connection id>:…`).
    async fn connection_role_grants(&self, id: ConnectionId) -> StoreResult<Vec<RoleGrant>>;
    /// Who Steward granted a role to, and who it is granting it to or taking it from now.
    async fn role_holders(&self, role: ResourceRoleId) -> StoreResult<RoleHolders>;
    /// Replaces the drift recorded for `role` with `holders` (keeping when each was first
    /// seen).
    async fn replace_drift(
        &self,
        connection: ConnectionId,
        role: ResourceRoleId,
        holders: &[String],
        now: Timestamp,
    ) -> StoreResult<()>;
    /// The drift recorded for a connection, by role and holder.
    async fn drift(&self, connection: ConnectionId) -> StoreResult<Vec<Drift>>;

    // Custom extensions of catalogs, with their sealed signing secrets kept apart. Policies'
    // `customExtensionStageSettings` are indexed by `insert_policy` and `update_policy`, so an
    // extension a policy names cannot be deleted and a policy cannot name a missing one.
    /// Inserts an extension with its sealed signing secret and the audit `event`; `NotFound`
    /// when its catalog does not exist.
    async fn insert_extension(&self, x: &CustomExtension, sealed_secret: &str, event: &AuditEvent) -> StoreResult<()>;
    /// Writes `x` if it has not changed since `read_at` (else `Conflict`).
    async fn update_extension(&self, x: &CustomExtension, read_at: Timestamp, event: &AuditEvent) -> StoreResult<()>;
    /// Deletes an extension; `Rule` while a policy names it in its stage settings.
    async fn delete_extension(&self, id: CustomExtensionId, event: &AuditEvent) -> StoreResult<()>;
    async fn get_extension(&self, id: CustomExtensionId) -> StoreResult<Option<CustomExtension>>;
    /// A catalog's extensions, by display name.
    async fn extensions_of_catalog(&self, catalog: CatalogId) -> StoreResult<Vec<CustomExtension>>;
    /// An extension's sealed signing secret (`None`: no such extension).
    async fn extension_secret(&self, id: CustomExtensionId) -> StoreResult<Option<String>>;
    /// The policies that name an extension, with the stage each runs it at.
    async fn extension_uses(&self, id: CustomExtensionId) -> StoreResult<Vec<(PolicyId, CustomExtensionStage)>>;
    async fn get_callout(&self, id: CalloutInstanceId) -> StoreResult<Option<CalloutInstance>>;
    /// The callout instances of these requests, each request's in the order they were made.
    async fn callouts_of_requests(&self, requests: &[RequestId]) -> StoreResult<Vec<CalloutInstance>>;
    /// The callout instances about these assignments (expiry stages, and the stages of their
    /// requests once the assignment existed: granted, removed), each assignment's in order.
    async fn callouts_of_assignments(&self, assignments: &[AssignmentId]) -> StoreResult<Vec<CalloutInstance>>;
    /// Active assignments whose end is after `now` and at most `until`, whose policy runs an
    /// extension at `stage`, and that have no callout instance of that stage yet: with that
    /// extension, earliest end first.
    async fn nearing_expiry(
        &self,
        stage: CustomExtensionStage,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<(Assignment, CustomExtensionId)>>;

    // SCIM provisioning of the directory (`crate::scim`): users and groups with what SCIM keeps
    // beside Graph's properties. Each write records its audit `events` in its transaction.
    async fn scim_user(&self, id: UserId) -> StoreResult<Option<ScimUser>>;
    /// The users `q` selects, in its order, with how many match in all.
    async fn scim_users(&self, q: &ScimQuery) -> StoreResult<ScimPage<ScimUser>>;
    /// `Conflict` when the userName (ignoring case) is taken; `NotFound` for a missing manager.
    async fn insert_scim_user(&self, user: &ScimUser, events: &[AuditEvent]) -> StoreResult<()>;
    /// Writes the user if its version is still `read_version` (and bumps it): `false` when
    /// another write came first. `Conflict` when the userName is taken.
    async fn update_scim_user(&self, user: &ScimUser, read_version: i64, events: &[AuditEvent]) -> StoreResult<bool>;
    async fn delete_scim_user(&self, id: UserId, event: &AuditEvent) -> StoreResult<()>;
    /// A group with its members.
    async fn scim_group(&self, id: GroupId) -> StoreResult<Option<ScimGroup>>;
    async fn scim_groups(&self, q: &ScimQuery) -> StoreResult<ScimPage<ScimGroup>>;
    /// A group with its members; `NotFound` for a member that is not a user.
    async fn insert_scim_group(&self, group: &ScimGroup, events: &[AuditEvent]) -> StoreResult<()>;
    /// Writes the group's attributes and adds and removes members if the group's version is
    /// still `read_version`: `false` when another write came first.
    async fn update_scim_group(
        &self,
        group: &ScimGroup,
        added: &[UserId],
        removed: &[UserId],
        read_version: i64,
        events: &[AuditEvent],
    ) -> StoreResult<bool>;
    /// Deletes a group as `delete_group` does (not while a catalog holds it), recording `event`.
    async fn delete_scim_group(&self, id: GroupId, event: &AuditEvent) -> StoreResult<()>;

    // Connected organizations, their sponsors, the tenant's entitlement-management settings and
    // the external users Steward governs (`steward_domain::connected`, `::external`).
    /// Inserts an organization with the keys of its identity sources (a domain, a tenant, a
    /// provider belongs to one organization at most) and the audit `event`; `Conflict` naming
    /// the key another organization has.
    async fn insert_connected_organization(
        &self,
        o: &steward_domain::connected::ConnectedOrganization,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// Writes `o` and its keys if it has not changed since `read_at` (else `Conflict`).
    async fn update_connected_organization(
        &self,
        o: &steward_domain::connected::ConnectedOrganization,
        read_at: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// Deletes an organization with its sponsors; `Rule` (a conflict) while a policy names it
    /// in `connectedOrganizationMembers`.
    async fn delete_connected_organization(
        &self,
        id: steward_domain::ids::ConnectedOrganizationId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    async fn get_connected_organization(
        &self,
        id: steward_domain::ids::ConnectedOrganizationId,
    ) -> StoreResult<Option<steward_domain::connected::ConnectedOrganization>>;
    async fn list_connected_organizations(
        &self,
        q: &ListQuery,
    ) -> StoreResult<Page<steward_domain::connected::ConnectedOrganization>>;
    /// The organization with an identity source of this (normalised) DNS domain.
    async fn organization_of_domain(
        &self,
        domain: &str,
    ) -> StoreResult<Option<steward_domain::connected::ConnectedOrganization>>;
    /// `Conflict` when the user already is such a sponsor, `NotFound` for a missing user or
    /// organization.
    async fn add_organization_sponsor(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
        kind: steward_domain::connected::SponsorKind,
        user: UserId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    async fn remove_organization_sponsor(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
        kind: steward_domain::connected::SponsorKind,
        user: UserId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// An organization's sponsors of one kind, by id.
    async fn organization_sponsors(
        &self,
        org: steward_domain::ids::ConnectedOrganizationId,
        kind: steward_domain::connected::SponsorKind,
    ) -> StoreResult<Vec<UserId>>;
    /// The settings as last written, or the defaults.
    async fn entitlement_settings(&self) -> StoreResult<steward_domain::external::EntitlementSettings>;
    async fn put_entitlement_settings(
        &self,
        settings: &steward_domain::external::EntitlementSettings,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// The user whose userPrincipalName or mail is `email` (ignoring case); the first by id
    /// if several.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn get_external_user(&self, user: UserId) -> StoreResult<Option<steward_domain::external::ExternalUser>>;
    /// Those of `users` who are governed external users whose sign-in is not blocked.
    async fn governed_unblocked(&self, users: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// Blocks a governed external user's sign-in (the account disabled, its deletion planned
    /// at `block.delete_at`) with `event`, unless they are blocked already or hold an active
    /// assignment. Checked under a lock on their record, which an assignment starting for them
    /// takes too (`GuestWrite::Reinstate`): of the two, the later sees the earlier. Whether
    /// they were blocked.
    async fn block_external_user(
        &self,
        user: UserId,
        block: &steward_domain::external::Block,
        event: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Governed external users whose planned deletion has come at `now`, earliest first.
    async fn external_users_due(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<UserId>>;
    /// Deletes a blocked external user whose deletion has come at `now` and who holds no
    /// active assignment (checked under the lock), with `event`. Whether they were deleted.
    async fn delete_external_user(&self, user: UserId, now: Timestamp, event: &AuditEvent) -> StoreResult<bool>;

    // Portal sign-in (`crate::sessions`, migration 0012): sign-ins in flight and sessions, by
    // the SHA-256 of the secret the browser holds.
    /// Keeps a sign-in begun; `Conflict` if its state hash is taken.
    async fn insert_sign_in(&self, sign_in: &crate::sessions::StoredSignIn) -> StoreResult<()>;
    /// Deletes and returns the sign-in with this state hash (expired or not): at most one
    /// caller ever gets it.
    async fn take_sign_in(&self, state_hash: &str) -> StoreResult<Option<crate::sessions::StoredSignIn>>;
    /// `NotFound` for a user who does not exist.
    async fn insert_session(&self, session: &crate::sessions::Session) -> StoreResult<()>;
    /// The session with this hash, and whether its user's account is enabled.
    async fn session(&self, id_hash: &str) -> StoreResult<Option<(crate::sessions::Session, bool)>>;
    /// Records that the session was used at `last_seen`, and so now ends at `ends_at`.
    async fn touch_session(&self, id_hash: &str, last_seen: Timestamp, ends_at: Timestamp) -> StoreResult<()>;
    /// Whether there was such a session.
    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool>;
    /// Deletes the sign-ins expired and the sessions ended by `now`; how many rows. Cheap when
    /// nothing has: it looks before it writes.
    async fn sweep_sessions(&self, now: Timestamp) -> StoreResult<u64>;

    // Access reviews (`crate::reviews`). Definitions, instances and decisions are written
    // through `apply` (`Batch::review_*`), so opening an instance, recording decisions and
    // applying them go in one transaction with the requests, events and jobs they cause; a
    // `Put::Changed` whose row changed since `read_at` fails the whole batch with `Conflict`.
    async fn get_review_definition(&self, id: ReviewDefinitionId) -> StoreResult<Option<ReviewDefinition>>;
    /// The definitions `q` selects (`REVIEW_DEFINITIONS`), in its order.
    async fn list_review_definitions(&self, q: &ListQuery) -> StoreResult<Page<ReviewDefinition>>;
    /// The definition an assignment policy's `reviewSettings` keeps in step, if any.
    async fn review_definition_of_policy(&self, policy: PolicyId) -> StoreResult<Option<ReviewDefinition>>;
    /// Deletes a definition with its instances and decisions, recording `event`.
    async fn delete_review_definition(&self, id: ReviewDefinitionId, event: &AuditEvent) -> StoreResult<()>;
    /// Definitions whose next instance opens at or before `now` (`next_start`), earliest first.
    async fn due_review_definitions(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<ReviewDefinition>>;
    async fn get_review_instance(&self, id: ReviewInstanceId) -> StoreResult<Option<ReviewInstance>>;
    /// The instances `q` selects (`REVIEW_INSTANCES`, scoped to a definition).
    async fn list_review_instances(&self, q: &ListQuery) -> StoreResult<Page<ReviewInstance>>;
    /// Instances in progress whose current stage ended at or before `now`, earliest first.
    async fn ending_review_instances(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<ReviewInstance>>;
    async fn get_review_decision(&self, id: ReviewDecisionId) -> StoreResult<Option<ReviewDecision>>;
    /// The decisions `q` selects (`REVIEW_DECISIONS`: scoped to an instance; related to a
    /// reviewer with `Relation::DecisionsToReview`), in its order, with paging.
    async fn list_review_decisions(&self, q: &ListQuery) -> StoreResult<Page<ReviewDecision>>;
    /// An instance's decisions in id order after `after`, at most `limit` (stage changes and
    /// applying walk an instance with it).
    async fn review_decisions_of(
        &self,
        instance: ReviewInstanceId,
        after: Option<ReviewDecisionId>,
        limit: u32,
    ) -> StoreResult<Vec<ReviewDecision>>;
    /// Decisions by id (those of another instance too); missing ids are left out.
    async fn review_decisions_by_id(&self, ids: &[ReviewDecisionId]) -> StoreResult<Vec<ReviewDecision>>;
    /// Decisions of `instance` whose principal is one of `principals` (batchRecordDecisions).
    async fn review_decisions_of_principals(
        &self,
        instance: ReviewInstanceId,
        principals: &[UserId],
    ) -> StoreResult<Vec<ReviewDecision>>;

    /// Records that `user` signed in (the portal, or the API with their token) at `at`; later
    /// sign-ins only move it forward. Recommendations read it.
    async fn note_sign_in(&self, user: UserId, at: Timestamp) -> StoreResult<()>;
    /// The last sign-in of each of `users` that has one.
    async fn last_sign_ins(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, Timestamp)>>;

    // Access review history reports (`crate::reviews::history`, migration 0014): one-time
    // reports, each a definition with one instance whose CSV report is kept beside it.
    /// Inserts a definition with its instance, the instance's `report` and the audit `event`,
    /// in one transaction; `Conflict` when an id is taken.
    async fn insert_review_history(
        &self,
        definition: &crate::reviews::history::HistoryDefinition,
        instance: &crate::reviews::history::HistoryInstance,
        report: &str,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    async fn get_review_history_definition(
        &self,
        id: crate::reviews::history::HistoryDefinitionId,
    ) -> StoreResult<Option<crate::reviews::history::HistoryDefinition>>;
    /// The definitions `q` selects (`REVIEW_HISTORY_DEFINITIONS`), in its order, with paging.
    async fn list_review_history_definitions(
        &self,
        q: &ListQuery,
    ) -> StoreResult<Page<crate::reviews::history::HistoryDefinition>>;
    /// Deletes a definition with its instances and their reports, recording `event`;
    /// `NotFound` when there is no such definition.
    async fn delete_review_history_definition(
        &self,
        id: crate::reviews::history::HistoryDefinitionId,
        event: &AuditEvent,
    ) -> StoreResult<()>;
    /// A definition's instances, earliest run first (without their reports).
    async fn review_history_instances(
        &self,
        definition: crate::reviews::history::HistoryDefinitionId,
    ) -> StoreResult<Vec<crate::reviews::history::HistoryInstance>>;
    /// One instance, without its report.
    async fn get_review_history_instance(
        &self,
        id: crate::reviews::history::HistoryInstanceId,
    ) -> StoreResult<Option<crate::reviews::history::HistoryInstance>>;
    /// One instance with its report (CSV).
    async fn review_history_report(
        &self,
        id: crate::reviews::history::HistoryInstanceId,
    ) -> StoreResult<Option<(crate::reviews::history::HistoryInstance, String)>>;

    // Metrics (`crate::metrics`): the gauges read at scrape time, so they are right however
    // many processes share the database.
    /// Assignment requests by state, jobs by kind (due at `now` or later) with the age of the
    /// oldest due job no worker holds, and the decisions of review instances in progress.
    async fn metrics_snapshot(&self, now: Timestamp) -> StoreResult<crate::metrics::MetricsSnapshot>;

    // Notifications (`crate::notify`, migration 0016): an outbox of rendered mails, fed from
    // the audit chain (a cursor on its `seq`) and from the sweep's timers (a watermark each),
    // sent by leasing due notices as jobs are leased. Writing a notice whose id exists leaves
    // the one there untouched, so each notice is queued at most once.
    /// The last chained audit record turned into notices.
    async fn notify_cursor(&self) -> StoreResult<i64>;
    /// Moves the cursor to the audit chain's head, deriving nothing (no mailer configured).
    async fn notify_cursor_to_head(&self) -> StoreResult<()>;
    /// Up to `limit` chained audit events with `seq` above `after`, in `seq` order.
    async fn chained_events(&self, after: i64, limit: u32) -> StoreResult<Vec<(i64, AuditEvent)>>;
    /// Queues `notices` and moves the cursor from `from` to `to`, in one transaction; false,
    /// with nothing written, when the cursor is no longer at `from` (another process took
    /// that stretch of the chain).
    async fn queue_notices(&self, notices: &[crate::notify::Notice], from: i64, to: i64) -> StoreResult<bool>;
    /// How far timer `name` has looked (`None`: never).
    async fn notify_timer(&self, name: &str) -> StoreResult<Option<Timestamp>>;
    /// Queues `notices` and moves timer `name` from `read` (as `notify_timer` said) to
    /// `until`, in one transaction; false, with nothing written, when it was moved meanwhile.
    async fn queue_timer_notices(
        &self,
        name: &str,
        read: Option<Timestamp>,
        until: Timestamp,
        notices: &[crate::notify::Notice],
    ) -> StoreResult<bool>;
    /// Leases up to `limit` pending notices due at `now` to `owner` until `lease_until`
    /// (a notice whose lease ran out is due again), earliest first.
    async fn claim_notices(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<crate::notify::Notice>>;
    /// Marks a notice `owner` holds as sent at `at` (one more attempt); false when the lease
    /// was lost.
    async fn notice_sent(&self, id: &str, owner: &str, at: Timestamp) -> StoreResult<bool>;
    /// Gives a notice `owner` holds back to be tried at `next_at`, after a failed attempt.
    async fn notice_retry(&self, id: &str, owner: &str, next_at: Timestamp, error: &str) -> StoreResult<bool>;
    /// Gives a notice `owner` holds up after a failed attempt.
    async fn notice_failed(&self, id: &str, owner: &str, error: &str) -> StoreResult<bool>;
    /// Gives a notice `owner` holds back untried, due at `next_at` (its attempts unchanged).
    async fn notice_postpone(&self, id: &str, owner: &str, next_at: Timestamp) -> StoreResult<bool>;
    async fn get_notice(&self, id: &str) -> StoreResult<Option<crate::notify::Notice>>;
    /// Active assignments whose end is after `after` and at most `until`, earliest end first.
    async fn assignments_ending_between(
        &self,
        after: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Assignment>>;
    /// Open requests whose `due` time is after `after` and at most `until`, earliest first.
    async fn requests_due_between(
        &self,
        after: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<AssignmentRequest>>;
}

/// A write about an external user Steward governs, made in the batch of the assignment that
/// needs it.
#[derive(Debug, Clone)]
pub enum GuestWrite {
    /// Creates an invited guest: the user and Steward's record of them, with `event`.
    Invite { user: Box<User>, record: steward_domain::external::ExternalUser, event: AuditEvent },
    /// An assignment of a governed guest starts: takes the lock on their record and, if their
    /// sign-in was blocked, unblocks it and cancels the planned deletion, recording `event`
    /// (nothing is recorded when they were not blocked). `Conflict` when they were deleted.
    Reinstate { user: UserId, event: AuditEvent },
}

/// The users a role is held by, as Steward's deliveries say: `granted` (a grant done, on an
/// active assignment) and `in_flight` (a grant or a revoke pending), each user once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleHolders {
    pub granted: Vec<User>,
    pub in_flight: Vec<User>,
}

/// A holder of a role in a target whom Steward did not grant it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub resource_role_id: ResourceRoleId,
    /// As the target names them: a DN, a SCIM id, a role name.
    pub holder: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// One separation-of-duties violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub target: UserId,
    pub assignment: AssignmentId,
    pub package: AccessPackageId,
    pub conflict: Conflicting,
}

/// What an assignment conflicts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflicting {
    Package(AccessPackageId),
    Group(GroupId),
}

/// One resource role an access package grants, with where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub role_id: ResourceRoleId,
    pub role_name: String,
    pub role_origin_id: String,
    pub origin_system: String,
    /// The origin id of the role's resource (a group id for `AadGroup`).
    pub resource_origin_id: String,
    pub resource_name: String,
}

/// A row to insert, or to update when it has not changed since it was read.
#[derive(Debug, Clone)]
pub enum Put<T> {
    New(T),
    Changed { row: T, read_at: Timestamp },
}

impl<T> Put<T> {
    pub fn row(&self) -> &T {
        match self {
            Self::New(r) | Self::Changed { row: r, .. } => r,
        }
    }
}

/// The changes of one decision, written together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub requests: Vec<Put<AssignmentRequest>>,
    pub assignments: Vec<Put<Assignment>>,
    /// Inserted or replaced (by assignment, role and action).
    pub deliveries: Vec<Delivery>,
    pub jobs: Vec<NewJob>,
    pub events: Vec<AuditEvent>,
    /// Custom extension callout instances: inserted, or updated when unchanged since read.
    pub callouts: Vec<Put<CalloutInstance>>,
    /// Guests invited or reinstated with the assignments of this batch (written first).
    pub guests: Vec<GuestWrite>,
    /// Access review definitions: inserted, or replaced when unchanged since read (written
    /// before instances, instances before decisions).
    pub review_definitions: Vec<Put<ReviewDefinition>>,
    pub review_instances: Vec<Put<ReviewInstance>>,
    /// Decisions with who may decide them (`reviewers`): inserted, or replaced when unchanged
    /// since read. A decision is only written while its instance is in progress at the
    /// decision's stage, or when the batch also writes the instance.
    pub review_decisions: Vec<Put<ReviewDecision>>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.assignments.is_empty()
            && self.deliveries.is_empty()
            && self.jobs.is_empty()
            && self.events.is_empty()
            && self.callouts.is_empty()
            && self.guests.is_empty()
            && self.review_definitions.is_empty()
            && self.review_instances.is_empty()
            && self.review_decisions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_keeps_what_the_store_keeps() {
        let t = SystemClock.now();
        assert_eq!(t.subsec_nanosecond() % 1000, 0);
    }
}
