//! The signed-in side of device login (full sessions only; the `/device`
//! page calls these as the user): look up a pending code to see who is
//! asking, then approve or deny it. A code older than
//! `device::CONFIRM_AFTER_SECS` is approved only with `"confirm": true`, the
//! page's second confirmation. The device code itself is never returned.

use crate::device::{db, enabled};
use crate::{principal, security_event, ApiResult};
use dexto_shared::device::{self, CONFIRM_AFTER_SECS};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_object, now_ms, ok_json};
use dexto_shared::log;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Env, Request};

#[derive(Clone, Copy)]
pub enum Decision {
    Approve,
    Deny,
}

/// A code as the approving user may see it.
#[derive(Deserialize)]
struct Code {
    status: String,
    user_id: Option<String>,
    client: String,
    client_version: Option<String>,
    client_ip: Option<String>,
    client_country: Option<String>,
    created_at: i64,
    expires_at: i64,
}

fn unknown() -> GatewayError {
    GatewayError::NotFound("Unknown or expired code. Check the code shown in your terminal, or start the login again.".into())
}

fn decided() -> GatewayError {
    GatewayError::Conflict("This code was already approved, denied or used.".into())
}

async fn find(env: &Env, user_code: &str) -> Result<Option<Code>, GatewayError> {
    dexto_shared::db::first(
        &db(env)?,
        "SELECT status, user_id, client, client_version, client_ip, client_country, created_at, expires_at
         FROM device_codes WHERE user_code = ?1",
        &[user_code.into()],
    )
    .await
}

fn typed_code(raw: Option<&str>) -> Result<String, GatewayError> {
    let typed = raw.ok_or_else(|| GatewayError::BadRequest("`userCode` is required.".into()))?;
    device::normalize_user_code(typed).ok_or_else(unknown)
}

/// `GET /api/auth/device/pending?user_code=…` (session): who is asking —
/// client name and version, IP, country, when the code was issued and
/// whether approving it needs the second confirmation. 404 unknown or
/// expired, 409 already decided.
pub async fn pending(req: &Request, env: &Env) -> ApiResult {
    enabled(env)?;
    principal::session(req, env).await?;
    let pairs = dexto_shared::url_query::pairs(&req.inner().url());
    let raw = pairs.iter().find(|(k, _)| k == "user_code" || k == "userCode").map(|(_, v)| v.as_str());
    let user_code = typed_code(raw)?;
    let now = now_ms();
    let code = find(env, &user_code).await?.filter(|c| c.expires_at > now).ok_or_else(unknown)?;
    if code.status != "pending" {
        return Err(decided());
    }
    let age_secs = (now - code.created_at).max(0) / 1000;
    ok_json(
        200,
        &json!({
            "userCode": user_code, "status": code.status, "client": code.client, "clientVersion": code.client_version,
            "ip": code.client_ip, "country": code.client_country, "createdAt": code.created_at, "ageSeconds": age_secs,
            "expiresInSeconds": (code.expires_at - now) / 1000,
            "needsConfirmation": device::needs_confirmation(code.created_at, now), "confirmAfterSeconds": CONFIRM_AFTER_SECS,
        }),
    )
}

/// `POST /api/auth/device/approve` and `/deny` `{"userCode", "confirm"?}`
/// (session). 404 for unknown or expired codes; repeating one's own decision
/// is a no-op; a code someone already decided is 409, and so is approving a
/// code older than `CONFIRM_AFTER_SECS` without `"confirm": true`.
pub async fn decide(req: &mut Request, env: &Env, decision: Decision) -> ApiResult {
    enabled(env)?;
    let user = principal::session(req, env).await?;
    let body = json_object(req).await?;
    let user_code = typed_code(body.get("userCode").or_else(|| body.get("user_code")).and_then(Value::as_str))?;
    let confirmed = body.get("confirm").and_then(Value::as_bool).unwrap_or(false);
    let to = match decision {
        Decision::Approve => "approved",
        Decision::Deny => "denied",
    };
    // Denying needs no confirmation, however old the code.
    let confirmed_or_deny = confirmed || matches!(decision, Decision::Deny);
    let now = now_ms();
    let decided_now: Option<Value> = dexto_shared::db::returning(
        &db(env)?,
        "UPDATE device_codes SET status = ?2, user_id = ?3, decided_at = ?4
         WHERE user_code = ?1 AND status = 'pending' AND expires_at > ?4 AND (?5 = 1 OR ?4 - created_at <= ?6)
         RETURNING client",
        &[
            user_code.as_str().into(),
            to.into(),
            user.id.as_str().into(),
            (now as f64).into(),
            (if confirmed_or_deny { 1.0 } else { 0.0 }).into(),
            ((CONFIRM_AFTER_SECS * 1000) as f64).into(),
        ],
    )
    .await?;
    let answer = |client: &Value| ok_json(200, &json!({"success": true, "status": to, "userCode": user_code, "client": client}));
    if let Some(row) = decided_now {
        log::event(&format!("device.{to}"), json!({"user_id": user.id, "client": row["client"]}));
        security_event(req, env, &user.id, &format!("device.{to}"), &user.id, json!({"client": row["client"], "confirmed_old": confirmed})).await?;
        return answer(&row["client"]);
    }
    match find(env, &user_code).await? {
        None => Err(unknown()),
        Some(c) if c.expires_at <= now => Err(unknown()),
        Some(c) if c.status == to && c.user_id.as_deref() == Some(user.id.as_str()) => answer(&json!(c.client)),
        Some(c) if c.status == "pending" => Err(GatewayError::Conflict(format!(
            "This code was issued {}. Approve it only if you started this login yourself and your terminal is still waiting: confirm to approve.",
            device::describe_age((now - c.created_at) / 1000)
        ))),
        Some(_) => Err(decided()),
    }
}
