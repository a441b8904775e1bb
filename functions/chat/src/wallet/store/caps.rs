//! Spend caps and the settled spending they are checked against (per scope
//! and UTC window), in the wallet's storage. See shared/src/caps.rs.

use super::{int, Store};
use dexto_shared::caps::{Cap, CapUse, Scope, Window};
use dexto_shared::money::Micros;
use serde::Deserialize;
use worker::Result;

impl Store {
    pub fn set_cap(&self, scope: &Scope, window: Window, limit: Option<Micros>) -> Result<()> {
        match limit {
            Some(l) => self.sql.exec(
                "INSERT OR REPLACE INTO caps (scope, window, limit_micros) VALUES (?, ?, ?)",
                vec![scope.as_storage().into(), window.as_str().into(), int(l.0)],
            )?,
            None => self.sql.exec("DELETE FROM caps WHERE scope = ? AND window = ?", vec![scope.as_storage().into(), window.as_str().into()])?,
        };
        Ok(())
    }

    /// The caps on the user and, when given, on one key (None: every cap).
    pub fn caps(&self, key_id: Option<&str>) -> Result<Vec<Cap>> {
        #[derive(Deserialize)]
        struct Row {
            scope: String,
            window: String,
            limit_micros: i64,
        }
        let rows: Vec<Row> = match key_id {
            Some(k) => self
                .sql
                .exec("SELECT scope, window, limit_micros FROM caps WHERE scope IN ('user', ?)", vec![format!("key:{k}").into()])?
                .to_array()?,
            None => self.sql.exec("SELECT scope, window, limit_micros FROM caps ORDER BY scope, window", None)?.to_array()?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|r| Some(Cap { scope: Scope::from_storage(&r.scope)?, window: Window::parse(&r.window)?, limit: Micros(r.limit_micros) }))
            .collect())
    }

    /// Each cap with its window's settled spending and the open holds it covers.
    pub fn cap_uses(&self, caps: Vec<Cap>, now_ms: i64) -> Result<Vec<CapUse>> {
        #[derive(Deserialize)]
        struct Sum {
            total: Option<i64>,
        }
        caps.into_iter()
            .map(|cap| {
                let spent: Sum = self
                    .sql
                    .exec(
                        "SELECT SUM(micros) AS total FROM spend WHERE scope = ? AND window = ? AND window_start = ?",
                        vec![cap.scope.as_storage().into(), cap.window.as_str().into(), int(cap.window.start(now_ms))],
                    )?
                    .one()?;
                let held: Sum = match &cap.scope {
                    Scope::User => self.sql.exec("SELECT SUM(amount) AS total FROM holds", None)?.one()?,
                    Scope::Key(k) => self.sql.exec("SELECT SUM(amount) AS total FROM holds WHERE key_id = ?", vec![k.as_str().into()])?.one()?,
                };
                Ok(CapUse { cap, spent: Micros(spent.total.unwrap_or(0)), held: Micros(held.total.unwrap_or(0)) })
            })
            .collect()
    }

    /// Counts a settled charge in every window of the user and the key.
    pub fn add_spend(&self, key_id: &str, at_ms: i64, amount: Micros) -> Result<()> {
        if amount.0 <= 0 {
            return Ok(());
        }
        for scope in [Scope::User, Scope::Key(key_id.to_string())] {
            for window in Window::ALL {
                self.sql.exec(
                    "INSERT INTO spend (scope, window, window_start, micros) VALUES (?, ?, ?, ?)
                     ON CONFLICT(scope, window, window_start) DO UPDATE SET micros = micros + excluded.micros",
                    vec![scope.as_storage().into(), window.as_str().into(), int(window.start(at_ms)), int(amount.0)],
                )?;
            }
        }
        // Past windows are never read again: keep about two months.
        self.sql.exec("DELETE FROM spend WHERE window != 'lifetime' AND window_start < ?", vec![int(at_ms - 62 * 86_400_000)])?;
        Ok(())
    }
}
