//! When access starts and ends: the schedule a request asks for, checked against its policy's
//! expiration, and the window an assignment ends up with.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::enums::ExpirationPatternType;
use crate::policy::ExpirationPattern;
use crate::time::format_datetime;

/// Graph's `entitlementManagementSchedule` as a request carries it (recurrence is for reviews
/// and ignored here).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Schedule {
    #[serde(with = "crate::time::serde_opt_ts")]
    pub start_date_time: Option<Timestamp>,
    pub expiration: Option<ExpirationPattern>,
}

impl Schedule {
    pub fn is_empty(&self) -> bool {
        self.start_date_time.is_none() && self.expiration.as_ref().is_none_or(|e| *e == ExpirationPattern::default())
    }
}

/// The period an assignment is active: from `start`, until `end` when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Option<Timestamp>,
}

impl Window {
    /// The window as Graph's schedule: a start and either an end date or no expiration.
    pub fn to_schedule(self) -> Schedule {
        Schedule {
            start_date_time: Some(self.start),
            expiration: Some(match self.end {
                Some(end) => ExpirationPattern {
                    kind: Some(ExpirationPatternType::AfterDateTime),
                    duration: None,
                    end_date_time: Some(end),
                },
                None => ExpirationPattern {
                    kind: Some(ExpirationPatternType::NoExpiration),
                    duration: None,
                    end_date_time: None,
                },
            }),
        }
    }
}

/// The latest end a policy's expiration allows for access starting at `start`; `None` when it
/// never expires.
pub fn policy_end(expiration: Option<&ExpirationPattern>, start: Timestamp) -> Option<Timestamp> {
    let e = expiration?;
    match (e.duration, e.end_date_time) {
        (Some(d), _) => Some(start.saturating_add(d.as_signed()).unwrap_or(Timestamp::MAX)),
        (None, Some(end)) => Some(end),
        (None, None) => None,
    }
}

/// The window for new access: the requested schedule where the policy allows a custom one,
/// else from `now` for as long as the policy allows. A requested start in the past starts now.
/// Fails when a schedule is asked for but not allowed, when the end is not after the start,
/// or when the end lies beyond what the policy allows.
pub fn window_for_add(
    policy_expiration: Option<&ExpirationPattern>,
    requested: Option<&Schedule>,
    custom_allowed: bool,
    now: Timestamp,
) -> Result<Window, DomainError> {
    let requested = requested.filter(|s| !s.is_empty());
    if requested.is_some() && !custom_allowed {
        return Err(DomainError::invalid(
            "The policy does not allow a custom schedule (requestorSettings.allowCustomAssignmentSchedule is false); omit schedule.",
        ));
    }
    let start = requested.and_then(|s| s.start_date_time).map_or(now, |s| s.max(now));
    let end = bounded_end(policy_expiration, requested, start)?;
    check_order(start, end)?;
    Ok(Window { start, end })
}

/// The window after an extension: the same start, the requested end (or the policy's full
/// length counted from now), never past a policy's fixed end date.
pub fn window_for_extension(
    current: Window,
    policy_expiration: Option<&ExpirationPattern>,
    requested: Option<&Schedule>,
    custom_allowed: bool,
    now: Timestamp,
) -> Result<Window, DomainError> {
    let requested = requested.filter(|s| !s.is_empty());
    if requested.is_some() && !custom_allowed {
        return Err(DomainError::invalid(
            "The policy does not allow a custom schedule (requestorSettings.allowCustomAssignmentSchedule is false); omit schedule.",
        ));
    }
    let end = bounded_end(policy_expiration, requested, now.max(current.start))?;
    if let (Some(new), Some(old)) = (end, current.end)
        && new <= old
    {
        return Err(DomainError::invalid(format!(
            "An extension must move the end later than the current end {}.",
            format_datetime(old)
        )));
    }
    check_order(now, end)?;
    Ok(Window { start: current.start, end })
}

/// The end for access counted from `from`: the one asked for, else the policy's; an asked end
/// beyond the policy's is refused.
fn bounded_end(
    policy_expiration: Option<&ExpirationPattern>,
    requested: Option<&Schedule>,
    from: Timestamp,
) -> Result<Option<Timestamp>, DomainError> {
    let limit = policy_end(policy_expiration, from);
    let asked = requested.and_then(|s| s.expiration.as_ref()).map(|e| requested_end(e, from)).transpose()?.flatten();
    match (asked, limit) {
        (Some(a), Some(l)) if a > l => Err(DomainError::invalid(format!(
            "The requested end {} is later than the policy allows ({}).",
            format_datetime(a),
            format_datetime(l)
        ))),
        (Some(a), _) => Ok(Some(a)),
        (None, l) => Ok(l),
    }
}

