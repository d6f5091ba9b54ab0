//! Resolving a stage's approver sets to people: specific users, group members, the target's
//! manager (first or second level), the target's sponsors, the internal or external sponsors of
//! the target's connected organization. The target and the requestor are never approvers of
//! their own request; fallbacks step in when nobody else is left.

use steward_domain::connected::SponsorKind;
use steward_domain::ids::{ConnectedOrganizationId, GroupId, UserId};
use steward_domain::policy::{ApprovalStage, SubjectSet};
use steward_domain::request::AssignmentRequest;

use crate::{AppError, Services};

/// Who may decide stage `index` now: the primary approvers, else the fallback primary ones
/// (`escalated`: the escalation approvers, else their fallbacks).
pub(crate) async fn resolve_stage(
    s: &Services,
    req: &AssignmentRequest,
    stage: &ApprovalStage,
    escalated: bool,
) -> Result<Vec<UserId>, AppError> {
    let (first, fallback) = if escalated {
        (&stage.escalation_approvers, &stage.fallback_escalation_approvers)
    } else {
        (&stage.primary_approvers, &stage.fallback_primary_approvers)
    };
    let people = resolve(s, req, first).await?;
    if !people.is_empty() {
        return Ok(people);
    }
    resolve(s, req, fallback).await
}

/// The connected organization of a request's target, whose sponsors `internalSponsors` and
/// `externalSponsors` name: the invitation's for someone not in the directory yet, else the
/// organization of the target's email domain.
async fn organization_of_target(
    s: &Services,
    req: &AssignmentRequest,
) -> Result<Option<ConnectedOrganizationId>, AppError> {
    match s.store.get_user(req.target_id).await? {
        Some(u) => Ok(crate::connected_orgs::membership_of(s, &u).await?.map(|m| m.id)),
        None => Ok(req.detail.guest.as_ref().map(|g| g.connected_organization_id)),
    }
}

async fn resolve(s: &Services, req: &AssignmentRequest, sets: &[SubjectSet]) -> Result<Vec<UserId>, AppError> {
    let mut out = Vec::new();
    for set in sets {
        match set {
            SubjectSet::SingleUser { user_id: Some(u), .. } => {
                if let Ok(u) = u.parse::<UserId>()
                    && s.store.get_user(u).await?.is_some_and(|u| u.account_enabled)
                {
                    out.push(u);
                }
            }
            SubjectSet::GroupMembers { group_id: Some(g), .. } => {
                if let Ok(g) = g.parse::<GroupId>() {
                    out.extend(s.store.member_ids(g).await?);
                }
            }
            SubjectSet::RequestorManager { manager_level } | SubjectSet::TargetManager { manager_level } => {
                let levels = manager_level.unwrap_or(1).clamp(1, 2);
                let mut who = req.target_id;
                let mut found = None;
                for _ in 0..levels {
                    found = s.store.get_user(who).await?.and_then(|u| u.manager);
                    match found {
                        Some(m) => who = m,
                        None => break,
                    }
                }
                out.extend(found);
            }
            SubjectSet::TargetUserSponsors {} => out.extend(s.store.sponsor_ids(req.target_id).await?),
            SubjectSet::InternalSponsors {} | SubjectSet::ExternalSponsors {} => {
                let kind = if matches!(set, SubjectSet::InternalSponsors {}) {
                    SponsorKind::Internal
                } else {
                    SponsorKind::External
                };
                if let Some(org) = organization_of_target(s, req).await? {
                    out.extend(s.store.organization_sponsors(org, kind).await?);
                }
            }
            _ => {}
        }
    }
    let parties = [Some(req.target_id), req.requestor_id];
    out.retain(|u| !parties.contains(&Some(*u)));
    out.sort_unstable();
    out.dedup();
    Ok(out)
}
