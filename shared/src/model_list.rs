//! What `/v1/models` lists and `/v1/chat/completions` accepts: the upstream
//! catalogue, narrowed by the operator's allow-list (`allowed_models`), priced
//! with the default or per-model markup.

use crate::catalogue::{Catalogue, ModelInfo};
use crate::money::{Markup, Picos};
use crate::time::rfc3339_millis;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The operator's allow-list. Empty means every priced model is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    /// model id → its own markup (None: the default markup).
    entries: BTreeMap<String, Option<Markup>>,
}

impl AllowList {
    /// From `allowed_models` rows (`model_id`, `markup_bps`).
    pub fn from_rows(rows: impl IntoIterator<Item = (String, Option<i64>)>) -> AllowList {
        let entries = rows
            .into_iter()
            .map(|(id, bps)| (id, bps.map(|b| Markup::from_bps(b.clamp(0, u32::MAX as i64) as u32))))
            .collect();
        AllowList { entries }
    }

    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn permits(&self, model: &str) -> bool {
        self.is_open() || self.entries.contains_key(model)
    }

    /// The markup for a model: its own when set, else the default. A per-model
    /// markup replaces the default; it is never below 1.0 (`Markup::from_bps`).
    pub fn markup_for(&self, model: &str, default: Markup) -> Markup {
        self.entries.get(model).copied().flatten().unwrap_or(default)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Staleness of the catalogue copy being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    pub now_ms: i64,
    pub ttl_ms: i64,
}

fn price(picos: i64, markup: Markup) -> String {
    markup.apply(Picos(picos as i128)).usd_decimal()
}

fn model_json(m: &ModelInfo, markup: Markup) -> Value {
    let owner = m.id.split_once('/').map_or(m.id.as_str(), |(owner, _)| owner);
    let display = if m.name.is_empty() { m.id.as_str() } else { m.name.as_str() };
    json!({
        "id": m.id, "object": "model", "created": m.created, "owned_by": owner,
        "display": display,
        "context_length": m.context_length,
        "max_output": m.max_output,
        // Our prices: USD per token after markup, exact decimal strings.
        "pricing": {
            "prompt": price(m.prompt_price, markup),
            "completion": price(m.completion_price, markup),
            "request": price(m.request_price, markup),
        },
        "markup": markup.decimal(),
    })
}

/// The models a caller may use, sorted by id.
pub fn listed<'a>(cat: &'a Catalogue, allow: &AllowList) -> Vec<&'a ModelInfo> {
    let mut models: Vec<&ModelInfo> = cat.models.values().filter(|m| allow.permits(&m.id)).collect();
    models.sort_by(|a, b| a.id.cmp(&b.id));
    models
}

/// The `/v1/models` body: the OpenAI list plus `display`, prices and limits per
/// model, and how old the copy is (`fetchedAt`, `age_seconds`, `stale`).
pub fn list_json(cat: &Catalogue, allow: &AllowList, default_markup: Markup, fresh: Freshness) -> Value {
    let data: Vec<Value> = listed(cat, allow).into_iter().map(|m| model_json(m, allow.markup_for(&m.id, default_markup))).collect();
    let age_ms = (fresh.now_ms - cat.fetched_at).max(0);
    json!({
        "object": "list",
        "data": data,
        "fetchedAt": rfc3339_millis(cat.fetched_at),
        "age_seconds": age_ms / 1000,
        "stale": age_ms >= fresh.ttl_ms,
        "ttl_seconds": fresh.ttl_ms / 1000,
        "curated": !allow.is_open(),
    })
}

/// One model (`/v1/models/{id}`), if listed.
pub fn model_entry(cat: &Catalogue, allow: &AllowList, default_markup: Markup, id: &str) -> Option<Value> {
    let m = cat.get(id).filter(|m| allow.permits(&m.id))?;
    Some(model_json(m, allow.markup_for(id, default_markup)))
}

