//! What the wallet projects after replying: the outbox (→ D1), the upstream
//! key's limit sync, keys' last use, and the backoff of failing steps.

use super::{int, OutboxRow, Store};
use dexto_shared::money::Micros;
use serde::Deserialize;
use worker::Result;

impl Store {
    pub fn outbox(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        self.sql.exec("SELECT seq, payload FROM outbox ORDER BY seq LIMIT ?", vec![int(limit)])?.to_array()
    }

    pub fn outbox_len(&self) -> Result<u64> {
        self.count("SELECT COUNT(*) AS n FROM outbox")
    }

    /// Records that the upstream key's limit must follow `balance` (the sequence
    /// number is the token: only the newest request is ever cleared).
    pub fn request_limit_sync(&self, balance: Micros, token: i64) -> Result<()> {
        self.sql.exec("INSERT OR REPLACE INTO limit_sync (id, balance, token) VALUES (1, ?, ?)", vec![int(balance.0), int(token)])?;
        Ok(())
    }

    pub fn pending_limit_sync(&self) -> Result<Option<(Micros, i64)>> {
        #[derive(Deserialize)]
        struct Row {
            balance: i64,
            token: i64,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT balance, token FROM limit_sync WHERE id = 1", None)?.to_array()?;
        Ok(rows.into_iter().next().map(|r| (Micros(r.balance), r.token)))
    }

    pub fn clear_limit_sync(&self, token: i64) -> Result<()> {
        self.sql.exec("DELETE FROM limit_sync WHERE id = 1 AND token = ?", vec![int(token)])?;
        Ok(())
    }

    /// When a failed background step may run again (None: not failing).
    pub fn retry_at(&self, step: &str) -> Result<Option<i64>> {
        #[derive(Deserialize)]
        struct Row {
            next_at: i64,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT next_at FROM retries WHERE step = ?", vec![step.into()])?.to_array()?;
        Ok(rows.into_iter().next().map(|r| r.next_at))
    }

    /// Records a failure of `step`; returns how many in a row.
    pub fn step_failed(&self, step: &str, now_ms: i64) -> Result<u32> {
        #[derive(Deserialize)]
        struct Row {
            failures: i64,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT failures FROM retries WHERE step = ?", vec![step.into()])?.to_array()?;
        let failures = rows.first().map_or(0, |r| r.failures) as u32 + 1;
        let next_at = now_ms + dexto_shared::retry::backoff_ms(failures);
        self.sql.exec(
            "INSERT OR REPLACE INTO retries (step, failures, next_at) VALUES (?, ?, ?)",
            vec![step.into(), int(failures as i64), int(next_at)],
        )?;
        Ok(failures)
    }

    pub fn step_succeeded(&self, step: &str) -> Result<()> {
        self.sql.exec("DELETE FROM retries WHERE step = ?", vec![step.into()])?;
        Ok(())
    }

    /// The earliest retry of any failing step.
    pub fn next_retry(&self) -> Result<Option<i64>> {
        #[derive(Deserialize)]
        struct Row {
            at: Option<i64>,
        }
        let row: Row = self.sql.exec("SELECT MIN(next_at) AS at FROM retries", None)?.one()?;
        Ok(row.at)
    }

    /// Notes that a key was used (projected to `api_keys.last_used_at` in batches).
    pub fn touch_key(&self, key_id: &str, now_ms: i64) -> Result<()> {
        self.sql.exec(
            "INSERT INTO key_use (key_id, used_at) VALUES (?, ?) ON CONFLICT(key_id) DO UPDATE SET used_at = excluded.used_at",
            vec![key_id.into(), int(now_ms)],
        )?;
        Ok(())
    }

    /// Keys used since their last projection: (key id, used at, flushed at).
    pub fn unflushed_key_use(&self) -> Result<Vec<(String, i64, i64)>> {
        #[derive(Deserialize)]
        struct Row {
            key_id: String,
            used_at: i64,
            flushed_at: i64,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT key_id, used_at, flushed_at FROM key_use WHERE used_at > flushed_at", None)?.to_array()?;
        Ok(rows.into_iter().map(|r| (r.key_id, r.used_at, r.flushed_at)).collect())
    }

    pub fn mark_key_use_flushed(&self, key_id: &str, at: i64) -> Result<()> {
        self.sql.exec("UPDATE key_use SET flushed_at = ? WHERE key_id = ?", vec![int(at), key_id.into()])?;
        Ok(())
    }

    pub fn drop_outbox_through(&self, seq: i64) -> Result<()> {
        self.sql.exec("DELETE FROM outbox WHERE seq <= ?", vec![int(seq)])?;
        Ok(())
    }
}
