//! Settled spending, the figure caps are checked against: one row per scope
//! (the user, each key) holding the current day's and month's spending, each
//! with the start of its window, and the lifetime total. A settlement writes
//! two rows (its user's and its key's), where a row per scope and window
//! wrote six: rows written are what the platform bills an object's storage
//! by. A window that has passed reads as nothing spent and is replaced by
//! the next charge; a late charge for a window already replaced (a hold the
//! sweep settles after midnight) counts in the lifetime total only, as the
//! window it belongs to is never read again.

use super::{int, Store};
use dexto_shared::caps::{Scope, Window};
use dexto_shared::money::Micros;
use serde::Deserialize;
use worker::{Result, SqlStorage};

#[derive(Deserialize, Default)]
struct Row {
    daily_start: i64,
    daily: i64,
    monthly_start: i64,
    monthly: i64,
    lifetime: i64,
}

impl Row {
    fn spent(&self, window: Window, now_ms: i64) -> Micros {
        let (start, amount) = match window {
            Window::Daily => (self.daily_start, self.daily),
            Window::Monthly => (self.monthly_start, self.monthly),
            Window::Lifetime => return Micros(self.lifetime),
        };
        Micros(if start == window.start(now_ms) { amount } else { 0 })
    }
}

impl Store {
    /// What `scope` has spent in the `window` running at `now_ms`.
    pub fn spent(&self, scope: &Scope, window: Window, now_ms: i64) -> Result<Micros> {
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT daily_start, daily, monthly_start, monthly, lifetime FROM spend_windows WHERE scope = ?", vec![scope.as_storage().into()])?
            .to_array()?;
        Ok(rows.first().map_or(Micros::ZERO, |r| r.spent(window, now_ms)))
    }

    /// Counts a settled charge in every window of the user and the key.
    pub fn add_spend(&self, key_id: &str, at_ms: i64, amount: Micros) -> Result<()> {
        if amount.0 <= 0 {
            return Ok(());
        }
        let (day, month) = (Window::Daily.start(at_ms), Window::Monthly.start(at_ms));
        let mut values = Vec::new();
        for scope in [Scope::User, Scope::Key(key_id.to_string())] {
            values.extend([scope.as_storage().into(), int(day), int(amount.0), int(month), int(amount.0), int(amount.0)]);
        }
        // In an upsert's SET every expression reads the row as it was.
        self.sql.exec(
            "INSERT INTO spend_windows (scope, daily_start, daily, monthly_start, monthly, lifetime) VALUES (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)
             ON CONFLICT(scope) DO UPDATE SET
               daily = CASE WHEN excluded.daily_start = daily_start THEN daily + excluded.daily
                            WHEN excluded.daily_start > daily_start THEN excluded.daily ELSE daily END,
               daily_start = MAX(daily_start, excluded.daily_start),
               monthly = CASE WHEN excluded.monthly_start = monthly_start THEN monthly + excluded.monthly
                              WHEN excluded.monthly_start > monthly_start THEN excluded.monthly ELSE monthly END,
               monthly_start = MAX(monthly_start, excluded.monthly_start),
               lifetime = lifetime + excluded.lifetime",
            values,
        )?;
        Ok(())
    }

    /// A rotated key's replacement starts from the old key's spending.
    pub fn carry_spend_over(&self, old_scope: &str, new_scope: &str) -> Result<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO spend_windows (scope, daily_start, daily, monthly_start, monthly, lifetime)
             SELECT ?, daily_start, daily, monthly_start, monthly, lifetime FROM spend_windows WHERE scope = ?",
            vec![new_scope.into(), old_scope.into()],
        )?;
        Ok(())
    }
}

/// Objects from before kept a row per scope, window and window start
/// (`spend`): once, on the object's start, each scope's latest day and month
/// and its lifetime total become its row, and the old table goes.
pub(super) fn one_row_per_scope(sql: &SqlStorage) -> Result<()> {
    #[derive(Deserialize)]
    struct Found {
        n: i64,
    }
    let found: Vec<Found> = sql.exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'spend'", None)?.to_array()?;
    if found.first().is_none_or(|f| f.n == 0) {
        return Ok(());
    }
    let latest = |window: &str, column: &str| {
        format!("COALESCE((SELECT {column} FROM spend o WHERE o.scope = s.scope AND o.window = '{window}' ORDER BY o.window_start DESC LIMIT 1), 0)")
    };
    sql.exec(
        &format!(
            "INSERT OR IGNORE INTO spend_windows (scope, daily_start, daily, monthly_start, monthly, lifetime)
             SELECT s.scope, {}, {}, {}, {}, COALESCE((SELECT SUM(micros) FROM spend o WHERE o.scope = s.scope AND o.window = 'lifetime'), 0)
             FROM (SELECT DISTINCT scope FROM spend) s",
            latest("daily", "window_start"),
            latest("daily", "micros"),
            latest("monthly", "window_start"),
            latest("monthly", "micros"),
        ),
        None,
    )?;
    sql.exec("DROP TABLE spend", None)?;
    Ok(())
}
