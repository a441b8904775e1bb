//! Direct OpenRouter keys (BYOK), session only: `POST /api/openrouter-provision`
//! mints the key (shown once), `GET` its status, `POST …/fund` and
//! `POST …/reclaim` `{"amount_usd"}` move credit between the wallet and the
//! key (`Idempotency-Key` honoured), `DELETE` revokes it and returns what it
//! did not spend. The money logic is `dexto_shared::direct_keys`.

use crate::{principal, security_event, ApiResult};
use dexto_shared::direct_funding::parse_amount;
use dexto_shared::direct_keys::{self, Stop};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{idempotency_key, json_object, ok_json};
use serde_json::json;
use worker::{Env, Request};

/// Test hook (DEXTO_TEST_HOOKS=1 only): `X-Dexto-Test-Stop-After-First-Step: 1`
/// stops a move after its first step, as a crash there would.
fn stop(req: &Request, env: &Env) -> Stop {
    let hooks = env.var("DEXTO_TEST_HOOKS").is_ok_and(|v| v.to_string() == "1");
    let asked = req.headers().get("X-Dexto-Test-Stop-After-First-Step").ok().flatten().is_some_and(|v| v == "1");
    if hooks && asked {
        Stop::AfterFirstStep
    } else {
        Stop::Never
    }
}

pub async fn provision(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let (status, body) = direct_keys::provision(env, &user.id).await?;
    if status == 201 {
        security_event(req, env, &user.id, "direct_key.created", body["id"].as_str().unwrap_or_default(), json!({"label": body["label"]})).await?;
    }
    ok_json(status, &body)
}

pub async fn status(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    ok_json(200, &direct_keys::status(env, &user.id).await?)
}

pub async fn fund(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let body = json_object(req).await?;
    let amount = parse_amount(body.get("amount_usd")).map_err(GatewayError::BadRequest)?;
    let moved = direct_keys::fund(env, &user.id, amount, idempotency_key(req).as_deref(), stop(req, env)).await?;
    ok_json(200, &json!({"move": moved, "direct_key": direct_keys::status(env, &user.id).await?}))
}

/// Without `amount_usd`, everything the key has not spent.
pub async fn reclaim(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let body = json_object(req).await?;
    let amount = body.get("amount_usd").map(|v| parse_amount(Some(v))).transpose().map_err(GatewayError::BadRequest)?;
    let moved = direct_keys::reclaim(env, &user.id, amount, idempotency_key(req).as_deref(), stop(req, env)).await?;
    ok_json(200, &json!({"move": moved, "direct_key": direct_keys::status(env, &user.id).await?}))
}

pub async fn revoke(req: &mut Request, env: &Env) -> ApiResult {
    let user = principal::session(req, env).await?;
    let moved = direct_keys::revoke(env, &user.id, stop(req, env)).await?;
    security_event(req, env, &user.id, "direct_key.revoked", moved["key_id"].as_str().unwrap_or_default(), json!({"returned_micros": moved["amount_micros"]})).await?;
    ok_json(200, &json!({"move": moved}))
}
