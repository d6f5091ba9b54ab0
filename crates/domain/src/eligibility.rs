//! Who may be assigned through a policy and who may ask: the policy's target scope and
//! subject sets checked against one user, with the reason in plain words, and which of several
//! policies is the most specific (reference §5).

use crate::directory::User;
use crate::enums::{AllowedTargetScope, UserType};
use crate::ids::{GroupId, UserId};
use crate::policy::{PolicySettings, SubjectSet};
use crate::rule::MembershipRule;

/// What is known about the user being checked beyond their own attributes.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub user: &'a User,
    /// The groups the user is a direct member of.
    pub groups: &'a [GroupId],
}

/// A yes or no with its reason in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reason: String,
}

impl Verdict {
    fn yes(reason: impl Into<String>) -> Self {
        Self { allowed: true, reason: reason.into() }
    }
    fn no(reason: impl Into<String>) -> Self {
        Self { allowed: false, reason: reason.into() }
    }
}

/// Whether `set` contains the user in `facts` (as a possible target or requestor).
/// `requestorManager`, sponsors and other relative sets name approvers, not targets: they
/// never match here.
pub fn in_subject_set(set: &SubjectSet, facts: Facts<'_>) -> Verdict {
    let me = facts.user.id.to_string();
    match set {
        SubjectSet::SingleUser { user_id, .. } => {
            if user_id.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(&me)) {
                Verdict::yes("named as a single user")
            } else {
                Verdict::no("not the user the policy names")
            }
        }
        SubjectSet::GroupMembers { group_id, description } => {
            let label = description.clone().or_else(|| group_id.clone()).unwrap_or_default();
            let hit =
                group_id.as_deref().and_then(|g| g.parse::<GroupId>().ok()).is_some_and(|g| facts.groups.contains(&g));
            if hit {
                Verdict::yes(format!("a member of group {label}"))
            } else {
                Verdict::no(format!("not a member of group {label}"))
            }
        }
        SubjectSet::AttributeRuleMembers { membership_rule: Some(text), .. } => match MembershipRule::parse(text) {
            Ok(rule) if rule.matches(facts.user) => Verdict::yes(format!("matches the rule {text}")),
            Ok(_) => Verdict::no(format!("does not match the rule {text}")),
            Err(e) => Verdict::no(format!("the rule {text} is invalid: {e}")),
        },
        SubjectSet::ConnectedOrganizationMembers { .. } => {
            Verdict::no("connected organizations are not configured in this Steward")
        }
        _ => Verdict::no("this kind of subject set names approvers, not requestors"),
    }
}

/// Whether the policy lets the user be a target, and why.
pub fn target_allowed(settings: &PolicySettings, facts: Facts<'_>) -> Verdict {
    use AllowedTargetScope as S;
    let guest = facts.user.user_type == UserType::Guest;
    if !facts.user.account_enabled {
        return Verdict::no("the account is disabled");
    }
    match settings.allowed_target_scope {
        S::NotSpecified => {
            Verdict::no("the policy allows only administrators to assign (allowedTargetScope notSpecified)")
        }
        S::AllDirectoryUsers => Verdict::yes("the policy allows all directory users"),
        S::AllMemberUsers if !guest => Verdict::yes("the policy allows all member users"),
        S::AllMemberUsers => Verdict::no("the policy allows member users only and this user is a guest"),
        S::AllExternalUsers if guest => Verdict::yes("the policy allows external (guest) users"),
        S::AllExternalUsers => Verdict::no("the policy allows external (guest) users only"),
        S::SpecificDirectoryUsers | S::SpecificConnectedOrganizationUsers => {
            let mut reasons = Vec::new();
            for set in &settings.specific_allowed_targets {
                let v = in_subject_set(set, facts);
                if v.allowed {
                    return v;
                }
                reasons.push(v.reason);
            }
            Verdict::no(if reasons.is_empty() { "the policy names nobody".to_owned() } else { reasons.join("; ") })
        }
        S::AllConfiguredConnectedOrganizationUsers => {
            Verdict::no("connected organizations are not configured in this Steward")
        }
        S::SpecificDirectoryServicePrincipals | S::AllDirectoryServicePrincipals => {
            Verdict::no("the policy is for service principals, not users")
        }
        S::UnknownFutureValue => Verdict::no("the policy's target scope is unknown"),
    }
}

