//! Every stack's own local chain (scripts/chain.sh: anvil + our DextoUSD): it
//! runs the configured chain id, the Workers are given its address, and the
//! token behaves as the USDC the gateway will verify top-ups against — 6
//! decimals, exact Transfer logs, EIP-3009 authorizations signed by viem.
//! Calls are hand-encoded ABI (integration_tests::chain); anvil's accounts
//! are unlocked, so the node signs what Rust sends.

use integration_tests::chain::{quantity, sign_authorization, word_address, word_u256, DECIMALS, TRANSFER_EVENT};
use integration_tests::{start, Stack};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Base Sepolia's id: not the default (8453), so the setting is seen to reach anvil.
const CHAIN_ID: u64 = 84532;

fn stack() -> &'static Stack {
    static S: OnceLock<Stack> = OnceLock::new();
    S.get_or_init(|| start(&[("EVM_CHAIN_ID", "84532")]))
}

#[test]
fn the_chain_runs_the_configured_chain_id_and_the_workers_are_given_it() {
    let s = stack();
    assert_eq!(s.chain.chain_id, CHAIN_ID);
    assert_eq!(s.chain.rpc("eth_chainId", json!([])), format!("{CHAIN_ID:#x}"));
    let vars = std::fs::read_to_string(s.run_dir.join(".dev.vars")).expect("the stack's .dev.vars");
    for line in [
        format!("EVM_RPC_URL={}", s.chain.rpc_url),
        format!("EVM_CHAIN_ID={CHAIN_ID}"),
        format!("USDC_CONTRACT={}", s.chain.token),
        format!("TREASURY_ADDRESS={}", s.chain.treasury),
        format!("X402_FACILITATOR_URL={}", s.x402_facilitator()),
    ] {
        assert!(vars.lines().any(|l| l == line), "{line} not given to the Workers:\n{vars}");
    }
}

#[test]
fn the_token_has_six_decimals_and_the_dev_accounts_hold_a_thousand_usdc() {
    let s = stack();
    assert_eq!(quantity(&s.chain.call_token(DECIMALS)), 6);
    // accounts[2] is no other test's: its balance is still the minted one.
    assert_eq!(s.chain.usdc_balance(&s.chain.accounts[2].address), 1_000_000_000);
    assert!(s.chain.accounts.iter().all(|a| !a.address.eq_ignore_ascii_case(&s.chain.treasury)), "the treasury is no dev account");
}

#[test]
fn a_transfer_to_the_treasury_moves_exactly_its_amount_and_logs_one_transfer() {
    let s = stack();
    let (payer, treasury) = (s.chain.accounts[1].address.as_str(), s.chain.treasury.as_str());
    let amount = 12_345_678; // 12.345678 USDC
    let (payer_before, treasury_before) = (s.chain.usdc_balance(payer), s.chain.usdc_balance(treasury));

    let receipt = s.chain.usdc_transfer(payer, treasury, amount);
    assert_eq!(s.chain.usdc_balance(payer), payer_before - amount);
    assert_eq!(s.chain.usdc_balance(treasury), treasury_before + amount);
    let expected_topics = json!([TRANSFER_EVENT, format!("0x{}", word_address(payer)), format!("0x{}", word_address(treasury))]);
    let logs = receipt["logs"].as_array().expect("receipt logs");
    assert_eq!(logs.len(), 1, "{receipt:#}");
    assert_transfer_log(&logs[0], &s.chain.token, &expected_topics, amount);

    // What an indexer asks: Transfer logs of the token to the treasury in that block.
    let block = &receipt["blockNumber"];
    let found = s.chain.rpc("eth_getLogs", json!([{"address": s.chain.token, "fromBlock": block, "toBlock": block,
        "topics": [TRANSFER_EVENT, null, format!("0x{}", word_address(treasury))]}]));
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found:#}");
    assert_transfer_log(&found[0], &s.chain.token, &expected_topics, amount);
    assert_eq!(found[0]["transactionHash"], receipt["transactionHash"]);
}

fn assert_transfer_log(log: &Value, token: &str, topics: &Value, amount: u128) {
    assert!(log["address"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(token)), "{log:#}");
    assert_eq!(&log["topics"], topics);
    assert_eq!(log["data"], format!("0x{}", word_u256(amount)));
}

#[test]
fn anvil_mine_advances_the_head_and_finality() {
    let s = stack();
    let head = s.chain.block_number();
    s.chain.mine(64);
    assert!(s.chain.block_number() >= head + 64);
    // What "final" will mean locally: anvil finalizes 64 blocks behind the head.
    let finalized = s.chain.rpc("eth_getBlockByNumber", json!(["finalized", false]));
    assert!(quantity(finalized["number"].as_str().expect("finalized number")) >= u128::from(head), "{finalized:#}");
}

/// `transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)`
const TRANSFER_WITH_AUTHORIZATION: &str = "0xe3ee160e";
/// `authorizationState(address,bytes32)`
const AUTHORIZATION_STATE: &str = "0xe94a0102";

#[test]
fn a_transfer_authorization_signed_by_viem_moves_the_funds_once() {
    let s = stack();
    let (signer, payee, relayer) = (&s.chain.accounts[3], s.chain.accounts[4].address.as_str(), s.chain.accounts[0].address.as_str());
    let (amount, nonce) = (2_500_000u128, format!("0x{}", "ab".repeat(32)));
    let signed = sign_authorization(&json!({
        "private_key": signer.private_key,
        "domain": {"name": "USD Coin (Dexto local)", "version": "2", "chain_id": CHAIN_ID, "verifying_contract": s.chain.token},
        "to": payee, "value": amount.to_string(), "valid_after": "0", "valid_before": "99999999999", "nonce": nonce,
    }));
    assert_eq!(signed["from"], signer.address.as_str());
    let state = || quantity(&s.chain.call_token(&format!("{AUTHORIZATION_STATE}{}{}", word_address(&signer.address), &nonce[2..])));
    assert_eq!(state(), 0, "unused before");
    let calldata = format!(
        "{TRANSFER_WITH_AUTHORIZATION}{}{}{}{}{}{}{}{}{}",
        word_address(&signer.address),
        word_address(payee),
        word_u256(amount),
        word_u256(0),
        word_u256(99_999_999_999),
        &nonce[2..],
        word_u256(signed["v"].as_u64().expect("v").into()),
        &signed["r"].as_str().expect("r")[2..],
        &signed["s"].as_str().expect("s")[2..],
    );
    let (signer_before, payee_before) = (s.chain.usdc_balance(&signer.address), s.chain.usdc_balance(payee));

    // Anyone may submit it (the relayer pays the gas); the signer's funds move.
    s.chain.send_transaction(relayer, &s.chain.token, &calldata);
    assert_eq!(s.chain.usdc_balance(&signer.address), signer_before - amount);
    assert_eq!(s.chain.usdc_balance(payee), payee_before + amount);
    assert_eq!(state(), 1, "used after");
    // A replay reverts, saying why; sent anyway, it is mined reverted and moves nothing.
    let replay = json!({"from": relayer, "to": s.chain.token, "data": calldata});
    let refusal = s.chain.try_rpc("eth_call", &json!([replay, "latest"])).expect_err("a replayed authorization reverts");
    assert!(refusal.to_string().contains("authorization is used or canceled"), "{refusal}");
    if let Ok(hash) = s.chain.try_rpc("eth_sendTransaction", &json!([replay])) {
        assert_eq!(s.chain.receipt(hash.as_str().expect("tx hash"))["status"], "0x0");
    }
    assert_eq!(s.chain.usdc_balance(payee), payee_before + amount);
}

