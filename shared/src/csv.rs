//! RFC 4180 CSV writing: records end with CRLF; a field containing a comma,
//! a double quote, CR or LF is enclosed in double quotes with inner quotes
//! doubled; every other field is written as is. Values are never altered
//! (no formula guarding): the export is the user's own data, exact.

use std::borrow::Cow;

pub fn field(value: &str) -> Cow<'_, str> {
    if value.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", value.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(value)
    }
}

/// One record, CRLF-terminated.
pub fn record<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields.iter().map(|f| field(f.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// Neutralises text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
/// tab, CR at the start) by prefixing `'` (OWASP's CSV-injection advice). Only
/// for client-supplied fields; our own values never start that way.
pub fn inert(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_are_written_as_is() {
        assert_eq!(record(&["a", "0.003379", "", "openai/gpt-4o"]), "a,0.003379,,openai/gpt-4o\r\n");
    }

    #[test]
    fn special_characters_are_quoted_and_quotes_doubled() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("line1\nline2"), "\"line1\nline2\"");
        assert_eq!(field("cr\r"), "\"cr\r\"");
        assert_eq!(field("\""), "\"\"\"\"");
        assert_eq!(record(&["x", "a,\"b\"\r\n", "=1+1"]), "x,\"a,\"\"b\"\"\r\n\",=1+1\r\n");
    }

    #[test]
    fn formulas_are_made_inert() {
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(inert("sess-1"), "sess-1");
        assert_eq!(inert(""), "");
    }
}
