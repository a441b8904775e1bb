//! `dexto-chat`: the data plane (`/v1/chat/completions`, `/v1/models`) and the
//! `WalletDO` Durable Object class that owns every user's balance and holds.
//!
//! Clients reach it directly: the zone routes `/v1/*` here, everything else to
//! `dexto-edge` (one Worker invocation per chat request, no service-binding
//! hop). Locally this Worker owns the port and hands every other path to the
//! edge over the `EDGE` binding that only the local config has (the stand-in
//! for the zone's routes; docs/ARCHITECTURE.md, "Composition").

mod allowed;
mod catalogue;
mod config;
mod cron;
mod cron_relay;
mod deadlines;
mod error_counts;
mod inference;
mod metering;
mod metrics;
mod models;
mod ops;
mod plan_models;
mod reattach;
mod reconcile;
mod upstream;
mod usage_bound;
mod usage_review;
mod wallet;
mod x402;

use dexto_shared::cors;
use dexto_shared::error::GatewayError;
use dexto_shared::dialects::Dialect;
use dexto_shared::http::{error_response, error_response_in};
use worker::{event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent};

pub use wallet::WalletDO;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let path = req.path();
    if path == "/__ops" {
        return ops::handle(&req, &env);
    }
    if path != "/v1" && !path.starts_with("/v1/") {
        let Ok(edge) = env.service("EDGE") else {
            return error_response(&GatewayError::NotFound(format!("No route for {path}.")), None);
        };
        return match edge.fetch_request(req).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                dexto_shared::log::event("chat.edge_unreachable", serde_json::json!({"error": e.to_string()}));
                error_response(&GatewayError::Internal("edge unreachable".into()), None)
            }
        };
    }
    dexto_shared::ops::count(|o| o.worker_requests += 1);
    let origin = cors::allowed_origin(&req, &env);
    if let Some(preflight) = cors::preflight(&req, origin.as_deref())? {
        return Ok(preflight);
    }
    let resp = match (req.method(), path.as_str()) {
        (Method::Post, p) if Dialect::from_path(p).is_some() => inference::handle(req, env, ctx, Dialect::from_path(p).expect("matched")).await?,
        (_, p) if Dialect::from_path(p).is_some() => error_response_in(Dialect::from_path(p).expect("matched"), &GatewayError::MethodNotAllowed, None)?,
        (Method::Get, p) if p.matches('/').count() >= 3 && reattach::route(p, &query(&req)).is_some() => {
            let query = query(&req);
            let route = reattach::route(p, &query).expect("matched");
            reattach::handle(req, env, route, &query).await?
        }
        (Method::Get, p) if p == "/v1/models" || p.starts_with("/v1/models/") => models::handle(req, env, ctx).await?,
        _ => error_response(&GatewayError::NotFound("Unknown path.".into()), None)?,
    };
    match origin {
        Some(o) => cors::decorate(resp, &o),
        None => Ok(resp),
    }
}

/// `[triggers] crons` in wrangler.toml: hourly catalogue refresh and
/// reconciliation; locally also relayed to the other Workers with crons.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    cron::run(&env, &event.cron()).await;
    cron_relay::relay(&env, &event.cron()).await;
}

fn query(req: &Request) -> Vec<(String, String)> {
    dexto_shared::url_query::pairs(&req.inner().url())
}
