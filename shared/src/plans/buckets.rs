//! The wallet's two buckets. The balance stays one number (what holds,
//! caps and the upstream key's limit read); the included part of it is
//! tracked beside it, and the purchased part is the rest. Every ledger row
//! says how much of its amount moved the included bucket, so Σ ledger ==
//! balance holds per bucket.

use crate::money::Micros;

/// How much of a charge of `amount` (≥ 0) comes out of the included bucket
/// holding `included`: included credit is spent first, the rest is purchased.
pub fn included_share_of_spend(included: Micros, amount: Micros) -> Micros {
    included.max(Micros::ZERO).min(amount.max(Micros::ZERO))
}

/// The included bucket after a change that asks for `wanted` (0 ≤ it ≤
/// max(balance, 0)): included credit is part of the balance, so it can never
/// be more than the balance holds, or a period end would expire credit that
/// is not there and leave the balance below zero. A grant that lands on a
/// debt pays the debt first; a purchased debit that goes beyond purchased
/// credit takes the rest from included. `on_the_way` is keyless (x402)
/// payments debited but not yet credited: that gap in the balance is the
/// payment's, not the included bucket's, so it does not shrink included.
pub fn bounded_included(wanted: Micros, balance: Micros, on_the_way: Micros) -> Micros {
    let room = balance.saturating_add(on_the_way.max(Micros::ZERO)).max(Micros::ZERO);
    wanted.min(room).max(Micros::ZERO)
}

/// What a period end takes out of the included bucket: everything beyond
/// what rolls over (`keep`), but never credit that open holds may still
/// spend (`held`), which a settlement would otherwise have to take from
/// purchased credit the hold did not count on. What a hold protects is
/// expired at the next period end (or spent).
pub fn expiry(included: Micros, keep: Micros, held: Micros) -> Micros {
    let protected = keep.max(held.max(Micros::ZERO)).max(Micros::ZERO);
    included.saturating_sub(protected).max(Micros::ZERO)
}

/// What a refund or lost dispute of a subscription invoice takes back from
/// the included bucket: that invoice's grant, as far as it is unspent.
/// Included credit is one pool, so "unspent" is read as what the bucket
/// still holds, up to the grant (spending is never attributed to an older
/// grant first: the user keeps the benefit of the doubt) — and nothing once
/// the invoice's period is over (`period_over`): its credit expired or
/// rolled into a period other invoices paid for, so what the bucket holds
/// is theirs.
pub fn take_back(included: Micros, granted: Micros, period_over: bool) -> Micros {
    if period_over {
        return Micros::ZERO;
    }
    included.max(Micros::ZERO).min(granted.max(Micros::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_takes_included_first() {
        assert_eq!(included_share_of_spend(Micros(5), Micros(3)), Micros(3));
        assert_eq!(included_share_of_spend(Micros(5), Micros(8)), Micros(5));
        assert_eq!(included_share_of_spend(Micros(0), Micros(8)), Micros(0));
        assert_eq!(included_share_of_spend(Micros(5), Micros(0)), Micros(0));
    }

    #[test]
    fn included_never_exceeds_the_balance() {
        // A grant of 20 onto a debt of 5: 15 included, the debt paid.
        assert_eq!(bounded_included(Micros(20), Micros(15), Micros::ZERO), Micros(15));
        assert_eq!(bounded_included(Micros(20), Micros(25), Micros::ZERO), Micros(20));
        assert_eq!(bounded_included(Micros(20), Micros(-5), Micros::ZERO), Micros::ZERO);
        assert_eq!(bounded_included(Micros(-3), Micros(10), Micros::ZERO), Micros::ZERO);
        // A keyless charge awaiting its payment's credit does not shrink it.
        assert_eq!(bounded_included(Micros(20), Micros(19), Micros(1)), Micros(20));
        assert_eq!(bounded_included(Micros(20), Micros(18), Micros(1)), Micros(19));
    }

    #[test]
    fn expiry_keeps_rollover_and_held_credit() {
        assert_eq!(expiry(Micros(10), Micros(0), Micros(0)), Micros(10));
        assert_eq!(expiry(Micros(10), Micros(4), Micros(0)), Micros(6));
        assert_eq!(expiry(Micros(10), Micros(4), Micros(7)), Micros(3));
        assert_eq!(expiry(Micros(3), Micros(4), Micros(0)), Micros(0));
    }

    #[test]
    fn take_back_is_bounded_by_grant_and_bucket() {
        assert_eq!(take_back(Micros(10), Micros(4), false), Micros(4));
        assert_eq!(take_back(Micros(2), Micros(4), false), Micros(2));
        assert_eq!(take_back(Micros(0), Micros(4), false), Micros(0));
        // Another period's credit is not the invoice's to take back.
        assert_eq!(take_back(Micros(10), Micros(4), true), Micros(0));
    }
}
