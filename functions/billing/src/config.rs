//! Billing settings from the Worker environment.

use dexto_shared::money::Micros;
use worker::Env;

pub struct BillingConfig {
    pub api_base: String,
    pub secret_key: String,
    pub webhook_secrets: Vec<String>,
    pub min_usd: i64,
    pub max_usd: i64,
    /// Where Checkout returns without a client `return_url`/`cancel_url`
    /// (None: this origin's dashboard billing page, see `checkout.rs`).
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// Origins a client's `return_url` may point at (RETURN_URL_ORIGINS, exact).
    pub return_origins: Vec<String>,
    pub subscription_price: Option<String>,
    pub subscription_credit: Micros,
    pub test_faults: bool,
    /// Reconciliation with Stripe: how far back each run looks
    /// (STRIPE_RECONCILE_LOOKBACK_DAYS, 7) and how old a payment or refund must
    /// be before a missing webhook counts as lost (STRIPE_RECONCILE_GRACE_SECONDS, 3600).
    pub reconcile_lookback_days: i64,
    pub reconcile_grace_secs: i64,
}

impl BillingConfig {
    pub fn from_env(env: &Env) -> BillingConfig {
        let var = |n: &str| env.var(n).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
        let secret = |n: &str| env.secret(n).ok().map(|v| v.to_string()).unwrap_or_default();
        let int = |n: &str, d: i64| var(n).and_then(|v| v.parse().ok()).unwrap_or(d);
        BillingConfig {
            api_base: var("STRIPE_API_BASE").unwrap_or_else(|| "https://api.stripe.com".into()).trim_end_matches('/').to_string(),
            secret_key: secret("STRIPE_SECRET_KEY"),
            webhook_secrets: secret("STRIPE_WEBHOOK_SECRET").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
            min_usd: int("CHECKOUT_MIN_USD", 5),
            max_usd: int("CHECKOUT_MAX_USD", 500),
            success_url: var("CHECKOUT_SUCCESS_URL"),
            cancel_url: var("CHECKOUT_CANCEL_URL"),
            return_origins: var("RETURN_URL_ORIGINS")
                .unwrap_or_else(|| "https://dexto.ai,https://app.dexto.ai".into())
                .split(',')
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            subscription_price: var("SUBSCRIPTION_PRICE_ID"),
            subscription_credit: var("SUBSCRIPTION_CREDIT_USD").and_then(|v| Micros::parse_usd_exact(&v).ok()).unwrap_or(Micros::ZERO),
            test_faults: var("BILLING_TEST_FAULTS").as_deref() == Some("1"),
            reconcile_lookback_days: int("STRIPE_RECONCILE_LOOKBACK_DAYS", 7).clamp(1, 90),
            reconcile_grace_secs: int("STRIPE_RECONCILE_GRACE_SECONDS", 3600).max(0),
        }
    }
}
