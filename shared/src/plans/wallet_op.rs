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
    /// A period's (or an upgrade's) included credit; a period's grant names
    /// the end of the period it pays for (the `StopIfRenewedAfter` guard).
    Grant {
        reference: String,
        amount: Micros,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        period_end: Option<i64>,
    },
    /// A period end: what is not kept (rollover) nor held expires.
    Expire { reference: String, keep: Micros },
    /// The plan's default limits from now on (none: the gateway's defaults).
    Limits(PlanLimits),
    /// Back on the free plan: the wallet forgets its plan's limits and
    /// follows the free plan's as each exchange brings them.
    FreeLimits,
    /// A refunded or lost-dispute plan invoice: its grant (up to a cumulative
    /// `target`), as far as unspent; applied once per `<group>:<target>`.
    TakeBack { group: String, target: Micros },
    /// The steps after this one apply only if the wallet has granted no
    /// period ending after `period_end`: a fall-back to the free plan decided
    /// on a plan state read before a renewal was paid is out of date (the
    /// renewal's grant reached the wallet first), and changes nothing.
    StopIfRenewedAfter { period_end: i64 },
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
    /// A `StopIfRenewedAfter` step stopped the request there.
    #[serde(default)]
    pub stopped: bool,
}
