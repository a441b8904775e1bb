//! What a request may cost (the hold) and what it did cost (the charge).
//!
//! Policy (docs/ARCHITECTURE.md, "Billing policy" and "Who settles a hold"):
//! - the hold is a true upper bound: a prompt bound (UTF-8 bytes, never an
//!   average) and an output ceiling that is forwarded upstream as `max_tokens`,
//!   for the priciest model the upstream may serve, × markup, rounded up;
//! - when the wallet cannot cover the model's whole output ceiling, the
//!   ceiling is clamped to what it affords, down to a floor; below the floor
//!   the request is refused (402, saying what it needs);
//! - charge = upstream-reported cost × markup when reported (`reported_cost`);
//!   else reported tokens at list price × markup (`price_table`); else an
//!   estimate of what was observed (`estimate`). A charge never exceeds its
//!   hold: whatever the upstream reports beyond it is recorded as excess and
//!   flagged `needs_review`, never charged and never silently absorbed.

use crate::catalogue::ModelInfo;
use crate::chat_request::{estimate_tokens, ChatRequest};
use crate::hold::Quote;
use crate::money::{Markup, Micros};
use crate::usage::UpstreamUsage;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    ReportedCost,
    PriceTable,
    Estimate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    Billed,
    NeedsReview,
    Refunded,
}

impl PriceBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceBasis::ReportedCost => "reported_cost",
            PriceBasis::PriceTable => "price_table",
            PriceBasis::Estimate => "estimate",
        }
    }
}

impl BillingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingStatus::Billed => "billed",
            BillingStatus::NeedsReview => "needs_review",
            BillingStatus::Refunded => "refunded",
        }
    }
}

/// The hold for a request to one model, without clamping to a balance (the
/// request's own ceiling): a convenience for callers and tests.
pub fn hold_amount(req: &ChatRequest, model: &ModelInfo, markup: Markup) -> Micros {
    let quote = Quote::for_request(req, &[(model, markup)], 1).expect("a text request");
    quote.hold_for(quote.ceiling())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    /// What the upstream charged (or would have), rounded up to the micro.
    pub provider_cost: Micros,
    /// What the user pays: provider cost × markup, never below provider cost.
    pub user_price: Micros,
    pub basis: PriceBasis,
    pub status: BillingStatus,
    /// What the upstream's report would have charged beyond the hold: not
    /// charged, recorded for an operator (`needs_review`).
    pub excess: Micros,
}

/// What was seen of a request that ended without usage: enough for an estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub prompt_estimate: u64,
    /// UTF-8 bytes of output content delivered (stream deltas or message content).
    pub output_bytes: usize,
}

pub fn charge(usage: Option<&UpstreamUsage>, model: &ModelInfo, markup: Markup, hold: Micros, seen: Observed) -> Charge {
    let (provider, basis) = match usage {
        Some(u) => match u.reported_provider_cost() {
            Some(cost) => (cost, PriceBasis::ReportedCost),
            None => (model.token_cost(u.prompt_tokens, u.completion_tokens), PriceBasis::PriceTable),
        },
        None => {
            let output = estimate_tokens(seen.output_bytes);
            (model.token_cost(seen.prompt_estimate, output), PriceBasis::Estimate)
        }
    };
    let provider_cost = provider.ceil_micros();
    let user_price = markup.apply(provider).ceil_micros().max(provider_cost);
    if basis == PriceBasis::Estimate {
        // An estimate never charges more than was held (the hold includes markup).
        let capped = user_price.min(hold);
        return Charge { provider_cost: provider_cost.min(hold), user_price: capped, basis, status: BillingStatus::NeedsReview, excess: Micros::ZERO };
    }
    cap_at_hold(Charge { provider_cost, user_price, basis, status: BillingStatus::Billed, excess: Micros::ZERO }, hold)
}

/// A charge never exceeds its hold (so usage can never take a wallet below
/// zero); the rest is excess for review. `provider_cost` stays what the
/// upstream reported, so the shortfall is visible next to the price.
pub fn cap_at_hold(c: Charge, hold: Micros) -> Charge {
    if c.user_price <= hold {
        return c;
    }
    Charge { user_price: hold, status: BillingStatus::NeedsReview, excess: c.user_price.saturating_sub(hold), ..c }
}

