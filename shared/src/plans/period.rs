//! Period arithmetic: proration of an upgrade, grace after a failed renewal.
//! Periods are Stripe's (`period.start`/`period.end` of the invoice line),
//! in Unix milliseconds here.

use crate::money::Micros;

const DAY_MS: i64 = 86_400_000;

/// Included credit an upgrade grants once: the difference between the new
/// and the old plan's included credit, for the part of the current period
/// that is left, rounded down to the micro-dollar (never more than the
/// difference; nothing for a downgrade, which waits for the period end).
pub fn upgrade_grant(old_included: Micros, new_included: Micros, start_ms: i64, end_ms: i64, now_ms: i64) -> Micros {
    let difference = new_included.0 - old_included.0;
    if difference <= 0 || end_ms <= start_ms {
        return Micros::ZERO;
    }
    let left = (end_ms - now_ms.clamp(start_ms, end_ms)) as i128;
    let whole = (end_ms - start_ms) as i128;
    Micros((difference as i128 * left / whole) as i64)
}

/// When a `past_due` subscription falls back to the free plan.
pub fn grace_until(failed_at_ms: i64, grace_days: i64) -> i64 {
    failed_at_ms.saturating_add(grace_days.max(0).saturating_mul(DAY_MS))
}

/// The wallet reference of a period's grant (one per paid invoice).
pub fn grant_reference(invoice: &str) -> String {
    format!("plan:grant:{invoice}")
}

/// The wallet reference of the expiry that ends the period ending at `end_ms`
/// (references are unique per user: the period end names it).
pub fn expiry_reference(end_ms: i64) -> String {
    format!("plan:expire:{end_ms}")
}

/// The wallet reference of the expiry that ends a plan (cancelled, or a
/// failed renewal's grace over) at `at_ms`: what is left expires, and no
/// later period end comes for credit a call still held then.
pub fn leaving_reference(at_ms: i64) -> String {
    format!("{LEAVING_PREFIX}{at_ms}")
}

pub const LEAVING_PREFIX: &str = "plan:end:";

/// The wallet reference of an upgrade's prorated grant: once per
/// subscription, period and target plan.
/// The wallet reference of an upgrade's grant: its paid proration invoice.
pub fn upgrade_reference(invoice: &str) -> String {
    format!("plan:upgrade:{invoice}")
}

/// Included credit the paid proration invoice of an upgrade grants: the
/// difference of included credit for the share of the period left, which
/// the invoice states in money (`paid_minor` net of its proration lines, of
/// the whole price difference `price_difference_minor`); rounded down, never
/// more than the difference, nothing for a downgrade.
pub fn upgrade_grant_paid(old_included: Micros, new_included: Micros, price_difference_minor: i64, paid_minor: i64) -> Micros {
    let difference = new_included.0 - old_included.0;
    if difference <= 0 || price_difference_minor <= 0 || paid_minor <= 0 {
        return Micros::ZERO;
    }
    let paid = paid_minor.min(price_difference_minor) as i128;
    Micros((difference as i128 * paid / price_difference_minor as i128) as i64)
}

/// The wallet group of taking back a refunded or disputed invoice's unspent
/// included credit (each new cumulative target is applied once, as
/// `<group>:<target>`).
pub fn take_back_reference(invoice: &str) -> String {
    format!("plan:take_back:{invoice}")
}

/// The wallet group of a lost dispute's take-back of an invoice's included
/// credit: a group of its own, since a refund of the same invoice has its
/// own cumulative target (in one group, the dispute's target would be
/// compared with what the refund already took back, and take nothing).
pub fn dispute_take_back_reference(invoice: &str, dispute: &str) -> String {
    format!("{}:dispute:{dispute}", take_back_reference(invoice))
}

/// The invoice a take-back group is for (either kind of group).
pub fn invoice_of_take_back(group: &str) -> Option<&str> {
    group.strip_prefix("plan:take_back:")?.split(':').next().filter(|i| !i.is_empty())
}

