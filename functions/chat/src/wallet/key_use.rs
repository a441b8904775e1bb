//! `api_keys.last_used_at` without a D1 write per request: the wallet notes
//! each key's last use in its own storage (same turn as the hold) and projects
//! it to D1 at most once a minute per key; a later use inside the minute is
//! picked up by an alarm at the end of the minute.

use super::store::Store;
use wasm_bindgen::JsValue;
use worker::{Env, Result};

const MIN_INTERVAL_MS: i64 = 60_000;

/// Projects what is due; returns when the alarm must come back for the rest.
pub async fn project(store: &Store, env: &Env) -> Result<Option<i64>> {
    let now = dexto_shared::http::now_ms();
    let pending = store.unflushed_key_use()?;
    let (due, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, _, flushed)| now - flushed >= MIN_INTERVAL_MS);
    if !due.is_empty() {
        let db = env.d1("DB")?;
        let statements = due
            .iter()
            .map(|(key_id, used_at, _)| {
                db.prepare("UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1")
                    .bind(&[key_id.as_str().into(), JsValue::from_f64(*used_at as f64)])
            })
            .collect::<Result<Vec<_>>>()?;
        dexto_shared::ops::d1(&db.batch(statements).await?);
        for (key_id, _, _) in &due {
            store.mark_key_use_flushed(key_id, now)?;
        }
    }
    // One alarm covers every pending key (Ledger::arm only moves it earlier),
    // so a busy key does not cost a storage write per request.
    Ok(later.iter().map(|(_, _, flushed)| (flushed + MIN_INTERVAL_MS).max(now + 1_000)).min())
}
