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
/// grant first: the user keeps the benefit of the doubt).
pub fn take_back(included: Micros, granted: Micros) -> Micros {
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
    fn expiry_keeps_rollover_and_held_credit() {
        assert_eq!(expiry(Micros(10), Micros(0), Micros(0)), Micros(10));
        assert_eq!(expiry(Micros(10), Micros(4), Micros(0)), Micros(6));
        assert_eq!(expiry(Micros(10), Micros(4), Micros(7)), Micros(3));
        assert_eq!(expiry(Micros(3), Micros(4), Micros(0)), Micros(0));
    }

    #[test]
    fn take_back_is_bounded_by_grant_and_bucket() {
        assert_eq!(take_back(Micros(10), Micros(4)), Micros(4));
        assert_eq!(take_back(Micros(2), Micros(4)), Micros(2));
        assert_eq!(take_back(Micros(0), Micros(4)), Micros(0));
    }
}
