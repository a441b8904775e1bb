//! Device login for the Dexto CLI (1.6.9+): `start` and `poll` (both CLI
//! generations on both path families, told apart by the poll body). The
//! signed-in side (look-up, approve, deny) is `device_approval.rs`. Codes
//! live in D1 `device_codes`; every state change is a single guarded UPDATE,
//! so two racing polls can never mint twice. Wire shapes per generation:
//! `dexto_shared::device_protocol`.

use crate::{security_event, ApiResult};
use dexto_shared::device::{self, ClientInfo, DeviceConfig, DEVICE_TOKEN_TTL_SECS, POLL_TOLERANCE_MS};
use dexto_shared::device_protocol::{self as protocol, Generation, Refusal, Reply};
use dexto_shared::error::GatewayError;
use dexto_shared::http::{json_object, now_ms};
use dexto_shared::{device_token, keystore, log};
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{D1Database, Env, Request};

const DAY_MS: i64 = 86_400_000;

pub fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("device: {e}"))
}

pub fn db(env: &Env) -> Result<D1Database, GatewayError> {
    env.d1("DB").map_err(internal)
}

/// The settings, or 404 when device login is switched off
/// (`DEVICE_LOGIN_ENABLED=false`): every CLI reads 404 as "not enabled here".
pub fn enabled(env: &Env) -> Result<DeviceConfig, GatewayError> {
    let var = |n: &str| env.var(n).ok().map(|v| v.to_string());
    let config = DeviceConfig::from_vars(var("DEVICE_LOGIN_ENABLED").as_deref(), var("DEVICE_CODE_TTL_SECONDS").as_deref(), var("DEVICE_POLL_INTERVAL_SECONDS").as_deref());
    if !config.enabled {
        return Err(GatewayError::NotFound("Device login is not enabled on this server.".into()));
    }
    Ok(config)
}

/// A protocol reply: never cached (it may carry a credential), `Retry-After` on 429.
fn reply(r: Reply) -> ApiResult {
    let mut resp = dexto_shared::http::ok_json(r.status, &r.body)?;
    let headers = resp.headers_mut();
    headers.set("Cache-Control", "no-store").map_err(internal)?;
    if let Some(secs) = r.retry_after_secs {
        headers.set("Retry-After", &secs.to_string()).map_err(internal)?;
    }
    Ok(resp)
}

fn verification_uri(req: &Request, env: &Env) -> Result<String, GatewayError> {
    match env.var("DEVICE_VERIFICATION_URL").ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty()) {
        Some(url) => Ok(url.trim().to_string()),
        None => {
            let origin = dexto_shared::url_query::origin(&req.inner().url()).ok_or_else(|| internal("request URL without origin"))?;
            Ok(format!("{origin}/device"))
        }
    }
}

/// What the start request says about the client and where it came from:
/// shown on the approval page before anyone approves.
fn requester(req: &Request, body: &Value) -> (ClientInfo, Option<String>, Option<String>) {
    let header = |n: &str| req.headers().get(n).ok().flatten();
    let info = ClientInfo::from_start(body, header("X-Dexto-Version").as_deref(), header("User-Agent").as_deref());
    let ip = header("CF-Connecting-IP").filter(|ip| ip.len() <= 45);
    // The platform's geolocation; absent locally and where it is not given.
    let country = req.cf().and_then(|cf| cf.country()).filter(|c| c.len() == 2);
    (info, ip, country)
}

/// Unauthenticated starts write to D1, so they are throttled before anything
/// else: per client IP (`CF-Connecting-IP`) and overall, with the platform's
/// rate-limit bindings (`[[ratelimits]]` in wrangler.toml: approximate by
/// design, which is fine for abuse throttling). A binding that is not
/// configured does not limit.
async fn throttle_start(req: &Request, env: &Env) -> Result<(), GatewayError> {
    let ip = req.headers().get("CF-Connecting-IP").ok().flatten().unwrap_or_else(|| "unknown".into());
    let limits = [("DEVICE_START_PER_IP", format!("ip:{ip}")), ("DEVICE_START_GLOBAL", "all".to_string())];
    dexto_shared::throttle::check(env, "device.start", &limits).await
}

