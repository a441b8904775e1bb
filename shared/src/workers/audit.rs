//! The audit log (feature `workers`): append-only rows in D1 `audit_log` with
//! actor, action, the user concerned, subject, request id, client IP and a
//! summary of the change — never a secret. Written by the admin API, the key
//! lifecycle, device login, caps and payments; read by operators
//! (`GET /admin/audit`) and by users for their own security events
//! (`GET /api/audit`).

use crate::db;
use crate::error::GatewayError;
use crate::http::now_ms;
use crate::ids::new_id;
use serde_json::{json, Value};
use worker::{Env, Request};

/// Who acts, and the request it happens in.
pub struct AuditCtx {
    /// `admin`, `user:<id>`, `stripe`, `system`.
    pub actor: String,
    pub request_id: String,
    pub client_ip: Option<String>,
}

impl AuditCtx {
    pub fn of(req: &Request, actor: &str) -> AuditCtx {
        let header = |name: &str| req.headers().get(name).ok().flatten().filter(|v| !v.is_empty() && v.len() <= 100);
        AuditCtx {
            actor: actor.to_string(),
            request_id: header(crate::http::REQUEST_ID_HEADER).unwrap_or_else(|| new_id("req_")),
            client_ip: header("CF-Connecting-IP"),
        }
    }

    pub fn as_user(mut self, user_id: &str) -> AuditCtx {
        self.actor = format!("user:{user_id}");
        self
    }
}

/// Appends one entry.
pub async fn record(env: &Env, ctx: &AuditCtx, action: &str, user_id: Option<&str>, subject: &str, detail: &Value) -> Result<(), GatewayError> {
    let sql = "INSERT INTO audit_log (actor, action, user_id, subject, detail, request_id, client_ip, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    let opt = |v: Option<&str>| v.map_or(worker::wasm_bindgen::JsValue::NULL, Into::into);
    let args = [
        ctx.actor.as_str().into(),
        action.into(),
        opt(user_id),
        subject.into(),
        detail.to_string().into(),
        ctx.request_id.as_str().into(),
        opt(ctx.client_ip.as_deref()),
        db::ms(now_ms()),
    ];
    db::run(&db::database(env)?, sql, &args).await.map(|_| ())
}

/// What to read: newest first, before `cursor` (an entry id), at most `limit`.
pub struct Query<'a> {
    pub user_id: Option<&'a str>,
    /// An action, or a prefix ending in `*` (`key.*`).
    pub action: Option<&'a str>,
    pub cursor: Option<i64>,
    pub limit: i64,
}

/// A page of entries and the cursor of the next one (None: the end).
pub async fn list(env: &Env, q: &Query<'_>) -> Result<Value, GatewayError> {
    let (action_sql, action) = match q.action {
        Some(a) if a.ends_with('*') => ("action >= ?2 AND action < ?2 || '~'", a.trim_end_matches('*').to_string()),
        Some(a) => ("action = ?2", a.to_string()),
        None => ("?2 IS NULL OR 1", String::new()),
    };
    let sql = format!(
        "SELECT id, actor, action, user_id, subject, detail, request_id, client_ip, created_at FROM audit_log
         WHERE (?1 IS NULL OR user_id = ?1) AND ({action_sql}) AND id < ?3 ORDER BY id DESC LIMIT ?4"
    );
    let user = q.user_id.map_or(worker::wasm_bindgen::JsValue::NULL, Into::into);
    let action_arg = if q.action.is_some() { action.as_str().into() } else { worker::wasm_bindgen::JsValue::NULL };
    let args = [user, action_arg, db::ms(q.cursor.unwrap_or(i64::MAX >> 11)), db::ms(q.limit + 1)];
    let mut rows: Vec<Value> = db::all(&db::database(env)?, &sql, &args).await?;
    let next = (rows.len() as i64 > q.limit).then(|| rows.truncate(q.limit as usize)).and_then(|_| rows.last()).and_then(|r| r["id"].as_i64());
    for row in &mut rows {
        // `detail` is stored as JSON text.
        if let Some(text) = row["detail"].as_str() {
            row["detail"] = serde_json::from_str(text).unwrap_or(Value::Null);
        }
    }
    Ok(json!({"data": rows, "next_cursor": next.map(|c| c.to_string())}))
}
