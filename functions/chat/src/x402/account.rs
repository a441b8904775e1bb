//! The account a keyless payer's calls are booked on: the one its address
//! belongs to — the same wallet a Sign-In with Ethereum of that address
//! opens — created on first payment like a first sign-in creates it.

use dexto_shared::chain::Address;
use dexto_shared::error::GatewayError;
use dexto_shared::db;
use dexto_shared::{session, siwe_auth};
use worker::Env;

/// Read from D1 on every paid call (no isolate cache): an address's owner
/// changes when it is unlinked, and a stale owner would book the call on
/// the wrong account.
pub async fn for_address(env: &Env, address: &Address) -> Result<String, GatewayError> {
    let user_id = match siwe_auth::owner(env, address).await? {
        Some(owner) => owner,
        None => {
            let id = siwe_auth::wallet_first_id(address);
            session::ensure_user(env, &id, "").await?;
            // A concurrent first payment or sign-in may have linked it first:
            // `link` then reports the owner it found.
            match siwe_auth::link(env, &id, address).await {
                Ok(()) => id,
                Err(GatewayError::Conflict(_)) => siwe_auth::owner(env, address).await?.ok_or_else(|| GatewayError::Internal("address owner vanished".into()))?,
                Err(e) => return Err(e),
            }
        }
    };
    Ok(user_id)
}

/// Claims the authorization `reference` for `user_id` before its call is
/// served: one authorization pays for one account's call, whichever
/// account its address belongs to by the time it is presented again.
pub async fn claim(env: &Env, reference: &str, user_id: &str) -> Result<(), GatewayError> {
    #[derive(serde::Deserialize)]
    struct Claimed {
        user_id: String,
    }
    let claimed: Option<Claimed> = db::returning(
        &db::database(env)?,
        "INSERT INTO x402_claims (reference, user_id, claimed_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(reference) DO UPDATE SET reference = excluded.reference RETURNING user_id",
        &[reference.into(), user_id.into(), db::ms(dexto_shared::http::now_ms())],
    )
    .await?;
    match claimed {
        Some(c) if c.user_id == user_id => Ok(()),
        _ => Err(GatewayError::PaymentRefused {
            code: "x402_replayed",
            message: "This payment authorization was already presented for another request; sign a new one for this request.".into(),
        }),
    }
}

/// How long a claim is kept: far past any payment's settlement (a payment
/// settles within its validity, minutes); after it, the chain's used nonce
/// is what refuses the authorization.
const CLAIM_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// Drops claims older than `CLAIM_KEPT_MS` (the hourly cron); how many.
pub async fn prune_claims(env: &Env) -> Result<usize, GatewayError> {
    let cutoff = dexto_shared::http::now_ms() - CLAIM_KEPT_MS;
    let database = db::database(env)?;
    let result = database
        .prepare("DELETE FROM x402_claims WHERE claimed_at < ?1")
        .bind(&[db::ms(cutoff)])
        .map_err(|e| GatewayError::Internal(format!("x402 claims: {e}")))?
        .run()
        .await
        .map_err(|e| GatewayError::Internal(format!("x402 claims: {e}")))?;
    Ok(result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0))
}
