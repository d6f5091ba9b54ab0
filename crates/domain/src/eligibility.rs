//! Who may be assigned through a policy and who may ask: the policy's target scope and
//! subject sets checked against one user, with the reason in plain words, and which of several
//! policies is the most specific (reference §5). External users are placed by their connected
//! organization (`Facts::organization`, which only a guest can have).

use crate::directory::User;
use crate::enums::{AllowedTargetScope, UserType};
use crate::ids::{ConnectedOrganizationId, GroupId, UserId};
use crate::policy::{PolicySettings, SubjectSet};
use crate::rule::MembershipRule;

/// What is known about the user being checked beyond their own attributes.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub user: &'a User,
    /// The groups the user is a direct member of.
    pub groups: &'a [GroupId],
    /// The connected organization the domain of the user's email belongs to
    /// (`connected::external_domain`), if any. Only counted for guests: a member of the
    /// directory belongs to no connected organization, whatever is given here.
    pub organization: Option<Membership>,
}

impl<'a> Facts<'a> {
    /// Facts about a user who belongs to no connected organization.
    pub fn new(user: &'a User, groups: &'a [GroupId]) -> Self {
        Self { user, groups, organization: None }
    }

    /// The user's connected organization, for a guest.
    pub fn organization(&self) -> Option<Membership> {
        self.organization.filter(|_| self.user.user_type == UserType::Guest)
    }
}

/// A user's connected organization, with whether it is `configured` (not only `proposed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub id: ConnectedOrganizationId,
    pub configured: bool,
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
        SubjectSet::ConnectedOrganizationMembers { connected_organization_id, description } => {
            let label = description.clone().or_else(|| connected_organization_id.clone()).unwrap_or_default();
            let named = connected_organization_id.as_deref().and_then(|o| o.parse::<ConnectedOrganizationId>().ok());
            match facts.organization() {
                Some(m) if Some(m.id) == named => {
                    Verdict::yes(format!("an external user of connected organization {label}"))
                }
                Some(_) => Verdict::no(format!("an external user of another connected organization than {label}")),
                None => Verdict::no(format!("not an external user of connected organization {label}")),
            }
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
        S::AllConfiguredConnectedOrganizationUsers => match facts.organization() {
            Some(m) if m.configured => {
                Verdict::yes("the policy allows the users of every configured connected organization")
            }
            Some(_) => {
                Verdict::no("the user's connected organization is only proposed; the policy allows configured ones")
            }
            None => Verdict::no("the policy allows users of connected organizations only"),
        },
        S::SpecificDirectoryServicePrincipals | S::AllDirectoryServicePrincipals => {
            Verdict::no("the policy is for service principals, not users")
        }
        S::UnknownFutureValue => Verdict::no("the policy's target scope is unknown"),
    }
}

/// Whether `target_allowed` can depend on the user's groups under this policy: only a policy
/// for specific users names subject sets, and only a subject set can name a group. Callers
/// may skip reading a user's groups when no policy they test needs them.
pub fn target_needs_groups(settings: &PolicySettings) -> bool {
    matches!(
        settings.allowed_target_scope,
        AllowedTargetScope::SpecificDirectoryUsers | AllowedTargetScope::SpecificConnectedOrganizationUsers
    )
}

/// Whether a policy lets its targets ask for themselves (`enableTargetsToSelfAddAccess`); a
/// policy without requestor settings does.
pub fn self_add_enabled(settings: &PolicySettings) -> bool {
    settings.requestor_settings.as_ref().is_none_or(|r| r.enable_targets_to_self_add_access)
}

/// Whether the user in `facts` may request the policy's package for themselves
/// (`filterByCurrentUser(on='allowedRequestor')`, `getApplicablePolicyRequirements`): the policy
/// has a target scope, lets its targets self-add, and admits this user as a target. The
/// reference that [`SelfRequestors`] and the store's index of it must agree with.
pub fn self_request_allowed(settings: &PolicySettings, facts: Facts<'_>) -> bool {
    settings.allowed_target_scope != AllowedTargetScope::NotSpecified
        && self_add_enabled(settings)
        && target_allowed(settings, facts).allowed
}