/// A model id taken from a URL path (`/v1/models/openai/gpt-4o`): ids contain
/// `/` and `:`, which clients may send raw or percent-encoded.
pub fn model_id_from_path(raw: &str) -> String {
    crate::url_query::percent_decode(raw, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let body = json!({"data":[
            {"id":"openai/gpt-4o","name":"OpenAI: GPT-4o","created":1715558400,"context_length":128000,
             "pricing":{"prompt":"0.0000025","completion":"0.00001"},"top_provider":{"max_completion_tokens":16384}},
            {"id":"qwen/qwen3-coder:free","context_length":262144,"pricing":{"prompt":"0","completion":"0"}},
            {"id":"mock/cheap","name":"Cheap","context_length":1000,"pricing":{"prompt":"0.00000015","completion":"0.0000006"}}
        ]});
        Catalogue::from_openrouter(&body, 1_769_508_000_000).unwrap()
    }

    #[test]
    fn open_list_prices_every_model_with_the_default_markup() {
        let fresh = Freshness { now_ms: 1_769_508_030_500, ttl_ms: 3_600_000 };
        let body = list_json(&catalogue(), &AllowList::default(), Markup::parse("1.2").unwrap(), fresh);
        assert_eq!(body["object"], "list");
        assert_eq!((body["age_seconds"].as_i64(), body["stale"].as_bool()), (Some(30), Some(false)));
        assert_eq!(body["fetchedAt"], "2026-01-27T10:00:00.000Z");
        let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["mock/cheap", "openai/gpt-4o", "qwen/qwen3-coder:free"]);
        let gpt = &body["data"][1];
        assert_eq!((gpt["object"].as_str(), gpt["owned_by"].as_str(), gpt["display"].as_str()), (Some("model"), Some("openai"), Some("OpenAI: GPT-4o")));
        assert_eq!((gpt["pricing"]["prompt"].as_str(), gpt["pricing"]["completion"].as_str()), (Some("0.000003"), Some("0.000012")));
        assert_eq!((gpt["max_output"].as_u64(), gpt["context_length"].as_u64()), (Some(16384), Some(128000)));
        assert_eq!(body["data"][2]["display"], "qwen/qwen3-coder:free");
        assert_eq!(body["data"][2]["max_output"], Value::Null);
        // 0.00000015 × 1.2 = 0.00000018 exactly; never float noise.
        assert_eq!(body["data"][0]["pricing"]["prompt"], "0.00000018");
    }

    #[test]
    fn allow_list_narrows_and_reprices() {
        let allow = AllowList::from_rows([("openai/gpt-4o".to_string(), Some(15_000)), ("gone/model".to_string(), None)]);
        assert!(allow.permits("openai/gpt-4o") && !allow.permits("mock/cheap"));
        assert_eq!(allow.markup_for("gone/model", Markup::NONE), Markup::NONE);
        let body = list_json(&catalogue(), &allow, Markup::NONE, Freshness { now_ms: 1_769_511_600_000, ttl_ms: 3_600_000 });
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "only allowed models that the catalogue prices");
        assert_eq!((data[0]["pricing"]["prompt"].as_str(), data[0]["markup"].as_str()), (Some("0.00000375"), Some("1.5")));
        assert_eq!(body["stale"], true);
        assert_eq!(body["curated"], true);
        assert!(model_entry(&catalogue(), &allow, Markup::NONE, "mock/cheap").is_none());
        assert!(model_entry(&catalogue(), &allow, Markup::NONE, "openai/gpt-4o").is_some());
    }

    #[test]
    fn model_ids_come_from_paths_raw_or_encoded() {
        assert_eq!(model_id_from_path("openai/gpt-4o"), "openai/gpt-4o");
        assert_eq!(model_id_from_path("qwen%2Fqwen3-coder%3Afree"), "qwen/qwen3-coder:free");
        assert_eq!(model_id_from_path("a%2"), "a%2");
        assert_eq!(model_id_from_path("%zz"), "%zz");
    }

    #[test]
    fn per_model_markup_never_goes_below_cost() {
        let allow = AllowList::from_rows([("m".to_string(), Some(5_000))]);
        assert_eq!(allow.markup_for("m", Markup::parse("2").unwrap()), Markup::NONE);
    }
}
