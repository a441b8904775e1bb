//! A tighter prompt bound for an agent loop's next turn, proven from a prompt
//! the upstream has already counted (ARCHITECTURE, "Quote").
//!
//! An agent resends its whole conversation every turn: the same tools, the
//! same system message, the same earlier messages, plus what happened since.
//! When the upstream reported `R` prompt tokens for an earlier request `A`
//! and this request `B` starts with exactly `A`'s messages (and everything
//! else that reaches the prompt is byte-identical), then
//!
//! ```text
//! tokens(B) ≤ R + bytes(B's messages after A's) + allowance(B) + JUNCTION_TOKENS
//! ```
//!
//! where `allowance` is the byte bound's own template allowance (per message,
//! per tool, fixed). The chat Worker fingerprints the request at message
//! boundaries (SHA-256, here); the wallet object remembers the fingerprints of
//! prompts the upstream counted and picks the longest one this request
//! extends — no hashing on its single thread.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Top-level fields that never reach the text the model reads (sampling and
/// delivery options, and the output limit this gateway rewrites). Every other
/// field — `model`, `tools`, `tool_choice`, `response_format`, `reasoning`,
/// `provider`… — is part of the fingerprint, so two requests match only when
/// all of them are byte-identical.
const PROMPT_NEUTRAL_FIELDS: &[&str] =
    &["max_tokens", "max_completion_tokens", "stream", "stream_options", "temperature", "top_p", "seed", "user"];
/// How a dialect's body is fingerprinted: a tag of its own (a print of one
/// dialect never matches another's, whose same bytes may reach the prompt
/// differently), the array that holds its conversation, and the top-level
/// fields that never reach the prompt.
#[derive(Clone, Copy, Debug)]
pub struct Conversation {
    pub tag: &'static [u8],
    pub field: &'static str,
    pub neutral: &'static [&'static str],
}

/// Chat Completions: `messages`. (Its tag predates the others and is kept, so
/// prints remembered before them still match.)
pub const CHAT_CONVERSATION: Conversation = Conversation { tag: b"dexto-prompt-prints-v1\0", field: "messages", neutral: PROMPT_NEUTRAL_FIELDS };
/// Fingerprints sent per request at the end of the conversation: a turn that
/// appends more messages than this since the last counted prompt falls back
/// to the byte bound (or to the first-message and context-only prints).
pub const MAX_RECENT_BOUNDARIES: usize = 64;
/// Tokens allowed where the counted prompt ends and the new messages begin:
/// a tokenizer may split the junction's text differently when more follows.
pub const JUNCTION_TOKENS: u64 = 64;
/// No tokenizer averages more than this many bytes per token over a whole
/// prompt. A report below `text bytes / 16` is not a count of this prompt (a
/// count without cached tokens, a provider bug) and is not remembered.
pub const MAX_BYTES_PER_TOKEN: u64 = 16;
/// Bytes of a fingerprint (SHA-256, truncated): 128 bits.
const PRINT_BYTES: usize = 16;

/// The request cut after its first `messages` messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boundary {
    pub messages: u32,
    /// Fingerprint of everything prompt-bearing up to the cut (hex).
    pub print: String,
    /// Bytes of the messages after the cut, as sent (JSON, escapes included:
    /// never fewer than the text they carry).
    pub suffix_bytes: u64,
}

/// What the chat Worker sends with a quote: fingerprints of the request at
/// message boundaries, and the allowances the bound adds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptPrints {
    /// Longest first: the whole request, then each shorter cut among the last
    /// `MAX_RECENT_BOUNDARIES`, then the first message and no message at all.
    pub boundaries: Vec<Boundary>,
    /// Template tokens this request may add around its text (the byte bound's
    /// per-message, per-tool and fixed overheads).
    pub allowance: u64,
    /// The body's bytes without media payloads (the byte bound's text part).
    pub text_bytes: u64,
}

/// A prompt the upstream counted: its fingerprint and the reported tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    pub print: String,
    pub prompt_tokens: u64,
}

/// What is remembered of a request once the upstream has counted its prompt:
/// the fingerprints of the whole request, of its first message (a new
/// session of the same agent starts with the same system message) and of its
/// context alone. A count bounds every prefix of the prompt it counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptMemo {
    pub prints: Vec<String>,
    pub text_bytes: u64,
}

/// The bound a counted prefix proves for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixBound {
    pub tokens: u64,
    /// Messages of the counted prompt this request extends.
    pub prefix_messages: u32,
}

impl PromptPrints {
    /// Fingerprints `body` (already validated as a chat request) at its message
    /// boundaries. `allowance` is the byte bound's template overhead for it.
    pub fn of(body: &[u8], allowance: u64, text_bytes: u64) -> Option<PromptPrints> {
        PromptPrints::of_conversation(body, &CHAT_CONVERSATION, allowance, text_bytes)
    }

