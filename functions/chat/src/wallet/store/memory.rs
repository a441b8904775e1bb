//! What the object keeps in memory of its own storage, so the request path
//! reads no SQL for what only this object ever writes. Each part is loaded
//! from SQL on first use in an incarnation and then changed by the very
//! `Store` methods that write the row, after the write succeeded (a failed
//! write leaves memory as it was; a transaction rolled back drops all of it,
//! atomic.rs; a failed commit resets the object, memory included). Nothing else writes these tables: the object is their only
//! writer, on one thread.
//!
//! `key_use` is the exception that is memory only (see background.rs): the
//! last use of a key is a display hint, never used for billing or access.

use super::WalletRow;
use dexto_shared::caps::Cap;
use dexto_shared::money::Micros;
use dexto_shared::prompt_prefix::Counted;
use std::collections::HashMap;

/// An open hold as admission needs it.
#[derive(Clone, Debug)]
pub struct HoldMemo {
    pub key_id: String,
    pub amount: Micros,
    pub expires_at: i64,
    /// Its terms are in the `exchanges` table (written before they moved into `holds`).
    pub terms_apart: bool,
}

#[derive(Default)]
pub struct Memory {
    /// The wallet row (None: not read yet in this incarnation).
    pub wallet: Option<WalletRow>,
    /// Open holds by request id.
    pub holds: Option<HashMap<String, HoldMemo>>,
    /// Revoked keys → the key that replaced each (rotation), if any.
    pub revoked: Option<HashMap<String, Option<String>>>,
    /// Every cap, of both owners.
    pub caps: Option<Vec<Cap>>,
    /// Settled spending per scope (spend.rs).
    pub spend: Option<HashMap<String, dexto_shared::spend_windows::SpendWindows>>,
    /// Failing background steps: step → when it may run again.
    pub retries: Option<HashMap<String, i64>>,
    /// The pending upstream-limit sync: Some(None) when there is none.
    pub limit_sync: Option<Option<(Micros, i64)>>,
    /// Outbox entries not yet projected into D1 (seq > `projected_through`).
    pub outbox_len: Option<u64>,
    /// The last outbox seq D1 has (this incarnation; 0 after a restart, when
    /// projected entries not yet dropped are projected again, as no-ops).
    pub projected_through: i64,
    /// The last outbox seq whose row is deleted.
    pub dropped_through: i64,
    /// Keys' last use: key → (used at, projected at).
    pub key_use: Option<HashMap<String, (i64, i64)>>,
    /// Counted prompts by (key, model), most recent first (store/prompts.rs).
    pub counted: HashMap<(String, String), Vec<Counted>>,
    /// The limits of the plan this wallet was told of (outer None: not read
    /// yet in this incarnation; inner None: never told of a plan).
    pub plan_limits: Option<Option<dexto_shared::wallet::PlanLimits>>,
    /// The free plan's limits as the last exchange brought them (for a
    /// wallet never told of a plan).
    pub free_limits: Option<dexto_shared::wallet::PlanLimits>,
    /// A fall-back's held remainder to expire (store/held_rest.rs; outer
    /// None: not read yet).
    pub held_rest: Option<Option<String>>,
    /// When surplus counted prompts were last pruned.
    pub prompts_pruned_at: i64,
}