/// How much of an invoice's grant goes back when `returned_minor` of its
/// `paid_minor` went back to the customer: in proportion, rounded up (the
/// whole grant for a whole refund), never more than the grant.
pub fn take_back_target(granted: Micros, returned_minor: i64, paid_minor: i64) -> Micros {
    if paid_minor <= 0 || returned_minor <= 0 {
        return Micros::ZERO;
    }
    let returned = returned_minor.min(paid_minor) as i128;
    let share = (granted.0.max(0) as i128 * returned + paid_minor as i128 - 1) / paid_minor as i128;
    Micros(share as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_back_groups_name_their_invoice() {
        assert_eq!(invoice_of_take_back(&take_back_reference("in_1")), Some("in_1"));
        assert_eq!(invoice_of_take_back(&dispute_take_back_reference("in_1", "dp_2")), Some("in_1"));
        assert_ne!(dispute_take_back_reference("in_1", "dp_2"), take_back_reference("in_1"));
        assert_eq!(invoice_of_take_back("stripe:refund:ch_1"), None);
    }

    #[test]
    fn upgrade_is_prorated_by_time_left() {
        let (s, e) = (0, 30 * DAY_MS);
        assert_eq!(upgrade_grant(Micros(10_000_000), Micros(40_000_000), s, e, 0), Micros(30_000_000));
        assert_eq!(upgrade_grant(Micros(10_000_000), Micros(40_000_000), s, e, 10 * DAY_MS), Micros(20_000_000));
        assert_eq!(upgrade_grant(Micros(10_000_000), Micros(40_000_000), s, e, e), Micros::ZERO);
        assert_eq!(upgrade_grant(Micros(10_000_000), Micros(40_000_000), s, e, e + 5), Micros::ZERO);
        // Rounded down, never above the difference.
        assert_eq!(upgrade_grant(Micros(0), Micros(10), 0, 3, 1), Micros(6));
    }

    #[test]
    fn a_paid_upgrade_grants_the_share_its_invoice_paid() {
        // Two thirds of the period left: 2666 charged for the new price, 666 credited for the old.
        assert_eq!(upgrade_grant_paid(Micros(10_000_000), Micros(40_000_000), 3000, 2666 - 666), Micros(20_000_000));
        assert_eq!(upgrade_grant_paid(Micros(0), Micros(10), 3, 1), Micros(3));
        // Never above the difference, nothing for nothing paid or a downgrade.
        assert_eq!(upgrade_grant_paid(Micros(10), Micros(40), 3000, 9000), Micros(30));
        assert_eq!(upgrade_grant_paid(Micros(10), Micros(40), 3000, 0), Micros::ZERO);
        assert_eq!(upgrade_grant_paid(Micros(40), Micros(10), 3000, 1000), Micros::ZERO);
    }

    #[test]
    fn downgrade_grants_nothing() {
        assert_eq!(upgrade_grant(Micros(40), Micros(10), 0, 30, 5), Micros::ZERO);
        assert_eq!(upgrade_grant(Micros(10), Micros(10), 0, 30, 5), Micros::ZERO);
    }

    #[test]
    fn take_back_is_proportional_to_what_went_back() {
        assert_eq!(take_back_target(Micros(10_000_000), 1000, 1000), Micros(10_000_000));
        assert_eq!(take_back_target(Micros(10_000_000), 500, 1000), Micros(5_000_000));
        assert_eq!(take_back_target(Micros(10), 1, 3), Micros(4));
        assert_eq!(take_back_target(Micros(10), 5000, 1000), Micros(10));
        assert_eq!(take_back_target(Micros(10), 0, 1000), Micros::ZERO);
    }

    #[test]
    fn grace_counts_days() {
        assert_eq!(grace_until(1_000, 7), 1_000 + 7 * DAY_MS);
        assert_eq!(grace_until(1_000, -1), 1_000);
    }
}
