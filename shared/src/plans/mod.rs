//! Plans: monthly subscriptions with included credit (docs/ARCHITECTURE.md,
//! "Plans"). A plan is data an operator defines (`/admin/plans`, D1 `plans`);
//! this module is its pure part: the definition and its validation, the
//! wallet's two buckets (`buckets.rs`), and the arithmetic of periods,
//! proration and rollover (`period.rs`). No Workers API here.

pub mod buckets;
pub mod change;
pub mod period;
pub mod wallet_op;

use crate::money::Micros;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The plan every account has without a subscription (migration 0021 creates it).
pub const FREE_PLAN: &str = "free";

/// How long a subscription whose renewal failed keeps its plan (`past_due`)
/// before the account falls back to the free plan, unless configured
/// (`PLAN_GRACE_DAYS`).
pub const DEFAULT_GRACE_DAYS: i64 = 7;

/// One plan, as stored in D1 `plans` and answered by `/admin/plans`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Stripe price the subscription is sold at (none for the free plan).
    pub stripe_price_id: Option<String>,
    /// What one period costs, in the currency's minor unit: an invoice that
    /// collected less (or in another currency) grants nothing.
    pub price_minor: i64,
    pub currency: String,
    /// Credit granted into the included bucket each period.
    pub included: Micros,
    /// Whether unused included credit survives the period end, and up to what.
    pub rollover: bool,
    pub rollover_cap: Micros,
    /// The plan's default limits (None: the gateway's defaults).
    pub rate_limit_per_minute: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub monthly_cap: Option<Micros>,
    /// Models the plan may use (None: every model).
    pub models: Option<Vec<String>>,
}

impl Plan {
    /// The limits the wallet applies at admission while the user is on this plan.
    pub fn limits(&self) -> crate::wallet::PlanLimits {
        crate::wallet::PlanLimits { rate_limit_per_minute: self.rate_limit_per_minute, max_concurrent: self.max_concurrent, monthly_cap: self.monthly_cap }
    }

    /// Whether a call to `model` is allowed on this plan.
    pub fn allows(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.iter().any(|x| x == model))
    }
}

fn usd(v: Option<&Value>, field: &str) -> Result<Micros, String> {
    match v {
        None | Some(Value::Null) => Ok(Micros::ZERO),
        Some(v) => match Micros::from_json_usd(v) {
            Ok(m) if m >= Micros::ZERO => Ok(m),
            _ => Err(format!("`{field}` must be a non-negative USD amount (e.g. \"20.00\").")),
        },
    }
}

fn small(v: Option<&Value>, field: &str) -> Result<Option<u32>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=1_000_000).contains(n))
            .map(|n| Some(n as u32))
            .ok_or_else(|| format!("`{field}` must be a whole number from 1 to 1000000, or null.")),
    }
}

/// Reads a plan from an operator's JSON (`POST /admin/plans`); every refusal
/// says which field to fix.
pub fn from_json(v: &Value) -> Result<Plan, String> {
    let text = |f: &str| v.get(f).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let id = text("id").ok_or("`id` is required (letters, digits, `-` and `_`).")?;
    if id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("`id` may hold only letters, digits, `-` and `_` (at most 64).".into());
    }
    let stripe_price_id = text("stripe_price_id");
    if id != FREE_PLAN && stripe_price_id.is_none() {
        return Err("`stripe_price_id` is required for a plan other than `free`.".into());
    }
    let price_minor = match v.get("price_cents") {
        None | Some(Value::Null) => 0,
        Some(p) => p.as_i64().filter(|c| *c >= 0).ok_or("`price_cents` must be a whole, non-negative number of cents.")?,
    };
    let currency = text("currency").unwrap_or_else(|| "usd".into()).to_ascii_lowercase();
    let rollover = v.get("rollover").and_then(Value::as_bool).unwrap_or(false);
    let models = match v.get("models") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|m| m.as_str().map(String::from).filter(|s| !s.is_empty()))
                .collect::<Option<Vec<_>>>()
                .ok_or("`models` must be a list of model ids, or null for every model.")?,
        ),
        Some(_) => return Err("`models` must be a list of model ids, or null for every model.".into()),
    };
    let monthly_cap = match v.get("monthly_cap_usd") {
        None | Some(Value::Null) => None,
        cap => Some(usd(cap, "monthly_cap_usd")?),
    };
    let included = usd(v.get("included_usd"), "included_usd")?;
    if id == FREE_PLAN && included > Micros::ZERO {
        // Included credit renews with a paid period; the free plan has none.
        return Err("The free plan cannot include credit: it has no billing period to renew it in. Give credit with a top-up, or include it in a paid plan.".into());
    }
    Ok(Plan {
        name: text("name").unwrap_or_else(|| id.clone()),
        id,
        stripe_price_id,
        price_minor,
        currency,
        included,
        rollover,
        rollover_cap: if rollover { usd(v.get("rollover_cap_usd"), "rollover_cap_usd")? } else { Micros::ZERO },
        rate_limit_per_minute: small(v.get("rate_limit_per_minute"), "rate_limit_per_minute")?,
        max_concurrent: small(v.get("max_concurrent"), "max_concurrent")?,
        monthly_cap,
        models,
    })
}

