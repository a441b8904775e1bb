//! The account a keyless payer's calls are booked on: the one its address
//! belongs to — the same wallet a Sign-In with Ethereum of that address
//! opens — created on first payment like a first sign-in creates it.

use dexto_shared::chain::Address;
use dexto_shared::error::GatewayError;
use dexto_shared::{session, siwe_auth};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::Env;

thread_local! {
    /// address → account, per isolate: an address's owner changes only by
    /// unlinking, after which a payment books on the wallet-first account of
    /// the address (the stale entry at worst books one isolate's calls on the
    /// previous owner for the cache's lifetime).
    static OWNERS: RefCell<HashMap<Address, (String, i64)>> = RefCell::new(HashMap::new());
}

const CACHE_MS: i64 = 60_000;

pub async fn for_address(env: &Env, address: &Address) -> Result<String, GatewayError> {
    let now = dexto_shared::http::now_ms();
    if let Some(user) = OWNERS.with(|o| o.borrow().get(address).filter(|(_, at)| now - at < CACHE_MS).map(|(u, _)| u.clone())) {
        return Ok(user);
    }
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
    OWNERS.with(|o| o.borrow_mut().insert(*address, (user_id.clone(), now)));
    Ok(user_id)
}
