//! USDC top-ups through the real stack and a real local chain (anvil, our
//! DextoUSD token): credited exactly once and only when final, whoever
//! confirms or scans and however often; each refusal a clear 4xx; unclaimed
//! transfers credited once their sender is linked; a transfer reorged out
//! before finality never credited. anvil's `finalized` block is 64 behind
//! its head, so tests mine 64 blocks to make a transfer final.

use dexto_shared::chain::testing::TestWallet;
use integration_tests::chain::{word_address, word_u256, Chain};
use integration_tests::siwe::{link, post, sign_in};
use integration_tests::{stack, Stack};
use serde_json::{json, Value};

const FINALITY: u64 = 64;

/// The tests on the shared stack share its chain: one that must see its
/// transfer not yet final holds this so that no other test mines meanwhile.
static MINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Mines `blocks` on the shared chain, never while a test holds `MINING`.
fn mine(s: &Stack, blocks: u64) {
    let _turn = MINING.lock().unwrap_or_else(|e| e.into_inner());
    s.chain.mine(blocks);
}

/// Dev account `i` (funded with USDC, unlocked) as a wallet that can sign in.
fn account(chain: &Chain, i: usize) -> (String, TestWallet) {
    let a = &chain.accounts[i];
    (a.address.clone(), TestWallet::from_hex(&a.private_key))
}

fn confirm(s: &Stack, token: &str, tx: &str) -> integration_tests::HttpResponse {
    post(s, "/api/billing/crypto/confirm", &json!({"tx_hash": tx}), Some(token))
}

fn tx_of(receipt: &Value) -> String {
    receipt["transactionHash"].as_str().unwrap().to_string()
}

fn balance(s: &Stack, user: &str) -> i64 {
    s.user(user)["balance_micros"].as_i64().unwrap()
}

#[test]
fn a_linked_transfer_is_pending_until_final_then_credited_once_under_ten_concurrent_confirms() {
    let s = stack();
    let (from, wallet) = account(&s.chain, 0);
    let session = sign_in(s, &wallet);
    let (user, token) = (session["user"]["id"].as_str().unwrap().to_string(), session["access_token"].as_str().unwrap().to_string());
    // The sender's balance (tests in this file share the treasury, not senders).
    let sender_before = s.chain.usdc_balance(&from);
    let tx = {
        let _no_mining = MINING.lock().unwrap_or_else(|e| e.into_inner());
        let tx = tx_of(&s.chain.usdc_transfer(&from, &s.chain.treasury, 2_500_000));
        let early = confirm(s, &token, &tx);
        assert_eq!(early.status, 202, "not final yet: {}", early.body);
        assert_eq!(balance(s, &user), 0);
        tx
    };
    mine(s, FINALITY);
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..10).map(|_| scope.spawn(|| confirm(s, &token, &tx).status)).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|&&c| c == 200).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|&c| c == 200 || c == 409), "{answers:?}");
    let books = s.books_balanced(&user, 0);
    assert_eq!(books["balance_micros"], 2_500_000, "1 USDC base unit = 1 µ$: {books:#}");
    assert_eq!(sender_before - s.chain.usdc_balance(&from), 2_500_000, "credited exactly what left the wallet");
    assert_eq!(confirm(s, &token, &tx).status, 409, "already credited");
    let overview = s.call("GET", "/api/billing/crypto", &token, None).json();
    assert_eq!(overview["treasury"].as_str().unwrap().to_lowercase(), s.chain.treasury.to_lowercase());
    assert_eq!(overview["transfers"][0]["status"], "credited");
}

#[test]
fn each_refusal_is_a_clear_4xx_and_credits_nothing() {
    let s = stack();
    let (from, wallet) = account(&s.chain, 1);
    let session = sign_in(s, &wallet);
    let (user, token) = (session["user"]["id"].as_str().unwrap().to_string(), session["access_token"].as_str().unwrap().to_string());
    let unknown = confirm(s, &token, &format!("0x{}", "ab".repeat(32)));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // Not the treasury.
    let elsewhere = tx_of(&s.chain.usdc_transfer(&from, "0x000000000000000000000000000000000000dEaD", 1_000));
    let r = confirm(s, &token, &elsewhere);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("does not pay the treasury"), "{}", r.body);
    // Not USDC: plain ether to the treasury.
    let ether = s.chain.rpc("eth_sendTransaction", json!([{"from": from, "to": s.chain.treasury, "value": "0x1"}]));
    let r = confirm(s, &token, &tx_of(&s.chain.receipt(ether.as_str().unwrap())));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("moves no USDC"), "{}", r.body);
    // Reverted: more USDC than the sender holds, forced into a block.
    let too_much = format!("0xa9059cbb{}{}", word_address(&s.chain.treasury), word_u256(u128::from(u64::MAX)));
    let hash = s.chain.rpc("eth_sendTransaction", json!([{"from": from, "to": s.chain.token, "data": too_much, "gas": "0x30000"}]));
    let receipt = s.chain.receipt(hash.as_str().unwrap());
    assert_eq!(receipt["status"], "0x0");
    let r = confirm(s, &token, &tx_of(&receipt));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("reverted"), "{}", r.body);
    // Sent by an address of another account.
    let (other_from, other_wallet) = account(&s.chain, 2);
    sign_in(s, &other_wallet);
    let theirs = tx_of(&s.chain.usdc_transfer(&other_from, &s.chain.treasury, 7_000));
    mine(s, FINALITY);
    assert_eq!(confirm(s, &token, &theirs).status, 403);
    let garbage = confirm(s, &token, "0x1234");
    assert_eq!(garbage.status, 400, "{}", garbage.body);
    assert_eq!(balance(s, &user), 0, "nothing credited");
}

