//! What the wallet projects after replying: the outbox (→ D1), the upstream
//! key's limit sync, keys' last use, and the backoff of failing steps. The
//! outbox's length, the pending limit sync and the retry schedule are mirrored
//! in memory (memory.rs), so a projection pass with nothing failing reads only
//! the outbox itself.
//!
//! Keys' last use lives in memory only: a use is projected to
//! `api_keys.last_used_at` at most once a minute per key (key_use.rs), and an
//! incarnation that ends before that loses at most that minute of a display
//! hint — never billing or access. (The `key_use` table of earlier versions is
//! read once, so what it held is still projected.)

use super::{int, OutboxRow, Store};
use dexto_shared::money::Micros;
use serde::Deserialize;
use std::cell::RefMut;
use std::collections::HashMap;
use worker::Result;

impl Store {
    /// The oldest entries D1 does not have yet.
    pub fn outbox(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let after = self.mem.borrow().projected_through;
        self.sql.exec("SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", vec![int(after), int(limit)])?.to_array()
    }

    /// How many entries D1 does not have yet.
    pub fn outbox_len(&self) -> Result<u64> {
        if let Some(n) = self.mem.borrow().outbox_len {
            return Ok(n);
        }
        let after = self.mem.borrow().projected_through;
        let n = self.count("SELECT COUNT(*) AS n FROM outbox WHERE seq > ?", vec![int(after)])?;
        self.mem.borrow_mut().outbox_len = Some(n);
        Ok(n)
    }

    /// Records that D1 has the `count` oldest pending entries, through `seq`.
    /// Their rows are deleted by the next balance change, in its own
    /// transaction (`drop_projected`), not by a commit of their own: a row
    /// that outlives a restart is projected again, and a replayed projection
    /// changes nothing (outbox.rs).
    pub fn mark_projected(&self, seq: i64, count: u64) {
        let mut mem = self.mem.borrow_mut();
        mem.projected_through = mem.projected_through.max(seq);
        if let Some(n) = mem.outbox_len.as_mut() {
            *n = n.saturating_sub(count);
        }
    }

    /// Deletes the rows of entries D1 has (see `mark_projected`).
    pub(super) fn drop_projected(&self) -> Result<()> {
        let through = self.mem.borrow().projected_through;
        if through > self.mem.borrow().dropped_through {
            self.sql.exec("DELETE FROM outbox WHERE seq <= ?", vec![int(through)])?;
            self.mem.borrow_mut().dropped_through = through;
        }
        Ok(())
    }

    /// Records that the upstream key's limit must follow `balance` (the sequence
    /// number is the token: only the newest request is ever cleared).
    pub fn request_limit_sync(&self, balance: Micros, token: i64) -> Result<()> {
        self.sql.exec("INSERT OR REPLACE INTO limit_sync (id, balance, token) VALUES (1, ?, ?)", vec![int(balance.0), int(token)])?;
        self.mem.borrow_mut().limit_sync = Some(Some((balance, token)));
        Ok(())
    }

    pub fn pending_limit_sync(&self) -> Result<Option<(Micros, i64)>> {
        if let Some(pending) = self.mem.borrow().limit_sync {
            return Ok(pending);
        }
        #[derive(Deserialize)]
        struct Row {
            balance: i64,
            token: i64,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT balance, token FROM limit_sync WHERE id = 1", None)?.to_array()?;
        let pending = rows.into_iter().next().map(|r| (Micros(r.balance), r.token));
        self.mem.borrow_mut().limit_sync = Some(pending);
        Ok(pending)
    }

    pub fn clear_limit_sync(&self, token: i64) -> Result<()> {
        self.sql.exec("DELETE FROM limit_sync WHERE id = 1 AND token = ?", vec![int(token)])?;
        let mut mem = self.mem.borrow_mut();
        if mem.limit_sync.is_some_and(|p| p.is_some_and(|(_, t)| t == token)) {
            mem.limit_sync = Some(None);
        }
        Ok(())
    }

    /// Failing steps and when each may run again, read once per incarnation.
    fn retries(&self) -> Result<RefMut<'_, HashMap<String, i64>>> {
        if self.mem.borrow().retries.is_none() {
            #[derive(Deserialize)]
            struct Row {
                step: String,
                next_at: i64,
            }
            let rows: Vec<Row> = self.sql.exec("SELECT step, next_at FROM retries", None)?.to_array()?;
            self.mem.borrow_mut().retries = Some(rows.into_iter().map(|r| (r.step, r.next_at)).collect());
        }
        Ok(RefMut::map(self.mem.borrow_mut(), |m| m.retries.as_mut().expect("loaded")))
    }

    /// When a failed background step may run again (None: not failing).
    pub fn retry_at(&self, step: &str) -> Result<Option<i64>> {
        Ok(self.retries()?.get(step).copied())
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
        self.retries()?.insert(step.to_string(), next_at);
        Ok(failures)
    }

    pub fn step_succeeded(&self, step: &str) -> Result<()> {
        self.sql.exec("DELETE FROM retries WHERE step = ?", vec![step.into()])?;
        self.retries()?.remove(step);
        Ok(())
    }

    /// The earliest retry of any failing step.
    pub fn next_retry(&self) -> Result<Option<i64>> {
        Ok(self.retries()?.values().copied().min())
    }

    /// Keys' last use, in memory (module docs), seeded once from the old table.
    fn key_use(&self) -> Result<RefMut<'_, HashMap<String, (i64, i64)>>> {
        if self.mem.borrow().key_use.is_none() {
            #[derive(Deserialize)]
            struct Row {
                key_id: String,
                used_at: i64,
                flushed_at: i64,
            }
            let rows: Vec<Row> = self.sql.exec("SELECT key_id, used_at, flushed_at FROM key_use", None)?.to_array()?;
            if !rows.is_empty() {
                self.sql.exec("DELETE FROM key_use", None)?; // now in memory (module docs)
            }
            self.mem.borrow_mut().key_use = Some(rows.into_iter().map(|r| (r.key_id, (r.used_at, r.flushed_at))).collect());
        }
        Ok(RefMut::map(self.mem.borrow_mut(), |m| m.key_use.as_mut().expect("loaded")))
    }

    /// Notes that a key was used (projected to `api_keys.last_used_at` in batches).
    pub fn touch_key(&self, key_id: &str, now_ms: i64) -> Result<()> {
        self.key_use()?.entry(key_id.to_string()).or_insert((0, 0)).0 = now_ms;
        Ok(())
    }

    /// Keys used since their last projection: (key id, used at, flushed at).
    pub fn unflushed_key_use(&self) -> Result<Vec<(String, i64, i64)>> {
        Ok(self.key_use()?.iter().filter(|(_, (used, flushed))| used > flushed).map(|(k, (used, flushed))| (k.clone(), *used, *flushed)).collect())
    }

    pub fn mark_key_use_flushed(&self, key_id: &str, at: i64) -> Result<()> {
        if let Some(entry) = self.key_use()?.get_mut(key_id) {
            entry.1 = at;
        }
        Ok(())
    }
}
