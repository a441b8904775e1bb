//! What a chain says about a USDC payment, read from JSON-RPC shapes: the
//! receipt, its `Transfer` logs, and how a transfer of the configured token
//! to the treasury is judged. USDC has 6 decimals, so one base unit is
//! exactly one micro-USD: amounts are integers end to end.

use super::Address;
use crate::money::Micros;
use serde::Deserialize;

/// keccak256("Transfer(address,address,uint256)").
pub const TRANSFER_TOPIC: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// A log as `eth_getTransactionReceipt` / `eth_getLogs` return it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcLog {
    pub address: String,
    pub topics: Vec<String>,
    pub data: String,
    pub block_number: Option<String>,
    pub block_hash: Option<String>,
    pub transaction_hash: Option<String>,
    pub log_index: Option<String>,
    #[serde(default)]
    pub removed: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcReceipt {
    pub status: Option<String>,
    pub block_number: String,
    pub block_hash: String,
    pub transaction_hash: String,
    pub logs: Vec<RpcLog>,
}

/// One ERC-20 transfer, located on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub token: Address,
    pub from: Address,
    pub to: Address,
    /// Base units (USDC: micro-USD).
    pub amount: u128,
    pub tx_hash: String,
    pub log_index: u64,
    pub block_number: u64,
    pub block_hash: String,
}

impl Transfer {
    /// The amount as money: exact, or None beyond what a ledger row holds.
    pub fn micros(&self) -> Option<Micros> {
        i64::try_from(self.amount).ok().map(Micros)
    }

    /// The ledger reference of its credit: one per log, ever.
    pub fn reference(&self, chain_id: u64) -> String {
        format!("usdc:{chain_id}:{}:{}", self.tx_hash, self.log_index)
    }
}

/// `0x`-prefixed hex quantity → number.
pub fn quantity(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

/// A 32-byte topic holding an address (left-padded).
fn topic_address(topic: &str) -> Option<Address> {
    let hex_part = topic.strip_prefix("0x")?;
    if hex_part.len() != 64 || !hex_part[..24].bytes().all(|c| c == b'0') {
        return None;
    }
    Address::parse(&format!("0x{}", &hex_part[24..])).ok()
}

/// An address as a 32-byte topic (what `eth_getLogs` filters take).
pub fn address_topic(address: &Address) -> String {
    format!("0x{:0>64}", hex::encode(address.0))
}

fn uint256(data: &str) -> Option<u128> {
    let hex_part = data.strip_prefix("0x")?;
    if hex_part.len() != 64 || !hex_part[..32].bytes().all(|c| c == b'0') {
        return None; // beyond u128: no real transfer of a 6-decimal token
    }
    u128::from_str_radix(&hex_part[32..], 16).ok()
}

/// The `Transfer` a log records, if it is one (a well-formed ERC-20 one).
pub fn decode_transfer(log: &RpcLog) -> Option<Transfer> {
    if log.removed || log.topics.len() != 3 || !log.topics[0].eq_ignore_ascii_case(TRANSFER_TOPIC) {
        return None;
    }
    Some(Transfer {
        token: Address::parse(&log.address.to_lowercase()).ok()?,
        from: topic_address(&log.topics[1])?,
        to: topic_address(&log.topics[2])?,
        amount: uint256(&log.data)?,
        tx_hash: log.transaction_hash.clone()?.to_lowercase(),
        log_index: quantity(log.log_index.as_deref()?)?,
        block_number: quantity(log.block_number.as_deref()?)?,
        block_hash: log.block_hash.clone()?.to_lowercase(),
    })
}

/// x402's upto proxy (Permit2 witness transfers), at its canonical address.
pub const X402_UPTO_PROXY: &str = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

/// The topics of the logs that mark a transaction as an x402 settlement:
/// EIP-3009's `AuthorizationUsed` (from the token: `exact`) and the upto
/// proxy's `Settled()` / `SettledWithPermit()`.
pub fn x402_settlement_topics() -> [String; 3] {
    let topic = |sig: &[u8]| format!("0x{}", hex::encode(super::keccak256(sig)));
    [authorization_used_topic(), topic(b"Settled()"), topic(b"SettledWithPermit()")]
}

/// Whether `log` marks its transaction as an x402 settlement: such a
/// transfer is a per-request payment, booked by the wallet that served the
/// call, never a top-up (crediting it again would pay twice).
pub fn is_x402_settlement_log(log: &RpcLog, token: &Address) -> bool {
    let emitter = Address::parse(&log.address).ok();
    let [used, settled, with_permit] = x402_settlement_topics();
    match log.topics.first().map(|t| t.to_ascii_lowercase()) {
        Some(t) if t == used => emitter.as_ref() == Some(token),
        Some(t) if t == settled || t == with_permit => emitter == Address::parse(X402_UPTO_PROXY).ok(),
        _ => false,
    }
}

/// What a receipt proves about a payment to `treasury` in `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payment {
    /// An x402 settlement (`is_x402_settlement_log`): not a top-up.
    X402,
    Reverted,
    /// No transfer of the configured token at all.
    WrongToken,
    /// The token moved, but not to the treasury.
    WrongRecipient,
    /// The transfers of the token to the treasury (usually one).
    ToTreasury(Vec<Transfer>),
}

