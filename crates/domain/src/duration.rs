//! Durations (`Edm.Duration`) in every form clients send: ISO 8601 (`P30D`, `PT3H`,
//! `P1DT2H`, `PT0S`, `-P1D`) and Python's `str(timedelta)` that msgraph-sdk writes
//! (`30 days, 0:00:00`, `3:00:00`, `1 day, 0:00:01`, `0:00:00.500000`, `-1 day, 0:00:00`).
//! Emitted as ISO 8601 with days as the largest unit, the form Graph returns.

use std::fmt;

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

/// A signed duration with microsecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GraphDuration(SignedDuration);

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

impl GraphDuration {
    pub fn from_secs(s: i64) -> Self {
        Self(SignedDuration::from_secs(s))
    }
    pub fn as_signed(&self) -> SignedDuration {
        self.0
    }
    pub fn from_micros(us: i64) -> Self {
        Self(SignedDuration::from_micros(us))
    }
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        let parsed = if s.starts_with(['P', 'p']) || s.starts_with("-P") || s.starts_with("-p") || s.starts_with("+P") {
            parse_iso(s)
        } else {
            parse_timedelta(s)
        };
        parsed.map(|us| Self(SignedDuration::from_micros(us))).ok_or_else(|| {
            DomainError::invalid(format!(
                "'{}' is not a valid duration; use ISO 8601 such as P30D or PT3H (Python timedelta strings such as '30 days, 0:00:00' are accepted too).",
                crate::text::clip(input, 64)
            ))
        })
    }
}

/// ISO 8601 `[-]PnYnMnWnDTnHnMnS`. Years and months have no fixed length, so only weeks,
/// days, hours, minutes and seconds are accepted (Graph's durations never use Y or M).
fn parse_iso(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, s.get(1..)?),
        b'+' => (false, s.get(1..)?),
        _ => (false, s),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (rest.get(..i)?, Some(rest.get(i + 1..)?)),
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut any = false;
    for (num, unit) in components(date)? {
        let mult = match unit {
            'W' => 7 * SECS_PER_DAY,
            'D' => SECS_PER_DAY,
            _ => return None,
        };
        total = total.checked_add(scaled(num, mult)?)?;
        any = true;
    }
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        for (num, unit) in components(time)? {
            let mult = match unit {
                'H' => 3600,
                'M' => 60,
                'S' => 1,
                _ => return None,
            };
            total = total.checked_add(scaled(num, mult)?)?;
            any = true;
        }
    }
    any.then_some(if neg { -total } else { total })
}

/// Splits `1D` / `2H30M5.5S` into (number text, unit) pairs.
fn components(s: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            let num = s.get(start..i)?;
            if num.is_empty() {
                return None;
            }
            out.push((num, c.to_ascii_uppercase()));
            start = i + 1;
        } else if !(c.is_ascii_digit() || c == '.' || c == ',') {
            return None;
        }
    }
    (start == s.len()).then_some(out)
}

/// `num` (decimal text, fraction allowed) times `secs` seconds, in microseconds.
fn scaled(num: &str, secs: i64) -> Option<i64> {
    let num = num.replace(',', ".");
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num.as_str(), ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros = int.checked_mul(secs)?.checked_mul(MICROS_PER_SEC)?;
    if !frac.is_empty() {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // fraction of the unit, to microsecond precision
        let digits: String = frac.chars().take(12).collect();
        let scale = 10_i128.pow(u32::try_from(digits.len()).ok()?);
        let f: i128 = digits.parse().ok()?;
        let add = f * i128::from(secs) * i128::from(MICROS_PER_SEC) / scale;
        micros = micros.checked_add(i64::try_from(add).ok()?)?;
    }
    Some(micros)
}

