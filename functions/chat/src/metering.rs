//! From an exchange's outcome to its charge and usage row, the same for every
//! settler: the owner at the end of the exchange, or the sweep after the
//! owner died (`wallet/sweep.rs`).

use dexto_shared::billing::{charge, Charge, Observed};
use dexto_shared::http::now_ms;
use dexto_shared::money::{Markup, Micros};
use dexto_shared::usage::UpstreamUsage;
use dexto_shared::wallet::{ExchangeTerms, UsageRecord};
use serde_json::json;

/// Client-supplied metadata recorded with the usage row (bounded, never trusted).
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    pub source: Option<String>,
    pub session_id: Option<String>,
    pub version: Option<String>,
}

impl ClientMeta {
    pub fn from_headers(headers: &worker::Headers) -> ClientMeta {
        let read = |name: &str, max: usize| {
            headers
                .get(name)
                .ok()
                .flatten()
                .map(|v| v.trim().chars().take(max).collect::<String>())
                .filter(|v| !v.is_empty())
        };
        ClientMeta {
            source: read("X-Dexto-Source", 16),
            session_id: read("X-Dexto-Session-ID", 128),
            version: read("X-Dexto-Version", 32),
        }
    }
}

/// What a finished (or abandoned) upstream exchange produced.
#[derive(Default)]
pub struct Outcome {
    pub usage: Option<UpstreamUsage>,
    pub output_bytes: usize,
    pub generation_id: Option<String>,
    pub cancelled: bool,
    pub upstream_status: u16,
}

/// What the outcome costs under the billing policy (never above the hold).
pub fn price(terms: &ExchangeTerms, outcome: &Outcome) -> Charge {
    let seen = Observed { prompt_estimate: terms.prompt_estimate, output_bytes: outcome.output_bytes };
    charge(outcome.usage.as_ref(), &terms.model, Markup::from_bps(terms.markup_bps), terms.hold, seen)
}

pub fn record(terms: &ExchangeTerms, outcome: &Outcome, charge: &Charge) -> UsageRecord {
    let u = outcome.usage.clone().unwrap_or_default();
    UsageRecord {
        request_id: terms.request_id.clone(),
        user_id: terms.user_id.clone(),
        key_id: terms.key_id.clone(),
        model: terms.model.id.clone(),
        generation_id: outcome.generation_id.clone(),
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_tokens: u.cached_tokens,
        reasoning_tokens: u.reasoning_tokens,
        provider_cost: charge.provider_cost,
        user_price: charge.user_price,
        price_basis: charge.basis,
        billing_status: charge.status,
        upstream_status: Some(outcome.upstream_status),
        stream: terms.stream,
        cancelled: outcome.cancelled,
        session_id: terms.session_id.clone(),
        client_source: terms.client_source.clone(),
        client_version: terms.client_version.clone(),
        latency_ms: now_ms() - terms.started_ms,
        created_at: now_ms(),
        markup_bps: Some(terms.markup_bps),
        api: terms.dialect,
    }
}

/// The one structured line per settled request (no prompt, no key).
pub fn log(settler: &str, r: &UsageRecord, charge: &Charge, hold: Micros, balance: Option<Micros>, extra: serde_json::Value) {
    let mut line = json!({
        "request_id": r.request_id, "user_id": r.user_id, "key_id": r.key_id, "model": r.model,
        "generation_id": r.generation_id, "settled_by": settler, "api": r.api,
        "stream": r.stream, "cancelled": r.cancelled, "status": r.upstream_status,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "provider_cost_micros": r.provider_cost.0, "price_micros": r.user_price.0, "hold_micros": hold.0,
        "excess_micros": charge.excess.0,
        "price_basis": r.price_basis.as_str(), "billing_status": r.billing_status.as_str(),
        "balance_micros": balance.map(|b| b.0), "latency_ms": r.latency_ms,
    });
    if let (Some(line), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
        line.extend(extra.clone());
    }
    dexto_shared::log::event("chat.completion", line);
    if charge.excess.0 > 0 {
        // The upstream billed beyond the hold: not charged to the user, kept for an operator.
        dexto_shared::log::event("settle.excess", json!({"request_id": r.request_id, "user_id": r.user_id, "excess_micros": charge.excess.0}));
    }
}