/// A plan as the API shows it (USD strings, the same field names `from_json` reads).
pub fn to_json(p: &Plan) -> Value {
    serde_json::json!({
        "id": p.id,
        "name": p.name,
        "stripe_price_id": p.stripe_price_id,
        "price_cents": p.price_minor,
        "currency": p.currency,
        "included_usd": p.included.as_json_usd(),
        "rollover": p.rollover,
        "rollover_cap_usd": p.rollover_cap.as_json_usd(),
        "rate_limit_per_minute": p.rate_limit_per_minute,
        "max_concurrent": p.max_concurrent,
        "monthly_cap_usd": p.monthly_cap.map(Micros::as_json_usd),
        "models": p.models,
    })
}

/// The split of a spendable balance, added beside the CLI's `credits_usd`
/// (which stays the total: included + purchased).
pub fn credit_fields(balance: Micros, included: Micros) -> Value {
    let purchased = Micros(balance.0 - included.0);
    serde_json::json!({
        "included_credits_usd": included.as_json_usd(),
        "purchased_credits_usd": purchased.as_json_usd(),
    })
}

/// What refuses a model the caller's plan does not include: names the plans that do.
pub fn model_refusal(plan: &Plan, model: &str, allowing: &[String]) -> String {
    let offer = if allowing.is_empty() {
        "No plan includes it.".to_string()
    } else {
        format!("Plans that include it: {}; change plan in the dashboard (Settings → Billing).", allowing.join(", "))
    };
    format!("The model `{model}` is not included in your plan `{}`. {offer}", plan.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_plan_and_writes_it_back() {
        let p = from_json(&json!({"id": "pro", "name": "Pro", "stripe_price_id": "price_pro", "price_cents": 2000,
            "included_usd": "20.00", "rollover": true, "rollover_cap_usd": "10", "models": ["a/b"], "max_concurrent": 8}))
        .unwrap();
        assert_eq!(p.included, Micros(20_000_000));
        assert_eq!(p.rollover_cap, Micros(10_000_000));
        assert!(p.allows("a/b") && !p.allows("c/d"));
        assert_eq!(from_json(&to_json(&p)).unwrap(), p);
    }

    #[test]
    fn refusals_name_the_field() {
        assert!(from_json(&json!({"id": "pro"})).unwrap_err().contains("stripe_price_id"));
        assert!(from_json(&json!({"id": "a b", "stripe_price_id": "p"})).unwrap_err().contains("`id`"));
        assert!(from_json(&json!({"id": "p", "stripe_price_id": "p", "included_usd": "-1"})).unwrap_err().contains("included_usd"));
        assert!(from_json(&json!({"id": "p", "stripe_price_id": "p", "models": "x"})).unwrap_err().contains("models"));
        assert!(from_json(&json!({"id": "free"})).is_ok());
        assert!(from_json(&json!({"id": "free", "included_usd": "5"})).unwrap_err().contains("cannot include credit"));
    }

    #[test]
    fn the_split_adds_up_to_the_balance() {
        let f = credit_fields(Micros(12_500_000), Micros(2_000_001));
        assert_eq!((f["included_credits_usd"].as_f64(), f["purchased_credits_usd"].as_f64()), (Some(2.000001), Some(10.499999)));
    }

    #[test]
    fn no_rollover_means_no_cap() {
        let p = from_json(&json!({"id": "p", "stripe_price_id": "x", "rollover": false, "rollover_cap_usd": "5"})).unwrap();
        assert_eq!(p.rollover_cap, Micros::ZERO);
    }
}
