//! One USDC transfer to the treasury, from first sight to its credit: the
//! D1 row (`crypto_transfers`) records it and claims it for exactly one
//! account; the wallet object credits it under its own reference
//! (`usdc:<chain>:<tx>:<log index>`), so a retry or a concurrent confirm is
//! a replay there, never a second credit.

use dexto_shared::chain::erc20::Transfer;
use dexto_shared::db::{self, ms};
use dexto_shared::error::GatewayError;
use dexto_shared::evm_rpc::ChainConfig;
use dexto_shared::http::now_ms;
use dexto_shared::money::Micros;
use dexto_shared::wallet::CreditRequest;
use dexto_shared::wallet_client::WalletClient;
use serde::Deserialize;
use serde_json::Value;
use worker::Env;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    Credited { account: String, amount: Micros, balance: Micros },
    /// Credited before (by a confirm, the scan, or a concurrent call).
    AlreadyCredited { account: String },
    /// Its account is known; the block is not final yet.
    Pending { account: String },
    /// Its sender is linked to no account: kept until it is.
    Unclaimed,
}

/// Records `t` (seen in a block that is `final_` or not) and credits it if
/// it is final and its sender belongs to an account.
pub async fn settle(env: &Env, config: &ChainConfig, t: &Transfer, final_: bool) -> Result<Settled, GatewayError> {
    let amount = t.micros().ok_or_else(|| GatewayError::BadRequest("That transfer's amount is beyond what the ledger holds; contact support@dexto.ai.".into()))?;
    let owner = dexto_shared::siwe_auth::owner(env, &t.from).await?;
    record(env, config, t, amount, owner.as_deref()).await?;
    let Some(account) = owner else { return Ok(Settled::Unclaimed) };
    if !final_ {
        return Ok(Settled::Pending { account });
    }
    credit(env, config, t, amount, &account).await
}

/// First sight inserts; a later one updates where the chain now has it,
/// never undoing a claim or a credit.
async fn record(env: &Env, config: &ChainConfig, t: &Transfer, amount: Micros, owner: Option<&str>) -> Result<(), GatewayError> {
    let status = if owner.is_some() { "pending" } else { "unclaimed" };
    db::run_idempotent(
        &db::database(env)?,
        "INSERT INTO crypto_transfers (chain_id, tx_hash, log_index, token, from_address, to_address, amount_micros, block_number, block_hash, user_id, status, seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(chain_id, tx_hash, log_index) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash,
           user_id = CASE WHEN crypto_transfers.status IN ('crediting', 'credited') THEN crypto_transfers.user_id ELSE excluded.user_id END,
           status = CASE WHEN crypto_transfers.status IN ('crediting', 'credited') THEN crypto_transfers.status ELSE excluded.status END",
        &[
            ms(config.chain_id as i64),
            t.tx_hash.as_str().into(),
            ms(t.log_index as i64),
            t.token.checksummed().into(),
            t.from.checksummed().into(),
            t.to.checksummed().into(),
            ms(amount.0),
            ms(t.block_number as i64),
            t.block_hash.as_str().into(),
            owner.map_or(wasm_bindgen::JsValue::NULL, Into::into),
            status.into(),
            ms(now_ms()),
        ],
    )
    .await
}

#[derive(Deserialize)]
struct Row {
    status: String,
    user_id: Option<String>,
}

/// Claims the transfer for `account` (one account ever: a pending row, or a
/// claim of this same account that a crash interrupted), then credits it.
pub async fn credit(env: &Env, config: &ChainConfig, t: &Transfer, amount: Micros, account: &str) -> Result<Settled, GatewayError> {
    let db = db::database(env)?;
    let key = [ms(config.chain_id as i64), t.tx_hash.as_str().into(), ms(t.log_index as i64)];
    let claimed: Option<Value> = db::returning(
        &db,
        "UPDATE crypto_transfers SET status = 'crediting', user_id = ?4
         WHERE chain_id = ?1 AND tx_hash = ?2 AND log_index = ?3 AND (status = 'pending' OR (status = 'crediting' AND user_id = ?4)) RETURNING status",
        &[key[0].clone(), key[1].clone(), key[2].clone(), account.into()],
    )
    .await?;
    if claimed.is_none() {
        let row: Option<Row> = db::first(&db, "SELECT status, user_id FROM crypto_transfers WHERE chain_id = ?1 AND tx_hash = ?2 AND log_index = ?3", &key).await?;
        return match row {
            Some(Row { status, user_id: Some(owner) }) if status == "credited" || status == "crediting" => Ok(Settled::AlreadyCredited { account: owner }),
            _ => Err(GatewayError::Conflict("That transfer cannot be credited now; try again shortly.".into())),
        };
    }
    let outcome = WalletClient::for_user(env, account)?
        .credit(&CreditRequest {
            user_id: account.to_string(),
            reference: t.reference(config.chain_id),
            amount,
            kind: "crypto_topup".into(),
            reason: Some(format!("USDC from {} (tx {})", t.from, t.tx_hash)),
            now_ms: now_ms(),
            payment: None,
        })
        .await?;
    db::run_idempotent(
        &db,
        "UPDATE crypto_transfers SET status = 'credited', credited_at = COALESCE(credited_at, ?5) WHERE chain_id = ?1 AND tx_hash = ?2 AND log_index = ?3 AND user_id = ?4",
        &[key[0].clone(), key[1].clone(), key[2].clone(), account.into(), ms(now_ms())],
    )
    .await?;
    dexto_shared::log::event("crypto.credited", serde_json::json!({"user_id": account, "reference": t.reference(config.chain_id), "amount_micros": amount.0, "replay": outcome.replay}));
    Ok(if outcome.replay { Settled::AlreadyCredited { account: account.to_string() } } else { Settled::Credited { account: account.to_string(), amount, balance: outcome.balance } })
}
