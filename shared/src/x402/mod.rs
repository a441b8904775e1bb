//! x402 (v2): paying per request with a signed USDC authorization instead of
//! an API key. What the gateway offers (`offer.rs`: the `PaymentRequired`
//! answer, sized by the request's hold), what a client sent (`payment.rs`:
//! the payload checked against that offer before the facilitator sees it),
//! and what is settled for it (`settle_amount`). Pure: the facilitator calls
//! and the wallet's bookkeeping live with the Workers
//! (docs/ARCHITECTURE.md, "Keyless calls paid with x402").

pub mod offer;
pub mod payment;
#[cfg(test)]
mod tests;

use crate::money::Micros;
use serde::{Deserialize, Serialize};

pub use offer::Offer;
pub use payment::{read_payment, Payment, Refusal};

/// The protocol version this gateway speaks (it also reads v1 payloads).
pub const VERSION: u64 = 2;
/// Response header: base64 JSON `PaymentRequired` (v2).
pub const PAYMENT_REQUIRED_HEADER: &str = "PAYMENT-REQUIRED";
/// Request header: base64 JSON `PaymentPayload` (v2).
pub const PAYMENT_SIGNATURE_HEADER: &str = "PAYMENT-SIGNATURE";
/// Request header of v1 clients (same encoding, v1 or v2 payload inside).
pub const V1_PAYMENT_HEADER: &str = "X-PAYMENT";
/// Response header: base64 JSON of the settlement (transaction, payer, amount).
pub const PAYMENT_RESPONSE_HEADER: &str = "PAYMENT-RESPONSE";

/// How a payment is settled: `upto` authorizes a maximum and the exact price
/// is settled afterwards (Permit2); `exact` settles the whole authorized
/// amount (EIP-3009), the surplus over the price staying as credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Upto,
    Exact,
}

impl Scheme {
    pub fn parse(text: &str) -> Option<Scheme> {
        match text.trim() {
            "upto" => Some(Scheme::Upto),
            "exact" => Some(Scheme::Exact),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Upto => "upto",
            Scheme::Exact => "exact",
        }
    }
}

/// What is settled on chain for a served request priced `price` under a
/// payment that authorized `authorized`: the price for `upto` (never more
/// than authorized: the hold bounded it), everything for `exact`.
pub fn settle_amount(scheme: Scheme, authorized: Micros, price: Micros) -> Micros {
    match scheme {
        Scheme::Upto => price.min(authorized).max(Micros::ZERO),
        Scheme::Exact => authorized,
    }
}

/// USDC base units (6 decimals) are micro-USD exactly; the asset must be a
/// 6-decimal dollar token (USDC on every chain it is offered on).
pub fn base_units(amount: Micros) -> String {
    amount.0.max(0).to_string()
}

/// A decimal string of base units, as payloads carry amounts.
pub fn parse_base_units(text: &str) -> Option<Micros> {
    let text = text.trim();
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().map(Micros)
}

/// The settlement a payment ended in, as the `PAYMENT-RESPONSE` header and
/// the wallet's record carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub success: bool,
    /// Empty when nothing had to move on chain (`upto` for a free request).
    pub transaction: String,
    pub network: String,
    pub payer: String,
    /// Base units settled.
    pub amount: String,
}

/// Base64 (standard alphabet, padded) of compact JSON: the encoding of every
/// x402 header.
pub fn encode_header(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

/// A header's JSON (padded or not; some clients send URL-safe base64).
pub fn decode_header(text: &str) -> Option<serde_json::Value> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let text = text.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok())?;
    serde_json::from_slice(&bytes).ok()
}

/// An authorization presented again (for another request, or another
/// account): refused wherever it is caught (the D1 claim, the wallet).
pub fn replayed() -> crate::error::GatewayError {
    crate::error::GatewayError::PaymentRefused {
        code: "x402_replayed",
        message: "This payment authorization was already presented for another request; sign a new one for this request.".into(),
    }
}

impl Receipt {
    /// The settlement of `payment` (or its failure: `success: false`, nothing moved).
    pub fn of(payment: &Authorized, success: bool, transaction: &str, amount: Micros) -> Receipt {
        let amount = if success { amount } else { Micros::ZERO };
        Receipt { success, transaction: transaction.to_string(), network: payment.network.clone(), payer: payment.payer.clone(), amount: base_units(amount) }
    }
}

/// A payment the facilitator verified, as the wallet object books it: in the
/// exchange's terms while it is held, then in its own record until settled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Authorized {
    pub scheme: Scheme,
    /// The payer, EIP-55.
    pub payer: String,
    /// `Payment::reference`: the replay guard and the credit's ledger reference.
    pub reference: String,
    pub authorized: Micros,
    /// Unix seconds: past this it can no longer settle.
    pub valid_before: i64,
    pub network: String,
    /// The v2 payload and the requirements it was verified against.
    pub payload: serde_json::Value,
    pub requirements: serde_json::Value,
}

impl Authorized {
    /// The requirements to settle `amount` with: `upto` names the amount to
    /// take; `exact` settles what was verified.
    pub fn settle_requirements(&self, amount: Micros) -> serde_json::Value {
        let mut r = self.requirements.clone();
        if self.scheme == Scheme::Upto {
            r["amount"] = serde_json::Value::String(base_units(amount));
        }
        r
    }
}
