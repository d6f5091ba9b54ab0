//! Validated text values: display names, descriptions and the other bounded strings of the model.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

/// The longest display name Graph accepts on entitlement-management objects.
pub const DISPLAY_NAME_MAX: usize = 256;
/// The longest description Steward keeps.
pub const DESCRIPTION_MAX: usize = 4000;

/// A non-blank name of at most 256 characters, without control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
        let s: String = s.into();
        let len = s.chars().count();
        if s.trim().is_empty() {
            return Err(DomainError::invalid("displayName must not be empty."));
        }
        if len > DISPLAY_NAME_MAX {
            return Err(DomainError::invalid(format!(
                "displayName is {len} characters long; at most {DISPLAY_NAME_MAX} are allowed."
            )));
        }
        if s.chars().any(char::is_control) {
            return Err(DomainError::invalid("displayName must not contain control characters."));
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
impl Serialize for DisplayName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for DisplayName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Checks an optional free-text field against a length limit, naming the field in the error.
pub fn bounded(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, DomainError> {
    match value {
        Some(v) if v.chars().count() > max => Err(DomainError::invalid(format!(
            "{field} is {} characters long; at most {max} are allowed.",
            v.chars().count()
        ))),
        other => Ok(other),
    }
}

/// Shortens a string for an error message, so a hostile 1 MB value is not echoed back.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_limits() {
        assert!(DisplayName::parse("Sales").is_ok());
        assert!(DisplayName::parse("x".repeat(256)).is_ok());
        let e = DisplayName::parse("x".repeat(257)).unwrap_err().to_string();
        assert!(e.contains("257"), "{e}");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
        // characters, not bytes
        assert!(DisplayName::parse("é".repeat(256)).is_ok());
    }

    #[test]
    fn clip_shortens() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
