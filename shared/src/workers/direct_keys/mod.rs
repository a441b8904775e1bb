//! Direct OpenRouter keys, the BYOK path (feature `workers`): a key the user
//! calls OpenRouter with themselves, separate from the managed one the
//! gateway uses (`openrouter_keys.rs`), minted through the same management
//! API, sealed like it (`direct_keys` in D1), shown once.
//!
//! It is funded from the wallet, exactly. Each move is a `direct_key_moves`
//! row written *before* any money moves; its id is the wallet's `/credit`
//! reference, so completing it again moves nothing twice. A fund's debit is
//! guarded: the wallet applies it only if its available credit (balance
//! less open holds) covers it, checked in the same turn as the debit, and
//! refuses it for good otherwise; the move is then dropped (nothing moved).
//! The key's `limit` is a target derived from the moves
//! (`direct_funding::target_limit`), pending funds left out: the wallet may
//! yet refuse them. Orders: fund = move row → guarded wallet debit → limit;
//! reclaim = move row → limit lowered → wallet credit; revoke = key marked
//! revoked → its pending funds settled → disabled upstream → move row
//! (amount: what it did not spend) → limit → credit. A crash anywhere
//! leaves a pending move (or a revoked key without its move) that
//! `reconcile` (reconcile.rs) completes, exactly once.

use crate::db;
use crate::direct_funding::{self as funding, MoveKind};
use crate::error::GatewayError;
use crate::http::now_ms;
use crate::ids::new_id;
use crate::money::{Micros, Picos};
use crate::openrouter_keys::{self as upstream, UpstreamConfig};
use crate::wallet::{CreditRequest, DebitRefusal};
use crate::wallet_client::WalletClient;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{D1Database, Env, Method};


mod reconcile;
mod rows;
pub use reconcile::reconcile;
use rows::{active_key, find_move, insert_move, key_by_id, target, KEY_COLUMNS, MOVE_COLUMNS};
#[derive(Clone, Deserialize)]
pub struct DirectKey {
    pub id: String,
    pub user_id: String,
    upstream_hash: String,
    pub label: String,
    pub created_at: i64,
}

#[derive(Clone, Deserialize)]
struct Move {
    id: String,
    user_id: String,
    key_id: String,
    kind: String,
    amount_micros: i64,
    state: String,
}

impl Move {
    fn kind(&self) -> Result<MoveKind, GatewayError> {
        MoveKind::parse(&self.kind).ok_or_else(|| internal(format!("unknown move kind {}", self.kind)))
    }

    fn view(&self, replay: bool) -> Value {
        json!({"id": self.id, "key_id": self.key_id, "kind": self.kind, "amount_usd": Micros(self.amount_micros).as_json_usd(),
               "amount_micros": self.amount_micros, "state": self.state, "replay": replay})
    }
}

/// Where a test makes a move stop, as if the Worker died there (the identity
/// Worker honours it only with DEXTO_TEST_HOOKS=1): after the first of the
/// move's two steps (a fund's wallet debit, a reclaim's or revoke's limit).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Never,
    AfterFirstStep,
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("direct keys: {e}"))
}

fn config(env: &Env) -> Result<std::rc::Rc<UpstreamConfig>, GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Err(GatewayError::BadRequest("Direct OpenRouter keys are not enabled on this gateway.".into()));
    }
    Ok(config)
}




fn no_key() -> GatewayError {
    GatewayError::NotFound("You have no direct OpenRouter key: create one with POST /api/openrouter-provision.".into())
}



/// Sets the key's upstream `limit` to its target. Idempotent.
async fn apply_target(config: &UpstreamConfig, database: &D1Database, key: &DirectKey, completing: Option<&str>) -> Result<Micros, GatewayError> {
    let limit = target(database, &key.id, completing).await?;
    patch(config, key, json!({"limit": limit.as_json_usd()})).await?;
    Ok(limit)
}

