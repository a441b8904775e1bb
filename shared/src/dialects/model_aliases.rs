//! Anthropic-native model ids — what Claude Code and the Anthropic SDKs send
//! by default (`claude-sonnet-4-6`, `claude-haiku-4-5-20251001`, …) — mapped
//! to OpenRouter catalogue ids (`anthropic/claude-sonnet-4.6`, …). A dated
//! snapshot (`-YYYYMMDD`) or `-latest` resolves as its undated id. Unknown
//! ids resolve to nothing: they are looked up as sent, and a miss is the
//! usual 404 `model_not_found` (in the Anthropic envelope on `/v1/messages`).
//!
//! The table (Anthropic's published ids → OpenRouter's naming, a dot for
//! the minor version; Claude Code 2.1's `sonnet`/`opus`/`haiku` are
//! `claude-sonnet-4-6`, `claude-opus-4-6`, `claude-haiku-4-5-20251001`):
//!
//! | Anthropic id | OpenRouter id |
//! |---|---|
//! | claude-opus-4-8, claude-opus-4-7, claude-opus-4-6, claude-opus-4-5 | anthropic/claude-opus-4.8, -4.7, -4.6, -4.5 |
//! | claude-opus-4-1 | anthropic/claude-opus-4.1 |
//! | claude-opus-4-0, claude-opus-4 | anthropic/claude-opus-4 |
//! | claude-sonnet-4-6, claude-sonnet-4-5 | anthropic/claude-sonnet-4.6, -4.5 |
//! | claude-sonnet-4-0, claude-sonnet-4 | anthropic/claude-sonnet-4 |
//! | claude-haiku-4-5 | anthropic/claude-haiku-4.5 |
//! | claude-3-7-sonnet | anthropic/claude-3.7-sonnet |
//! | claude-3-5-sonnet, claude-3-5-haiku | anthropic/claude-3.5-sonnet, anthropic/claude-3.5-haiku |
//! | claude-3-opus, claude-3-haiku | anthropic/claude-3-opus, anthropic/claude-3-haiku |

use serde_json::value::RawValue;
use std::collections::BTreeMap;

const ALIASES: &[(&str, &str)] = &[
    ("claude-opus-4-8", "anthropic/claude-opus-4.8"),
    ("claude-opus-4-7", "anthropic/claude-opus-4.7"),
    ("claude-opus-4-6", "anthropic/claude-opus-4.6"),
    ("claude-opus-4-5", "anthropic/claude-opus-4.5"),
    ("claude-opus-4-1", "anthropic/claude-opus-4.1"),
    ("claude-opus-4-0", "anthropic/claude-opus-4"),
    ("claude-opus-4", "anthropic/claude-opus-4"),
    ("claude-sonnet-4-6", "anthropic/claude-sonnet-4.6"),
    ("claude-sonnet-4-5", "anthropic/claude-sonnet-4.5"),
    ("claude-sonnet-4-0", "anthropic/claude-sonnet-4"),
    ("claude-sonnet-4", "anthropic/claude-sonnet-4"),
    ("claude-haiku-4-5", "anthropic/claude-haiku-4.5"),
    ("claude-3-7-sonnet", "anthropic/claude-3.7-sonnet"),
    ("claude-3-5-sonnet", "anthropic/claude-3.5-sonnet"),
    ("claude-3-5-haiku", "anthropic/claude-3.5-haiku"),
    ("claude-3-opus", "anthropic/claude-3-opus"),
    ("claude-3-haiku", "anthropic/claude-3-haiku"),
];

/// The OpenRouter id for an Anthropic-native id, if it is one.
pub fn openrouter_id(anthropic_id: &str) -> Option<&'static str> {
    let undated = strip_version(anthropic_id);
    ALIASES.iter().find(|(alias, _)| *alias == undated).map(|(_, id)| *id)
}

/// The body to forward with its top-level `model` set to `model` (the
/// catalogue id an alias resolved to): the value's bytes replaced in place,
/// the rest of the body as sent; untouched when it already names `model`.
pub fn with_model(body: &[u8], model: &str) -> Vec<u8> {
    let fields: BTreeMap<String, &RawValue> = serde_json::from_slice(body).expect("a parsed JSON object");
    let raw = fields.get("model").expect("a read model").get();
    let quoted = serde_json::to_string(model).expect("a string serialises");
    if raw == quoted {
        return body.to_vec();
    }
    // The raw value borrows from `body`: its offset is where it starts there.
    let start = raw.as_ptr() as usize - body.as_ptr() as usize;
    [&body[..start], quoted.as_bytes(), &body[start + raw.len()..]].concat()
}

/// `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`; `-latest` likewise.
fn strip_version(id: &str) -> &str {
    if let Some(undated) = id.strip_suffix("-latest") {
        return undated;
    }
    match id.rsplit_once('-') {
        Some((undated, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => undated,
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_defaults_and_dated_snapshots_resolve() {
        for (sent, expected) in [
            ("claude-sonnet-4-6", "anthropic/claude-sonnet-4.6"),
            ("claude-opus-4-6", "anthropic/claude-opus-4.6"),
            ("claude-haiku-4-5-20251001", "anthropic/claude-haiku-4.5"),
            ("claude-sonnet-4-5", "anthropic/claude-sonnet-4.5"),
            ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5"),
            ("claude-opus-4-1", "anthropic/claude-opus-4.1"),
            ("claude-opus-4-1-20250805", "anthropic/claude-opus-4.1"),
            ("claude-sonnet-4-20250514", "anthropic/claude-sonnet-4"),
            ("claude-3-5-haiku-20241022", "anthropic/claude-3.5-haiku"),
            ("claude-3-7-sonnet-latest", "anthropic/claude-3.7-sonnet"),
        ] {
            assert_eq!(openrouter_id(sent), Some(expected), "{sent}");
        }
    }

    #[test]
    fn unknown_and_catalogue_ids_resolve_to_nothing() {
        for id in ["anthropic/claude-haiku-4.5", "claude-sonnet-9-9", "gpt-5-codex", "claude-sonnet-4-5-2025", "claude-haiku-4-5-2025100x", ""] {
            assert_eq!(openrouter_id(id), None, "{id}");
        }
    }

    #[test]
    fn the_forwarded_body_names_the_resolved_model_and_nothing_else_changes() {
        let body = r#"{ "stream":true, "model" : "claude-haiku-4-5-20251001", "messages":[{"role":"user","content":"model"}]}"#;
        let forwarded = with_model(body.as_bytes(), "anthropic/claude-haiku-4.5");
        assert_eq!(
            String::from_utf8(forwarded).unwrap(),
            r#"{ "stream":true, "model" : "anthropic/claude-haiku-4.5", "messages":[{"role":"user","content":"model"}]}"#
        );
        let as_is = r#"{"model":"anthropic/claude-haiku-4.5","max_tokens":5}"#;
        assert_eq!(with_model(as_is.as_bytes(), "anthropic/claude-haiku-4.5"), as_is.as_bytes());
    }

    #[test]
    fn every_alias_names_an_anthropic_catalogue_id() {
        for (alias, id) in ALIASES {
            assert!(alias.starts_with("claude-") && id.starts_with("anthropic/claude-"), "{alias} → {id}");
            assert_eq!(strip_version(alias), *alias, "the table holds undated ids");
        }
    }
}
