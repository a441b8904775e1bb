//! The hold: a true upper bound of what the upstream can bill for a request,
//! and the output ceiling that makes it true (forwarded as `max_tokens`).
//!
//! A `Quote` is computed by the chat Worker from the request and the catalogue
//! (no balance needed); the wallet object turns it into a `HoldPlan` against
//! the available balance in the same synchronous turn that reserves the money,
//! so clamping and reserving cannot race.

use crate::catalogue::ModelInfo;
use crate::chat_request::ChatRequest;
use crate::money::{Markup, Micros, Picos};
use crate::prompt_prefix::{Counted, PrefixBound, PromptPrints};
use serde::{Deserialize, Serialize};

/// Default least output a clamped request still gets (`OUTPUT_FLOOR_TOKENS`):
/// enough for a short answer or a tool call; below it a 402 is more useful
/// than a truncated reply.
pub const DEFAULT_OUTPUT_FLOOR: u64 = 1_024;
/// Tokens one image may cost at most, on any model that accepts images.
/// Providers downscale images (Claude ≤ ~1,600 tokens, GPT-4o high detail
/// ≤ ~1,500); a provider that still bills more ends as recorded excess.
pub const IMAGE_TOKEN_BOUND: u64 = 6_000;

/// One model the upstream may serve (the requested one or a `models`
/// fallback), with the prices the hold must cover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceLine {
    pub model: String,
    /// Pico-USD per prompt token, completion token, request and image.
    pub prompt_price: i64,
    pub completion_price: i64,
    pub request_price: i64,
    #[serde(default)]
    pub image_price: i64,
    /// Pico-USD per prompt token written to a prompt cache (0: none listed).
    #[serde(default)]
    pub cache_write_price: i64,
    pub markup_bps: u32,
    pub context_length: u64,
    /// The most output this model is asked for when the client sets no limit.
    pub output_cap: u64,
}

/// Everything the wallet needs to size a hold; serialisable so the chat
/// Worker can hand it to the wallet object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub lines: Vec<PriceLine>,
    /// Prompt tokens, bounded from above (UTF-8 bytes of the text + overheads;
    /// lowered by the wallet when a counted prefix proves less: `tightened`).
    pub prompt_tokens: u64,
    pub images: u64,
    /// Choices requested (`n`): output is paid per choice.
    pub n: u64,
    /// The client's own output limit, if it set one.
    pub asked: Option<u64>,
    /// Least output a clamped request gets (never above what was asked).
    pub floor: u64,
    /// Fingerprints for the counted-prefix bound (none: the byte bound only).
    #[serde(default)]
    pub prints: Option<PromptPrints>,
    /// Prompt caching asked for: prompt tokens are priced at the cache-write
    /// price where it is dearer.
    #[serde(default)]
    pub cache_writes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "plan", rename_all = "snake_case")]
pub enum HoldPlan {
    /// Reserve `amount`; forward `max_tokens`. `clamped`: lower than the
    /// request's own ceiling because the wallet could not afford that.
    Held { amount: Micros, max_tokens: u64, clamped: bool },
    /// Even `floor_tokens` of output is more than available: `needed` is the
    /// smallest hold that would have been accepted.
    Insufficient { needed: Micros, floor_tokens: u64 },
}

impl PriceLine {
    pub fn new(model: &ModelInfo, markup: Markup, typical_prompt: u64) -> PriceLine {
        PriceLine {
            model: model.id.clone(),
            prompt_price: model.prompt_price,
            completion_price: model.completion_price,
            request_price: model.request_price,
            image_price: model.image_price,
            cache_write_price: model.cache_write_price,
            markup_bps: markup.bps(),
            context_length: model.context_length,
            output_cap: model.output_cap(typical_prompt),
        }
    }

