//! The guests Steward governs, through the request lifecycle. Someone known only by email
//! (`by_email`) is invited: the request names the id they will get, and they become a guest
//! when its access starts, in the batch of their assignment (`prepare_target`). When a
//! governed guest's last assignment ends, a job (queued with the ending, `access_ended`) blocks
//! their sign-in as the tenant's settings say (`run`); the sweep deletes them when the planned
//! time comes (`delete_due`). An assignment starting before that reinstates them.

use jiff::Timestamp;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::connected::Email;
use steward_domain::directory::User;
use steward_domain::eligibility::Membership;
use steward_domain::enums::{ConnectedOrganizationState, UserType};
use steward_domain::external::GuestInvitation;
use steward_domain::ids::UserId;
use steward_domain::request::{AssignmentRequest, RequestStatus};

use crate::connected_orgs::membership_of;
use crate::jobs::{Job, JobKind, NewJob};
use crate::ports::{Batch, GuestWrite};
use crate::{AppError, Services};

/// How many due deletions one sweep takes on.
const DELETIONS_PER_SWEEP: u32 = 1_000;

/// Who a new request is for: a directory user, or someone a guest invitation will make one.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The user, or for an invitation the guest as they will be created.
    pub user: User,
    pub invitation: Option<GuestInvitation>,
    pub organization: Option<Membership>,
}

impl Target {
    pub(crate) async fn of(s: &Services, user: User) -> Result<Self, AppError> {
        let organization = membership_of(s, &user).await?;
        Ok(Self { user, invitation: None, organization })
    }
}

/// The person an email names: the directory user with that userPrincipalName or mail, else
/// an invitation of a guest of the connected organization the email's domain belongs to
/// (refused, 403, when it belongs to none: Steward does not propose organizations).
pub(crate) async fn by_email(s: &Services, email: &str, display_name: Option<&str>) -> Result<Target, AppError> {
    let email = Email::parse(email)?;
    if let Some(u) = s.store.user_by_email(email.as_str()).await? {
        return Target::of(s, u).await;
    }
    let org = s.store.organization_of_domain(email.domain()).await?.ok_or_else(|| {
        AppError::Forbidden(format!(
            "'{}' is not in the directory, and its domain '{}' belongs to no connected organization: only users \
             of connected organizations can be invited. Add a connected organization with a domainIdentitySource \
             for '{}' first.",
            email.as_str(),
            email.domain(),
            email.domain()
        ))
    })?;
    let invitation = GuestInvitation::new(&email, display_name, org.id)?;
    Ok(Target {
        user: invitation.user(s.clock.now()),
        organization: Some(Membership { id: org.id, configured: org.state == ConnectedOrganizationState::Configured }),
        invitation: Some(invitation),
    })
}

/// An audit event about a guest Steward governs (category `UserManagement`, as Entra records
/// user changes), correlated by `correlation` (the request, or the user).
fn guest_event(user: UserId, activity: Activity, correlation: impl ToString, now: Timestamp) -> AuditEvent {
    let mut e = AuditEvent::new(now, activity, Initiator::System, "User", user, correlation);
    e.category = "UserManagement".to_owned();
    e
}

/// Before an add request's access starts, in the batch that starts it: creates the guest the
/// request invites (unless they exist already, invited by another request), or reinstates a
/// governed guest whose sign-in was blocked (cancelling their deletion). Denies the request and
/// answers `false` when the invited email has meanwhile become another directory user's.
pub(crate) async fn prepare_target(
    s: &Services,
    req: &mut AssignmentRequest,
    now: Timestamp,
    batch: &mut Batch,
) -> Result<bool, AppError> {
    if let Some(inv) = req.detail.guest.clone()
        && s.store.get_user(req.target_id).await?.is_none()
    {
        if let Some(other) = s.store.user_by_email(&inv.email).await? {
            let reason = format!(
                "The invited email {} is now that of directory user {} ({}); request again for them.",
                inv.email, other.display_name, other.id
            );
            super::requests::deny(req, RequestStatus::Denied, &reason, now, batch);
            return Ok(false);
        }
        let user = inv.user(now);
        let event = guest_event(user.id, Activity::InviteExternalUser, req.id, now).with_detail(format!(
            "{} of connected organization {}, governed",
            inv.email, inv.connected_organization_id
        ));
        batch.guests.push(GuestWrite::Invite { user: Box::new(user), record: inv.record(now), event });
        return Ok(true);
    }
    if s.store.get_external_user(req.target_id).await?.is_some_and(|r| r.governed()) {
        let event = guest_event(req.target_id, Activity::UnblockExternalUser, req.id, now)
            .with_detail("A new assignment started: sign-in unblocked, deletion cancelled.");
        batch.guests.push(GuestWrite::Reinstate { user: req.target_id, event });
    }
    Ok(true)
}

