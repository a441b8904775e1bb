//! The wallet object's `/plan` operation, as the billing Worker sends it and
//! the object answers (the included bucket's moves: docs/ARCHITECTURE.md,
//! "Plans").

use crate::money::Micros;
use serde::{Deserialize, Serialize};

/// `POST /plan`: moves of the included bucket (docs/ARCHITECTURE.md,
/// "Plans"), applied in order in one turn, each once by its reference.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanRequest {
    pub user_id: String,
    pub now_ms: i64,
    pub steps: Vec<PlanStep>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStep {
    /// A period's (or an upgrade's) included credit.
    Grant { reference: String, amount: Micros, reason: String },
    /// A period end: what is not kept (rollover) nor held expires.
    Expire { reference: String, keep: Micros },
    /// The plan's default limits from now on (none: the gateway's defaults).
    Limits(PlanLimits),
    /// A refunded or lost-dispute plan invoice: its grant (up to a cumulative
    /// `target`), as far as unspent; applied once per `<group>:<target>`.
    TakeBack { group: String, target: Micros },
}

/// A plan's default limits as the wallet applies them at admission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLimits {
    pub rate_limit_per_minute: Option<u32>,
    pub max_concurrent: Option<u32>,
    /// A monthly spend cap on the user (owner `plan`), beside their own and an operator's.
    #[serde(default)]
    pub monthly_cap: Option<Micros>,
}

/// What `/plan` answers: the buckets after, and per step the amount it moved
/// (None: a replay).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOutcome {
    pub balance: Micros,
    pub included: Micros,
    pub moved: Vec<Option<Micros>>,
}
