//! What a chat request asks of the mock: the texts it carries, how many
//! prompt tokens a provider would count for it, which model serves it, and
//! its output limit.

use crate::catalogue::{self, ModelSpec};
use crate::faults::Faults;
use crate::util::error_response;
use axum::response::Response;
use serde_json::Value;

/// What real tokenizers average on English and code.
const DEFAULT_BYTES_PER_TOKEN: u64 = 4;
/// The system prompt a provider adds when tools are offered (Anthropic
/// documents 346 tokens for `tool_choice` auto).
const TOOL_PREAMBLE_TOKENS: u64 = 346;

/// All message text: string contents and `{type:"text",text}` parts.
pub fn message_texts(req: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for m in messages {
        match m.get("content") {
            Some(Value::String(s)) => out.push(s.as_str()),
            Some(Value::Array(parts)) => out.extend(
                parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|p| p.get("text").and_then(Value::as_str)),
            ),
            _ => {}
        }
    }
    out
}

/// Prompt tokens as a provider counts them: every text the model reads
/// (message texts, tool calls, tool schemas) at `bytes_per_token`, plus
/// template tokens per message and the tool-use preamble when tools are offered.
pub fn count_prompt(req: &Value, texts: &[&str], faults: &Faults) -> u64 {
    let messages = req.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let calls: usize = messages
        .iter()
        .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .map(|c| ["name", "arguments"].iter().filter_map(|k| c.pointer(&format!("/function/{k}")).and_then(Value::as_str)).map(str::len).sum::<usize>())
        .sum();
    let tools = req.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty());
    let tool_bytes = tools.map_or(0, |t| Value::Array(t.clone()).to_string().len());
    let bytes = texts.iter().map(|t| t.len()).sum::<usize>() + calls + tool_bytes;
    let per_token = faults.bytes_per_token.unwrap_or(DEFAULT_BYTES_PER_TOKEN);
    let template = faults.message_tokens.unwrap_or(0) * messages.len() as u64;
    let preamble = if tools.is_some() { TOOL_PREAMBLE_TOKENS } else { 0 };
    ((bytes as u64).div_ceil(per_token) + template + preamble).max(1)
}

/// `model`, else the first known entry of the `models` fallback list.
pub fn pick_model(req: &Value) -> Result<&'static ModelSpec, Response> {
    let primary = req.get("model").and_then(Value::as_str);
    let fallbacks = req
        .get("models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let candidates: Vec<&str> = primary
        .into_iter()
        .chain(fallbacks.filter_map(Value::as_str))
        .collect();
    if let Some(m) = candidates.iter().find_map(|c| catalogue::find(c)) {
        return Ok(m);
    }
    let message = match candidates.first() {
        Some(c) => format!("{c} is not a valid model ID"),
        None => "No models provided".to_string(),
    };
    Err(error_response(400, &message, None))
}

pub fn requested_cap(req: &Value) -> Option<u64> {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| req.get(*k).and_then(Value::as_u64))
}
