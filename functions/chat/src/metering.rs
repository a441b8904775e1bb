//! Everything known about a metered request between hold and settlement, and
//! the settlement itself (shared by the streaming and non-streaming paths).

use dexto_shared::auth::Caller;
use dexto_shared::billing::{charge, Charge, Observed};
use dexto_shared::catalogue::ModelInfo;
use dexto_shared::http::now_ms;
use dexto_shared::money::{Markup, Micros};
use dexto_shared::usage::UpstreamUsage;
use dexto_shared::wallet::UsageRecord;
use dexto_shared::wallet_client::WalletClient;
use serde_json::json;

/// Client-supplied metadata recorded with the usage row (bounded, never trusted).
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    pub source: Option<String>,
    pub session_id: Option<String>,
    pub version: Option<String>,
}

impl ClientMeta {
    pub fn from_headers(headers: &worker::Headers) -> ClientMeta {
        let read = |name: &str, max: usize| {
            headers
                .get(name)
                .ok()
                .flatten()
                .map(|v| v.trim().chars().take(max).collect::<String>())
                .filter(|v| !v.is_empty())
        };
        ClientMeta {
            source: read("X-Dexto-Source", 16),
            session_id: read("X-Dexto-Session-ID", 128),
            version: read("X-Dexto-Version", 32),
        }
    }
}

pub struct Bill {
    pub request_id: String,
    pub caller: Caller,
    pub model: ModelInfo,
    pub hold: Micros,
    pub markup: Markup,
    pub prompt_estimate: u64,
    pub stream: bool,
    pub started_ms: i64,
    pub client: ClientMeta,
    pub rate_limit_remaining: Option<u32>,
    /// Wallet balance when the hold was placed.
    pub balance_at_hold: Micros,
    /// Time from request start until the hold was placed (Server-Timing).
    pub hold_ms: i64,
}

/// What a finished upstream exchange produced.
pub struct Outcome {
    pub usage: Option<UpstreamUsage>,
    pub output_bytes: usize,
    pub generation_id: Option<String>,
    pub cancelled: bool,
    pub upstream_status: u16,
}

pub struct Settled {
    pub charge: Charge,
    /// Balance after this request; None if the wallet could not be reached.
    pub balance: Option<Micros>,
}

impl Bill {
    fn record(&self, outcome: &Outcome, charge: &Charge) -> UsageRecord {
        let u = outcome.usage.clone().unwrap_or_default();
        UsageRecord {
            request_id: self.request_id.clone(),
            user_id: self.caller.user_id.clone(),
            key_id: self.caller.key_id.clone(),
            model: self.model.id.clone(),
            generation_id: outcome.generation_id.clone(),
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_tokens: u.cached_tokens,
            reasoning_tokens: u.reasoning_tokens,
            provider_cost: charge.provider_cost,
            user_price: charge.user_price,
            price_basis: charge.basis,
            billing_status: charge.status,
            upstream_status: Some(outcome.upstream_status),
            stream: self.stream,
            cancelled: outcome.cancelled,
            session_id: self.client.session_id.clone(),
            client_source: self.client.source.clone(),
            client_version: self.client.version.clone(),
            latency_ms: now_ms() - self.started_ms,
            created_at: now_ms(),
        }
    }

    /// What the outcome costs under the billing policy.
    pub fn price(&self, outcome: &Outcome) -> Charge {
        let seen = Observed { prompt_estimate: self.prompt_estimate, output_bytes: outcome.output_bytes };
        charge(outcome.usage.as_ref(), &self.model, self.markup, self.hold, seen)
    }

    /// Debits the wallet (releasing the hold). One retry: settle is idempotent
    /// on the request id, so a retry cannot double-charge.
    pub async fn settle(&self, wallet: &WalletClient, outcome: &Outcome, charge: Charge) -> Settled {
        let record = self.record(outcome, &charge);
        let mut result = wallet.settle(record.clone()).await;
        if result.is_err() {
            result = wallet.settle(record.clone()).await;
        }
        let balance = match result {
            Ok(s) => Some(s.balance),
            Err(e) => {
                // The hold stays and expires; the request is in the log for reconciliation.
                dexto_shared::log::event("settle.failed", json!({"request_id": self.request_id, "error": format!("{e:?}")}));
                None
            }
        };
        self.log(&record, balance);
        Settled { charge, balance }
    }

    fn log(&self, r: &UsageRecord, balance: Option<Micros>) {
        dexto_shared::log::event(
            "chat.completion",
            json!({
                "request_id": r.request_id, "user_id": r.user_id, "key_id": r.key_id, "model": r.model,
                "stream": r.stream, "cancelled": r.cancelled, "status": r.upstream_status,
                "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                "provider_cost_micros": r.provider_cost.0, "price_micros": r.user_price.0,
                "price_basis": r.price_basis.as_str(), "billing_status": r.billing_status.as_str(),
                "balance_micros": balance.map(|b| b.0), "latency_ms": r.latency_ms,
            }),
        );
    }
}
