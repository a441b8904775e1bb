//! D1 access for request handlers (feature `workers`): one error mapping
//! (`GatewayError::Internal`, details for logs only) and the shapes every
//! handler needs — first row, all rows, run.
//!
//! D1 returns transient errors (and never retries writes itself), so reads
//! and writes declared idempotent are retried a bounded number of times with
//! a short backoff; a write that is not idempotent (`run`) is tried once.

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

/// Attempts of a retried statement, and the pause before each retry.
const RETRY_DELAYS_MS: [u64; 2] = [25, 150];

/// Runs `attempt` with the bounded retries of `RETRY_DELAYS_MS`.
async fn retried<T, F, Fut>(what: &str, attempt: F) -> Result<T, GatewayError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, worker::Error>>,
{
    crate::retry::retrying(
        &RETRY_DELAYS_MS,
        attempt,
        |ms| worker::Delay::from(std::time::Duration::from_millis(ms)),
        |e| crate::log::event("d1.retry", serde_json::json!({"what": what, "error": e.to_string()})),
    )
    .await
    .map_err(error)
}

/// The first row of a read (`SELECT`): retried on transient errors.
pub async fn first<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Option<T>, GatewayError> {
    retried("first", || async { statement(db, sql, args).map_err(|e| worker::Error::RustError(format!("{e:?}")))?.first(None).await }).await
}

/// The row a write `RETURNING …` produced: tried once (a retry after a lost
/// reply could not tell what the first attempt did).
pub async fn returning<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Option<T>, GatewayError> {
    statement(db, sql, args)?.first(None).await.map_err(error)
}

pub async fn all<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Vec<T>, GatewayError> {
    let rows = retried("all", || async { statement(db, sql, args).map_err(|e| worker::Error::RustError(format!("{e:?}")))?.all().await }).await?;
    rows.results::<T>().map_err(error)
}

/// A write that is not idempotent: tried once.
pub async fn run(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<(), GatewayError> {
    statement(db, sql, args)?.run().await.map_err(error)?;
    Ok(())
}

/// A write whose repetition changes nothing (`ON CONFLICT DO NOTHING`, a
/// guarded `UPDATE … SET x = v`): retried on transient errors.
pub async fn run_idempotent(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<(), GatewayError> {
    retried("run", || async { statement(db, sql, args).map_err(|e| worker::Error::RustError(format!("{e:?}")))?.run().await }).await?;
    Ok(())
}

pub async fn user_exists(db: &D1Database, user_id: &str) -> Result<bool, GatewayError> {
    let row: Option<serde_json::Value> = first(db, "SELECT id FROM users WHERE id = ?1", &[user_id.into()]).await?;
    Ok(row.is_some())
}

/// `?1,?2,…,?n`, for `IN (…)` over n bound values (D1 binds at most 100).
pub fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",")
}

/// Milliseconds as a bound parameter (exact: timestamps are far below 2^53).
pub fn ms(value: i64) -> JsValue {
    JsValue::from_f64(value as f64)
}
