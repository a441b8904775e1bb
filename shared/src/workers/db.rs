//! D1 access for request handlers (feature `workers`): one error mapping
//! (`GatewayError::Internal`, details for logs only) and the three shapes every
//! handler needs — first row, all rows, run.

use crate::error::GatewayError;
use serde::de::DeserializeOwned;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

pub fn error(e: worker::Error) -> GatewayError {
    GatewayError::Internal(format!("d1: {e}"))
}

/// The `DB` binding.
pub fn database(env: &Env) -> Result<D1Database, GatewayError> {
    env.d1("DB").map_err(error)
}

fn statement(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, GatewayError> {
    db.prepare(sql).bind(args).map_err(error)
}

pub async fn first<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Option<T>, GatewayError> {
    statement(db, sql, args)?.first(None).await.map_err(error)
}

pub async fn all<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Vec<T>, GatewayError> {
    statement(db, sql, args)?.all().await.map_err(error)?.results::<T>().map_err(error)
}

pub async fn run(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<(), GatewayError> {
    statement(db, sql, args)?.run().await.map_err(error)?;
    Ok(())
}

pub async fn user_exists(db: &D1Database, user_id: &str) -> Result<bool, GatewayError> {
    let row: Option<serde_json::Value> = first(db, "SELECT id FROM users WHERE id = ?1", &[user_id.into()]).await?;
    Ok(row.is_some())
}

/// Milliseconds as a bound parameter (exact: timestamps are far below 2^53).
pub fn ms(value: i64) -> JsValue {
    JsValue::from_f64(value as f64)
}
