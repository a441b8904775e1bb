//! Top-ups compared with Stripe's records, the pure parts: what a paid
//! Checkout Session grants (one policy, shared by the webhook and the
//! reconciliation pass), the look-back window, and the comparison of Stripe's
//! paid sessions and refunds with what the gateway credited and debited.
//! The Workers glue is functions/billing/src/reconcile.rs.
//!
//! Stripe is the record of what was paid; D1 (`stripe_transactions`,
//! `credit_ledger`) is what was credited. Amounts are integers throughout:
//! Stripe's minor units (USD cents) and the ledger's micro-USD.

use crate::money::Micros;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// USD cents → micro-USD.
pub const MICROS_PER_CENT: i64 = 10_000;

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The wallet reference of a Checkout Session's credit: the webhook and the
/// reconciliation pass use the same one, so whichever comes second is a replay.
pub fn checkout_reference(session_id: &str) -> String {
    format!("stripe:checkout:{session_id}")
}

/// The wallet adjustment group of a charge's refunds (cumulative, see `/adjust`).
pub fn refund_group(charge: &str) -> String {
    format!("stripe:refund:{charge}")
}

/// A Checkout Session this gateway credits as a top-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopUp {
    pub session_id: String,
    pub user_id: String,
    /// `amount_total`, USD cents.
    pub amount_minor: i64,
    pub payment_intent: Option<String>,
}

impl TopUp {
    /// What the session grants: exactly what was paid.
    pub fn credit(&self) -> Micros {
        Micros(self.amount_minor.saturating_mul(MICROS_PER_CENT))
    }
}

/// Why a session is not (or not yet) a top-up, in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotATopUp {
    NoSessionId,
    /// A subscription bought through Checkout: its invoices grant credit.
    NotPayment,
    NoUser,
    /// We sell credit in USD only.
    Currency,
    NoAmount,
}

/// The top-up a session stands for (whether or not it is paid: see `is_paid`).
pub fn top_up(session: &Value) -> Result<TopUp, NotATopUp> {
    let session_id = text(session, "/id").ok_or(NotATopUp::NoSessionId)?;
    if text(session, "/mode") != Some("payment") {
        return Err(NotATopUp::NotPayment);
    }
    let user_id = text(session, "/client_reference_id").or_else(|| text(session, "/metadata/user_id")).ok_or(NotATopUp::NoUser)?;
    if text(session, "/currency") != Some("usd") {
        return Err(NotATopUp::Currency);
    }
    let amount_minor = session.pointer("/amount_total").and_then(Value::as_i64).filter(|a| *a > 0).ok_or(NotATopUp::NoAmount)?;
    Ok(TopUp { session_id: session_id.into(), user_id: user_id.into(), amount_minor, payment_intent: text(session, "/payment_intent").map(str::to_string) })
}

/// Fulfil only when paid (`unpaid` waits for the async success; `no_payment_required` is not money).
pub fn is_paid(session: &Value) -> bool {
    text(session, "/payment_status") == Some("paid")
}

/// A payment as its refunds and lost disputes see it: what it charged and
/// the credit it granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paid {
    pub minor: i64,
    /// The credit granted, when it is not what was charged (a subscription
    /// invoice's configured credit); None: a top-up, credited what it charged.
    pub credit: Option<Micros>,
}

impl Paid {
    /// The credit that returning `minor` of this payment takes back, as a
    /// debit (negative micro-USD): never more than was paid, and of a
    /// payment whose credit differs from its price, that credit's share.
    pub fn returned(&self, minor: i64) -> Micros {
        let minor = minor.clamp(0, self.minor.max(0));
        match self.credit {
            Some(credit) => Micros(-crate::plans::period::take_back_target(credit, minor, self.minor).0),
            None => Micros(-minor.saturating_mul(MICROS_PER_CENT)),
        }
    }
}

/// What one run compares: Stripe objects created since `from_s` (the
/// look-back), judged only once older than `settled_before_s` (the grace
/// period, so a webhook still in flight is not mistaken for a lost one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from_s: i64,
    pub settled_before_s: i64,
}

impl Window {
    pub fn new(now_s: i64, lookback_days: i64, grace_secs: i64) -> Window {
        Window { from_s: now_s - lookback_days.max(1) * 86_400, settled_before_s: now_s - grace_secs.max(0) }
    }

    fn settled(&self, created_s: i64) -> bool {
        created_s < self.settled_before_s
    }
}

/// A session as D1 records it (`stripe_transactions`, kind `checkout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub user_id: String,
    /// What was credited for it; None while it is pending (or failed).
    pub credited: Option<Micros>,
}

/// A difference between a paid session at Stripe and the books here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionDrift {
    /// Paid, created by this gateway for this user, never credited.
    Missing { top_up: TopUp, created_s: i64 },
    /// Credited, but not what the session grants.
    AmountMismatch { top_up: TopUp, credited: Micros },
}

