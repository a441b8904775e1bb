//! Usage in the Messages and Responses shapes, read into the one
//! `UpstreamUsage` settlement bills, with the same meaning in every dialect
//! so the same call prices the same whichever API carried it:
//! - `prompt_tokens`: every prompt token. Anthropic's `input_tokens` exclude
//!   the tokens read from and written to the prompt cache, so those are added
//!   back; Responses' `input_tokens` include cached ones, like chat's.
//! - `cached_tokens` / `cache_write_tokens`: the parts of the prompt read
//!   from / written to the cache (Anthropic's `cache_read_input_tokens` /
//!   `cache_creation_input_tokens`; Responses' `input_tokens_details`).
//! - `completion_tokens`: every output token, reasoning and thinking included
//!   (`output_tokens` in both), `reasoning_tokens` the part reported as such.
//! - OpenRouter's additions (`cost`, `cost_details`, `is_byok`) as chat's.
//!
//! Each shape is translated to chat's and read by `UpstreamUsage::from_json`:
//! one reader decides what counts as reported and how money is parsed.

use super::Dialect;
use crate::usage::UpstreamUsage;
use serde_json::{json, Value};

/// Anthropic-shape `usage` (a Messages reply, or `message_start` +
/// `message_delta` merged). `None` when it reports neither tokens nor cost.
pub fn from_messages_usage(usage: &Value) -> Option<UpstreamUsage> {
    let obj = usage.as_object()?;
    let count = |field: &str| obj.get(field).and_then(Value::as_u64);
    let (input, read, written) = (count("input_tokens"), count("cache_read_input_tokens"), count("cache_creation_input_tokens"));
    let prompt = (input.is_some() || read.is_some() || written.is_some()).then(|| input.unwrap_or(0) + read.unwrap_or(0) + written.unwrap_or(0));
    UpstreamUsage::from_json(&json!({
        "prompt_tokens": prompt,
        "completion_tokens": obj.get("output_tokens"),
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        "cost": obj.get("cost"),
        "cost_details": obj.get("cost_details"),
        "is_byok": obj.get("is_byok"),
    }))
}

/// Responses-shape `usage`. `None` when it reports neither tokens nor cost.
pub fn from_responses_usage(usage: &Value) -> Option<UpstreamUsage> {
    let obj = usage.as_object()?;
    UpstreamUsage::from_json(&json!({
        "prompt_tokens": obj.get("input_tokens"),
        "completion_tokens": obj.get("output_tokens"),
        "prompt_tokens_details": {
            "cached_tokens": usage.pointer("/input_tokens_details/cached_tokens"),
            "cache_write_tokens": usage.pointer("/input_tokens_details/cache_write_tokens"),
        },
        "completion_tokens_details": {"reasoning_tokens": usage.pointer("/output_tokens_details/reasoning_tokens")},
        "cost": obj.get("cost"),
        "cost_details": obj.get("cost_details"),
        "is_byok": obj.get("is_byok"),
    }))
}

impl Dialect {
    /// A `usage` object in this dialect's shape.
    pub fn usage(self, usage: &Value) -> Option<UpstreamUsage> {
        match self {
            Dialect::Chat => UpstreamUsage::from_json(usage),
            Dialect::Messages => from_messages_usage(usage),
            Dialect::Responses => from_responses_usage(usage),
        }
    }

    /// What billing reads of a non-streamed reply: its usage, its generation
    /// id (`generation_id`) and the UTF-8 bytes of output it delivered (text,
    /// reasoning, tool calls: the estimate when no usage came back).
    pub fn read_reply(self, reply: &Value) -> (Option<UpstreamUsage>, Option<String>, usize) {
        let usage = reply.get("usage").and_then(|u| self.usage(u));
        let id = reply.get("id").and_then(Value::as_str).map(|id| self.generation_id(id));
        (usage, id, self.reply_output_bytes(reply))
    }

    fn reply_output_bytes(self, reply: &Value) -> usize {
        let list = |value: &Value, field: &str| value.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
        let text = |value: &Value, field: &str| value.get(field).and_then(Value::as_str).map_or(0, str::len);
        let json = |value: &Value, field: &str| value.get(field).filter(|v| !v.is_null()).map_or(0, |v| v.to_string().len());
        match self {
            Dialect::Chat => list(reply, "choices")
                .iter()
                .filter_map(|choice| choice.get("message"))
                .map(|m| text(m, "content") + text(m, "reasoning") + json(m, "tool_calls"))
                .sum(),
            Dialect::Messages => list(reply, "content").iter().map(|b| text(b, "text") + text(b, "thinking") + json(b, "input")).sum(),
            Dialect::Responses => list(reply, "output")
                .iter()
                .map(|item| {
                    let parts: usize = [list(item, "content"), list(item, "summary")].concat().iter().map(|p| text(p, "text") + text(p, "refusal")).sum();
                    parts + text(item, "arguments") + text(item, "input")
                })
                .sum(),
        }
    }
}
