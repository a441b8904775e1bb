//! `POST /api/stripe/webhook`. The signature is checked over the raw bytes
//! before anything else (400 and no side effects otherwise). Each event type is
//! handled in `events.rs`; every balance change goes through the user's wallet
//! object with a reference derived from Stripe's own ids, so redelivery (any
//! number of times, concurrently, in any order, after a crash) changes nothing.
//! Processing errors answer 5xx so Stripe retries.

use crate::config::BillingConfig;
use crate::event::Event;
use crate::events;
use crate::ApiResult;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{now_ms, ok_json};
use dexto_shared::stripe::verify_signature;
use serde_json::{json, Value};
use worker::{Env, Request};

/// Largest webhook body read (Stripe's events are far smaller).
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

pub async fn handle(req: &mut Request, env: &Env) -> ApiResult {
    let config = BillingConfig::from_env(env);
    // Stripe events are a few KB; nothing legitimate comes near this.
    let raw = dexto_shared::http::read_body(req, WEBHOOK_BODY_LIMIT).await?;
    let header = req.headers().get("Stripe-Signature").ok().flatten();
    if config.webhook_secrets.is_empty() {
        return Err(GatewayError::Internal("STRIPE_WEBHOOK_SECRET not configured".into()));
    }
    if let Err(reason) = verify_signature(header.as_deref(), &raw, &config.webhook_secrets, now_ms() / 1000) {
        dexto_shared::log::event("stripe.signature_rejected", json!({"reason": format!("{reason:?}")}));
        return Err(GatewayError::BadRequest("Invalid Stripe signature.".into()));
    }
    let value: Value = serde_json::from_slice(&raw).map_err(|_| GatewayError::BadRequest("Event is not JSON.".into()))?;
    let event = Event {
        id: value.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
        kind: value.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
        object: value.pointer("/data/object").cloned().unwrap_or(Value::Null),
        created: value.get("created").and_then(Value::as_i64).unwrap_or(0),
    };
    if event.id.is_empty() || event.kind.is_empty() {
        return Err(GatewayError::BadRequest("Event lacks id or type.".into()));
    }
    let fault = config.test_faults.then(|| req.headers().get("X-Test-Fault").ok().flatten()).flatten();
    let outcome = events::dispatch(env, &config, &event, fault.as_deref()).await?;
    // Every payment event in the audit log, once per event id (Stripe redelivers).
    dexto_shared::db::run_idempotent(
        &dexto_shared::db::database(env)?,
        "INSERT INTO audit_log (actor, action, subject, detail, created_at)
         SELECT 'stripe', ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE action = ?1 AND subject = ?2)",
        &[format!("stripe.{}", event.kind).into(), event.id.as_str().into(), json!({"outcome": outcome}).to_string().into(), dexto_shared::db::ms(dexto_shared::http::now_ms())],
    )
    .await?;
    dexto_shared::log::event("stripe.event", json!({"event_id": event.id, "type": event.kind, "outcome": outcome}));
    ok_json(200, &json!({"received": true, "outcome": outcome}))
}
