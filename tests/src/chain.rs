//! Each stack's own local Ethereum chain: `scripts/chain.sh` (anvil + our
//! DextoUSD token, compiled once per source and cached, dev accounts funded),
//! started before wrangler and stopped with the stack, with its own x402
//! facilitator (crate::x402). Its JSON line gives where it is; the Workers get
//! the same values as EVM_RPC_URL, EVM_CHAIN_ID, USDC_CONTRACT and
//! TREASURY_ADDRESS, and the facilitator's URL as X402_FACILITATOR_URL.

use crate::client::send;
use crate::stack::{spawn_guarded, tee_output};
use crate::x402::Facilitator;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, ChildStdin};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Base's chain id: local networks look like production's unless a stack asks otherwise.
pub const DEFAULT_CHAIN_ID: u64 = 8453;

pub struct Chain {
    pub rpc_url: String,
    pub chain_id: u64,
    /// The DextoUSD (USDC-like, 6 decimals) contract, checksummed.
    pub token: String,
    /// Where top-ups go: an unlocked anvil account that starts with no USDC.
    pub treasury: String,
    /// anvil's first default accounts, unlocked, 1,000 USDC each.
    pub accounts: Vec<DevAccount>,
    /// This chain's x402 facilitator (verify/settle), paying gas from anvil's account 8.
    pub x402_facilitator: Facilitator,
    _watchdog: Mutex<(Child, ChildStdin)>,
}

pub struct DevAccount {
    pub address: String,
    pub private_key: String,
}

impl Chain {
    /// Starts a chain with `chain_id`, logging to RUN_DIR/chain.log (anvil's own
    /// output to RUN_DIR/anvil.log), and its x402 facilitator; returns once the
    /// token is deployed and funded and the facilitator serves.
    pub fn start(chain_id: u64, run_dir: &Path) -> Chain {
        let script = crate::stack::root().join("scripts/chain.sh");
        let anvil_log = run_dir.join("anvil.log");
        let chain_id_arg = chain_id.to_string();
        let mut child = spawn_guarded(&[script.as_os_str(), "--chain-id".as_ref(), chain_id_arg.as_ref(), "--log".as_ref(), anvil_log.as_os_str()], &[]);
        let stdin = child.stdin.take().expect("stdin");
        let line = first_json_line(&mut child, &run_dir.join("chain.log"), "local chain");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("chain line not JSON ({e}): {line}"));
        let text = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("chain line lacks {k}: {line}")).to_string();
        let accounts = v["accounts"].as_array().expect("accounts").iter().map(|a| DevAccount {
            address: a["address"].as_str().expect("address").to_string(),
            private_key: a["private_key"].as_str().expect("private_key").to_string(),
        });
        let chain_id = v["chain_id"].as_u64().expect("chain_id");
        let facilitator_key = v["facilitator"]["private_key"].as_str().unwrap_or_else(|| panic!("chain line lacks facilitator: {line}"));
        Chain {
            x402_facilitator: Facilitator::start(&text("rpc_url"), chain_id, facilitator_key, run_dir),
            rpc_url: text("rpc_url"),
            chain_id,
            token: text("token"),
            treasury: text("treasury"),
            accounts: accounts.collect(),
            _watchdog: Mutex::new((child, stdin)),
        }
    }

    /// The Worker variables that point the gateway at this chain.
    pub fn worker_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("EVM_RPC_URL", self.rpc_url.clone()),
            ("EVM_CHAIN_ID", self.chain_id.to_string()),
            ("USDC_CONTRACT", self.token.clone()),
            ("TREASURY_ADDRESS", self.treasury.clone()),
            // A fresh chain: the scan reads it from its first block.
            ("EVM_SCAN_FROM_BLOCK", "0".to_string()),
            ("X402_FACILITATOR_URL", self.x402_facilitator.url.clone()),
            // Our token's EIP-712 name (contracts/DextoUSD.sol): exact payments sign over it.
            ("X402_ASSET_NAME", "USD Coin (Dexto local)".to_string()),
        ]
    }

    /// One JSON-RPC call; panics on a transport or JSON-RPC error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, &params).unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    }

    /// One JSON-RPC call: its result, or its JSON-RPC error (e.g. a revert).
    pub fn try_rpc(&self, method: &str, params: &Value) -> Result<Value, Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let r = send("POST", &self.rpc_url, &[("Content-Type", "application/json")], Some(body.as_bytes()));
        assert_eq!(r.status, 200, "{method}: {}", r.body);
        let v = r.json();
        if v["error"].is_null() { Ok(v["result"].clone()) } else { Err(v["error"].clone()) }
    }

    /// `eth_call` of hand-encoded calldata on the token; the returned hex.
    pub fn call_token(&self, data: &str) -> String {
        self.rpc("eth_call", json!([{"to": self.token, "data": data}, "latest"])).as_str().expect("eth_call result").to_string()
    }

    /// USDC base units (6 decimals) held by `address`.
    pub fn usdc_balance(&self, address: &str) -> u128 {
        quantity(&self.call_token(&format!("{BALANCE_OF}{}", word_address(address))))
    }

    /// `from` (an unlocked anvil account: the node signs) sends `base_units` of
    /// USDC to `to`; the mined receipt, which must show success.
    pub fn usdc_transfer(&self, from: &str, to: &str, base_units: u128) -> Value {
        let data = format!("{TRANSFER}{}{}", word_address(to), word_u256(base_units));
        self.send_transaction(from, &self.token, &data)
    }

    /// `eth_sendTransaction` from an unlocked account; the successful receipt.
    pub fn send_transaction(&self, from: &str, to: &str, data: &str) -> Value {
        let hash = self.rpc("eth_sendTransaction", json!([{"from": from, "to": to, "data": data}]));
        let receipt = self.receipt(hash.as_str().expect("tx hash"));
        assert_eq!(receipt["status"], "0x1", "transaction failed: {receipt:#}");
        receipt
    }

    /// The receipt of `hash` once mined (anvil mines each transaction at once,
    /// but answers the receipt after). Fails after 15 s.
    pub fn receipt(&self, hash: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(Instant::now() < deadline, "no receipt for {hash}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn block_number(&self) -> u64 {
        quantity(self.rpc("eth_blockNumber", json!([])).as_str().expect("block number")) as u64
    }

    /// Mines `blocks` empty blocks (what finality waits for: anvil's
    /// `finalized` tag is 64 blocks behind the head, `safe` 32).
    pub fn mine(&self, blocks: u64) {
        self.rpc("anvil_mine", json!([format!("{blocks:#x}")]));
    }
}

