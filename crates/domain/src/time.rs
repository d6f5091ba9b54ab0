//! Date-times as Graph writes them: accepted with `Z`, an offset (`+00:00`, as Python's
//! `isoformat` sends) or none at all (taken as UTC), emitted in UTC with `Z`.

use jiff::Timestamp;

use crate::DomainError;

/// Parses a Graph `Edm.DateTimeOffset`.
pub fn parse_datetime(s: &str) -> Result<Timestamp, DomainError> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    // No offset: Python's naive datetimes. Graph treats them as UTC.
    if let Ok(dt) = t.parse::<jiff::civil::DateTime>()
        && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    Err(DomainError::invalid(format!(
        "'{}' is not a valid date-time; use ISO 8601 such as 2030-01-01T00:00:00Z.",
        crate::text::clip(s, 64)
    )))
}

/// Formats a timestamp the way Graph does: UTC, `Z`, fractional seconds only when present.
pub fn format_datetime(ts: Timestamp) -> String {
    ts.to_string()
}

/// Unix microseconds: how both stores keep timestamps, so ordering is numeric and exact.
pub fn to_micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

/// The inverse of [`to_micros`]; out-of-range values (never written by Steward) clamp.
pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(if us < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// The entity tag of an object last modified at `modified`: weak, from its microseconds.
pub fn etag(modified: Timestamp) -> String {
    format!("W/\"{}\"", to_micros(modified))
}

/// Whether an `If-Match` header value (`*`, or a comma-separated list of tags, weak or strong)
/// matches an object last modified at `modified`.
pub fn etag_matches(if_match: &str, modified: Timestamp) -> bool {
    let want = to_micros(modified).to_string();
    if_match.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).trim_matches('"') == want)
}

/// The modification time of a write that read the object at `read_at`: now, but always later
/// than `read_at`, so every write changes the entity tag even when the clock stands still.
pub fn next_modified(read_at: Timestamp, now: Timestamp) -> Timestamp {
    if now > read_at { now } else { read_at.checked_add(jiff::SignedDuration::from_micros(1)).unwrap_or(now) }
}

/// Serde helpers so entities serialize timestamps in Graph form.
pub mod serde_ts {
    use jiff::Timestamp;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::format_datetime(*ts))
    }
}

/// Serde for optional date-times in bodies: every form `parse_datetime` accepts comes in,
/// Graph's form goes out.
pub mod serde_opt_ts {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(t) => s.collect_str(&super::format_datetime(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::parse_datetime(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_form_the_sdk_and_docs_send() {
        let want: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        for s in [
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01T01:00:00+01:00",
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00.000000+00:00",
            "2030-01-01T00:00:00.0000000Z",
        ] {
            assert_eq!(parse_datetime(s).unwrap(), want, "{s}");
        }
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2030-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn emits_z() {
        let t = parse_datetime("2030-01-01T01:00:00+01:00").unwrap();
        assert_eq!(format_datetime(t), "2030-01-01T00:00:00Z");
        let t = parse_datetime("2030-01-01T00:00:00.5Z").unwrap();
        assert_eq!(format_datetime(t), "2030-01-01T00:00:00.5Z");
    }

    #[test]
    fn etags() {
        let t = parse_datetime("2030-01-01T00:00:00.000001Z").unwrap();
        let tag = etag(t);
        assert!(etag_matches(&tag, t));
        assert!(etag_matches("*", t));
        assert!(etag_matches(&format!("\"x\", {tag}"), t));
        assert!(!etag_matches("W/\"1\"", t));
        assert!(next_modified(t, t) > t);
        let later = parse_datetime("2031-01-01T00:00:00Z").unwrap();
        assert_eq!(next_modified(t, later), later);
    }

    #[test]
    fn micros_round_trip() {
        let t = parse_datetime("2030-01-01T00:00:00.123456Z").unwrap();
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