pub fn judge(receipt: &RpcReceipt, token: &Address, treasury: &Address) -> Payment {
    if receipt.status.as_deref().and_then(quantity) != Some(1) {
        return Payment::Reverted;
    }
    if receipt.logs.iter().any(|l| is_x402_settlement_log(l, token)) {
        return Payment::X402;
    }
    // A zero-value Transfer moves nothing (and anyone can emit one naming anyone).
    let of_token: Vec<Transfer> = receipt.logs.iter().filter_map(decode_transfer).filter(|t| t.token == *token && t.amount > 0).collect();
    if of_token.is_empty() {
        return Payment::WrongToken;
    }
    let to_treasury: Vec<Transfer> = of_token.into_iter().filter(|t| t.to == *treasury).collect();
    if to_treasury.is_empty() {
        return Payment::WrongRecipient;
    }
    Payment::ToTreasury(to_treasury)
}

/// EIP-3009's `AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)`.
pub fn authorization_used_topic() -> String {
    format!("0x{}", hex::encode(super::keccak256(b"AuthorizationUsed(address,bytes32)")))
}

/// Whether `receipt` shows `payer`'s EIP-3009 authorization `nonce` used to
/// pay exactly `amount` of `token` to `treasury`: the authorization's use and
/// that transfer in one successful transaction. The use alone is not enough:
/// a payer can spend the same nonce on another authorization (to itself).
pub fn paid_by_authorization(receipt: &RpcReceipt, token: &Address, treasury: &Address, payer: &Address, nonce: &str, amount: u128) -> bool {
    if receipt.status.as_deref().and_then(quantity) != Some(1) {
        return false;
    }
    let by_token = |l: &RpcLog| Address::parse(&l.address).ok().as_ref() == Some(token);
    let used = [authorization_used_topic(), address_topic(payer), nonce.to_ascii_lowercase()];
    let is_use = |l: &RpcLog| by_token(l) && l.topics.iter().map(|t| t.to_ascii_lowercase()).eq(used.iter().cloned());
    // The token logs the authorization's use and then its transfer: the
    // transfer that pays is the log right after the use, not any transfer
    // of that amount elsewhere in the transaction (a batch could pair a
    // nonce spent on another transfer with one unrelated payment).
    receipt.logs.windows(2).any(|pair| {
        is_use(&pair[0]) && decode_transfer(&pair[1]).is_some_and(|t| t.token == *token && t.from == *payer && t.to == *treasury && t.amount == amount)
    })
}

/// The highest final block: the chain's `finalized` block, or (a node
/// without that tag) the block `confirmations` deep below the head.
pub fn final_through(finalized: Option<u64>, head: u64, confirmations: u64) -> u64 {
    finalized.unwrap_or_else(|| (head + 1).saturating_sub(confirmations.max(1)))
}
