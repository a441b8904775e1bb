//! `npm run dev` (scripts/dev.sh) on a free port: it prints a base URL and a
//! DEXTO_API_KEY whose wallet holds $10, writes .dev/session.json, and the key
//! works for a chat call straight away.

use integration_tests::spawn_guarded;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

/// Starts `npm run dev`'s script on `dev_dir`; returns it (stopped when its
/// stdin closes), what it printed up to the key, and the key.
fn start_dev(dev_dir: &std::path::Path) -> (std::process::Child, String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let script = root.join("scripts/dev.sh");
    let mut child = spawn_guarded(&[script.as_os_str()], &[("PORT", "0"), ("DEV_DIR", dev_dir.to_str().unwrap())]);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    for line in stdout.lines().map_while(Result::ok) {
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("DEXTO_API_KEY=") {
            break;
        }
    }
    let key = printed.lines().find_map(|l| l.trim().strip_prefix("DEXTO_API_KEY=")).expect("a printed key").to_string();
    (child, printed, key)
}

fn stop_dev(mut child: std::process::Child) {
    drop(child.stdin.take()); // the watchdog stops the dev stack
    let _ = child.wait();
}

#[test]
fn the_dev_command_prints_a_working_key_with_ten_dollars() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let dev_dir = root.join("target/itest").join(format!("dev-{}", dexto_shared::ids::new_id("")));
    let (child, printed, key) = start_dev(&dev_dir);
    let session: Value = serde_json::from_str(&std::fs::read_to_string(dev_dir.join("session.json")).unwrap()).unwrap();
    for field in ["base_url", "api_key", "user_id", "admin_token", "session_token", "supabase_issuer", "stripe_webhook_secret"] {
        assert!(session[field].is_string(), "session.json lacks {field}");
    }
    assert_eq!(session["api_key"], key.as_str());
    let base = session["base_url"].as_str().unwrap();
    assert!(printed.contains(base), "the base URL is printed");

    let user = integration_tests::get_with(&format!("{base}/admin/users/dev-user"), &[("Authorization", &format!("Bearer {}", session["admin_token"].as_str().unwrap()))]);
    assert_eq!(user.json()["balance_micros"], 10_000_000);
    let body = json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}).to_string();
    let r = integration_tests::post(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("X-Dexto-Cost-USD").is_some());
    // The printed session token works on the session-authenticated endpoints.
    let keys = integration_tests::get_with(&format!("{base}/api/keys"), &[("Authorization", &format!("Bearer {}", session["session_token"].as_str().unwrap()))]);
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert_eq!(keys.json()["success"], true);
    // `dexto login --token` asks Supabase who the token is: the dev stack answers
    // for its own sessions, with an email the CLI accepts.
    let who = integration_tests::get_with(
        &format!("{}/auth/v1/user", session["supabase_url"].as_str().unwrap()),
        &[("Authorization", &format!("Bearer {}", session["session_token"].as_str().unwrap()))],
    );
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.json()["id"], "dev-user");
    let email = who.json()["email"].as_str().unwrap().to_string();
    let (local, domain) = email.split_once('@').unwrap();
    assert!(!local.is_empty() && domain.contains('.') && !domain.starts_with('.'), "a valid email: {email}");
    usdc_top_up_end_to_end(base, &session["chain"]);
    let minted = upstream_key(&session);
    stop_dev(child);
    restarted_on_its_state(&dev_dir, &minted);
}

/// The dev user's upstream key, as the mock OpenRouter's management API
/// lists it (the mock is the dev stack's Supabase too: `supabase_url`).
fn upstream_key(session: &Value) -> Option<Value> {
    let mock = session["supabase_url"].as_str().unwrap();
    let keys = integration_tests::get_with(&format!("{mock}/keys"), &[("Authorization", "Bearer sk-or-v1-mgmt-dev-0000")]);
    assert_eq!(keys.status, 200, "{}", keys.body);
    keys.json()["data"].as_array().unwrap().iter().find(|k| k["name"] == "dexto:dev-user").cloned()
}

/// `npm run dev` again on the same state: the upstream keys its wallets
/// minted are still the upstream's (OpenRouter keeps them; so does the
/// mock), so the top-up back to $10 moves the key's limit rather than
/// failing the wallet's limit sync on a key the upstream no longer knows.
fn restarted_on_its_state(dev_dir: &std::path::Path, minted: &Option<Value>) {
    let minted = minted.as_ref().expect("the first run's chat minted the dev user's upstream key");
    let (child, _, key) = start_dev(dev_dir);
    let session: Value = serde_json::from_str(&std::fs::read_to_string(dev_dir.join("session.json")).unwrap()).unwrap();
    let base = session["base_url"].as_str().unwrap();
    let body = json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello again"}]}).to_string();
    let r = integration_tests::post(&format!("{base}/v1/chat/completions"), &[("Authorization", &format!("Bearer {key}"))], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let before = minted["limit"].as_f64().expect("a limit");
    // The seed's top-up syncs the limit once it is booked; bounded wait.
    let mut seen = None;
    for _ in 0..600 {
        seen = upstream_key(&session);
        if seen.as_ref().and_then(|k| k["limit"].as_f64()).is_some_and(|l| l > before) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let seen = seen.expect("the upstream key survived the restart");
    assert_eq!(seen["hash"], minted["hash"], "the same key, not a new one");
    assert!(seen["limit"].as_f64().unwrap() > before, "the top-up moved the key's limit: {seen} (before: {minted})");
    stop_dev(child);
}

/// The dev chain is wired to the gateway: a dev account signs in with
/// Ethereum, pays the treasury in USDC, and the confirmed transfer is credited.
fn usdc_top_up_end_to_end(base: &str, chain: &Value) {
    use dexto_shared::chain::testing::{siwe_message, TestWallet};
    let rpc = |method: &str, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let r = integration_tests::post(chain["rpc_url"].as_str().unwrap(), &[("Content-Type", "application/json")], body.as_bytes());
        r.json()["result"].clone()
    };
    let account = &chain["accounts"][0];
    let wallet = TestWallet::from_hex(account["private_key"].as_str().unwrap());
    let nonce = integration_tests::get(&format!("{base}/api/auth/siwe/nonce")).json();
    let issued = dexto_shared::time::rfc3339(integration_tests::now_ms());
    let message = siwe_message(nonce["domain"].as_str().unwrap(), &wallet.address(), nonce["chain_id"].as_u64().unwrap(), nonce["nonce"].as_str().unwrap(), &issued);
    let verify = json!({"message": message, "signature": wallet.sign(&message)}).to_string();
    let session = integration_tests::post(&format!("{base}/api/auth/siwe/verify"), &[("Content-Type", "application/json")], verify.as_bytes());
    assert_eq!(session.status, 200, "{}", session.body);
    let token = session.json()["access_token"].as_str().unwrap().to_string();
    let treasury = chain["treasury"].as_str().unwrap().trim_start_matches("0x").to_lowercase();
    let data = format!("0xa9059cbb{treasury:0>64}{:064x}", 3_000_000);
    let tx = rpc("eth_sendTransaction", json!([{"from": account["address"], "to": chain["token"], "data": data}]));
    rpc("anvil_mine", json!(["0x40"]));
    let confirm = json!({"tx_hash": tx}).to_string();
    let auth = format!("Bearer {token}");
    let r = integration_tests::post(&format!("{base}/api/billing/crypto/confirm"), &[("Content-Type", "application/json"), ("Authorization", &auth)], confirm.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["credits"][0]["amount_micros"], 3_000_000);
}
