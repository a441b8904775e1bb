//! USDC top-ups verified on chain (`docs/ARCHITECTURE.md`, "Crypto top-ups"):
//! nothing is credited that the chain does not show, final.
//!
//! - `POST /api/billing/crypto/confirm {tx_hash}` (session): judges the
//!   transaction's receipt, and credits its transfer to the treasury once
//!   final — 202 until then (the cron credits it when it is).
//! - `GET /api/billing/crypto` (session): the chain, token and treasury to
//!   pay, and the account's transfers.
//! - The cron (`scan.rs`): pending transfers, and every transfer to the
//!   treasury since its checkpoint, as an indexer would.

pub mod scan;
mod settle;

use crate::ApiResult;
use dexto_shared::chain::erc20::{judge, Payment};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::evm_rpc::{ChainConfig, Rpc};
use dexto_shared::http::{json_object, ok_json};
use serde_json::{json, Value};
use settle::Settled;
use worker::{Env, Request};

fn tx_hash(body: &Value) -> Result<String, GatewayError> {
    let hash = body.get("tx_hash").and_then(Value::as_str).unwrap_or("").trim().to_lowercase();
    let ok = hash.len() == 66 && hash.starts_with("0x") && hash[2..].bytes().all(|c| c.is_ascii_hexdigit());
    ok.then_some(hash).ok_or_else(|| GatewayError::BadRequest("Send {\"tx_hash\": \"0x…\"}: the 32-byte hash of your USDC transfer.".into()))
}

pub async fn confirm(req: &mut Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate(req.headers(), env).await?;
    // Each confirm costs calls to the RPC provider, whose quota every user's top-ups share.
    let limits = [("CRYPTO_CONFIRM_PER_USER", format!("user:{}", user.id)), ("CRYPTO_CONFIRM_GLOBAL", "all".to_string())];
    dexto_shared::throttle::check(env, "crypto.confirm", &limits).await?;
    let hash = tx_hash(&json_object(req).await?)?;
    let config = ChainConfig::required(env)?;
    let rpc = Rpc::from_env(env)?;
    let chain = config.chain_id;
    // Only the configured chain's word counts: a node on another chain is a misconfiguration.
    let served = rpc.chain_id().await?;
    if served != chain {
        return Err(GatewayError::Internal(format!("EVM_RPC_URL serves chain {served}, configured {chain}")));
    }
    let Some(receipt) = rpc.receipt(&hash).await? else {
        if rpc.knows_transaction(&hash).await? {
            return ok_json(202, &json!({"status": "pending", "tx_hash": hash, "message": "The transaction is not mined yet; it is credited once it is final."}));
        }
        return Err(GatewayError::NotFound(format!(
            "No transaction {hash} on chain {chain}. Check the hash, and that you sent USDC on that network (Base is 8453)."
        )));
    };
    let transfers = match judge(&receipt, &config.token, &config.treasury) {
        Payment::X402 => {
            return Err(GatewayError::BadRequest(format!(
                "Transaction {hash} settles x402 payments for model calls; they are booked on the account that made the calls, not as a top-up. \
                 To add credit, send USDC to the treasury with a plain transfer."
            )))
        }
        Payment::Reverted => return Err(GatewayError::BadRequest(format!("Transaction {hash} reverted: no USDC moved, nothing to credit."))),
        Payment::WrongToken => return Err(GatewayError::BadRequest(format!("Transaction {hash} moves no USDC (token {}); only USDC is accepted.", config.token))),
        Payment::WrongRecipient => return Err(GatewayError::BadRequest(format!("Transaction {hash} does not pay the treasury {}; send USDC to that address.", config.treasury))),
        Payment::ToTreasury(transfers) => transfers,
    };
    // Every sender first: one of another account's refuses the whole confirm.
    for t in &transfers {
        if dexto_shared::siwe_auth::owner(env, &t.from).await?.is_some_and(|owner| owner != user.id) {
            return Err(GatewayError::Forbidden(format!("That USDC was sent from {}, an address of another Dexto account: confirm it from that account.", t.from)));
        }
    }
    let final_through = rpc.final_block(&config).await?;
    let (mut credited, mut pending, mut unclaimed) = (Vec::new(), false, None);
    for t in &transfers {
        match settle::settle(env, &config, t, t.block_number <= final_through).await? {
            Settled::Credited { amount, balance, .. } => credited.push(json!({"reference": t.reference(chain), "amount_micros": amount.0, "balance_micros": balance.0})),
            Settled::Pending { .. } => pending = true,
            Settled::Unclaimed => unclaimed = Some(t.from),
            Settled::AlreadyCredited { .. } => {}
        }
    }
    if !credited.is_empty() {
        return ok_json(200, &json!({"status": "credited", "tx_hash": hash, "credits": credited}));
    }
    if pending {
        return ok_json(202, &json!({"status": "pending", "tx_hash": hash, "block_number": receipt_block(&transfers), "final_through": final_through,
            "message": "Seen on chain, not final yet: it is credited once final."}));
    }
    if let Some(from) = unclaimed {
        return Err(GatewayError::Forbidden(format!(
            "That USDC was sent from {from}, which is not linked to your account. Link it to your account by signing with it (POST /api/auth/siwe/link, or the dashboard's billing page) and the transfer is credited then."
        )));
    }
    Err(GatewayError::Conflict(format!("Transaction {hash} is already credited; nothing more to do.")))
}

fn receipt_block(transfers: &[dexto_shared::chain::erc20::Transfer]) -> u64 {
    transfers.first().map_or(0, |t| t.block_number)
}

pub async fn overview(req: &Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate(req.headers(), env).await?;
    let config = ChainConfig::required(env)?;
    let transfers: Vec<Value> = db::all(
        &db::database(env)?,
        "SELECT tx_hash, log_index, from_address, amount_micros, block_number, status, seen_at, credited_at FROM crypto_transfers
         WHERE user_id = ?1 ORDER BY seen_at DESC LIMIT 100",
        &[user.id.as_str().into()],
    )
    .await?;
    ok_json(200, &json!({"chain_id": config.chain_id, "token": config.token.checksummed(), "treasury": config.treasury.checksummed(), "transfers": transfers}))
}