/// Compares Stripe's sessions with D1's. Sessions this gateway did not create
/// for that user (Payment Links, other products on the account) are not
/// top-ups: the webhook leaves those to an operator, and so does this.
pub fn compare_sessions(stripe: &[Value], recorded: &HashMap<String, Recorded>, window: &Window) -> Vec<SessionDrift> {
    let mut out = Vec::new();
    for session in stripe.iter().filter(|s| is_paid(s)) {
        let Ok(top_up) = top_up(session) else { continue };
        let Some(ours) = recorded.get(&top_up.session_id).filter(|r| r.user_id == top_up.user_id) else { continue };
        let created_s = session.pointer("/created").and_then(Value::as_i64).unwrap_or(i64::MAX);
        match ours.credited {
            None if window.settled(created_s) => out.push(SessionDrift::Missing { top_up, created_s }),
            Some(credited) if credited != top_up.credit() => out.push(SessionDrift::AmountMismatch { top_up, credited }),
            _ => {}
        }
    }
    out
}

/// Whether Stripe's own record of a session (None: Stripe does not know it)
/// backs a credit.
pub fn backs_a_credit(session: Option<&Value>) -> bool {
    session.is_some_and(|s| is_paid(s) && text(s, "/status") == Some("complete"))
}

/// A charge's refunds as Stripe reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRefunds {
    pub payment_intent: String,
    /// Succeeded refunds, USD cents.
    pub refunded_minor: i64,
    /// When the newest of them was created (Unix seconds).
    pub newest_s: i64,
}

/// Succeeded USD refunds grouped by charge. Pending ones are left out: they may
/// still fail, and a debit is never given back.
pub fn refunds_by_charge(refunds: &[Value]) -> BTreeMap<String, ChargeRefunds> {
    let mut out: BTreeMap<String, ChargeRefunds> = BTreeMap::new();
    for r in refunds {
        let (Some(charge), Some(pi)) = (text(r, "/charge"), text(r, "/payment_intent")) else { continue };
        if text(r, "/status") != Some("succeeded") || text(r, "/currency") != Some("usd") {
            continue;
        }
        let amount = r.pointer("/amount").and_then(Value::as_i64).unwrap_or(0).max(0);
        let created = r.pointer("/created").and_then(Value::as_i64).unwrap_or(i64::MAX);
        let entry = out.entry(charge.into()).or_insert(ChargeRefunds { payment_intent: pi.into(), refunded_minor: 0, newest_s: i64::MIN });
        entry.refunded_minor = entry.refunded_minor.saturating_add(amount);
        entry.newest_s = entry.newest_s.max(created);
    }
    out
}