/// Who may request a policy's package for themselves, as facts a store can index: a kind that
/// depends only on the user's type, or the users, groups and rules the policy names. Disabled
/// accounts are never admitted, whatever the kind.
///
/// [`SelfRequestors::admits`] equals [`self_request_allowed`] for every user and group list
/// (a property test below holds them together), so a store can keep these facts next to the
/// policy and answer "which packages may this user request" with indexes, evaluating only the
/// rules in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfRequestors {
    /// Nobody: administrators assign (`notSpecified`), self-add is off, or the scope is for
    /// service principals or unknown.
    Nobody,
    /// Every enabled user (`allDirectoryUsers`).
    Everyone,
    /// Enabled users who are not guests (`allMemberUsers`).
    Members,
    /// Enabled guests (`allExternalUsers`).
    Guests,
    /// Enabled guests whose connected organization is configured
    /// (`allConfiguredConnectedOrganizationUsers`).
    ConfiguredOrganizations,
    /// Enabled users the policy names (`specificDirectoryUsers`,
    /// `specificConnectedOrganizationUsers`).
    Named(NamedRequestors),
}

/// The subject sets of a policy that can admit a user, reduced to what they compare: sorted and
/// without duplicates. Sets that never admit anyone (service principals, approver-only kinds, a
/// user id that is no user id, a group or organization id that is no GUID, a rule entry without
/// a rule) are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedRequestors {
    /// `singleUser`: the user ids named (compared ignoring ASCII case, so kept canonical).
    pub users: Vec<UserId>,
    /// `groupMembers`: direct members of these groups.
    pub groups: Vec<GroupId>,
    /// `attributeRuleMembers`: the rule texts as written (an invalid rule admits nobody).
    pub rules: Vec<String>,
    /// `connectedOrganizationMembers`: guests of these connected organizations.
    pub organizations: Vec<ConnectedOrganizationId>,
}

impl SelfRequestors {
    /// What the policy's settings say.
    pub fn of(settings: &PolicySettings) -> Self {
        use AllowedTargetScope as S;
        if !self_add_enabled(settings) {
            return Self::Nobody;
        }
        match settings.allowed_target_scope {
            S::AllDirectoryUsers => Self::Everyone,
            S::AllMemberUsers => Self::Members,
            S::AllExternalUsers => Self::Guests,
            S::AllConfiguredConnectedOrganizationUsers => Self::ConfiguredOrganizations,
            S::SpecificDirectoryUsers | S::SpecificConnectedOrganizationUsers => {
                let mut named = NamedRequestors::default();
                for set in &settings.specific_allowed_targets {
                    match set {
                        SubjectSet::SingleUser { user_id: Some(u), .. } => {
                            // `in_subject_set` compares with the user's id ignoring ASCII case;
                            // only the canonical spelling of an id can ever be equal.
                            let lower = u.to_ascii_lowercase();
                            if let Ok(id) = lower.parse::<UserId>()
                                && id.to_string() == lower
                            {
                                named.users.push(id);
                            }
                        }
                        SubjectSet::GroupMembers { group_id: Some(g), .. } => {
                            if let Ok(id) = g.parse::<GroupId>() {
                                named.groups.push(id);
                            }
                        }
                        SubjectSet::AttributeRuleMembers { membership_rule: Some(text), .. } => {
                            named.rules.push(text.clone());
                        }
                        SubjectSet::ConnectedOrganizationMembers { connected_organization_id: Some(o), .. } => {
                            if let Ok(id) = o.parse::<ConnectedOrganizationId>() {
                                named.organizations.push(id);
                            }
                        }
                        _ => {}
                    }
                }
                named.users.sort_unstable();
                named.users.dedup();
                named.groups.sort_unstable();
                named.groups.dedup();
                named.rules.sort_unstable();
                named.rules.dedup();
                named.organizations.sort_unstable();
                named.organizations.dedup();
                Self::Named(named)
            }
            S::NotSpecified
            | S::SpecificDirectoryServicePrincipals
            | S::AllDirectoryServicePrincipals
            | S::UnknownFutureValue => Self::Nobody,
        }
    }

