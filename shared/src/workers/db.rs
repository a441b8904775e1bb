//! D1 access for request handlers (feature `workers`): one error mapping
//! (`GatewayError::Internal`, details for logs only) and the shapes every
//! handler needs — first row, all rows, run.
//!
//! D1 returns transient errors (and never retries writes itself), so reads
//! and writes declared idempotent are retried a bounded number of times with
//! a short backoff; a write that is not idempotent (`run`, `returning`,
//! `batch`) is tried once. Any statement D1 refuses because its database was
//! locked (`SQLITE_BUSY`: nothing ran — locally, another process such as
//! `wrangler d1 execute` held the file for a moment) runs again, for longer.
//! That is a local condition: deployed D1 is a service of its own and is not
//! expected to answer `SQLITE_BUSY`, so there the retry costs nothing.

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

/// The pauses before each retry of an idempotent statement after an error.
const RETRY_DELAYS_MS: [u64; 2] = [25, 150];

/// The pauses before each retry of any statement refused on a locked
/// database: longer than for other errors (a lock lasts as long as the
/// other writer's transaction), and free when nothing is locked.
const LOCKED_RETRY_DELAYS_MS: [u64; 6] = [25, 100, 250, 500, 1000, 2000];

/// Whether D1 refused a statement because its database was locked: the
/// statement did not run, so running it again is safe whatever it does.
fn locked(e: &worker::Error) -> bool {
    e.to_string().contains("SQLITE_BUSY")
}

/// Which failures a statement may be run again after.
#[derive(Clone, Copy)]
pub enum Retry {
    /// Reads and writes whose repetition changes nothing: any error.
    Idempotent,
    /// Any other write: only a refusal on a locked database (nothing ran).
    IfLocked,
}

/// Runs `attempt` (one statement or batch), again as `retry` allows.
async fn tried<T, F, Fut>(what: &str, retry: Retry, attempt: F) -> Result<T, GatewayError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, worker::Error>>,
{
    let mut locked_waits = LOCKED_RETRY_DELAYS_MS.into_iter();
    let mut other_waits = RETRY_DELAYS_MS.into_iter().filter(|_| matches!(retry, Retry::Idempotent));
    crate::retry::retrying(
        |e| if locked(e) { locked_waits.next() } else { other_waits.next() },
        attempt,
        |ms| worker::Delay::from(std::time::Duration::from_millis(ms)),
        |e| crate::log::event("d1.retry", serde_json::json!({"what": what, "error": e.to_string()})),
    )
    .await
    .map_err(error)
}

/// Statements run as one transaction (all or none), again as `retry` allows.
pub async fn batch(db: &D1Database, statements: Vec<D1PreparedStatement>, retry: Retry) -> Result<Vec<worker::D1Result>, GatewayError> {
    tried("batch", retry, || db.batch(statements.clone())).await
}

/// The rows a write changed, as D1 reports them.
pub fn changes(result: &worker::D1Result) -> Option<usize> {
    result.meta().ok().flatten().and_then(|m| m.changes)
}

/// The first row of a read (`SELECT`): retried on transient errors.
pub async fn first<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Option<T>, GatewayError> {
    tried("first", Retry::Idempotent, || async { statement(db, sql, args).map_err(|e| worker::Error::RustError(format!("{e:?}")))?.first(None).await }).await
}

/// The row a write `RETURNING …` produced: tried once (a retry after a lost
/// reply could not tell what the first attempt did), but for a locked database.
pub async fn returning<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Option<T>, GatewayError> {
    let statement = statement(db, sql, args)?;
    tried("returning", Retry::IfLocked, || statement.first(None)).await
}

pub async fn all<T: DeserializeOwned>(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<Vec<T>, GatewayError> {
    let rows = tried("all", Retry::Idempotent, || async { statement(db, sql, args).map_err(|e| worker::Error::RustError(format!("{e:?}")))?.all().await }).await?;
    rows.results::<T>().map_err(error)
}

/// A write that is not idempotent: tried once, but for a locked database.
/// The rows it changed (0 if D1 did not say).
pub async fn run(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<usize, GatewayError> {
    let statement = statement(db, sql, args)?;
    Ok(changes(&tried("run", Retry::IfLocked, || statement.run()).await?).unwrap_or(0))
}

/// A write whose repetition changes nothing (`ON CONFLICT DO NOTHING`, a
/// guarded `UPDATE … SET x = v`): retried on transient errors.
pub async fn run_idempotent(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<(), GatewayError> {
    tried("run", Retry::Idempotent, || async { statement(db, sql, args).map_err(|e| worker::Error::RustError(format!("{e:?}")))?.run().await }).await?;
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
