//! The wallet object's one alarm (docs/ARCHITECTURE.md, "Who settles a
//! hold"): it serves the projection's retries, key-use batching and hold
//! deadlines, so it is only ever moved earlier, and re-armed for what is
//! left after it fires.

use super::ledger::Ledger;
use dexto_shared::http::now_ms;
use worker::{Result, ScheduledTime};

/// A new pass for work still pending after a pass (no step failing).
const FLUSH_RETRY_MS: i64 = 5_000;

/// An absolute alarm time. workers-rs reads a bare `i64` as an offset from
/// now, not a timestamp: passing `now_ms() + d` would schedule ~56 years out.
fn unix_ms(at: i64) -> ScheduledTime {
    ScheduledTime::new(worker::js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at as f64)))
}

impl Ledger {
    /// Makes sure the alarm fires no later than `at` (one alarm serves the
    /// projection retry, key-use batching and hold deadlines: only ever moved
    /// earlier here).
    pub async fn arm(&self, at: i64) -> Result<()> {
        if self.alarm_at.get().is_some_and(|set| set <= at) {
            return Ok(());
        }
        let storage = self.storage();
        let current = storage.get_alarm().await?;
        if current.is_none_or(|set| set > at) {
            dexto_shared::ops::count(|o| o.do_alarm_sets += 1);
            storage.set_alarm(unix_ms(at)).await?;
            self.alarm_at.set(Some(at));
        } else {
            self.alarm_at.set(current);
        }
        Ok(())
    }

    pub fn alarm_fired(&self) {
        self.alarm_at.set(None);
    }

    /// The alarm for what is left: the next hold deadline, the next retry of
    /// a failing step, or a new pass for work still pending.
    pub async fn rearm(&self) {
        let store = self.store();
        let mut next = store.next_deadline().ok().flatten();
        let pending = store.outbox_len().unwrap_or(0) > 0 || store.pending_limit_sync().is_ok_and(|p| p.is_some());
        let retry = match store.next_retry().ok().flatten() {
            Some(at) => Some(at),
            None if pending => Some(now_ms() + FLUSH_RETRY_MS),
            None => None,
        };
        if let Some(retry) = retry {
            next = Some(next.map_or(retry, |n| n.min(retry)));
        }
        if let Some(at) = next {
            if let Err(e) = self.arm(at.max(now_ms() + 100)).await {
                dexto_shared::log::event("wallet.alarm_failed", serde_json::json!({ "error": e.to_string() }));
            }
        }
    }
}
