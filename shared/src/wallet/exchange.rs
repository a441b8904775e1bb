//! `POST /exchange`, the one message a chat request costs the wallet object:
//! what it is billed by, and its frame (JSON, a newline, the client's body).

use super::PlanLimits;
use crate::catalogue::ModelInfo;
use crate::hold::Quote;
use crate::money::Micros;
use crate::prompt_prefix::PromptMemo;
use serde::{Deserialize, Serialize};

/// `POST /exchange`: the wallet object owns the whole upstream exchange of a
/// chat request: checks and hold in one turn (sized by `quote` against the
/// available balance), then the upstream call, the reply and the settlement,
/// so billing outlives the client and the calling Worker. Sent as this JSON,
/// a newline, then the client's body bytes (see `frame`/`unframe`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExchangeRequest {
    /// Test hook (DEXTO_TEST_HOOKS=1 only, else 0): the wallet object's clock
    /// moved on by this much for admission (caps' windows, rate limits). The
    /// object reads its own clock: the same one its settlements are stamped
    /// with, so a cap's window is never read on one clock and charged on another.
    #[serde(default)]
    pub clock_offset_ms: i64,
    /// The chat Worker's clock, read by objects of the build before this one
    /// (which require it) during a deploy; this build ignores it. Remove it
    /// once a release has passed.
    #[serde(default)]
    pub now_ms: i64,
    /// Deadline of the hold while nobody heartbeats it (HOLD_TTL_SECONDS).
    pub ttl_ms: i64,
    pub quote: Quote,
    /// The body carries `max_tokens` / `max_completion_tokens` (for the rewrite).
    pub limit_fields: (bool, bool),
    /// The key's own requests-per-minute limit, if it has one.
    #[serde(default)]
    pub key_rate_limit: Option<u32>,
    pub terms: ExchangeTerms,
    /// Test hook (the chat Worker sets it only with DEXTO_TEST_HOOKS=1): the owner "dies"
    /// after forwarding this many stream events — no settlement, no reply.
    #[serde(default)]
    pub die_after_events: Option<u64>,
    /// Test hook (likewise): the owner's settlement fails after its first
    /// writes (the hold ended, spending counted), before the debit.
    #[serde(default)]
    pub fail_settlement: bool,
    /// The chat Worker's phases (auth, body, quote), continued by the wallet
    /// object into one Server-Timing header and log line.
    #[serde(default)]
    pub phases: crate::phases::Phases,
    /// Wall clock when the chat Worker sent this (the hop to the object).
    #[serde(default)]
    pub sent_at_ms: i64,
    /// Client headers the upstream gets as sent (`anthropic-version`,
    /// `anthropic-beta` of a Messages request).
    #[serde(default)]
    pub upstream_headers: Vec<(String, String)>,
    /// The free plan's limits as the chat Worker last read the plans: what
    /// an account the wallet was never told a plan for is on ("Plans",
    /// Limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_limits: Option<PlanLimits>,
}

/// What an exchange is billed by; stored with its hold so that whoever
/// settles it (the owner, or the sweep after the owner died) bills the same.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExchangeTerms {
    pub request_id: String,
    pub user_id: String,
    pub key_id: String,
    /// Prices for a charge without a reported cost: the priciest model the
    /// upstream may serve, under the requested id.
    pub model: ModelInfo,
    pub markup_bps: u32,
    pub prompt_estimate: u64,
    pub stream: bool,
    pub started_ms: i64,
    /// The hold placed for it (set by the wallet).
    #[serde(default)]
    pub hold: Micros,
    /// What to remember once the upstream counts this prompt (set by the
    /// wallet from the quote's fingerprints).
    #[serde(default)]
    pub prompt_memo: Option<PromptMemo>,
    pub session_id: Option<String>,
    pub client_source: Option<String>,
    pub client_version: Option<String>,
    /// The API the client spoke (terms written before dialects: chat).
    #[serde(default)]
    pub dialect: crate::dialects::Dialect,
    /// A keyless call: the x402 payment that backs its hold instead of the
    /// balance, settled after the charge (`key_id` is then `X402_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x402: Option<crate::x402::Authorized>,
}

/// `meta JSON \n body`: JSON text never contains a raw newline.
pub fn frame(meta: &ExchangeRequest, body: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(meta).expect("exchange request serialises");
    out.reserve(body.len() + 1);
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

pub fn unframe(bytes: &[u8]) -> Option<(ExchangeRequest, &[u8])> {
    let cut = bytes.iter().position(|b| *b == b'\n')?;
    Some((serde_json::from_slice(&bytes[..cut]).ok()?, &bytes[cut + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_frames_round_trip() {
        let req = ExchangeRequest {
            clock_offset_ms: 1,
            now_ms: 0,
            ttl_ms: 2,
            quote: Quote { lines: vec![], prompt_tokens: 3, images: 0, n: 1, asked: None, floor: 1, prints: None, cache_writes: false },
            limit_fields: (false, false),
            key_rate_limit: None,
            terms: ExchangeTerms {
                request_id: "r".into(),
                user_id: "u".into(),
                key_id: "k".into(),
                model: ModelInfo::default(),
                markup_bps: 10_000,
                prompt_estimate: 3,
                stream: true,
                started_ms: 1,
                hold: Micros(0),
                prompt_memo: None,
                session_id: Some("line\nbreak".into()),
                client_source: None,
                client_version: None,
                dialect: crate::dialects::Dialect::Messages,
                x402: None,
            },
            die_after_events: None,
            fail_settlement: false,
            phases: Default::default(),
            sent_at_ms: 0,
            upstream_headers: vec![("anthropic-version".into(), "2023-06-01".into())],
            free_limits: Some(PlanLimits { rate_limit_per_minute: Some(5), max_concurrent: None, monthly_cap: Some(Micros(7)) }),
        };
        let body = b"{\"a\":\n1}";
        let framed = frame(&req, body);
        let (back, rest) = unframe(&framed).unwrap();
        assert_eq!((back.terms.session_id.as_deref(), rest), (Some("line\nbreak"), &body[..]));
        assert_eq!((back.terms.dialect, back.upstream_headers), (req.terms.dialect, req.upstream_headers));
        assert_eq!(back.free_limits, req.free_limits);
    }
}
