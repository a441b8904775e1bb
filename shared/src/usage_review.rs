//! Settling a `needs_review` charge against the upstream's generation record
//! (reconciliation, `functions/chat/src/usage_review.rs`). The true price is
//! what the billing policy would have charged had the record been known at
//! settlement: reported cost × the markup the charge used, rounded up once,
//! never below the provider cost (`billing::charge`). It is compared with what
//! was charged:
//! - charged more → the difference is credited back;
//! - charged less → nothing is debited (a charge never exceeds its hold, and
//!   the hold is long gone): the shortfall is a finding for an operator;
//! - equal → resolved as is.

use crate::money::{Markup, Micros};
use crate::usage::UpstreamUsage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Exact { true_price: Micros },
    Refund { true_price: Micros, refund: Micros },
    Undercharged { true_price: Micros, shortfall: Micros },
}

impl Verdict {
    pub fn outcome(self) -> &'static str {
        match self {
            Verdict::Exact { .. } => "exact",
            Verdict::Refund { .. } => "refunded",
            Verdict::Undercharged { .. } => "undercharged",
        }
    }

    pub fn true_price(self) -> Micros {
        match self {
            Verdict::Exact { true_price } | Verdict::Refund { true_price, .. } | Verdict::Undercharged { true_price, .. } => true_price,
        }
    }

    /// What goes back to the wallet (zero unless a refund).
    pub fn refund(self) -> Micros {
        match self {
            Verdict::Refund { refund, .. } => refund,
            _ => Micros::ZERO,
        }
    }
}

/// The provider cost and the true price of a generation record, when it
/// reports a cost (a record without one cannot price the request exactly).
pub fn true_price(usage: &UpstreamUsage, markup: Markup) -> Option<(Micros, Micros)> {
    let provider = usage.reported_provider_cost()?;
    let provider_cost = provider.ceil_micros();
    Some((provider_cost, markup.apply(provider).ceil_micros().max(provider_cost)))
}

/// Compares what was charged with the record's true price; `None` when the
/// record has no cost.
pub fn review(charged: Micros, usage: &UpstreamUsage, markup: Markup) -> Option<Verdict> {
    let (_, true_price) = true_price(usage, markup)?;
    Some(match charged.0.cmp(&true_price.0) {
        std::cmp::Ordering::Equal => Verdict::Exact { true_price },
        std::cmp::Ordering::Greater => Verdict::Refund { true_price, refund: charged.saturating_sub(true_price) },
        std::cmp::Ordering::Less => Verdict::Undercharged { true_price, shortfall: true_price.saturating_sub(charged) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::{charge, Observed};
    use crate::catalogue::ModelInfo;
    use crate::money::Picos;

    fn usage(cost_usd: &str) -> UpstreamUsage {
        UpstreamUsage { prompt_tokens: 10, completion_tokens: 20, cost: Some(Picos::parse_usd(cost_usd).unwrap()), ..Default::default() }
    }

    #[test]
    fn an_estimate_above_the_record_is_refunded_to_the_micro() {
        // 0.0000123 × 1.5 = 0.00001845 → 19 µ$ (one upward rounding).
        let v = review(Micros(100), &usage("0.0000123"), Markup::parse("1.5").unwrap()).unwrap();
        assert_eq!(v, Verdict::Refund { true_price: Micros(19), refund: Micros(81) });
        assert_eq!((v.outcome(), v.refund()), ("refunded", Micros(81)));
    }

    #[test]
    fn equal_is_exact_and_below_is_undercharged_never_debited() {
        let u = usage("0.000019");
        assert_eq!(review(Micros(19), &u, Markup::NONE), Some(Verdict::Exact { true_price: Micros(19) }));
        let v = review(Micros(5), &u, Markup::NONE).unwrap();
        assert_eq!(v, Verdict::Undercharged { true_price: Micros(19), shortfall: Micros(14) });
        assert_eq!(v.refund(), Micros::ZERO);
    }

    #[test]
    fn the_true_price_is_what_the_owner_would_have_charged() {
        let model = ModelInfo { id: "m".into(), prompt_price: 1_000_000, completion_price: 2_000_000, ..ModelInfo::default() };
        let markup = Markup::parse("1.25").unwrap();
        let u = usage("0.0003337");
        let billed = charge(Some(&u), &model, markup, Micros(1_000_000), Observed::default());
        assert_eq!(true_price(&u, markup), Some((billed.provider_cost, billed.user_price)));
        assert_eq!(review(billed.user_price, &u, markup).map(Verdict::outcome), Some("exact"));
    }

    #[test]
    fn a_record_without_cost_cannot_price_the_request() {
        let u = UpstreamUsage { prompt_tokens: 10, completion_tokens: 20, ..Default::default() };
        assert_eq!(review(Micros(100), &u, Markup::NONE), None);
    }
}
