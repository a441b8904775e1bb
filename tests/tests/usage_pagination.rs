//! `/me/usage/history` keyset pagination while the ledger keeps growing: every
//! row that existed when paging began appears exactly once, in a strict total
//! order (created_at DESC, request_id ASC), including rows that share a
//! millisecond; rows inserted meanwhile never cause a repeat or a gap.

use integration_tests::{stack, Stack, TestUser};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn insert_rows(s: &Stack, u: &TestUser, rows: &[(String, i64)]) {
    let values: Vec<String> = rows
        .iter()
        .map(|(id, at)| format!("('{id}', '{}', '{}', 'openai/gpt-4o', 1, 1, 1, 1, 'reported_cost', 'billed', {at})", u.id, u.key_id))
        .collect();
    s.d1(&format!(
        "INSERT INTO usage_ledger (request_id, user_id, key_id, model, prompt_tokens, completion_tokens, provider_cost_micros,
           user_price_micros, price_basis, billing_status, created_at) VALUES {}",
        values.join(", ")
    ));
}

fn position(row: &Value) -> (i64, String) {
    (row["created_at_ms"].as_i64().unwrap(), row["request_id"].as_str().unwrap().to_string())
}

#[test]
fn pages_have_no_gaps_or_duplicates_while_writes_continue() {
    let s = stack();
    let u = s.new_user("1");
    // 24 rows an hour ago, three per millisecond: ties must be broken by request id.
    let base = integration_tests::now_ms() - 3_600_000;
    let initial: Vec<(String, i64)> = (0..24).map(|i| (format!("req_seed_{i:02}_{}", u.id), base + (i / 3) as i64)).collect();
    insert_rows(s, &u, &initial);

    // A writer keeps settling new requests (created now, so above every cursor).
    // It pauses while the test writes to the local D1 file directly: two
    // processes on one SQLite file would otherwise collide (SQLITE_BUSY), which
    // says nothing about the gateway.
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));
    let idle = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, pause, idle, written) = (stop.clone(), pause.clone(), idle.clone(), written.clone());
        let (admin, user_id, key_id) = (format!("{}|{}", s.base, s.admin_token), u.id.clone(), u.key_id.clone());
        std::thread::spawn(move || {
            let (base, token) = admin.split_once('|').unwrap();
            let auth = format!("Bearer {token}");
            while !stop.load(Ordering::Relaxed) {
                idle.store(pause.load(Ordering::SeqCst), Ordering::SeqCst);
                if pause.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                let n = written.fetch_add(1, Ordering::Relaxed);
                let body = json!({"request_id": format!("req_live_{n}_{user_id}"), "key_id": key_id, "model": "openai/gpt-4o",
                    "user_price_usd": "0.000001", "provider_cost_usd": "0.000001"});
                let r = integration_tests::post(&format!("{base}/admin/users/{user_id}/settlements"), &[("Authorization", &auth)], body.to_string().as_bytes());
                assert_eq!(r.status, 200, "{}", r.body);
            }
        })
    };

    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut late: Vec<(String, i64)> = Vec::new();
    let from = integration_tests::now_ms() - 7_200_000;
    for page_no in 0.. {
        let query = match &cursor {
            None => format!("/me/usage/history?limit=5&from={}", dexto_shared::time::rfc3339(from)),
            Some(c) => format!("/me/usage/history?limit=5&from={}&cursor={c}", dexto_shared::time::rfc3339(from)),
        };
        let page = s.usage(&u.key, &query).json();
        seen.extend(page["data"].as_array().unwrap().iter().map(position));
        if page_no == 1 {
            // Inserts behind the cursor while paging: a tie after it, an older row, and one before it.
            let (at, id) = seen.last().unwrap().clone();
            late = vec![(format!("{id}~after"), at), (format!("req_older_{}", u.id), base - 1)];
            let before = (format!("req_before_{}", u.id), at + 1);
            pause.store(true, Ordering::SeqCst);
            while !idle.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(200)); // the last settlement's D1 flush
            insert_rows(s, &u, &[late[0].clone(), late[1].clone(), before]);
            pause.store(false, Ordering::SeqCst);
        }
        match page["next_cursor"].as_str() {
            Some(c) if page["has_more"] == true => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(written.load(Ordering::Relaxed) > 0, "writes happened while paging");

    // Strict order ⇒ no duplicates; every initial row exactly once; late rows behind the cursor show up.
    for pair in seen.windows(2) {
        let ((a_at, a_id), (b_at, b_id)) = (&pair[0], &pair[1]);
        assert!(a_at > b_at || (a_at == b_at && a_id < b_id), "order broken at {pair:?}");
    }
    let ids: HashSet<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "no duplicates");
    for (id, _) in initial.iter().chain(&late) {
        assert!(ids.contains(id.as_str()), "{id} missing");
    }
    assert!(!ids.contains(format!("req_before_{}", u.id).as_str()), "a row inserted ahead of the cursor is not in later pages");
    let live = seen.iter().filter(|(_, id)| id.starts_with("req_live_")).count();
    assert_eq!(seen.len(), 24 + 2 + live);
}