async fn patch(config: &UpstreamConfig, key: &DirectKey, body: Value) -> Result<(), GatewayError> {
    let (status, _) = config.management(Method::Patch, &format!("/keys/{}", key.upstream_hash), Some(body)).await?;
    if status != 200 {
        return Err(internal(format!("PATCH key status {status}")));
    }
    Ok(())
}

/// The key's own spending counter (`usage` + `byok_usage`), exactly, and its record.
async fn spent(config: &UpstreamConfig, key: &DirectKey) -> Result<(Picos, Value), GatewayError> {
    let record = upstream::upstream_record(config, &key.upstream_hash).await?;
    Ok((upstream::spent_of(&record)?, record))
}

/// The wallet's side of a move, by its unique reference: sent again, a
/// no-op. A fund's debit is guarded: its refusal (and whether the wallet had
/// refused that reference before) is the answer.
async fn move_money(env: &Env, key: &DirectKey, m: &Move) -> Result<Option<(DebitRefusal, bool)>, GatewayError> {
    let kind = m.kind()?;
    if m.amount_micros == 0 {
        return Ok(None);
    }
    let request = CreditRequest {
        user_id: m.user_id.clone(),
        reference: kind.wallet_reference(&m.id),
        amount: kind.wallet_delta(Micros(m.amount_micros)),
        kind: kind.ledger_kind().into(),
        reason: Some(format!("direct OpenRouter key {}", key.label)),
        now_ms: now_ms(),
        payment: None,
    };
    let wallet = WalletClient::for_user(env, &m.user_id)?;
    if kind == MoveKind::Fund {
        let reply = wallet.debit_from_available(&request).await?;
        return Ok(reply.refused.map(|r| (r, reply.outcome.replay)));
    }
    wallet.credit(&request).await?;
    Ok(None)
}

/// A fund the wallet refused: nothing moved and nothing ever will (the
/// wallet refuses its reference for good), so the move goes — reconciliation
/// must not find it pending. The refusal, as the client's error.
async fn drop_refused(database: &D1Database, m: &Move, refusal: DebitRefusal, before: bool) -> Result<GatewayError, GatewayError> {
    db::run_idempotent(database, "DELETE FROM direct_key_moves WHERE id = ?1 AND state = 'pending'", &[m.id.as_str().into()]).await?;
    crate::log::event("direct_key.move_refused", json!({"user_id": m.user_id, "move_id": m.id, "amount_micros": m.amount_micros, "refusal": refusal}));
    Ok(match refusal {
        _ if before => GatewayError::Conflict(
            "A request with this Idempotency-Key was refused (not enough available credit, or the account was frozen or suspended) and moved nothing: \
             use a new Idempotency-Key to try again."
                .into(),
        ),
        DebitRefusal::Short { available } => GatewayError::InsufficientToMove { available, asked: Micros(m.amount_micros) },
        DebitRefusal::Frozen => GatewayError::WalletFrozen,
        DebitRefusal::Suspended => GatewayError::UserSuspended,
    })
}

/// Completes a move from wherever it stopped: each step is idempotent (the
/// limit is a target, the wallet step has a unique reference, `done` is a
/// guarded update), so the handler and reconciliation may both run it.
async fn complete(env: &Env, config: &UpstreamConfig, database: &D1Database, m: &Move, stop: Stop) -> Result<Move, GatewayError> {
    let key = key_by_id(database, &m.key_id).await?;
    let stopped = || Err(internal("test hook: stopped after the first step"));
    if m.kind()? == MoveKind::Fund {
        // The money leaves the wallet before the key may spend it, if the
        // wallet has it free (decided in the wallet's turn, not here).
        if let Some((refusal, before)) = move_money(env, &key, m).await? {
            return Err(drop_refused(database, m, refusal, before).await?);
        }
        if stop == Stop::AfterFirstStep {
            return stopped();
        }
        apply_target(config, database, &key, Some(&m.id)).await?;
    } else {
        // The key stops being able to spend it before the wallet gets it back.
        apply_target(config, database, &key, None).await?;
        if stop == Stop::AfterFirstStep {
            return stopped();
        }
        move_money(env, &key, m).await?;
    }
    db::run_idempotent(database, "UPDATE direct_key_moves SET state = 'done', done_at = ?2 WHERE id = ?1 AND state = 'pending'", &[m.id.as_str().into(), db::ms(now_ms())]).await?;
    crate::log::event("direct_key.move_done", json!({"user_id": m.user_id, "move_id": m.id, "kind": m.kind, "amount_micros": m.amount_micros}));
    find_move(database, &m.id).await?.ok_or_else(|| internal("move vanished"))
}

