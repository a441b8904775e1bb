//! The output ceiling the hold covers, set in the body forwarded upstream,
//! for every dialect: a single splice when the client set no limit (the
//! common case, and cheap on large bodies), the body untouched when the
//! client already asked for exactly that, otherwise re-serialised with the
//! dialect's one limit field.

use super::Dialect;
use serde_json::{Map, Value};

/// The body to forward with its output limit set to `limit`.
/// `limit_fields`: whether the body carries the dialect's limit fields (chat:
/// `max_tokens`, `max_completion_tokens`; the others: their one field, and
/// `false`); `asked`: the limit the client set, as read.
pub fn set_output_limit(dialect: Dialect, body: &[u8], limit_fields: (bool, bool), asked: Option<u64>, limit: u64) -> Vec<u8> {
    let field = dialect.limit_field();
    match limit_fields {
        (false, false) => {
            let start = body.iter().position(|b| *b == b'{').expect("a parsed JSON object");
            let mut out = Vec::with_capacity(body.len() + 32);
            out.extend_from_slice(&body[..=start]);
            out.extend_from_slice(format!("\"{field}\":{limit},").as_bytes());
            out.extend_from_slice(&body[start + 1..]);
            out
        }
        (true, false) | (false, true) if asked == Some(limit) => body.to_vec(),
        _ => {
            let mut json: Map<String, Value> = serde_json::from_slice(body).expect("a parsed JSON object");
            if dialect == Dialect::Chat {
                json.remove("max_completion_tokens");
            }
            if dialect == Dialect::Messages {
                fit_thinking_budget(&mut json, limit);
            }
            json.insert(field.into(), Value::from(limit));
            serde_json::to_vec(&json).expect("JSON serialises")
        }
    }
}

/// Anthropic counts thinking within `max_tokens` and refuses a
/// `thinking.budget_tokens` that is not below it: a ceiling lowered under the
/// client's budget lowers the budget with it (to one below the ceiling; under
/// Anthropic's minimum of 1 024 the upstream refuses, 400, uncharged).
fn fit_thinking_budget(json: &mut Map<String, Value>, limit: u64) {
    let budget = json.get_mut("thinking").and_then(|t| t.get_mut("budget_tokens"));
    if let Some(budget) = budget.filter(|b| b.as_u64().is_some_and(|b| b >= limit)) {
        *budget = Value::from(limit.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(dialect: Dialect, body: &str, fields: (bool, bool), asked: Option<u64>, limit: u64) -> String {
        String::from_utf8(set_output_limit(dialect, body.as_bytes(), fields, asked, limit)).unwrap()
    }

    #[test]
    fn a_body_without_a_limit_gets_the_dialects_field_spliced_in() {
        let body = r#" {"model":"m","stream":true}"#;
        assert_eq!(set(Dialect::Chat, body, (false, false), None, 900), r#" {"max_tokens":900,"model":"m","stream":true}"#);
        assert_eq!(set(Dialect::Responses, body, (false, false), None, 900), r#" {"max_output_tokens":900,"model":"m","stream":true}"#);
    }

    #[test]
    fn the_clients_own_limit_when_held_whole_is_forwarded_untouched() {
        let chat = r#"{"model":"m", "max_tokens": 50}"#;
        assert_eq!(set(Dialect::Chat, chat, (true, false), Some(50), 50), chat);
        let messages = r#"{"model":"m", "max_tokens": 50, "thinking": {"type":"enabled","budget_tokens":40}}"#;
        assert_eq!(set(Dialect::Messages, messages, (true, false), Some(50), 50), messages);
        let responses = r#"{"model":"m", "max_output_tokens": 50}"#;
        assert_eq!(set(Dialect::Responses, responses, (true, false), Some(50), 50), responses);
    }

    #[test]
    fn a_lowered_limit_rewrites_the_one_field() {
        let chat = r#"{"model":"m","max_completion_tokens":5000,"max_tokens":9}"#;
        assert_eq!(set(Dialect::Chat, chat, (true, true), Some(5000), 700), r#"{"max_tokens":700,"model":"m"}"#);
        let messages = r#"{"model":"m","max_tokens":5000,"max_completion_tokens":1}"#;
        assert_eq!(
            set(Dialect::Messages, messages, (true, false), Some(5000), 700),
            r#"{"max_completion_tokens":1,"max_tokens":700,"model":"m"}"#,
            "only chat knows max_completion_tokens"
        );
        let responses = r#"{"model":"m","max_output_tokens":5000}"#;
        assert_eq!(set(Dialect::Responses, responses, (true, false), Some(5000), 700), r#"{"max_output_tokens":700,"model":"m"}"#);
    }

    #[test]
    fn a_messages_ceiling_below_the_thinking_budget_lowers_the_budget() {
        let body = r#"{"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999}}"#;
        assert_eq!(
            set(Dialect::Messages, body, (true, false), Some(32000), 5000),
            r#"{"max_tokens":5000,"thinking":{"budget_tokens":4999,"type":"enabled"}}"#
        );
        let small = r#"{"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":2000}}"#;
        assert_eq!(
            set(Dialect::Messages, small, (true, false), Some(32000), 5000),
            r#"{"max_tokens":5000,"thinking":{"budget_tokens":2000,"type":"enabled"}}"#,
            "a budget already below the ceiling is kept"
        );
    }
}
