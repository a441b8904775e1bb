//! Signing in with an Ethereum key through the stack, as a wallet-holding
//! browser does: nonce, EIP-4361 message, personal_sign, verify.

use crate::client::{send, HttpResponse};
use crate::Stack;
use dexto_shared::chain::testing::{siwe_message, TestWallet};
use serde_json::{json, Value};

/// `(nonce, domain, chain_id)` from the server.
pub fn nonce(s: &Stack) -> (String, String, u64) {
    let r = crate::get(&format!("{}/api/auth/siwe/nonce", s.base));
    assert_eq!(r.status, 200, "{}", r.body);
    let n = r.json();
    (n["nonce"].as_str().unwrap().into(), n["domain"].as_str().unwrap().into(), n["chain_id"].as_u64().unwrap())
}

pub fn now_rfc3339() -> String {
    dexto_shared::time::rfc3339(crate::now_ms())
}

/// A fresh message over a fresh nonce, and the wallet's signature of it.
pub fn signed_message(s: &Stack, w: &TestWallet) -> (String, String) {
    let (nonce, domain, chain_id) = nonce(s);
    let message = siwe_message(&domain, &w.address(), chain_id, &nonce, &now_rfc3339());
    let signature = w.sign(&message);
    (message, signature)
}

pub fn post(s: &Stack, path: &str, body: &Value, token: Option<&str>) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    send("POST", &format!("{}{path}", s.base), &headers, Some(body.to_string().as_bytes()))
}

pub fn verify(s: &Stack, message: &str, signature: &str) -> HttpResponse {
    post(s, "/api/auth/siwe/verify", &json!({"message": message, "signature": signature}), None)
}

/// Signs in with `w`; the session (`access_token`, `user.id`, …).
pub fn sign_in(s: &Stack, w: &TestWallet) -> Value {
    let (message, signature) = signed_message(s, w);
    let r = verify(s, &message, &signature);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// A link message for `account` over a fresh nonce, and its signature.
pub fn signed_link(s: &Stack, w: &TestWallet, account: &str) -> (String, String) {
    let (nonce, domain, chain_id) = nonce(s);
    let statement = dexto_shared::chain::siwe::link_statement(account);
    let message = dexto_shared::chain::testing::siwe_message_stating(&statement, &domain, &w.address(), chain_id, &nonce, &now_rfc3339());
    let signature = w.sign(&message);
    (message, signature)
}

/// Links `w`'s address to `account`, whose session `token` is.
pub fn link(s: &Stack, w: &TestWallet, account: &str, token: &str) -> HttpResponse {
    let (message, signature) = signed_link(s, w, account);
    post(s, "/api/auth/siwe/link", &json!({"message": message, "signature": signature}), Some(token))
}
