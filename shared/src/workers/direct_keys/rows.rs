//! The D1 rows of direct keys and their moves: reads, the limit target the
//! moves add up to, and the guarded insert of a move.

use super::{internal, DirectKey, Move};
use crate::db;
use crate::direct_funding::{self as funding, MoveKind};
use crate::http::now_ms;
use crate::error::GatewayError;
use crate::money::Micros;
use serde::Deserialize;
use worker::D1Database;

pub(super) const KEY_COLUMNS: &str = "id, user_id, upstream_hash, label, created_at";
pub(super) const MOVE_COLUMNS: &str = "id, user_id, key_id, kind, amount_micros, state";

pub(super) async fn active_key(database: &D1Database, user_id: &str) -> Result<Option<DirectKey>, GatewayError> {
    db::first(database, &format!("SELECT {KEY_COLUMNS} FROM direct_keys WHERE user_id = ?1 AND status = 'active'"), &[user_id.into()]).await
}

pub(super) async fn key_by_id(database: &D1Database, key_id: &str) -> Result<DirectKey, GatewayError> {
    db::first(database, &format!("SELECT {KEY_COLUMNS} FROM direct_keys WHERE id = ?1"), &[key_id.into()]).await?.ok_or_else(|| internal("move of an unknown key"))
}

pub(super) async fn find_move(database: &D1Database, id: &str) -> Result<Option<Move>, GatewayError> {
    db::first(database, &format!("SELECT {MOVE_COLUMNS} FROM direct_key_moves WHERE id = ?1"), &[id.into()]).await
}

/// The key's limit target: every move counted but pending funds (the wallet
/// may yet refuse them), save `completing`, a fund whose debit was applied.
/// Pending reclaims count: the key stops spending them before the wallet
/// gets them back.
pub(super) async fn target(database: &D1Database, key_id: &str, completing: Option<&str>) -> Result<Micros, GatewayError> {
    #[derive(Deserialize)]
    struct Total {
        kind: String,
        total: i64,
    }
    let totals: Vec<Total> = db::all(
        database,
        "SELECT kind, SUM(amount_micros) AS total FROM direct_key_moves WHERE key_id = ?1 AND (kind != 'fund' OR state = 'done' OR id = ?2) GROUP BY kind",
        &[key_id.into(), completing.map_or(worker::wasm_bindgen::JsValue::NULL, Into::into)],
    )
    .await?;
    let moves: Vec<(MoveKind, Micros)> = totals.iter().filter_map(|t| MoveKind::parse(&t.kind).map(|k| (k, Micros(t.total)))).collect();
    Ok(funding::target_limit(&moves))
}

/// Writes a move row, pending, only while the key is active (and, for a
/// reclaim, while what it takes back is still unspent: `spent` is the key's
/// counter in micro-USD). False when the condition failed.
pub(super) async fn insert_move(database: &D1Database, id: &str, key: &DirectKey, kind: MoveKind, amount: Micros, spent: Option<Micros>) -> Result<bool, GatewayError> {
    #[derive(Deserialize)]
    struct Id {
        #[allow(dead_code)]
        id: String,
    }
    let inserted: Option<Id> = db::returning(
        database,
        "INSERT INTO direct_key_moves (id, user_id, key_id, kind, amount_micros, state, created_at)
         SELECT ?1, ?2, ?3, ?4, ?5, 'pending', ?6
         WHERE EXISTS (SELECT 1 FROM direct_keys WHERE id = ?3 AND status = 'active')
           AND (?7 IS NULL OR (SELECT COALESCE(SUM(CASE kind WHEN 'fund' THEN amount_micros ELSE -amount_micros END), 0)
                               FROM direct_key_moves WHERE key_id = ?3 AND (kind != 'fund' OR state = 'done')) - ?7 >= ?5)
         ON CONFLICT(id) DO NOTHING RETURNING id",
        &[
            id.into(),
            key.user_id.as_str().into(),
            key.id.as_str().into(),
            kind.as_str().into(),
            db::ms(amount.0),
            db::ms(now_ms()),
            spent.map_or(worker::wasm_bindgen::JsValue::NULL, |s| db::ms(s.0)),
        ],
    )
    .await?;
    Ok(inserted.is_some())
}
