//! A payment a client attached (`PAYMENT-SIGNATURE`, or v1's `X-PAYMENT`):
//! read and checked against the offer here, before the facilitator is asked
//! — scheme, network, asset, payee, amount ≥ the hold, validity left — so
//! that a payment this gateway would never accept costs no facilitator call.
//! The signature, the payer's balance and allowance and the nonce's use on
//! chain are the facilitator's `/verify`.

use super::{parse_base_units, Offer, Scheme, VERSION};
use crate::chain::Address;
use crate::money::Micros;
use serde_json::{json, Value};

/// A payment that passed the gateway's own checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Payment {
    pub scheme: Scheme,
    /// Who signed it (the address account it is booked on).
    pub payer: Address,
    /// The authorization's nonce as signed (EIP-3009: 32-byte hex; Permit2: a
    /// decimal uint256): one authorization, one settlement.
    pub nonce: String,
    /// The most it lets the treasury take, in micro-USD (USDC base units).
    pub authorized: Micros,
    /// Unix seconds after which it can no longer be settled.
    pub valid_before: i64,
    /// The v2 payload, as the facilitator is sent it.
    pub payload: Value,
}

impl Payment {
    /// The unique reference of this authorization: its ledger credit and its
    /// replay guard.
    pub fn reference(&self) -> String {
        format!("x402:{}:{}:{}", self.scheme.as_str(), self.payer.lower(), self.nonce.to_ascii_lowercase())
    }
}

/// Why a payment is refused (a 402 that says what to do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// The least validity any payment must have left.
pub const MIN_VALIDITY_SECS: i64 = 30;
/// How much of the offer's `maxTimeoutSeconds` may have passed between the
/// client's signing and its arrival here (clocks and the retry's round trip).
pub const VALIDITY_SLACK_SECS: i64 = 60;

/// Reads `raw` (a decoded payment header) against `offer` for a request
/// whose hold is `hold`, at `now_secs`.
pub fn read_payment(raw: &Value, offer: &Offer, hold: Micros, now_secs: i64) -> Result<Payment, Refusal> {
    let payload = as_v2(raw, offer)?;
    let accepted = &payload["accepted"];
    let scheme = accepted["scheme"].as_str().and_then(Scheme::parse).filter(|s| offer.schemes.contains(s)).ok_or_else(|| {
        refuse("x402_scheme_not_offered", format!("This gateway accepts the x402 schemes {}.", names(&offer.schemes)))
    })?;
    if accepted["network"].as_str() != Some(offer.network.as_str()) {
        return Err(refuse("x402_wrong_network", format!("Pay on {} (the network this gateway settles on).", offer.network)));
    }
    let same = |v: &Value, want: &Address| v.as_str().and_then(|s| Address::parse(s).ok()).as_ref() == Some(want);
    if !same(&accepted["asset"], &offer.asset) {
        return Err(refuse("x402_wrong_asset", format!("Pay in USDC ({}).", offer.asset)));
    }
    if !same(&accepted["payTo"], &offer.pay_to) {
        return Err(refuse("x402_wrong_payee", format!("Pay the treasury {}.", offer.pay_to)));
    }
    let inner = &payload["payload"];
    let signed = match scheme {
        Scheme::Exact => exact_terms(inner, offer)?,
        Scheme::Upto => upto_terms(inner, offer)?,
    };
    if signed.authorized < hold {
        return Err(refuse(
            "x402_amount_too_low",
            format!("This request needs an authorization of at least {} base units (its hold); sign for the amount the 402 asks.", hold.0),
        ));
    }
    // Valid for (about) the whole window the offer asked for: the call is
    // served and settled within it, and a payment signed for less could run
    // out before its settlement.
    let needed = (offer.max_timeout_secs as i64 - VALIDITY_SLACK_SECS).max(MIN_VALIDITY_SECS);
    if signed.valid_before < now_secs + needed {
        return Err(refuse(
            "x402_expired",
            format!("This payment must stay valid for {} seconds (maxTimeoutSeconds); sign a new one when you send it.", offer.max_timeout_secs),
        ));
    }
    Ok(Payment { scheme, payer: signed.payer, nonce: signed.nonce, authorized: signed.authorized, valid_before: signed.valid_before, payload })
}

