//! The dashboard with an Ethereum wallet, in a real browser (Debian's headless
//! Chromium) against the real stack and its local chain: "Sign in with
//! Ethereum" with a test wallet in the page (tests/src/browser_wallet.rs:
//! the page asks, the test signs with a dev account's key), the session
//! refreshed and ended through the identity Worker, and a USDC top-up
//! confirmed on the billing page — pending until final, then credited. And
//! without a wallet, the button says one is needed. Screenshots in
//! target/browser-artifacts/.

use dexto_shared::chain::testing::TestWallet;
use dexto_shared::web::cookies;
use integration_tests::browser::{one_at_a_time, Browser};
use integration_tests::browser_wallet::BrowserWallet;
use integration_tests::{stack, Stack};

/// anvil's `finalized` block is 64 behind its head.
const FINALITY: u64 = 64;

/// A browser with dev account `i`'s wallet in it, signed in with it through
/// the sign-in page's button; lands on the overview.
fn signed_in_with_wallet(s: &Stack, i: usize) -> (Browser, BrowserWallet) {
    let b = Browser::open();
    let wallet = BrowserWallet::install(&b, TestWallet::from_hex(&s.chain.accounts[i].private_key));
    b.goto(&format!("{}/dashboard", s.base));
    b.wait_until("the sign-in page to offer a wallet", || b.url().contains("/dashboard/login") && b.script("return !document.getElementById('siwe')?.hidden") == true);
    b.screenshot("login-wallet");
    b.click("#siwe");
    let message = wallet.sign_next_request(&b);
    let host = s.base.trim_start_matches("http://");
    assert!(message.starts_with(&format!("{host} wants you to sign in with your Ethereum account:\n{}\n", wallet.address())), "{message}");
    assert!(message.contains(&format!("\nURI: {}/dashboard\nVersion: 1\nChain ID: {}\n", s.base, s.chain.chain_id)), "{message}");
    b.wait_until("the overview", || b.url() == format!("{}/dashboard", s.base) && b.count("h1") > 0);
    (b, wallet)
}

#[test]
fn sign_in_with_a_wallet_then_top_up_with_usdc_pending_until_final_then_credited() {
    let _turn = one_at_a_time();
    let s = stack();
    let (b, wallet) = signed_in_with_wallet(s, 0);
    let address = wallet.address().to_string();
    let user = format!("eth:{address}");
    assert_eq!(b.text("h1"), "Overview");
    assert_eq!(b.text("header .who"), address, "signed in as the wallet-first account");
    assert_eq!(b.text("#balance"), "$0.00");
    assert_eq!(s.user(&user)["balance_micros"], 0, "the account {user} exists");
    b.screenshot("wallet-overview");

    b.goto(&format!("{}/dashboard/settings/billing", s.base));
    assert_eq!(b.text("#usdc-treasury").to_lowercase(), s.chain.treasury.to_lowercase());
    assert_eq!(b.text("#usdc-chain"), s.chain.chain_id.to_string());
    assert_eq!(b.text("#usdc-addresses"), address, "the sign-in address is linked");
    assert_eq!(b.count("[data-copy='usdc-treasury']"), 1, "the treasury can be copied");
    b.screenshot("billing-usdc");

    let receipt = s.chain.usdc_transfer(&s.chain.accounts[0].address, &s.chain.treasury, 3_250_000);
    let tx = receipt["transactionHash"].as_str().unwrap().to_string();
    let confirm = |tx: &str| {
        b.type_into("#tx-hash", tx);
        b.click("#usdc form button[type=submit]");
    };
    confirm(&tx);
    b.wait_until("the pending answer", || b.text("#usdc-result").contains("not final yet"));
    assert_eq!(b.text(&format!("tr[data-tx='{tx}'] td.status")), "pending: credited once final");
    assert_eq!(b.text("#balance"), "$0.00");
    b.screenshot("billing-usdc-pending");

    s.chain.mine(FINALITY);
    confirm(&tx);
    b.wait_until("the credit", || b.text("#usdc-result") == "Payment credited: $3.25 added to your balance.");
    assert_eq!(b.text("#balance"), "$3.25");
    assert_eq!(b.text(&format!("tr[data-tx='{tx}'] td.status")), "credited");
    assert_eq!(s.user(&user)["balance_micros"], 3_250_000);
    b.screenshot("billing-usdc-credited");

    // Again: the API's refusal, shown on the page.
    confirm(&tx);
    b.wait_until("the refusal", || b.text("#usdc-result").contains("already credited"));
    assert_eq!(b.count("#usdc-result.error"), 1);
    assert_eq!(s.user(&user)["balance_micros"], 3_250_000, "credited once");
}

