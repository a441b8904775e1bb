//! The chain scan, run by the billing cron: what an indexer does.
//!
//! 1. Reads every `Transfer` of the token to the treasury from its
//!    checkpoint (minus `REORG_MARGIN` blocks, so a reorg near the last run
//!    is read again; the first run starts at `EVM_SCAN_FROM_BLOCK`, else at
//!    the final block) through the last final block, range by range
//!    (`EVM_SCAN_CHUNK_BLOCKS`), each checkpointed when done, at most
//!    `MAX_CHUNKS` ranges or `MAX_SETTLES` transfers a run; credits linked
//!    senders (the same `settle` as a confirm: once, under one reference),
//!    records the rest unclaimed. Zero-value transfers are skipped.
//! 2. Reports a credited transfer in each range read that the chain no
//!    longer shows (a finding, once, audited).
//! 3. Re-reads transfers still pending or claimed: final ones are credited,
//!    ones the chain dropped are marked so and never credited.

use super::settle::{self, Settled};
use dexto_shared::chain::erc20::{decode_transfer, judge, Payment, Transfer};
use dexto_shared::db::{self, ms};
use dexto_shared::error::GatewayError;
use dexto_shared::evm_rpc::{ChainConfig, Rpc};
use dexto_shared::http::now_ms;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use worker::Env;

const REORG_MARGIN: u64 = 128;
/// Blocks per `eth_getLogs` (`EVM_SCAN_CHUNK_BLOCKS`: providers cap ranges).
const CHUNK: u64 = 2_000;
const MAX_CHUNKS: u64 = 25;
/// Transfers settled per run: each costs a few subrequests (D1, the wallet),
/// and an invocation has a budget of them.
const MAX_SETTLES: usize = 100;

fn chunk_blocks(env: &Env) -> u64 {
    env.var("EVM_SCAN_CHUNK_BLOCKS").ok().and_then(|v| v.to_string().trim().parse().ok()).filter(|n| *n > 0).unwrap_or(CHUNK)
}

#[derive(Default)]
struct Report {
    through: Option<u64>,
    credited: usize,
    pending: usize,
    unclaimed: usize,
    dropped: usize,
    missing: usize,
}

pub async fn run(env: &Env) -> Result<String, GatewayError> {
    let Some(config) = ChainConfig::from_env(env) else {
        return Ok("crypto top-ups off".into());
    };
    let rpc = Rpc::from_env(env)?;
    let node_chain = rpc.chain_id().await?;
    if node_chain != config.chain_id {
        return Err(GatewayError::Internal(format!("EVM_RPC_URL serves chain {node_chain}, configured {}", config.chain_id)));
    }
    let final_through = rpc.final_block(&config).await?;
    let mut report = Report::default();
    let (from, through) = scan_range(env, &config, final_through).await?;
    let chunk = chunk_blocks(env);
    let mut start = from;
    let mut settled = 0;
    // Range by range, each checkpointed once done, so a failure or the
    // per-run budget leaves the next run only what is left.
    while start <= through && settled < MAX_SETTLES {
        let end = (start + chunk - 1).min(through);
        let mut seen = HashSet::new();
        // x402 settlements pay for calls, booked by the wallets that served
        // them: never top-ups (docs/ARCHITECTURE.md, "Keyless calls paid with x402").
        let per_call: HashSet<String> =
            rpc.x402_settlements(&config.token, start, end).await?.into_iter().filter_map(|l| l.transaction_hash.map(|h| h.to_lowercase())).collect();
        for log in rpc.transfers_to(&config.token, &config.treasury, start, end).await? {
            let Some(t) = decode_transfer(&log).filter(|t| t.token == config.token && t.to == config.treasury && t.amount > 0) else { continue };
            if per_call.contains(&t.tx_hash) {
                continue;
            }
            seen.insert((t.tx_hash.clone(), t.log_index));
            tally(&mut report, settle::settle(env, &config, &t, true).await?);
            settled += 1;
        }
        report.missing += missing(env, &config, start, end, &seen).await?;
        save_checkpoint(env, &config, end).await?;
        report.through = Some(end);
        start = end + 1;
    }
    recheck(env, &config, &rpc, final_through, &mut report).await?;
    let scanned = report.through.map_or("nothing new".to_string(), |end| format!("blocks {from}..={end}"));
    Ok(format!(
        "crypto: scanned {scanned}; credited {}, pending {}, unclaimed {}, dropped {}, missing {}",
        report.credited, report.pending, report.unclaimed, report.dropped, report.missing
    ))
}

fn tally(report: &mut Report, settled: Settled) {
    match settled {
        Settled::Credited { .. } => report.credited += 1,
        Settled::Pending { .. } => report.pending += 1,
        Settled::Unclaimed => report.unclaimed += 1,
        Settled::AlreadyCredited { .. } => {}
    }
}

#[derive(Deserialize)]
struct Checkpoint {
    scanned_through: i64,
}

