//! Domain crate shared by every Dexto Worker. The modules at this level are
//! pure domain logic (money, holds, billing, requests, keys, usage, protocol
//! types) and never touch the Workers runtime, so they are unit-tested
//! natively (`cargo test -p dexto-shared`). The Workers glue lives in
//! `workers/` (feature "workers"), re-exported here under its old paths.

pub mod apikey;
pub mod billing;
pub mod caps;
pub mod spend_windows;
pub mod catalogue;
pub mod chain;
pub mod chat_request;
pub mod csv;
mod decimal;
pub mod device;
pub mod device_protocol;
pub mod dialects;
pub mod direct_funding;
pub mod error;
pub mod error_counts;
pub mod hold;
pub mod ids;
pub mod jwt;
pub mod key_settings;
#[cfg(any(test, feature = "test-support"))]
pub mod jwt_testing;
pub mod model_list;
pub mod retry;
pub mod money;
pub mod negative_cache;
pub mod phases;
pub mod plans;
pub mod platform_ops;
pub mod provider_routing;
pub mod prompt_prefix;
pub mod routes;
pub mod sealing;
pub mod secret;
pub mod sse;
pub mod stripe;
pub mod stripe_reconcile;
pub mod time;
pub mod url_query;
pub mod usage;
pub mod usage_bound;
pub mod usage_query;
pub mod usage_report;
pub mod usage_review;
pub mod wallet;
pub mod web;
pub mod x402;

// Workers glue (feature "workers"): D1, KV, Durable Object stubs, HTTP and
// logging on the Workers runtime. Everything above is pure domain logic.
#[cfg(feature = "workers")]
pub mod workers;
#[cfg(feature = "workers")]
pub use workers::{audit, auth, caps_api, cors, db, ops, device_token, direct_keys, evm_rpc, findings, http, keystore, log, openrouter_keys, plan_periods, plan_store, session, siwe_auth, throttle, wallet_client};