    /// `of` for a dialect whose conversation is `conversation.field` (None
    /// when that is not an array: the byte bound alone applies).
    pub fn of_conversation(body: &[u8], conversation: &Conversation, allowance: u64, text_bytes: u64) -> Option<PromptPrints> {
        let fields: BTreeMap<String, &RawValue> = serde_json::from_slice(body).ok()?;
        let messages: Vec<&RawValue> = serde_json::from_str(fields.get(conversation.field)?.get()).ok()?;
        let mut hasher = Sha256::new();
        hasher.update(conversation.tag);
        // Sorted by key (BTreeMap): the upstream reads an object, not its order.
        for (key, raw) in fields.iter().filter(|(k, _)| *k != conversation.field && !conversation.neutral.contains(&k.as_str())) {
            hasher.update((key.len() as u64).to_le_bytes());
            hasher.update(key.as_bytes());
            hasher.update((raw.get().len() as u64).to_le_bytes());
            hasher.update(raw.get().as_bytes());
        }
        hasher.update(b"messages\0");
        let total: u64 = messages.iter().map(|m| m.get().len() as u64).sum();
        let n = messages.len();
        let wanted = |k: usize| k <= 1 || k + MAX_RECENT_BOUNDARIES > n;
        let mut cuts = Vec::new();
        let mut seen = 0u64;
        for k in 0..=n {
            if wanted(k) {
                let digest = hasher.clone().finalize();
                cuts.push(Boundary { messages: k as u32, print: hex::encode(&digest[..PRINT_BYTES]), suffix_bytes: total - seen });
            }
            if let Some(m) = messages.get(k) {
                // Length-prefixed: no two different message lists feed the same bytes.
                hasher.update((m.get().len() as u64).to_le_bytes());
                hasher.update(m.get().as_bytes());
                seen += m.get().len() as u64;
            }
        }
        cuts.reverse();
        Some(PromptPrints { boundaries: cuts, allowance, text_bytes })
    }

    /// The tightest bound any counted prompt proves for this request: the
    /// counted tokens, every byte after the counted messages as a token, the
    /// template allowance and the junction. None if no boundary was counted.
    pub fn bound_from(&self, counted: &[Counted]) -> Option<PrefixBound> {
        self.boundaries
            .iter()
            .filter_map(|b| {
                let c = counted.iter().find(|c| c.print == b.print)?;
                let tokens = c.prompt_tokens.saturating_add(b.suffix_bytes).saturating_add(self.allowance).saturating_add(JUNCTION_TOKENS);
                Some(PrefixBound { tokens, prefix_messages: b.messages })
            })
            .min_by_key(|b| b.tokens)
    }

    /// What to remember once the upstream has counted this request.
    pub fn memo(&self) -> PromptMemo {
        let last = self.boundaries.len().saturating_sub(2);
        let mut prints: Vec<String> = Vec::with_capacity(3);
        // The whole request, its first message, its context alone.
        for b in self.boundaries.first().into_iter().chain(&self.boundaries[last..]) {
            if !prints.contains(&b.print) {
                prints.push(b.print.clone());
            }
        }
        PromptMemo { prints, text_bytes: self.text_bytes }
    }
}

