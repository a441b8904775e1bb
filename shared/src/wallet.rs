//! The wallet Durable Object's protocol: JSON messages the chat and admin Workers
//! send to `WalletDO` (one object per user). Keeping them here means both sides
//! compile against the same shapes.

use crate::billing::{BillingStatus, PriceBasis};
use crate::money::Micros;
use serde::{Deserialize, Serialize};

/// `POST /hold`: check the key and the user, then reserve `amount` if the
/// available balance (balance − open holds) covers it. One call, one DO turn.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HoldRequest {
    pub request_id: String,
    pub user_id: String,
    pub key_id: String,
    pub amount: Micros,
    pub ttl_ms: i64,
    pub now_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HoldOutcome {
    /// `balance` is the wallet balance when the hold was placed (holds not deducted).
    Held { balance: Micros, available_after: Micros },
    Insufficient { available: Micros },
    KeyRevoked,
    UserSuspended,
    Frozen,
    RateLimited { retry_after_secs: u32 },
}

/// One usage_ledger row, as the DO writes it to D1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub request_id: String,
    pub user_id: String,
    pub key_id: String,
    pub model: String,
    pub generation_id: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub provider_cost: Micros,
    pub user_price: Micros,
    pub price_basis: PriceBasis,
    pub billing_status: BillingStatus,
    pub upstream_status: Option<u16>,
    pub stream: bool,
    pub cancelled: bool,
    pub session_id: Option<String>,
    pub client_source: Option<String>,
    pub client_version: Option<String>,
    pub latency_ms: i64,
    pub created_at: i64,
}

/// `POST /settle`: release the hold and debit `usage.user_price` (may be zero).
/// Idempotent on `request_id`: a replay returns the first result, changes nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SettleRequest {
    pub usage: UsageRecord,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleOutcome {
    pub balance: Micros,
    pub replay: bool,
}

/// `POST /release`: drop a hold without charging (the request never reached a
/// billable state: validation after hold, upstream refused before generating).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub request_id: String,
}

/// `POST /credit`: add (or, negative, remove) money. Idempotent on `reference`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreditRequest {
    pub user_id: String,
    pub reference: String,
    pub amount: Micros,
    pub kind: String,
    pub reason: Option<String>,
    pub now_ms: i64,
    #[serde(default)]
    pub payment: Option<PaymentEffect>,
}

/// A payment-side record written to D1 in the same batch as the ledger row
/// it caused: the webhook dedupe record and the transaction status commit
/// together with the credit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum PaymentEffect {
    /// A Checkout Session paid: upsert its transaction as `paid`.
    Fulfilled { event_id: String, event_type: String, session_id: String, amount_minor: i64, currency: String, payment_intent: Option<String> },
    /// A later status of a known transaction (refunded, disputed, …).
    StatusChanged { event_id: String, event_type: String, transaction_id: String, status: String },
}

/// `POST /adjust`: bring the total debited (or credited) under `group` to
/// `cumulative`, applying only the difference — for Stripe's cumulative
/// `amount_refunded`, serialised in the wallet so concurrent events cannot
/// double-count. `cumulative` is signed like `amount` (negative = debit).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdjustRequest {
    pub user_id: String,
    pub group: String,
    pub cumulative: Micros,
    pub kind: String,
    pub reason: Option<String>,
    pub now_ms: i64,
    pub payment: Option<PaymentEffect>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditOutcome {
    pub balance: Micros,
    pub replay: bool,
}

/// `POST /key-status`: revoke a key (or mark the user suspended/active).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusChange {
    pub user_id: String,
    pub revoke_key_id: Option<String>,
    pub suspended: Option<bool>,
    /// Frozen wallets refuse new holds (open payment dispute).
    #[serde(default)]
    pub frozen: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHold {
    pub request_id: String,
    pub key_id: String,
    pub amount: Micros,
    pub created_at: i64,
    pub expires_at: i64,
}

/// `GET /state`: the authoritative view, after flushing the outbox to D1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletState {
    pub balance: Micros,
    pub available: Micros,
    pub open_holds: Vec<OpenHold>,
    pub pending_outbox: u64,
    pub frozen: bool,
    pub suspended: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_outcome_is_tagged() {
        let json = serde_json::to_string(&HoldOutcome::Insufficient { available: Micros(5) }).unwrap();
        assert_eq!(json, r#"{"outcome":"insufficient","available":5}"#);
        let back: HoldOutcome = serde_json::from_str(r#"{"outcome":"key_revoked"}"#).unwrap();
        assert_eq!(back, HoldOutcome::KeyRevoked);
    }
}