fn requested_end(e: &ExpirationPattern, start: Timestamp) -> Result<Option<Timestamp>, DomainError> {
    match (e.kind, e.duration, e.end_date_time) {
        (Some(ExpirationPatternType::NoExpiration), None, None) => Ok(None),
        (_, Some(d), None) => {
            if d.as_signed() <= SignedDuration::ZERO {
                return Err(DomainError::invalid("schedule.expiration.duration must be positive."));
            }
            Ok(Some(start.saturating_add(d.as_signed()).unwrap_or(Timestamp::MAX)))
        }
        (_, None, Some(end)) => Ok(Some(end)),
        (_, None, None) => Ok(None),
        (_, Some(_), Some(_)) => {
            Err(DomainError::invalid("schedule.expiration takes either a duration or an endDateTime, not both."))
        }
    }
}

fn check_order(start: Timestamp, end: Option<Timestamp>) -> Result<(), DomainError> {
    match end {
        Some(end) if end <= start => Err(DomainError::invalid(format!(
            "The schedule ends ({}) before it starts ({}).",
            format_datetime(end),
            format_datetime(start)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::GraphDuration;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }
    fn days(n: i64) -> ExpirationPattern {
        ExpirationPattern {
            kind: Some(ExpirationPatternType::AfterDuration),
            duration: Some(GraphDuration::from_secs(n * 86_400)),
            end_date_time: None,
        }
    }
    fn until(s: &str) -> ExpirationPattern {
        ExpirationPattern {
            kind: Some(ExpirationPatternType::AfterDateTime),
            duration: None,
            end_date_time: Some(t(s)),
        }
    }

    #[test]
    fn without_a_schedule_access_runs_for_the_policy_length() {
        let now = t("2030-01-01T00:00:00Z");
        let w = window_for_add(Some(&days(30)), None, false, now).unwrap();
        assert_eq!(w, Window { start: now, end: Some(t("2030-01-31T00:00:00Z")) });
        let w = window_for_add(None, None, false, now).unwrap();
        assert_eq!(w.end, None);
    }

    #[test]
    fn a_custom_schedule_needs_permission_and_stays_inside_the_policy() {
        let now = t("2030-01-01T00:00:00Z");
        let asked = Schedule {
            start_date_time: Some(t("2030-01-10T00:00:00Z")),
            expiration: Some(ExpirationPattern {
                end_date_time: Some(t("2030-01-20T00:00:00Z")),
                ..Default::default()
            }),
        };
        assert!(window_for_add(Some(&days(30)), Some(&asked), false, now).is_err());
        let w = window_for_add(Some(&days(30)), Some(&asked), true, now).unwrap();
        assert_eq!(w, Window { start: t("2030-01-10T00:00:00Z"), end: Some(t("2030-01-20T00:00:00Z")) });
        let too_long = Schedule {
            expiration: Some(ExpirationPattern {
                end_date_time: Some(t("2030-03-01T00:00:00Z")),
                ..Default::default()
            }),
            ..asked.clone()
        };
        let e = window_for_add(Some(&days(30)), Some(&too_long), true, now).unwrap_err();
        assert!(e.to_string().contains("later than the policy allows"), "{e}");
        let backwards = Schedule {
            expiration: Some(ExpirationPattern {
                end_date_time: Some(t("2030-01-05T00:00:00Z")),
                ..Default::default()
            }),
            ..asked
        };
        assert!(window_for_add(None, Some(&backwards), true, now).is_err());
    }

    #[test]
    fn an_extension_never_passes_a_fixed_end_date() {
        let now = t("2030-01-25T00:00:00Z");
        let current = Window { start: t("2030-01-01T00:00:00Z"), end: Some(t("2030-01-31T00:00:00Z")) };
        let w = window_for_extension(current, Some(&days(30)), None, false, now).unwrap();
        assert_eq!(w.end, Some(t("2030-02-24T00:00:00Z")));
        let fixed = until("2030-02-10T00:00:00Z");
        let w = window_for_extension(current, Some(&fixed), None, false, now).unwrap();
        assert_eq!(w.end, Some(t("2030-02-10T00:00:00Z")));
        let asked = Schedule {
            expiration: Some(ExpirationPattern {
                end_date_time: Some(t("2030-03-01T00:00:00Z")),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(window_for_extension(current, Some(&fixed), Some(&asked), true, now).is_err());
        let past = until("2030-01-20T00:00:00Z");
        assert!(window_for_extension(current, Some(&past), None, false, now).is_err());
    }
}