    /// The kind as a store keeps it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Nobody => "nobody",
            Self::Everyone => "everyone",
            Self::Members => "members",
            Self::Guests => "guests",
            Self::ConfiguredOrganizations => "configuredOrganizations",
            Self::Named(_) => "named",
        }
    }

    /// The kind that admits every enabled user of this type besides `everyone`: `guests` for
    /// guests, `members` for everyone else.
    pub fn kind_for(user_type: UserType) -> &'static str {
        if user_type == UserType::Guest { "guests" } else { "members" }
    }

    /// Whether the user in `facts` is admitted; equal to [`self_request_allowed`] on the
    /// settings this was made of.
    pub fn admits(&self, facts: Facts<'_>) -> bool {
        if !facts.user.account_enabled {
            return false;
        }
        match self {
            Self::Nobody => false,
            Self::Everyone => true,
            Self::Members | Self::Guests => self.kind() == Self::kind_for(facts.user.user_type),
            Self::ConfiguredOrganizations => facts.organization().is_some_and(|m| m.configured),
            Self::Named(n) => {
                n.users.contains(&facts.user.id)
                    || n.groups.iter().any(|g| facts.groups.contains(g))
                    || n.rules.iter().any(|r| MembershipRule::parse(r).is_ok_and(|rule| rule.matches(facts.user)))
                    || facts.organization().is_some_and(|m| n.organizations.contains(&m.id))
            }
        }
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
        assert!(target_allowed(&s, Facts::new(&sales, &[])).allowed);
        assert!(!target_allowed(&s, Facts::new(&guest, &[])).allowed);
        s.allowed_target_scope = AllowedTargetScope::SpecificDirectoryUsers;
        s.specific_allowed_targets = vec![
            SubjectSet::GroupMembers { group_id: Some(g.to_string()), description: Some("Admins".into()) },
            SubjectSet::AttributeRuleMembers {
                membership_rule: Some("user.department -eq \"sales\" -and user.userType -eq \"Guest\"".into()),
                description: None,
            },
        ];
        assert!(!target_allowed(&s, Facts::new(&sales, &[])).allowed);
        assert!(target_allowed(&s, Facts::new(&sales, &[g])).allowed);
        let v = target_allowed(&s, Facts::new(&guest, &[]));
        assert!(v.allowed, "{v:?}");
        s.allowed_target_scope = AllowedTargetScope::NotSpecified;
        assert!(!target_allowed(&s, Facts::new(&sales, &[g])).allowed);
    }

    #[test]
    fn external_users_are_placed_by_their_connected_organization() {
        let member = user("Sales", false);
        let guest = user("Sales", true);
        let org = ConnectedOrganizationId::new();
        let other = ConnectedOrganizationId::new();
        let of = |u, m: Option<Membership>| Facts { user: u, groups: &[], organization: m };
        let configured = Some(Membership { id: org, configured: true });
        let proposed = Some(Membership { id: org, configured: false });
        let policy = |v: serde_json::Value| -> PolicySettings { serde_json::from_value(v).unwrap() };

        let all_external = policy(serde_json::json!({"allowedTargetScope": "allExternalUsers"}));
        assert!(target_allowed(&all_external, of(&guest, None)).allowed, "any guest");
        assert!(!target_allowed(&all_external, of(&member, configured)).allowed);

        let all_configured =
            policy(serde_json::json!({"allowedTargetScope": "allConfiguredConnectedOrganizationUsers"}));
        assert!(target_allowed(&all_configured, of(&guest, configured)).allowed);
        assert!(!target_allowed(&all_configured, of(&guest, proposed)).allowed, "a proposed organization");
        assert!(!target_allowed(&all_configured, of(&guest, None)).allowed, "a guest of no organization");
        assert!(!target_allowed(&all_configured, of(&member, configured)).allowed, "a member is not external");

        let specific = policy(serde_json::json!({"allowedTargetScope": "specificConnectedOrganizationUsers",
            "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.connectedOrganizationMembers",
                "connectedOrganizationId": org.to_string().to_uppercase()}]}));
        assert!(target_allowed(&specific, of(&guest, configured)).allowed);
        assert!(target_allowed(&specific, of(&guest, proposed)).allowed, "named, so its state does not matter");
        let elsewhere = Some(Membership { id: other, configured: true });
        assert!(!target_allowed(&specific, of(&guest, elsewhere)).allowed);
        assert!(!target_allowed(&specific, of(&member, configured)).allowed);
        for (s, f) in [(&all_configured, of(&guest, configured)), (&specific, of(&guest, proposed))] {
            assert!(SelfRequestors::of(s).admits(f));
        }
    }

    /// A policy for which `target_needs_groups` says no decides the same whatever groups the
    /// user is in, for every scope.
    #[test]
    fn groups_matter_only_where_target_needs_groups_says_so() {
        let g = GroupId::new();
        for scope in [
            "notSpecified",
            "specificDirectoryUsers",
            "specificConnectedOrganizationUsers",
            "specificDirectoryServicePrincipals",
            "allMemberUsers",
            "allDirectoryUsers",
            "allDirectoryServicePrincipals",
            "allConfiguredConnectedOrganizationUsers",
            "allExternalUsers",
        ] {
            let s: PolicySettings = serde_json::from_value(serde_json::json!({
                "allowedTargetScope": scope,
                "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.groupMembers", "groupId": g.to_string()}]
            }))
            .unwrap();
            for u in [user("Sales", false), user("Sales", true)] {
                let without = target_allowed(&s, Facts::new(&u, &[])).allowed;
                let with = target_allowed(&s, Facts::new(&u, &[g])).allowed;
                assert!(target_needs_groups(&s) || without == with, "{scope}");
            }
        }
        let specific: PolicySettings =
            serde_json::from_value(serde_json::json!({"allowedTargetScope": "specificDirectoryUsers"})).unwrap();
        assert!(target_needs_groups(&specific));
    }

    /// `SelfRequestors` (what a store indexes) admits exactly whom `self_request_allowed` (the
    /// reference) admits: every scope, with and without requestor settings, subject sets of
    /// every kind, ids in odd spellings, valid and invalid rules, enabled and disabled members
    /// and guests in and out of the groups named.
    #[test]
    fn self_requestors_agree_with_the_reference() {
        use crate::policy::RequestorSettings;
        use proptest::prelude::*;
        use proptest::sample::select;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

        let me = user("Sales", false);
        let me_id = me.id;
        let g1 = GroupId::new();
        let g2 = GroupId::new();
        let other = UserId::new();
        let user_ids = vec![
            me_id.to_string(),
            me_id.to_string().to_uppercase(),
            format!("{{{me_id}}}"),
            me_id.as_uuid().simple().to_string(),
            format!(" {me_id}"),
            other.to_string(),
            "u-1".to_owned(),
        ];
        let group_ids = vec![
            g1.to_string(),
            g1.to_string().to_uppercase(),
            format!("{{{g2}}}"),
            g2.as_uuid().simple().to_string(),
            "g-1".to_owned(),
        ];
        let o1 = ConnectedOrganizationId::new();
        let o2 = ConnectedOrganizationId::new();
        let org_ids = vec![
            o1.to_string(),
            o1.to_string().to_uppercase(),
            format!("{{{o2}}}"),
            o2.as_uuid().simple().to_string(),
            ConnectedOrganizationId::new().to_string(),
            "org-1".to_owned(),
        ];
        let rules = vec![
            "user.department -eq \"sales\"".to_owned(),
            "user.userType -eq \"Guest\"".to_owned(),
            "user.department -ne \"Sales\" -or user.accountEnabled -eq false".to_owned(),
            "user.department -eq".to_owned(),
            "user.city -match \"(\"".to_owned(),
        ];
        let set = prop_oneof![
            proptest::option::of(select(user_ids))
                .prop_map(|user_id| SubjectSet::SingleUser { user_id, description: None }),
            proptest::option::of(select(group_ids))
                .prop_map(|group_id| SubjectSet::GroupMembers { group_id, description: None }),
            proptest::option::of(select(rules))
                .prop_map(|membership_rule| SubjectSet::AttributeRuleMembers { membership_rule, description: None }),
            Just(SubjectSet::RequestorManager { manager_level: Some(1) }),
            proptest::option::of(select(org_ids)).prop_map(|connected_organization_id| {
                SubjectSet::ConnectedOrganizationMembers { connected_organization_id, description: None }
            }),
            Just(SubjectSet::SingleServicePrincipal { service_principal_id: None, description: None }),
        ];
        let requestor = proptest::option::of(any::<bool>()).prop_map(|o| {
            o.map(|self_add| RequestorSettings { enable_targets_to_self_add_access: self_add, ..Default::default() })
        });
        let settings = (select(AllowedTargetScope::ALL), proptest::collection::vec(set, 0..4), requestor);
        let organization = proptest::option::of((select(vec![o1, o2, ConnectedOrganizationId::new()]), any::<bool>()))
            .prop_map(|o| o.map(|(id, configured)| Membership { id, configured }));
        let facts =
            (any::<bool>(), any::<bool>(), any::<bool>(), select(vec!["Sales", "Finance"]), 0..4usize, organization);
        let config = Config { cases: 4000, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        runner
            .run(&(settings, facts), |((scope, targets, requestor), (guest, enabled, itself, dept, groups, org))| {
                let mut s: PolicySettings = serde_json::from_value(serde_json::json!({})).unwrap();
                s.allowed_target_scope = scope;
                s.specific_allowed_targets = targets;
                s.requestor_settings = requestor;
                let mut u = user(dept, guest);
                u.account_enabled = enabled;
                if itself {
                    u.id = me_id;
                }
                let groups: Vec<GroupId> = [g1, g2, GroupId::new()].into_iter().take(groups).collect();
                let facts = Facts { user: &u, groups: &groups, organization: org };
                let want = self_request_allowed(&s, facts);
                let got = SelfRequestors::of(&s).admits(facts);
                prop_assert_eq!(got, want, "{:?} for {:?} in {:?}", s, u, groups);
                Ok(())
            })
            .unwrap();
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
