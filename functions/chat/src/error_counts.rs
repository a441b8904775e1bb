//! Refused chat requests counted in D1 (`error_counts`: UTC day, status,
//! error code → count) for `GET /admin/metrics`. Refusals are never billed, so
//! the ledger does not see them; Analytics Engine does, but has no local SQL.
//!
//! Cost: nothing on the response path (the write runs in `wait_until`) and no
//! D1 write per refusal: counts accumulate in the isolate, one flush at a time
//! writes them as one batch, and counts that arrive during a flush are written
//! by a follow-up pass at least `FLUSH_SPACING_MS` later (coalescing logic in
//! `shared/src/error_counts.rs`). A flood of 401s is therefore at most about
//! one D1 batch per second per isolate. Counts of an isolate evicted before
//! its flush are lost: these are operator metrics, not money.

use dexto_shared::error_counts::{ErrorCounts, ErrorKey};
use dexto_shared::http::now_ms;
use std::cell::RefCell;
use worker::{Context, Env};

/// Least time between two writes of one flush.
const FLUSH_SPACING_MS: u64 = 1_000;
/// Passes of one flush (it lives in one request's `wait_until`, which ends
/// 30 s after the response: 10 passes ≥ 1 s apart stay well inside it); what
/// is left waits for the next refusal. Should the platform cut a flush off
/// anyway, the next refusal after `FLUSH_PRESUMED_DEAD_MS` starts another.
const MAX_PASSES: usize = 10;

thread_local! {
    static COUNTS: RefCell<ErrorCounts> = RefCell::default();
}

/// Counts one refusal; starts a flush after the response when none is running.
pub fn count(env: &Env, ctx: &Context, status: u16, code: &str) {
    let key = ErrorKey { day: dexto_shared::time::date(now_ms()), status, code: code.to_string() };
    if COUNTS.with(|c| c.borrow_mut().add(key, now_ms())) {
        let env = env.clone();
        ctx.wait_until(async move { flush(&env).await });
    }
}

async fn flush(env: &Env) {
    for _ in 0..MAX_PASSES {
        let batch = COUNTS.with(|c| c.borrow_mut().take());
        if batch.is_empty() {
            return; // `take` ended the flush
        }
        if let Err(e) = write(env, &batch).await {
            dexto_shared::log::event("error_counts.flush_failed", serde_json::json!({"error": e.to_string()}));
            COUNTS.with(|c| c.borrow_mut().give_back(batch));
            return;
        }
        if COUNTS.with(|c| c.borrow().pending()) > 0 {
            worker::Delay::from(std::time::Duration::from_millis(FLUSH_SPACING_MS)).await;
        }
    }
    COUNTS.with(|c| c.borrow_mut().stop());
}

/// One D1 batch (atomic): an upsert per (day, status, code).
async fn write(env: &Env, batch: &[(ErrorKey, u64)]) -> worker::Result<()> {
    let db = env.d1("DB")?;
    let mut statements = Vec::with_capacity(batch.len());
    for (key, n) in batch {
        statements.push(
            db.prepare(
                "INSERT INTO error_counts (day, status, code, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(day, status, code) DO UPDATE SET count = count + excluded.count",
            )
            .bind(&[key.day.as_str().into(), (key.status as f64).into(), key.code.as_str().into(), (*n as f64).into()])?,
        );
    }
    for result in db.batch(statements).await? {
        if !result.success() {
            return Err(result.error().unwrap_or_else(|| "D1 batch failed".into()).into());
        }
    }
    Ok(())
}
