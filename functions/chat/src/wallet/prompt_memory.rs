//! The counted-prefix bound in the wallet object (shared/src/prompt_prefix.rs):
//! at admission, the quote's prompt bound is lowered to what a prompt this
//! key already had counted on this model proves; at the owner's settlement,
//! the upstream's count of this prompt is remembered for the next turn. The
//! chat Worker did the hashing: here it is a small indexed read and string
//! comparisons on the object's one thread.

use super::ledger::Ledger;
use super::store::Store;
use dexto_shared::hold::Quote;
use dexto_shared::http::now_ms;
use dexto_shared::usage::UpstreamUsage;
use dexto_shared::wallet::{ExchangeRequest, ExchangeTerms};
use serde_json::{json, Value};
use worker::Result;

/// The request's quote with the tightest bound a remembered count proves,
/// if that is lower than the byte bound, and what proved it (for the
/// request's one log line: `prompt_bound`).
pub fn tightened(store: &Store, req: &ExchangeRequest) -> Result<Option<(Quote, Value)>> {
    if req.quote.prints.is_none() {
        return Ok(None);
    }
    let counted = store.counted_prompts(&req.terms.key_id, &req.terms.model.id)?;
    let Some((quote, bound)) = req.quote.tightened(&counted) else {
        return Ok(None);
    };
    let proof = json!({"byte_bound": req.quote.prompt_tokens, "counted_bound": bound.tokens, "prefix_messages": bound.prefix_messages});
    Ok(Some((quote, proof)))
}

/// Remembers the upstream's count of this exchange's prompt (owner only: the
/// sweep's generation records carry normalised counts, not the model's own).
pub fn remember(ledger: &Ledger, terms: &ExchangeTerms, usage: Option<&UpstreamUsage>) {
    let (Some(memo), Some(usage)) = (&terms.prompt_memo, usage) else {
        return;
    };
    if !memo.plausible(usage.prompt_tokens) {
        dexto_shared::log::event("prompt.count_implausible", json!({"request_id": terms.request_id, "prompt_tokens": usage.prompt_tokens}));
        return;
    }
    if let Err(e) = ledger.store().remember_prompt(&terms.key_id, &terms.model.id, &memo.prints, usage.prompt_tokens, now_ms()) {
        dexto_shared::log::event("prompt.count_unrecorded", json!({"request_id": terms.request_id, "error": e.to_string()}));
    }
}
