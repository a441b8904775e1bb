//! The fixed model catalogue served by `GET /models` and used for chat
//! pricing. Deterministic on purpose: gateway tests assert prices and limits.

use crate::money::Usd;
use serde_json::{json, Value};

pub struct ModelSpec {
    pub id: &'static str,
    pub canonical_slug: &'static str,
    pub name: &'static str,
    pub created: u64,
    pub description: &'static str,
    pub tokenizer: &'static str,
    /// USD per token, as OpenRouter writes them (strings).
    pub prompt: &'static str,
    pub completion: &'static str,
    pub input_cache_read: &'static str,
    /// Price of a prompt token written to the cache (Anthropic), when listed.
    pub input_cache_write: Option<&'static str>,
    pub context_length: u64,
    pub max_completion_tokens: Option<u64>,
    pub is_moderated: bool,
    /// Accepts image input (`architecture.input_modalities`), priced per image.
    pub image: Option<&'static str>,
}

impl ModelSpec {
    pub fn prompt_price(&self) -> Usd {
        Usd::parse(self.prompt).expect("catalogue price")
    }
    pub fn completion_price(&self) -> Usd {
        Usd::parse(self.completion).expect("catalogue price")
    }

    fn to_json(&self) -> Value {
        let mut model = json!({
            "id": self.id,
            "canonical_slug": self.canonical_slug,
            "name": self.name,
            "created": self.created,
            "description": self.description,
            "context_length": self.context_length,
            "architecture": {
                "modality": "text->text",
                "input_modalities": if self.image.is_some() { json!(["text", "image"]) } else { json!(["text"]) },
                "output_modalities": ["text"],
                "tokenizer": self.tokenizer,
            },
            "pricing": {
                "prompt": self.prompt,
                "completion": self.completion,
                "request": "0",
                "image": self.image.unwrap_or("0"),
                "input_cache_read": self.input_cache_read,
            },
            "top_provider": {
                "context_length": self.context_length,
                "max_completion_tokens": self.max_completion_tokens,
                "is_moderated": self.is_moderated,
            },
            "per_request_limits": null,
            "supported_parameters": [
                "max_tokens", "temperature", "top_p", "stop", "seed",
                "tools", "tool_choice", "response_format",
            ],
        });
        if let Some(write) = self.input_cache_write {
            model["pricing"]["input_cache_write"] = json!(write);
        }
        model
    }
}

pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        id: "openai/gpt-4o-mini",
        canonical_slug: "openai/gpt-4o-mini-2024-07-18",
        name: "OpenAI: GPT-4o-mini",
        created: 1_721_260_800,
        description: "Mock of OpenAI's small GPT-4o model.",
        tokenizer: "GPT",
        prompt: "0.00000015",
        completion: "0.0000006",
        input_cache_read: "0.000000075",
        input_cache_write: None,
        context_length: 128_000,
        max_completion_tokens: Some(16_384),
        is_moderated: true,
        image: Some("0.003613"),
    },
    ModelSpec {
        id: "openai/gpt-4o",
        canonical_slug: "openai/gpt-4o",
        name: "OpenAI: GPT-4o",
        created: 1_715_558_400,
        description: "Mock of OpenAI's GPT-4o model.",
        tokenizer: "GPT",
        prompt: "0.0000025",
        completion: "0.00001",
        input_cache_read: "0.00000125",
        input_cache_write: None,
        context_length: 128_000,
        max_completion_tokens: Some(16_384),
        is_moderated: true,
        image: Some("0.003613"),
    },
    ModelSpec {
        id: "anthropic/claude-haiku-4.5",
        canonical_slug: "anthropic/claude-4.5-haiku-20251001",
        name: "Anthropic: Claude Haiku 4.5",
        created: 1_760_486_400,
        description: "Mock of Anthropic's Claude Haiku 4.5 model.",
        tokenizer: "Claude",
        prompt: "0.000001",
        completion: "0.000005",
        input_cache_read: "0.0000001",
        input_cache_write: Some("0.00000125"),
        context_length: 200_000,
        max_completion_tokens: Some(64_000),
        is_moderated: false,
        image: None,
    },
    ModelSpec {
        id: "qwen/qwen3-coder:free",
        canonical_slug: "qwen/qwen3-coder-480b-a35b-07-25",
        name: "Qwen: Qwen3 Coder 480B A35B (free)",
        created: 1_753_142_400,
        description: "Mock of a free model (zero prices, no completion cap).",
        tokenizer: "Qwen3",
        prompt: "0",
        completion: "0",
        input_cache_read: "0",
        input_cache_write: None,
        context_length: 262_144,
        max_completion_tokens: None,
        is_moderated: false,
        image: None,
    },
    ModelSpec {
        id: "mock/expensive",
        canonical_slug: "mock/expensive",
        name: "Mock: Expensive",
        created: 1_767_225_600,
        description: "High-priced, small-context model for budget tests.",
        tokenizer: "Other",
        prompt: "0.00001",
        completion: "0.00003",
        input_cache_read: "0.000005",
        input_cache_write: None,
        context_length: 8_192,
        max_completion_tokens: Some(4_096),
        is_moderated: false,
        image: None,
    },
    ModelSpec {
        id: "mock/no-max",
        canonical_slug: "mock/no-max",
        name: "Mock: No Max",
        created: 1_767_225_600,
        description: "Model without a max_completion_tokens limit.",
        tokenizer: "Other",
        prompt: "0.000001",
        completion: "0.000002",
        input_cache_read: "0.0000005",
        input_cache_write: None,
        context_length: 32_768,
        max_completion_tokens: None,
        is_moderated: false,
        image: None,
    },
    ModelSpec {
        id: "mock/output-only",
        canonical_slug: "mock/output-only",
        name: "Mock: Output Only",
        created: 1_767_225_600,
        description: "Free prompt, paid output: a call's cost equals its worst case exactly (capacity tests).",
        tokenizer: "Other",
        prompt: "0",
        completion: "0.00002",
        input_cache_read: "0",
        input_cache_write: None,
        context_length: 8_192,
        max_completion_tokens: Some(1_024),
        is_moderated: false,
        image: None,
    },
];

pub fn find(id: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.id == id)
}

/// Body of `GET /models`.
pub fn models_json() -> Value {
    let data: Vec<Value> = MODELS.iter().map(ModelSpec::to_json).collect();
    json!({ "data": data, "total_count": MODELS.len(), "links": { "next": null } })
}
