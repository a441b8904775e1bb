//! Settled spending, the figure caps are checked against: one row per scope
//! (the user, each key), its windows' arithmetic in `dexto_shared::spend_windows`.
//! A settlement writes two rows (its user's and its key's), where a row per
//! scope and window wrote six: rows written are what the platform bills an
//! object's storage by. Only this object writes them, so they are read from
//! SQL once per incarnation and kept in memory (memory.rs), like the holds
//! and the caps admission also reads on every request.

use super::{int, Store};
use dexto_shared::caps::{Scope, Window};
use dexto_shared::money::Micros;
use dexto_shared::spend_windows::SpendWindows;
use serde::Deserialize;
use std::cell::RefMut;
use std::collections::HashMap;
use super::sql::Sql;
use worker::Result;

impl Store {
    /// Every scope's windows, read from SQL once per incarnation.
    fn spend(&self) -> Result<RefMut<'_, HashMap<String, SpendWindows>>> {
        if self.mem.borrow().spend.is_none() {
            self.mem.borrow_mut().spend = Some(stored(&self.sql)?);
        }
        Ok(RefMut::map(self.mem.borrow_mut(), |m| m.spend.as_mut().expect("loaded")))
    }

    /// What `scope` has spent in the `window` running at `now_ms`.
    pub fn spent(&self, scope: &Scope, window: dexto_shared::caps::Window, now_ms: i64) -> Result<Micros> {
        Ok(self.spend()?.get(&scope.as_storage()).map_or(Micros::ZERO, |w| w.spent(window, now_ms)))
    }

    /// Counts a settled charge in every window of the user and the key (the
    /// key that replaced it, if it was rotated while the exchange ran).
    pub fn add_spend(&self, key_id: &str, at_ms: i64, amount: Micros) -> Result<()> {
        if amount.0 <= 0 {
            return Ok(());
        }
        let key_id = &self.current_key(key_id)?;
        let mut spend = self.spend()?;
        let charged: Vec<(String, SpendWindows)> = [Scope::User.as_storage(), Scope::Key(key_id.to_string()).as_storage()]
            .into_iter()
            .map(|scope| {
                let windows = spend.get(&scope).copied().unwrap_or_default().charged(at_ms, amount);
                (scope, windows)
            })
            .collect();
        store(&self.sql, &charged)?;
        spend.extend(charged);
        Ok(())
    }

    /// A rotated key's replacement starts from the old key's spending.
    pub fn carry_spend_over(&self, old_scope: &str, new_scope: &str) -> Result<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO spend_windows (scope, daily_start, daily, monthly_start, monthly, lifetime)
             SELECT ?, daily_start, daily, monthly_start, monthly, lifetime FROM spend_windows WHERE scope = ?",
            vec![new_scope.into(), old_scope.into()],
        )?;
        self.mem.borrow_mut().spend = None; // read again when next asked
        Ok(())
    }
}

/// Objects from before kept a row per scope, window and window start
/// (`spend`): once, on the object's start, each scope's latest day and month
/// and its lifetime total become its row, and the old table goes. Added to a
/// scope's row if it has one: a build from before, run again on this object
/// (a rollback), starts a new `spend` table with only what it settled.
pub(super) fn one_row_per_scope(sql: &Sql) -> Result<()> {
    #[derive(Deserialize)]
    struct Found {
        n: i64,
    }
    let found: Vec<Found> = sql.exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'spend'", None)?.to_array()?;
    if found.first().is_none_or(|f| f.n == 0) {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Old {
        scope: String,
        window: String,
        window_start: i64,
        micros: i64,
    }
    // Each scope's old rows in one record, then added to the row it has: the
    // window rule of `SpendWindows::merged`, as settlements use it.
    let mut folded: HashMap<String, SpendWindows> = HashMap::new();
    let old: Vec<Old> = sql.exec("SELECT scope, window, window_start, micros FROM spend", None)?.to_array()?;
    for row in old {
        let (start, micros) = (row.window_start, row.micros);
        let record = match Window::parse(&row.window) {
            Some(Window::Daily) => SpendWindows { daily_start: start, daily: micros, ..Default::default() },
            Some(Window::Monthly) => SpendWindows { monthly_start: start, monthly: micros, ..Default::default() },
            Some(Window::Lifetime) => SpendWindows { lifetime: micros, ..Default::default() },
            None => continue, // no build wrote another
        };
        let scope = folded.entry(row.scope).or_default();
        *scope = scope.merged(record);
    }
    let kept = stored(sql)?;
    let merged: Vec<(String, SpendWindows)> = folded
        .into_iter()
        .map(|(scope, old)| {
            let windows = kept.get(&scope).copied().unwrap_or_default().merged(old);
            (scope, windows)
        })
        .collect();
    store(sql, &merged)?;
    sql.exec("DROP TABLE spend", None)?;
    Ok(())
}

/// Every scope's row.
fn stored(sql: &Sql) -> Result<HashMap<String, SpendWindows>> {
    #[derive(Deserialize)]
    struct Row {
        scope: String,
        daily_start: i64,
        daily: i64,
        monthly_start: i64,
        monthly: i64,
        lifetime: i64,
    }
    let rows: Vec<Row> = sql.exec("SELECT scope, daily_start, daily, monthly_start, monthly, lifetime FROM spend_windows", None)?.to_array()?;
    Ok(rows
        .into_iter()
        .map(|r| (r.scope, SpendWindows { daily_start: r.daily_start, daily: r.daily, monthly_start: r.monthly_start, monthly: r.monthly, lifetime: r.lifetime }))
        .collect())
}

/// Writes each scope's whole row: one statement a settlement (two rows), as
/// few as the 100 parameters a statement may bind allow for the migration.
fn store(sql: &Sql, rows: &[(String, SpendWindows)]) -> Result<()> {
    for chunk in rows.chunks(16) {
        let values = chunk
            .iter()
            .flat_map(|(scope, w)| [scope.as_str().into(), int(w.daily_start), int(w.daily), int(w.monthly_start), int(w.monthly), int(w.lifetime)])
            .collect::<Vec<_>>();
        let placeholders = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        sql.exec(&format!("INSERT OR REPLACE INTO spend_windows (scope, daily_start, daily, monthly_start, monthly, lifetime) VALUES {placeholders}"), values)?;
    }
    Ok(())
}
