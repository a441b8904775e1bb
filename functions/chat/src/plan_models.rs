//! Plans that restrict models (docs/ARCHITECTURE.md, "Plans"): refused at
//! admission, before any hold, with a 403 in the caller's dialect naming the
//! plans that include the model.
//!
//! Cost: the plans are read once per isolate per `ALLOWED_MODELS_TTL_SECONDS`
//! (as the allow-list is); while no plan restricts models — the usual case —
//! nothing else is read. Otherwise a user's plan is read from D1 once per
//! isolate per the same TTL. Staleness bound: a plan change reaches every
//! isolate within that TTL. If D1 cannot be read, an expired copy is used;
//! with none the request fails closed.

use crate::config::Config;
use dexto_shared::error::GatewayError;
use dexto_shared::http::now_ms;
use dexto_shared::plans::{model_refusal, Plan, FREE_PLAN};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::Env;

/// Users' plans remembered per isolate, at most (then forgotten at once).
const MAX_USERS: usize = 10_000;

thread_local! {
    static PLANS: RefCell<Option<(Rc<Vec<Plan>>, i64)>> = const { RefCell::new(None) };
    static USERS: RefCell<HashMap<String, (String, i64)>> = RefCell::new(HashMap::new());
}

async fn plans(env: &Env, config: &Config) -> Result<Rc<Vec<Plan>>, GatewayError> {
    let now = now_ms();
    let cached = PLANS.with(|c| c.borrow().clone());
    if let Some((plans, loaded)) = &cached {
        if now - loaded < config.allowed_models_ttl_ms {
            return Ok(plans.clone());
        }
    }
    dexto_shared::ops::count(|o| o.d1_queries += 1);
    match dexto_shared::plan_store::all(&dexto_shared::db::database(env)?).await {
        Ok(all) => {
            let all = Rc::new(all);
            PLANS.with(|c| *c.borrow_mut() = Some((all.clone(), now)));
            Ok(all)
        }
        Err(e) => {
            dexto_shared::log::event("plans.load_failed", serde_json::json!({"error": format!("{e:?}"), "stale_copy": cached.is_some()}));
            cached.map(|(p, _)| p).ok_or(e)
        }
    }
}

async fn plan_of(env: &Env, config: &Config, user_id: &str) -> Result<String, GatewayError> {
    let now = now_ms();
    if let Some((plan, loaded)) = USERS.with(|u| u.borrow().get(user_id).cloned()) {
        if now - loaded < config.allowed_models_ttl_ms {
            return Ok(plan);
        }
    }
    dexto_shared::ops::count(|o| o.d1_queries += 1);
    let state = dexto_shared::plan_store::of_user(&dexto_shared::db::database(env)?, user_id).await?;
    let plan = state.map_or_else(|| FREE_PLAN.to_string(), |s| s.plan_id);
    USERS.with(|u| {
        let mut u = u.borrow_mut();
        if u.len() >= MAX_USERS {
            u.clear();
        }
        u.insert(user_id.to_string(), (plan.clone(), now));
    });
    Ok(plan)
}

/// The free plan's limits (rate, in flight, monthly cap), for a wallet never
/// told of a plan; None when the plans cannot be read (the wallet then keeps
/// the last it was given). From the same per-isolate copy as `check`.
pub async fn free_limits(env: &Env, config: &Config) -> Option<dexto_shared::wallet::PlanLimits> {
    let all = plans(env, config).await.ok()?;
    all.iter().find(|p| p.id == FREE_PLAN).map(Plan::limits)
}

/// Refuses the first of `models` the user's plan does not include.
pub async fn check<'a>(env: &Env, config: &Config, user_id: &str, models: impl IntoIterator<Item = &'a String>) -> Result<(), GatewayError> {
    let all = plans(env, config).await?;
    if all.iter().all(|p| p.models.is_none()) {
        return Ok(());
    }
    let id = plan_of(env, config, user_id).await?;
    let Some(plan) = all.iter().find(|p| p.id == id).or_else(|| all.iter().find(|p| p.id == FREE_PLAN)) else {
        return Ok(());
    };
    for model in models {
        if !plan.allows(model) {
            let allowing: Vec<String> = all.iter().filter(|p| p.allows(model)).map(|p| p.name.clone()).collect();
            return Err(GatewayError::Forbidden(model_refusal(plan, model, &allowing)));
        }
    }
    Ok(())
}
