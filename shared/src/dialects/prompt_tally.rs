//! What the Messages and Responses readers count of a prompt on its way to
//! the `ChatRequest` the quote prices: the same bound as chat's (the body's
//! bytes without image payloads, plus the template allowance per turn and
//! per tool), the same typical estimate, the same fields read the same way.

use crate::chat_request::{
    estimate_tokens, fallbacks_field, has_key, invalid, model_field, refuse_unpriced_features, stream_field, template_tokens, ChatRequest, RequestError,
    TYPICAL_IMAGE_TOKENS,
};
use crate::prompt_prefix::{Conversation, PromptPrints};
use serde_json::{Map, Value};

/// Template tokens a typical estimate adds per turn (chat's per-message 4).
const TYPICAL_TURN_TOKENS: u64 = 4;
/// The typical estimate's fixed part (chat's 8).
const TYPICAL_FIXED_TOKENS: u64 = 8;

#[derive(Default)]
pub(super) struct PromptTally {
    /// Typical tokens (bytes / 3): estimates, never holds.
    estimate: u64,
    /// Turns the provider's template wraps (messages, input items, a system prompt).
    turns: u64,
    tools: u64,
    images: u64,
    /// Bytes of image parts' JSON: priced per image, not per byte.
    media_bytes: usize,
}

impl PromptTally {
    pub fn turn(&mut self) {
        self.turns += 1;
        self.estimate += TYPICAL_TURN_TOKENS;
    }

    pub fn text(&mut self, text: &str) {
        self.estimate += estimate_tokens(text.len());
    }

    /// JSON the model reads as text (tool schemas, call arguments).
    pub fn json(&mut self, value: &Value) {
        self.estimate += estimate_tokens(value.to_string().len());
    }

    pub fn tools(&mut self, tools: &[Value]) {
        for tool in tools {
            self.tool(tool, 1);
        }
    }

    /// A tool definition that offers `held` tools (a Responses `namespace`
    /// offers the function tools it holds): each gets the template allowance.
    pub fn tool(&mut self, definition: &Value, held: u64) {
        self.tools += held;
        self.json(definition);
    }

    /// An image part: its payload leaves the byte bound, the hold prices it per image.
    pub fn image(&mut self, part: &Value) {
        self.images += 1;
        self.media_bytes += part.to_string().len();
        self.estimate += TYPICAL_IMAGE_TOKENS;
    }
}

/// The fields every dialect reads alike: model, stream, fallbacks, routing
/// and OpenRouter's per-use extras (refused).
pub(super) struct Common {
    pub model: String,
    pub stream: bool,
    pub fallbacks: Vec<String>,
    pub routing: bool,
}

impl Common {
    pub fn read(obj: &Map<String, Value>) -> Result<Common, RequestError> {
        refuse_unpriced_features(obj)?;
        Ok(Common {
            model: model_field(obj)?,
            stream: stream_field(obj)?,
            fallbacks: fallbacks_field(obj)?,
            routing: crate::provider_routing::asks_for_routing(obj),
        })
    }

    /// The request for the quote. `output`: the ceiling the client set, and
    /// whether the body carries the dialect's limit field. `conversation`:
    /// how to fingerprint the body for the counted-prefix bound (not with
    /// fallbacks: an earlier count may come from another model's tokenizer).
    pub fn into_request(self, body: &[u8], json: &Value, tally: PromptTally, output: (Option<u64>, bool), conversation: &Conversation) -> ChatRequest {
        let text_bytes = body.len().saturating_sub(tally.media_bytes) as u64;
        let template = template_tokens(tally.turns, tally.tools);
        let prints = if self.fallbacks.is_empty() { PromptPrints::of_conversation(body, conversation, template, text_bytes) } else { None };
        let (max_output, limit_field) = output;
        ChatRequest {
            model: self.model,
            stream: self.stream,
            max_output,
            n: 1,
            prompt_estimate: TYPICAL_FIXED_TOKENS + tally.estimate,
            prompt_bound: text_bytes + template,
            images: tally.images,
            limit_fields: (limit_field, false),
            fallbacks: self.fallbacks,
            routing: self.routing,
            prints,
            cache_writes: has_key(json, "cache_control"),
        }
    }
}

/// The fields a dialect refuses outright: (field, why and what to do instead).
pub(super) fn refuse_fields(obj: &Map<String, Value>, refused: &[(&str, &str)]) -> Result<(), RequestError> {
    for (field, why) in refused {
        if obj.get(*field).is_some_and(|v| !v.is_null() && v != &Value::Bool(false)) {
            return Err(invalid(format!("`{field}` is not supported: {why}")));
        }
    }
    Ok(())
}

/// Light type checks of optional fields, so a malformed value is a 400 that
/// names it rather than an upstream refusal.
pub(super) fn check_types(obj: &Map<String, Value>, fields: &[(&str, Kind)]) -> Result<(), RequestError> {
    for (field, kind) in fields {
        let Some(value) = obj.get(*field).filter(|v| !v.is_null()) else { continue };
        let ok = match kind {
            Kind::Number => value.is_number(),
            Kind::Integer => value.is_u64(),
            Kind::Bool => value.is_boolean(),
            Kind::String => value.is_string(),
            Kind::Object => value.is_object(),
            Kind::Strings => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        };
        if !ok {
            return Err(invalid(format!("`{field}` must be {}", kind.described())));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Number,
    Integer,
    Bool,
    String,
    Object,
    Strings,
}

impl Kind {
    fn described(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Integer => "a non-negative integer",
            Kind::Bool => "a boolean",
            Kind::String => "a string",
            Kind::Object => "an object",
            Kind::Strings => "an array of strings",
        }
    }
}
