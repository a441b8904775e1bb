//! x402 on the local chain, before the gateway speaks it: the chain's own
//! facilitator (tools/x402/facilitator.mjs, the @x402 packages' exact scheme)
//! and the official client (tools/x402/pay.mjs, @x402/fetch) against a
//! stand-in paid resource built from @x402/core's server helpers
//! (tools/x402/demo-resource.mjs). Balances and transactions are read on the
//! chain itself. No Workers: a chain (and its facilitator) is all this needs.

use base64::Engine;
use integration_tests::chain::{quantity, word_address, word_u256, TRANSFER_EVENT};
use integration_tests::x402::{pay, DemoResource};
use integration_tests::{post, Chain};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Base Sepolia's id: the network the payments name is `eip155:84532`.
const CHAIN_ID: u64 = 84532;
/// x402's upto proxy, at its canonical address (nothing on npm ships its bytecode).
const UPTO_PROXY: &str = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

fn run_dir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/itest");
        let dir = root.join(format!("x402-{}-{}", std::process::id(), dexto_shared::ids::new_id("")));
        std::fs::create_dir_all(&dir).expect("run dir");
        dir
    })
}

/// One chain (and facilitator) for this file; each test pays from its own
/// dev account to its own payTo, so balances are the test's alone.
fn chain() -> &'static Chain {
    static C: OnceLock<Chain> = OnceLock::new();
    C.get_or_init(|| Chain::start(CHAIN_ID, run_dir()))
}

/// A stand-in resource costing `amount` base units of the chain's USDC, paid to a fresh address.
fn resource(amount: u128) -> (DemoResource, String) {
    let pay_to = format!("0x{}", &hex_of(&dexto_shared::ids::new_id("")).repeat(3)[..40]);
    let c = chain();
    (DemoResource::start(&c.x402_facilitator.url, CHAIN_ID, &c.token, &pay_to, amount, run_dir()), pay_to)
}

#[test]
fn the_facilitator_supports_exact_on_the_chain_and_names_its_signer_but_offers_no_upto_without_the_proxy() {
    let c = chain();
    let f = &c.x402_facilitator;
    let supported = integration_tests::get(&format!("{}/supported", f.url));
    assert_eq!(supported.status, 200, "{}", supported.body);
    let supported = supported.json();
    let kinds = supported["kinds"].as_array().expect("kinds");
    assert!(kinds.iter().any(|k| k["x402Version"] == 2 && k["scheme"] == "exact" && k["network"] == format!("eip155:{CHAIN_ID}")), "{supported:#}");
    assert!(supported["signers"]["eip155:*"].as_array().expect("signers").iter().any(|s| s == f.signer.as_str()), "{supported:#}");
    // Without the proxy's code an upto settle "succeeds" moving nothing: not offered.
    assert_eq!(c.rpc("eth_getCode", json!([UPTO_PROXY, "latest"])), "0x");
    assert!(!kinds.iter().any(|k| k["scheme"] == "upto"), "upto offered without its proxy: {supported:#}");
    assert_eq!(f.schemes, ["exact"]);
}

