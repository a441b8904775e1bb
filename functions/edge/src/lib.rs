//! `dexto-edge`: the one public origin. It owns no logic: it routes each path
//! to the Worker for that endpoint group over a service binding (no network
//! hop) and answers unknown paths in the OpenAI error envelope.

mod cron_relay;

use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, json_response};
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

/// Path prefix → service binding. First match wins.
const ROUTES: &[(&str, &str)] = &[
    ("/v1/", "CHAT"),
    ("/admin/", "ADMIN"),
    ("/admin", "ADMIN"),
    ("/me/usage", "USAGE"),
    ("/api/account/usage", "USAGE"),
];

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    if path == "/health" {
        return json_response(200, &serde_json::json!({"status": "ok"}));
    }
    match ROUTES.iter().find(|(prefix, _)| path.starts_with(prefix)) {
        Some((_, binding)) => env.service(binding)?.fetch_request(req).await,
        None => error_response(&GatewayError::NotFound(format!("No route for {path}.")), None),
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