/// Blocks to read this run: from a margin behind the checkpoint (or
/// `EVM_SCAN_FROM_BLOCK` on the first run), at most `MAX_CHUNKS` ranges.
async fn scan_range(env: &Env, config: &ChainConfig, final_through: u64) -> Result<(u64, u64), GatewayError> {
    let row: Option<Checkpoint> = db::first(
        &db::database(env)?,
        "SELECT scanned_through FROM chain_checkpoints WHERE chain_id = ?1 AND token = ?2 AND treasury = ?3",
        &[ms(config.chain_id as i64), config.token.checksummed().into(), config.treasury.checksummed().into()],
    )
    .await?;
    let first: Option<u64> = env.var("EVM_SCAN_FROM_BLOCK").ok().and_then(|v| v.to_string().trim().parse().ok());
    let from = match row {
        Some(c) => (c.scanned_through as u64 + 1).saturating_sub(REORG_MARGIN).max(first.unwrap_or(0)),
        // Unset: history before the first run is left to confirms (a chain
        // like Base would otherwise be read from its genesis).
        None => first.unwrap_or(final_through),
    };
    Ok((from, final_through.min(from + chunk_blocks(env) * MAX_CHUNKS - 1)))
}

async fn save_checkpoint(env: &Env, config: &ChainConfig, through: u64) -> Result<(), GatewayError> {
    db::run_idempotent(
        &db::database(env)?,
        "INSERT INTO chain_checkpoints (chain_id, token, treasury, scanned_through, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(chain_id, token, treasury) DO UPDATE SET scanned_through = MAX(scanned_through, excluded.scanned_through), updated_at = excluded.updated_at",
        &[ms(config.chain_id as i64), config.token.checksummed().into(), config.treasury.checksummed().into(), ms(through as i64), ms(now_ms())],
    )
    .await
}

#[derive(Deserialize)]
struct Known {
    tx_hash: String,
    log_index: i64,
    user_id: Option<String>,
    amount_micros: i64,
    block_number: i64,
    status: String,
}

/// Credited transfers in `from..=through` that the chain's logs did not show.
async fn missing(env: &Env, config: &ChainConfig, from: u64, through: u64, seen: &HashSet<(String, u64)>) -> Result<usize, GatewayError> {
    let rows: Vec<Known> = db::all(
        &db::database(env)?,
        "SELECT tx_hash, log_index, user_id, amount_micros, block_number, status FROM crypto_transfers
         WHERE chain_id = ?1 AND status IN ('crediting', 'credited') AND block_number BETWEEN ?2 AND ?3",
        &[ms(config.chain_id as i64), ms(from as i64), ms(through as i64)],
    )
    .await?;
    let mut found = 0;
    for row in rows.iter().filter(|r| !seen.contains(&(r.tx_hash.clone(), r.log_index as u64))) {
        let reference = format!("usdc:{}:{}:{}", config.chain_id, row.tx_hash, row.log_index);
        let detail = json!({"reference": reference, "amount_micros": row.amount_micros, "block_number": row.block_number,
            "message": "credited, but the chain no longer shows this transfer to the treasury"});
        found += dexto_shared::findings::record(env, "crypto_transfer_missing", row.user_id.as_deref().unwrap_or(""), &reference, &detail).await?;
    }
    Ok(found)
}

/// Transfers waiting on finality or on an interrupted credit: re-read.
async fn recheck(env: &Env, config: &ChainConfig, rpc: &Rpc, final_through: u64, report: &mut Report) -> Result<(), GatewayError> {
    let rows: Vec<Known> = db::all(
        &db::database(env)?,
        "SELECT tx_hash, log_index, user_id, amount_micros, block_number, status FROM crypto_transfers
         WHERE chain_id = ?1 AND status IN ('pending', 'crediting') ORDER BY seen_at LIMIT 50",
        &[ms(config.chain_id as i64)],
    )
    .await?;
    for row in rows {
        let onchain = match rpc.receipt(&row.tx_hash).await? {
            Some(receipt) => match judge(&receipt, &config.token, &config.treasury) {
                Payment::ToTreasury(transfers) => transfers.into_iter().find(|t| t.log_index == row.log_index as u64),
                _ => None,
            },
            None => None,
        };
        let Some(t) = onchain else {
            if row.status == "pending" {
                drop_transfer(env, config, &row).await?;
                report.dropped += 1;
            }
            continue;
        };
        let final_ = t.block_number <= final_through;
        let settled = match (row.status.as_str(), row.user_id.as_deref()) {
            // A claim a crash interrupted: finish it for the account it was claimed for.
            ("crediting", Some(account)) => settle::credit(env, config, &t, micros(&t)?, account).await?,
            _ => settle::settle(env, config, &t, final_).await?,
        };
        tally(report, settled);
    }
    Ok(())
}

fn micros(t: &Transfer) -> Result<dexto_shared::money::Micros, GatewayError> {
    t.micros().ok_or_else(|| GatewayError::Internal("transfer amount".into()))
}

async fn drop_transfer(env: &Env, config: &ChainConfig, row: &Known) -> Result<(), GatewayError> {
    dexto_shared::log::event("crypto.dropped", json!({"tx_hash": row.tx_hash, "log_index": row.log_index, "user_id": row.user_id}));
    db::run_idempotent(
        &db::database(env)?,
        "UPDATE crypto_transfers SET status = 'dropped' WHERE chain_id = ?1 AND tx_hash = ?2 AND log_index = ?3 AND status = 'pending'",
        &[ms(config.chain_id as i64), row.tx_hash.as_str().into(), ms(row.log_index)],
    )
    .await
}
