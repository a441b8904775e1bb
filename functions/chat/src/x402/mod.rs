//! Keyless calls paid per request with x402 (docs/ARCHITECTURE.md, "Keyless
//! calls paid with x402"): a model call without an API key is answered 402
//! with what the gateway accepts for it (its hold, in USDC); retried with a
//! signed payment, the payment is checked here and verified by the
//! facilitator before anything else happens, and the call then runs through
//! the payer's wallet object like any other — the payment backing its hold,
//! settled for the charge once it is known (`wallet/x402_settle.rs`).

mod account;
pub mod facilitator;

use dexto_shared::auth::Caller;
use dexto_shared::chain::Address;
use dexto_shared::dialects::Dialect;
use dexto_shared::error::GatewayError;
use dexto_shared::evm_rpc::ChainConfig;
use dexto_shared::http::{now_ms, ERROR_CODE_HEADER, REQUEST_ID_HEADER};
use dexto_shared::money::Micros;
use dexto_shared::wallet::X402_KEY_ID;
use dexto_shared::x402::{self, Authorized, Offer, Scheme};
pub use account::prune_claims;
use facilitator::{Facilitator, Verdict};
use worker::{Env, Headers, Response, Result};

/// x402 as this deployment configured it: on when `X402_FACILITATOR_URL`
/// and the chain settings (`EVM_CHAIN_ID`, `USDC_CONTRACT`,
/// `TREASURY_ADDRESS`) are set.
pub struct Keyless {
    pub offer: Offer,
    pub facilitator: Facilitator,
    /// Paid calls per minute per payer (`X402_RATE_LIMIT_PER_MINUTE`).
    pub per_payer_per_minute: u32,
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty())
}

impl Keyless {
    pub async fn from_env(env: &Env) -> Option<Keyless> {
        let facilitator = Facilitator::from_env(env)?;
        let chain = ChainConfig::from_env(env)?;
        let mut schemes: Vec<Scheme> = var(env, "X402_SCHEMES").unwrap_or_else(|| "upto,exact".into()).split(',').filter_map(Scheme::parse).collect();
        // `upto` signs the facilitator's settling account into the permit:
        // without it no client can build an upto payment.
        let signer = match schemes.contains(&Scheme::Upto) {
            true => facilitator.signer().await,
            false => None,
        };
        if signer.is_none() {
            schemes.retain(|s| *s != Scheme::Upto);
        }
        let offer = Offer {
            network: format!("eip155:{}", chain.chain_id),
            asset: chain.token,
            pay_to: chain.treasury,
            max_timeout_secs: var(env, "X402_MAX_TIMEOUT_SECONDS").and_then(|v| v.trim().parse().ok()).unwrap_or(300),
            schemes,
            asset_name: var(env, "X402_ASSET_NAME").unwrap_or_else(|| "USD Coin".into()),
            asset_version: var(env, "X402_ASSET_VERSION").unwrap_or_else(|| "2".into()),
            facilitator: signer,
        };
        let per_payer_per_minute = var(env, "X402_RATE_LIMIT_PER_MINUTE").and_then(|v| v.trim().parse().ok()).unwrap_or(60);
        (!offer.schemes.is_empty()).then_some(Keyless { offer, facilitator, per_payer_per_minute })
    }
}

/// A request with no API key at all (the only kind x402 is offered to: a
/// wrong key stays a 401).
pub fn carries_no_key(headers: &Headers, dialect: Dialect) -> bool {
    let has = |name: &str| headers.has(name).unwrap_or(false);
    let keyed = has("Authorization") || (dialect == Dialect::Messages && has("x-api-key"));
    !keyed
}

/// The payer's account as a caller, and the verified payment.
pub struct Paid {
    pub caller: Caller,
    pub payment: Authorized,
}

fn refused(code: &'static str, message: impl Into<String>) -> GatewayError {
    GatewayError::PaymentRefused { code, message: message.into() }
}

/// Throttles, reads and verifies the request's payment for a hold of `hold`.
/// A request without one is refused with the offer (`x402_payment_required`).
pub async fn authorize(headers: &Headers, env: &Env, keyless: &Keyless, hold: Micros) -> std::result::Result<Paid, GatewayError> {
    let ip = headers.get("CF-Connecting-IP").ok().flatten().unwrap_or_else(|| "unknown".into());
    dexto_shared::throttle::check(env, "x402", &[("X402_PER_IP", ip)]).await?;
    let header = [x402::PAYMENT_SIGNATURE_HEADER, x402::V1_PAYMENT_HEADER].iter().find_map(|h| headers.get(h).ok().flatten());
    let Some(header) = header else {
        return Err(refused(
            "x402_payment_required",
            "Send your Dexto API key (Authorization: Bearer $DEXTO_API_KEY), or pay for this request with x402: \
             sign one of `accepts` and send it base64-encoded in the PAYMENT-SIGNATURE header.",
        ));
    };
    let raw = x402::decode_header(&header).ok_or_else(|| refused("x402_malformed", "The payment header is not base64-encoded JSON."))?;
    let payment = x402::read_payment(&raw, &keyless.offer, hold, now_ms() / 1000).map_err(|r| refused(r.code, r.message))?;
    let requirements = keyless.offer.requirements(payment.scheme, payment.authorized);
    match keyless.facilitator.verify(&payment.payload, &requirements).await? {
        Verdict::Invalid { reason } => {
            return Err(refused(
                "x402_invalid",
                format!("The facilitator refused this payment ({reason}): sign a new one for the amount asked, from an address that holds that much USDC."),
            ))
        }
        Verdict::Valid { payer } => {
            if payer.as_deref().and_then(|p| Address::parse(p).ok()).is_some_and(|p| p != payment.payer) {
                return Err(refused("x402_invalid", "The payment's signer is not its payer."));
            }
        }
    }
    let user_id = account::claim(env, &payment.payer, &payment.reference()).await?;
    Ok(Paid {
        caller: Caller {
            user_id,
            key_id: X402_KEY_ID.into(),
            scopes: vec![],
            expires_at: None,
            allowed_models: None,
            rate_limit_per_minute: Some(keyless.per_payer_per_minute),
        },
        payment: Authorized {
            scheme: payment.scheme,
            payer: payment.payer.checksummed(),
            reference: payment.reference(),
            authorized: payment.authorized,
            valid_before: payment.valid_before,
            network: keyless.offer.network.clone(),
            payload: payment.payload,
            requirements,
        },
    })
}

/// The 402 of a keyless request: x402's `PaymentRequired` (header, and the
/// same JSON as the body) for this request's hold, `error` saying why.
pub fn payment_required(keyless: &Keyless, hold: Micros, resource_url: &str, code: &str, message: &str, request_id: &str) -> Result<Response> {
    let required = keyless.offer.payment_required(hold, resource_url, message);
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set(x402::PAYMENT_REQUIRED_HEADER, &x402::encode_header(&required))?;
    headers.set(ERROR_CODE_HEADER, code)?;
    headers.set(REQUEST_ID_HEADER, request_id)?;
    Ok(Response::from_bytes(required.to_string().into_bytes())?.with_status(402).with_headers(headers))
}
