//! Fixed-window throttles on the platform's rate-limiting bindings
//! (`[[ratelimits]]` in a Worker's config): for actions that are rare for a
//! person and costly for us or a shared upstream (device-login starts, magic
//! links, upstream key rotation). Each limit is a (binding, key) pair, e.g.
//! per user and overall; the first exhausted one refuses with 429 and
//! `Retry-After` = the bindings' period. A binding that is not configured
//! does not limit (a deployment may leave one out on purpose).

use crate::error::GatewayError;
use worker::Env;

/// Every binding's window: the `period` in the configs (the platform allows
/// 10 or 60 seconds; ours all use 60).
pub const PERIOD_SECS: u32 = 60;

/// Counts one action against each `(binding, key)`; refuses when any limit is
/// spent. `what` names the action in the log line (never the key: it may be
/// an address).
pub async fn check(env: &Env, what: &str, limits: &[(&str, String)]) -> Result<(), GatewayError> {
    for (binding, key) in limits {
        let Ok(limiter) = env.rate_limiter(binding) else { continue };
        let outcome = limiter.limit(key.clone()).await.map_err(|e| GatewayError::Internal(format!("rate limiter {binding}: {e}")))?;
        if !outcome.success {
            crate::log::event("throttled", serde_json::json!({"what": what, "limit": binding}));
            return Err(GatewayError::RateLimited { retry_after_secs: PERIOD_SECS });
        }
    }
    Ok(())
}
