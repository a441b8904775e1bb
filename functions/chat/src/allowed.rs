//! The operator's allow-list (`allowed_models`), cached in the isolate.
//!
//! Staleness bound: an isolate reuses its copy for `ALLOWED_MODELS_TTL_SECONDS`
//! (default 30 s), so an admin change reaches every isolate within that time;
//! after that the next request reads D1 before deciding. Cost: one small D1
//! read per isolate per TTL, off the path the rest of the time. Not KV: KV
//! propagation is unbounded in practice (60 s or more) and admin would need a
//! second write path; D1 is the table the admin API writes. If D1 cannot be
//! read, an expired copy is used (logged); with no copy at all the request
//! fails closed rather than opening a curated list.

use crate::config::Config;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::model_list::AllowList;
use std::cell::RefCell;
use std::rc::Rc;
use worker::Env;

thread_local! {
    static CACHE: RefCell<Option<(Rc<AllowList>, i64)>> = const { RefCell::new(None) };
}

pub async fn current(env: &Env, config: &Config) -> Result<Rc<AllowList>, GatewayError> {
    let now = now_ms();
    let cached = CACHE.with(|c| c.borrow().clone());
    if let Some((list, loaded)) = &cached {
        if now - loaded < config.allowed_models_ttl_ms {
            return Ok(list.clone());
        }
    }
    match load(env).await {
        Ok(list) => {
            let list = Rc::new(list);
            CACHE.with(|c| *c.borrow_mut() = Some((list.clone(), now)));
            Ok(list)
        }
        Err(e) => {
            dexto_shared::log::event("allowed_models.load_failed", serde_json::json!({"error": e, "stale_copy": cached.is_some()}));
            cached.map(|(list, _)| list).ok_or_else(|| GatewayError::Internal(format!("allowed_models: {e}")))
        }
    }
}

async fn load(env: &Env) -> Result<AllowList, String> {
    #[derive(serde::Deserialize)]
    struct Row {
        model_id: String,
        markup_bps: Option<i64>,
    }
    let db = env.d1("DB").map_err(|e| e.to_string())?;
    dexto_shared::ops::count(|o| o.d1_queries += 1); // once per isolate per ALLOWED_MODELS_TTL_SECONDS
    let rows: Vec<Row> = dexto_shared::db::all(&db, "SELECT model_id, markup_bps FROM allowed_models", &[]).await.map_err(|e| format!("{e:?}"))?;
    Ok(AllowList::from_rows(rows.into_iter().map(|r| (r.model_id, r.markup_bps))))
}