/// After `batch` ends assignments of `targets`: queues, in it, the check of those who are
/// governed guests, which blocks them if that was their last assignment (`run`). One read.
pub(crate) async fn access_ended(
    s: &Services,
    targets: &[UserId],
    now: Timestamp,
    batch: &mut Batch,
) -> Result<(), AppError> {
    let mut targets = targets.to_vec();
    targets.sort_unstable();
    targets.dedup();
    let users = s.store.governed_unblocked(&targets).await?;
    if !users.is_empty() {
        batch.jobs.push(NewJob::now(JobKind::GuestsLostAccess { users }, now));
    }
    Ok(())
}

/// The job `access_ended` queues: blocks each governed guest who holds no active assignment
/// any more, as the settings say (nothing with `none`; the store checks the assignments under
/// a lock, so a guest given a new assignment meanwhile stays as they are).
pub(crate) async fn run(s: &Services, job: &Job, owner: &str, users: &[UserId]) -> Result<(), AppError> {
    let now = s.clock.now();
    let settings = s.store.entitlement_settings().await?;
    let mut blocked = 0;
    if let Some(block) = settings.on_last_assignment_ended(now) {
        for user in users {
            let detail = match block.delete_at {
                Some(at) => format!(
                    "Their last access package assignment ended: sign-in blocked, deletion at {}.",
                    steward_domain::time::format_datetime(at)
                ),
                None => "Their last access package assignment ended: sign-in blocked.".to_owned(),
            };
            let event = guest_event(*user, Activity::BlockExternalUser, user, now).with_detail(detail);
            if s.store.block_external_user(*user, &block, &event).await? {
                blocked += 1;
            }
        }
    }
    s.store.finish_job(job.id, owner, &Batch::default()).await?;
    if blocked > 0 {
        super::automatic::directory_changed(s).await?;
    }
    Ok(())
}

/// For the sweep: deletes the blocked guests whose deletion has come, while the settings still
/// say `blockSignInAndDelete` (turned off, the blocked stay blocked). Returns how many.
pub(crate) async fn delete_due(s: &Services, now: Timestamp) -> Result<usize, AppError> {
    let due = s.store.external_users_due(now, DELETIONS_PER_SWEEP).await?;
    if due.is_empty() || !s.store.entitlement_settings().await?.deletes() {
        return Ok(0);
    }
    let mut deleted = 0;
    for user in due {
        let event = guest_event(user, Activity::DeleteExternalUser, user, now)
            .with_detail("Blocked since their last access package assignment ended; deleted as planned.");
        if s.store.delete_external_user(user, now, &event).await? {
            deleted += 1;
        }
    }
    if deleted > 0 {
        super::automatic::directory_changed(s).await?;
    }
    Ok(deleted)
}

/// Whether Steward governs a user's lifecycle, for `accessPackageSubject.subjectLifecycle`:
/// the guests it invited are `governed`, other guests `notGoverned`, members `notDefined`.
pub async fn subject_lifecycle(s: &Services, user: &User) -> Result<steward_domain::enums::SubjectLifecycle, AppError> {
    use steward_domain::enums::SubjectLifecycle as L;
    if user.user_type != UserType::Guest {
        return Ok(L::NotDefined);
    }
    Ok(s.store.get_external_user(user.id).await?.map_or(L::NotGoverned, |r| r.lifecycle))
}