#[test]
fn a_client_pays_exact_and_exactly_the_amount_moves_from_payer_to_pay_to_with_the_facilitator_paying_gas() {
    let c = chain();
    let amount = 250_000; // 0.25 USDC
    let (resource, pay_to) = resource(amount);
    let payer = &c.accounts[3];
    let url = format!("{}/paid", resource.url);
    assert_eq!(integration_tests::get(&url).status, 402, "unpaid, the resource asks for a payment");
    let (payer_usdc, payer_eth, payer_nonce, signer_eth) = (c.usdc_balance(&payer.address), eth(c, &payer.address), nonce(c, &payer.address), eth(c, &c.x402_facilitator.signer));

    let paid = pay(&url, &payer.private_key, &[]);
    assert_eq!(paid["status"], 200, "{paid:#}");
    let settlement = &paid["payment_response"];
    assert_eq!(settlement["success"], true, "{paid:#}");
    assert_eq!(settlement["network"], format!("eip155:{CHAIN_ID}"));
    assert!(settlement["payer"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(&payer.address)), "{paid:#}");

    assert_eq!(c.usdc_balance(&payer.address), payer_usdc - amount);
    assert_eq!(c.usdc_balance(&pay_to), amount);
    // One transferWithAuthorization, sent and paid for by the facilitator: the payer signed only.
    let receipt = c.receipt(settlement["transaction"].as_str().expect("transaction hash"));
    assert_eq!(receipt["status"], "0x1", "{receipt:#}");
    assert!(receipt["from"].as_str().is_some_and(|f| f.eq_ignore_ascii_case(&c.x402_facilitator.signer)), "{receipt:#}");
    assert!(receipt["to"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(&c.token)), "{receipt:#}");
    let transfers: Vec<&Value> = receipt["logs"].as_array().expect("logs").iter().filter(|l| l["topics"][0] == TRANSFER_EVENT).collect();
    assert_eq!(transfers.len(), 1, "{receipt:#}");
    assert_eq!(transfers[0]["topics"], json!([TRANSFER_EVENT, format!("0x{}", word_address(&payer.address)), format!("0x{}", word_address(&pay_to))]));
    assert_eq!(transfers[0]["data"], format!("0x{}", word_u256(amount)));
    assert_eq!((eth(c, &payer.address), nonce(c, &payer.address)), (payer_eth, payer_nonce), "the payer spent no gas and sent nothing");
    assert!(eth(c, &c.x402_facilitator.signer) < signer_eth, "the facilitator paid the gas");
}

#[test]
fn a_replayed_payment_is_refused_by_verify_settle_and_the_resource_and_moves_nothing() {
    let c = chain();
    let amount = 40_000;
    let (resource, pay_to) = resource(amount);
    let payer = &c.accounts[4];
    let url = format!("{}/paid", resource.url);
    assert_eq!(pay(&url, &payer.private_key, &[])["status"], 200);
    let payer_after_first = c.usdc_balance(&payer.address);
    let last = integration_tests::get(&format!("{}/last-payment", resource.url)).json();
    assert!(last["paymentPayload"].is_object(), "the resource kept what it was paid with: {last:#}");
    let request = json!({"x402Version": 2, "paymentPayload": last["paymentPayload"], "paymentRequirements": last["paymentRequirements"]}).to_string();

    let verified = post(&format!("{}/verify", c.x402_facilitator.url), &[("Content-Type", "application/json")], request.as_bytes());
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.json()["isValid"], false, "{}", verified.body);
    let settled = post(&format!("{}/settle", c.x402_facilitator.url), &[("Content-Type", "application/json")], request.as_bytes());
    assert_eq!(settled.status, 200, "{}", settled.body);
    assert_eq!(settled.json()["success"], false, "{}", settled.body);
    assert_eq!(settled.json()["errorReason"], "invalid_exact_evm_nonce_already_used", "{}", settled.body);
    // The same PAYMENT-SIGNATURE sent again to the resource: asked to pay again.
    let header = base64::engine::general_purpose::STANDARD.encode(last["paymentPayload"].to_string());
    let again = integration_tests::get_with(&url, &[("PAYMENT-SIGNATURE", &header)]);
    assert_eq!(again.status, 402, "{}", again.body);

    assert_eq!(c.usdc_balance(&payer.address), payer_after_first);
    assert_eq!(c.usdc_balance(&pay_to), amount, "paid once");
}

#[test]
fn the_client_does_not_pay_more_than_its_max() {
    let c = chain();
    let (resource, pay_to) = resource(2_000_000);
    let payer = &c.accounts[2];
    let before = c.usdc_balance(&payer.address);
    let refused = pay(&format!("{}/paid", resource.url), &payer.private_key, &["--max", "1999999"]);
    assert_eq!(refused["status"], 402, "{refused:#}");
    assert!(refused["refused"].as_str().is_some_and(|r| r.contains("filtered out")), "{refused:#}");
    assert!(refused["payment_response"].is_null(), "{refused:#}");
    assert_eq!((c.usdc_balance(&payer.address), c.usdc_balance(&pay_to)), (before, 0));
}

fn eth(c: &Chain, address: &str) -> u128 {
    quantity(c.rpc("eth_getBalance", json!([address, "latest"])).as_str().expect("balance"))
}

fn nonce(c: &Chain, address: &str) -> u128 {
    quantity(c.rpc("eth_getTransactionCount", json!([address, "latest"])).as_str().expect("nonce"))
}

/// An id's bytes as lowercase hex (to make an address no one holds).
fn hex_of(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}
