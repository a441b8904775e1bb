//! Validation of `POST /v1/chat/completions` bodies. The body is forwarded to
//! the upstream as sent (OpenRouter-only fields untouched) except for the
//! output limit, which is set to the ceiling the hold covers
//! (`dialects::set_output_limit`). This module reads what billing needs and refuses what
//! cannot be priced before the call, before any hold or upstream call.
//! The readers of the other API dialects (`dialects/`) produce the same
//! `ChatRequest` for the quote, with the field readers defined here.

use crate::prompt_prefix::PromptPrints;
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
/// Tokens a typical estimate assumes for an image (the hold uses the bound
/// in `hold.rs`).
pub(crate) const TYPICAL_IMAGE_TOKENS: u64 = 1_500;
/// Prompt-bound overheads the provider adds around the text: chat template
/// tokens per message and per tool, and a fixed allowance (system wrappers).
const BOUND_TOKENS_PER_MESSAGE: u64 = 16;
const BOUND_TOKENS_PER_TOOL: u64 = 64;
const BOUND_TOKENS_FIXED: u64 = 512;
/// Request fields that make the upstream bill extras we cannot price before
/// the call; refused rather than forwarded unpriced.
const UNPRICED_FEATURES: &[(&str, &str)] = &[
    ("plugins", "OpenRouter plugins (web search, file parser) are billed by the upstream per use"),
    ("web_search_options", "web search is billed by the upstream per search"),
];

/// What the quote needs of a request, in any dialect (`dialects::Dialect::read`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// `max_completion_tokens`, else `max_tokens`, when the client set one.
    pub max_output: Option<u64>,
    pub n: u64,
    /// Typical prompt size in tokens (bytes / 3): estimates, never holds.
    pub prompt_estimate: u64,
    /// Upper bound on prompt tokens, images excluded: a token is at least one
    /// UTF-8 byte, so the body's bytes (media payloads excluded) plus template
    /// overheads bound it.
    pub prompt_bound: u64,
    /// Image parts (priced per image by the hold).
    pub images: u64,
    /// The body carries `max_tokens` / `max_completion_tokens`.
    pub limit_fields: (bool, bool),
    /// OpenRouter's `models` fallbacks: the upstream may serve any of them, so
    /// each must be allowed and the hold covers the priciest.
    pub fallbacks: Vec<String>,
    /// The body asks for provider routing (`provider`): bounded by
    /// `provider_routing` before it is forwarded.
    pub routing: bool,
    /// Fingerprints at message boundaries, for the counted-prefix bound
    /// (`prompt_prefix.rs`). None with fallbacks: an earlier count may come
    /// from another model's tokenizer than the one serving this request.
    pub prints: Option<PromptPrints>,
    /// The request asks for prompt caching (`cache_control` anywhere): cache
    /// writes are billed above the prompt price, so the hold prices the
    /// prompt at the dearer of the two.
    pub cache_writes: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    TooLarge,
    Invalid(String),
}

pub(crate) fn invalid(msg: impl Into<String>) -> RequestError {
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
        let json = json_object(body)?;
        let obj = json.as_object().expect("checked");
        let model = model_field(obj)?;
        let messages = match obj.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => m,
            Some(Value::Array(_)) => return Err(invalid("`messages` must not be empty")),
            Some(_) => return Err(invalid("`messages` must be an array")),
            None => return Err(invalid("`messages` is required")),
        };
        refuse_unpriced_features(obj)?;
        let mut prompt_tokens = 8u64;
        let mut media = Media::default();
        for (i, message) in messages.iter().enumerate() {
            prompt_tokens += message_tokens(message, &mut media).map_err(|e| invalid(format!("messages[{i}]: {e}")))?;
        }
        let mut tool_count = 0u64;
        if let Some(tools) = obj.get("tools") {
            prompt_tokens += estimate_tokens(tools.to_string().len());
            tool_count = tools.as_array().map_or(0, |t| t.len() as u64);
        }
        let text_bytes = body.len().saturating_sub(media.payload_bytes) as u64;
        let template = template_tokens(messages.len() as u64, tool_count);
        let prompt_bound = text_bytes + template;
        let stream = stream_field(obj)?;
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
        let fallbacks = fallbacks_field(obj)?;
        let limit_fields = (obj.contains_key("max_tokens"), obj.contains_key("max_completion_tokens"));
        let routing = crate::provider_routing::asks_for_routing(obj);
        let prints = if fallbacks.is_empty() { PromptPrints::of(body, template, text_bytes) } else { None };
        Ok(ChatRequest {
            model,
            stream,
            max_output,
            n,
            prompt_estimate: prompt_tokens,
            prompt_bound,
            images: media.images,
            limit_fields,
            fallbacks,
            routing,
            prints,
            cache_writes: has_key(&json, "cache_control"),
        })
    }
}

/// The body as a JSON object, at most `MAX_BODY_BYTES` (every dialect's first check).
pub(crate) fn json_object(body: &[u8]) -> Result<Value, RequestError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RequestError::TooLarge);
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("Request body is not valid JSON: {e}")))?;
    if !json.is_object() {
        return Err(invalid("Request body must be a JSON object"));
    }
    Ok(json)
}

pub(crate) fn model_field(obj: &serde_json::Map<String, Value>) -> Result<String, RequestError> {
    match obj.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() && m.len() <= 200 => Ok(m.clone()),
        Some(Value::String(_)) => Err(invalid("`model` must be a non-empty model id")),
        Some(_) => Err(invalid("`model` must be a string")),
        None => Err(invalid("`model` is required")),
    }
}