    /// Worst-case cost of one call to this model with `output` tokens per choice.
    fn worst_case(&self, q: &Quote, output: u64) -> Picos {
        // A prompt can never exceed the model's context window.
        let prompt = q.prompt_tokens.saturating_add(q.images.saturating_mul(IMAGE_TOKEN_BOUND)).min(self.context_length);
        // A token written to a prompt cache is billed at the write price.
        let prompt_price = if q.cache_writes { self.prompt_price.max(self.cache_write_price) } else { self.prompt_price };
        let cost = Picos(prompt_price as i128)
            .times(prompt)
            .plus(Picos(self.image_price as i128).times(q.images))
            .plus(Picos(self.completion_price as i128).times(output.saturating_mul(q.n)))
            .plus(Picos(self.request_price as i128));
        Markup::from_bps(self.markup_bps).apply(cost)
    }
}

impl Quote {
    /// The quote for `req` served by any of `models` (the requested model
    /// first, then fallbacks). Refuses images for a model that takes none.
    pub fn for_request(req: &ChatRequest, models: &[(&ModelInfo, Markup)], floor: u64) -> Result<Quote, String> {
        let mut lines = Vec::with_capacity(models.len());
        for (model, markup) in models {
            if req.images > 0 && !model.accepts_images {
                return Err(format!("`{}` does not accept image input.", model.id));
            }
            lines.push(PriceLine::new(model, *markup, req.prompt_estimate));
        }
        Ok(Quote {
            lines,
            prompt_tokens: req.prompt_bound,
            images: req.images,
            n: req.n,
            asked: req.max_output,
            floor: floor.max(1),
            prints: req.prints.clone(),
            cache_writes: req.cache_writes,
        })
    }

    /// This quote with its prompt bound lowered to what a prompt the
    /// upstream already counted proves, when that is lower (never raised).
    pub fn tightened(&self, counted: &[Counted]) -> Option<(Quote, PrefixBound)> {
        let bound = self.prints.as_ref()?.bound_from(counted)?;
        (bound.tokens < self.prompt_tokens).then(|| (Quote { prompt_tokens: bound.tokens, ..self.clone() }, bound))
    }

    /// The request's own output ceiling: what it asked for, else the largest
    /// model cap (the forwarded `max_tokens` then binds every provider).
    pub fn ceiling(&self) -> u64 {
        let cap = self.lines.iter().map(|l| l.output_cap).max().unwrap_or(1);
        self.asked.map_or(cap, |asked| asked.min(cap)).max(1)
    }

    /// The hold for `output` tokens per choice: the priciest model's worst case,
    /// rounded up to the micro-dollar.
    pub fn hold_for(&self, output: u64) -> Micros {
        self.lines.iter().map(|l| l.worst_case(self, output)).max().unwrap_or(Picos::ZERO).ceil_micros()
    }

    /// Index of the line whose worst case sets the hold (its prices bill a
    /// call whose cost the upstream did not report).
    pub fn priciest(&self) -> usize {
        let ceiling = self.ceiling();
        (0..self.lines.len()).max_by_key(|i| self.lines[*i].worst_case(self, ceiling)).unwrap_or(0)
    }

