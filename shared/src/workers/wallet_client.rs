//! Typed calls from a Worker to the user's `WalletDO` (feature `workers`). The
//! object is addressed by user id, so every wallet operation for one user runs
//! in one single-threaded place.

use crate::error::GatewayError;
use crate::wallet::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Env, Headers, Method, Request, RequestInit, Stub};

pub struct WalletClient {
    stub: Stub,
}

fn internal(context: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("wallet {context}: {e}"))
}

impl WalletClient {
    pub fn for_user(env: &Env, user_id: &str) -> Result<WalletClient, GatewayError> {
        let ns = env.durable_object("WALLET").map_err(|e| internal("binding", e))?;
        let stub = ns.get_by_name(user_id).map_err(|e| internal("stub", e))?;
        Ok(WalletClient { stub })
    }

    async fn call<B: Serialize, R: DeserializeOwned>(&self, op: &str, body: &B) -> Result<(R, Headers), GatewayError> {
        let headers = Headers::new();
        headers.set("content-type", "application/json").map_err(|e| internal(op, e))?;
        let payload = serde_json::to_string(body).map_err(|e| internal(op, e))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_headers(headers).with_body(Some(payload.into()));
        let req = Request::new_with_init(&format!("https://wallet{op}"), &init).map_err(|e| internal(op, e))?;
        let mut resp = self.stub.fetch_with_request(req).await.map_err(|e| internal(op, e))?;
        if resp.status_code() != 200 {
            let text = resp.text().await.unwrap_or_default();
            return Err(internal(op, format!("status {} {text}", resp.status_code())));
        }
        let headers = resp.headers().clone();
        let value = resp.json::<R>().await.map_err(|e| internal(op, e))?;
        Ok((value, headers))
    }

    /// Hands a validated chat request to the wallet object, which holds,
    /// calls the upstream, settles, and answers with the client's response.
    pub async fn exchange(&self, req: &ExchangeRequest, body: &[u8]) -> Result<worker::Response, GatewayError> {
        let mut init = RequestInit::new();
        let framed = worker::js_sys::Uint8Array::from(frame(req, body).as_slice());
        init.with_method(Method::Post).with_body(Some(framed.into()));
        let request = Request::new_with_init("https://wallet/exchange", &init).map_err(|e| internal("/exchange", e))?;
        self.stub.fetch_with_request(request).await.map_err(|e| internal("/exchange", e))
    }

    /// The rest of a stream of this user's (`ReattachRequest`): the wallet
    /// object's streaming response, or its refusal as is.
    pub async fn reattach(&self, req: &ReattachRequest) -> Result<worker::Response, GatewayError> {
        let mut init = RequestInit::new();
        let body = serde_json::to_string(req).map_err(|e| internal("/reattach", e))?;
        init.with_method(Method::Post).with_body(Some(body.into()));
        let request = Request::new_with_init("https://wallet/reattach", &init).map_err(|e| internal("/reattach", e))?;
        self.stub.fetch_with_request(request).await.map_err(|e| internal("/reattach", e))
    }

    /// Settles every hold whose owner is gone and whose deadline has passed
    /// (`force`: every hold not running now). Answers the sweep report.
    pub async fn sweep(&self) -> Result<serde_json::Value, GatewayError> {
        Ok(self.call("/sweep", &serde_json::json!({})).await?.0)
    }

    pub async fn settle(&self, usage: UsageRecord) -> Result<SettleOutcome, GatewayError> {
        Ok(self.call("/settle", &SettleRequest { usage }).await?.0)
    }

    pub async fn release(&self, request_id: &str) -> Result<(), GatewayError> {
        let _: (serde_json::Value, _) = self.call("/release", &ReleaseRequest { request_id: request_id.into() }).await?;
        Ok(())
    }

    pub async fn credit(&self, req: &CreditRequest) -> Result<CreditOutcome, GatewayError> {
        Ok(self.call("/credit", req).await?.0)
    }

    /// A debit applied only if the wallet's available credit covers it, in
    /// the wallet's own turn (`GuardedCredit`); `refused` says when it did not.
    pub async fn debit_from_available(&self, req: &CreditRequest) -> Result<CreditReply, GatewayError> {
        Ok(self.call("/credit", &GuardedCredit { credit: req.clone(), only_from_available: true }).await?.0)
    }

    /// Grants, expiries and take-backs of included credit (plans).
    pub async fn plan(&self, req: &PlanRequest) -> Result<PlanOutcome, GatewayError> {
        Ok(self.call("/plan", req).await?.0)
    }

    pub async fn adjust(&self, req: &AdjustRequest) -> Result<CreditOutcome, GatewayError> {
        Ok(self.call("/adjust", req).await?.0)
    }

    pub async fn change_status(&self, change: &StatusChange) -> Result<(), GatewayError> {
        let _: (serde_json::Value, _) = self.call("/status", change).await?;
        Ok(())
    }

    /// Sets (or removes) a spend cap, or with `change: None` lists them:
    /// every cap with its current spending and holds.
    pub async fn caps(&self, change: &CapChange) -> Result<Vec<crate::caps::CapUse>, GatewayError> {
        Ok(self.call("/caps", change).await?.0)
    }

    /// Authoritative balance and holds; flushes pending ledger rows to D1 first.
    pub async fn state(&self) -> Result<WalletState, GatewayError> {
        Ok(self.call("/state", &serde_json::json!({})).await?.0)
    }
}