/// How specific a policy's target scope is: higher wins when several policies of a package
/// apply to one user (reference §5: specific users, groups or organizations first, then all
/// members, then all users including guests, then all external users).
pub fn specificity(scope: AllowedTargetScope) -> u8 {
    use AllowedTargetScope as S;
    match scope {
        S::SpecificDirectoryUsers | S::SpecificConnectedOrganizationUsers | S::SpecificDirectoryServicePrincipals => 4,
        S::AllMemberUsers => 3,
        S::AllDirectoryUsers | S::AllDirectoryServicePrincipals => 2,
        S::AllConfiguredConnectedOrganizationUsers | S::AllExternalUsers => 1,
        S::NotSpecified | S::UnknownFutureValue => 0,
    }
}

/// Whether `requestor` may ask on behalf of someone under this policy.
pub fn on_behalf_allowed(settings: &PolicySettings, requestor: Facts<'_>, target_manager: Option<UserId>) -> Verdict {
    let Some(r) = settings.requestor_settings.as_ref().filter(|r| r.enable_on_behalf_requestors_to_add_access) else {
        return Verdict::no("the policy does not allow requests on behalf of others");
    };
    for set in &r.on_behalf_requestors {
        let v = match set {
            SubjectSet::RequestorManager { .. } | SubjectSet::TargetManager { .. } => {
                if target_manager == Some(requestor.user.id) {
                    Verdict::yes("the target's manager")
                } else {
                    Verdict::no("not the target's manager")
                }
            }
            other => in_subject_set(other, requestor),
        };
        if v.allowed {
            return v;
        }
    }
    Verdict::no("not among the policy's on-behalf requestors")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn user(dept: &str, guest: bool) -> User {
        User {
            id: UserId::new(),
            display_name: crate::text::DisplayName::parse("U").unwrap(),
            user_principal_name: "u@contoso.com".into(),
            mail: None,
            user_type: if guest { UserType::Guest } else { UserType::Member },
            account_enabled: true,
            department: Some(dept.into()),
            job_title: None,
            company_name: None,
            employee_id: None,
            city: None,
            country: None,
            created_date_time: Timestamp::UNIX_EPOCH,
            manager: None,
        }
    }

    #[test]
    fn scopes_and_subject_sets_decide_who_may_be_a_target() {
        let sales = user("Sales", false);
        let guest = user("Sales", true);
        let g = GroupId::new();
        let mut s: PolicySettings =
            serde_json::from_value(serde_json::json!({"allowedTargetScope": "allMemberUsers"})).unwrap();
        assert!(target_allowed(&s, Facts { user: &sales, groups: &[] }).allowed);
        assert!(!target_allowed(&s, Facts { user: &guest, groups: &[] }).allowed);
        s.allowed_target_scope = AllowedTargetScope::SpecificDirectoryUsers;
        s.specific_allowed_targets = vec![
            SubjectSet::GroupMembers { group_id: Some(g.to_string()), description: Some("Admins".into()) },
            SubjectSet::AttributeRuleMembers {
                membership_rule: Some("user.department -eq \"sales\" -and user.userType -eq \"Guest\"".into()),
                description: None,
            },
        ];
        assert!(!target_allowed(&s, Facts { user: &sales, groups: &[] }).allowed);
        assert!(target_allowed(&s, Facts { user: &sales, groups: &[g] }).allowed);
        let v = target_allowed(&s, Facts { user: &guest, groups: &[] });
        assert!(v.allowed, "{v:?}");
        s.allowed_target_scope = AllowedTargetScope::NotSpecified;
        assert!(!target_allowed(&s, Facts { user: &sales, groups: &[g] }).allowed);
    }

    #[test]
    fn specific_policies_win() {
        assert!(
            specificity(AllowedTargetScope::SpecificDirectoryUsers) > specificity(AllowedTargetScope::AllMemberUsers)
        );
        assert!(specificity(AllowedTargetScope::AllMemberUsers) > specificity(AllowedTargetScope::AllDirectoryUsers));
        assert!(specificity(AllowedTargetScope::AllDirectoryUsers) > specificity(AllowedTargetScope::AllExternalUsers));
    }
}