    /// Sizes the hold against what the wallet has available: the whole
    /// ceiling if affordable, else the most output it affords down to the
    /// floor, else a refusal naming the least it would need.
    pub fn plan(&self, available: Micros) -> HoldPlan {
        let ceiling = self.ceiling();
        let full = self.hold_for(ceiling);
        if full <= available {
            return HoldPlan::Held { amount: full, max_tokens: ceiling, clamped: false };
        }
        let floor = self.floor.min(ceiling);
        let least = self.hold_for(floor);
        if least > available {
            return HoldPlan::Insufficient { needed: least, floor_tokens: floor };
        }
        // hold_for is monotonic in output: the largest affordable output lies
        // in [floor, ceiling).
        let (mut lo, mut hi) = (floor, ceiling - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.hold_for(mid) <= available {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        HoldPlan::Held { amount: self.hold_for(lo), max_tokens: lo, clamped: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn haiku() -> ModelInfo {
        ModelInfo {
            id: "anthropic/claude-haiku-4.5".into(),
            prompt_price: 1_000_000,
            completion_price: 5_000_000,
            context_length: 200_000,
            max_output: Some(64_000),
            ..ModelInfo::default()
        }
    }

    fn request(body: &str) -> ChatRequest {
        ChatRequest::parse(body.as_bytes()).unwrap()
    }

    fn quote(body: &str) -> Quote {
        Quote::for_request(&request(body), &[(&haiku(), Markup::NONE)], DEFAULT_OUTPUT_FLOOR).unwrap()
    }

    #[test]
    fn affordable_requests_get_their_whole_ceiling() {
        let q = quote(r#"{"model":"m","messages":[{"role":"user","content":"say hi"}]}"#);
        assert_eq!(q.ceiling(), 64_000);
        let full = q.hold_for(64_000);
        assert_eq!(full, Micros(q.prompt_tokens as i64 + 320_000));
        assert_eq!(q.plan(Micros(10_000_000)), HoldPlan::Held { amount: full, max_tokens: 64_000, clamped: false });
        assert_eq!(q.plan(full), HoldPlan::Held { amount: full, max_tokens: 64_000, clamped: false });
    }

    #[test]
    fn a_short_wallet_clamps_the_output_to_what_it_affords() {
        let q = quote(r#"{"model":"m","messages":[{"role":"user","content":"say hi"}]}"#);
        let available = Micros(50_000); // $0.05
        let HoldPlan::Held { amount, max_tokens, clamped } = q.plan(available) else { panic!() };
        assert!(clamped && amount <= available);
        assert_eq!(amount, q.hold_for(max_tokens));
        assert!(q.hold_for(max_tokens + 1) > available, "the largest affordable output");
        assert_eq!(max_tokens, (50_000 - q.prompt_tokens) / 5);
    }

    #[test]
    fn below_the_floor_is_refused_with_what_it_needs() {
        let q = quote(r#"{"model":"m","messages":[{"role":"user","content":"say hi"}]}"#);
        let needed = q.hold_for(DEFAULT_OUTPUT_FLOOR);
        assert_eq!(q.plan(Micros(needed.0 - 1)), HoldPlan::Insufficient { needed, floor_tokens: DEFAULT_OUTPUT_FLOOR });
        // A client that asked for less than the floor is never clamped below its ask.
        let small = quote(r#"{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"x"}]}"#);
        assert_eq!(small.plan(Micros(1)), HoldPlan::Insufficient { needed: small.hold_for(8), floor_tokens: 8 });
    }

    #[test]
    fn the_priciest_fallback_and_n_are_covered() {
        let cheap = ModelInfo { id: "cheap".into(), prompt_price: 1, completion_price: 1, context_length: 1000, max_output: Some(10), ..ModelInfo::default() };
        let r = request(r#"{"model":"cheap","models":["anthropic/claude-haiku-4.5"],"n":2,"max_tokens":100,"messages":[{"role":"user","content":"x"}]}"#);
        let q = Quote::for_request(&r, &[(&cheap, Markup::NONE), (&haiku(), Markup::parse("2").unwrap())], 1024).unwrap();
        assert_eq!(q.ceiling(), 100, "the ask, below the largest cap");
        // haiku at 2×: (prompt × 1 µ$ + 100 × 2 × 5 µ$) × 2
        assert_eq!(q.hold_for(100), Micros(2 * (q.prompt_tokens as i64 + 1_000)));
    }

    #[test]
    fn images_are_bounded_or_refused() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        let r = request(body);
        assert_eq!(r.images, 1);
        let err = Quote::for_request(&r, &[(&haiku(), Markup::NONE)], 1024).unwrap_err();
        assert!(err.contains("does not accept image input"), "{err}");
        let vision = ModelInfo { accepts_images: true, image_price: 3_000_000, ..haiku() };
        let q = Quote::for_request(&r, &[(&vision, Markup::NONE)], 1024).unwrap();
        let text_only = Quote { images: 0, ..q.clone() };
        assert_eq!(q.hold_for(10).0 - text_only.hold_for(10).0, IMAGE_TOKEN_BOUND as i64 + 3);
    }

    /// A Dexto-CLI-sized turn: 48 tool schemas (~1.7 KB each), a system
    /// message, then `turns` rounds of tool call + tool result.
    fn cli_body(turns: usize) -> String {
        let tools: Vec<serde_json::Value> = (0..48)
            .map(|i| serde_json::json!({"type": "function", "function": {"name": format!("tool_{i}"),
                "description": "Reads, searches or edits files in the workspace. ".repeat(34),
                "parameters": {"type": "object", "properties": {"path": {"type": "string", "description": "A path."}}, "required": ["path"]}}}))
            .collect();
        let mut messages = vec![serde_json::json!({"role": "system", "content": "You are a coding agent. ".repeat(300)}), serde_json::json!({"role": "user", "content": "fix the bug"})];
        for t in 0..turns {
            messages.push(serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{"id": format!("c{t}"), "type": "function", "function": {"name": "tool_1", "arguments": "{\"path\":\"src/a.rs\"}"}}]}));
            messages.push(serde_json::json!({"role": "tool", "tool_call_id": format!("c{t}"), "content": "fn main() {}\n".repeat(150)}));
        }
        serde_json::json!({"model": "anthropic/claude-haiku-4.5", "stream": true, "tools": tools, "messages": messages}).to_string()
    }

    fn counted(q: &Quote, tokens: u64) -> Vec<Counted> {
        q.prints.as_ref().unwrap().memo().prints.into_iter().map(|print| Counted { print, prompt_tokens: tokens }).collect()
    }

    #[test]
    fn a_counted_prefix_lets_the_cli_turn_through_that_the_byte_bound_refuses() {
        let (first, second) = (cli_body(0), cli_body(1));
        assert!((90_000..100_000).contains(&first.len()), "{}", first.len());
        let wallet = Micros(50_000); // $0.05
        let q1 = quote(&first);
        assert!(matches!(q1.plan(wallet), HoldPlan::Insufficient { .. }), "the byte bound: {} tokens", q1.prompt_tokens);
        // The upstream counted the first turn at ~4 bytes a token.
        let reported = first.len() as u64 / 4;
        let q2 = quote(&second);
        let (tight, bound) = q2.tightened(&counted(&q1, reported)).expect("the second turn extends the first");
        assert_eq!(bound.prefix_messages, 2);
        let prints = q2.prints.as_ref().unwrap();
        let appended = second.len() as u64 - first.len() as u64; // the two new messages and a comma
        assert_eq!(tight.prompt_tokens, reported + prints.boundaries[2].suffix_bytes + prints.allowance + crate::prompt_prefix::JUNCTION_TOKENS);
        assert!(prints.boundaries[2].suffix_bytes < appended);
        assert!(tight.prompt_tokens * 2 < q2.prompt_tokens, "{} vs {}", tight.prompt_tokens, q2.prompt_tokens);
        let HoldPlan::Held { amount, max_tokens, .. } = tight.plan(wallet) else { panic!("refused with {} tokens", tight.prompt_tokens) };
        assert!(amount <= wallet && max_tokens >= DEFAULT_OUTPUT_FLOOR);
        // A count that proves less than the byte bound changes nothing.
        assert_eq!(q2.tightened(&counted(&q1, q2.prompt_tokens)), None);
        assert_eq!(q2.tightened(&[]), None);
    }

    #[test]
    fn prompt_caching_prices_the_prompt_at_the_cache_write_price() {
        let cached = ModelInfo { cache_write_price: 1_250_000, ..haiku() };
        let plain = r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}]}"#;
        let asks = r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}]}"#;
        let q = |body: &str| Quote::for_request(&request(body), &[(&cached, Markup::NONE)], 1024).unwrap();
        let (without, with) = (q(plain), q(asks));
        assert!(!without.cache_writes && with.cache_writes);
        assert_eq!(without.hold_for(10).0, without.prompt_tokens as i64 + 50);
        assert_eq!(with.hold_for(10).0, (with.prompt_tokens as i64 * 5 + 3) / 4 + 50);
    }

    #[test]
    fn the_prompt_bound_is_capped_by_the_context_window() {
        let tiny = ModelInfo { context_length: 100, max_output: None, ..haiku() };
        let big = "x".repeat(10_000);
        let r = request(&format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{big}"}}]}}"#));
        assert!(r.prompt_bound >= 10_000);
        let q = Quote::for_request(&r, &[(&tiny, Markup::NONE)], 1024).unwrap();
        assert_eq!(q.hold_for(0), Micros(100));
    }
}