/// The provisional charge of a hold whose exchange left nothing to price it
/// by (no generation id, no usage): the whole hold, for review.
pub fn provisional(hold: Micros) -> Charge {
    Charge { provider_cost: hold, user_price: hold, basis: PriceBasis::Estimate, status: BillingStatus::NeedsReview, excess: Micros::ZERO }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Picos;

    fn gpt4o() -> ModelInfo {
        ModelInfo {
            id: "openai/gpt-4o".into(),
            name: String::new(),
            created: 0,
            prompt_price: 2_500_000,
            completion_price: 10_000_000,
            request_price: 0,
            context_length: 128_000,
            max_output: Some(16_384),
            ..ModelInfo::default()
        }
    }

    fn req(max_output: Option<u64>, n: u64) -> ChatRequest {
        ChatRequest {
            model: "openai/gpt-4o".into(),
            stream: false,
            max_output,
            n,
            prompt_estimate: 100,
            prompt_bound: 100,
            images: 0,
            limit_fields: (max_output.is_some(), false),
            fallbacks: vec![],
            routing: false,
            prints: None,
            cache_writes: false,
        }
    }

    #[test]
    fn hold_covers_the_worst_case() {
        // 100 × 2.5 µ$ + 50 × 10 µ$ = 750 µ$
        assert_eq!(hold_amount(&req(Some(50), 1), &gpt4o(), Markup::NONE), Micros(750));
        assert_eq!(hold_amount(&req(Some(50), 2), &gpt4o(), Markup::NONE), Micros(1250));
        // no max_tokens: the model's cap; asking beyond it is capped too
        assert_eq!(hold_amount(&req(None, 1), &gpt4o(), Markup::NONE), Micros(250 + 163_840));
        assert_eq!(hold_amount(&req(Some(1_000_000), 1), &gpt4o(), Markup::NONE), Micros(250 + 163_840));
        assert_eq!(hold_amount(&req(Some(50), 1), &gpt4o(), Markup::parse("1.5").unwrap()), Micros(1125));
    }

    #[test]
    fn reported_cost_wins() {
        let u = UpstreamUsage { prompt_tokens: 10, completion_tokens: 5, cost: Some(Picos(3_378_900_000)), ..Default::default() };
        let c = charge(Some(&u), &gpt4o(), Markup::NONE, Micros(9999), Observed::default());
        assert_eq!(c, Charge { provider_cost: Micros(3379), user_price: Micros(3379), basis: PriceBasis::ReportedCost, status: BillingStatus::Billed, excess: Micros::ZERO });
        let marked = charge(Some(&u), &gpt4o(), Markup::parse("1.2").unwrap(), Micros(9999), Observed::default());
        assert_eq!(marked.user_price, Micros(4055)); // 3378.9 × 1.2 = 4054.68 → 4055
    }

    #[test]
    fn tokens_at_list_price_without_cost() {
        let u = UpstreamUsage { prompt_tokens: 10, completion_tokens: 5, ..Default::default() };
        let c = charge(Some(&u), &gpt4o(), Markup::NONE, Micros(9999), Observed::default());
        assert_eq!((c.user_price, c.basis, c.status), (Micros(75), PriceBasis::PriceTable, BillingStatus::Billed));
    }

    #[test]
    fn no_usage_is_estimated_capped_and_flagged() {
        let seen = Observed { prompt_estimate: 100, output_bytes: 30 };
        let c = charge(None, &gpt4o(), Markup::NONE, Micros(9999), seen);
        assert_eq!((c.user_price, c.basis, c.status), (Micros(350), PriceBasis::Estimate, BillingStatus::NeedsReview));
        let capped = charge(None, &gpt4o(), Markup::NONE, Micros(100), seen);
        assert_eq!(capped.user_price, Micros(100));
        let marked = charge(None, &gpt4o(), Markup::parse("2").unwrap(), Micros(500), seen);
        assert_eq!(marked.user_price, Micros(500), "capped after markup, at the hold");
        let nothing_seen = charge(None, &gpt4o(), Markup::NONE, Micros(9999), Observed { prompt_estimate: 100, output_bytes: 0 });
        assert_eq!(nothing_seen.user_price, Micros(250), "the prompt is still billed");
    }

    #[test]
    fn a_report_beyond_the_hold_is_capped_and_flagged() {
        let u = UpstreamUsage { prompt_tokens: 10, completion_tokens: 20_000, ..Default::default() };
        let c = charge(Some(&u), &gpt4o(), Markup::NONE, Micros(1_000), Observed::default());
        assert_eq!((c.user_price, c.status, c.excess), (Micros(1_000), BillingStatus::NeedsReview, Micros(200_025 - 1_000)));
        assert_eq!(c.provider_cost, Micros(200_025), "the reported cost stays visible");
    }
}
