//! The account a keyless payer's calls are booked on: the one its address
//! belongs to — the same wallet a Sign-In with Ethereum of that address
//! opens — created on first payment like a first sign-in creates it; and
//! the claim of each authorization for that account.

use dexto_shared::chain::Address;
use dexto_shared::db;
use dexto_shared::error::GatewayError;
use dexto_shared::{session, siwe_auth};
use worker::Env;

/// The payer's account, with the authorization `reference` claimed for it
/// before its call is served: one authorization pays for one account's
/// call, whichever account its address belongs to by the time it is
/// presented again. One D1 statement for an address seen before (its owner
/// is read in the claim itself, fresh: no isolate cache, since an unlinked
/// address must not book on its old owner); a first payment also creates
/// the wallet-first account and links the address, as a first sign-in does.
pub async fn claim(env: &Env, address: &Address, reference: &str) -> Result<String, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Claimed {
        claimed_for: String,
        owner: Option<String>,
    }
    let first = siwe_auth::wallet_first_id(address);
    let claimed: Claimed = db::returning(
        &db::database(env)?,
        "INSERT INTO x402_claims (reference, user_id, claimed_at)
         VALUES (?1, COALESCE((SELECT user_id FROM wallet_addresses WHERE address = ?2), ?3), ?4)
         ON CONFLICT(reference) DO UPDATE SET reference = excluded.reference
         RETURNING user_id AS claimed_for, (SELECT user_id FROM wallet_addresses WHERE address = ?2) AS owner",
        &[reference.into(), address.checksummed().into(), first.as_str().into(), db::ms(dexto_shared::http::now_ms())],
    )
    .await?
    .ok_or_else(|| GatewayError::Internal("x402 claim returned nothing".into()))?;
    let owner = match claimed.owner {
        Some(owner) => owner,
        None => link_first(env, address, &first).await?,
    };
    if claimed.claimed_for != owner {
        return Err(dexto_shared::x402::replayed());
    }
    Ok(owner)
}

/// A first payment from `address`: its wallet-first account, linked. A
/// concurrent first payment or sign-in may have linked it first: `link`
/// then reports the owner it found.
async fn link_first(env: &Env, address: &Address, first: &str) -> Result<String, GatewayError> {
    session::ensure_user(env, first, "").await?;
    match siwe_auth::link(env, first, address).await {
        Ok(()) => Ok(first.to_string()),
        Err(GatewayError::Conflict(_)) => siwe_auth::owner(env, address).await?.ok_or_else(|| GatewayError::Internal("address owner vanished".into())),
        Err(e) => Err(e),
    }
}

/// How long a claim is kept: far past any payment's settlement (a payment
/// settles within its validity, minutes); after it, the chain's used nonce
/// is what refuses the authorization.
const CLAIM_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// Drops claims older than `CLAIM_KEPT_MS` (the hourly cron).
pub async fn prune_claims(env: &Env) -> Result<(), GatewayError> {
    let cutoff = dexto_shared::http::now_ms() - CLAIM_KEPT_MS;
    db::run_idempotent(&db::database(env)?, "DELETE FROM x402_claims WHERE claimed_at < ?1", &[db::ms(cutoff)]).await
}
