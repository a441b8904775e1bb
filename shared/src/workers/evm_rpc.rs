//! The chain, read over JSON-RPC (feature `workers`): `EVM_RPC_URL` (a secret
//! in production: hosted RPC URLs carry their API key), and the payment
//! settings it is read against — `EVM_CHAIN_ID`, `USDC_CONTRACT`,
//! `TREASURY_ADDRESS`, `EVM_CONFIRMATIONS` (depth that counts as final on a
//! node without the `finalized` tag). Only reads: the gateway never signs.

use crate::chain::erc20::{address_topic, authorization_used_topic, final_through, is_x402_settlement_log, x402_settlement_topics, X402_UPTO_PROXY, quantity, RpcLog, RpcReceipt, TRANSFER_TOPIC};
use crate::chain::Address;
use crate::error::GatewayError;
use serde_json::{json, Value};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

thread_local! {
    static CHAIN_ID: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Confirmations that count as final where the node names no finalized block.
const DEFAULT_CONFIRMATIONS: u64 = 64;

#[derive(Clone, Debug)]
pub struct ChainConfig {
    pub chain_id: u64,
    pub token: Address,
    pub treasury: Address,
    /// Set (`EVM_CONFIRMATIONS`): finality by depth, whatever the node's tag
    /// says. Unset: the node's `finalized` block, else `DEFAULT_CONFIRMATIONS`.
    pub confirmations: Option<u64>,
}

impl ChainConfig {
    /// None while crypto top-ups are not configured.
    pub fn from_env(env: &Env) -> Option<ChainConfig> {
        let var = |n: &str| env.var(n).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
        Some(ChainConfig {
            chain_id: var("EVM_CHAIN_ID")?.trim().parse().ok()?,
            token: Address::parse(var("USDC_CONTRACT")?.trim()).ok()?,
            treasury: Address::parse(var("TREASURY_ADDRESS")?.trim()).ok()?,
            confirmations: var("EVM_CONFIRMATIONS").and_then(|c| c.trim().parse().ok()),
        })
    }

    pub fn required(env: &Env) -> Result<ChainConfig, GatewayError> {
        ChainConfig::from_env(env).ok_or_else(|| GatewayError::NotFound("Crypto top-ups are not enabled on this gateway.".into()))
    }
}

pub struct Rpc {
    url: String,
}

fn unavailable(detail: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("chain rpc: {detail}"))
}

impl Rpc {
    pub fn from_env(env: &Env) -> Result<Rpc, GatewayError> {
        let url = env.secret("EVM_RPC_URL").map(|s| s.to_string()).or_else(|_| env.var("EVM_RPC_URL").map(|v| v.to_string())).unwrap_or_default();
        if url.is_empty() {
            return Err(GatewayError::NotFound("Crypto top-ups are not enabled on this gateway.".into()));
        }
        Ok(Rpc { url })
    }

