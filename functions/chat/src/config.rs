//! Settings read from the Worker environment: `[vars]` in wrangler.toml for
//! plain values, secrets (`.dev.vars` locally, `wrangler secret put` in
//! production) for keys. Read once per isolate: an isolate runs one version
//! of the Worker, whose vars and secrets cannot change under it, and each
//! `env.var` is a crossing into JavaScript (eleven of them, twice a request,
//! were 1–2% of the gateway's CPU).

use dexto_shared::money::Markup;
use dexto_shared::secret::Secret;
use std::rc::Rc;
use worker::Env;

#[derive(Clone)]
pub struct Config {
    pub upstream_base: String,
    /// The org key: used for the catalogue (and for chat when per-user keys are off).
    pub upstream_key: Secret<String>,
    pub markup: Markup,
    /// A hold's deadline while nothing heartbeats it; past it the sweep
    /// settles it if its exchange is not running (HOLD_TTL_SECONDS).
    pub hold_ttl_ms: i64,
    /// Least output a request clamped to its wallet still gets (OUTPUT_FLOOR_TOKENS).
    pub output_floor: u64,
    pub upstream_timeout_ms: u64,
    pub catalogue_ttl_ms: i64,
    /// `/v1/models` without an API key (MODELS_PUBLIC, default true).
    pub models_public: bool,
    /// How long an isolate trusts its copy of `allowed_models` (0 = read D1 every time).
    pub allowed_models_ttl_ms: i64,
    /// A `needs_review` row is re-priced from the upstream's generation record
    /// only once it is this old (USAGE_REVIEW_MIN_AGE_SECONDS, default 600):
    /// records appear a little after a generation ends.
    pub usage_review_min_age_ms: i64,
    /// Requests may carry test hooks (DEXTO_TEST_HOOKS=1; never in production).
    pub test_hooks: bool,
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty())
}

fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty())
}

fn number(env: &Env, name: &str, default: i64) -> i64 {
    var(env, name).and_then(|v| v.trim().parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

thread_local! {
    static CURRENT: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

impl Config {
    /// This isolate's settings (read from `env` the first time).
    pub fn from_env(env: &Env) -> Rc<Config> {
        CURRENT.with(|c| c.get_or_init(|| Rc::new(Config::read(env))).clone())
    }

    fn read(env: &Env) -> Config {
        let base = var(env, "OPENROUTER_BASE_URL").unwrap_or_else(|| "https://openrouter.ai/api/v1".into());
        Config {
            upstream_base: base.trim_end_matches('/').to_string(),
            upstream_key: Secret::new(secret(env, "OPENROUTER_API_KEY").unwrap_or_default()),
            // A malformed markup must not silently sell below cost: fall back to 1.0×.
            markup: var(env, "PRICE_MARKUP").and_then(|m| Markup::parse(&m).ok()).unwrap_or(Markup::NONE),
            hold_ttl_ms: number(env, "HOLD_TTL_SECONDS", 120) * 1000,
            output_floor: number(env, "OUTPUT_FLOOR_TOKENS", dexto_shared::hold::DEFAULT_OUTPUT_FLOOR as i64) as u64,
            upstream_timeout_ms: number(env, "UPSTREAM_TIMEOUT_MS", 60_000) as u64,
            catalogue_ttl_ms: number(env, "CATALOGUE_TTL_SECONDS", 3600) * 1000,
            // Anything but an explicit "false" keeps the list public, as the plan says.
            models_public: var(env, "MODELS_PUBLIC").is_none_or(|v| !v.trim().eq_ignore_ascii_case("false")),
            allowed_models_ttl_ms: var(env, "ALLOWED_MODELS_TTL_SECONDS")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .unwrap_or(30)
                * 1000,
            usage_review_min_age_ms: var(env, "USAGE_REVIEW_MIN_AGE_SECONDS")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .unwrap_or(600)
                * 1000,
            test_hooks: var(env, "DEXTO_TEST_HOOKS").is_some_and(|v| v == "1"),
        }
    }
}
