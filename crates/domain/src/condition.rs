//! Conditional requirements of a policy (the seeds' "Conditional Access"): what a sign-in must
//! show, at request time and separately at approval time — multi-factor authentication, a
//! sign-in no older than some minutes, a source address inside given networks, a compliant
//! device — and the check of a sign-in's facts against them, naming each unmet condition with
//! how to meet it.

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The requirements of a policy: Steward's addition to Graph's policy, under
/// `conditionalRequirements` (Graph clients keep it as an unknown property).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionalRequirements {
    /// What the requestor's sign-in must show when they submit a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_request: Option<Requirements>,
    /// What an approver's sign-in must show when they record a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_approval: Option<Requirements>,
}

/// One set of requirements; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Requirements {
    /// The sign-in used multi-factor authentication (`amr` contains `mfa`, or an `acr` naming it).
    pub multi_factor_authentication: bool,
    /// The user signed in (authenticated, `auth_time`) no more than this many minutes ago.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sign_in_age_minutes: Option<u32>,
    /// The caller's address is inside one of these networks (CIDR, IPv4 or IPv6); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_networks: Vec<String>,
    /// The sign-in says the device is compliant (from the configured claim).
    pub compliant_device: bool,
}

/// The longest sign-in age a policy may ask for: 30 days.
pub const MAX_SIGN_IN_AGE_MINUTES: u32 = 30 * 24 * 60;

impl ConditionalRequirements {
    pub fn check(&self) -> Result<(), DomainError> {
        for (when, r) in [("onRequest", &self.on_request), ("onApproval", &self.on_approval)] {
            if let Some(r) = r {
                r.check().map_err(|e| DomainError::invalid(format!("conditionalRequirements.{when}: {e}")))?;
            }
        }
        Ok(())
    }
}

impl Requirements {
    pub fn check(&self) -> Result<(), DomainError> {
        if let Some(m) = self.max_sign_in_age_minutes
            && !(1..=MAX_SIGN_IN_AGE_MINUTES).contains(&m)
        {
            return Err(DomainError::invalid(format!(
                "maxSignInAgeMinutes must be between 1 and {MAX_SIGN_IN_AGE_MINUTES}."
            )));
        }
        if self.allowed_networks.len() > 100 {
            return Err(DomainError::invalid("allowedNetworks takes at most 100 networks."));
        }
        for n in &self.allowed_networks {
            n.trim().parse::<IpNet>().map_err(|_| {
                DomainError::invalid(format!(
                    "allowedNetworks: '{}' is not a network in CIDR notation (such as 203.0.113.0/24 or 2001:db8::/32).",
                    crate::text::clip(n, 60)
                ))
            })?;
        }
        Ok(())
    }

    fn networks(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.allowed_networks.iter().filter_map(|n| n.trim().parse().ok())
    }

    /// The conditions a sign-in with `facts` does not meet at `now`, in a fixed order.
    pub fn unmet(&self, facts: &Presented<'_>, now: Timestamp) -> Vec<Unmet> {
        let mut out = Vec::new();
        if self.multi_factor_authentication && !facts.multi_factor() {
            out.push(Unmet::MultiFactorAuthentication);
        }
        if let Some(max) = self.max_sign_in_age_minutes {
            let fresh = facts.auth_time.is_some_and(|t| {
                let age = now.duration_since(t);
                age.as_secs() <= i64::from(max) * 60
            });
            if !fresh {
                out.push(Unmet::SignInAge { max_minutes: max });
            }
        }
        if !self.allowed_networks.is_empty() {
            let inside = facts.source.is_some_and(|ip| {
                let ip = canonical(ip);
                self.networks().any(|n| n.contains(&ip))
            });
            if !inside {
                out.push(Unmet::Network);
            }
        }
        if self.compliant_device && facts.device_compliant != Some(true) {
            out.push(Unmet::CompliantDevice);
        }
        out
    }
}

/// An IPv4 address written as IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener
/// reports it) compares as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What a caller's sign-in shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    pub auth_time: Option<Timestamp>,
    pub device_compliant: Option<bool>,
    pub source: Option<IpAddr>,
}

