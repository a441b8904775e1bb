//! `dexto-edge`: the one public origin. It owns no business logic: it routes
//! each path to the Worker for that endpoint group over a service binding (no
//! network hop), answers CORS for browsers, and answers unknown paths in the
//! OpenAI error envelope.

mod cors;
mod cron_relay;

use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, json_response};
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let origin = cors::allowed_origin(&req, &env);
    if let Some(preflight) = cors::preflight(&req, origin.as_deref())? {
        return Ok(preflight);
    }
    let path = req.path();
    let resp = if path == "/health" {
        json_response(200, &serde_json::json!({"status": "ok"}))?
    } else {
        match dexto_shared::routes::service_for(&path) {
            Some(binding) => env.service(binding)?.fetch_request(req).await?,
            None => error_response(&GatewayError::NotFound(format!("No route for {path}.")), None)?,
        }
    };
    match origin {
        Some(o) => cors::decorate(resp, &o),
        None => Ok(resp),
    }
}

/// The edge declares no cron triggers, so in production this never runs. Locally,
/// `wrangler dev --test-scheduled` delivers `GET /__scheduled` only to the first
/// config (this Worker); the relay passes the event on to the Workers that have
/// crons, which run their scheduled code (see cron_relay.rs).
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    cron_relay::relay(&env, &event.cron()).await;
}
