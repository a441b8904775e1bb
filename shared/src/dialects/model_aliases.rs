//! Anthropic-native model ids — what Claude Code and the Anthropic SDKs send
//! by default (`claude-opus-5-5`, `claude-haiku-4-5-20251001`, …) — mapped
//! to OpenRouter catalogue ids (`anthropic/claude-opus-5.5`, …). A dated
//! snapshot (`-YYYYMMDD`) or `-latest` resolves as its undated id. The
//! table below comes first; any other `claude-{opus|sonnet|haiku}-{major}`
//! or `-{major}-{minor}` follows OpenRouter's naming rule (`anthropic/`, a
//! dot for the minor version), so a new release (Claude Code 2.1.328's
//! `opus`/`sonnet`/`haiku` are `claude-{family}-5-5`) needs no table row.
//! Ids with a `/` are catalogue ids already; other ids resolve to nothing:
//! they are looked up as sent, and a miss is the usual 404 `model_not_found`
//! (in the Anthropic envelope on `/v1/messages`).
//!
//! The table (Anthropic's published ids; the 3.x names and `-4-0` are where
//! the rule would not give OpenRouter's id):
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
use std::borrow::Cow;
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

/// Model families the naming rule covers.
const FAMILIES: &[&str] = &["opus", "sonnet", "haiku"];

/// The OpenRouter id for an Anthropic-native id in the table, if it is one
/// (`catalogue_id` also applies the naming rule).
pub fn openrouter_id(anthropic_id: &str) -> Option<&'static str> {
    let undated = strip_version(anthropic_id);
    ALIASES.iter().find(|(alias, _)| *alias == undated).map(|(_, id)| *id)
}

/// The catalogue id to look `model` up by: the table's, else the naming
/// rule's, else `model` as sent (catalogue ids, anything unknown).
pub fn catalogue_id(model: &str) -> Cow<'_, str> {
    if model.contains('/') {
        return Cow::Borrowed(model);
    }
    match openrouter_id(model) {
        Some(id) => Cow::Borrowed(id),
        None => by_naming_rule(strip_version(model)).map_or(Cow::Borrowed(model), Cow::Owned),
    }
}

/// `claude-{family}-{major}[-{minor}]` → `anthropic/claude-{family}-{major}[.{minor}]`.
fn by_naming_rule(undated: &str) -> Option<String> {
    let mut parts = undated.strip_prefix("claude-")?.split('-');
    let family = parts.next().filter(|f| FAMILIES.contains(f))?;
    let version: Vec<&str> = parts.collect();
    let number = |part: &&str| (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    if version.is_empty() || version.len() > 2 || !version.iter().all(number) {
        return None;
    }
    Some(format!("anthropic/claude-{family}-{}", version.join(".")))
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
    fn unknown_and_catalogue_ids_are_not_in_the_table() {
        for id in ["anthropic/claude-haiku-4.5", "claude-sonnet-9-9", "gpt-5-codex", "claude-sonnet-4-5-2025", "claude-haiku-4-5-2025100x", ""] {
            assert_eq!(openrouter_id(id), None, "{id}");
        }
    }

    #[test]
    fn claude_codes_5x_defaults_and_new_releases_resolve_by_the_naming_rule() {
        for (sent, expected) in [
            ("claude-opus-5-5", "anthropic/claude-opus-5.5"),
            ("claude-sonnet-5-5", "anthropic/claude-sonnet-5.5"),
            ("claude-haiku-5-5", "anthropic/claude-haiku-5.5"),
            ("claude-opus-5-5-20260115", "anthropic/claude-opus-5.5"),
            ("claude-sonnet-5-5-latest", "anthropic/claude-sonnet-5.5"),
            ("claude-sonnet-9-9", "anthropic/claude-sonnet-9.9"),
            ("claude-haiku-6-10", "anthropic/claude-haiku-6.10"),
            ("claude-opus-5", "anthropic/claude-opus-5"),
            ("claude-opus-5-20260115", "anthropic/claude-opus-5"),
            // The table wins where the rule would differ or the id is old-style.
            ("claude-opus-4-0", "anthropic/claude-opus-4"),
            ("claude-3-7-sonnet-latest", "anthropic/claude-3.7-sonnet"),
            ("claude-haiku-4-5-20251001", "anthropic/claude-haiku-4.5"),
        ] {
            assert_eq!(catalogue_id(sent), expected, "{sent}");
        }
    }

    #[test]
    fn catalogue_and_unknown_ids_pass_unchanged() {
        for id in [
            "anthropic/claude-sonnet-4.5",
            "anthropic/claude-opus-5-5",
            "openai/gpt-4o-mini",
            "gpt-5-codex",
            "claude-sonnet",
            "claude-sonnet-4-5-2025",
            "claude-haiku-4-5-2025100x",
            "claude-opus-5-5-1",
            "claude-opus-123",
            "claude-poet-5-5",
            "claude-opus-5-x",
            "claude-opus--5",
            "",
        ] {
            assert_eq!(catalogue_id(id), id, "{id}");
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
