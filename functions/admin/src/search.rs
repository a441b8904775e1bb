//! Finding users and their keys: `GET /admin/users?email=&id=&status=&cursor=&limit=`
//! (newest first, keyset pages) and `GET /admin/users/{id}/keys`.

use crate::AdminResult;
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::http::ok_json;
use dexto_shared::key_settings::models_from_storage;
use dexto_shared::keystore;
use serde_json::{json, Value};
use worker::{Env, Request};

pub async fn users(req: &Request, env: &Env) -> AdminResult {
    let pairs = dexto_shared::url_query::pairs(&req.inner().url());
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let limit = match get("limit") {
        Some(l) => l.parse::<i64>().ok().filter(|l| (1..=200).contains(l)).ok_or_else(|| GatewayError::BadRequest("`limit` must be 1 to 200.".into()))?,
        None => 50,
    };
    // Cursor: "<created_at>:<id>" of the last row of the previous page.
    let (cursor_at, cursor_id) = match get("cursor") {
        Some(c) => {
            let (at, id) = c.split_once(':').ok_or_else(|| GatewayError::BadRequest("`cursor` is not a cursor from this API.".into()))?;
            (at.parse::<i64>().map_err(|_| GatewayError::BadRequest("`cursor` is not a cursor from this API.".into()))?, id.to_string())
        }
        None => (i64::MAX >> 11, String::new()),
    };
    let status = get("status");
    if status.as_deref().is_some_and(|s| s != "active" && s != "suspended") {
        return Err(GatewayError::BadRequest("`status` must be active or suspended.".into()));
    }
    let null = || worker::wasm_bindgen::JsValue::NULL;
    let opt = |v: &Option<String>| v.as_deref().map_or_else(null, Into::into);
    // Email: a prefix, case-insensitively (ASCII case, as SQLite's lower()).
    // Compared by characters, not as a range up to some "largest" character:
    // no printable bound sorts above every UTF-8 character that may follow.
    let email = get("email").map(|e| e.to_ascii_lowercase());
    let rows: Vec<Value> = db::all(
        &db::database(env)?,
        "SELECT u.id, u.email, u.status, u.created_at, COALESCE(b.balance_micros, 0) AS balance_micros
         FROM users u LEFT JOIN balances b ON b.user_id = u.id
         WHERE (?1 IS NULL OR u.id = ?1)
           AND (?2 IS NULL OR substr(lower(u.email), 1, length(?2)) = ?2)
           AND (?3 IS NULL OR u.status = ?3)
           AND (u.created_at < ?4 OR (u.created_at = ?4 AND u.id < ?5))
         ORDER BY u.created_at DESC, u.id DESC LIMIT ?6",
        &[opt(&get("id")), opt(&email), opt(&status), db::ms(cursor_at), cursor_id.as_str().into(), db::ms(limit + 1)],
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<Value> = rows.into_iter().take(limit as usize).collect();
    let next = more.then(|| rows.last().map(|r| format!("{}:{}", r["created_at"], r["id"].as_str().unwrap_or("")))).flatten();
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            let micros = dexto_shared::money::Micros(r["balance_micros"].as_i64().unwrap_or(0));
            json!({"id": r["id"], "email": r["email"], "status": r["status"], "created_at": r["created_at"], "balance_usd": micros.as_json_usd()})
        })
        .collect();
    ok_json(200, &json!({"data": data, "next_cursor": next}))
}

pub async fn keys(env: &Env, user_id: &str) -> AdminResult {
    let data: Vec<Value> = keystore::list(env, user_id)
        .await?
        .iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "status": k.status, "display": k.display(), "scopes": k.scope_list(),
                "created_at": k.created_at, "last_used_at": k.last_used_at, "revoked_at": k.revoked_at,
                "expires_at": k.expires_at, "allowed_models": models_from_storage(k.allowed_models.as_deref()), "rate_limit_per_minute": k.rate_limit_per_minute,
            })
        })
        .collect();
    ok_json(200, &json!({"data": data}))
}
