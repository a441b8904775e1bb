//! `dexto-billing`: buying credit. Stripe Checkout sessions for top-ups, the
//! Stripe webhook that credits each paid session exactly once (and handles
//! refunds, disputes and subscription grants), the balance and the account's
//! payment and ledger history (the dashboard's top-up page is dexto-dashboard).
//! Hourly, top-ups are reconciled with Stripe's records (reconcile.rs).

mod checkout;
mod config;
mod crypto;
mod event;
mod events;
mod history;
mod payments;
mod plan_api;
mod plan_failures;
mod plan_invoice;
mod plans;
mod reconcile;
mod reconcile_plans;
mod stripe_api;
mod webhook;

use dexto_shared::error::GatewayError;
use dexto_shared::http::{error_response, json_response, ok_json};
use dexto_shared::wallet_client::WalletClient;
use worker::{event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent};

pub type ApiResult = std::result::Result<Response, GatewayError>;

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let result = match (req.method(), path.as_str()) {
        (Method::Post, "/api/billing/checkout-session") => checkout::create(&mut req, &env, checkout::Flavor::Cli).await,
        (Method::Post, "/api/stripe/create-checkout-session") => checkout::create(&mut req, &env, checkout::Flavor::Plan).await,
        (Method::Get, "/api/billing/balance") => balance(&req, &env).await,
        (Method::Get, "/api/billing/history") => history::history(&req, &env).await,
        (Method::Get, "/api/billing/plans") => plan_api::list(&req, &env).await,
        (Method::Post, "/api/billing/subscription") => plan_api::subscribe(&mut req, &env).await,
        (Method::Delete, "/api/billing/subscription") => plan_api::cancel(&req, &env).await,
        (Method::Post, "/api/billing/portal") => plan_api::portal(&mut req, &env).await,
        (Method::Post, "/api/stripe/webhook") => webhook::handle(&mut req, &env).await,
        (Method::Post, "/api/billing/crypto/confirm") => crypto::confirm(&mut req, &env).await,
        (Method::Get, "/api/billing/crypto") => crypto::overview(&req, &env).await,
        // Only reachable through a service binding (the edge's local cron relay):
        // the edge routes no public path here.
        (Method::Post, "/__cron") => return json_response(200, &serde_json::json!({"outcome": cron(&env, Jobs::Both).await})),
        _ => Err(GatewayError::NotFound(format!("No route for {} {path}.", req.method()))),
    };
    result.or_else(|err| {
        if let GatewayError::Internal(detail) = &err {
            dexto_shared::log::event("billing.internal_error", serde_json::json!({"path": path, "detail": detail}));
        }
        error_response(&err, None)
    })
}

#[derive(Clone, Copy)]
enum Jobs {
    Stripe,
    Chain,
    Both,
}

/// `[triggers] crons` in wrangler.toml: hourly reconciliation with Stripe,
/// and the chain scan (crypto top-ups) every 5 minutes.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    cron(&env, if event.cron() == "0 * * * *" { Jobs::Stripe } else { Jobs::Chain }).await;
}

/// The hourly event reconciles with Stripe, the 5-minute one scans the chain
/// (both fire at minute 0: each runs its own job). The local relay
/// (`POST /__cron`) runs both.
async fn cron(env: &Env, which: Jobs) -> String {
    let stripe = match which {
        Jobs::Chain => "stripe: hourly".into(),
        _ => reconcile::run(env).await.unwrap_or_else(|e| format!("stripe reconciliation failed: {e:?}")),
    };
    let chain = match which {
        Jobs::Stripe => "chain: every 5 minutes".into(),
        _ => crypto::scan::run(env).await.unwrap_or_else(|e| format!("chain scan failed: {e:?}")),
    };
    let outcome = format!("{stripe}; {chain}");
    dexto_shared::log::event("cron.ran", serde_json::json!({"worker": "billing", "outcome": outcome}));
    outcome
}

/// `GET /api/billing/balance` (session, or a CLI's device token): the
/// wallet's authoritative balance.
async fn balance(req: &Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate_cli(req.headers(), env).await?.user;
    let state = WalletClient::for_user(env, &user.id)?.state().await?;
    let mut body = serde_json::json!({"credits_usd": state.balance.as_json_usd(), "credits_cents": state.balance.whole_cents_floor(), "frozen": state.frozen});
    dexto_shared::plan_store::add_plan_fields(&dexto_shared::db::database(env)?, &mut body, &user.id, state.balance, state.included).await?;
    ok_json(200, &body)
}
