//! Holds and the terms their exchanges are billed by. Open holds are mirrored in memory
//! (memory.rs): admission sums them on every request.

use super::memory::HoldMemo;
use super::{int, ExchangeRow, Store};
use dexto_shared::money::Micros;
use dexto_shared::wallet::X402_KEY_ID;
use dexto_shared::wallet::OpenHold;
use serde::Deserialize;
use std::cell::RefMut;
use std::collections::HashMap;
use worker::Result;

impl Store {
    /// The open holds, read from SQL once per incarnation.
    fn held(&self) -> Result<RefMut<'_, HashMap<String, HoldMemo>>> {
        if self.mem.borrow().holds.is_none() {
            #[derive(Deserialize)]
            struct Row {
                request_id: String,
                key_id: String,
                amount: i64,
                expires_at: i64,
                terms_apart: i64,
            }
            let rows: Vec<Row> = self.sql.exec("SELECT request_id, key_id, amount, expires_at, terms IS NULL AS terms_apart FROM holds", None)?.to_array()?;
            let holds = rows
                .into_iter()
                .map(|r| (r.request_id, HoldMemo { key_id: r.key_id, amount: Micros(r.amount), expires_at: r.expires_at, terms_apart: r.terms_apart != 0 }))
                .collect();
            self.mem.borrow_mut().holds = Some(holds);
        }
        Ok(RefMut::map(self.mem.borrow_mut(), |m| m.holds.as_mut().expect("loaded")))
    }

    /// Open holds total. A hold past its deadline still counts: it ends only
    /// in a settlement (the sweep), never by silently expiring. Keyless
    /// holds do not count: an x402 payment backs them, not the balance.
    pub fn held_total(&self) -> Result<Micros> {
        Ok(Micros(self.held()?.values().filter(|h| h.key_id != X402_KEY_ID).map(|h| h.amount.0).sum()))
    }

    /// What the upstream key may spend beyond what it has spent: the
    /// balance, plus the open keyless holds (their x402 payments, not the
    /// balance, pay for them).
    pub fn upstream_room(&self, balance: Micros) -> Result<Micros> {
        let keyless = Micros(self.held()?.values().filter(|h| h.key_id == X402_KEY_ID).map(|h| h.amount.0).sum());
        Ok(balance.max(Micros::ZERO).saturating_add(keyless))
    }

    /// Whether the open hold `request_id` is a keyless (x402) one.
    pub fn is_x402_hold(&self, request_id: &str) -> Result<bool> {
        Ok(self.held()?.get(request_id).is_some_and(|h| h.key_id == X402_KEY_ID))
    }

    /// Open holds of one key.
    /// What open holds reserve against `key_id`'s caps: its own, and those
    /// still open on keys it replaced (store/mod.rs, `current_key`).
    pub fn held_by_key(&self, key_id: &str) -> Result<Micros> {
        let mut total = 0;
        let holds: Vec<(String, i64)> = self.held()?.values().map(|h| (h.key_id.clone(), h.amount.0)).collect();
        for (key, amount) in holds {
            if key == key_id || self.current_key(&key)? == key_id {
                total += amount;
            }
        }
        Ok(Micros(total))
    }

    pub fn open_hold_count(&self) -> Result<u64> {
        Ok(self.held()?.len() as u64)
    }

    pub fn next_deadline(&self) -> Result<Option<i64>> {
        Ok(self.held()?.values().map(|h| h.expires_at).min())
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

    /// Moves a hold's deadline (heartbeat of a running exchange, or the
    /// sweep's next attempt).
    pub fn extend_hold(&self, request_id: &str, until_ms: i64) -> Result<()> {
        let mut held = self.held()?;
        self.sql.exec("UPDATE holds SET expires_at = ? WHERE request_id = ?", vec![int(until_ms), request_id.into()])?;
        if let Some(h) = held.get_mut(request_id) {
            h.expires_at = until_ms;
        }
        Ok(())
    }

    /// Places a hold with the terms its exchange is billed by (one row).
    pub fn put_hold(&self, request_id: &str, key_id: &str, amount: Micros, now_ms: i64, ttl_ms: i64, terms: &str) -> Result<()> {
        let mut held = self.held()?;
        self.sql.exec(
            "INSERT OR REPLACE INTO holds (request_id, key_id, amount, created_at, expires_at, terms) VALUES (?, ?, ?, ?, ?, ?)",
            vec![request_id.into(), key_id.into(), int(amount.0), int(now_ms), int(now_ms + ttl_ms), terms.into()],
        )?;
        held.insert(request_id.to_string(), HoldMemo { key_id: key_id.to_string(), amount, expires_at: now_ms + ttl_ms, terms_apart: false });
        Ok(())
    }

    /// Ends a hold (settled or released), its terms with it.
    pub fn drop_hold(&self, request_id: &str) -> Result<()> {
        let mut held = self.held()?;
        self.sql.exec("DELETE FROM holds WHERE request_id = ?", vec![request_id.into()])?;
        if held.get(request_id).is_none_or(|h| h.terms_apart) {
            self.sql.exec("DELETE FROM exchanges WHERE request_id = ?", vec![request_id.into()])?;
        }
        held.remove(request_id);
        Ok(())
    }

    /// The terms of an open hold's exchange (and, for a hold written before
    /// the id moved to key-value storage, its generation id).
    pub fn exchange(&self, request_id: &str) -> Result<Option<ExchangeRow>> {
        let rows: Vec<ExchangeRow> = self
            .sql
            .exec("SELECT terms, NULL AS generation_id, attempts FROM holds WHERE request_id = ? AND terms IS NOT NULL", vec![request_id.into()])?
            .to_array()?;
        if let Some(row) = rows.into_iter().next() {
            return Ok(Some(row));
        }
        let rows: Vec<ExchangeRow> = self
            .sql
            .exec("SELECT terms, generation_id, attempts FROM exchanges WHERE request_id = ?", vec![request_id.into()])?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// One more failed lookup of the generation the hold is billed by.
    pub fn count_attempt(&self, request_id: &str) -> Result<()> {
        let table = if self.held()?.get(request_id).is_none_or(|h| h.terms_apart) { "exchanges" } else { "holds" };
        self.sql.exec(&format!("UPDATE {table} SET attempts = attempts + 1 WHERE request_id = ?"), vec![request_id.into()])?;
        Ok(())
    }
}
