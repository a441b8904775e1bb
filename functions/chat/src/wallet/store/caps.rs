//! Spend caps, in the wallet's storage, and what each has used (the settled
//! spending of spend.rs, the open holds). See shared/src/caps.rs.

use super::{int, Store};
use dexto_shared::caps::{Cap, CapUse, Owner, Scope, Window};
use dexto_shared::money::Micros;
use serde::Deserialize;
use worker::Result;

/// Each owner's caps live in their own table (same shape), so a change by
/// one owner can never touch the other's. A plan's cap is no table's: it
/// follows the plan (`plan_limits`).
fn table(owner: Owner) -> Option<&'static str> {
    match owner {
        Owner::User => Some("caps"),
        Owner::Operator => Some("operator_caps"),
        Owner::Plan => None,
    }
}

impl Store {
    pub fn set_cap(&self, owner: Owner, scope: &Scope, window: Window, limit: Option<Micros>) -> Result<()> {
        let table = table(owner).ok_or("a plan's cap changes with the plan")?;
        match limit {
            Some(l) => self.sql.exec(
                &format!("INSERT OR REPLACE INTO {table} (scope, window, limit_micros) VALUES (?, ?, ?)"),
                vec![scope.as_storage().into(), window.as_str().into(), int(l.0)],
            )?,
            None => self.sql.exec(&format!("DELETE FROM {table} WHERE scope = ? AND window = ?"), vec![scope.as_storage().into(), window.as_str().into()])?,
        };
        self.mem.borrow_mut().caps = None; // read again when next asked
        Ok(())
    }

    /// The caps on the user and, when given, on one key (None: every cap), of
    /// both owners. Mirrored in memory: admission asks on every request.
    pub fn caps(&self, key_id: Option<&str>) -> Result<Vec<Cap>> {
        if self.mem.borrow().caps.is_none() {
            let all = self.all_caps()?;
            self.mem.borrow_mut().caps = Some(all);
        }
        let plan = self.plan_limits()?.monthly_cap.map(|limit| Cap { scope: Scope::User, window: Window::Monthly, limit, owner: Owner::Plan });
        let mem = self.mem.borrow();
        let all = mem.caps.as_ref().expect("loaded");
        let mut caps: Vec<Cap> = match key_id {
            Some(k) => all.iter().filter(|c| matches!(&c.scope, Scope::User) || matches!(&c.scope, Scope::Key(id) if id == k)).cloned().collect(),
            None => all.clone(),
        };
        caps.extend(plan);
        Ok(caps)
    }

    fn all_caps(&self) -> Result<Vec<Cap>> {
        #[derive(Deserialize)]
        struct Row {
            scope: String,
            window: String,
            limit_micros: i64,
            owner: String,
        }
        let all = "SELECT scope, window, limit_micros, 'user' AS owner FROM caps
                   UNION ALL SELECT scope, window, limit_micros, 'operator' AS owner FROM operator_caps";
        let rows: Vec<Row> = self.sql.exec(&format!("SELECT * FROM ({all}) ORDER BY scope, window, owner"), None)?.to_array()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let owner = if r.owner == "operator" { Owner::Operator } else { Owner::User };
                Some(Cap { scope: Scope::from_storage(&r.scope)?, window: Window::parse(&r.window)?, limit: Micros(r.limit_micros), owner })
            })
            .collect())
    }

    /// A rotation: the replacement key inherits the old key's caps (of both
    /// owners) and the spending counted against them, so rotating neither
    /// lifts a cap nor restarts its count. Idempotent: what is already there
    /// is kept, so a repeated rotation request copies nothing twice.
    pub fn carry_key_over(&self, old_key: &str, new_key: &str) -> Result<()> {
        let (old, new) = (format!("key:{old_key}"), format!("key:{new_key}"));
        for table in [table(Owner::User), table(Owner::Operator)].into_iter().flatten() {
            self.sql.exec(
                &format!("INSERT OR IGNORE INTO {table} (scope, window, limit_micros) SELECT ?, window, limit_micros FROM {table} WHERE scope = ?"),
                vec![new.as_str().into(), old.as_str().into()],
            )?;
        }
        self.carry_spend_over(&old, &new)?;
        self.mem.borrow_mut().caps = None;
        Ok(())
    }

    /// Each cap with its window's settled spending and the open holds it covers.
    pub fn cap_uses(&self, caps: Vec<Cap>, now_ms: i64) -> Result<Vec<CapUse>> {
        caps.into_iter()
            .map(|cap| {
                let spent = self.spent(&cap.scope, cap.window, now_ms)?;
                let held = match &cap.scope {
                    Scope::User => self.held_total()?,
                    Scope::Key(k) => self.held_by_key(k)?,
                };
                Ok(CapUse { cap, spent, held })
            })
            .collect()
    }
}
