//! What the gateway accepts for one request: x402 `PaymentRequirements`, one
//! per offered scheme, each for the request's true upper bound (the hold the
//! wallet would place), paid in USDC to the treasury on one network.

use super::{base_units, Scheme, VERSION};
use crate::chain::Address;
use crate::money::Micros;
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// CAIP-2, e.g. `eip155:8453` (Base).
    pub network: String,
    /// The USDC contract.
    pub asset: Address,
    /// The treasury (the payee of every payment).
    pub pay_to: Address,
    /// How long a signed payment stays valid (`maxTimeoutSeconds`): long
    /// enough to serve and settle the request, short enough to be no standing
    /// authorization.
    pub max_timeout_secs: u64,
    /// Offered in this order (`upto` first: it settles the exact price).
    pub schemes: Vec<Scheme>,
    /// The token's EIP-712 domain (`exact` signs EIP-3009 over it).
    pub asset_name: String,
    pub asset_version: String,
    /// The facilitator's settling account (`upto` signs it into the permit).
    pub facilitator: Option<Address>,
}

impl Offer {
    pub fn chain_id(&self) -> Option<u64> {
        self.network.strip_prefix("eip155:")?.parse().ok()
    }

    /// The requirements for one scheme, `amount` in base units.
    pub fn requirements(&self, scheme: Scheme, amount: Micros) -> Value {
        let mut extra = json!({"name": self.asset_name, "version": self.asset_version});
        if let (Scheme::Upto, Some(f)) = (scheme, self.facilitator) {
            extra["facilitatorAddress"] = json!(f.checksummed());
        }
        json!({
            "scheme": scheme.as_str(),
            "network": self.network,
            "amount": base_units(amount),
            "asset": self.asset.checksummed(),
            "payTo": self.pay_to.checksummed(),
            "maxTimeoutSeconds": self.max_timeout_secs,
            "extra": extra,
        })
    }

    /// The `PaymentRequired` answer (header and body of a 402): every
    /// offered scheme for `amount`, and `error` saying why and what to do.
    pub fn payment_required(&self, amount: Micros, resource_url: &str, error: &str) -> Value {
        let accepts: Vec<Value> = self.schemes.iter().map(|s| self.requirements(*s, amount)).collect();
        json!({
            "x402Version": VERSION,
            "error": error,
            "resource": {
                "url": resource_url,
                "description": "One model call on the Dexto gateway, billed by the tokens it used.",
                "mimeType": "application/json",
            },
            "accepts": accepts,
        })
    }
}

/// Marks what a `/v1/models` body lists (`data`, or one model) with whether
/// x402 pays for it — every priced model; a free one has nothing to pay —
/// and adds to a list how to pay.
pub fn advertise(body: &mut Value, offer: &Offer) {
    let priced = |m: &Value| ["prompt", "completion", "request"].iter().any(|k| m["pricing"][k].as_str().is_some_and(|p| p.bytes().any(|b| (b'1'..=b'9').contains(&b))));
    match body["data"].as_array_mut() {
        Some(models) => {
            for m in models.iter_mut() {
                m["x402"] = json!(priced(m));
            }
            body["x402"] = json!({
                "version": VERSION,
                "network": offer.network,
                "asset": offer.asset.checksummed(),
                "payTo": offer.pay_to.checksummed(),
                "schemes": offer.schemes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "how": "Call without an API key: the 402 answer's PAYMENT-REQUIRED header lists what this request costs at most. \
                        Sign one of its `accepts` (x402 v2) and repeat the call with the payment in the PAYMENT-SIGNATURE header; \
                        the answer's PAYMENT-RESPONSE header carries the settlement.",
            });
        }
        None => body["x402"] = json!(priced(body)),
    }
}
