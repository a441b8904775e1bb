//! What changing to another plan would do, before it is done: the preview
//! the dashboard shows and the API answers (`GET /api/billing/plans`), and
//! the rule the billing Worker follows (`POST /api/billing/subscription`).

use super::{period, Plan};
use crate::money::Micros;
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanChange {
    /// The plan the user is on.
    Current,
    /// No subscription yet: Checkout, then the first invoice grants the period.
    Subscribe,
    /// More included credit: now, with the prorated difference granted once
    /// (Stripe invoices the prorated price difference).
    Upgrade { included_now: Micros },
    /// Less (or equal) included credit: from the next period on (`at_ms`).
    Downgrade { at_ms: Option<i64> },
}

/// The change from `current` (with a subscription over `period`, if any) to `target`.
pub fn preview(current: &Plan, subscribed: bool, period: Option<(i64, i64)>, target: &Plan, now_ms: i64) -> PlanChange {
    if !subscribed {
        return if target.id == current.id && target.stripe_price_id.is_none() { PlanChange::Current } else { PlanChange::Subscribe };
    }
    if target.id == current.id {
        return PlanChange::Current;
    }
    if target.included > current.included {
        let (start, end) = period.unwrap_or((now_ms, now_ms));
        return PlanChange::Upgrade { included_now: period::upgrade_grant(current.included, target.included, start, end, now_ms) };
    }
    PlanChange::Downgrade { at_ms: period.map(|(_, end)| end) }
}

impl PlanChange {
    pub fn to_json(&self) -> Value {
        match self {
            PlanChange::Current => json!({"change": "current"}),
            PlanChange::Subscribe => json!({"change": "subscribe", "takes_effect": "when_paid"}),
            PlanChange::Upgrade { included_now } => json!({"change": "upgrade", "takes_effect": "now", "included_now_usd": included_now.as_json_usd()}),
            PlanChange::Downgrade { at_ms } => json!({"change": "downgrade", "takes_effect": "period_end", "at": at_ms}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, included: i64) -> Plan {
        Plan {
            id: id.into(),
            name: id.into(),
            stripe_price_id: (id != "free").then(|| format!("price_{id}")),
            price_minor: 0,
            currency: "usd".into(),
            included: Micros(included),
            rollover: false,
            rollover_cap: Micros::ZERO,
            rate_limit_per_minute: None,
            max_concurrent: None,
            monthly_cap: None,
            models: None,
        }
    }

    #[test]
    fn previews_each_kind_of_change() {
        let (free, basic, pro) = (plan("free", 0), plan("basic", 10), plan("pro", 40));
        assert_eq!(preview(&free, false, None, &free, 0), PlanChange::Current);
        assert_eq!(preview(&free, false, None, &pro, 0), PlanChange::Subscribe);
        assert_eq!(preview(&basic, true, Some((0, 30)), &basic, 10), PlanChange::Current);
        assert_eq!(preview(&basic, true, Some((0, 30)), &pro, 10), PlanChange::Upgrade { included_now: Micros(20) });
        assert_eq!(preview(&pro, true, Some((0, 30)), &basic, 10), PlanChange::Downgrade { at_ms: Some(30) });
    }
}
