//! The exact-capacity race: a wallet funded for exactly K worst-case calls,
//! 10 × K concurrent requests → exactly K succeed, the balance never goes
//! negative, and the ledger sums to the balance change.

use dexto_shared::billing::hold_amount;
use dexto_shared::catalogue::Catalogue;
use dexto_shared::chat_request::ChatRequest;
use dexto_shared::money::{Markup, Micros};
use integration_tests::{marker, stack};
use serde_json::json;
use std::sync::{Arc, Barrier};

const K: usize = 10;

#[test]
fn exactly_k_of_10k_concurrent_calls_succeed() {
    let s = stack();
    let m = marker("race");
    // mock/output-only: free prompt, 20 µ$ per output token, and the mock
    // produces exactly max_tokens tokens, so each call costs exactly its hold:
    // settling frees nothing, whatever the interleaving.
    let body = json!({"model": "mock/output-only", "max_tokens": 8, "messages": [{"role": "user", "content": format!("{m} [[mock:tokens=8]]")}]});
    let models: serde_json::Value = serde_json::from_str(&integration_tests::get(&format!("{}/models", s.mock)).body).unwrap();
    let catalogue = Catalogue::from_openrouter(&models, 0).unwrap();
    let chat = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
    let hold = hold_amount(&chat, catalogue.get("mock/output-only").unwrap(), Markup::NONE);
    assert_eq!(hold, Micros(160));

    let u = s.new_user(&Micros(hold.0 * K as i64).usd_fixed());
    let barrier = Arc::new(Barrier::new(10 * K));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10 * K)
            .map(|_| {
                let (barrier, key, body) = (barrier.clone(), u.key.clone(), body.clone());
                scope.spawn(move || {
                    barrier.wait();
                    s.chat(&key, &body).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!((ok, refused), (K, 9 * K), "statuses: {statuses:?}");

    let user = s.settled_user(&u.id, K as u64);
    assert_eq!(user["balance_micros"], 0);
    assert_eq!(user["ledger_totals"]["net_micros"], 0, "Σ ledger == balance");
    assert_eq!(user["ledger_totals"]["debits_micros"], -(hold.0 * K as i64));
    assert_eq!(user["open_holds"], json!([]));
    for row in user["recent_ledger"].as_array().unwrap() {
        assert!(row["balance_after_micros"].as_i64().unwrap() >= 0, "negative balance in {row}");
    }
    assert_eq!(s.upstream_calls(&m), K);
}
