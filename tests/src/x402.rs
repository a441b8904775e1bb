//! x402 on each stack's chain (`scripts/x402.sh`, tools/x402/): its own
//! facilitator, started right after the chain (the Workers get its URL as
//! X402_FACILITATOR_URL), a client that pays a 402 (`pay`, @x402/fetch), and a
//! stand-in paid resource for tests of the facilitator itself.

use crate::chain::first_json_line;
use crate::stack::{root, spawn_guarded};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, ChildStdin, Command};
use std::sync::Mutex;

/// A local facilitator: `POST /verify`, `POST /settle`, `GET /supported`.
pub struct Facilitator {
    pub url: String,
    /// The account that submits settlements (and pays their gas).
    pub signer: String,
    /// The schemes it verifies and settles (`exact`; `upto` only where
    /// Permit2 and x402's upto proxy are deployed).
    pub schemes: Vec<String>,
    _watchdog: Mutex<(Child, ChildStdin)>,
}

impl Facilitator {
    /// Starts a facilitator for the chain at `rpc_url` whose gas is paid by
    /// `key`'s account; logs to RUN_DIR/x402-facilitator.log.
    pub fn start(rpc_url: &str, chain_id: u64, key: &str, run_dir: &Path) -> Facilitator {
        let chain_id = chain_id.to_string();
        let (line, watchdog) = start_tool("facilitator", &["--rpc-url", rpc_url, "--chain-id", &chain_id, "--key", key], &run_dir.join("x402-facilitator.log"));
        let text = |k: &str| line[k].as_str().unwrap_or_else(|| panic!("facilitator line lacks {k}: {line}")).to_string();
        let schemes = line["schemes"].as_array().expect("schemes").iter().map(|s| s.as_str().expect("scheme").to_string()).collect();
        Facilitator { url: text("url"), signer: text("signer"), schemes, _watchdog: watchdog }
    }
}

/// A stand-in paid resource (tools/x402/demo-resource.mjs): `GET /paid` costs
/// `amount` base units of `asset` in the `exact` scheme, settled through the
/// facilitator; `GET /last-payment` shows what it was last paid with.
pub struct DemoResource {
    pub url: String,
    _watchdog: Mutex<(Child, ChildStdin)>,
}

impl DemoResource {
    pub fn start(facilitator: &str, chain_id: u64, asset: &str, pay_to: &str, amount: u128, run_dir: &Path) -> DemoResource {
        let (network, amount) = (format!("eip155:{chain_id}"), amount.to_string());
        let args = ["--facilitator", facilitator, "--network", &network, "--asset", asset, "--pay-to", pay_to, "--amount", &amount];
        let (line, watchdog) = start_tool("demo-resource", &args, &run_dir.join("x402-demo-resource.log"));
        DemoResource { url: line["url"].as_str().expect("url").to_string(), _watchdog: watchdog }
    }
}

/// Runs the x402 client (tools/x402/pay.mjs) on `url` with the payer's
/// `key` and further `args` (`--scheme upto`, `--max N`, `--method POST`,
/// `--body JSON`, `--header K:V`…); its JSON line: `{status, body,
/// payment_response}`. Panics if it could not pay or reach `url`.
pub fn pay(url: &str, key: &str, args: &[&str]) -> Value {
    let out = Command::new("bash").arg(root().join("scripts/x402.sh")).args(["pay", url, "--key", key]).args(args).output().expect("run pay.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pay.mjs failed ({}): {stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("pay.mjs printed no JSON ({e}): {stdout}"))
}

/// Starts `scripts/x402.sh TOOL ARGS…` under a watchdog; its JSON ready line.
fn start_tool(tool: &str, args: &[&str], log: &Path) -> (Value, Mutex<(Child, ChildStdin)>) {
    let script = root().join("scripts/x402.sh");
    let argv: Vec<&std::ffi::OsStr> = [script.as_os_str(), tool.as_ref()].into_iter().chain(args.iter().map(|a| a.as_ref())).collect();
    let mut child = spawn_guarded(&argv, &[]);
    let stdin = child.stdin.take().expect("stdin");
    let line = first_json_line(&mut child, log, tool);
    let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{tool} line not JSON ({e}): {line}"));
    (value, Mutex::new((child, stdin)))
}

/// A keyless model call: `POST /v1/chat/completions` with no API key, and
/// `headers` (e.g. a `PAYMENT-SIGNATURE`).
pub fn keyless_chat(s: &crate::Stack, body: &Value, headers: &[(&str, &str)]) -> crate::client::HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    crate::post(&format!("{}/v1/chat/completions", s.base), &all, body.to_string().as_bytes())
}

