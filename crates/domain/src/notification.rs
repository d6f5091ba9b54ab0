//! Notification kinds (the mails Steward sends, with their camelCase names) and the switches
//! that turn them off: a policy's `notificationSettings` (Graph's
//! `isAssignmentNotificationDisabled`, Steward's `disabledNotifications`), parsed and checked
//! here so a policy naming an unknown kind is refused when written.

use serde_json::Value;

use crate::DomainError;

/// Who a kind of mail goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The approvers of a request's stage.
    Approvers,
    /// The person the access is for, and whoever asked on their behalf.
    Requestors,
    /// The reviewers of an access review.
    Reviewers,
    /// Users holding the Administrator role.
    Administrators,
}

macro_rules! kinds {
    ($($variant:ident = $name:literal, $audience:ident;)*) => {
        /// Every kind of notification mail.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum NotificationKind {
            $($variant,)*
        }

        impl NotificationKind {
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The camelCase name used in `disabledNotifications` and in configuration.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            pub const fn audience(self) -> Audience {
                match self {
                    $(Self::$variant => Audience::$audience,)*
                }
            }
        }
    };
}

kinds! {
    ActionRequired = "actionRequired", Approvers;
    ApprovalReminder = "approvalReminder", Approvers;
    Escalated = "escalated", Approvers;
    RequestCancelled = "requestCancelled", Approvers;
    RequestSubmitted = "requestSubmitted", Requestors;
    StageApproved = "stageApproved", Requestors;
    RequestApproved = "requestApproved", Requestors;
    RequestDenied = "requestDenied", Requestors;
    AccessDelivered = "accessDelivered", Requestors;
    DeliveryFailed = "deliveryFailed", Requestors;
    RequestTimedOut = "requestTimedOut", Requestors;
    ScheduledStart = "scheduledStart", Requestors;
    ExpiryWarning = "expiryWarning", Requestors;
    AccessEnded = "accessEnded", Requestors;
    ReviewStarted = "reviewStarted", Reviewers;
    ReviewReminder = "reviewReminder", Reviewers;
    ReviewEnding = "reviewEnding", Reviewers;
    AdminDigest = "adminDigest", Administrators;
}

impl NotificationKind {
    /// The kind with this name (exactly as `as_str` writes it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// A list of names, each checked; the error names the first unknown one and the known ones.
    pub fn parse_list<'a>(names: impl IntoIterator<Item = &'a str>, what: &str) -> Result<Vec<Self>, DomainError> {
        let mut out = Vec::new();
        for n in names {
            let k = Self::parse(n).ok_or_else(|| {
                DomainError::invalid(format!("{what}: '{n}' is not a notification kind; the kinds are {}.", known()))
            })?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }
}

impl std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn known() -> String {
    NotificationKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

/// What a policy's `notificationSettings` turn off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySwitches {
    /// Graph's `isAssignmentNotificationDisabled`: no mail to the requestors of this policy's
    /// requests and assignments.
    pub requestor_mail_disabled: bool,
    /// Steward's `disabledNotifications`: these kinds are not sent for this policy.
    pub disabled: Vec<NotificationKind>,
}

impl PolicySwitches {
    /// Reads `notificationSettings` as stored; `None` or `null` turn nothing off. Other
    /// properties are left alone (Graph may add some); the two read here must have their type.
    pub fn parse(settings: Option<&Value>) -> Result<Self, DomainError> {
        let body = match settings {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(o)) => o,
            Some(_) => return Err(DomainError::invalid("notificationSettings must be an object.")),
        };
        let requestor_mail_disabled = match body.get("isAssignmentNotificationDisabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(DomainError::invalid(
                    "notificationSettings.isAssignmentNotificationDisabled must be true or false.",
                ));
            }
        };
        let disabled = match body.get("disabledNotifications") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let names = items
                    .iter()
                    .map(|v| {
                        v.as_str().ok_or_else(|| {
                            DomainError::invalid(
                                "notificationSettings.disabledNotifications must be a list of notification kind names.",
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                NotificationKind::parse_list(names, "notificationSettings.disabledNotifications")?
            }
            Some(_) => {
                return Err(DomainError::invalid(
                    "notificationSettings.disabledNotifications must be a list of notification kind names.",
                ));
            }
        };
        Ok(Self { requestor_mail_disabled, disabled })
    }

    /// Whether this policy lets mail of `kind` go out.
    pub fn allows(&self, kind: NotificationKind) -> bool {
        !(self.disabled.contains(&kind) || (self.requestor_mail_disabled && kind.audience() == Audience::Requestors))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for k in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(k.as_str()), Some(*k));
        }
        let mut names: Vec<_> = NotificationKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NotificationKind::ALL.len());
        assert_eq!(NotificationKind::parse("ExpiryWarning"), None, "exactly as written");
    }

    #[test]
    fn policy_switches_turn_off_requestor_mail_or_single_kinds() {
        let s = PolicySwitches::parse(Some(&json!({"isAssignmentNotificationDisabled": true}))).unwrap();
        assert!(!s.allows(NotificationKind::AccessDelivered));
        assert!(!s.allows(NotificationKind::ExpiryWarning));
        assert!(s.allows(NotificationKind::ActionRequired), "approvers still hear");
        let s =
            PolicySwitches::parse(Some(&json!({"disabledNotifications": ["accessEnded", "expiryWarning"]}))).unwrap();
        assert!(!s.allows(NotificationKind::AccessEnded) && !s.allows(NotificationKind::ExpiryWarning));
        assert!(s.allows(NotificationKind::AccessDelivered));
        assert_eq!(PolicySwitches::parse(None).unwrap(), PolicySwitches::default());
        assert_eq!(PolicySwitches::parse(Some(&json!({"other": 1}))).unwrap(), PolicySwitches::default());
    }

    #[test]
    fn an_unknown_kind_is_refused_by_name() {
        let e = PolicySwitches::parse(Some(&json!({"disabledNotifications": ["accessEnded", "teaTime"]})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'teaTime'") && e.contains("expiryWarning"), "{e}");
        for bad in [
            json!("off"),
            json!({"isAssignmentNotificationDisabled": "yes"}),
            json!({"disabledNotifications": "accessEnded"}),
            json!({"disabledNotifications": [1]}),
        ] {
            assert!(PolicySwitches::parse(Some(&bad)).is_err(), "{bad}");
        }
    }
}
