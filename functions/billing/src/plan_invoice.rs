//! Reading Stripe's invoices and events for plans (docs/ARCHITECTURE.md,
//! "Plans"): which price, subscription and user an invoice names, whether it
//! pays for a period, and times in ms. Shared by the lifecycle (plans.rs),
//! its failures (plan_failures.rs) and the reconciliation.

use crate::event::{text, Event};
use dexto_shared::http::now_ms;
use serde_json::Value;

/// The price of an invoice line or subscription item, in either of Stripe's shapes.
pub fn price_of(line: &Value) -> Option<&str> {
    text(line, "/price/id").or_else(|| text(line, "/pricing/price_details/price")).or_else(|| text(line, "/plan/id"))
}

/// The subscription an invoice bills, in either of Stripe's shapes.
pub fn invoice_subscription(obj: &Value) -> Option<&str> {
    text(obj, "/subscription").or_else(|| text(obj, "/parent/subscription_details/subscription"))
}

/// Our user, from the subscription's metadata (set at Checkout).
pub fn invoice_user(obj: &Value) -> Option<&str> {
    text(obj, "/subscription_details/metadata/user_id").or_else(|| text(obj, "/parent/subscription_details/metadata/user_id"))
}

/// Stripe's seconds as ms.
pub fn ms(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64).map(|s| s.saturating_mul(1000))
}

/// `stripe_transactions.kind` of a paid plan invoice (a period's or an upgrade's).
pub const PLAN_INVOICE: &str = "plan_invoice";

/// When Stripe created the event (ms), else now.
pub fn event_ms(event: &Event) -> i64 {
    if event.created > 0 { event.created * 1000 } else { now_ms() }
}

/// Whether an invoice pays for a period of its subscription (its first or a
/// renewal), not an upgrade's proration or a one-off.
pub fn is_period_invoice(invoice: &Value) -> bool {
    matches!(text(invoice, "/billing_reason"), Some("subscription_create" | "subscription_cycle"))
}