/// A move asked for again with the same Idempotency-Key: the same request
/// gets the first one's outcome (completed if it had stopped half-way); a
/// different request under a used key is refused.
async fn replay(env: &Env, config: &UpstreamConfig, database: &D1Database, m: Move, kind: MoveKind, amount: Option<Micros>) -> Result<Value, GatewayError> {
    if m.kind()? != kind || amount.is_some_and(|a| a.0 != m.amount_micros) {
        return Err(GatewayError::Conflict("This Idempotency-Key was used for a different request: use a new key for a new move.".into()));
    }
    let m = if m.state == "pending" { complete(env, config, database, &m, Stop::Never).await? } else { m };
    Ok(m.view(true))
}


/// `POST /api/openrouter-provision`: mints the user's direct key and returns
/// it — the only time it is ever shown — or, when they have one, its
/// metadata (never the key again). (status, body).
pub async fn provision(env: &Env, user_id: &str) -> Result<(u16, Value), GatewayError> {
    let config = config(env)?;
    let database = db::database(env)?;
    if let Some(key) = active_key(&database, user_id).await? {
        return Ok((200, status_of(&config, &database, &key).await?));
    }
    let body = json!({"name": format!("dexto-direct:{user_id}"), "limit": 0, "include_byok_in_limit": true});
    let (status, resp) = config.management(Method::Post, "/keys", Some(body)).await?;
    let (Some(hash), Some(secret)) = (resp.pointer("/data/hash").and_then(Value::as_str), resp.get("key").and_then(Value::as_str)) else {
        crate::log::event("direct_key.mint_failed", json!({"user_id": user_id, "status": status}));
        return Err(GatewayError::UpstreamUnavailable);
    };
    let label = resp.pointer("/data/label").and_then(Value::as_str).unwrap_or("sk-or-v1-…").to_string();
    let (sealed, enc_key_id) = config.seal(secret)?;
    let key = DirectKey { id: new_id("dk_"), user_id: user_id.into(), upstream_hash: hash.into(), label, created_at: now_ms() };
    #[derive(Deserialize)]
    struct Id {
        #[allow(dead_code)]
        id: String,
    }
    let stored: Option<Id> = db::returning(
        &database,
        "INSERT INTO direct_keys (id, user_id, upstream_hash, ciphertext, enc_key_id, label, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7) ON CONFLICT DO NOTHING RETURNING id",
        &[key.id.as_str().into(), user_id.into(), hash.into(), sealed.as_str().into(), enc_key_id.as_str().into(), key.label.as_str().into(), db::ms(key.created_at)],
    )
    .await?;
    if stored.is_none() {
        // A concurrent call stored its key first: that one stands, this one goes.
        upstream::delete_upstream(&config, hash).await;
        let existing = active_key(&database, user_id).await?.ok_or_else(|| internal("no active key after a lost race"))?;
        return Ok((200, status_of(&config, &database, &existing).await?));
    }
    crate::log::event("direct_key.minted", json!({"user_id": user_id, "key_id": key.id, "upstream_hash": hash}));
    let mut view = status_of(&config, &database, &key).await?;
    view["key"] = json!(secret);
    Ok((201, view))
}

