//! Workers glue: the parts of the shared crate that touch the Workers runtime
//! (D1, Durable Object stubs, requests and responses, console logging). They
//! build only with the "workers" feature; the domain modules beside this folder
//! are pure and unit-tested natively.

pub mod audit;
pub mod auth;
pub mod caps_api;
pub mod cors;
pub mod db;
pub mod device_token;
pub mod direct_keys;
pub mod evm_rpc;
pub mod findings;
pub mod http;
pub mod keystore;
pub mod log;
pub mod openrouter_keys;
pub mod plan_periods;
pub mod plan_store;
pub mod ops;
pub mod session;
pub mod siwe_auth;
pub mod throttle;
pub mod wallet_client;
