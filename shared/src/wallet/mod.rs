//! The wallet Durable Object's protocol: JSON messages the chat and admin Workers
//! send to `WalletDO` (one object per user). Keeping them here means both sides
//! compile against the same shapes.

use crate::billing::{BillingStatus, PriceBasis};
use crate::caps::{CapUse, Scope, Window};
use crate::money::Micros;
use serde::{Deserialize, Serialize};

mod exchange;
pub use exchange::{frame, unframe, ExchangeRequest, ExchangeTerms};

/// The key id keyless (x402) calls are booked under on the payer's account.
pub const X402_KEY_ID: &str = "x402";

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
    /// The markup the charge was priced with: what lets reconciliation re-price
    /// a `needs_review` row exactly from the upstream's record. (Absent in
    /// outbox entries written before it existed.)
    #[serde(default)]
    pub markup_bps: Option<u32>,
    /// The API dialect the client spoke (rows written before: chat).
    #[serde(default)]
    pub api: crate::dialects::Dialect,
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

/// `POST /credit` as the wallet reads it: a `CreditRequest` (same JSON) and,
/// for a debit that may only come out of the credit the user has free, the
/// guard. Callers without the guard send a plain `CreditRequest`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GuardedCredit {
    #[serde(flatten)]
    pub credit: CreditRequest,
    /// Apply it only if `debit_refusal` finds nothing against it, checked in
    /// the same turn as the debit. A refusal is final for its reference: sent
    /// again, it is refused again (so two senders of one reference, e.g. a
    /// retry and reconciliation, cannot get different answers).
    #[serde(default)]
    pub only_from_available: bool,
}

/// Why the wallet refused a guarded debit (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DebitRefusal {
    /// Available credit (balance less open holds, as admission counts it) was short.
    Short { available: Micros },
    Frozen,
    Suspended,
}

/// What a guarded debit of `amount` (negative) meets in a wallet with this
/// `balance`, `held` in open holds, and these flags: a refusal, or `None`.
pub fn debit_refusal(amount: Micros, balance: Micros, held: Micros, frozen: bool, suspended: bool) -> Option<DebitRefusal> {
    let available = balance.saturating_sub(held);
    if suspended {
        Some(DebitRefusal::Suspended)
    } else if frozen {
        Some(DebitRefusal::Frozen)
    } else if available.0.saturating_add(amount.0) < 0 {
        Some(DebitRefusal::Short { available: available.max(Micros::ZERO) })
    } else {
        None
    }
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

pub use crate::plans::wallet_op::{PlanLimits, PlanOutcome, PlanRequest, PlanStep};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditOutcome {
    pub balance: Micros,
    pub replay: bool,
}

/// What `/credit` answers: a `CreditOutcome` (same JSON), and for a guarded
/// debit the refusal, if it was refused (`replay`: refused before, under the
/// same reference).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditReply {
    #[serde(flatten)]
    pub outcome: CreditOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<DebitRefusal>,
}

/// `POST /key-status`: revoke a key (or mark the user suspended/active).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusChange {
    pub user_id: String,
    pub revoke_key_id: Option<String>,
    pub suspended: Option<bool>,
    /// Frozen wallets refuse new holds (open payment dispute).
    #[serde(default)]
    pub frozen: Option<bool>,
    /// With `revoke_key_id`: the key that replaces it (a rotation). Its caps
    /// and the spending counted against them move to the replacement in the
    /// same turn, so rotating never loosens a key's limits.
    #[serde(default)]
    pub replaced_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHold {
    pub request_id: String,
    pub key_id: String,
    pub amount: Micros,
    pub created_at: i64,
    pub expires_at: i64,
}

/// `POST /caps`: set (or, `limit: None`, remove) a spend cap. Answers every
/// cap of the wallet with what counts against it now (`Vec<CapUse>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CapChange {
    pub user_id: String,
    /// Whose caps this changes (a user's request never touches an operator's).
    #[serde(default)]
    pub owner: crate::caps::Owner,
    /// None: only list the caps.
    pub change: Option<(Scope, Window, Option<Micros>)>,
    /// The caller's clock: read by objects of the build before this one
    /// during a deploy; this build reads its own. Remove once a release has passed.
    pub now_ms: i64,
}

/// `GET /state`: the authoritative view, after flushing the outbox to D1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletState {
    pub balance: Micros,
    /// The included bucket of `balance` (plans); purchased = balance − included.
    #[serde(default)]
    pub included: Micros,
    pub available: Micros,
    pub open_holds: Vec<OpenHold>,
    pub pending_outbox: u64,
    pub frozen: bool,
    pub suspended: bool,
    #[serde(default)]
    pub caps: Vec<CapUse>,
}

/// `POST /reattach`: a reader for the rest of a stream of this wallet, after
/// the event with id `after` (0: from its start).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReattachRequest {
    pub request_id: String,
    pub after: u64,
    /// The envelope a refusal comes in.
    #[serde(default)]
    pub dialect: crate::dialects::Dialect,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_debit_is_refused_unless_the_available_credit_covers_it() {
        let ten = Micros(10_000_000);
        assert_eq!(debit_refusal(Micros(-10_000_000), ten, Micros::ZERO, false, false), None);
        assert_eq!(debit_refusal(Micros(-10_000_000), ten, Micros(1), false, false), Some(DebitRefusal::Short { available: Micros(9_999_999) }));
        // Holds beyond the balance (a negative wallet) leave nothing available.
        assert_eq!(debit_refusal(Micros(-1), Micros(-5), Micros(3), false, false), Some(DebitRefusal::Short { available: Micros::ZERO }));
        assert_eq!(debit_refusal(Micros(-1), ten, Micros::ZERO, true, false), Some(DebitRefusal::Frozen));
        assert_eq!(debit_refusal(Micros(-1), ten, Micros::ZERO, true, true), Some(DebitRefusal::Suspended));
    }

    #[test]
    fn the_guard_and_the_refusal_keep_the_credit_json_compatible() {
        let plain = CreditRequest { user_id: "u".into(), reference: "r".into(), amount: Micros(-5), kind: "k".into(), reason: None, now_ms: 1, payment: None };
        let read: GuardedCredit = serde_json::from_value(serde_json::to_value(&plain).unwrap()).unwrap();
        assert!(!read.only_from_available);
        assert_eq!((read.credit.reference, read.credit.amount), ("r".to_string(), Micros(-5)));
        let guarded = serde_json::to_value(GuardedCredit { credit: plain, only_from_available: true }).unwrap();
        assert_eq!((guarded["only_from_available"].clone(), guarded["amount"].clone()), (serde_json::json!(true), serde_json::json!(-5)));

        let applied = CreditReply { outcome: CreditOutcome { balance: Micros(3), replay: false }, refused: None };
        assert_eq!(serde_json::to_value(&applied).unwrap(), serde_json::json!({"balance": 3, "replay": false}));
        let refused = CreditReply { outcome: CreditOutcome { balance: Micros(3), replay: true }, refused: Some(DebitRefusal::Short { available: Micros(2) }) };
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(serde_json::from_value::<CreditReply>(json.clone()).unwrap(), refused);
        assert_eq!(serde_json::from_value::<CreditOutcome>(json).unwrap(), refused.outcome);
    }
}