#[test]
fn a_wallet_session_is_refreshed_and_ended_through_the_identity_worker() {
    let _turn = one_at_a_time();
    let s = stack();
    let (b, wallet) = signed_in_with_wallet(s, 1);
    let refresh = b.cookie(cookies::REFRESH).expect("refresh cookie");
    assert!(refresh.starts_with("dxr_"), "a Sign-In with Ethereum session");
    // The access token gone (as when its cookie expires): the next page
    // refreshes the session through identity, which rotates the refresh token.
    b.delete_cookie(cookies::SESSION);
    b.goto(&format!("{}/dashboard/account", s.base));
    b.wait_for("#upstream");
    assert!(b.text("main").contains(&wallet.address().to_string()));
    let (fresh_access, fresh_refresh) = (b.cookie(cookies::SESSION).expect("a new access token"), b.cookie(cookies::REFRESH).expect("a new refresh token"));
    // (The access token may equal the old one: same claims in the same second.)
    assert_ne!(fresh_refresh, refresh, "rotated");
    let used = integration_tests::siwe::post(s, "/api/auth/siwe/refresh", &serde_json::json!({"refresh_token": refresh}), None);
    assert_eq!(used.status, 401, "the old refresh token was used up: {}", used.body);

    b.click("form.signout button");
    b.wait_until("the signed-out page", || b.url().contains("/dashboard/login?signed_out=1"));
    // Ended at identity, not only forgotten by the browser.
    assert_eq!(s.call("GET", "/api/keys", &fresh_access, None).status, 401, "the access token stopped working");
    let after = integration_tests::siwe::post(s, "/api/auth/siwe/refresh", &serde_json::json!({"refresh_token": fresh_refresh}), None);
    assert_eq!(after.status, 401, "so did the refresh token: {}", after.body);
    b.goto(&format!("{}/dashboard", s.base));
    b.wait_until("sign-in to be asked again", || b.url().contains("/dashboard/login"));
}

#[test]
fn without_a_wallet_the_button_says_one_is_needed() {
    let _turn = one_at_a_time();
    let s = stack();
    let b = Browser::open();
    b.goto(&format!("{}/dashboard/login", s.base));
    b.wait_until("the button", || b.script("return !document.getElementById('siwe')?.hidden") == true);
    b.click("#siwe");
    b.wait_until("the message", || b.text("#siwe-status").contains("needs a wallet in this browser"));
    assert!(b.url().contains("/dashboard/login"), "still on the sign-in page: {}", b.url());
    b.screenshot("login-no-wallet");
}

#[test]
fn a_supabase_user_links_a_wallet_on_the_billing_page_and_its_usdc_counts() {
    let _turn = one_at_a_time();
    let s = stack();
    let b = Browser::open();
    let wallet = BrowserWallet::install(&b, TestWallet::from_hex(&s.chain.accounts[2].private_key));
    // Signed in through the (mock) hosted Supabase page, not with the wallet.
    let mail = format!("linker-{}@example.com", dexto_shared::ids::new_id(""));
    b.goto(&format!("{}/dashboard/settings/billing", s.base));
    b.wait_for("a.button");
    b.click("a.button");
    b.type_into("#email", &mail);
    b.click("#continue");
    b.wait_until("the billing page", || b.url().starts_with(&format!("{}/dashboard/settings/billing", s.base)) && b.count("#usdc") == 1);
    assert_eq!(b.count("#usdc-no-address"), 1, "nothing linked yet");
    b.wait_until("the link button", || b.script("return !document.getElementById('siwe-link')?.hidden") == true);
    b.click("#siwe-link");
    let message = wallet.sign_next_request(&b);
    assert!(message.contains(&format!("\n{}\n", wallet.address())), "{message}");
    b.wait_until("the linked address", || b.count("#usdc-addresses") == 1);
    assert_eq!(b.text("#usdc-addresses"), wallet.address().to_string());
    b.screenshot("billing-wallet-linked");
    // USDC from the linked wallet is this (Supabase) account's.
    let user = mock_openrouter::supabase_auth::sub_for(&mail);
    let receipt = s.chain.usdc_transfer(&s.chain.accounts[2].address, &s.chain.treasury, 1_500_000);
    s.chain.mine(FINALITY);
    b.type_into("#tx-hash", receipt["transactionHash"].as_str().unwrap());
    b.click("#usdc form button[type=submit]");
    b.wait_until("the credit", || b.text("#usdc-result") == "Payment credited: $1.50 added to your balance.");
    assert_eq!(s.user(&user)["balance_micros"], 1_500_000);
}
