//! The conditional requirements of a policy, enforced: a requestor's sign-in when they submit,
//! an approver's when they decide. What the sign-in showed comes from the principal
//! (`SignInFacts`: the identity provider's token, and the address the web layer saw).

use jiff::Timestamp;
use steward_domain::condition::{Presented, Requirements, step_up};
use steward_domain::policy::AssignmentPolicy;

use crate::AppError;
use crate::identity::SignInFacts;

/// When the requirements are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Request,
    Approval,
}

fn requirements(p: &AssignmentPolicy, at: Moment) -> Option<&Requirements> {
    let c = p.settings.conditional_requirements.as_ref()?;
    match at {
        Moment::Request => c.on_request.as_ref(),
        Moment::Approval => c.on_approval.as_ref(),
    }
}

/// Refuses, naming every unmet condition and how to meet it, when the sign-in does not meet the
/// policy's requirements at that moment. A caller without sign-in facts (a personal API token)
/// has shown nothing: only requirements it cannot fail (none) pass.
pub fn require(
    policy: &AssignmentPolicy,
    at: Moment,
    facts: Option<&SignInFacts>,
    now: Timestamp,
) -> Result<(), AppError> {
    let Some(req) = requirements(policy, at) else { return Ok(()) };
    let presented = match facts {
        Some(f) => Presented {
            amr: &f.amr,
            acr: f.acr.as_deref(),
            auth_time: f.auth_time,
            device_compliant: f.device_compliant,
            source: f.source,
        },
        None => Presented::default(),
    };
    let unmet = req.unmet(&presented, now);
    if unmet.is_empty() {
        return Ok(());
    }
    let (acr_values, max_age) = step_up(&unmet);
    let what = match at {
        Moment::Request => "to request access",
        Moment::Approval => "to decide on this request",
    };
    let list: Vec<String> = unmet.iter().map(|u| u.describe()).collect();
    Err(AppError::ConditionsNotMet {
        message: format!("The policy '{}' requires, {what}: {}.", policy.display_name, list.join("; ")),
        unmet: unmet.iter().map(|u| u.name()).collect(),
        acr_values: acr_values.map(str::to_owned),
        max_age,
    })
}