// ABI by hand: 4-byte selectors, then 32-byte words.
/// `balanceOf(address)`
pub const BALANCE_OF: &str = "0x70a08231";
/// `transfer(address,uint256)`
pub const TRANSFER: &str = "0xa9059cbb";
/// `decimals()`
pub const DECIMALS: &str = "0x313ce567";
/// topic0 of `Transfer(address,address,uint256)`
pub const TRANSFER_EVENT: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// An address as one ABI word / log topic body: 64 hex digits, left-padded, lowercase.
pub fn word_address(address: &str) -> String {
    let hex = address.strip_prefix("0x").expect("0x address");
    assert_eq!(hex.len(), 40, "an address: {address}");
    format!("{:0>64}", hex.to_ascii_lowercase())
}

pub fn word_u256(n: u128) -> String {
    format!("{n:064x}")
}

/// A hex quantity or ABI word (`0x…`) as a number; panics above u128.
pub fn quantity(hex: &str) -> u128 {
    let digits = hex.strip_prefix("0x").expect("0x hex").trim_start_matches('0');
    u128::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16).unwrap_or_else(|e| panic!("{hex}: {e}"))
}

/// Reads a tool's output until its JSON ready line, teeing everything to
/// `log_path`. Fails after 60 s (the first start of a fresh cache compiles).
pub(crate) fn first_json_line(child: &mut Child, log_path: &Path, what: &str) -> String {
    let line = tee_output(child, log_path, |line| line.starts_with('{').then(|| line.to_string()));
    let deadline = Duration::from_secs(60);
    line.recv_timeout(deadline).unwrap_or_else(|e| panic!("{what} not ready ({e}); see {}", log_path.display()))
}

/// tools/chain/sign-authorization.mjs on the pinned node and viem.
pub fn sign_authorization(input: &Value) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let out = std::process::Command::new("bash")
        .args(["-c", r#"source "$0/scripts/env.sh" && exec node "$0/tools/chain/sign-authorization.mjs" "$1""#])
        .arg(root)
        .arg(input.to_string())
        .output()
        .expect("run node");
    assert!(out.status.success(), "sign-authorization: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("signature JSON")
}