/// The payload in v2 form. A v1 payload (`scheme`/`network` at the top, no
/// `accepted`) signs the same EIP-3009 authorization, so it is re-addressed
/// to this offer's `exact` requirements; its network must be this one's.
fn as_v2(raw: &Value, offer: &Offer) -> Result<Value, Refusal> {
    match raw["x402Version"].as_u64() {
        Some(VERSION) if raw["accepted"].is_object() && raw["payload"].is_object() => Ok(raw.clone()),
        Some(1) if raw["payload"].is_object() => {
            if raw["scheme"].as_str() != Some("exact") {
                return Err(refuse("x402_scheme_not_offered", "x402 v1 payments are accepted in the exact scheme only."));
            }
            let network = raw["network"].as_str().unwrap_or_default();
            if v1_chain_id(network) != offer.chain_id() {
                return Err(refuse("x402_wrong_network", format!("Pay on {} (the network this gateway settles on).", offer.network)));
            }
            let value = raw["payload"]["authorization"]["value"].as_str().and_then(parse_base_units).unwrap_or(Micros::ZERO);
            Ok(json!({"x402Version": VERSION, "accepted": offer.requirements(Scheme::Exact, value), "payload": raw["payload"]}))
        }
        _ => Err(refuse("x402_malformed", "The payment header is not an x402 payment payload (base64 JSON with x402Version, accepted and payload).")),
    }
}

/// v1 network names of the chains USDC is offered on, or `eip155:<id>`.
fn v1_chain_id(network: &str) -> Option<u64> {
    match network {
        "base" => Some(8453),
        "base-sepolia" => Some(84532),
        other => other.strip_prefix("eip155:")?.parse().ok(),
    }
}

struct Signed {
    payer: Address,
    nonce: String,
    authorized: Micros,
    valid_before: i64,
}

fn malformed(what: &str) -> Refusal {
    refuse("x402_malformed", format!("The payment's {what} is missing or malformed."))
}

fn address(v: &Value, what: &str) -> Result<Address, Refusal> {
    v.as_str().and_then(|s| Address::parse(s).ok()).ok_or_else(|| malformed(what))
}

fn seconds(v: &Value, what: &str) -> Result<i64, Refusal> {
    let text = v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string())).ok_or_else(|| malformed(what))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(what));
    }
    // Far-future deadlines (up to uint256 max) saturate.
    Ok(text.parse::<i64>().unwrap_or(i64::MAX))
}

/// EIP-3009 `transferWithAuthorization` to the treasury.
fn exact_terms(inner: &Value, offer: &Offer) -> Result<Signed, Refusal> {
    let auth = &inner["authorization"];
    if inner["signature"].as_str().is_none() {
        return Err(malformed("signature"));
    }
    if address(&auth["to"], "authorization.to")? != offer.pay_to {
        return Err(refuse("x402_wrong_payee", format!("Pay the treasury {}.", offer.pay_to)));
    }
    let nonce = auth["nonce"].as_str().filter(|n| n.len() == 66 && n.starts_with("0x") && n[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    Ok(Signed {
        payer: address(&auth["from"], "authorization.from")?,
        nonce: nonce.ok_or_else(|| malformed("authorization.nonce"))?.to_string(),
        authorized: auth["value"].as_str().and_then(parse_base_units).ok_or_else(|| malformed("authorization.value"))?,
        valid_before: seconds(&auth["validBefore"], "authorization.validBefore")?,
    })
}

/// A Permit2 witness transfer to the treasury, of USDC.
fn upto_terms(inner: &Value, offer: &Offer) -> Result<Signed, Refusal> {
    let auth = &inner["permit2Authorization"];
    if inner["signature"].as_str().is_none() {
        return Err(malformed("signature"));
    }
    if address(&auth["permitted"]["token"], "permit2Authorization.permitted.token")? != offer.asset {
        return Err(refuse("x402_wrong_asset", format!("Pay in USDC ({}).", offer.asset)));
    }
    if address(&auth["witness"]["to"], "permit2Authorization.witness.to")? != offer.pay_to {
        return Err(refuse("x402_wrong_payee", format!("Pay the treasury {}.", offer.pay_to)));
    }
    let nonce = auth["nonce"].as_str().filter(|n| !n.is_empty() && n.len() <= 78 && n.bytes().all(|b| b.is_ascii_digit()));
    // One uint256, one spelling: "0123" and "123" are the same nonce (and
    // the same signature), so the reference must not tell them apart.
    let canonical = nonce.ok_or_else(|| malformed("permit2Authorization.nonce"))?.trim_start_matches('0');
    Ok(Signed {
        payer: address(&auth["from"], "permit2Authorization.from")?,
        nonce: if canonical.is_empty() { "0".into() } else { canonical.to_string() },
        authorized: auth["permitted"]["amount"].as_str().and_then(parse_base_units).ok_or_else(|| malformed("permit2Authorization.permitted.amount"))?,
        valid_before: seconds(&auth["deadline"], "permit2Authorization.deadline")?,
    })
}

fn names(schemes: &[Scheme]) -> String {
    schemes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" and ")
}
