use crate::billing::{charge, Observed, PriceBasis};
use crate::catalogue::ModelInfo;
use crate::dialects::{from_messages_usage, from_responses_usage, Dialect};
use crate::money::{Markup, Micros, Picos};
use crate::usage::UpstreamUsage;
use serde_json::{json, Value};

/// One call — 1 150 prompt tokens (1 000 read from the cache, 50 written to
/// it), 20 output tokens (5 of them reasoning), $0.0021 — as each dialect reports it.
fn one_call(cost: Option<f64>) -> [(Dialect, Value); 3] {
    let mut shapes = [
        (Dialect::Chat, json!({"prompt_tokens": 1150, "completion_tokens": 20, "total_tokens": 1170,
            "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 50}, "completion_tokens_details": {"reasoning_tokens": 5}})),
        (Dialect::Messages, json!({"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 50})),
        (Dialect::Responses, json!({"input_tokens": 1150, "output_tokens": 20, "total_tokens": 1170,
            "input_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 50}, "output_tokens_details": {"reasoning_tokens": 5}})),
    ];
    for (_, usage) in &mut shapes {
        if let Some(cost) = cost {
            usage["cost"] = json!(cost);
            usage["is_byok"] = json!(false);
            usage["cost_details"] = json!({"upstream_inference_cost": cost});
        }
    }
    shapes
}

#[test]
fn anthropic_usage_adds_the_cache_back_into_the_prompt() {
    let u = from_messages_usage(&one_call(Some(0.0021))[1].1).unwrap();
    assert_eq!((u.prompt_tokens, u.cached_tokens, u.cache_write_tokens, u.completion_tokens), (1150, 1000, 50, 20));
    assert_eq!(u.reported_provider_cost(), Some(Picos(2_100_000_000)));
    let plain = from_messages_usage(&json!({"input_tokens": 12, "output_tokens": 3})).unwrap();
    assert_eq!((plain.prompt_tokens, plain.completion_tokens, plain.cost), (12, 3, None));
}

#[test]
fn responses_usage_reads_its_details() {
    let u = from_responses_usage(&one_call(None)[2].1).unwrap();
    assert_eq!((u.prompt_tokens, u.cached_tokens, u.cache_write_tokens, u.completion_tokens, u.reasoning_tokens), (1150, 1000, 50, 20, 5));
    assert_eq!(u.reported_provider_cost(), None, "absent cost is not zero");
}

#[test]
fn the_same_call_prices_the_same_in_every_dialect() {
    let model = ModelInfo { id: "anthropic/claude-haiku-4.5".into(), prompt_price: 1_000_000, completion_price: 5_000_000, context_length: 200_000, ..ModelInfo::default() };
    for cost in [Some(0.0021), None] {
        let read: Vec<UpstreamUsage> = one_call(cost).iter().map(|(d, u)| d.usage(u).unwrap()).collect();
        // Anthropic reports no reasoning split: everything else is identical.
        let without_reasoning = |u: &UpstreamUsage| UpstreamUsage { reasoning_tokens: 0, ..u.clone() };
        assert_eq!(without_reasoning(&read[0]), read[1]);
        assert_eq!(read[0], read[2]);
        let charges: Vec<_> = read.iter().map(|u| charge(Some(u), &model, Markup::parse("1.5").unwrap(), Micros(1_000_000), Observed::default())).collect();
        assert!(charges.iter().all(|c| *c == charges[0]), "{charges:?}");
        let basis = if cost.is_some() { PriceBasis::ReportedCost } else { PriceBasis::PriceTable };
        assert_eq!(charges[0].basis, basis);
    }
}

#[test]
fn malformed_or_empty_usage_is_not_a_report() {
    for dialect in [Dialect::Messages, Dialect::Responses] {
        for usage in [json!(null), json!("12 tokens"), json!([1, 2]), json!({}), json!({"input_tokens": "ten", "output_tokens": null})] {
            assert_eq!(dialect.usage(&usage), None, "{dialect:?} {usage}");
        }
        let negative = dialect.usage(&json!({"input_tokens": 1, "output_tokens": 1, "cost": -0.5})).unwrap();
        assert_eq!(negative.reported_provider_cost(), None, "a negative cost never credits the user");
    }
}

#[test]
fn a_reply_gives_its_usage_generation_and_delivered_output() {
    let usage = json!({"input_tokens": 7, "output_tokens": 2, "cost": 0.00001});
    let messages = json!({"id": "msg_gen-1-a", "type": "message", "content": [
        {"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "hello"}, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
        "usage": usage});
    let (u, id, bytes) = Dialect::Messages.read_reply(&messages);
    assert_eq!((u.map(|u| (u.prompt_tokens, u.completion_tokens)), id.as_deref(), bytes), (Some((7, 2)), Some("gen-1-a"), 3 + 5 + 7));
    let responses = json!({"id": "resp_gen-2-b", "object": "response", "output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}]},
        {"type": "function_call", "name": "f", "arguments": "{}"},
        {"type": "message", "content": [{"type": "output_text", "text": "hello"}, {"type": "refusal", "refusal": "no"}]}],
        "usage": usage});
    let (u, id, bytes) = Dialect::Responses.read_reply(&responses);
    assert_eq!((u.map(|u| u.prompt_tokens), id.as_deref(), bytes), (Some(7), Some("gen-2-b"), 4 + 2 + 5 + 2));
    let chat = json!({"id": "gen-3", "choices": [{"message": {"content": "hello", "reasoning": "why"}}], "usage": {"prompt_tokens": 7, "completion_tokens": 2}});
    assert_eq!(Dialect::Chat.read_reply(&chat).2, 8);
    let (u, id, bytes) = Dialect::Messages.read_reply(&json!({"content": "not blocks"}));
    assert_eq!((u, id, bytes), (None, None, 0), "a malformed reply reports nothing");
}
