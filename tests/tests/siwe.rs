//! Sign-In with Ethereum (EIP-4361) through the real stack: a wallet signs a
//! message over a server nonce and gets a session every control-plane API
//! accepts; each refusal says which check failed and writes nothing; an
//! address belongs to one account; sessions refresh and end at once.

use dexto_shared::chain::testing::{siwe_message, TestWallet};
use integration_tests::siwe::{link, nonce, now_rfc3339, post, signed_link, signed_message, verify};
use integration_tests::stack;
use serde_json::json;

fn wallet() -> TestWallet {
    TestWallet::from_hex(&hex_key())
}

/// A fresh private key per call (tests must not share accounts).
fn hex_key() -> String {
    let id = dexto_shared::ids::new_id("");
    let digest = dexto_shared::chain::keccak256(id.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn refused(r: &integration_tests::client::HttpResponse, code: &str) {
    assert_eq!(r.status, 401, "{code}: {}", r.body);
    assert_eq!(r.json()["error"]["code"], code, "{}", r.body);
}

#[test]
fn a_wallet_signs_in_to_its_own_account_and_the_session_works_across_the_control_plane() {
    let s = stack();
    let w = wallet();
    let (message, signature) = signed_message(s, &w);
    let r = verify(s, &message, &signature);
    assert_eq!(r.status, 200, "{}", r.body);
    let session = r.json();
    let account = format!("eth:{}", w.address());
    assert_eq!(session["user"]["id"], account);
    let token = session["access_token"].as_str().unwrap();
    // Identity, billing: the same session, like a Supabase one.
    let key = s.call("POST", "/api/keys", token, Some(json!({"name": "from a wallet"})));
    assert_eq!(key.status, 200, "{}", key.body);
    let balance = s.call("GET", "/api/billing/balance", token, None);
    assert_eq!(balance.status, 200, "{}", balance.body);
    assert_eq!(s.user(&account)["balance_micros"], 0);
    // Signing in again is the same account.
    let (message, signature) = signed_message(s, &w);
    assert_eq!(verify(s, &message, &signature).json()["user"]["id"], account);
    let addresses = s.call("GET", "/api/auth/siwe/addresses", token, None).json();
    assert_eq!(addresses["data"][0]["address"], w.address().checksummed());
}

#[test]
fn each_refusal_names_its_check_and_writes_nothing() {
    let s = stack();
    let w = wallet();
    let (nonce, domain, chain_id) = nonce(s);
    let good = siwe_message(&domain, &w.address(), chain_id, &nonce, &now_rfc3339());
    let cases = [
        (good.replace("Version: 1", "Version: 9"), w.sign(&good.replace("Version: 1", "Version: 9")), "malformed_message"),
        (good.replace(&format!("{domain} wants"), "evil.example wants"), w.sign(&good.replace(&format!("{domain} wants"), "evil.example wants")), "wrong_domain"),
        (format!("{good}\nExpiration Time: 2020-01-01T00:00:00Z"), w.sign(&format!("{good}\nExpiration Time: 2020-01-01T00:00:00Z")), "expired_message"),
        (good.replace(&format!("Chain ID: {chain_id}"), "Chain ID: 1"), w.sign(&good.replace(&format!("Chain ID: {chain_id}"), "Chain ID: 1")), "wrong_chain"),
        (good.clone(), wallet().sign(&good), "bad_signature"),
        (good.clone(), "0xdeadbeef".to_string(), "bad_signature"),
    ];
    for (message, signature, code) in &cases {
        refused(&verify(s, message, signature), code);
    }
    // Nothing was written: no account, and the nonce is still unused...
    assert_eq!(s.admin("GET", &format!("/admin/users/eth:{}", w.address()), None).status, 404);
    let r = verify(s, &good, &w.sign(&good));
    assert_eq!(r.status, 200, "the untouched nonce signs in: {}", r.body);
    // ...and now it is spent: a replay is refused.
    refused(&verify(s, &good, &w.sign(&good)), "nonce_invalid");
    // A nonce the server never issued.
    let made_up = siwe_message(&domain, &w.address(), chain_id, "neverissued123", &now_rfc3339());
    refused(&verify(s, &made_up, &w.sign(&made_up)), "nonce_invalid");
}

#[test]
fn an_address_belongs_to_one_account_and_links_to_a_supabase_user() {
    let s = stack();
    let w = wallet();
    let (alice_id, bob_id) = (format!("alice-{}", dexto_shared::ids::new_id("")), format!("bob-{}", dexto_shared::ids::new_id("")));
    let (alice, bob) = (s.session_token(&alice_id, "alice@example.com"), s.session_token(&bob_id, "bob@example.com"));
    // A sign-in message (or one naming another account) does not link.
    let (message, signature) = signed_message(s, &w);
    refused(&post(s, "/api/auth/siwe/link", &json!({"message": message, "signature": signature}), Some(&alice)), "wrong_statement");
    let (message, signature) = signed_link(s, &w, &bob_id);
    refused(&post(s, "/api/auth/siwe/link", &json!({"message": message, "signature": signature}), Some(&alice)), "wrong_statement");
    let linked = link(s, &w, &alice_id, &alice);
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(linked.json()["user_id"], alice_id.as_str());
    // Signing in with the address is signing in as Alice.
    let (message, signature) = signed_message(s, &w);
    let as_alice = verify(s, &message, &signature).json();
    assert_eq!(as_alice["user"]["id"], alice_id.as_str());
    // Bob cannot take it.
    let taken = link(s, &w, &bob_id, &bob);
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert!(taken.json()["error"]["message"].as_str().unwrap().contains("belongs to another Dexto account"));
    // Unlinked, the address no longer speaks for Alice: its sessions end, and
    // it signs in to an account of its own.
    let gone = s.call("DELETE", &format!("/api/auth/siwe/addresses/{}", w.address()), &alice, None);
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(s.call("GET", "/api/auth/siwe/addresses", &alice, None).json()["data"], json!([]));
    assert_eq!(s.call("GET", "/api/keys", as_alice["access_token"].as_str().unwrap(), None).status, 401, "its session ended");
    let refresh = json!({"refresh_token": as_alice["refresh_token"]});
    assert_eq!(post(s, "/api/auth/siwe/refresh", &refresh, None).status, 401);
    let (message, signature) = signed_message(s, &w);
    let own = verify(s, &message, &signature).json();
    assert_eq!(own["user"]["id"], format!("eth:{}", w.address()));
    // That account's own address is its identity: not unlinkable.
    let own_token = own["access_token"].as_str().unwrap();
    assert_eq!(s.call("DELETE", &format!("/api/auth/siwe/addresses/{}", w.address()), own_token, None).status, 409);
}

#[test]
fn a_session_refreshes_by_rotation_and_ends_at_once() {
    let s = stack();
    let w = wallet();
    let (message, signature) = signed_message(s, &w);
    let first = verify(s, &message, &signature).json();
    let refresh = first["refresh_token"].as_str().unwrap();
    let second = post(s, "/api/auth/siwe/refresh", &json!({"refresh_token": refresh}), None);
    assert_eq!(second.status, 200, "{}", second.body);
    let second = second.json();
    assert_eq!(post(s, "/api/auth/siwe/refresh", &json!({"refresh_token": refresh}), None).status, 401, "a used refresh token is spent");
    let token = second["access_token"].as_str().unwrap();
    assert_eq!(s.call("GET", "/api/keys", token, None).status, 200);
    assert_eq!(post(s, "/api/auth/siwe/logout", &json!({}), Some(token)).status, 200);
    assert_eq!(s.call("GET", "/api/keys", token, None).status, 401, "revoked at once");
    assert_eq!(s.call("GET", "/api/keys", first["access_token"].as_str().unwrap(), None).status, 401, "the session's earlier token too");
    let next = second["refresh_token"].as_str().unwrap();
    assert_eq!(post(s, "/api/auth/siwe/refresh", &json!({"refresh_token": next}), None).status, 401);
}

#[test]
fn a_wallet_first_account_has_keys_credit_caps_usage_and_approves_device_logins() {
    let s = stack();
    let session = integration_tests::siwe::sign_in(s, &wallet());
    let (user, token) = (session["user"]["id"].as_str().unwrap().to_string(), session["access_token"].as_str().unwrap().to_string());
    s.credit(&user, "1");
    let key = s.call("POST", "/api/keys", &token, Some(json!({"name": "wallet key"})));
    assert_eq!(key.status, 200, "{}", key.body);
    let key = key.json()["data"]["fullKey"].as_str().unwrap().to_string();
    let chat = s.chat(&key, &json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(chat.status, 200, "{}", chat.body);
    let books = s.books_balanced(&user, 1);
    assert!(books["balance_micros"].as_i64().unwrap() < 1_000_000, "billed: {books:#}");
    let cap = s.call("PUT", "/api/caps", &token, Some(json!({"scope": "user", "window": "daily", "limit_usd": 0.5})));
    assert_eq!(cap.status, 200, "{}", cap.body);
    // The device login of a CLI, approved by the wallet's session.
    use integration_tests::device::{begin, decide, poll_new, wait_interval};
    let started = begin(s, "/api/auth/device");
    assert_eq!(decide(s, "approve", &token, &started["userCode"]).status, 200);
    wait_interval();
    let approved = poll_new(s, "/api/auth/device", &started);
    assert_eq!(approved.json()["status"], "approved", "{}", approved.body);
    let cli_key = approved.json()["fullKey"].as_str().unwrap().to_string();
    let usage = integration_tests::get_with(&format!("{}/me/usage", s.base), &[("Authorization", &format!("Bearer {cli_key}"))]);
    assert_eq!(usage.status, 200, "{}", usage.body);
}

#[test]
fn one_signed_message_opens_one_session_however_many_race_it() {
    let s = stack();
    let (message, signature) = signed_message(s, &wallet());
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..10).map(|_| scope.spawn(|| verify(s, &message, &signature).status)).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|&&c| c == 200).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|&c| c == 200 || c == 401), "{answers:?}");
}