impl PromptMemo {
    /// Whether `reported` can be a count of this prompt at all (see
    /// `MAX_BYTES_PER_TOKEN`): a count too small to be true is not remembered.
    pub fn plausible(&self, reported: u64) -> bool {
        reported > 0 && reported.saturating_mul(MAX_BYTES_PER_TOKEN) >= self.text_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn prints(body: &Value) -> PromptPrints {
        PromptPrints::of(body.to_string().as_bytes(), 1_000, body.to_string().len() as u64).unwrap()
    }

    fn counted(p: &PromptPrints, tokens: u64) -> Vec<Counted> {
        p.memo().prints.into_iter().take(1).map(|print| Counted { print, prompt_tokens: tokens }).collect()
    }

    fn turn(messages: &[Value]) -> Value {
        json!({"model": "anthropic/claude-haiku-4.5", "stream": true, "tools": [{"type": "function", "function": {"name": "read_file"}}], "messages": messages})
    }

    fn msg(role: &str, text: &str) -> Value {
        json!({"role": role, "content": text})
    }

    #[test]
    fn a_request_that_extends_a_counted_one_is_bounded_by_its_count_and_new_bytes() {
        let first = [msg("system", "you are an agent"), msg("user", "list the files")];
        let a = prints(&turn(&first));
        let appended = [msg("assistant", "calling ls"), msg("tool", "a.rs b.rs")];
        let all: Vec<Value> = first.iter().chain(&appended).cloned().collect();
        let b = prints(&turn(&all));
        let suffix: u64 = appended.iter().map(|m| m.to_string().len() as u64).sum();
        let bound = b.bound_from(&counted(&a, 5_000)).unwrap();
        assert_eq!(bound, PrefixBound { tokens: 5_000 + suffix + 1_000 + JUNCTION_TOKENS, prefix_messages: 2 });
        // The same request again (a retry): its own count, nothing appended.
        assert_eq!(a.bound_from(&counted(&a, 5_000)).unwrap().tokens, 5_000 + 1_000 + JUNCTION_TOKENS);
    }

    #[test]
    fn anything_else_that_reaches_the_prompt_must_be_identical() {
        let first = [msg("system", "s"), msg("user", "u")];
        let a = counted(&prints(&turn(&first)), 5_000);
        let next: Vec<Value> = first.iter().cloned().chain([msg("assistant", "x")]).collect();
        let extends = |body: Value| prints(&body).bound_from(&a).map(|b| b.prefix_messages);
        assert_eq!(extends(turn(&next)), Some(2));
        // Output limit, streaming and sampling are not part of the prompt.
        let mut sampled = turn(&next);
        sampled["max_tokens"] = json!(77);
        sampled["stream"] = json!(false);
        sampled["temperature"] = json!(0.2);
        assert_eq!(extends(sampled), Some(2));
        // Other tools, tool choice, model or routing: a different prompt.
        for (field, value) in [("tools", json!([])), ("tool_choice", json!("required")), ("model", json!("openai/gpt-4o")), ("provider", json!({"order": ["x"]}))] {
            let mut other = turn(&next);
            other[field] = value;
            assert_eq!(extends(other), None, "{field}");
        }
        // An edited earlier message, or one dropped: no longer an extension.
        assert_eq!(extends(turn(&[msg("system", "s"), msg("user", "U"), msg("assistant", "x")])), None);
        assert_eq!(extends(turn(&[msg("user", "u"), msg("assistant", "x")])), None);
        // Message boundaries are not byte boundaries: "u" + "x" is not "ux".
        assert_eq!(extends(turn(&[msg("system", "s"), msg("user", "ux")])), None);
    }

    #[test]
    fn the_tightest_counted_prefix_wins_and_a_count_bounds_every_prefix() {
        let m: Vec<Value> = (0..6).map(|i| msg(if i % 2 == 0 { "user" } else { "assistant" }, &format!("message {i}"))).collect();
        let short = prints(&turn(&m[..2]));
        let long = prints(&turn(&m[..4]));
        let b = prints(&turn(&m));
        let mut memory = counted(&short, 100);
        memory.extend(counted(&long, 130));
        let bound = b.bound_from(&memory).unwrap();
        assert_eq!(bound.prefix_messages, 4);
        let tail: u64 = m[4..].iter().map(|x| x.to_string().len() as u64).sum();
        assert_eq!(bound.tokens, 130 + tail + 1_000 + JUNCTION_TOKENS);
        // A longer prefix with a count out of proportion proves less: the
        // tightest bound is taken, whichever prefix gives it.
        let inflated = [counted(&short, 100), counted(&long, 10_000)].concat();
        assert_eq!(b.bound_from(&inflated).unwrap().prefix_messages, 2);
        // A new session of the same agent: same first message, new question.
        // The earlier count bounds that first message (and the bare context).
        let memo = long.memo();
        assert_eq!(memo.prints.len(), 3, "whole, first message, context");
        let remembered: Vec<Counted> = memo.prints.iter().map(|p| Counted { print: p.clone(), prompt_tokens: 130 }).collect();
        let fresh = prints(&turn(&[m[0].clone(), msg("user", "another question")]));
        assert_eq!(fresh.bound_from(&remembered).unwrap().prefix_messages, 1);
        let other_system = prints(&turn(&[msg("system", "other"), msg("user", "q")]));
        assert_eq!(other_system.bound_from(&remembered).unwrap().prefix_messages, 0);
    }

    #[test]
    fn only_the_recent_boundaries_and_the_first_two_are_sent() {
        let many: Vec<Value> = (0..200).map(|i| msg("user", &i.to_string())).collect();
        let p = prints(&turn(&many));
        assert_eq!(p.boundaries.len(), MAX_RECENT_BOUNDARIES + 2);
        assert_eq!((p.boundaries[0].messages, p.boundaries[0].suffix_bytes), (200, 0));
        let cuts: Vec<u32> = p.boundaries.iter().map(|b| b.messages).collect();
        assert_eq!(&cuts[MAX_RECENT_BOUNDARIES - 1..], &[137, 1, 0]);
        let total: u64 = many.iter().map(|m| m.to_string().len() as u64).sum();
        assert_eq!(p.boundaries.last().unwrap().suffix_bytes, total);
    }

    #[test]
    fn implausibly_small_counts_are_not_remembered() {
        let memo = PromptMemo { prints: vec![], text_bytes: 96_000 };
        assert!(memo.plausible(24_000));
        assert!(memo.plausible(6_000), "16 bytes a token: the most any tokenizer averages");
        assert!(!memo.plausible(5_999));
        assert!(!memo.plausible(0));
    }
}
