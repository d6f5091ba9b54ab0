//! Access reviews of access package assignments (Graph's `/identityGovernance/accessReviews`):
//! the use cases of review definitions (create, read, replace, delete, stop), of their
//! instances and of the decisions in them (`decide`), opening instances when their time comes
//! and ending stages and instances (`schedule`, called from the lifecycle's sweep), and
//! applying final decisions through the normal removal flow (`apply`). Who reviews is resolved
//! when a stage begins (`reviewers`). Every step is one `Batch` (chunks of `CHUNK` decisions
//! where an instance is walked), audited with Entra's access review activity names.
//!
//! Who may: definitions, instances and their decisions are managed (created, replaced,
//! deleted, stopped, reset, reminded, applied) by Steward administrators and by whoever may
//! manage the access packages (`Task::ManagePackages`: catalog owners and access package
//! managers) of the catalog the definition's scope lies in; they are read by whoever may read
//! that catalog (`Task::ReadCatalog`). Decisions are recorded only by their reviewers at the
//! decision's current stage, whatever other role they hold; reviewers also read the decisions
//! they review and the definitions and instances those belong to.

mod apply;
mod decide;
pub mod history;
pub(crate) mod policy;
pub(crate) mod remind;
mod reviewers;
mod schedule;

use jiff::Timestamp;
use steward_domain::audit::{Activity, AuditEvent};
use steward_domain::ids::{AccessPackageId, CatalogId, ReviewDefinitionId, ReviewInstanceId, UserId};
use steward_domain::review::{DefinitionInput, ReviewDefinition, ReviewInstance, ReviewStatus, Reviewer};
use steward_domain::role::Task;

pub use apply::apply_decisions;
pub use decide::{
    BatchItem, MyReview, accept_recommendations, batch_record, contacted_reviewers, get_decision, list_decisions,
    list_my_decisions, my_reviews, record, reset_decisions, send_reminder, stop_instance,
};
pub use policy::input_of_policy;
pub use schedule::{Swept, sweep};

use crate::auth::{CatalogCap, CatalogScope, Principal};
use crate::lifecycle::Actor;
use crate::ports::{Batch, Page, Put};
use crate::query::{Cond, ListQuery, Match, Relation};
use crate::{AppError, Services, StoreError};

/// Decisions written (or applied) per transaction when an instance is walked.
pub const CHUNK: u32 = 1_000;

/// Audit target types.
pub const DEFINITION: &str = "AccessReviewScheduleDefinition";
pub const INSTANCE: &str = "AccessReviewInstance";
pub const DECISION: &str = "AccessReviewInstanceDecisionItem";

/// The query paths the use cases scope lists with (the store's schemas name them).
const SCOPE_QUERY: &str = "scope/query";
const INSTANCE_DEFINITION: &str = "definition/id";
const DECISION_INSTANCE: &str = "instance/id";

/// An access review's audit event (category `Policy`, as Entra logs access reviews).
pub(crate) fn review_event(
    activity: Activity,
    actor: &Actor,
    target_type: &str,
    target_id: impl ToString,
    correlation: impl ToString,
    now: Timestamp,
) -> AuditEvent {
    let mut e = AuditEvent::new(now, activity, actor.initiator(), target_type, target_id, correlation);
    e.category = "Policy".to_owned();
    e
}

/// Where a definition's scope lies: its catalog, and its package when it names one (directly or
/// through its policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeOf {
    pub catalog: CatalogId,
    pub package: Option<AccessPackageId>,
}

/// Resolves the catalog of a scope, checking that what it names exists and fits together (a
/// policy of that package, a package of that catalog): 400 otherwise.
pub async fn scope_of(s: &Services, scope: &steward_domain::review::AssignmentScope) -> Result<ScopeOf, AppError> {
    let mut package = scope.package;
    let mut catalog = None;
    if let Some(pid) = scope.policy {
        let p = s.store.get_policy(pid).await?.ok_or_else(|| {
            AppError::Invalid(format!("The scope names assignment policy '{pid}', which does not exist."))
        })?;
        if package.is_some_and(|pkg| pkg != p.access_package_id) {
            return Err(AppError::Invalid(format!(
                "The scope's assignment policy '{pid}' belongs to another access package than the one it names."
            )));
        }
        package = Some(p.access_package_id);
        catalog = Some(p.catalog_id);
    }
    if let Some(pkg) = package
        && catalog.is_none()
    {
        let p = s.store.get_package(pkg).await?.ok_or_else(|| {
            AppError::Invalid(format!("The scope names access package '{pkg}', which does not exist."))
        })?;
        catalog = Some(p.catalog_id);
    }
    let catalog = match (catalog, scope.catalog) {
        (Some(c), Some(named)) if c != named => {
            return Err(AppError::Invalid(format!(
                "The scope's access package belongs to catalog {c}, not to catalog {named} which it also names."
            )));
        }
        (Some(c), _) => c,
        (None, Some(named)) => {
            s.store.get_catalog(named).await?.ok_or_else(|| {
                AppError::Invalid(format!("The scope names catalog '{named}', which does not exist."))
            })?;
            named
        }
        (None, None) => {
            return Err(AppError::Invalid(
                "The scope must name an access package, an assignment policy or a catalog.".into(),
            ));
        }
    };
    Ok(ScopeOf { catalog, package })
}