#[test]
fn the_session_endpoint_names_a_live_sessions_account_and_refuses_any_other_token() {
    let s = stack();
    let w = wallet();
    let alice_id = format!("alice-{}", dexto_shared::ids::new_id(""));
    let alice = s.session_token(&alice_id, "alice@example.com");
    assert_eq!(link(s, &w, &alice_id, &alice).status, 200);
    let (message, signature) = signed_message(s, &w);
    let token = verify(s, &message, &signature).json()["access_token"].as_str().unwrap().to_string();
    let r = s.call("GET", "/api/auth/siwe/session", &token, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["user"], json!({"id": alice_id, "email": "alice@example.com", "address": w.address().checksummed()}));
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["expires_at"], claims["exp"], "the token's own expiry");
    // Only our own session tokens: a Supabase one is not asked about here.
    assert_eq!(s.call("GET", "/api/auth/siwe/session", &alice, None).status, 401);
    assert_eq!(post(s, "/api/auth/siwe/logout", &json!({}), Some(&token)).status, 200);
    assert_eq!(s.call("GET", "/api/auth/siwe/session", &token, None).status, 401, "ended");
}

/// `access` re-signed with the stack's session key (derived from its
/// `ENCRYPTION_KEY`, as the Workers derive it when no secret of its own is
/// set), its `exp` moved by `exp_after_iat` seconds from its `iat`.
fn resigned(s: &integration_tests::Stack, access: &str, exp_after_iat: i64) -> String {
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(access.split('.').nth(1).unwrap()).unwrap();
    let mut claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    claims["exp"] = json!(claims["iat"].as_i64().unwrap() + exp_after_iat);
    let base = std::env::var("ENCRYPTION_KEY").unwrap_or_else(|_| std::fs::read_to_string(s.run_dir.join("encryption_key")).expect("the stack's encryption key"));
    let key = dexto_shared::jwt::derived_hs256_key(&base, dexto_shared::chain::siwe::SESSION_KEY_PURPOSE);
    dexto_shared::jwt::sign_hs256(&claims, &key)
}

