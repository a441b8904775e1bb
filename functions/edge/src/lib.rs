//! `dexto-edge`: the public origin's control plane. It owns no business
//! logic: it routes each path to the Worker for that endpoint group over a
//! service binding (no network hop), answers CORS for browsers, and answers
//! unknown paths in the OpenAI error envelope.
//!
//! The data plane (`/v1/*`) does not pass through here: the zone's routes send
//! it straight to `dexto-chat` (and, locally, `dexto-chat` owns the port and
//! hands everything else to this Worker). `/v1` is still routed, to the chat
//! Worker, for a deployment that has no zone routes (workers.dev).
//! See docs/ARCHITECTURE.md, "Composition".

use dexto_shared::cors;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, json_response};
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let origin = cors::allowed_origin(&req, &env);
    if let Some(preflight) = cors::preflight(&req, origin.as_deref())? {
        return Ok(preflight);
    }
    let path = req.path();
    let (resp, decorated) = if path == "/health" {
        (json_response(200, &serde_json::json!({"status": "ok"}))?, false)
    } else {
        match dexto_shared::routes::service_for(&path) {
            // The chat Worker answers CORS itself (it is also reached directly).
            Some(binding) => (env.service(binding)?.fetch_request(req).await?, binding == "CHAT"),
            None => (error_response(&GatewayError::NotFound(format!("No route for {path}.")), None)?, false),
        }
    };
    match origin {
        Some(o) if !decorated => cors::decorate(resp, &o),
        _ => Ok(resp),
    }
}