pub(crate) fn stream_field(obj: &serde_json::Map<String, Value>) -> Result<bool, RequestError> {
    match obj.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid("`stream` must be a boolean")),
    }
}

/// OpenRouter's `models` fallbacks (any dialect: the upstream may serve any of them).
pub(crate) fn fallbacks_field(obj: &serde_json::Map<String, Value>) -> Result<Vec<String>, RequestError> {
    match obj.get("models") {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(list)) if list.len() <= MAX_FALLBACKS => list
            .iter()
            .map(|m| m.as_str().filter(|s| !s.trim().is_empty() && s.len() <= 200).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("`models` must be an array of model ids")),
        Some(_) => Err(invalid(format!("`models` must be an array of at most {MAX_FALLBACKS} model ids"))),
    }
}

/// OpenRouter's extras billed per use (`UNPRICED_FEATURES`): 400 naming the field.
pub(crate) fn refuse_unpriced_features(obj: &serde_json::Map<String, Value>) -> Result<(), RequestError> {
    for (field, why) in UNPRICED_FEATURES {
        if obj.get(*field).is_some_and(|v| !v.is_null() && v != &Value::Array(vec![])) {
            return Err(invalid(format!("`{field}` is not supported: {why}, which cannot be priced before the call.")));
        }
    }
    Ok(())
}

/// The template allowance of the prompt bound: per message (or input item),
/// per tool, and fixed.
pub(crate) fn template_tokens(messages: u64, tools: u64) -> u64 {
    BOUND_TOKENS_PER_MESSAGE * messages + BOUND_TOKENS_PER_TOOL * tools + BOUND_TOKENS_FIXED
}

/// Whether `key` names a field anywhere in `value` (decoded keys: an escaped
/// spelling is the same field to the upstream).
pub(crate) fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(obj) => obj.iter().any(|(k, v)| k == key || has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// Media parts seen in the messages.
#[derive(Default)]
struct Media {
    images: u64,
    /// Bytes of their JSON (excluded from the text bound; priced per image).
    payload_bytes: usize,
}

pub(crate) fn output_limit(obj: &serde_json::Map<String, Value>, field: &str) -> Result<Option<u64>, RequestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_OUTPUT_TOKENS).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!("`{field}` must be an integer from 1 to {MAX_OUTPUT_TOKENS}"))),
        },
    }
}

/// Per-message estimate: role/formatting overhead + text + tool calls + media
/// parts. Images are counted; files and audio are refused (no bound exists
/// for what a provider bills for them).
fn message_tokens(message: &Value, media: &mut Media) -> Result<u64, String> {
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
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
                tokens += match (kind, part.get("text").and_then(Value::as_str)) {
                    (_, Some(text)) => estimate_tokens(text.len()),
                    ("image_url" | "input_image", None) => {
                        media.images += 1;
                        media.payload_bytes += part.to_string().len();
                        TYPICAL_IMAGE_TOKENS
                    }
                    (other, None) => {
                        return Err(format!("`{other}` content parts are not supported: their cost cannot be bounded before the call; send text or images"))
                    }
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
        assert_eq!(r.images, 1);
    }

    #[test]
    fn the_prompt_bound_is_at_least_the_text_bytes() {
        let text = "日本語のテキスト".repeat(100); // 3 bytes per char: ~1 token per char
        let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{text}"}}],"response_format":{{"type":"json_schema","json_schema":{{"schema":{{"type":"object"}}}}}}}}"#);
        let r = parse(&body).unwrap();
        assert!(r.prompt_bound >= text.len() as u64, "{}", r.prompt_bound);
        assert!(r.prompt_bound >= body.len() as u64, "schemas and all other text count");
        // An image's base64 payload is priced per image, not per byte.
        let img = format!(r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{}"}}}}]}}]}}"#, "A".repeat(100_000));
        let r = parse(&img).unwrap();
        assert!(r.prompt_bound < 1_000, "{}", r.prompt_bound);
    }

    #[test]
    fn fingerprints_and_caching_are_read_for_the_hold() {
        let r = parse(r#"{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"x"}]}"#).unwrap();
        let prints = r.prints.expect("fingerprinted");
        assert_eq!(prints.allowance, BOUND_TOKENS_PER_MESSAGE + BOUND_TOKENS_PER_TOOL + BOUND_TOKENS_FIXED);
        assert_eq!(r.prompt_bound, prints.text_bytes + prints.allowance, "the byte bound: text + the same allowance");
        // Fallbacks may be served by another tokenizer: no counted-prefix bound.
        assert_eq!(parse(r#"{"model":"m","models":["n"],"messages":[{"role":"user","content":"x"}]}"#).unwrap().prints, None);
        assert!(!r.cache_writes);
        // Anywhere, however spelled in JSON.
        let cached = parse(r#"{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s","cache\u005fcontrol":{"type":"ephemeral"}}]}]}"#).unwrap();
        assert!(cached.cache_writes);
    }

    #[test]
    fn unpriceable_features_are_refused_by_name() {
        for (body, needle) in [
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"plugins":[{"id":"web"}]}"#, "`plugins`"),
            (r#"{"model":"m","messages":[{"role":"user","content":"x"}],"web_search_options":{}}"#, "`web_search_options`"),
            (r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"data:"}}]}]}"#, "`file` content parts"),
            (r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]}"#, "`input_audio` content parts"),
        ] {
            match parse(body) {
                Err(RequestError::Invalid(msg)) => assert!(msg.contains(needle), "{body}: {msg}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(parse(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"plugins":[]}"#).is_ok());
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
