//! Domain crate shared by every Dexto Worker. Nothing here touches the Workers
//! runtime, so all of it is unit-tested natively (`cargo test -p dexto-shared`).

pub mod apikey;
pub mod billing;
pub mod catalogue;
pub mod chat_request;
pub mod hold;
pub mod csv;
mod decimal;
pub mod device;
pub mod device_protocol;
pub mod error;
pub mod ids;
pub mod jwt;
#[cfg(any(test, feature = "test-support"))]
pub mod jwt_testing;
pub mod model_list;
pub mod money;
pub mod routes;
pub mod sealing;
pub mod secret;
pub mod sse;
pub mod stripe;
pub mod time;
pub mod url_query;
pub mod usage;
pub mod usage_query;
pub mod usage_report;
pub mod wallet;

#[cfg(feature = "workers")]
pub mod auth;
#[cfg(feature = "workers")]
pub mod db;
#[cfg(feature = "workers")]
pub mod http;
#[cfg(feature = "workers")]
pub mod keystore;
#[cfg(feature = "workers")]
pub mod openrouter_keys;
#[cfg(feature = "workers")]
pub mod session;
#[cfg(feature = "workers")]
pub mod log;
#[cfg(feature = "workers")]
pub mod wallet_client;
