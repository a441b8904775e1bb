//! Escaping for HTML text and attribute values. Every string that did not
//! come from a literal in our code (key names, model ids, emails, error
//! messages) goes through [`esc`] before it is written into a page.

use crate::money::Micros;

/// Escapes `& < > " '` — safe in text and in quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `$1,234.56` style. Amounts under a cent are shown exactly (small usage is
/// not "$0.00"); others to the cent, rounded so as never to flatter the
/// account: a credit down, a debt (negative) up.
pub fn usd(amount: Micros) -> String {
    let m = amount.0;
    let sign = if m < 0 { "-" } else { "" };
    let abs = m.unsigned_abs();
    if abs != 0 && abs < 10_000 {
        return format!("{sign}${}", Micros(abs as i64).usd_trimmed());
    }
    let cents = if m < 0 { abs.div_ceil(10_000) } else { abs / 10_000 };
    let dollars = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}${grouped}.{:02}", cents % 100)
}

/// `2026-11-30 14:05 UTC` from Unix milliseconds (empty for none).
pub fn when(ms: Option<i64>) -> String {
    ms.map(crate::time::utc_minute).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc(r#"<img src=x onerror="alert('1')">&"#), "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;");
        assert_eq!(esc("plain"), "plain");
    }

    #[test]
    fn formats_dollars() {
        assert_eq!(usd(Micros(10_000_000)), "$10.00");
        assert_eq!(usd(Micros(1_234_567_890)), "$1,234.56");
        assert_eq!(usd(Micros(-2_500_000)), "-$2.50");
        assert_eq!(usd(Micros(19_999)), "$0.01");
        assert_eq!(usd(Micros(-19_999)), "-$0.02");
        assert_eq!(usd(Micros(1_234)), "$0.001234");
        assert_eq!(usd(Micros(0)), "$0.00");
    }
}