/// `POST /auth/device/start`, `/api/auth/device/start` `{"client"}` or
/// `{"clientId"}` (no auth). Records who asks (client, version, IP, country)
/// for the approval page.
pub async fn start(req: &mut Request, env: &Env) -> ApiResult {
    let config = enabled(env)?;
    throttle_start(req, env).await?;
    let body = json_object(req).await?;
    let (info, ip, country) = requester(req, &body);
    let client = info.name.clone();
    let uri = verification_uri(req, env)?;
    let db = db(env)?;
    let now = now_ms();
    let device_code = device::new_device_code();
    // A user code may collide with a live one (2^-40 per code): the UNIQUE
    // insert then changes nothing and one retry draws a fresh code.
    for _ in 0..2 {
        let user_code = device::new_user_code();
        let results = dexto_shared::db::batch(
            &db,
            vec![
                db.prepare("DELETE FROM device_codes WHERE expires_at < ?1").bind(&[((now - DAY_MS) as f64).into()]).map_err(internal)?,
                db.prepare(
                    "INSERT INTO device_codes (device_code_hash, user_code, client, status, interval_secs, created_at, expires_at,
                                               client_version, client_ip, client_country)
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                )
                .bind(&[
                    device::device_code_hash(&device_code).into(),
                    user_code.as_str().into(),
                    client.as_str().into(),
                    (config.interval_secs as f64).into(),
                    (now as f64).into(),
                    ((now + config.ttl_secs * 1000) as f64).into(),
                    optional(info.version.as_deref()),
                    optional(ip.as_deref()),
                    optional(country.as_deref()),
                ])
                .map_err(internal)?,
            ],
            dexto_shared::db::Retry::IfLocked,
        )
        .await?;
        if results.get(1).and_then(dexto_shared::db::changes) == Some(1) {
            log::event("device.started", json!({"client": client, "expires_in": config.ttl_secs}));
            return reply(Reply { status: 200, body: protocol::start_body(&device_code, &user_code, &uri, config.ttl_secs, config.interval_secs), retry_after_secs: None });
        }
    }
    Err(internal("no free user code"))
}

fn optional(text: Option<&str>) -> worker::wasm_bindgen::JsValue {
    text.map_or(worker::wasm_bindgen::JsValue::NULL, Into::into)
}

#[derive(Deserialize)]
struct Polled {
    status: String,
    user_id: Option<String>,
    client: String,
}

#[derive(Deserialize)]
struct Known {
    expires_at: i64,
    interval_secs: i64,
}

/// `POST /auth/device/poll`, `/api/auth/device/poll` `{"device_code"}` or
/// `{"deviceCode"}` (no auth: the device code is the credential).
pub async fn poll(req: &mut Request, env: &Env) -> ApiResult {
    enabled(env)?;
    let body = json_object(req).await.unwrap_or(Value::Null);
    let Some((generation, code)) = protocol::parse_poll(&body) else {
        return reply(protocol::refusal(Generation::Rfc8628, Refusal::InvalidRequest));
    };
    if !device::plausible_device_code(&code) {
        return reply(protocol::refusal(generation, Refusal::InvalidGrant));
    }
    let hash = device::device_code_hash(&code);
    let db = db(env)?;
    let now = now_ms();
    // One guarded statement: only a poll of a live code that respects the
    // interval records itself and reads the state.
    let polled: Option<Polled> = dexto_shared::db::returning(
        &db,
        "UPDATE device_codes SET last_poll_at = ?2
         WHERE device_code_hash = ?1 AND expires_at > ?2
           AND (last_poll_at IS NULL OR ?2 - last_poll_at >= interval_secs * 1000 - ?3)
         RETURNING status, user_id, client",
        &[hash.as_str().into(), (now as f64).into(), (POLL_TOLERANCE_MS as f64).into()],
    )
    .await?;
    let why = match polled {
        None => why_not_polled(&db, &hash, now).await?,
        Some(p) if p.status == "pending" => Refusal::Pending,
        Some(p) if p.status == "denied" => Refusal::Denied,
        Some(p) if p.status == "approved" => return deliver(req, env, &db, generation, &hash, p.user_id, &p.client).await,
        Some(_) => Refusal::InvalidGrant,
    };
    reply(protocol::refusal(generation, why))
}

