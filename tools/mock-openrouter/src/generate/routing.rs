//! Provider routing as OpenRouter serves it, reduced to what billing needs:
//! every model has its list-price provider ("Mock") and a dearer one
//! ("Pricey", `PRICEY_FACTOR` × the list price). `provider.order` or
//! `provider.only` naming "pricey" first prefers it; `provider.max_price`
//! (USD per million tokens) excludes any provider above it; with
//! `allow_fallbacks: false` or `only`, no other provider is tried, and when none
//! is left the answer is OpenRouter's 404.

use crate::catalogue::ModelSpec;
use crate::money::Usd;
use super::Refusal;
use serde_json::Value;

pub const PRICEY_FACTOR: u64 = 3;

/// The provider serving a call and its price multiple of the list price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub provider: &'static str,
    pub factor: u64,
}

const LIST: Route = Route { provider: "Mock", factor: 1 };
const PRICEY: Route = Route { provider: "Pricey", factor: PRICEY_FACTOR };

pub fn route(req: &Value, model: &ModelSpec) -> Result<Route, Refusal> {
    let Some(prefs) = req.get("provider").filter(|p| p.is_object()) else {
        return Ok(LIST);
    };
    let names = |field: &str| -> Vec<String> {
        prefs.get(field).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect()
    };
    let (order, only) = (names("order"), names("only"));
    let fallbacks = prefs.get("allow_fallbacks").and_then(Value::as_bool).unwrap_or(true) && only.is_empty();
    let preferred = if order.first().or(only.first()).is_some_and(|n| n == "pricey") { PRICEY } else { LIST };
    let candidates: Vec<Route> = if fallbacks { vec![preferred, if preferred == PRICEY { LIST } else { PRICEY }] } else { vec![preferred] };
    candidates
        .into_iter()
        .find(|r| within_max_price(prefs.get("max_price"), model, *r))
        .ok_or_else(|| Refusal::new(404, "No endpoints found matching your provider preferences (max_price)."))
}

/// Per million tokens, as `max_price` is written.
fn within_max_price(max: Option<&Value>, model: &ModelSpec, route: Route) -> bool {
    let Some(max) = max else { return true };
    let fits = |field: &str, per_token: Usd| {
        max.get(field).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))).is_none_or(|limit| {
            let per_million = Usd::from_f64(limit).0;
            per_token.times(route.factor).times(1_000_000).0 <= per_million
        })
    };
    fits("prompt", model.prompt_price()) && fits("completion", model.completion_price())
}
