//! Validation of `POST /v1/chat/completions` bodies. The body is forwarded to the
//! upstream byte-for-byte (OpenRouter-only fields untouched); this module only
//! reads what billing needs and refuses what cannot be served, before any hold
//! or upstream call.

use serde_json::Value;

/// Largest body accepted (413 beyond). Long-context prompts are big, but 4 MiB
/// of text is far beyond any model's context window.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Upper bound on requested output tokens; larger values are client bugs.
pub const MAX_OUTPUT_TOKENS: u64 = 1_000_000;
/// `n` multiplies output (and cost); more than this is refused.
pub const MAX_CHOICES: u64 = 8;
/// Most fallback models a request may name.
pub const MAX_FALLBACKS: usize = 8;
/// Tokens assumed for a non-text content part (image, audio, file).
const TOKENS_PER_MEDIA_PART: u64 = 1_500;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// `max_completion_tokens`, else `max_tokens`, when the client set one.
    pub max_output: Option<u64>,
    pub n: u64,
    /// Conservative prompt size in tokens, for the hold (see `estimate_tokens`).
    pub prompt_estimate: u64,
    /// OpenRouter's `models` fallbacks: the upstream may serve any of them, so
    /// each must be allowed and the hold covers the priciest.
    pub fallbacks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    TooLarge,
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

/// Conservative token estimate for text: one token per 3 UTF-8 bytes, rounded up.
/// Real tokenizers average 3.5–4.5 bytes per token on English and code, so the
/// hold covers the prompt; CJK text sits near 3 bytes per token.
pub fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(3)
}

impl ChatRequest {
    pub fn parse(body: &[u8]) -> Result<ChatRequest, RequestError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(RequestError::TooLarge);
        }
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("Request body is not valid JSON: {e}")))?;
        let obj = json.as_object().ok_or_else(|| invalid("Request body must be a JSON object"))?;

        let model = match obj.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() && m.len() <= 200 => m.clone(),
            Some(Value::String(_)) => return Err(invalid("`model` must be a non-empty model id")),
            Some(_) => return Err(invalid("`model` must be a string")),
            None => return Err(invalid("`model` is required")),
        };
        let messages = match obj.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => m,
            Some(Value::Array(_)) => return Err(invalid("`messages` must not be empty")),
            Some(_) => return Err(invalid("`messages` must be an array")),
            None => return Err(invalid("`messages` is required")),
        };
        let mut prompt_tokens = 8u64;
        for (i, message) in messages.iter().enumerate() {
            prompt_tokens += message_tokens(message).map_err(|e| invalid(format!("messages[{i}]: {e}")))?;
        }
        if let Some(tools) = obj.get("tools") {
            prompt_tokens += estimate_tokens(tools.to_string().len());
        }
        let stream = match obj.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("`stream` must be a boolean")),
        };
        let max_output = match (output_limit(obj, "max_completion_tokens")?, output_limit(obj, "max_tokens")?) {
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        let n = match obj.get("n") {
            None | Some(Value::Null) => 1,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_CHOICES).contains(&n) => n,
                _ => return Err(invalid(format!("`n` must be an integer from 1 to {MAX_CHOICES}"))),
            },
        };
        let fallbacks = match obj.get("models") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(list)) if list.len() <= MAX_FALLBACKS => list
                .iter()
                .map(|m| m.as_str().filter(|s| !s.trim().is_empty() && s.len() <= 200).map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("`models` must be an array of model ids"))?,
            Some(_) => return Err(invalid(format!("`models` must be an array of at most {MAX_FALLBACKS} model ids"))),
        };
        Ok(ChatRequest { model, stream, max_output, n, prompt_estimate: prompt_tokens, fallbacks })
    }
}

fn output_limit(obj: &serde_json::Map<String, Value>, field: &str) -> Result<Option<u64>, RequestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_OUTPUT_TOKENS).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!("`{field}` must be an integer from 1 to {MAX_OUTPUT_TOKENS}"))),
        },
    }
}

/// Per-message estimate: role/formatting overhead + text + tool calls + media parts.
fn message_tokens(message: &Value) -> Result<u64, String> {
    let obj = message.as_object().ok_or("each message must be an object")?;
    match obj.get("role").and_then(Value::as_str) {
        Some("system" | "developer" | "user" | "assistant" | "tool" | "function") => {}
        Some(other) => return Err(format!("unknown role `{other}`")),
        None => return Err("`role` is required".into()),
    }
    let mut tokens = 4;
    match obj.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => tokens += estimate_tokens(s.len()),
        Some(Value::Array(parts)) => {
            for part in parts {
                tokens += match part.get("text").and_then(Value::as_str) {
                    Some(text) => estimate_tokens(text.len()),
                    None => TOKENS_PER_MEDIA_PART,
                };
            }
        }
        Some(_) => return Err("`content` must be a string, an array of parts, or null".into()),
    }
    if let Some(calls) = obj.get("tool_calls") {
        tokens += estimate_tokens(calls.to_string().len());
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ChatRequest, RequestError> {
        ChatRequest::parse(s.as_bytes())
    }

    #[test]
    fn accepts_a_normal_request() {
        let r = parse(r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hello there"}],"stream":true,"max_tokens":50,"provider":{"order":["openai"]}}"#).unwrap();
        assert_eq!(r.model, "openai/gpt-4o");
        assert!(r.stream);
        assert_eq!(r.max_output, Some(50));
        assert_eq!(r.n, 1);
        assert_eq!(r.prompt_estimate, 8 + 4 + 4); // "hello there" = 11 bytes → 4 tokens
        assert!(r.fallbacks.is_empty());
        let f = parse(r#"{"model":"a/b","models":["c/d","e/f"],"messages":[{"role":"user","content":"x"}]}"#).unwrap();
        assert_eq!(f.fallbacks, ["c/d", "e/f"]);
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let r = parse(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"max_completion_tokens":9}"#).unwrap();
        assert_eq!(r.max_output, Some(9));
    }

    #[test]
    fn counts_parts_and_tools() {
        let r = parse(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"abcdef"},{"type":"image_url","image_url":{"url":"data:..."}}]},{"role":"assistant","content":null,"tool_calls":[]}]}"#).unwrap();
        assert_eq!(r.prompt_estimate, 8 + 4 + 2 + 1500 + 4 + 1);
    }

    #[test]
    fn refuses_bad_bodies_with_clear_messages() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[]", "JSON object"),
            (r#"{"messages":[{"role":"user","content":"x"}]}"#, "`model` is required"),
            (r#"{"model":"","messages":[{"role":"user","content":"x"}]}"#, "non-empty"),
            (r#"{"model":"m"}"#, "`messages` is required"),
            (r#"{"model":"m","messages":[]}"#, "must not be empty"),
            (r#"{"model":"m","messages":[{"content":"x"}]}"#, "`role` is required"),
            (r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#, "unknown role"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#, "max_tokens"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-3}"#, "max_tokens"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":"9"}"#, "max_completion_tokens"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":9}"#, "`n`"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#, "`stream`"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"models":"m2"}"#, "`models`"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"models":[1]}"#, "`models`"),
        ];
        for (body, needle) in cases {
            match parse(body) {
                Err(RequestError::Invalid(msg)) => assert!(msg.contains(needle), "{body}: {msg}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_oversized_bodies() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(ChatRequest::parse(&big), Err(RequestError::TooLarge));
    }
}
