//! The regular expressions of `-match` / `-notMatch`: the `regex` crate, case-insensitive and
//! unanchored (a search), as in Entra. Its matching time is linear in the input whatever the
//! pattern, so a hostile rule cannot stall the server; compiled size and nesting are capped.

use std::fmt;

/// The largest compiled pattern accepted, in bytes of the regex crate's program.
const SIZE_LIMIT: usize = 1 << 20;
/// The deepest nesting of groups and repetitions accepted.
const NEST_LIMIT: u32 = 50;

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    pub message: String,
}

/// A compiled, case-insensitive regular expression that remembers its source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    re: regex::Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, PatternError> {
        let re = regex::RegexBuilder::new(source)
            .case_insensitive(true)
            .size_limit(SIZE_LIMIT)
            .nest_limit(NEST_LIMIT)
            .build()
            .map_err(|e| PatternError {
                message: e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid pattern")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_owned(),
            })?;
        Ok(Self { source: source.to_owned(), re })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_case_insensitively() {
        let cases = [
            ("^S\\d", "s1-seattle", true),
            ("^S\\d", "Seattle", false),
            ("eng", "Senior Engineer", true),
            ("^(sales|marketing)$", "MARKETING", true),
            ("^(sales|marketing)$", "marketing ops", false),
            ("[a-c]{2}x", "zzBCx", true),
            ("^a.+e$", "Adele", true),
        ];
        for (p, text, want) in cases {
            assert_eq!(Pattern::new(p).unwrap().is_match(text), want, "{p} on {text}");
        }
    }

    #[test]
    fn rejects_invalid_and_oversized_patterns() {
        for p in ["(", "[a-", "a{2,1}", "*a", &"(".repeat(60).to_string()] {
            assert!(Pattern::new(p).is_err(), "{p}");
        }
        assert!(Pattern::new("a{1000}{1000}{1000}").is_err(), "size limit");
    }

    #[test]
    fn hostile_patterns_run_in_linear_time() {
        let text = format!("{}c", "a".repeat(10_000));
        let started = std::time::Instant::now();
        assert!(!Pattern::new("(a*)*b").unwrap().is_match(&text));
        assert!(Pattern::new("^(a|aa)*c$").unwrap().is_match(&text));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
