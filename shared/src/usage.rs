//! The upstream's final `usage` object (OpenRouter shape, OpenAI-compatible).
//! `cost` is read from its decimal text into exact picos; absent is not zero.
//! The other dialects' usage shapes are read into this same type
//! (`dialects::usage`), with the same meaning for every field.

use crate::money::Picos;
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamUsage {
    /// Every prompt token, those read from and written to a prompt cache included.
    pub prompt_tokens: u64,
    /// Every output token, reasoning included.
    pub completion_tokens: u64,
    /// Prompt tokens read from a prompt cache (part of `prompt_tokens`).
    pub cached_tokens: u64,
    /// Prompt tokens written to a prompt cache (part of `prompt_tokens`).
    pub cache_write_tokens: u64,
    /// Reasoning tokens (part of `completion_tokens`).
    pub reasoning_tokens: u64,
    /// What OpenRouter charged the key (`usage.cost`), when reported.
    pub cost: Option<Picos>,
    /// The provider's own charge (`cost_details.upstream_inference_cost`).
    pub upstream_inference_cost: Option<Picos>,
    pub is_byok: bool,
}

impl UpstreamUsage {
    /// Parses a `usage` object; `None` when it is missing, null or not an object.
    pub fn from_json(usage: &Value) -> Option<UpstreamUsage> {
        let obj = usage.as_object()?;
        let int = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        // A negative cost is nonsense from upstream: treat it as not reported
        // rather than let it credit the user.
        let money = |v: Option<&Value>| match v {
            Some(Value::Number(n)) => Picos::parse_usd(&n.to_string()).ok(),
            Some(Value::String(s)) => Picos::parse_usd(s).ok(),
            _ => None,
        }
        .filter(|p| p.0 >= 0);
        let details = obj.get("cost_details");
        // `"usage": {}` reports nothing, nor do counts that are not numbers:
        // neither must be billed as a free call.
        let counted = ["prompt_tokens", "completion_tokens"].iter().any(|k| obj.get(*k).is_some_and(Value::is_u64));
        if !counted && money(obj.get("cost")).is_none() {
            return None;
        }
        Some(UpstreamUsage {
            prompt_tokens: int(obj.get("prompt_tokens")),
            completion_tokens: int(obj.get("completion_tokens")),
            cached_tokens: int(usage.pointer("/prompt_tokens_details/cached_tokens")),
            cache_write_tokens: int(usage.pointer("/prompt_tokens_details/cache_write_tokens")),
            reasoning_tokens: int(usage.pointer("/completion_tokens_details/reasoning_tokens")),
            cost: money(obj.get("cost")),
            upstream_inference_cost: money(details.and_then(|d| d.get("upstream_inference_cost"))),
            is_byok: obj.get("is_byok").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// What the request cost us upstream, if the upstream said so. For BYOK the
    /// provider's charge is separate from OpenRouter's fee, and we pay both.
    pub fn reported_provider_cost(&self) -> Option<Picos> {
        match (self.is_byok, self.cost, self.upstream_inference_cost) {
            (true, fee, Some(provider)) => Some(provider.plus(fee.unwrap_or(Picos::ZERO))),
            (_, Some(cost), _) => Some(cost),
            (false, None, Some(provider)) => Some(provider),
            _ => None,
        }
    }
}

/// A `GET /generation?id=` record (`{"data":{…}}`): its usage and whether
/// the generation was cancelled. `None` when it reports neither tokens nor cost.
pub fn from_generation(body: &Value) -> Option<(UpstreamUsage, bool)> {
    let g = body.get("data")?;
    let usage = serde_json::json!({
        "prompt_tokens": g.get("tokens_prompt"),
        "completion_tokens": g.get("tokens_completion"),
        "cost": g.get("total_cost"),
        "is_byok": g.get("is_byok"),
        "cost_details": {"upstream_inference_cost": g.get("upstream_inference_cost")},
        "completion_tokens_details": {"reasoning_tokens": g.get("native_tokens_reasoning")},
    });
    let cancelled = g.get("cancelled").and_then(Value::as_bool).unwrap_or(false);
    Some((UpstreamUsage::from_json(&usage)?, cancelled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_openrouter_usage() {
        let u = UpstreamUsage::from_json(&json!({
            "prompt_tokens":10427,"completion_tokens":264,"total_tokens":10691,"cost":0.0033789,"is_byok":false,
            "prompt_tokens_details":{"cached_tokens":12,"cache_write_tokens":30},
            "completion_tokens_details":{"reasoning_tokens":7},
            "cost_details":{"upstream_inference_cost":0.0033789}
        }))
        .unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens), (10427, 264, 12, 30, 7));
        assert_eq!(u.reported_provider_cost(), Some(Picos(3_378_900_000)));
    }

    #[test]
    fn absent_cost_is_not_zero() {
        let u = UpstreamUsage::from_json(&json!({"prompt_tokens":3,"completion_tokens":4,"cost":null})).unwrap();
        assert_eq!(u.reported_provider_cost(), None);
        assert_eq!(UpstreamUsage::from_json(&json!(null)), None);
    }

    #[test]
    fn empty_or_negative_usage_is_not_trusted() {
        assert_eq!(UpstreamUsage::from_json(&json!({})), None);
        let u = UpstreamUsage::from_json(&json!({"prompt_tokens":1,"completion_tokens":1,"cost":-0.5})).unwrap();
        assert_eq!(u.reported_provider_cost(), None);
    }

    #[test]
    fn counts_that_are_not_numbers_are_not_a_report() {
        assert_eq!(UpstreamUsage::from_json(&json!({"prompt_tokens":"ten","completion_tokens":null})), None);
        assert_eq!(UpstreamUsage::from_json(&json!({"cost":-0.5})), None);
        assert_eq!(UpstreamUsage::from_json(&json!({"cost":"0.001"})).and_then(|u| u.cost), Some(Picos(1_000_000_000)));
    }

    #[test]
    fn byok_adds_provider_charge_to_fee() {
        let u = UpstreamUsage::from_json(&json!({
            "prompt_tokens":1,"completion_tokens":1,"cost":0.00005,"is_byok":true,
            "cost_details":{"upstream_inference_cost":0.001}
        }))
        .unwrap();
        assert_eq!(u.reported_provider_cost(), Some(Picos(1_050_000_000)));
    }

    #[test]
    fn reads_a_generation_record() {
        let body = serde_json::json!({"data":{"id":"gen-1","total_cost":0.0012,"upstream_inference_cost":0.0012,"is_byok":false,
            "tokens_prompt":10,"tokens_completion":200,"native_tokens_reasoning":0,"cancelled":true}});
        let (u, cancelled) = from_generation(&body).unwrap();
        assert!(cancelled);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (10, 200));
        assert_eq!(u.reported_provider_cost(), Some(Picos(1_200_000_000)));
        assert!(from_generation(&serde_json::json!({"data":{"id":"gen-2"}})).is_none());
    }
}
