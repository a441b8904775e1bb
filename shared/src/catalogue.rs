//! The model catalogue: per-token prices and output limits read from the
//! upstream's `GET /models`. Prices are USD-per-token decimal strings upstream;
//! here they are exact picos.

use crate::money::Picos;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub created: i64,
    /// Pico-USD per prompt token.
    pub prompt_price: i64,
    /// Pico-USD per completion token.
    pub completion_price: i64,
    /// Pico-USD per request (rarely non-zero).
    pub request_price: i64,
    pub context_length: u64,
    /// The provider's cap on output tokens, when published.
    pub max_output: Option<u64>,
    /// Pico-USD per input image (`pricing.image`), on top of its tokens.
    #[serde(default)]
    pub image_price: i64,
    /// Pico-USD per prompt token written to a prompt cache
    /// (`pricing.input_cache_write`; Anthropic bills writes above the prompt price).
    #[serde(default)]
    pub cache_write_price: i64,
    /// `architecture.input_modalities` lists "image".
    #[serde(default)]
    pub accepts_images: bool,
}

/// Output asked of a model without a published cap, however long the prompt
/// looks: the forwarded `max_tokens` bounds it, the hold covers it.
const MIN_UNCAPPED_OUTPUT: u64 = 1_024;

impl ModelInfo {
    /// Token cost at list price: used when the upstream reports tokens but no cost.
    pub fn token_cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Picos {
        Picos(self.prompt_price as i128)
            .times(prompt_tokens)
            .plus(Picos(self.completion_price as i128).times(completion_tokens))
            .plus(Picos(self.request_price as i128))
    }

    /// The output a request without its own limit is given (and held for):
    /// the provider's cap, else what a typical tokenisation of the prompt
    /// leaves of the context window, never less than a useful minimum.
    pub fn output_cap(&self, typical_prompt: u64) -> u64 {
        let room = self.context_length.saturating_sub(typical_prompt);
        self.max_output.unwrap_or_else(|| room.max(self.context_length.min(MIN_UNCAPPED_OUTPUT))).max(1)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    pub models: HashMap<String, ModelInfo>,
    /// When the upstream list was fetched (Unix ms).
    pub fetched_at: i64,
}

impl Catalogue {
    /// Parses OpenRouter's `{"data":[Model…]}`. Models with unparseable prices are
    /// skipped: we cannot bill them, so we must not serve them.
    pub fn from_openrouter(body: &Value, fetched_at: i64) -> Option<Catalogue> {
        let data = body.get("data")?.as_array()?;
        let models = data
            .iter()
            .filter_map(parse_model)
            .map(|m| (m.id.clone(), m))
            .collect();
        Some(Catalogue { models, fetched_at })
    }

    pub fn get(&self, id: &str) -> Option<&ModelInfo> {
        self.models.get(id)
    }
}

fn parse_model(m: &Value) -> Option<ModelInfo> {
    let price = |field: &str| -> Option<i64> {
        match m.pointer(&format!("/pricing/{field}")) {
            None | Some(Value::Null) => Some(0),
            Some(Value::String(s)) => Picos::parse_usd(s).ok().and_then(|p| i64::try_from(p.0).ok()),
            Some(Value::Number(n)) => Picos::parse_usd(&n.to_string()).ok().and_then(|p| i64::try_from(p.0).ok()),
            Some(_) => None,
        }
    };
    let context_length = m
        .get("context_length")
        .and_then(Value::as_u64)
        .or_else(|| m.pointer("/top_provider/context_length").and_then(Value::as_u64))?;
    let prompt_price = price("prompt")?;
    let completion_price = price("completion")?;
    // OpenRouter marks "variable" pricing with -1 (e.g. auto routers): not billable up front.
    if prompt_price < 0 || completion_price < 0 {
        return None;
    }
    Some(ModelInfo {
        id: m.get("id")?.as_str()?.to_string(),
        name: m.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        created: m.get("created").and_then(Value::as_i64).unwrap_or(0),
        prompt_price,
        completion_price,
        request_price: price("request")?.max(0),
        context_length,
        max_output: m.pointer("/top_provider/max_completion_tokens").and_then(Value::as_u64),
        image_price: price("image")?.max(0),
        cache_write_price: price("input_cache_write")?.max(0),
        accepts_images: m
            .pointer("/architecture/input_modalities")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|v| v.as_str() == Some("image"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({"data":[
            {"id":"openai/gpt-4o","name":"OpenAI: GPT-4o","created":1715367049,"context_length":128000,
             "pricing":{"prompt":"0.0000025","completion":"0.00001","request":"0","image":"0.003613"},
             "top_provider":{"context_length":128000,"max_completion_tokens":16384,"is_moderated":true}},
            {"id":"qwen/qwen3-coder:free","context_length":262144,"pricing":{"prompt":"0","completion":"0"},
             "top_provider":{"max_completion_tokens":null}},
            {"id":"anthropic/claude-haiku-4.5","context_length":200000,
             "pricing":{"prompt":"0.000001","completion":"0.000005","input_cache_read":"0.0000001","input_cache_write":"0.00000125"}},
            {"id":"openrouter/auto","context_length":2000000,"pricing":{"prompt":"-1","completion":"-1"}},
            {"id":"broken","pricing":{"prompt":"x","completion":"0"},"context_length":1}
        ]})
    }

    #[test]
    fn parses_prices_and_limits() {
        let c = Catalogue::from_openrouter(&sample(), 5).unwrap();
        let gpt = c.get("openai/gpt-4o").unwrap();
        assert_eq!((gpt.prompt_price, gpt.completion_price), (2_500_000, 10_000_000));
        assert_eq!(gpt.max_output, Some(16384));
        assert_eq!(gpt.token_cost(10427, 264), Picos(28_707_500_000));
        let free = c.get("qwen/qwen3-coder:free").unwrap();
        assert_eq!(free.max_output, None);
        assert_eq!(free.output_cap(1000), 261_144);
        assert_eq!(free.output_cap(300_000), 1_024, "a long prompt never collapses the cap to nothing");
        assert!(!gpt.accepts_images);
        assert_eq!(gpt.image_price, 3_613_000_000);
        assert!(c.get("openrouter/auto").is_none(), "variable pricing is not billable");
        assert!(c.get("broken").is_none());
        assert_eq!(gpt.cache_write_price, 0, "none listed");
        assert_eq!(c.get("anthropic/claude-haiku-4.5").unwrap().cache_write_price, 1_250_000);
        assert_eq!(c.models.len(), 3);
    }
}
