//! The x402 facilitator (`X402_FACILITATOR_URL`; a hosted one in production,
//! tools/x402/facilitator.mjs locally): `POST /verify` before the upstream
//! call, `POST /settle` after the charge, `GET /supported` for the account
//! that settles `upto` payments. It is trusted to check signatures and
//! balances and to submit settlements; the chain is the record of what it
//! settled (docs/ARCHITECTURE.md, "Keyless calls paid with x402").

use dexto_shared::chain::Address;
use dexto_shared::error::GatewayError;
use dexto_shared::secret::Secret;
use dexto_shared::x402::{Authorized, Receipt, VERSION};
use serde_json::{json, Value};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

pub struct Facilitator {
    url: String,
    /// `X402_FACILITATOR_AUTH` (secret): a bearer token for hosted facilitators.
    auth: Option<Secret<String>>,
}

thread_local! {
    /// The settling account `/supported` named, per isolate, and when it
    /// was asked (None: not asked yet). An answer without one is asked again
    /// after `SIGNER_RETRY_MS`: a facilitator briefly down must not turn
    /// `upto` off for the isolate's life.
    static SIGNER: std::cell::RefCell<Option<(Option<Address>, i64)>> = const { std::cell::RefCell::new(None) };
}

const SIGNER_RETRY_MS: i64 = 60_000;

/// What `/verify` said of a payment.
pub enum Verdict {
    Valid { payer: Option<String> },
    Invalid { reason: String },
}

impl Facilitator {
    pub fn from_env(env: &Env) -> Option<Facilitator> {
        let url = env.var("X402_FACILITATOR_URL").ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty())?;
        let auth = env.secret("X402_FACILITATOR_AUTH").ok().map(|s| s.to_string()).filter(|s| !s.is_empty()).map(Secret::new);
        Some(Facilitator { url: url.trim().trim_end_matches('/').to_string(), auth })
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let headers = Headers::new();
        let _ = headers.set("Content-Type", "application/json");
        if let Some(token) = &self.auth {
            let _ = headers.set("Authorization", &format!("Bearer {}", token.expose()));
        }
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        if let Some(body) = body {
            init.with_body(Some(body.to_string().into()));
        }
        let req = Request::new_with_init(&format!("{}{path}", self.url), &init).map_err(|_| format!("{path}: bad facilitator URL"))?;
        // The runtime's error text can carry the URL: name only the path.
        let mut resp = Fetch::Request(req).send().await.map_err(|_| format!("{path}: unreachable"))?;
        let status = resp.status_code();
        let value = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Asks whether `payment` pays for its requirements now (signature,
    /// balance, allowance, nonce unused). A facilitator that cannot answer is
    /// an outage: the request is refused, never served unverified.
    pub async fn verify(&self, payload: &Value, requirements: &Value) -> Result<Verdict, GatewayError> {
        let body = json!({"x402Version": VERSION, "paymentPayload": payload, "paymentRequirements": requirements});
        let (status, reply) = self.call(Method::Post, "/verify", Some(&body)).await.map_err(outage)?;
        match reply["isValid"].as_bool() {
            Some(true) => Ok(Verdict::Valid { payer: reply["payer"].as_str().map(str::to_string) }),
            Some(false) => {
                // The client sees a reason code (x402's are snake_case), never a
                // third party's free text; the text goes to the log.
                let code = reply["invalidReason"].as_str().filter(|r| !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
                if let Some(message) = reply["invalidMessage"].as_str() {
                    dexto_shared::log::event("x402.verify_refused", json!({"reason": reply["invalidReason"], "message": message}));
                }
                Ok(Verdict::Invalid { reason: code.unwrap_or("invalid_payment").to_string() })
            }
            None => Err(outage(format!("/verify answered {status} without isValid"))),
        }
    }

    /// Settles `amount` of `payment`. Err: why not (the wallet keeps it due).
    pub async fn settle(&self, payment: &Authorized, amount: dexto_shared::money::Micros) -> Result<Receipt, String> {
        let body = json!({"x402Version": VERSION, "paymentPayload": payment.payload, "paymentRequirements": payment.settle_requirements(amount)});
        let (status, reply) = self.call(Method::Post, "/settle", Some(&body)).await?;
        if reply["success"].as_bool() != Some(true) {
            let reason = reply["errorReason"].as_str().or(reply["errorMessage"].as_str()).or(reply["error"].as_str()).unwrap_or("no reason given");
            return Err(format!("/settle {status}: {reason}"));
        }
        Ok(Receipt::of(payment, true, reply["transaction"].as_str().unwrap_or_default(), amount))
    }

    /// The account that submits `upto` settlements (signed into each permit),
    /// from `/supported`; None if the facilitator names none or cannot be asked.
    pub async fn signer(&self) -> Option<Address> {
        let now = dexto_shared::http::now_ms();
        if let Some((known, at)) = SIGNER.with(|s| *s.borrow()) {
            if known.is_some() || now - at < SIGNER_RETRY_MS {
                return known;
            }
        }
        let reply = match self.call(Method::Get, "/supported", None).await {
            Ok((_, reply)) => reply,
            Err(_) => {
                SIGNER.with(|s| *s.borrow_mut() = Some((None, now)));
                return None;
            }
        };
        let signer = reply["signers"]
            .as_object()
            .and_then(|m| m.iter().find(|(family, _)| family.starts_with("eip155")))
            .and_then(|(_, list)| list.as_array()?.first()?.as_str().map(str::to_string))
            .and_then(|a| Address::parse(&a).ok());
        SIGNER.with(|s| *s.borrow_mut() = Some((signer, now)));
        signer
    }
}

fn outage(detail: impl std::fmt::Display) -> GatewayError {
    // The detail (never the URL) is for logs; the client sees a retryable 502.
    dexto_shared::log::event("x402.facilitator_unavailable", json!({"detail": detail.to_string()}));
    GatewayError::UpstreamUnavailable
}
