//! Model prices for holds, pricing and `/v1/models`.
//!
//! The copy lives in KV (`openrouter:models:v1`), written by the hourly cron
//! (`refresh`) and read through an isolate cache. Stale-while-revalidate: a
//! copy older than `CATALOGUE_TTL_SECONDS` is still served, and a refresh runs
//! after the response (`wait_until`, at most one per isolate per backoff). A
//! refresh that fails, or that returns an empty list, never replaces the copy:
//! the list never empties because the upstream blinked; callers see its age.
//! Only when there is no copy at all does a request wait for the upstream.

use crate::config::Config;
use dexto_shared::catalogue::Catalogue;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{Context, Env, Fetch, Headers, Method, Request, RequestInit};

pub const KV_KEY: &str = "openrouter:models:v1";
/// How long an isolate serves its copy before looking at KV again.
const MEMORY_TTL_MS: i64 = 60_000;
/// Minimum gap between background refreshes started by one isolate.
const REFRESH_BACKOFF_MS: i64 = 30_000;

thread_local! {
    static MEMORY: RefCell<Option<(Rc<Catalogue>, i64)>> = const { RefCell::new(None) };
    static LAST_REFRESH: Cell<i64> = const { Cell::new(0) };
}

fn remember(catalogue: Rc<Catalogue>, now: i64) {
    MEMORY.with(|m| *m.borrow_mut() = Some((catalogue, now)));
}

/// The catalogue to use now, fresh or stale (see the module comment).
pub async fn current(env: &Env, config: &Config, ctx: &Context) -> Result<Rc<Catalogue>, GatewayError> {
    let now = now_ms();
    // Never trust memory longer than the TTL itself (tests run with short TTLs).
    let memory_ttl = MEMORY_TTL_MS.min(config.catalogue_ttl_ms);
    if let Some((cat, loaded)) = MEMORY.with(|m| m.borrow().clone()) {
        if now - loaded < memory_ttl {
            return Ok(cat);
        }
    }
    let kv = env.kv("CATALOGUE").map_err(|e| GatewayError::Internal(format!("kv binding: {e}")))?;
    dexto_shared::ops::count(|o| o.kv_reads += 1);
    let stored: Option<Catalogue> = kv.get(KV_KEY).json().await.ok().flatten();
    let Some(stored) = stored else {
        // Nothing to serve: this request has to wait for the upstream.
        return refresh(env, config).await.map_err(|e| {
            dexto_shared::log::event("catalogue.refresh_failed", serde_json::json!({"error": e, "copy": "none"}));
            GatewayError::UpstreamUnavailable
        });
    };
    let stored = Rc::new(stored);
    remember(stored.clone(), now);
    let backoff = REFRESH_BACKOFF_MS.min(config.catalogue_ttl_ms);
    if now - stored.fetched_at >= config.catalogue_ttl_ms && now - LAST_REFRESH.get() >= backoff {
        LAST_REFRESH.set(now);
        let env = env.clone();
        ctx.wait_until(async move {
            let config = Config::from_env(&env);
            if let Err(e) = refresh(&env, &config).await {
                dexto_shared::log::event("catalogue.refresh_failed", serde_json::json!({"error": e, "copy": "stale"}));
            }
        });
    }
    Ok(stored)
}

/// Fetches the upstream list and, if it holds any priced model, stores it in KV
/// and in this isolate. Run by the cron, on a miss, and after a stale read.
pub async fn refresh(env: &Env, config: &Config) -> Result<Rc<Catalogue>, String> {
    let fresh = fetch_upstream(config).await?;
    if fresh.models.is_empty() {
        return Err("upstream returned no priced models; keeping the previous copy".into());
    }
    let kv = env.kv("CATALOGUE").map_err(|e| e.to_string())?;
    let body = serde_json::to_string(&fresh).map_err(|e| e.to_string())?;
    dexto_shared::ops::count(|o| o.kv_writes += 1);
    kv.put(KV_KEY, body).map_err(|e| e.to_string())?.execute().await.map_err(|e| e.to_string())?;
    let fresh = Rc::new(fresh);
    remember(fresh.clone(), now_ms());
    dexto_shared::log::event(
        "catalogue.refreshed",
        serde_json::json!({"models": fresh.models.len(), "fetched_at": dexto_shared::time::rfc3339(fresh.fetched_at)}),
    );
    Ok(fresh)
}

/// Fetches and parses the upstream model list. Errors are log-safe strings.
async fn fetch_upstream(config: &Config) -> Result<Catalogue, String> {
    let headers = Headers::new();
    if !config.upstream_key.expose().is_empty() {
        let auth = format!("Bearer {}", config.upstream_key.expose());
        // Not the runtime's error text: it could carry the secret value.
        headers.set("Authorization", &auth).map_err(|_| "authorization header".to_string())?;
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