/// What the user may know of their direct key (never the key): its funding
/// (from the moves here) and its limit and spending (the upstream's own
/// counters: no per-request rows exist for it).
async fn status_of(config: &UpstreamConfig, database: &D1Database, key: &DirectKey) -> Result<Value, GatewayError> {
    let funded = target(database, &key.id, None).await?;
    let (spent, record) = spent(config, key).await?;
    let limit = upstream::usd_field(&record, "limit")?;
    Ok(json!({
        "exists": true, "id": key.id, "label": key.label, "created_at": key.created_at, "source": "direct key",
        "funded_usd": funded.as_json_usd(), "funded_micros": funded.0,
        "spent_usd": spent.ceil_micros().as_json_usd(), "spent_micros": spent.ceil_micros().0,
        "unspent_usd": funding::unspent(funded, spent).as_json_usd(), "unspent_micros": funding::unspent(funded, spent).0,
        "limit_usd": limit.map_or(Value::Null, Micros::as_json_usd),
        "disabled": record.get("disabled").and_then(Value::as_bool).unwrap_or(false),
    }))
}

/// `GET /api/openrouter-provision` and the usage view: the direct key's
/// status, `{"exists": false}` without one (or when direct keys are off).
pub async fn status(env: &Env, user_id: &str) -> Result<Value, GatewayError> {
    let config = UpstreamConfig::from_env(env);
    if !config.per_user() {
        return Ok(json!({"exists": false, "enabled": false}));
    }
    let database = db::database(env)?;
    match active_key(&database, user_id).await? {
        Some(key) => status_of(&config, &database, &key).await,
        None => Ok(json!({"exists": false, "enabled": true})),
    }
}

fn move_id(user_id: &str, kind: MoveKind, idempotency_key: Option<&str>) -> String {
    idempotency_key.map_or_else(|| new_id("dkm_"), |k| funding::move_id(user_id, kind, k))
}

/// Moves `amount` of the wallet's credit to the direct key: refused (402)
/// when the wallet's available credit (balance less open holds) is short —
/// the wallet decides, in the turn of the debit (see `move_money`).
pub async fn fund(env: &Env, user_id: &str, amount: Micros, idempotency_key: Option<&str>, stop: Stop) -> Result<Value, GatewayError> {
    let config = config(env)?;
    let database = db::database(env)?;
    let id = move_id(user_id, MoveKind::Fund, idempotency_key);
    if let Some(m) = find_move(&database, &id).await? {
        return replay(env, &config, &database, m, MoveKind::Fund, Some(amount)).await;
    }
    let key = active_key(&database, user_id).await?.ok_or_else(no_key)?;
    if !insert_move(&database, &id, &key, MoveKind::Fund, amount, None).await? {
        return match find_move(&database, &id).await? {
            Some(m) => replay(env, &config, &database, m, MoveKind::Fund, Some(amount)).await,
            None => Err(GatewayError::Conflict(
                "Nothing was moved: the direct key was revoked meanwhile, or a request with this Idempotency-Key was refused. Retry with a new Idempotency-Key.".into(),
            )),
        };
    }
    let m = find_move(&database, &id).await?.ok_or_else(|| internal("move not stored"))?;
    Ok(complete(env, &config, &database, &m, stop).await?.view(false))
}

/// Takes unspent credit back from the direct key to the wallet: `amount`, or
/// all that is unspent. The key's own counter decides what is unspent.
pub async fn reclaim(env: &Env, user_id: &str, amount: Option<Micros>, idempotency_key: Option<&str>, stop: Stop) -> Result<Value, GatewayError> {
    let config = config(env)?;
    let database = db::database(env)?;
    let id = move_id(user_id, MoveKind::Reclaim, idempotency_key);
    if let Some(m) = find_move(&database, &id).await? {
        return replay(env, &config, &database, m, MoveKind::Reclaim, amount).await;
    }
    let key = active_key(&database, user_id).await?.ok_or_else(no_key)?;
    let (spent, _) = spent(&config, &key).await?;
    let funded = target(&database, &key.id, None).await?;
    let unspent = funding::unspent(funded, spent);
    let amount = amount.unwrap_or(unspent);
    if unspent == Micros::ZERO {
        return Err(GatewayError::BadRequest(format!("Nothing to reclaim: the key has spent all of its ${} of funding.", funded.usd_trimmed())));
    }
    if amount > unspent {
        return Err(GatewayError::BadRequest(format!("Only ${} of the key's funding is unspent: reclaim at most that.", unspent.usd_trimmed())));
    }
    if !insert_move(&database, &id, &key, MoveKind::Reclaim, amount, Some(spent.ceil_micros())).await? {
        return match find_move(&database, &id).await? {
            Some(m) => replay(env, &config, &database, m, MoveKind::Reclaim, Some(amount)).await,
            None => Err(GatewayError::Conflict("The key's funding changed while reclaiming (another move, or a revocation): retry.".into())),
        };
    }
    let m = find_move(&database, &id).await?.ok_or_else(|| internal("move not stored"))?;
    Ok(complete(env, &config, &database, &m, stop).await?.view(false))
}