/// A base64 JSON x402 header's value.
pub fn decode(header: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(header.trim()).expect("base64 header");
    serde_json::from_slice(&bytes).expect("JSON header")
}

pub fn encode(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

/// An `exact` payment (EIP-3009, signed with viem by
/// tools/chain/sign-authorization.mjs) of `value` base units from `payer` to
/// the stack's treasury, valid until `valid_before` (unix s), under `nonce`
/// (32 bytes hex): the v2 payload, as a client puts it in PAYMENT-SIGNATURE.
pub fn exact_payment(chain: &crate::Chain, payer: &crate::chain::DevAccount, value: u128, valid_before: i64, nonce: &str) -> Value {
    exact_payment_to(chain, payer, &chain.treasury, value, valid_before, nonce)
}

/// The same, paying `to` instead of the treasury (a nonce spent elsewhere).
pub fn exact_payment_to(chain: &crate::Chain, payer: &crate::chain::DevAccount, to: &str, value: u128, valid_before: i64, nonce: &str) -> Value {
    let domain = serde_json::json!({"name": "USD Coin (Dexto local)", "version": "2", "chain_id": chain.chain_id, "verifying_contract": chain.token});
    let signed = crate::chain::sign_authorization(&serde_json::json!({"private_key": payer.private_key, "domain": domain, "to": to,
        "value": value.to_string(), "valid_after": "0", "valid_before": valid_before.to_string(), "nonce": nonce}));
    let (r, s) = (signed["r"].as_str().expect("r"), signed["s"].as_str().expect("s"));
    let signature = format!("{r}{}{:02x}", &s[2..], signed["v"].as_u64().expect("v"));
    serde_json::json!({
        "x402Version": 2,
        "accepted": {"scheme": "exact", "network": format!("eip155:{}", chain.chain_id), "amount": value.to_string(), "asset": chain.token,
            "payTo": to, "maxTimeoutSeconds": 300, "extra": {"name": "USD Coin (Dexto local)", "version": "2"}},
        "payload": {"signature": signature, "authorization": {"from": payer.address, "to": to, "value": value.to_string(),
            "validAfter": "0", "validBefore": valid_before.to_string(), "nonce": nonce}},
    })
}

/// A fresh 32-byte EIP-3009 nonce.
pub fn fresh_nonce() -> String {
    format!("0x{}", hex::encode(dexto_shared::chain::keccak256(dexto_shared::ids::new_id("nonce").as_bytes())))
}

/// Turns the facilitator's settlement outage on or off (its `/__faults`).
pub fn settle_outage(facilitator: &str, on: bool) {
    let body = serde_json::json!({"settle_unavailable": on}).to_string();
    let r = crate::client::send("PUT", &format!("{facilitator}/__faults"), &[("Content-Type", "application/json")], Some(body.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Submits an `exact` payment's own authorization to the token
/// (`transferWithAuthorization`), sent by `relayer` — what a facilitator does,
/// here done by someone else: the chain records its use.
pub fn submit_exact(chain: &crate::Chain, payment: &Value, relayer: &str) -> Value {
    use crate::chain::{word_address, word_u256};
    let auth = &payment["payload"]["authorization"];
    let signature = payment["payload"]["signature"].as_str().expect("signature");
    let (r, s, v) = (&signature[2..66], &signature[66..130], &signature[130..132]);
    let number = |k: &str| auth[k].as_str().expect(k).parse::<u128>().expect(k);
    let calldata = format!(
        "0xe3ee160e{}{}{}{}{}{}{}{r}{s}",
        word_address(auth["from"].as_str().expect("from")),
        word_address(auth["to"].as_str().expect("to")),
        word_u256(number("value")),
        word_u256(number("validAfter")),
        word_u256(number("validBefore")),
        &auth["nonce"].as_str().expect("nonce")[2..],
        word_u256(u128::from_str_radix(v, 16).expect("v")),
    );
    let receipt = chain.send_transaction(relayer, &chain.token, &calldata);
    assert_eq!(receipt["status"], "0x1", "{receipt:#}");
    receipt
}
