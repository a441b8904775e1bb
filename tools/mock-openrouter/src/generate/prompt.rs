//! What a request asks of the mock, once its dialect has read it: the texts
//! it carries, how many prompt tokens a provider would count for them, which
//! model serves it, and its output ceiling. One model for every dialect, so
//! the same conversation costs the same whichever API carried it.

use super::Refusal;
use crate::catalogue::{self, ModelSpec};
use crate::faults::Faults;
use serde_json::Value;

/// What real tokenizers average on English and code.
const DEFAULT_BYTES_PER_TOKEN: u64 = 4;
/// The system prompt a provider adds when tools are offered (Anthropic
/// documents 346 tokens for `tool_choice` auto).
const TOOL_PREAMBLE_TOKENS: u64 = 346;

/// A request as its dialect reads it.
#[derive(Default)]
pub struct Ask<'a> {
    /// Every text the model reads (the `[[mock:…]]` markers are read from these).
    pub texts: Vec<&'a str>,
    /// Bytes of the tool calls already in the conversation (names, arguments).
    pub call_bytes: usize,
    /// The tool schemas offered, as sent.
    pub tools: Option<&'a [Value]>,
    /// Turns the provider's chat template wraps (messages, a system prompt).
    pub turns: u64,
    /// The output ceiling the request sets.
    pub cap: Option<u64>,
    pub stream: bool,
}

impl<'a> Ask<'a> {
    /// Reads the common fields: `stream`, `tools` and the ceiling in `caps`
    /// (the first present wins).
    pub fn new(req: &'a Value, caps: &[&str]) -> Ask<'a> {
        Ask {
            stream: req.get("stream").and_then(Value::as_bool).unwrap_or(false),
            tools: req.get("tools").and_then(Value::as_array).map(Vec::as_slice).filter(|t| !t.is_empty()),
            cap: caps.iter().find_map(|k| req.get(*k).and_then(Value::as_u64)),
            ..Ask::default()
        }
    }

    /// Prompt tokens as a provider counts them: every text the model reads
    /// (texts, tool calls, tool schemas) at `bytes_per_token`, plus template
    /// tokens per turn and the tool-use preamble when tools are offered.
    pub fn prompt_tokens(&self, faults: &Faults) -> u64 {
        let tool_bytes = self.tools.map_or(0, |t| serde_json::to_string(t).map_or(0, |s| s.len()));
        let bytes = self.texts.iter().map(|t| t.len()).sum::<usize>() + self.call_bytes + tool_bytes;
        let per_token = faults.bytes_per_token.unwrap_or(DEFAULT_BYTES_PER_TOKEN);
        let template = faults.message_tokens.unwrap_or(0) * self.turns;
        let preamble = if self.tools.is_some() { TOOL_PREAMBLE_TOKENS } else { 0 };
        ((bytes as u64).div_ceil(per_token) + template + preamble).max(1)
    }
}

/// The texts of a content value: a string, or the parts of an array whose
/// `type` is one of `kinds` (`{"type":"text","text":…}` and the like).
pub fn text_parts<'a>(content: Option<&'a Value>, kinds: &'static [&'static str]) -> Vec<&'a str> {
    match content {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str).is_some_and(|t| kinds.contains(&t)))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}

/// The bytes of a call's fields that are strings (`name`, `arguments`) or,
/// like Anthropic's `input`, JSON the model wrote.
pub fn call_bytes(call: &Value, fields: &[&str]) -> usize {
    fields
        .iter()
        .filter_map(|f| call.pointer(f))
        .map(|v| v.as_str().map_or_else(|| v.to_string().len(), str::len))
        .sum()
}

/// `model`, else the first known entry of the `models` fallback list.
pub fn pick_model(req: &Value) -> Result<&'static ModelSpec, Refusal> {
    let primary = req.get("model").and_then(Value::as_str);
    let fallbacks = req.get("models").and_then(Value::as_array).into_iter().flatten();
    let candidates: Vec<&str> = primary.into_iter().chain(fallbacks.filter_map(Value::as_str)).collect();
    if let Some(m) = candidates.iter().find_map(|c| catalogue::find(c)) {
        return Ok(m);
    }
    let message = match candidates.first() {
        Some(c) => format!("{c} is not a valid model ID"),
        None => "No models provided".to_string(),
    };
    Err(Refusal::new(400, message))
}
