//! OpenRouter provider routing (`provider`: `order`, `only`, `ignore`, `sort`,
//! `quantizations`, …) lets a request choose among the providers of a model,
//! some dearer than the catalogue price the hold assumes. A request that asks
//! for routing is therefore bounded at the upstream: its `provider.max_price`
//! is set to the prices the hold covers (the client's own, lower ceilings are
//! kept), so no provider above them is chosen. With `models` fallbacks the
//! ceiling is the field-wise maximum of their prices and the hold is sized
//! at that ceiling for every fallback (`PriceCeiling::price`), so whichever
//! model and provider serve the call, its cost is within the hold.
//!
//! Requests without `provider` are forwarded untouched: the upstream's
//! default routing serves the catalogue price, and anything it reports
//! beyond the hold is never charged (`settle.excess`, counted in
//! `/admin/metrics`).

use crate::catalogue::ModelInfo;
use crate::money::{Micros, Picos};
use serde_json::{Map, Value};

/// The highest price per unit among the models a request may be served by
/// (pico-USD per prompt token, completion token, request, input image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriceCeiling {
    pub prompt: i64,
    pub completion: i64,
    pub request: i64,
    pub image: i64,
}

impl PriceCeiling {
    pub fn of<'a>(models: impl IntoIterator<Item = &'a ModelInfo>) -> PriceCeiling {
        models.into_iter().fold(PriceCeiling { prompt: 0, completion: 0, request: 0, image: 0 }, |c, m| PriceCeiling {
            prompt: c.prompt.max(m.prompt_price),
            completion: c.completion.max(m.completion_price),
            request: c.request.max(m.request_price),
            image: c.image.max(m.image_price),
        })
    }

    /// `model` as the hold must price it when routing may pick any provider
    /// up to this ceiling.
    pub fn price(&self, model: &ModelInfo) -> ModelInfo {
        ModelInfo { prompt_price: self.prompt, completion_price: self.completion, request_price: self.request, image_price: self.image, ..model.clone() }
    }

    /// OpenRouter's `max_price`: USD per million tokens for prompt and
    /// completion, USD per request and per image. Pico-USD per token × 10⁶
    /// tokens / 10¹² = the same integer read as micro-USD: exact decimals.
    fn max_price(&self) -> [(&'static str, String); 4] {
        [
            ("prompt", Micros(self.prompt).usd_trimmed()),
            ("completion", Micros(self.completion).usd_trimmed()),
            ("request", Picos(self.request as i128).usd_decimal()),
            ("image", Picos(self.image as i128).usd_decimal()),
        ]
    }
}

/// Whether the body asks for provider routing (a `provider` object).
pub fn asks_for_routing(body: &Map<String, Value>) -> bool {
    body.get("provider").is_some_and(Value::is_object)
}

/// The body with `provider.max_price` at most `ceiling` in every field: a
/// client's lower ceiling is kept, a higher or missing one is replaced.
/// `body` is a parsed JSON object with a `provider` object.
pub fn bound_routing(body: &[u8], ceiling: &PriceCeiling) -> Vec<u8> {
    let mut json: Map<String, Value> = serde_json::from_slice(body).expect("a parsed JSON object");
    if let Some(Value::Object(provider)) = json.get_mut("provider") {
        let mut max_price = match provider.remove("max_price") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (field, ours) in ceiling.max_price() {
            let ours_value: f64 = ours.parse().expect("a decimal");
            let theirs = max_price.get(field).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
            if !theirs.is_some_and(|t| t >= 0.0 && t <= ours_value) {
                max_price.insert(field.into(), serde_json::from_str(&ours).expect("a JSON number"));
            }
        }
        provider.insert("max_price".into(), Value::Object(max_price));
    }
    serde_json::to_vec(&json).expect("JSON serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, prompt: i64, completion: i64) -> ModelInfo {
        ModelInfo { id: id.into(), prompt_price: prompt, completion_price: completion, ..Default::default() }
    }

    #[test]
    fn the_ceiling_is_the_dearest_price_of_each_kind() {
        let (a, b) = (model("a", 2_500_000, 1_000_000), model("b", 150_000, 10_000_000));
        let c = PriceCeiling::of([&a, &b]);
        assert_eq!((c.prompt, c.completion), (2_500_000, 10_000_000));
        let priced = c.price(&a);
        assert_eq!((priced.id.as_str(), priced.prompt_price, priced.completion_price), ("a", 2_500_000, 10_000_000));
    }

    #[test]
    fn max_price_is_set_in_usd_per_million_tokens_and_keeps_a_lower_client_ceiling() {
        let c = PriceCeiling { prompt: 2_500_000, completion: 10_000_000, request: 0, image: 1_445_000_000 };
        let body = br#"{"model":"openai/gpt-4o","provider":{"order":["azure"],"max_price":{"prompt":1,"completion":99}},"messages":[]}"#;
        let out: Value = serde_json::from_slice(&bound_routing(body, &c)).unwrap();
        let max = &out["provider"]["max_price"];
        assert_eq!(max["prompt"], 1, "the client's lower prompt ceiling stays");
        assert_eq!(max["completion"], 10.0, "$0.00001 per token = $10 per million");
        assert_eq!((max["request"].as_f64(), max["image"].as_f64()), (Some(0.0), Some(0.001445)));
        assert_eq!(out["provider"]["order"], serde_json::json!(["azure"]), "the client's routing is kept");
        let none = br#"{"provider":{"sort":"throughput"}}"#;
        let out: Value = serde_json::from_slice(&bound_routing(none, &c)).unwrap();
        assert_eq!(out["provider"]["max_price"]["prompt"], 2.5);
    }

    #[test]
    fn only_a_provider_object_asks_for_routing() {
        let parse = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap();
        assert!(asks_for_routing(&parse(r#"{"provider":{"order":["openai"]}}"#)));
        assert!(!asks_for_routing(&parse(r#"{"provider":null}"#)));
        assert!(!asks_for_routing(&parse(r#"{"model":"m"}"#)));
    }
}
