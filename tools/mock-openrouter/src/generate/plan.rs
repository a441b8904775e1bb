//! The answer, fixed before any byte is sent, and what every dialect shares
//! about it: the text of each token, what it costs, and the bookkeeping when
//! it ends (the generation record and the charge on a mock-issued key).

use super::routing::Route;
use crate::catalogue::ModelSpec;
use crate::faults::Faults;
use crate::generation::Generation;
use crate::money::Usd;
use crate::util::{iso8601, now_ms};
use crate::App;
use serde::Serialize;

pub struct Plan {
    /// The generation id (`gen-…`); dialects wrap it in their own prefix.
    pub id: String,
    pub model: &'static ModelSpec,
    pub created: u64,
    pub started_ms: u64,
    /// The caller's key, for charging mock-issued keys.
    pub token: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The output ceiling cut the answer short.
    pub capped: bool,
    pub faults: Faults,
    /// The provider routing chose and its price multiple.
    pub route: Route,
}

/// Flattened into a dialect's usage, after its token counts.
#[derive(Serialize)]
pub struct IoBilling {
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<Usd>,
    is_byok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_details: Option<IoCostDetails>,
}

#[derive(Serialize)]
pub struct IoCostDetails {
    upstream_inference_cost: Usd,
    upstream_inference_input_cost: Usd,
    upstream_inference_output_cost: Usd,
}

pub struct Costs {
    pub prompt: Usd,
    pub completion: Usd,
    /// The provider's charge.
    pub upstream: Usd,
    /// What OpenRouter bills the key: the upstream charge, or a 5% fee (BYOK).
    pub charged: Usd,
}

impl Plan {
    /// OpenRouter's normalised finish reason, which chat writes as is and
    /// the generation record keeps for every dialect.
    pub fn finish_reason(&self) -> &'static str {
        if self.capped {
            "length"
        } else {
            "stop"
        }
    }

    /// The cost of this prompt plus `completion_tokens` of output.
    pub fn costs(&self, completion_tokens: u64) -> Costs {
        let prompt = self.model.prompt_price().times(self.prompt_tokens).times(self.route.factor);
        let completion = self.model.completion_price().times(completion_tokens).times(self.route.factor);
        let upstream = prompt + completion;
        let charged = if self.faults.byok {
            upstream.ratio(5, 100)
        } else {
            upstream
        };
        Costs {
            prompt,
            completion,
            upstream,
            charged,
        }
    }

    /// Whether usage reports `cost` (and its details) at all.
    pub fn reports_cost(&self) -> bool {
        !self.faults.no_cost
    }

    /// OpenRouter's additions to Messages and Responses usage (`cost`,
    /// `cost_details` in their input/output naming, absent under `no_cost`).
    pub fn io_billing(&self, completion_tokens: u64) -> IoBilling {
        let c = self.costs(completion_tokens);
        let details = IoCostDetails {
            upstream_inference_cost: c.upstream,
            upstream_inference_input_cost: c.prompt,
            upstream_inference_output_cost: c.completion,
        };
        let with_cost = self.reports_cost();
        IoBilling {
            cost: with_cost.then_some(c.charged),
            is_byok: self.faults.byok,
            cost_details: with_cost.then_some(details),
        }
    }

    pub fn text(&self, tokens: u64) -> String {
        (0..tokens).map(|i| self.token(i)).collect()
    }

    /// Token `i`'s text (`tok<i> `), padded to `pad` bytes when asked (the
    /// first one is `image_bytes` long when asked).
    pub fn token(&self, i: u64) -> String {
        if let (0, Some(n)) = (i, self.faults.image_bytes) {
            return "A".repeat(n as usize);
        }
        let mut t = format!("tok{i} ");
        if let Some(pad) = self.faults.pad {
            while (t.len() as u64) < pad {
                t.push('.');
            }
        }
        t
    }

    /// Records the generation and bills the caller's key (if mock-issued).
    /// Cancelled/dropped requests are billed in full, like a provider that
    /// cannot stop mid-generation.
    pub fn finish(&self, app: &App, completion_tokens: u64, finish_reason: &str, streamed: bool, cancelled: bool) {
        let c = self.costs(completion_tokens);
        let byok = self.faults.byok;
        app.keys.charge(&self.token, c.charged, byok.then_some(c.upstream));
        let elapsed = now_ms().saturating_sub(self.started_ms);
        app.generations.insert(Generation {
            id: self.id.clone(),
            model: self.model.id.to_string(),
            created_at: iso8601(self.started_ms),
            provider_name: self.route.provider,
            origin: String::new(),
            streamed,
            cancelled,
            finish_reason: finish_reason.to_string(),
            native_finish_reason: finish_reason.to_string(),
            tokens_prompt: self.prompt_tokens,
            tokens_completion: completion_tokens,
            native_tokens_prompt: self.prompt_tokens,
            native_tokens_completion: completion_tokens,
            native_tokens_reasoning: 0,
            total_cost: c.charged,
            usage: c.charged,
            upstream_inference_cost: c.upstream,
            is_byok: byok,
            cache_discount: None,
            latency: elapsed,
            generation_time: elapsed,
        });
    }
}
