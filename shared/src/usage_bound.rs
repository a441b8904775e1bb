//! Correcting provisional charges that no generation record can price (the
//! owner died before the upstream named the generation: the sweep charged the
//! whole hold). The user's upstream key is theirs alone, so what it has spent
//! by OpenRouter's count, minus the provider cost the ledger already knows
//! exactly for the other requests made with it, bounds the true provider cost
//! of the still-unresolved requests together (`cost_bound`). That bound is
//! shared among the provisional charges (`allocate`) and each is refunded down
//! to the price of its share — what the owner would have charged for that
//! cost: × the markup the charge used, rounded up once.
//! (`functions/chat/src/usage_bound.rs` gathers the figures and moves the money.)

use crate::money::{Markup, Micros, Picos};

const PICOS_PER_MICRO: i128 = 1_000_000;

/// An upper bound on the provider cost of the requests whose cost the ledger
/// does not know exactly: the key's spending minus the known costs. Each known
/// cost was rounded up to the micro-dollar, so up to 1 µ$ per known row is
/// added back: the bound is never below the truth.
pub fn cost_bound(key_spent: Picos, known_cost: Micros, known_rows: u64) -> Picos {
    let known = Picos::from(known_cost).0 - known_rows as i128 * PICOS_PER_MICRO;
    Picos((key_spent.0 - known).max(0))
}

/// A provisional charge to correct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provisional {
    pub charged: Micros,
    pub markup: Markup,
}

/// One provisional charge's part of the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// The provider cost it is allowed (rounded up): its `true_cost_micros`.
    pub cost: Micros,
    /// What it may be charged: that cost × its markup, rounded up once.
    pub price: Micros,
    /// `charged − price`, never negative.
    pub refund: Micros,
}

/// Shares `bound` among `rows` in the order given (the caller's: oldest
/// first), each taking as much as its charge can have paid for — the largest
/// cost whose marked-up price is at most the charge — until the bound is used
/// up. Deterministic; the total of the prices covers the whole bound (or every
/// charge), so together the user pays at most the bound × markup, and never
/// less than the bound can explain.
pub fn allocate(bound: Picos, rows: &[Provisional]) -> Vec<Share> {
    let mut left = bound.0.max(0);
    rows.iter()
        .map(|row| {
            let charged = Picos::from(row.charged).0.max(0);
            let paid_for = charged * 10_000 / i128::from(row.markup.bps());
            let cost = Picos(left.min(paid_for));
            left -= cost.0;
            let price = row.markup.apply(cost).ceil_micros().min(row.charged.max(Micros::ZERO));
            Share { cost: cost.ceil_micros(), price, refund: row.charged.saturating_sub(price).max(Micros::ZERO) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(charged: i64, markup: &str) -> Provisional {
        Provisional { charged: Micros(charged), markup: Markup::parse(markup).unwrap() }
    }

    #[test]
    fn the_bound_adds_back_the_rounding_of_known_costs_and_is_never_negative() {
        // $0.0000105 spent; two known rows billed at 3 µ$ each (2.5 µ$ rounded up).
        assert_eq!(cost_bound(Picos(10_500_000), Micros(6), 2), Picos(6_500_000));
        assert_eq!(cost_bound(Picos(1_000_000), Micros(50), 0), Picos(0));
    }

    #[test]
    fn one_charge_is_refunded_to_the_price_the_owner_would_have_charged() {
        // The hold was 2 000 µ$; the key spent 12.34 µ$; markup 1.5 → 18.51 → 19 µ$.
        let shares = allocate(Picos(12_340_000), &[row(2_000, "1.5")]);
        assert_eq!(shares, vec![Share { cost: Micros(13), price: Micros(19), refund: Micros(1_981) }]);
    }

    #[test]
    fn oldest_charges_take_their_share_first_and_nothing_is_refunded_twice_over() {
        // 150 µ$ of cost for charges of 100 and 300 µ$ at 1.0 and 1.5:
        // the first can have paid for 100 µ$ of cost, the second for 200 µ$.
        let shares = allocate(Picos(150_000_000), &[row(100, "1.0"), row(300, "1.5")]);
        assert_eq!(shares[0], Share { cost: Micros(100), price: Micros(100), refund: Micros(0) });
        assert_eq!(shares[1], Share { cost: Micros(50), price: Micros(75), refund: Micros(225) });
        let paid: i64 = shares.iter().map(|s| s.price.0).sum();
        assert_eq!(paid, 175, "at most the bound × markup, together");
    }

    #[test]
    fn a_bound_above_every_charge_refunds_nothing_and_zero_refunds_everything() {
        let rows = [row(100, "1.25"), row(40, "1.0")];
        assert!(allocate(Picos(1_000_000_000), &rows).iter().all(|s| s.refund == Micros::ZERO));
        let none = allocate(Picos(0), &rows);
        assert_eq!(none.iter().map(|s| (s.price.0, s.refund.0)).collect::<Vec<_>>(), vec![(0, 100), (0, 40)]);
    }

    #[test]
    fn a_price_never_exceeds_its_charge_nor_falls_below_its_cost() {
        for (bound, charged, markup) in [(7_777_777, 13, "1.3333"), (999_999, 1, "1.0"), (123_456_789, 1_000, "2.5")] {
            let s = allocate(Picos(bound), &[row(charged, markup)])[0];
            assert!(s.price.0 <= charged && s.price >= s.cost.min(Micros(charged)), "{s:?}");
            assert_eq!(s.price.0 + s.refund.0, charged);
        }
    }
}