#[test]
fn a_session_past_its_time_says_sign_in_again_but_one_ended_otherwise_is_just_invalid() {
    let s = stack();
    let session = integration_tests::siwe::sign_in(s, &wallet());
    let access = session["access_token"].as_str().unwrap();
    // Re-signed with a live exp it is accepted: the key is the stack's.
    assert_eq!(s.call("GET", "/api/keys", &resigned(s, access, 60), None).status, 200);
    let expired = resigned(s, access, -5);
    refused(&s.call("GET", "/api/keys", &expired, None), "session_expired");
    assert!(s.call("GET", "/api/keys", &expired, None).json()["error"]["message"].as_str().unwrap().contains("sign in again"));
    // Signed out, the same expired token and the refresh token are invalid.
    assert_eq!(post(s, "/api/auth/siwe/logout", &json!({}), Some(access)).status, 200);
    refused(&s.call("GET", "/api/keys", &expired, None), "invalid_api_key");
    refused(&post(s, "/api/auth/siwe/refresh", &json!({"refresh_token": session["refresh_token"]}), None), "invalid_api_key");

    // Past its session's 30 days: the refresh token and an expired access token say sign in again.
    let w = wallet();
    let session = integration_tests::siwe::sign_in(s, &w);
    let user = session["user"]["id"].as_str().unwrap();
    s.d1(&format!("UPDATE auth_sessions SET expires_at = 1 WHERE user_id = '{user}'"));
    let refresh = json!({"refresh_token": session["refresh_token"]});
    let expired = resigned(s, session["access_token"].as_str().unwrap(), -5);
    refused(&post(s, "/api/auth/siwe/refresh", &refresh, None), "session_expired");
    refused(&s.call("GET", "/api/keys", &expired, None), "session_expired");
    refused(&post(s, "/api/auth/siwe/refresh", &json!({"refresh_token": "dxr_made_up"}), None), "invalid_api_key");
    // Its address no longer linked to the account: both are just invalid.
    s.d1(&format!("DELETE FROM wallet_addresses WHERE address = '{}'", w.address()));
    refused(&post(s, "/api/auth/siwe/refresh", &refresh, None), "invalid_api_key");
    refused(&s.call("GET", "/api/keys", &expired, None), "invalid_api_key");
}
