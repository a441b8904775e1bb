//! Setting and listing spend caps (feature `workers`), for the session API
//! (a user's own caps) and the admin API alike: a key scope must name a key of
//! that user; the wallet object stores the cap and enforces it with every hold.

use crate::caps::{self, Owner, Scope, Window};
use crate::db;
use crate::error::GatewayError;
use crate::http::now_ms;
use crate::money::Micros;
use crate::wallet::CapChange;
use crate::wallet_client::WalletClient;
use worker::Env;

/// Applies `change` to `owner`'s caps (None: only list) and answers every cap
/// of both owners with its use now.
pub async fn apply(env: &Env, user_id: &str, owner: Owner, change: Option<(Scope, Window, Option<Micros>)>) -> Result<serde_json::Value, GatewayError> {
    if let Some((Scope::Key(key_id), _, _)) = &change {
        let sql = "SELECT id FROM api_keys WHERE id = ?1 AND user_id = ?2";
        let key: Option<serde_json::Value> = db::first(&db::database(env)?, sql, &[key_id.as_str().into(), user_id.into()]).await?;
        if key.is_none() {
            return Err(GatewayError::NotFound(format!("No key `{key_id}` on this account.")));
        }
    }
    let now = now_ms();
    let uses = WalletClient::for_user(env, user_id)?.caps(&CapChange { user_id: user_id.into(), owner, change, now_ms: now }).await?;
    Ok(caps::to_json(&uses, now))
}
