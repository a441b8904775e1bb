//! A scope's settled spending as caps read it (shared/src/caps.rs): the
//! current day's and month's, each with the start of its window, and the
//! lifetime total. A window that has passed reads as nothing spent and is
//! replaced by the next charge. Charges are stamped when they settle (a hold
//! the sweep settles after midnight counts in the new day); one stamped
//! before the window now kept (another process's clock: an operator's
//! settlement from the admin Worker) counts in the lifetime only, as the
//! window it belongs to is never read again. The wallet object keeps one
//! per scope (functions/chat/src/wallet/store/spend.rs).

use crate::caps::Window;
use crate::money::Micros;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpendWindows {
    pub daily_start: i64,
    pub daily: i64,
    pub monthly_start: i64,
    pub monthly: i64,
    pub lifetime: i64,
}

impl SpendWindows {
    /// What was spent in the `window` running at `now_ms`.
    pub fn spent(&self, window: Window, now_ms: i64) -> Micros {
        let (start, amount) = match window {
            Window::Daily => (self.daily_start, self.daily),
            Window::Monthly => (self.monthly_start, self.monthly),
            Window::Lifetime => return Micros(self.lifetime),
        };
        Micros(if start == window.start(now_ms) { amount } else { 0 })
    }

    /// These windows after a charge of `amount` settled at `at_ms`.
    pub fn charged(self, at_ms: i64, amount: Micros) -> SpendWindows {
        let (at_day, at_month) = (Window::Daily.start(at_ms), Window::Monthly.start(at_ms));
        self.merged(SpendWindows { daily_start: at_day, daily: amount.0, monthly_start: at_month, monthly: amount.0, lifetime: amount.0 })
    }

    /// These windows and another record of the same scope's spending in
    /// one (a charge; or the rows an older build kept, after a rollback): a
    /// window's spending adds up within the same window, the later window
    /// replaces an earlier one, and lifetimes add.
    pub fn merged(self, other: SpendWindows) -> SpendWindows {
        let add = |start: i64, spent: i64, other_start: i64, other_spent: i64| match other_start.cmp(&start) {
            std::cmp::Ordering::Equal => (start, spent + other_spent),
            std::cmp::Ordering::Greater => (other_start, other_spent),
            std::cmp::Ordering::Less => (start, spent),
        };
        let (daily_start, daily) = add(self.daily_start, self.daily, other.daily_start, other.daily);
        let (monthly_start, monthly) = add(self.monthly_start, self.monthly, other.monthly_start, other.monthly);
        SpendWindows { daily_start, daily, monthly_start, monthly, lifetime: self.lifetime + other.lifetime }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    // 2026-12-05T10:00:00Z and the next day.
    const T: i64 = 1_796_464_800_000;

    #[test]
    fn a_charge_adds_to_its_windows_and_a_new_day_starts_over() {
        let w = SpendWindows::default().charged(T, Micros(5)).charged(T + 60_000, Micros(7));
        assert_eq!((w.spent(Window::Daily, T), w.spent(Window::Monthly, T), w.spent(Window::Lifetime, T)), (Micros(12), Micros(12), Micros(12)));
        // Nothing yet the next day; its first charge replaces the day, not the month.
        assert_eq!(w.spent(Window::Daily, T + DAY), Micros(0));
        let next = w.charged(T + DAY, Micros(3));
        assert_eq!((next.spent(Window::Daily, T + DAY), next.spent(Window::Monthly, T + DAY), next.lifetime), (Micros(3), Micros(15), 15));
    }

    #[test]
    fn a_late_charge_for_a_replaced_day_counts_in_the_lifetime_only() {
        let today = SpendWindows::default().charged(T + DAY, Micros(3));
        let late = today.charged(T, Micros(4));
        assert_eq!((late.spent(Window::Daily, T + DAY), late.spent(Window::Monthly, T + DAY), late.lifetime), (Micros(3), Micros(7), 7));
        assert_eq!(late.daily_start, Window::Daily.start(T + DAY));
    }

    #[test]
    fn records_merge_by_the_same_rule_the_same_window_adding_up() {
        let ours = SpendWindows::default().charged(T + DAY, Micros(3));
        let theirs = SpendWindows::default().charged(T + DAY, Micros(5)).charged(T, Micros(2));
        let both = ours.merged(theirs);
        assert_eq!((both.spent(Window::Daily, T + DAY), both.spent(Window::Monthly, T + DAY), both.lifetime), (Micros(8), Micros(10), 10));
        assert_eq!(ours.merged(SpendWindows::default()), ours, "nothing merged, nothing changed");
    }
}