impl Presented<'_> {
    /// `amr` contains `mfa`, or the `acr` names multi-factor authentication (`mfa`, or a URI
    /// ending in `mfa` or `multi-factor`).
    pub fn multi_factor(&self) -> bool {
        self.amr.iter().any(|m| m.eq_ignore_ascii_case("mfa"))
            || self.acr.is_some_and(|a| {
                let a = a.to_ascii_lowercase();
                a == "mfa" || a.ends_with(":mfa") || a.ends_with("/mfa") || a.ends_with("multi-factor")
            })
    }
}

/// A condition a sign-in does not meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmet {
    MultiFactorAuthentication,
    SignInAge { max_minutes: u32 },
    Network,
    CompliantDevice,
}

impl Unmet {
    /// The condition's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::MultiFactorAuthentication => "multiFactorAuthentication",
            Self::SignInAge { .. } => "maxSignInAgeMinutes",
            Self::Network => "allowedNetworks",
            Self::CompliantDevice => "compliantDevice",
        }
    }

    /// What is missing and how to meet it, in plain words.
    pub fn describe(self) -> String {
        match self {
            Self::MultiFactorAuthentication => {
                "multi-factor authentication: sign in again with multi-factor authentication (acr_values=mfa)".into()
            }
            Self::SignInAge { max_minutes } => format!(
                "a sign-in no older than {max_minutes} minutes: sign in again (max_age={})",
                u64::from(max_minutes) * 60
            ),
            Self::Network => "a connection from an allowed network: connect from the corporate network or VPN".into(),
            Self::CompliantDevice => "a compliant device: sign in from a managed, compliant device".into(),
        }
    }
}

/// What a sign-in needs to meet `unmet` again: the `acr_values` and `max_age` to ask the
/// provider for (network and device conditions cannot be met by signing in again).
pub fn step_up(unmet: &[Unmet]) -> (Option<&'static str>, Option<u64>) {
    let acr = unmet.contains(&Unmet::MultiFactorAuthentication).then_some("mfa");
    let max_age = unmet.iter().find_map(|u| match u {
        Unmet::SignInAge { .. } => Some(0),
        _ => None,
    });
    (acr, max_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn each_condition_is_checked_and_named() {
        let r = Requirements {
            multi_factor_authentication: true,
            max_sign_in_age_minutes: Some(10),
            allowed_networks: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            compliant_device: true,
        };
        r.check().unwrap();
        let now = at("2026-12-02T12:00:00Z");
        let pwd = vec!["pwd".to_owned()];
        let mfa = vec!["pwd".to_owned(), "mfa".to_owned()];
        let nothing = Presented { amr: &pwd, ..Presented::default() };
        assert_eq!(
            r.unmet(&nothing, now),
            [
                Unmet::MultiFactorAuthentication,
                Unmet::SignInAge { max_minutes: 10 },
                Unmet::Network,
                Unmet::CompliantDevice
            ]
        );
        let all = Presented {
            amr: &mfa,
            acr: None,
            auth_time: Some(at("2026-12-02T11:55:00Z")),
            device_compliant: Some(true),
            source: Some("10.1.2.3".parse().unwrap()),
        };
        assert!(r.unmet(&all, now).is_empty());
        let stale = Presented { auth_time: Some(at("2026-12-02T11:49:59Z")), ..all };
        assert_eq!(r.unmet(&stale, now), [Unmet::SignInAge { max_minutes: 10 }]);
        let outside = Presented { source: Some("192.0.2.1".parse().unwrap()), ..all };
        assert_eq!(r.unmet(&outside, now), [Unmet::Network]);
        let mapped = Presented { source: Some("::ffff:10.9.9.9".parse().unwrap()), ..all };
        assert!(r.unmet(&mapped, now).is_empty());
        let v6 = Presented { source: Some("2001:db8::1".parse().unwrap()), ..all };
        assert!(r.unmet(&v6, now).is_empty());
        let acr = Presented { amr: &pwd, acr: Some("urn:contoso:mfa"), ..all };
        assert!(r.unmet(&acr, now).is_empty());
        assert_eq!(step_up(&r.unmet(&nothing, now)), (Some("mfa"), Some(0)));
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            Requirements { max_sign_in_age_minutes: Some(0), ..Requirements::default() },
            Requirements { allowed_networks: vec!["10.0.0.0/33".into()], ..Requirements::default() },
            Requirements { allowed_networks: vec!["intranet".into()], ..Requirements::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        let json = serde_json::json!({"onRequest": {"multiFactorAuthentication": true, "typo": 1}});
        assert!(serde_json::from_value::<ConditionalRequirements>(json).is_err());
    }
}
