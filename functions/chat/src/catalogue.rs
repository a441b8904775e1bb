//! Model prices for holds and for pricing usage without a reported cost.
//! Lookup order: isolate memory (fresh for 60 s) → KV (fresh for the catalogue
//! TTL) → upstream `GET /models`, which refreshes KV. If the upstream fails, the
//! stale copy is served: prices rarely change, and refusing every request
//! because the upstream blinked would be worse.

use crate::config::Config;
use dexto_shared::catalogue::Catalogue;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

pub const KV_KEY: &str = "openrouter:models:v1";
const MEMORY_TTL_MS: i64 = 60_000;

thread_local! {
    static MEMORY: RefCell<Option<(Rc<Catalogue>, i64)>> = const { RefCell::new(None) };
}

pub async fn current(env: &Env, config: &Config) -> Result<Rc<Catalogue>, GatewayError> {
    let now = now_ms();
    if let Some((cat, loaded)) = MEMORY.with(|m| m.borrow().clone()) {
        if now - loaded < MEMORY_TTL_MS {
            return Ok(cat);
        }
    }
    let kv = env.kv("CATALOGUE").map_err(|e| GatewayError::Internal(format!("kv binding: {e}")))?;
    let stored: Option<Catalogue> = kv.get(KV_KEY).json().await.ok().flatten();
    let catalogue = match stored {
        Some(c) if now - c.fetched_at < config.catalogue_ttl_ms => c,
        stale => match fetch_upstream(config).await {
            Ok(fresh) => {
                if let Ok(put) = kv.put(KV_KEY, serde_json::to_string(&fresh).unwrap_or_default()) {
                    let _ = put.execute().await;
                }
                fresh
            }
            Err(e) => {
                dexto_shared::log::event("catalogue.refresh_failed", serde_json::json!({ "error": e }));
                stale.ok_or(GatewayError::UpstreamUnavailable)?
            }
        },
    };
    let catalogue = Rc::new(catalogue);
    MEMORY.with(|m| *m.borrow_mut() = Some((catalogue.clone(), now)));
    Ok(catalogue)
}

/// Fetches and parses the upstream model list. Errors are log-safe strings.
pub async fn fetch_upstream(config: &Config) -> Result<Catalogue, String> {
    let headers = Headers::new();
    if !config.upstream_key.expose().is_empty() {
        let auth = format!("Bearer {}", config.upstream_key.expose());
        headers.set("Authorization", &auth).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let url = format!("{}/models", config.upstream_base);
    let req = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    let mut resp = Fetch::Request(req).send().await.map_err(|_| "models fetch failed".to_string())?;
    if resp.status_code() != 200 {
        return Err(format!("models fetch status {}", resp.status_code()));
    }
    let body: serde_json::Value = resp.json().await.map_err(|_| "models body not JSON".to_string())?;
    Catalogue::from_openrouter(&body, now_ms()).ok_or_else(|| "models body has no data".into())
}
