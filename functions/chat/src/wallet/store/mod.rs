//! The wallet's own SQLite storage (Durable Object SQL). Every method is
//! synchronous: consecutive `exec` calls with no `.await` between them commit as
//! one transaction (platform-facts: write coalescing), and no other request can
//! interleave. That is what makes hold/settle/credit atomic without locks.

use dexto_shared::money::Micros;
use dexto_shared::wallet::OpenHold;
use serde::{Deserialize, Serialize};
use worker::{Result, SqlStorage, SqlStorageValue as V};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wallet (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    user_id TEXT NOT NULL,
    balance INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    frozen INTEGER NOT NULL DEFAULT 0,
    suspended INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS holds (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
-- What a hold's exchange is billed by if its owner dies: the terms, and the
-- upstream generation id as soon as it is known (see sweep.rs).
CREATE TABLE IF NOT EXISTS exchanges (
    request_id TEXT PRIMARY KEY,
    terms TEXT NOT NULL,
    generation_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS holds_deadline ON holds (expires_at);
CREATE TABLE IF NOT EXISTS revoked_keys (key_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS applied (
    reference TEXT PRIMARY KEY,
    balance_after INTEGER NOT NULL,
    applied_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS adjustments (group_id TEXT PRIMARY KEY, total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS key_use (key_id TEXT PRIMARY KEY, used_at INTEGER NOT NULL, flushed_at INTEGER NOT NULL DEFAULT 0);
-- Spend caps (scope `user` or `key:<id>`; window daily | monthly | lifetime)
-- and settled spending per scope and window (window_start: UTC ms).
CREATE TABLE IF NOT EXISTS caps (scope TEXT NOT NULL, window TEXT NOT NULL, limit_micros INTEGER NOT NULL, PRIMARY KEY (scope, window));
-- Caps an operator set (same shape): only the admin API changes these.
CREATE TABLE IF NOT EXISTS operator_caps (scope TEXT NOT NULL, window TEXT NOT NULL, limit_micros INTEGER NOT NULL, PRIMARY KEY (scope, window));
CREATE TABLE IF NOT EXISTS spend (scope TEXT NOT NULL, window TEXT NOT NULL, window_start INTEGER NOT NULL, micros INTEGER NOT NULL, PRIMARY KEY (scope, window, window_start));
-- Background steps that failed: how often in a row, and when to try again.
CREATE TABLE IF NOT EXISTS retries (step TEXT PRIMARY KEY, failures INTEGER NOT NULL, next_at INTEGER NOT NULL);
-- Prompts the upstream counted: fingerprint -> reported prompt tokens (store/prompts.rs).
CREATE TABLE IF NOT EXISTS counted_prompts (key_id TEXT NOT NULL, model TEXT NOT NULL, print TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, used_at INTEGER NOT NULL, PRIMARY KEY (key_id, model, print));
CREATE TABLE IF NOT EXISTS limit_sync (id INTEGER PRIMARY KEY CHECK (id = 1), balance INTEGER NOT NULL, token INTEGER NOT NULL);
";

#[derive(Clone, Debug, Deserialize)]
pub struct WalletRow {
    pub user_id: String,
    pub balance: i64,
    pub seq: i64,
    pub frozen: i64,
    pub suspended: i64,
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

mod background;
mod caps;
mod prompts;
mod sql;

pub struct Store {
    sql: sql::Sql,
}

fn int(v: i64) -> V {
    V::Integer(v)
}

impl Store {
    pub fn open(sql: SqlStorage) -> Result<Store> {
        sql.exec(SCHEMA, None)?;
        Ok(Store::attach(sql))
    }

    /// A handle on storage whose schema `open` already created.
    pub fn attach(sql: SqlStorage) -> Store {
        Store { sql: sql::Sql::new(sql) }
    }

    pub fn wallet(&self) -> Result<Option<WalletRow>> {
        let rows: Vec<WalletRow> = self
            .sql
            .exec("SELECT user_id, balance, seq, frozen, suspended FROM wallet WHERE id = 1", None)?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// Creates the wallet row from D1's last known state; a no-op if another
    /// request initialised it while this one awaited D1.
    pub fn init_wallet(&self, user_id: &str, balance: Micros, seq: i64, suspended: bool, revoked: &[String]) -> Result<()> {
        if self.wallet()?.is_some() {
            return Ok(());
        }
        self.sql.exec(
            "INSERT INTO wallet (id, user_id, balance, seq, suspended) VALUES (1, ?, ?, ?, ?)",
            vec![user_id.into(), int(balance.0), int(seq), int(suspended as i64)],
        )?;
        for key_id in revoked {
            self.revoke_key(key_id)?;
        }
        Ok(())
    }

    /// Open holds total. A hold past its deadline still counts: it ends only
    /// in a settlement (the sweep), never by silently expiring.
    pub fn held_total(&self) -> Result<Micros> {
        #[derive(Deserialize)]
        struct Sum {
            total: Option<i64>,
        }
        let sum: Sum = self.sql.exec("SELECT SUM(amount) AS total FROM holds", None)?.one()?;
        Ok(Micros(sum.total.unwrap_or(0)))
    }

    pub fn open_hold_count(&self) -> Result<u64> {
        self.count("SELECT COUNT(*) AS n FROM holds")
    }

    /// A `SELECT COUNT(*) AS n …` query's answer.
    fn count(&self, sql: &str) -> Result<u64> {
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let c: Count = self.sql.exec(sql, None)?.one()?;
        Ok(c.n as u64)
    }

    pub fn open_holds(&self) -> Result<Vec<OpenHold>> {
        self.sql.exec("SELECT request_id, key_id, amount, created_at, expires_at FROM holds ORDER BY created_at", None)?.to_array()
    }

    /// Holds whose deadline has passed (their owner may be gone).
    pub fn due_holds(&self, now_ms: i64) -> Result<Vec<OpenHold>> {
        self.sql
            .exec(
                "SELECT request_id, key_id, amount, created_at, expires_at FROM holds WHERE expires_at <= ? ORDER BY expires_at LIMIT 50",
                vec![int(now_ms)],
            )?
            .to_array()
    }

    pub fn next_deadline(&self) -> Result<Option<i64>> {
        #[derive(Deserialize)]
        struct Row {
            at: Option<i64>,
        }
        let row: Row = self.sql.exec("SELECT MIN(expires_at) AS at FROM holds", None)?.one()?;
        Ok(row.at)
    }

    /// Moves a hold's deadline (heartbeat of a running exchange, or the
    /// sweep's next attempt).
    pub fn extend_hold(&self, request_id: &str, until_ms: i64) -> Result<()> {
        self.sql.exec("UPDATE holds SET expires_at = ? WHERE request_id = ?", vec![int(until_ms), request_id.into()])?;
        Ok(())
    }

    pub fn put_exchange(&self, request_id: &str, terms: &str) -> Result<()> {
        self.sql.exec("INSERT OR REPLACE INTO exchanges (request_id, terms) VALUES (?, ?)", vec![request_id.into(), terms.into()])?;
        Ok(())
    }

    pub fn set_generation(&self, request_id: &str, generation_id: &str) -> Result<()> {
        self.sql.exec(
            "UPDATE exchanges SET generation_id = ? WHERE request_id = ? AND generation_id IS NULL",
            vec![generation_id.into(), request_id.into()],
        )?;
        Ok(())
    }

    pub fn exchange(&self, request_id: &str) -> Result<Option<ExchangeRow>> {
        let rows: Vec<ExchangeRow> = self
            .sql
            .exec("SELECT terms, generation_id, attempts FROM exchanges WHERE request_id = ?", vec![request_id.into()])?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    pub fn count_attempt(&self, request_id: &str) -> Result<()> {
        self.sql.exec("UPDATE exchanges SET attempts = attempts + 1 WHERE request_id = ?", vec![request_id.into()])?;
        Ok(())
    }

    pub fn put_hold(&self, request_id: &str, key_id: &str, amount: Micros, now_ms: i64, ttl_ms: i64) -> Result<()> {
        self.sql.exec(
            "INSERT OR REPLACE INTO holds (request_id, key_id, amount, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            vec![request_id.into(), key_id.into(), int(amount.0), int(now_ms), int(now_ms + ttl_ms)],
        )?;
        Ok(())
    }

    /// Ends a hold (settled or released) and its exchange record, together.
    pub fn drop_hold(&self, request_id: &str) -> Result<()> {
        self.sql.exec("DELETE FROM holds WHERE request_id = ?", vec![request_id.into()])?;
        self.sql.exec("DELETE FROM exchanges WHERE request_id = ?", vec![request_id.into()])?;
        Ok(())
    }

    pub fn is_key_revoked(&self, key_id: &str) -> Result<bool> {
        let rows: Vec<serde_json::Value> = self
            .sql
            .exec("SELECT key_id FROM revoked_keys WHERE key_id = ?", vec![key_id.into()])?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    pub fn revoke_key(&self, key_id: &str) -> Result<()> {
        self.sql.exec("INSERT OR IGNORE INTO revoked_keys (key_id) VALUES (?)", vec![key_id.into()])?;
        Ok(())
    }

    pub fn set_flags(&self, suspended: Option<bool>, frozen: Option<bool>) -> Result<()> {
        if let Some(s) = suspended {
            self.sql.exec("UPDATE wallet SET suspended = ? WHERE id = 1", vec![int(s as i64)])?;
        }
        if let Some(f) = frozen {
            self.sql.exec("UPDATE wallet SET frozen = ? WHERE id = 1", vec![int(f as i64)])?;
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

    /// Applies a balance change exactly once: new balance, next sequence number,
    /// the idempotency record and the outbox entry, in one transaction. The
    /// payload is built by the caller from the sequence number it is given.
    pub fn apply_change(
        &self,
        reference: &str,
        delta: Micros,
        now_ms: i64,
        payload: impl FnOnce(i64, Micros) -> String,
    ) -> Result<Micros> {
        let wallet = self.wallet()?.ok_or("wallet not initialised")?;
        let balance = Micros(wallet.balance).saturating_add(delta);
        let seq = wallet.seq + 1;
        self.sql.exec("UPDATE wallet SET balance = ?, seq = ? WHERE id = 1", vec![int(balance.0), int(seq)])?;
        self.sql.exec(
            "INSERT INTO applied (reference, balance_after, applied_at) VALUES (?, ?, ?)",
            vec![reference.into(), int(balance.0), int(now_ms)],
        )?;
        self.sql.exec("INSERT INTO outbox (seq, payload) VALUES (?, ?)", vec![int(seq), payload(seq, balance).into()])?;
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
