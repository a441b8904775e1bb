//! Runs `usage_query::Query` values on D1.

use dexto_shared::error::GatewayError;
use dexto_shared::usage_query::{Param, Query};
use serde::de::DeserializeOwned;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

pub use dexto_shared::db::{database, error as d1_error};

fn params(q: &Query) -> Vec<JsValue> {
    q.params
        .iter()
        .map(|p| match p {
            Param::Text(s) => JsValue::from_str(s),
            // Every bound integer is within ±2^53 (timestamps, limits): exact as f64.
            Param::Int(n) => JsValue::from_f64(*n as f64),
        })
        .collect()
}

pub fn statement(db: &D1Database, q: &Query) -> Result<D1PreparedStatement, GatewayError> {
    db.prepare(&q.sql).bind(&params(q)).map_err(d1_error)
}

pub async fn all<T: DeserializeOwned>(db: &D1Database, q: &Query) -> Result<Vec<T>, GatewayError> {
    dexto_shared::db::all(db, &q.sql, &params(q)).await
}
