//! Device tokens (feature `workers`): what a 1.6.9–1.7.x CLI gets from a
//! device login instead of a session (see `device::DEVICE_TOKEN_PREFIX`).
//! Stored in D1 `device_tokens` as SHA-256 only; each may issue one key,
//! claimed by a single guarded UPDATE before the key is minted (so racing
//! requests mint once; a failure after the claim costs a new login).

use crate::db::{self, ms};
use crate::device;
use crate::error::{Credential, GatewayError};
use crate::http::now_ms;
use crate::session::SessionUser;

/// A verified device token: whose it is, and which row to claim against.
#[derive(Clone, Debug)]
pub struct DeviceGrant {
    token_hash: String,
}

/// Mints a device token for `user_id`, valid `DEVICE_TOKEN_TTL_SECS`; the
/// plaintext is returned once. Expired rows go a day later (the next mint).
pub async fn mint(env: &worker::Env, user_id: &str) -> Result<String, GatewayError> {
    let database = db::database(env)?;
    let now = now_ms();
    let token = device::new_device_token();
    db::run_idempotent(&database, "DELETE FROM device_tokens WHERE expires_at < ?1", &[ms(now - 86_400_000)]).await?;
    db::run(
        &database,
        "INSERT INTO device_tokens (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        &[device::device_code_hash(&token).into(), user_id.into(), ms(now), ms(now + device::DEVICE_TOKEN_TTL_SECS * 1000)],
    )
    .await?;
    Ok(token)
}

/// The user behind a live device token (401 when unknown or expired; a
/// suspended user is refused like every session).
pub async fn verify(env: &worker::Env, token: &str) -> Result<(SessionUser, DeviceGrant), GatewayError> {
    #[derive(serde::Deserialize)]
    struct Row {
        user_id: String,
        expires_at: i64,
    }
    let hash = device::device_code_hash(token);
    let sql = "SELECT user_id, expires_at FROM device_tokens WHERE token_hash = ?1";
    let row: Option<Row> = db::first(&db::database(env)?, sql, &[hash.as_str().into()]).await?;
    let row = row.ok_or(GatewayError::InvalidAuth)?;
    if row.expires_at <= now_ms() {
        return Err(GatewayError::Expired(Credential::Session));
    }
    // The user exists (the token was minted for them): this reads their status and e-mail.
    let user = crate::session::ensure_user(env, &row.user_id, "").await?;
    Ok((user, DeviceGrant { token_hash: hash }))
}

/// Claims the one key this token may issue; 403 once it has issued one.
pub async fn claim_key(env: &worker::Env, grant: &DeviceGrant) -> Result<(), GatewayError> {
    let claimed: Option<serde_json::Value> = db::returning(
        &db::database(env)?,
        "UPDATE device_tokens SET key_claimed_at = ?2 WHERE token_hash = ?1 AND key_claimed_at IS NULL AND expires_at > ?2 RETURNING token_hash",
        &[grant.token_hash.as_str().into(), ms(now_ms())],
    )
    .await?;
    claimed.map(|_| ()).ok_or_else(|| {
        GatewayError::Forbidden("This CLI device login already provisioned its key. Sign in again with `dexto login`, or use the dashboard (/dashboard).".into())
    })
}
