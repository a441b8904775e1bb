//! Allow-list curation (`allowed_models`). Empty table: every priced model is
//! listed and callable. Non-empty: only these, each at its own markup when set
//! (else `PRICE_MARKUP`). The chat Worker reads the table through an isolate
//! cache, so a change takes effect within `ALLOWED_MODELS_TTL_SECONDS`.

use crate::{AuditCtx, audit, json_body, AdminResult};
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_response, now_ms};
use dexto_shared::money::Markup;
use serde_json::{json, Value};
use worker::{Env, Request};

#[derive(serde::Deserialize)]
struct Row {
    model_id: String,
    markup_bps: Option<i64>,
    created_at: i64,
}

fn row_json(r: &Row) -> Value {
    let markup = r.markup_bps.map(|b| Markup::from_bps(b.clamp(0, u32::MAX as i64) as u32).decimal());
    json!({"model": r.model_id, "markup": markup, "markup_bps": r.markup_bps, "created_at": r.created_at})
}

fn ok(status: u16, body: &Value) -> AdminResult {
    json_response(status, body).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// A model id as OpenRouter writes them (`vendor/model:variant`), bounded.
fn valid_model(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_graphic())
}

/// `markup`: absent/null → default; a decimal string or number ≥ 1.0.
fn parse_markup(body: &Value) -> Result<Option<u32>, GatewayError> {
    let text = match body.get("markup") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(GatewayError::BadRequest("`markup` must be a decimal such as \"1.25\".".into())),
    };
    Markup::parse(&text)
        .map(|m| Some(m.bps()))
        .map_err(|e| GatewayError::BadRequest(format!("`markup`: {e} (1.0–100, at most 4 decimals).")))
}

pub async fn list(env: &Env) -> AdminResult {
    let rows: Vec<Row> = db::all(&db::database(env)?, "SELECT model_id, markup_bps, created_at FROM allowed_models ORDER BY model_id", &[]).await?;
    let mode = if rows.is_empty() { "open" } else { "allow_list" };
    ok(200, &json!({"object": "list", "mode": mode, "data": rows.iter().map(row_json).collect::<Vec<_>>()}))
}

/// `POST /admin/models {"model", "markup"?}`: add, or update the markup of, a model.
pub async fn add(req: &mut Request, env: &Env, ctx: &AuditCtx) -> AdminResult {
    let body = json_body(req).await?;
    let model = body.get("model").and_then(Value::as_str).unwrap_or("").trim().to_string();
    if !valid_model(&model) {
        return Err(GatewayError::BadRequest("`model` must be a model id such as `openai/gpt-4o`.".into()));
    }
    let bps = parse_markup(&body)?;
    upsert(env, ctx, &model, bps, true).await
}

/// `PATCH /admin/models/{model}` `{"markup": "1.3" | null}`: set or reset the markup.
pub async fn set_markup(req: &mut Request, env: &Env, ctx: &AuditCtx, model: &str) -> AdminResult {
    let body = json_body(req).await?;
    if body.get("markup").is_none() {
        return Err(GatewayError::BadRequest("`markup` is required (null resets to the default).".into()));
    }
    let bps = parse_markup(&body)?;
    upsert(env, ctx, model, bps, false).await
}

async fn upsert(env: &Env, ctx: &AuditCtx, model: &str, bps: Option<u32>, create: bool) -> AdminResult {
    let bps_js = bps.map_or(worker::wasm_bindgen::JsValue::NULL, |b| (b as f64).into());
    let sql = if create {
        "INSERT INTO allowed_models (model_id, markup_bps, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(model_id) DO UPDATE SET markup_bps = excluded.markup_bps
         RETURNING model_id, markup_bps, created_at"
    } else {
        "UPDATE allowed_models SET markup_bps = ?2 WHERE model_id = ?1 AND ?3 IS NOT NULL
         RETURNING model_id, markup_bps, created_at"
    };
    let row: Option<Row> = db::returning(&db::database(env)?, sql, &[model.into(), bps_js, db::ms(now_ms())]).await?;
    let row = row.ok_or_else(|| GatewayError::NotFound(format!("Model `{model}` is not on the allow-list.")))?;
    audit(env, ctx, if create { "models.allow" } else { "models.markup" }, model, json!({"markup_bps": bps})).await?;
    ok(if create { 201 } else { 200 }, &row_json(&row))
}

/// `DELETE /admin/models/{model}`.
pub async fn remove(env: &Env, ctx: &AuditCtx, model: &str) -> AdminResult {
    let sql = "DELETE FROM allowed_models WHERE model_id = ?1 RETURNING model_id";
    let gone: Option<Value> = db::returning(&db::database(env)?, sql, &[model.into()]).await?;
    if gone.is_none() {
        return Err(GatewayError::NotFound(format!("Model `{model}` is not on the allow-list.")));
    }
    audit(env, ctx, "models.disallow", model, json!({})).await?;
    ok(200, &json!({"model": model, "removed": true}))
}

/// The model id from the path segments after `models` (ids contain `/`).
pub fn model_from_path(segments: &[&str]) -> String {
    dexto_shared::model_list::model_id_from_path(&segments.join("/"))
}