/// Revokes the direct key: disabled upstream, and what it did not spend
/// goes back to the wallet. Answers the revoke move.
pub async fn revoke(env: &Env, user_id: &str, stop: Stop) -> Result<Value, GatewayError> {
    let config = config(env)?;
    let database = db::database(env)?;
    let key = active_key(&database, user_id).await?.ok_or_else(no_key)?;
    // Marked first: no move may start on it from here on, and a crash after
    // this leaves a revoked key without its move, which reconciliation finishes.
    db::run_idempotent(&database, "UPDATE direct_keys SET status = 'revoked', revoked_at = ?2 WHERE id = ?1 AND status = 'active'", &[key.id.as_str().into(), db::ms(now_ms())]).await?;
    crate::log::event("direct_key.revoked", json!({"user_id": user_id, "key_id": key.id}));
    Ok(finish_revoke(env, &config, &database, &key, stop).await?.view(false))
}

/// The rest of a revocation, from wherever it stopped. The amount is fixed
/// once, by the first writer of the key's one revoke move, after the key is
/// disabled (so its counter no longer grows but for calls already running).
async fn finish_revoke(env: &Env, config: &UpstreamConfig, database: &D1Database, key: &DirectKey, stop: Stop) -> Result<Move, GatewayError> {
    let id = funding::revoke_move_id(&key.id);
    let m = match find_move(database, &id).await? {
        Some(m) => m,
        None => {
            settle_pending_funds(env, config, database, key).await?;
            patch(config, key, json!({"disabled": true})).await?;
            let (spent, _) = spent(config, key).await?;
            let amount = funding::unspent(target(database, &key.id, None).await?, spent);
            db::run_idempotent(
                database,
                "INSERT INTO direct_key_moves (id, user_id, key_id, kind, amount_micros, state, created_at) VALUES (?1, ?2, ?3, 'revoke', ?4, 'pending', ?5)
                 ON CONFLICT(id) DO NOTHING",
                &[id.as_str().into(), key.user_id.as_str().into(), key.id.as_str().into(), db::ms(amount.0), db::ms(now_ms())],
            )
            .await?;
            find_move(database, &id).await?.ok_or_else(|| internal("revoke move not stored"))?
        }
    };
    if m.state == "done" {
        return Ok(m);
    }
    complete(env, config, database, &m, stop).await
}

/// Completes the revoked key's pending funds (no new one can start): each is
/// debited and done, or refused and dropped, so what the revocation gives
/// back counts exactly the funds the wallet paid.
async fn settle_pending_funds(env: &Env, config: &UpstreamConfig, database: &D1Database, key: &DirectKey) -> Result<(), GatewayError> {
    let pending: Vec<Move> =
        db::all(database, &format!("SELECT {MOVE_COLUMNS} FROM direct_key_moves WHERE key_id = ?1 AND kind = 'fund' AND state = 'pending'"), &[key.id.as_str().into()]).await?;
    for m in &pending {
        if let Err(e) = complete(env, config, database, m, Stop::Never).await {
            // Refused: dropped, settled all the same.
            if find_move(database, &m.id).await?.is_some() {
                return Err(e);
            }
        }
    }
    Ok(())
}
