//! Helpers of the direct OpenRouter key tests (tests/tests/direct_keys*.rs):
//! signed-in users with credit, the API's calls, and the key as the mock's
//! management API sees it.

use crate::client::send;
use crate::Stack;
use serde_json::Value;

/// The stop-after-the-first-step test hook (DEXTO_TEST_HOOKS=1 only).
pub const STOP: (&str, &str) = ("X-Dexto-Test-Stop-After-First-Step", "1");

/// A signed-in user (created on first sight) with `credit_usd` of credit.
pub fn user(s: &Stack, credit_usd: &str) -> (String, String) {
    let sub = format!("u-{}", dexto_shared::ids::new_id(""));
    let token = s.session_token(&sub, "byok@example.com");
    let none = s.call("GET", "/api/openrouter-provision", &token, None);
    assert_eq!(none.status, 200, "{}", none.body);
    assert_eq!(none.json()["exists"], false);
    s.credit(&sub, credit_usd);
    (sub, token)
}

/// A user with `credit_usd` of credit and a direct key (not funded): (user, session, upstream hash).
pub fn user_with_key(s: &Stack, credit_usd: &str) -> (String, String, String) {
    let (sub, token) = user(s, credit_usd);
    assert_eq!(s.call("POST", "/api/openrouter-provision", &token, None).status, 201);
    let hash = hash_of(s, &sub);
    (sub, token, hash)
}

pub fn post(s: &Stack, path: &str, token: &str, body: Value, extra: &[(&str, &str)]) -> crate::HttpResponse {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    send("POST", &format!("{}{path}", s.base), &headers, Some(body.to_string().as_bytes()))
}

/// The user's balance after checking the books: Σ ledger == balance.
pub fn balance(s: &Stack, user_id: &str) -> i64 {
    let u = s.user(user_id);
    let balance = u["balance_micros"].as_i64().expect("balance");
    assert_eq!(u["ledger_totals"]["net_micros"], balance, "Σ ledger == balance: {u:#}");
    balance
}

/// The ledger rows of the direct-key moves, oldest first: (kind, amount),
/// once there are `n` (the balance was read, so they were projected).
pub fn moves_in_ledger(s: &Stack, user_id: &str, n: usize) -> Vec<(String, i64)> {
    let sql = format!("SELECT kind, amount_micros FROM credit_ledger WHERE user_id = '{user_id}' AND kind LIKE 'direct_key_%' ORDER BY seq");
    let rows = s.d1_until(&sql, |rows| rows.len() >= n);
    rows.iter().map(|r| (r["kind"].as_str().unwrap().to_string(), r["amount_micros"].as_i64().unwrap())).collect()
}

pub fn hash_of(s: &Stack, user_id: &str) -> String {
    let rows = s.d1(&format!("SELECT upstream_hash FROM direct_keys WHERE user_id = '{user_id}' ORDER BY created_at DESC LIMIT 1"));
    rows[0]["upstream_hash"].as_str().expect("a direct key").to_string()
}

/// The key as OpenRouter (the mock's management API) sees it.
pub fn upstream(s: &Stack, hash: &str) -> Value {
    let auth = format!("Bearer {}", mock_openrouter::DEFAULT_MANAGEMENT_KEY);
    let r = send("GET", &format!("{}/keys/{hash}", s.mock), &[("Authorization", &auth)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].clone()
}

/// The key's spending by its own counter (usage + byok_usage), rounded up to the micro.
pub fn spent_micros(key: &Value) -> i64 {
    let usd = |f: &str| dexto_shared::money::Picos::parse_usd(&key[f].to_string()).unwrap();
    usd("usage").plus(usd("byok_usage")).ceil_micros().0
}

/// The key's limit, exactly, in micro-USD.
pub fn limit_micros(key: &Value) -> i64 {
    dexto_shared::money::Micros::from_json_usd(&key["limit"]).expect("a limit").0
}