/// The catalog of a stored definition's scope (what the checks of who may touch it use). A
/// definition whose package or policy has gone since falls back to the catalog it names, else
/// it is only an administrator's.
async fn catalog_of(s: &Services, d: &ReviewDefinition) -> Result<Option<CatalogId>, AppError> {
    match scope_of(s, &d.input.scope).await {
        Ok(o) => Ok(Some(o.catalog)),
        Err(AppError::Invalid(_)) => Ok(d.input.scope.catalog),
        Err(e) => Err(e),
    }
}

/// The capability to do `task` on a definition: an administrator's, or a catalog role's in the
/// catalog of its scope.
async fn cap_on(s: &Services, p: &Principal, d: &ReviewDefinition, task: Task) -> Result<Actor, AppError> {
    if let Ok(cap) = p.admin() {
        return Ok(cap.actor());
    }
    let catalog = catalog_of(s, d).await?.ok_or_else(|| {
        AppError::Forbidden("Insufficient privileges: only an administrator manages this access review.".into())
    })?;
    let cap: CatalogCap = p.in_catalog(catalog, task)?;
    Ok(cap.actor())
}

/// Checks the users and groups a definition's reviewers name exist (400 otherwise).
async fn check_reviewers(s: &Services, input: &DefinitionInput) -> Result<(), AppError> {
    let mut all: Vec<Reviewer> = input.reviewers.iter().chain(&input.fallback_reviewers).cloned().collect();
    for st in &input.stages {
        all.extend(st.reviewers.iter().chain(&st.fallback_reviewers).cloned());
    }
    for r in &all {
        match r {
            Reviewer::User(u) => {
                if s.store.get_user(*u).await?.is_none() {
                    return Err(AppError::Invalid(format!("The reviewer user '{u}' does not exist.")));
                }
            }
            Reviewer::GroupMembers(g) | Reviewer::GroupOwners(g) => {
                if s.store.get_group(*g).await?.is_none() {
                    return Err(AppError::Invalid(format!("The reviewer group '{g}' does not exist.")));
                }
            }
            Reviewer::Manager | Reviewer::CatalogOwners | Reviewer::PackageManagers => {}
        }
    }
    Ok(())
}

/// A new definition from `input`: its first instance opens at its recurrence's first day, or,
/// for a one-time review, at once (the sweep opens it).
fn new_definition(input: DefinitionInput, by: Option<UserId>, now: Timestamp) -> ReviewDefinition {
    let mut d = ReviewDefinition {
        id: ReviewDefinitionId::new(),
        input,
        policy_id: None,
        status: ReviewStatus::NotStarted,
        created_by: by,
        created_date_time: now,
        last_modified_date_time: now,
        next_occurrence: 0,
        next_start: None,
    };
    d.next_start = d.start_of(0, now);
    if d.next_start.is_none() {
        d.status = ReviewStatus::Completed;
    }
    d
}

/// Creates a definition (`POST …/accessReviews/definitions`).
pub async fn create_definition(
    s: &Services,
    p: &Principal,
    input: DefinitionInput,
) -> Result<ReviewDefinition, AppError> {
    let scope = scope_of(s, &input.scope).await?;
    let actor = match p.admin() {
        Ok(cap) => cap.actor(),
        Err(_) => p.in_catalog(scope.catalog, Task::ManagePackages)?.actor(),
    };
    check_reviewers(s, &input).await?;
    let now = s.clock.now();
    let d = new_definition(normalised(input, scope), p.user_id(), now);
    let event = review_event(Activity::CreateAccessReview, &actor, DEFINITION, d.id, d.id, now)
        .with_detail(crate::audit::named(&d.input.display_name));
    let batch = Batch { review_definitions: vec![Put::New(d.clone())], events: vec![event], ..Batch::default() };
    s.store.apply(&batch).await?;
    Ok(d)
}

pub(crate) async fn require_definition(s: &Services, id: ReviewDefinitionId) -> Result<ReviewDefinition, AppError> {
    s.store.get_review_definition(id).await?.ok_or_else(|| AppError::not_found("access review definition", id))
}

