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
            Some(binding) => match forward(&env, binding, req).await {
                Ok(resp) => (resp, binding == "CHAT"),
                Err(e) => (unreachable_service(binding, &e)?, false),
            },
            None => (error_response(&GatewayError::NotFound(format!("No route for {path}.")), None)?, false),
        }
    };
    match origin {
        Some(o) if !decorated => cors::decorate(resp, &o),
        _ => Ok(resp),
    }
}

async fn forward(env: &Env, binding: &str, req: Request) -> Result<Response> {
    env.service(binding)?.fetch_request(req).await
}

/// A Worker behind a binding that could not be reached: the JSON envelope
/// like any error, and a log line (the runtime's text names no secret).
fn unreachable_service(binding: &str, e: &worker::Error) -> Result<Response> {
    dexto_shared::log::event("edge.service_unreachable", serde_json::json!({"binding": binding, "error": e.to_string()}));
    error_response(&GatewayError::Internal(format!("{binding} unreachable")), None)
}