/// Python's `str(timedelta)`: `[-]D day[s], H:MM:SS[.ffffff]` or `H:MM:SS[.ffffff]`.
/// Python normalises negatives as `-1 day, 23:59:59` (days negative, the clock part positive).
fn parse_timedelta(s: &str) -> Option<i64> {
    let (days, clock) = match s.split_once(',') {
        Some((d, c)) => {
            let d = d.trim();
            let num = d.strip_suffix("days").or_else(|| d.strip_suffix("day"))?.trim();
            (num.parse::<i64>().ok()?, c.trim())
        }
        None => (0, s),
    };
    let mut parts = clock.split(':');
    let h: i64 = parts.next()?.trim().parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec = parts.next()?;
    if parts.next().is_some() || !(0..60).contains(&m) || h < 0 {
        return None;
    }
    let sec_micros = scaled(sec, 1)?;
    if !(0..60 * MICROS_PER_SEC).contains(&sec_micros) {
        return None;
    }
    let clock_micros = (h * 3600 + m * 60) * MICROS_PER_SEC + sec_micros;
    days.checked_mul(SECS_PER_DAY * MICROS_PER_SEC)?.checked_add(clock_micros)
}

impl fmt::Display for GraphDuration {
    /// ISO 8601 with days as the largest unit: `P30D`, `PT3H`, `P1DT2H30M`, `PT0.5S`, `PT0S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_micros();
        if total == 0 {
            return f.write_str("PT0S");
        }
        if total < 0 {
            f.write_str("-")?;
        }
        let mut us = total.unsigned_abs();
        let per_day = u128::from((SECS_PER_DAY * MICROS_PER_SEC).unsigned_abs());
        let days = us / per_day;
        us %= per_day;
        let hours = us / 3_600_000_000;
        us %= 3_600_000_000;
        let minutes = us / 60_000_000;
        us %= 60_000_000;
        let secs = us / 1_000_000;
        let frac = us % 1_000_000;
        f.write_str("P")?;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if hours + minutes + secs + frac > 0 {
            f.write_str("T")?;
            if hours > 0 {
                write!(f, "{hours}H")?;
            }
            if minutes > 0 {
                write!(f, "{minutes}M")?;
            }
            if frac > 0 {
                let frac = format!("{frac:06}");
                write!(f, "{secs}.{}S", frac.trim_end_matches('0'))?;
            } else if secs > 0 {
                write!(f, "{secs}S")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for GraphDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for GraphDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GraphDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        GraphDuration::parse(s).unwrap().as_signed().as_secs()
    }

    #[test]
    fn iso_forms() {
        assert_eq!(secs("P30D"), 30 * 86_400);
        assert_eq!(secs("PT3H"), 3 * 3600);
        assert_eq!(secs("P1DT2H"), 86_400 + 7200);
        assert_eq!(secs("PT0S"), 0);
        assert_eq!(secs("P2W"), 14 * 86_400);
        assert_eq!(secs("-P1D"), -86_400);
        assert_eq!(secs("p1dt1m"), 86_460);
        assert_eq!(GraphDuration::parse("PT0.5S").unwrap().as_signed().as_millis(), 500);
    }

    #[test]
    fn python_timedelta_forms() {
        assert_eq!(secs("30 days, 0:00:00"), 30 * 86_400);
        assert_eq!(secs("3:00:00"), 3 * 3600);
        assert_eq!(secs("1 day, 0:00:01"), 86_401);
        assert_eq!(secs("-1 day, 0:00:00"), -86_400);
        assert_eq!(secs("-1 day, 23:59:59"), -1);
        assert_eq!(GraphDuration::parse("0:00:00.500000").unwrap().as_signed().as_millis(), 500);
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "P", "PT", "P1Y", "P1M", "30", "thirty days", "1:60:00", "P1DT", "1 week, 0:00:00", "PXD"] {
            assert!(GraphDuration::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn emits_iso() {
        for (input, out) in [
            ("30 days, 0:00:00", "P30D"),
            ("3:00:00", "PT3H"),
            ("P1DT2H30M", "P1DT2H30M"),
            ("PT0S", "PT0S"),
            ("0:00:00.500000", "PT0.5S"),
            ("-P1D", "-P1D"),
        ] {
            assert_eq!(GraphDuration::parse(input).unwrap().to_string(), out, "{input}");
        }
    }
}