/// Whether `user` reviews any decision of the definition: what lets a reviewer read the
/// definition and its instances without a catalog role.
async fn reviews_any(s: &Services, user: UserId, definition: ReviewDefinitionId) -> Result<bool, AppError> {
    let mut q = ListQuery::all(&crate::query::REVIEW_DECISIONS).related(Relation::DecisionsToReview, user);
    loop {
        let page = s.store.list_review_decisions(&q).await?;
        if page.items.iter().any(|x| x.definition_id == definition) {
            return Ok(true);
        }
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(false),
        }
    }
}

/// The definition, for a reader of its catalog or one of its reviewers (403 for anyone else).
pub async fn get_definition(s: &Services, p: &Principal, id: ReviewDefinitionId) -> Result<ReviewDefinition, AppError> {
    let d = require_definition(s, id).await?;
    check_read(s, p, &d).await?;
    Ok(d)
}

async fn check_read(s: &Services, p: &Principal, d: &ReviewDefinition) -> Result<(), AppError> {
    let refused = match cap_on(s, p, d, Task::ReadCatalog).await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let reviewer = match p.user_id() {
        Some(u) => reviews_any(s, u, d.id).await?,
        None => false,
    };
    if reviewer { Ok(()) } else { Err(refused) }
}

/// The definitions of the catalogs `scope` covers. Every stored scope names its catalog
/// (`normalised`), so a delegated administrator's list is one more condition on the scope's
/// query, and pages and counts stay exact.
pub async fn list_definitions(
    s: &Services,
    scope: &CatalogScope,
    q: &ListQuery,
) -> Result<Page<ReviewDefinition>, AppError> {
    let mut q = q.clone();
    if let Some(ids) = scope.catalogs() {
        let field = crate::query::REVIEW_DEFINITIONS
            .field(SCOPE_QUERY)
            .ok_or_else(|| AppError::Invalid("Access review definitions cannot be listed by catalog.".into()))?;
        let terms = ids
            .iter()
            .map(|c| Cond::Match { field, kind: Match::Contains, value: format!("accessPackage/catalog/id eq '{c}'") })
            .collect();
        q = q.and(Cond::Or(terms));
    }
    Ok(s.store.list_review_definitions(&q).await?)
}

/// The input with its scope naming its catalog, as stored: `scope_of` checked they agree.
fn normalised(mut input: DefinitionInput, scope: ScopeOf) -> DefinitionInput {
    input.scope.catalog = Some(scope.catalog);
    input
}

