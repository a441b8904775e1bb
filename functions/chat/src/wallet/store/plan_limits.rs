//! The plan's default limits (rate, requests in flight, monthly cap), set by
//! `/plan` (`PlanStep::Limits`) when the user's plan changes and read at
//! every admission — from memory after the first read of an incarnation. A
//! wallet never told of a plan is on the free plan: its limits come with
//! each exchange (`ExchangeRequest::free_limits`), from the chat Worker's
//! copy of the plans, so an operator's change to them reaches such wallets
//! within `ALLOWED_MODELS_TTL_SECONDS`.

use super::Store;
use dexto_shared::wallet::PlanLimits;
use serde::Deserialize;
use worker::Result;

impl Store {
    /// The limits in force: the plan's this wallet was told of, else the
    /// free plan's as the last exchange brought them, else none (the
    /// gateway's defaults).
    pub fn plan_limits(&self) -> Result<PlanLimits> {
        let told = self.mem.borrow().plan_limits;
        let told = match told {
            Some(told) => told,
            None => {
                #[derive(Deserialize)]
                struct Row {
                    limits: String,
                }
                let rows: Vec<Row> = self.sql.exec("SELECT limits FROM plan_limits WHERE id = 1", None)?.to_array()?;
                let told = match rows.first() {
                    Some(r) => Some(serde_json::from_str(&r.limits)?),
                    None => None,
                };
                self.mem.borrow_mut().plan_limits = Some(told);
                told
            }
        };
        Ok(told.or(self.mem.borrow().free_limits).unwrap_or_default())
    }

    pub fn set_plan_limits(&self, limits: PlanLimits) -> Result<()> {
        self.sql.exec("INSERT OR REPLACE INTO plan_limits (id, limits) VALUES (1, ?)", vec![serde_json::to_string(&limits)?.into()])?;
        self.mem.borrow_mut().plan_limits = Some(Some(limits));
        Ok(())
    }

    /// Back on the free plan: its limits come with each exchange.
    pub fn forget_plan_limits(&self) -> Result<()> {
        self.sql.exec("DELETE FROM plan_limits WHERE id = 1", None)?;
        self.mem.borrow_mut().plan_limits = Some(None);
        Ok(())
    }

    /// The free plan's limits as an exchange brought them (memory only).
    pub fn note_free_limits(&self, limits: Option<PlanLimits>) {
        if limits.is_some() {
            self.mem.borrow_mut().free_limits = limits;
        }
    }
}
