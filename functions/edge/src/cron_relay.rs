//! Local-only relay of scheduled events. wrangler runs several configs in one
//! `wrangler dev`, but `--test-scheduled` (`GET /__scheduled`) and Miniflare's
//! `/cdn-cgi/handler/scheduled` reach only the first config, the edge; the
//! middleware is not injected into the other Workers, and calling `scheduled()`
//! on a service binding fails there ("ServiceStub serialization requires the
//! 'experimental' compat flag"). So the edge forwards the event over the
//! service binding to `POST /__cron` of each Worker with crons, which runs the
//! very function its `#[event(scheduled)]` handler runs. `/__cron` is reachable
//! only through service bindings: the edge routes no public path to it.

use worker::{Env, Method, Request, RequestInit};

/// Service bindings whose Workers declare `[triggers] crons`.
const CRON_WORKERS: &[&str] = &["CHAT", "BILLING"];

pub async fn relay(env: &Env, cron: &str) {
    for binding in CRON_WORKERS {
        let outcome = match invoke(env, binding, cron).await {
            Ok(outcome) => outcome,
            Err(e) => format!("error: {e}"),
        };
        dexto_shared::log::event("cron.relayed", serde_json::json!({"binding": binding, "cron": cron, "outcome": outcome}));
    }
}

async fn invoke(env: &Env, binding: &str, cron: &str) -> worker::Result<String> {
    let url = format!("https://relay.internal/__cron?cron={}", dexto_shared::url_query::encode(cron));
    let mut init = RequestInit::new();
    init.with_method(Method::Post);
    let req = Request::new_with_init(&url, &init)?;
    let mut resp = env.service(binding)?.fetch_request(req).await?;
    Ok(format!("{} {}", resp.status_code(), resp.text().await.unwrap_or_default()))
}
