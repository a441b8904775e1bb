//! The plans API for the dashboard and clients (session or CLI token):
//! - `GET /api/billing/plans`: every plan with a preview of changing to it
//!   (`shared/src/plans/change.rs`) and the user's current plan;
//! - `POST /api/billing/subscription {"plan_id", "return_url"?, "cancel_url"?}`:
//!   without a subscription, a Checkout Session in subscription mode; with
//!   one, the subscription's price is changed at Stripe — an upgrade invoices
//!   the prorated difference now (`always_invoice`) and takes effect only
//!   once that is paid (`pending_if_incomplete`), a downgrade bills the
//!   lower price from the next period (`none`). The plan itself changes when
//!   Stripe's `customer.subscription.updated` / next `invoice.paid` arrives
//!   (plans.rs), so Stripe stays the record;
//! - `DELETE /api/billing/subscription`: cancel at the period end;
//! - `POST /api/billing/portal`: a billing portal session (cards, invoices).

use crate::config::BillingConfig;
use crate::stripe_api;
use crate::ApiResult;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_object, now_ms, ok_json};
use dexto_shared::ids::new_id;
use dexto_shared::plan_store::{self, UserPlan};
use dexto_shared::plans::change::{preview, PlanChange};
use dexto_shared::plans::{self, Plan};
use dexto_shared::stripe::form_encode;
use dexto_shared::url_query::encode;
use serde_json::{json, Value};
use worker::{Env, Request};

/// The user's plan, whether a subscription is running, and every plan.
async fn context(env: &Env, user_id: &str) -> Result<(Plan, Option<UserPlan>, Vec<Plan>), GatewayError> {
    let db = dexto_shared::db::database(env)?;
    let (current, state) = plan_store::current(&db, user_id).await?;
    Ok((current, state, plan_store::all(&db).await?))
}

fn subscribed(state: &Option<UserPlan>) -> Option<&str> {
    state.as_ref().and_then(|s| s.subscription_id.as_deref())
}

fn change_to(current: &Plan, state: &Option<UserPlan>, target: &Plan) -> PlanChange {
    let period = state.as_ref().and_then(|s| s.period_start.zip(s.period_end));
    preview(current, subscribed(state).is_some(), period, target, now_ms())
}

pub async fn list(req: &Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate_cli(req.headers(), env).await?.user;
    let (current, state, all) = context(env, &user.id).await?;
    let data: Vec<Value> = all
        .iter()
        .map(|p| {
            let mut v = plans::to_json(p);
            v["preview"] = change_to(&current, &state, p).to_json();
            v
        })
        .collect();
    ok_json(200, &json!({"object": "list", "data": data, "current": plan_store::summary(&current, state.as_ref())}))
}

