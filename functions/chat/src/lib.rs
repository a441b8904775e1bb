//! `dexto-chat`: the data plane (`/v1/chat/completions`, `/v1/models`) and the
//! `WalletDO` Durable Object class that owns every user's balance and holds.

mod allowed;
mod catalogue;
mod completions;
mod config;
mod cron;
mod error_counts;
mod metering;
mod metrics;
mod models;
mod reconcile;
mod upstream;
mod usage_bound;
mod usage_review;
mod wallet;

use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, json_response};
use worker::{event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent};

pub use wallet::WalletDO;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let path = req.path();
    match (req.method(), path.as_str()) {
        (Method::Post, "/v1/chat/completions") => completions::handle(req, env, ctx).await,
        (_, "/v1/chat/completions") => error_response(&GatewayError::MethodNotAllowed, None),
        (Method::Get, p) if p == "/v1/models" || p.starts_with("/v1/models/") => models::handle(req, env, ctx).await,
        // Only reachable through a service binding (the edge routes `/v1/*` here, nothing else).
        (Method::Post, "/__cron") => {
            let pairs = dexto_shared::url_query::pairs(&req.inner().url());
            let cron = pairs.into_iter().find(|(k, _)| k == "cron").map(|(_, v)| v).unwrap_or_default();
            json_response(200, &serde_json::json!({"outcome": cron::run(&env, &cron).await}))
        }
        _ => error_response(&GatewayError::NotFound("Unknown path.".into()), None),
    }
}

/// `[triggers] crons` in wrangler.toml: hourly catalogue refresh.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    cron::run(&env, &event.cron()).await;
}
