//! CSV exports (RFC 4180) that are safe to open in a spreadsheet: the console's assignment
//! export and the access-review history reports write their lines with it.

/// One CSV field: quoted when it holds a comma, a quote or a line break, quotes doubled. A
/// field a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is prefixed
/// with `'`, so a display name cannot smuggle a formula into an export.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// One line of fields, ended by CRLF.
pub fn line(fields: &[&str]) -> String {
    let mut line = fields.iter().map(|f| field(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_need_it_and_formulas_are_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("Doe, \"Jim\""), "\"Doe, \"\"Jim\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@sum"), "'@sum");
        assert_eq!(line(&["a", "b,c"]), "a,\"b,c\"\r\n");
    }
}