pub async fn subscribe(req: &mut Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate(req.headers(), env).await?;
    let config = BillingConfig::from_env(env);
    let body = json_object(req).await?;
    let wanted = body.get("plan_id").and_then(Value::as_str).unwrap_or("");
    let (current, state, all) = context(env, &user.id).await?;
    let Some(target) = all.iter().find(|p| p.id == wanted) else {
        return Err(GatewayError::BadRequest(format!("`plan_id` must be one of: {}.", all.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", "))));
    };
    let Some(price) = target.stripe_price_id.clone() else {
        return Err(GatewayError::BadRequest("The free plan needs no subscription: cancel the current one instead (DELETE /api/billing/subscription).".into()));
    };
    let change = change_to(&current, &state, target);
    let idempotency = dexto_shared::http::idempotency_key(req).unwrap_or_else(|| new_id("sub_"));
    let key = format!("{}:{idempotency}", user.id);
    match (&change, subscribed(&state)) {
        (PlanChange::Current, _) => Err(GatewayError::Conflict(format!("You are already on the plan `{}`.", target.name))),
        (PlanChange::Subscribe, _) | (_, None) => {
            // Checkout returns to the dashboard's plan notice unless told otherwise
            // (the top-up return, `?session_id=`, waits for a top-up's payment).
            let mut urls = body.clone();
            if urls.get("return_url").is_none() {
                let own = dexto_shared::url_query::origin(&req.inner().url()).unwrap_or_default();
                urls["return_url"] = json!(format!("{own}/dashboard/settings/billing?plan=subscribed"));
            }
            let (success, cancel) = crate::checkout::return_urls(req, &config, &urls)?;
            let form = form_encode(&[
                ("mode", "subscription".into()),
                ("line_items[0][price]", price),
                ("line_items[0][quantity]", "1".into()),
                ("success_url", success),
                ("cancel_url", cancel),
                ("client_reference_id", user.id.clone()),
                ("metadata[user_id]", user.id.clone()),
                ("metadata[plan_id]", target.id.clone()),
                ("subscription_data[metadata][user_id]", user.id.clone()),
            ]);
            let session = stripe_api::post(&config, "/v1/checkout/sessions", &form, &key).await?;
            let url = session.get("url").and_then(Value::as_str).ok_or(GatewayError::UpstreamUnavailable)?;
            ok_json(200, &json!({"checkout_url": url, "checkout_session_id": session.get("id"), "preview": change.to_json()}))
        }
        (_, Some(subscription)) => {
            let sub = stripe_api::get(&config, &format!("/v1/subscriptions/{}", encode(subscription))).await?.ok_or(GatewayError::UpstreamUnavailable)?;
            let item = sub.pointer("/items/data/0/id").and_then(Value::as_str).ok_or(GatewayError::UpstreamUnavailable)?;
            let upgrade = matches!(change, PlanChange::Upgrade { .. });
            let path = format!("/v1/subscriptions/{}", encode(subscription));
            let mut fields = vec![("items[0][id]", item.to_string()), ("items[0][price]", price)];
            if upgrade {
                // Stripe applies the new price only once its proration invoice
                // is paid; such a pending update takes no `cancel_at_period_end`.
                if sub.get("cancel_at_period_end").and_then(Value::as_bool) == Some(true) {
                    stripe_api::post(&config, &path, &form_encode(&[("cancel_at_period_end", "false".into())]), &format!("{key}:resume")).await?;
                }
                fields.extend([("proration_behavior", "always_invoice".into()), ("payment_behavior", "pending_if_incomplete".into())]);
            } else {
                fields.extend([("proration_behavior", "none".into()), ("cancel_at_period_end", "false".into())]);
            }
            let form = form_encode(&fields);
            stripe_api::post(&config, &path, &form, &key).await?;
            ok_json(200, &json!({"subscription_id": subscription, "preview": change.to_json()}))
        }
    }
}

pub async fn cancel(req: &Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate(req.headers(), env).await?;
    let config = BillingConfig::from_env(env);
    let (_, state, _) = context(env, &user.id).await?;
    let Some(subscription) = subscribed(&state) else {
        return Err(GatewayError::Conflict("There is no subscription to cancel: you are on the free plan.".into()));
    };
    let key = format!("{}:cancel:{subscription}", user.id);
    stripe_api::post(&config, &format!("/v1/subscriptions/{}", encode(subscription)), &form_encode(&[("cancel_at_period_end", "true".into())]), &key).await?;
    ok_json(200, &json!({"subscription_id": subscription, "cancel_at_period_end": true, "ends_at": state.as_ref().and_then(|s| s.period_end)}))
}

pub async fn portal(req: &mut Request, env: &Env) -> ApiResult {
    let user = dexto_shared::session::authenticate(req.headers(), env).await?;
    let config = BillingConfig::from_env(env);
    let body = json_object(req).await?;
    let (_, state, _) = context(env, &user.id).await?;
    let Some(customer) = state.as_ref().and_then(|s| s.customer_id.clone()) else {
        return Err(GatewayError::Conflict("No billing account yet: subscribe to a plan first.".into()));
    };
    // The portal's way back is checked like Checkout's cancel URL.
    let mut urls = json!({});
    if let Some(back) = body.get("return_url") {
        urls["cancel_url"] = back.clone();
    }
    let (_, back) = crate::checkout::return_urls(req, &config, &urls)?;
    let session = stripe_api::post(&config, "/v1/billing_portal/sessions", &form_encode(&[("customer", customer), ("return_url", back)]), &new_id("bps_")).await?;
    let url = session.get("url").and_then(Value::as_str).ok_or(GatewayError::UpstreamUnavailable)?;
    ok_json(200, &json!({"url": url}))
}
