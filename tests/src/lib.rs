//! Test harness: one real local stack per test binary (`scripts/stack.sh`:
//! `wrangler dev` with edge + chat + admin Workers, local D1/KV/DO, migrations
//! applied) wired to an in-process mock OpenRouter and its own local chain
//! (anvil, `chain`) and that chain's x402 facilitator (`x402`), on free ports. Tests get fresh state by creating their own
//! users; upstream calls are counted per test through a unique marker in the prompt.

pub mod agents;
pub mod audit;
pub mod browser;
pub mod browser_wallet;
pub mod chain;
pub mod cli_shape;
pub mod client;
mod d1;
pub mod device;
pub mod direct_keys;
pub mod plans;
pub mod siwe;
mod stack;
pub mod stripe_fixtures;
pub mod visitor;
pub mod x402;

pub use client::{HttpResponse, SseReader};
pub use chain::{Chain, DevAccount};
pub use stack::{spawn_guarded, stack, start, wait_for_ready, Stack, TestUser};

/// A marker unique to one test, to put in prompts and find its upstream calls.
pub fn marker(name: &str) -> String {
    format!("t-{name}-{}", dexto_shared::ids::new_id(""))
}

/// Plain GET (for the mock's introspection endpoints).
pub fn get(url: &str) -> HttpResponse {
    client::send("GET", url, &[], None)
}

/// Plain POST with raw headers and body.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    client::send("POST", url, headers, Some(body))
}

/// GET with headers.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    client::send("GET", url, headers, None)
}

/// Wall-clock Unix milliseconds (for expectations about "now", e.g. the month).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}