    /// The node's reply: `Ok(Ok(result))`, or `Ok(Err(json-rpc error))` when
    /// the node answered with an error object; transport and HTTP failures
    /// are `Err`.
    async fn reply(&self, method: &str, params: Value) -> Result<Result<Value, Value>, GatewayError> {
        let headers = Headers::new();
        headers.set("Content-Type", "application/json").map_err(unavailable)?;
        let mut init = RequestInit::new();
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        init.with_method(Method::Post).with_headers(headers).with_body(Some(body.to_string().into()));
        // Errors here can carry the RPC URL (and its API key): never shown or logged.
        let req = Request::new_with_init(&self.url, &init).map_err(|_| unavailable(format!("{method}: bad EVM_RPC_URL")))?;
        crate::ops::count(|o| o.subrequests += 1);
        let mut resp = Fetch::Request(req).send().await.map_err(|_| unavailable(format!("{method}: unreachable")))?;
        if resp.status_code() != 200 {
            return Err(unavailable(format!("{method}: status {}", resp.status_code())));
        }
        let reply: Value = resp.json().await.map_err(|_| unavailable(format!("{method}: not JSON")))?;
        Ok(match reply.get("error") {
            Some(err) => Err(err.clone()),
            None => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
        })
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, GatewayError> {
        self.reply(method, params).await?.map_err(|err| unavailable(format!("{method}: {}", err["message"])))
    }

    /// The node's chain id, asked once per isolate (it does not change).
    pub async fn chain_id(&self) -> Result<u64, GatewayError> {
        if let Some(id) = CHAIN_ID.with(|c| c.get()) {
            return Ok(id);
        }
        let id = self.call("eth_chainId", json!([])).await?.as_str().and_then(quantity).ok_or_else(|| unavailable("eth_chainId"))?;
        CHAIN_ID.with(|c| c.set(Some(id)));
        Ok(id)
    }

    pub async fn receipt(&self, tx_hash: &str) -> Result<Option<RpcReceipt>, GatewayError> {
        let r = self.call("eth_getTransactionReceipt", json!([tx_hash])).await?;
        if r.is_null() {
            return Ok(None);
        }
        serde_json::from_value(r).map(Some).map_err(|e| unavailable(format!("receipt: {e}")))
    }

    /// Whether the node knows the transaction (mined or waiting to be).
    pub async fn knows_transaction(&self, tx_hash: &str) -> Result<bool, GatewayError> {
        Ok(!self.call("eth_getTransactionByHash", json!([tx_hash])).await?.is_null())
    }

    pub async fn head(&self) -> Result<u64, GatewayError> {
        self.call("eth_blockNumber", json!([])).await?.as_str().and_then(quantity).ok_or_else(|| unavailable("eth_blockNumber"))
    }

    /// The `finalized` block's number, or None where the node has no such
    /// tag (it answers the tag with an error object, or with no block). A
    /// failed call is an error, never "no tag": that would quietly swap
    /// the chain's finality for a depth.
    pub async fn finalized(&self) -> Result<Option<u64>, GatewayError> {
        match self.reply("eth_getBlockByNumber", json!(["finalized", false])).await? {
            Ok(block) => Ok(block["number"].as_str().and_then(quantity)),
            Err(_) => Ok(None),
        }
    }

    /// The hash of the block at `number` now (None: beyond the head).
    pub async fn block_hash(&self, number: u64) -> Result<Option<String>, GatewayError> {
        let block = self.call("eth_getBlockByNumber", json!([format!("0x{number:x}"), false])).await?;
        Ok(block["hash"].as_str().map(str::to_lowercase))
    }

    /// `Transfer` logs of `token` to `to` in blocks `from..=through`.
    pub async fn transfers_to(&self, token: &Address, to: &Address, from: u64, through: u64) -> Result<Vec<RpcLog>, GatewayError> {
        let filter = json!({"address": token.lower(), "fromBlock": format!("0x{from:x}"), "toBlock": format!("0x{through:x}"),
            "topics": [TRANSFER_TOPIC, Value::Null, address_topic(to)]});
        serde_json::from_value(self.call("eth_getLogs", json!([filter])).await?).map_err(|e| unavailable(format!("logs: {e}")))
    }

    /// `AuthorizationUsed(authorizer, nonce)` logs of `token` (EIP-3009) in
    /// blocks `from..=through`.
    pub async fn authorization_uses(&self, token: &Address, authorizer: &Address, nonce: &str, from: u64, through: u64) -> Result<Vec<RpcLog>, GatewayError> {
        let filter = json!({"address": token.lower(), "fromBlock": format!("0x{from:x}"), "toBlock": format!("0x{through:x}"),
            "topics": [authorization_used_topic(), address_topic(authorizer), nonce.to_ascii_lowercase()]});
        serde_json::from_value(self.call("eth_getLogs", json!([filter])).await?).map_err(|e| unavailable(format!("logs: {e}")))
    }

    /// The logs that mark x402 settlements (`erc20::is_x402_settlement_log`)
    /// in blocks `from..=through`.
    pub async fn x402_settlements(&self, token: &Address, from: u64, through: u64) -> Result<Vec<RpcLog>, GatewayError> {
        let proxy = Address::parse(X402_UPTO_PROXY).map_err(|_| unavailable("proxy address"))?;
        let filter = json!({"address": [token.lower(), proxy.lower()], "fromBlock": format!("0x{from:x}"), "toBlock": format!("0x{through:x}"),
            "topics": [x402_settlement_topics()]});
        let logs: Vec<RpcLog> = serde_json::from_value(self.call("eth_getLogs", json!([filter])).await?).map_err(|e| unavailable(format!("logs: {e}")))?;
        Ok(logs.into_iter().filter(|l| is_x402_settlement_log(l, token)).collect())
    }

    /// The highest block that is final now, by the tag or by depth.
    pub async fn final_block(&self, config: &ChainConfig) -> Result<u64, GatewayError> {
        let finalized = match config.confirmations {
            Some(_) => None,
            None => self.finalized().await?,
        };
        let head = if finalized.is_some() { 0 } else { self.head().await? };
        Ok(final_through(finalized, head, config.confirmations.unwrap_or(DEFAULT_CONFIRMATIONS)))
    }
}
