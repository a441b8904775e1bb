//! The plan's default limits (rate, requests in flight), set by `/plan`
//! (`PlanStep::Limits`) when the user's plan changes and read at every
//! admission — from memory after the first read of an incarnation.

use super::Store;
use dexto_shared::wallet::PlanLimits;
use serde::Deserialize;
use worker::Result;

impl Store {
    pub fn plan_limits(&self) -> Result<PlanLimits> {
        if let Some(l) = self.mem.borrow().plan_limits {
            return Ok(l);
        }
        #[derive(Deserialize)]
        struct Row {
            limits: String,
        }
        let rows: Vec<Row> = self.sql.exec("SELECT limits FROM plan_limits WHERE id = 1", None)?.to_array()?;
        let limits = match rows.first() {
            Some(r) => serde_json::from_str(&r.limits)?,
            None => PlanLimits::default(),
        };
        self.mem.borrow_mut().plan_limits = Some(limits);
        Ok(limits)
    }

    pub fn set_plan_limits(&self, limits: PlanLimits) -> Result<()> {
        self.sql.exec("INSERT OR REPLACE INTO plan_limits (id, limits) VALUES (1, ?)", vec![serde_json::to_string(&limits)?.into()])?;
        self.mem.borrow_mut().plan_limits = Some(limits);
        Ok(())
    }
}
