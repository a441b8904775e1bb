//! A verified Stripe event and what every handler does with one: mark it
//! processed (once per event id), or record it as unattributable for an
//! operator. Shared by the handlers of `events.rs` and `plans.rs`.

use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use serde_json::Value;
use worker::D1Database;

pub fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("stripe event: {e}"))
}

pub fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A verified Stripe event, as `webhook.rs` hands it over.
pub struct Event {
    pub id: String,
    pub kind: String,
    pub object: Value,
    /// When Stripe created the event (Unix seconds; 0 if absent).
    pub created: i64,
}

/// A paid or refunded event we cannot attribute: acknowledged (so Stripe stops
/// retrying) and left in the audit log for an operator, never silently dropped.
pub async fn unmatched(db: &D1Database, event: &Event, why: &str) -> Result<&'static str, GatewayError> {
    db::run_idempotent(
        db,
        // Once per event, so the write can be retried (and Stripe can redeliver).
        "INSERT INTO audit_log (actor, action, subject, detail, created_at)
         SELECT 'stripe', 'stripe.unmatched_event', ?1, ?2, ?3
         WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE action = 'stripe.unmatched_event' AND subject = ?1)",
        &[event.id.as_str().into(), serde_json::json!({"type": event.kind, "why": why}).to_string().into(), now_f64()],
    )
    .await?;
    record_event(db, event).await?;
    dexto_shared::log::event("stripe.unmatched_event", serde_json::json!({"event_id": event.id, "type": event.kind, "why": why}));
    Ok("needs_review")
}

pub async fn already_processed(db: &D1Database, event: &Event) -> Result<bool, GatewayError> {
    let row: Option<Value> = db::first(db, "SELECT event_id FROM processed_webhook_events WHERE event_id = ?1", &[event.id.as_str().into()]).await?;
    Ok(row.is_some())
}

pub async fn record_event(db: &D1Database, event: &Event) -> Result<(), GatewayError> {
    db::run_idempotent(
        db,
        "INSERT INTO processed_webhook_events (event_id, event_type, processed_at) VALUES (?1, ?2, ?3) ON CONFLICT(event_id) DO NOTHING",
        &[event.id.as_str().into(), event.kind.as_str().into(), now_f64()],
    )
    .await
}

pub fn now_f64() -> wasm_bindgen::JsValue {
    db::ms(now_ms())
}