/// The definitions with an instance in which `me` reviews decisions
/// (`definitions/filterByCurrentUser(on='reviewer')`), most recent first.
pub async fn list_my_definitions(s: &Services, me: UserId) -> Result<Vec<ReviewDefinition>, AppError> {
    let mut ids: Vec<ReviewDefinitionId> = Vec::new();
    for r in my_reviews(s, me).await? {
        if !ids.contains(&r.definition.id) {
            ids.push(r.definition.id);
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(d) = s.store.get_review_definition(id).await? {
            out.push(d);
        }
    }
    Ok(out)
}

/// Refuses a change to a definition an assignment policy keeps in step: the policy's
/// `reviewSettings` are where it changes.
fn not_kept_by_policy(d: &ReviewDefinition) -> Result<(), AppError> {
    match d.policy_id {
        Some(policy) => Err(AppError::Conflict(format!(
            "This access review is kept in step with the reviewSettings of assignment policy {policy}; change the \
             policy instead."
        ))),
        None => Ok(()),
    }
}

/// Replaces a definition's content (`PUT …/definitions/{id}`). Its schedule goes on from the
/// occurrence it is at; instances already open keep the settings they opened with, except
/// those read when they end (default decision, automatic application).
pub async fn replace_definition(
    s: &Services,
    p: &Principal,
    id: ReviewDefinitionId,
    input: DefinitionInput,
) -> Result<ReviewDefinition, AppError> {
    let current = require_definition(s, id).await?;
    let actor = cap_on(s, p, &current, Task::ManagePackages).await?;
    not_kept_by_policy(&current)?;
    let scope = scope_of(s, &input.scope).await?;
    if p.admin().is_err() {
        p.in_catalog(scope.catalog, Task::ManagePackages)?;
    }
    check_reviewers(s, &input).await?;
    let now = s.clock.now();
    let d = replaced(&current, normalised(input, scope), now);
    let event = review_event(Activity::UpdateAccessReview, &actor, DEFINITION, id, id, now)
        .with_detail(format!("displayName '{}'", steward_domain::text::clip(&d.input.display_name, 80)));
    write_definition(s, &current, d, event).await
}

/// `current` with new content: its schedule recomputed from the occurrence it is at (a
/// completed definition stays completed).
pub(crate) fn replaced(current: &ReviewDefinition, input: DefinitionInput, now: Timestamp) -> ReviewDefinition {
    let mut d = ReviewDefinition {
        input,
        last_modified_date_time: steward_domain::time::next_modified(current.last_modified_date_time, now),
        ..current.clone()
    };
    if d.status != ReviewStatus::Completed {
        d.next_start = d.start_of(d.next_occurrence, d.created_date_time);
        if d.next_start.is_none() && d.status == ReviewStatus::NotStarted {
            d.status = ReviewStatus::Completed;
        }
    }
    d
}

async fn write_definition(
    s: &Services,
    current: &ReviewDefinition,
    d: ReviewDefinition,
    event: AuditEvent,
) -> Result<ReviewDefinition, AppError> {
    let batch = Batch {
        review_definitions: vec![Put::Changed { row: d.clone(), read_at: current.last_modified_date_time }],
        events: vec![event],
        ..Batch::default()
    };
    match s.store.apply(&batch).await {
        Ok(()) => Ok(d),
        Err(StoreError::Conflict(_)) => Err(AppError::Conflict(
            "The access review changed while it was being updated (an instance opened, someone else changed it); \
             read it again and retry."
                .into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a definition with its instances and decisions.
pub async fn delete_definition(s: &Services, p: &Principal, id: ReviewDefinitionId) -> Result<(), AppError> {
    let d = require_definition(s, id).await?;
    let actor = cap_on(s, p, &d, Task::ManagePackages).await?;
    not_kept_by_policy(&d)?;
    let event = review_event(Activity::DeleteAccessReview, &actor, DEFINITION, id, id, s.clock.now())
        .with_detail(crate::audit::named(&d.input.display_name));
    Ok(s.store.delete_review_definition(id, &event).await?)
}

/// Stops a definition (`POST …/definitions/{id}/stop`): no instance opens any more, and the
/// instances in progress end now (their unanswered decisions take the default, and are applied
/// when the settings say so).
pub async fn stop_definition(s: &Services, p: &Principal, id: ReviewDefinitionId) -> Result<(), AppError> {
    let current = require_definition(s, id).await?;
    let actor = cap_on(s, p, &current, Task::ManagePackages).await?;
    let now = s.clock.now();
    if current.status != ReviewStatus::Completed {
        let mut d = current.clone();
        d.status = ReviewStatus::Completed;
        d.next_start = None;
        d.last_modified_date_time = steward_domain::time::next_modified(current.last_modified_date_time, now);
        let event = review_event(Activity::StopAccessReview, &actor, DEFINITION, id, id, now);
        write_definition(s, &current, d, event).await?;
    }
    for inst in instances_in_progress(s, id).await? {
        schedule::stop(s, &actor, inst, now).await?;
    }
    Ok(())
}

async fn instances_in_progress(s: &Services, id: ReviewDefinitionId) -> Result<Vec<ReviewInstance>, AppError> {
    let mut q = ListQuery::all(&crate::query::REVIEW_INSTANCES).scoped(INSTANCE_DEFINITION, id)?;
    let mut out = Vec::new();
    loop {
        let page = s.store.list_review_instances(&q).await?;
        out.extend(page.items.into_iter().filter(|i| i.status == ReviewStatus::InProgress));
        match page.next {
            Some(next) => q.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// A definition's instances, for a reader of its catalog or one of its reviewers.
pub async fn list_instances(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    q: &ListQuery,
) -> Result<Page<ReviewInstance>, AppError> {
    let d = require_definition(s, definition).await?;
    check_read(s, p, &d).await?;
    Ok(s.store.list_review_instances(&q.clone().scoped(INSTANCE_DEFINITION, definition)?).await?)
}

/// One instance of a definition (404 when it belongs to another).
pub async fn get_instance(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    id: ReviewInstanceId,
) -> Result<(ReviewDefinition, ReviewInstance), AppError> {
    let d = require_definition(s, definition).await?;
    check_read(s, p, &d).await?;
    let i = require_instance(s, &d, id).await?;
    Ok((d, i))
}

pub(crate) async fn require_instance(
    s: &Services,
    d: &ReviewDefinition,
    id: ReviewInstanceId,
) -> Result<ReviewInstance, AppError> {
    match s.store.get_review_instance(id).await? {
        Some(i) if i.definition_id == d.id => Ok(i),
        _ => Err(AppError::not_found("access review instance", id)),
    }
}

/// The definition and instance, checked for a manager of the definition's catalog (`task`
/// `ManagePackages`) or a reader (`ReadCatalog`); the actor for the audit trail.
pub(crate) async fn managed_instance(
    s: &Services,
    p: &Principal,
    definition: ReviewDefinitionId,
    id: ReviewInstanceId,
    task: Task,
) -> Result<(ReviewDefinition, ReviewInstance, Actor), AppError> {
    let d = require_definition(s, definition).await?;
    let actor = cap_on(s, p, &d, task).await?;
    let i = require_instance(s, &d, id).await?;
    Ok((d, i, actor))
}