/// The cumulative debit a charge's refunds call for, if the books here
/// (`applied`: the signed sum of the charge's refund rows) are short of it,
/// and the charge's newest refund is past the grace period.
pub fn refund_shortfall(refunds: &ChargeRefunds, paid: Paid, applied: Micros, window: &Window) -> Option<Micros> {
    let target = paid.returned(refunds.refunded_minor);
    (window.settled(refunds.newest_s) && target < applied).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    /// A top-up of `minor` cents (credited what it charged).
    fn paid(minor: i64) -> Paid {
        Paid { minor, credit: None }
    }

    #[test]
    fn a_return_takes_back_the_credit_the_payment_granted_never_more() {
        assert_eq!(paid(2000).returned(500), Micros(-5_000_000));
        assert_eq!(paid(2000).returned(9000), Micros(-20_000_000), "never more than was paid");
        assert_eq!(paid(2000).returned(-1), Micros::ZERO);
        // A $20 subscription invoice that granted $10 of credit.
        let invoice = Paid { minor: 2000, credit: Some(Micros(10_000_000)) };
        assert_eq!(invoice.returned(2000), Micros(-10_000_000), "a whole refund takes back the credit, not the price");
        assert_eq!(invoice.returned(500), Micros(-2_500_000));
        let odd = Paid { minor: 2000, credit: Some(Micros(9_999_999)) };
        assert_eq!(odd.returned(1), Micros(-5_000), "its share (4 999.9995), rounded towards taking back");
    }

    fn session(id: &str, user: &str, cents: i64, paid: bool, created: i64) -> Value {
        json!({"id": id, "object": "checkout.session", "mode": "payment", "currency": "usd", "amount_total": cents,
               "client_reference_id": user, "payment_status": if paid { "paid" } else { "unpaid" },
               "status": if paid { "complete" } else { "open" }, "payment_intent": format!("pi_{id}"), "created": created})
    }

    fn recorded(user: &str, credited: Option<i64>) -> Recorded {
        Recorded { user_id: user.into(), credited: credited.map(Micros) }
    }

    #[test]
    fn the_window_bounds_the_look_back_and_waits_out_the_grace() {
        let w = Window::new(NOW, 7, 3600);
        assert_eq!((w.from_s, w.settled_before_s), (NOW - 7 * 86_400, NOW - 3600));
        assert!(w.settled(NOW - 3601) && !w.settled(NOW - 3600));
        assert_eq!(Window::new(NOW, 0, -5), Window { from_s: NOW - 86_400, settled_before_s: NOW });
    }

    #[test]
    fn what_a_session_grants() {
        let s = session("cs_1", "u1", 1234, true, NOW);
        assert_eq!(top_up(&s).map(|t| t.credit()), Ok(Micros(12_340_000)));
        let with = |k: &str, v: Value| {
            let mut s = s.clone();
            s[k] = v;
            top_up(&s).map(|t| t.user_id)
        };
        assert_eq!(with("mode", json!("subscription")), Err(NotATopUp::NotPayment));
        assert_eq!(with("currency", json!("eur")), Err(NotATopUp::Currency));
        assert_eq!(with("amount_total", json!(0)), Err(NotATopUp::NoAmount));
        assert_eq!(with("client_reference_id", Value::Null), Err(NotATopUp::NoUser));
        let mut by_metadata = s.clone();
        by_metadata["client_reference_id"] = Value::Null;
        by_metadata["metadata"] = json!({"user_id": "u9"});
        assert_eq!(top_up(&by_metadata).map(|t| t.user_id), Ok("u9".into()));
        assert_eq!(top_up(&json!({"mode": "payment"})), Err(NotATopUp::NoSessionId));
    }

    #[test]
    fn paid_sessions_are_compared_with_what_was_credited() {
        let w = Window::new(NOW, 7, 3600);
        let old = NOW - 7200;
        let stripe = vec![
            session("cs_ok", "u1", 1000, true, old),
            session("cs_lost", "u1", 2500, true, old),
            session("cs_in_flight", "u1", 500, true, NOW - 60),
            session("cs_short", "u2", 2000, true, old),
            session("cs_unpaid", "u1", 900, false, old),
            session("cs_not_ours", "u1", 700, true, old),
            session("cs_other_user", "u3", 800, true, old),
        ];
        let recorded: HashMap<String, Recorded> = [
            ("cs_ok", recorded("u1", Some(10_000_000))),
            ("cs_lost", recorded("u1", None)),
            ("cs_in_flight", recorded("u1", None)),
            ("cs_short", recorded("u2", Some(10_000_000))),
            ("cs_unpaid", recorded("u1", None)),
            ("cs_other_user", recorded("u4", None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let drift = compare_sessions(&stripe, &recorded, &w);
        assert_eq!(drift.len(), 2, "{drift:?}");
        assert!(matches!(&drift[0], SessionDrift::Missing { top_up, created_s } if top_up.session_id == "cs_lost" && top_up.credit() == Micros(25_000_000) && *created_s == old));
        assert!(matches!(&drift[1], SessionDrift::AmountMismatch { top_up, credited } if top_up.session_id == "cs_short" && *credited == Micros(10_000_000)));
    }

    #[test]
    fn only_a_complete_paid_session_backs_a_credit() {
        assert!(backs_a_credit(Some(&session("cs", "u", 100, true, NOW))));
        assert!(!backs_a_credit(Some(&session("cs", "u", 100, false, NOW))));
        assert!(!backs_a_credit(None));
    }

    #[test]
    fn refunds_are_summed_per_charge_and_compared_with_what_was_debited() {
        let refund = |charge: &str, amount: i64, status: &str, created: i64| {
            json!({"id": "re", "object": "refund", "charge": charge, "payment_intent": format!("pi_{charge}"), "amount": amount, "currency": "usd", "status": status, "created": created})
        };
        let w = Window::new(NOW, 7, 3600);
        let by = refunds_by_charge(&[
            refund("ch_a", 500, "succeeded", NOW - 7200),
            refund("ch_a", 300, "succeeded", NOW - 5000),
            refund("ch_a", 900, "pending", NOW - 5000),
            refund("ch_b", 100, "succeeded", NOW - 10),
        ]);
        let a = &by["ch_a"];
        assert_eq!((a.payment_intent.as_str(), a.refunded_minor, a.newest_s), ("pi_ch_a", 800, NOW - 5000));
        assert_eq!(refund_shortfall(a, paid(2000), Micros::ZERO, &w), Some(Micros(-8_000_000)));
        assert_eq!(refund_shortfall(a, paid(2000), Micros(-5_000_000), &w), Some(Micros(-8_000_000)));
        assert_eq!(refund_shortfall(a, paid(2000), Micros(-8_000_000), &w), None, "applied");
        assert_eq!(refund_shortfall(a, paid(2000), Micros(-9_000_000), &w), None, "the webhook counted more (pending): never given back");
        assert_eq!(refund_shortfall(a, paid(600), Micros::ZERO, &w), Some(Micros(-6_000_000)), "never more than was paid");
        assert_eq!(refund_shortfall(&by["ch_b"], paid(2000), Micros::ZERO, &w), None, "in the grace period");
    }
}
