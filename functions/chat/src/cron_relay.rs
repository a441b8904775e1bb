//! Local-only relay of scheduled events. wrangler runs several configs in one
//! `wrangler dev`, but `--test-scheduled` (`GET /__scheduled`) and Miniflare's
//! `/cdn-cgi/handler/scheduled` reach only the first config — this Worker,
//! which owns the local port (scripts/stack.sh); the middleware is not
//! injected into the other Workers, and calling `scheduled()` on a service
//! binding fails there ("ServiceStub serialization requires the 'experimental'
//! compat flag"). So, after its own cron, this Worker forwards the event to
//! `POST /__cron` of each other Worker with crons, which runs the very function
//! its `#[event(scheduled)]` handler runs. The bindings exist only in the
//! local config (stack.sh adds them); in production each Worker's own cron
//! trigger runs it, no binding is configured and this does nothing.

use worker::{Env, Method, Request, RequestInit};

/// Local service bindings to the other Workers whose configs declare `[triggers] crons`.
const RELAYS: &[&str] = &["CRON_RELAY_BILLING"];

pub async fn relay(env: &Env, cron: &str) {
    for binding in RELAYS {
        let Ok(service) = env.service(binding) else {
            continue; // production: that Worker's own trigger runs its cron
        };
        let url = format!("https://relay.internal/__cron?cron={}", dexto_shared::url_query::encode(cron));
        let mut init = RequestInit::new();
        init.with_method(Method::Post);
        let outcome = match Request::new_with_init(&url, &init) {
            Ok(req) => match service.fetch_request(req).await {
                Ok(mut resp) => format!("{} {}", resp.status_code(), resp.text().await.unwrap_or_default()),
                Err(e) => format!("error: {e}"),
            },
            Err(e) => format!("error: {e}"),
        };
        dexto_shared::log::event("cron.relayed", serde_json::json!({"binding": binding, "cron": cron, "outcome": outcome}));
    }
}
