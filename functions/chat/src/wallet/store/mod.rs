//! The wallet's own SQLite storage (Durable Object SQL). Every method is
//! synchronous: consecutive `exec` calls with no `.await` between them commit as
//! one transaction (platform-facts: write coalescing), and no other request can
//! interleave. That is what makes hold/settle/credit atomic without locks.

use dexto_shared::money::Micros;
use dexto_shared::plans::buckets::bounded_included;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{Result, SqlStorage, SqlStorageValue as V};

/// Tables written on every request are `WITHOUT ROWID`: the row lives in its
/// primary key's b-tree, so a change writes one row, not a row and its key's
/// index (the platform bills rows written; docs/ARCHITECTURE.md, "What a
/// request costs"). Objects created before keep their rowid tables; the SQL
/// is the same for both.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wallet (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    user_id TEXT NOT NULL,
    balance INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    frozen INTEGER NOT NULL DEFAULT 0,
    suspended INTEGER NOT NULL DEFAULT 0
);
-- A hold, and what its exchange is billed by if its owner dies: the terms
-- (one row, written and removed by one statement each: the hold is the
-- request's first write and its end the settlement's; sweep.rs).
CREATE TABLE IF NOT EXISTS holds (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    terms TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Objects before terms moved into `holds` kept them here (with the
-- generation id, now in key-value storage: generation_ids.rs); still read
-- for holds written then.
CREATE TABLE IF NOT EXISTS exchanges (
    request_id TEXT PRIMARY KEY,
    terms TEXT NOT NULL,
    generation_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Open holds are few and mirrored in memory: an index on their deadline cost
-- a row written per hold and per heartbeat and bought nothing.
DROP INDEX IF EXISTS holds_deadline;
-- Revoked keys; a rotated one names its replacement (open exchanges on it count there).
CREATE TABLE IF NOT EXISTS revoked_keys (key_id TEXT PRIMARY KEY, replaced_by TEXT);
CREATE TABLE IF NOT EXISTS applied (
    reference TEXT PRIMARY KEY,
    balance_after INTEGER NOT NULL,
    applied_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS adjustments (group_id TEXT PRIMARY KEY, total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS key_use (key_id TEXT PRIMARY KEY, used_at INTEGER NOT NULL, flushed_at INTEGER NOT NULL DEFAULT 0);
-- Spend caps (scope `user` or `key:<id>`; window daily | monthly | lifetime).
CREATE TABLE IF NOT EXISTS caps (scope TEXT NOT NULL, window TEXT NOT NULL, limit_micros INTEGER NOT NULL, PRIMARY KEY (scope, window));
-- Caps an operator set (same shape): only the admin API changes these.
CREATE TABLE IF NOT EXISTS operator_caps (scope TEXT NOT NULL, window TEXT NOT NULL, limit_micros INTEGER NOT NULL, PRIMARY KEY (scope, window));
-- Settled spending, one row per scope: the current day's and month's (each
-- with its window's start) and the lifetime total (store/spend.rs).
CREATE TABLE IF NOT EXISTS spend_windows (scope TEXT PRIMARY KEY, daily_start INTEGER NOT NULL, daily INTEGER NOT NULL, monthly_start INTEGER NOT NULL, monthly INTEGER NOT NULL, lifetime INTEGER NOT NULL) WITHOUT ROWID;
-- Background steps that failed: how often in a row, and when to try again.
CREATE TABLE IF NOT EXISTS retries (step TEXT PRIMARY KEY, failures INTEGER NOT NULL, next_at INTEGER NOT NULL);
-- Prompts the upstream counted: fingerprint -> reported prompt tokens (store/prompts.rs).
CREATE TABLE IF NOT EXISTS counted_prompts (key_id TEXT NOT NULL, model TEXT NOT NULL, print TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, used_at INTEGER NOT NULL, PRIMARY KEY (key_id, model, print));
-- x402 payments backing keyless holds, until settled (store/x402.rs).
CREATE TABLE IF NOT EXISTS x402_payments (reference TEXT PRIMARY KEY, request_id TEXT NOT NULL, state TEXT NOT NULL, amount INTEGER, payment TEXT NOT NULL, valid_before INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT, tx TEXT, created_at INTEGER NOT NULL, settled_at INTEGER);
CREATE TABLE IF NOT EXISTS limit_sync (id INTEGER PRIMARY KEY CHECK (id = 1), balance INTEGER NOT NULL, token INTEGER NOT NULL);
-- The plan's default limits (plans; one row, absent: the gateway's defaults).
CREATE TABLE IF NOT EXISTS plan_limits (id INTEGER PRIMARY KEY CHECK (id = 1), limits TEXT NOT NULL);
-- Guarded debits refused, by reference: a refusal is final (store/refusals.rs).
-- A fall-back to free whose held included credit is to expire once its holds settle (store/held_rest.rs).
CREATE TABLE IF NOT EXISTS held_rest (id INTEGER PRIMARY KEY CHECK (id = 1), reference TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refused_debits (reference TEXT PRIMARY KEY, refusal TEXT NOT NULL) WITHOUT ROWID;
";

#[derive(Clone, Debug, Deserialize)]
pub struct WalletRow {
    pub user_id: String,
    pub balance: i64,
    /// The included bucket of `balance` (plans: the rest is purchased credit).
    pub included: i64,
    pub seq: i64,
    pub frozen: i64,
    pub suspended: i64,
}

/// The balance after a change: the total and its included bucket, and how
/// much the change moved the included bucket (what its ledger row records:
/// the bucket is kept within the balance, so this can differ from what the
/// caller asked for).
#[derive(Clone, Copy, Debug)]
pub struct Balances {
    pub total: Micros,
    pub included: Micros,
    pub included_moved: Micros,
}

/// The billing record of a held exchange (terms: `ExchangeTerms` JSON).
#[derive(Clone, Debug, Deserialize)]
pub struct ExchangeRow {
    pub terms: String,
    pub generation_id: Option<String>,
    pub attempts: i64,
}

/// A balance change waiting to be projected into D1 (see `outbox.rs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutboxRow {
    pub seq: i64,
    pub payload: String,
}

pub use x402::PaymentRow;

mod atomic;
mod background;
mod caps;
mod grant_periods;
mod held_rest;
mod holds;
mod memory;
mod plan_limits;
mod prompts;
mod refusals;
mod spend;
mod sql;
mod x402;

/// One per object (the ledger's): its memory of the rows must be the only one.
pub struct Store {
    sql: sql::Sql,
    mem: RefCell<memory::Memory>,
    /// The object's `DurableObjectStorage` (atomic.rs: `transactionSync`).
    raw: wasm_bindgen::JsValue,
    in_transaction: std::cell::Cell<bool>,
}

/// Columns added since objects were first created: (table, column, its
/// definition). An object that lacks one gets it on start — before plans,
/// no included bucket (all credit purchased: 0); before a hold carried its
/// terms, neither column (their open holds keep theirs in `exchanges`);
/// before rotations were followed, no replacement (keys rotated then count
/// their open exchanges where they were held).
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("wallet", "included", "INTEGER NOT NULL DEFAULT 0"),
    ("holds", "terms", "TEXT"),
    ("holds", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("revoked_keys", "replaced_by", "TEXT"),
];

fn add_missing_columns(sql: &SqlStorage) -> Result<()> {
    #[derive(Deserialize)]
    struct Column {
        name: String,
    }
    let mut seen: Vec<(&str, Vec<Column>)> = Vec::new();
    for (table, column, definition) in ADDED_COLUMNS {
        if !seen.iter().any(|(t, _)| *t == table) {
            seen.push((table, sql.exec(&format!("PRAGMA table_info({table})"), None)?.to_array()?));
        }
        let columns = &seen.iter().find(|(t, _)| *t == table).expect("read above").1;
        if !columns.iter().any(|c| c.name == column) {
            sql.exec(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"), None)?;
        }
    }
    Ok(())
}

fn int(v: i64) -> V {
    V::Integer(v)
}

impl Store {
    /// `raw`: the same storage as a JavaScript object (atomic.rs).
    pub fn open(sql: SqlStorage, raw: wasm_bindgen::JsValue) -> Result<Store> {
        sql.exec(SCHEMA, None)?;
        add_missing_columns(&sql)?;
        let store = Store { sql: sql::Sql::new(sql.clone()), mem: RefCell::default(), raw, in_transaction: Default::default() };
        // Whole or not at all: it adds the old rows to the new ones.
        store.atomically(|| spend::one_row_per_scope(&store.sql))?;
        Ok(store)
    }

    pub fn wallet(&self) -> Result<Option<WalletRow>> {
        if let Some(w) = &self.mem.borrow().wallet {
            return Ok(Some(w.clone()));
        }
        let rows: Vec<WalletRow> = self
            .sql
            .exec("SELECT user_id, balance, included, seq, frozen, suspended FROM wallet WHERE id = 1", None)?
            .to_array()?;
        let row = rows.into_iter().next();
        self.mem.borrow_mut().wallet = row.clone();
        Ok(row)
    }

    /// Changes the remembered wallet row (after the same change in SQL).
    fn remember_wallet(&self, change: impl FnOnce(&mut WalletRow)) {
        if let Some(w) = self.mem.borrow_mut().wallet.as_mut() {
            change(w);
        }
    }

    /// Creates the wallet row from D1's last known state; a no-op if another
    /// request initialised it while this one awaited D1.
    pub fn init_wallet(&self, user_id: &str, balance: Micros, included: Micros, seq: i64, suspended: bool, revoked: &[String]) -> Result<()> {
        if self.wallet()?.is_some() {
            return Ok(());
        }
        self.sql.exec(
            "INSERT INTO wallet (id, user_id, balance, included, seq, suspended) VALUES (1, ?, ?, ?, ?, ?)",
            vec![user_id.into(), int(balance.0), int(included.0), int(seq), int(suspended as i64)],
        )?;
        let row = WalletRow { user_id: user_id.to_string(), balance: balance.0, included: included.0, seq, frozen: 0, suspended: suspended as i64 };
        self.mem.borrow_mut().wallet = Some(row);
        for key_id in revoked {
            self.revoke_key(key_id, None)?;
        }
        Ok(())
    }

    /// A `SELECT COUNT(*) AS n …` query's answer.
    fn count(&self, sql: &str, bindings: Vec<V>) -> Result<u64> {
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let c: Count = self.sql.exec(sql, bindings)?.one()?;
        Ok(c.n as u64)
    }

    /// Revoked keys, each with the key that replaced it if it was rotated.
    fn revoked(&self) -> Result<std::cell::RefMut<'_, HashMap<String, Option<String>>>> {
        if self.mem.borrow().revoked.is_none() {
            #[derive(Deserialize)]
            struct Row {
                key_id: String,
                replaced_by: Option<String>,
            }
            let rows: Vec<Row> = self.sql.exec("SELECT key_id, replaced_by FROM revoked_keys", None)?.to_array()?;
            self.mem.borrow_mut().revoked = Some(rows.into_iter().map(|r| (r.key_id, r.replaced_by)).collect());
        }
        Ok(std::cell::RefMut::map(self.mem.borrow_mut(), |m| m.revoked.as_mut().expect("read above")))
    }

    pub fn is_key_revoked(&self, key_id: &str) -> Result<bool> {
        Ok(self.revoked()?.contains_key(key_id))
    }

    /// The key that now stands for `key_id`: itself, or the key its rotation
    /// (or its replacement's) made. An exchange still open on a rotated key
    /// is held and spent against that key's caps, which inherited the old
    /// key's spending at the rotation.
    pub fn current_key(&self, key_id: &str) -> Result<String> {
        let revoked = self.revoked()?;
        let mut key = key_id;
        for _ in 0..16 {
            match revoked.get(key) {
                Some(Some(next)) => key = next,
                _ => break,
            }
        }
        Ok(key.to_string())
    }

    pub fn revoke_key(&self, key_id: &str, replaced_by: Option<&str>) -> Result<()> {
        self.sql.exec(
            "INSERT INTO revoked_keys (key_id, replaced_by) VALUES (?, ?)
             ON CONFLICT (key_id) DO UPDATE SET replaced_by = COALESCE(replaced_by, excluded.replaced_by)",
            vec![key_id.into(), replaced_by.map_or(V::Null, Into::into)],
        )?;
        let mut revoked = self.revoked()?;
        let entry = revoked.entry(key_id.to_string()).or_default();
        if entry.is_none() {
            *entry = replaced_by.map(str::to_string);
        }
        Ok(())
    }

    pub fn set_flags(&self, suspended: Option<bool>, frozen: Option<bool>) -> Result<()> {
        if let Some(s) = suspended {
            self.sql.exec("UPDATE wallet SET suspended = ? WHERE id = 1", vec![int(s as i64)])?;
            self.remember_wallet(|w| w.suspended = s as i64);
        }
        if let Some(f) = frozen {
            self.sql.exec("UPDATE wallet SET frozen = ? WHERE id = 1", vec![int(f as i64)])?;
            self.remember_wallet(|w| w.frozen = f as i64);
        }
        Ok(())
    }

    /// The balance recorded when `reference` was first applied, if it was.
    pub fn applied(&self, reference: &str) -> Result<Option<Micros>> {
        #[derive(Deserialize)]
        struct Row {
            balance_after: i64,
        }
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT balance_after FROM applied WHERE reference = ?", vec![reference.into()])?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| Micros(r.balance_after)))
    }

    /// Applies a balance change exactly once: new balance (and, of `delta`,
    /// `included` moves the included bucket, kept within the balance:
    /// `buckets::bounded_included`), next sequence number, the
    /// idempotency record and the outbox entry, in one transaction. The
    /// payload is built by the caller from the sequence number and the
    /// balance it is given.
    pub fn apply_change(
        &self,
        reference: &str,
        delta: Micros,
        included: Micros,
        now_ms: i64,
        payload: impl FnOnce(i64, Balances) -> String,
    ) -> Result<Micros> {
        let wallet = self.wallet()?.ok_or("wallet not initialised")?;
        let balance = Micros(wallet.balance).saturating_add(delta);
        let wanted = Micros(wallet.included).saturating_add(included);
        let included_after = match wanted <= balance.max(Micros::ZERO) && wanted >= Micros::ZERO {
            true => wanted,
            // Rare (a debt, a purchased debit): only then read the payments on their way.
            false => bounded_included(wanted, balance, self.x402_on_the_way()?),
        };
        let included_moved = included_after.saturating_sub(Micros(wallet.included));
        let seq = wallet.seq + 1;
        self.sql.exec(
            "UPDATE wallet SET balance = ?, included = ?, seq = ? WHERE id = 1",
            vec![int(balance.0), int(included_after.0), int(seq)],
        )?;
        self.remember_wallet(|w| (w.balance, w.included, w.seq) = (balance.0, included_after.0, seq));
        let payload = payload(seq, Balances { total: balance, included: included_after, included_moved });
        self.sql.exec(
            "INSERT INTO applied (reference, balance_after, applied_at) VALUES (?, ?, ?)",
            vec![reference.into(), int(balance.0), int(now_ms)],
        )?;
        self.sql.exec("INSERT INTO outbox (seq, payload) VALUES (?, ?)", vec![int(seq), payload.into()])?;
        self.drop_projected()?;
        if let Some(n) = self.mem.borrow_mut().outbox_len.as_mut() {
            *n += 1;
        }
        Ok(balance)
    }

    /// The cumulative amount applied so far under an adjustment group.
    pub fn adjusted(&self, group: &str) -> Result<Micros> {
        #[derive(Deserialize)]
        struct Row {
            total: i64,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT total FROM adjustments WHERE group_id = ?", vec![group.into()])?.to_array()?;
        Ok(Micros(rows.first().map_or(0, |r| r.total)))
    }

    pub fn set_adjusted(&self, group: &str, total: Micros) -> Result<()> {
        self.sql.exec("INSERT OR REPLACE INTO adjustments (group_id, total) VALUES (?, ?)", vec![group.into(), int(total.0)])?;
        Ok(())
    }

}