/// Unknown, expired, or polled too soon.
async fn why_not_polled(db: &D1Database, hash: &str, now: i64) -> Result<Refusal, GatewayError> {
    let known: Option<Known> = dexto_shared::db::first(db, "SELECT expires_at, interval_secs FROM device_codes WHERE device_code_hash = ?1", &[hash.into()]).await?;
    Ok(match known {
        None => Refusal::InvalidGrant,
        Some(k) if k.expires_at <= now => Refusal::Expired,
        Some(k) => Refusal::SlowDown { interval_secs: k.interval_secs },
    })
}

/// The approved code's credential, minted by exactly one poll: the one whose
/// `approved → consumed` UPDATE changes the row. Minting happens after that
/// claim, so a failure there costs the user a new login, never a second key.
async fn deliver(req: &Request, env: &Env, db: &D1Database, generation: Generation, hash: &str, user_id: Option<String>, client: &str) -> ApiResult {
    let user_id = user_id.ok_or_else(|| internal("approved code without a user"))?;
    let user: Option<Value> = dexto_shared::db::first(db, "SELECT email, status FROM users WHERE id = ?1", &[user_id.as_str().into()]).await?;
    let user = user.ok_or_else(|| internal("approving user missing"))?;
    if user["status"] == "suspended" {
        return reply(protocol::refusal(generation, Refusal::Denied));
    }
    if generation == Generation::Status {
        // Like every key-issuing endpoint: the user's upstream key exists first.
        // Idempotent, and before the claim so a failure leaves the approval usable.
        dexto_shared::openrouter_keys::ensure(env, &user_id).await?;
    }
    let now = now_ms();
    let claimed = dexto_shared::db::run(
        db,
        "UPDATE device_codes SET status = 'consumed', consumed_at = ?2 WHERE device_code_hash = ?1 AND status = 'approved'",
        &[hash.into(), (now as f64).into()],
    )
    .await?
        == 1;
    if !claimed {
        return reply(protocol::refusal(generation, Refusal::InvalidGrant));
    }
    match generation {
        Generation::Status => {
            // e.g. "Device login · dexto-cli on my-laptop · 2026-11-30 14:05 UTC"
            let name = format!("{KEY_NAME_PREFIX}{client} · {}", dexto_shared::time::utc_minute(now));
            let k = keystore::issue(env, &user_id, &name, &["gateway:use"]).await?;
            log::event("device.issued", json!({"user_id": user_id, "generation": "status", "key_id": k.id}));
            security_event(req, env, &user_id, "key.create", &k.id, json!({"name": k.name, "via": "device_login"})).await?;
            let view = protocol::IssuedKeyView { id: &k.id, full_key: k.key.expose(), display: &k.display, name: &k.name, scopes: &k.scopes };
            reply(protocol::key_issued(&view))
        }
        Generation::Rfc8628 => {
            // Not a session: a device token, good for the CLI's key, balance and usage.
            let email = user["email"].as_str().unwrap_or("");
            let token = device_token::mint(env, &user_id).await?;
            log::event("device.issued", json!({"user_id": user_id, "generation": "rfc8628"}));
            let detail = json!({"client": client, "generation": "rfc8628", "expires_in": DEVICE_TOKEN_TTL_SECS});
            security_event(req, env, &user_id, "device.token_issued", &user_id, detail).await?;
            reply(protocol::session_issued(&token, DEVICE_TOKEN_TTL_SECS, now / 1000, &user_id, email))
        }
    }
}


/// Keys minted by a device login are named "Device login · …" (the dashboard
/// tells them apart by it).
pub const KEY_NAME_PREFIX: &str = "Device login · ";