#[test]
fn an_unlinked_senders_transfer_stays_unclaimed_until_linked_then_the_cron_credits_it() {
    let s = stack();
    let (from, wallet) = account(&s.chain, 3);
    let person = format!("carol-{}", dexto_shared::ids::new_id(""));
    let token = s.session_token(&person, "carol@example.com");
    let tx = tx_of(&s.chain.usdc_transfer(&from, &s.chain.treasury, 4_200_000));
    mine(s, FINALITY);
    let r = confirm(s, &token, &tx);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("not linked to your account"), "{}", r.body);
    s.run_cron();
    assert_eq!(balance(s, &person), 0, "unclaimed: nobody's yet");
    assert_eq!(link(s, &wallet, &person, &token).status, 200);
    s.run_cron();
    let books = s.books_balanced(&person, 0);
    assert_eq!(books["balance_micros"], 4_200_000, "{books:#}");
    s.run_cron();
    assert_eq!(balance(s, &person), 4_200_000, "a rerun credits nothing more");
}

#[test]
fn the_scan_credits_a_transfer_nobody_confirmed_and_never_one_reorged_out_before_final() {
    // Its own stack and chain: reverting the chain would undo other tests' transfers.
    let s = &integration_tests::start(&[]);
    let (from, wallet) = account(&s.chain, 4);
    let session = sign_in(s, &wallet);
    let (user, token) = (session["user"]["id"].as_str().unwrap().to_string(), session["access_token"].as_str().unwrap().to_string());
    // Reorged out: seen (pending), then the chain drops it before finality.
    let snapshot = s.chain.rpc("evm_snapshot", json!([]));
    let doomed = tx_of(&s.chain.usdc_transfer(&from, &s.chain.treasury, 9_000_000));
    assert_eq!(confirm(s, &token, &doomed).status, 202);
    assert_eq!(s.chain.rpc("evm_revert", json!([snapshot])), json!(true));
    // Never confirmed by hand: found by the scan once final.
    let quiet = tx_of(&s.chain.usdc_transfer(&from, &s.chain.treasury, 1_250_000));
    s.chain.mine(FINALITY);
    s.run_cron();
    s.run_cron();
    let books = s.books_balanced(&user, 0);
    assert_eq!(books["balance_micros"], 1_250_000, "only the transfer the chain still shows: {books:#}");
    let transfers = s.call("GET", "/api/billing/crypto", &token, None).json()["transfers"].clone();
    let status = |tx: &str| transfers.as_array().unwrap().iter().find(|t| t["tx_hash"] == tx).map(|t| t["status"].clone());
    assert_eq!(status(&quiet), Some(json!("credited")));
    assert_eq!(status(&doomed), Some(json!("dropped")));
}

#[test]
fn a_credited_transfer_the_chain_no_longer_shows_is_a_finding_once() {
    // Its own stack and chain: the chain is rewound past a final block.
    let s = &integration_tests::start(&[]);
    let (from, wallet) = account(&s.chain, 0);
    let user = sign_in(s, &wallet)["user"]["id"].as_str().unwrap().to_string();
    let snapshot = s.chain.rpc("evm_snapshot", json!([]));
    let tx = tx_of(&s.chain.usdc_transfer(&from, &s.chain.treasury, 3_000_000));
    s.chain.mine(FINALITY);
    s.run_cron();
    assert_eq!(s.books_balanced(&user, 0)["balance_micros"], 3_000_000);
    // What only a node that lies, or a reorg past finality, could do.
    assert_eq!(s.chain.rpc("evm_revert", json!([snapshot])), json!(true));
    s.chain.mine(3 * FINALITY);
    s.run_cron();
    s.run_cron();
    let admin = format!("Bearer {}", s.admin_token);
    let r = integration_tests::get_with(&format!("{}/admin/reconciliation", s.base), &[("Authorization", &admin)]);
    let found: Vec<Value> = r.json()["data"].as_array().unwrap().iter().filter(|f| f["kind"] == "crypto_transfer_missing").cloned().collect();
    assert_eq!(found.len(), 1, "reported once: {found:?}");
    assert_eq!(found[0]["user_id"], user.as_str());
    assert!(found[0]["detail"].to_string().contains(&tx), "{found:?}");
    assert_eq!(s.user(&user)["balance_micros"], 3_000_000, "the credit stands: an operator decides");
}
