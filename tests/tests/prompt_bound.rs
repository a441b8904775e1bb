//! The prompt bound of an agent loop (issue 15, found with the real Dexto
//! CLI): a ≈ 96 KB request with 48 tool schemas on
//! `anthropic/claude-haiku-4.5`. The byte bound (one token per byte) makes
//! its prompt alone cost more than $0.05; once the upstream has counted a
//! turn, the next turn — the same prefix plus new messages — is bounded by
//! that count + the new bytes + allowances (shared/src/prompt_prefix.rs),
//! and the user is still never charged beyond the hold nor below zero.

use dexto_shared::chat_request::ChatRequest;
use integration_tests::cli_shape::dexto_cli_turn;
use integration_tests::{marker, stack, SseReader, Stack};
use serde_json::Value;

/// Haiku's list prices in µ$ per token (the mock's catalogue; markup 1.0).
const PROMPT_MICROS: i64 = 1;
const OUTPUT_MICROS: i64 = 5;
const OUTPUT_FLOOR: i64 = 1_024;

/// One turn as the gateway handled it.
struct Turn {
    request_id: String,
    /// The settlement's log line (hold, max_tokens, tokens, price, excess).
    line: Value,
}

impl Turn {
    fn n(&self, field: &str) -> i64 {
        self.line[field].as_i64().unwrap_or_else(|| panic!("{field} in {}", self.line))
    }

    /// The prompt part of the hold: hold = prompt bound × 1 µ$ + max_tokens × 5 µ$.
    fn prompt_bound(&self) -> i64 {
        (self.n("hold_micros") - self.n("max_tokens") * OUTPUT_MICROS) / PROMPT_MICROS
    }
}

/// Streams one turn to its end, as the CLI does; the settlement's log line
/// when it was admitted, else the status and error body.
fn run_turn(s: &Stack, key: &str, body: &Value) -> Result<Turn, (u16, Value)> {
    let auth = format!("Bearer {key}");
    let sse = SseReader::open(&format!("{}/v1/chat/completions", s.base), &[("Authorization", &auth)], body.to_string().as_bytes());
    let (status, headers) = (sse.status, sse.headers.clone());
    let events: String = sse.collect().into_iter().map(|(e, _)| e).collect();
    if status != 200 {
        return Err((status, serde_json::from_str(&events).unwrap_or(Value::Null)));
    }
    assert!(events.contains(": dexto-cost") && events.contains("[DONE]"), "{events}");
    let request_id = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Dexto-Request-ID")).map(|(_, v)| v.clone()).expect("request id");
    let line = s.log_line(&["chat.completion", &request_id]);
    let line = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    Ok(Turn { request_id, line })
}

fn byte_bound(body: &Value) -> i64 {
    ChatRequest::parse(body.to_string().as_bytes()).unwrap().prompt_bound as i64
}

/// A charge never above its hold, billed from the upstream's report, nothing
/// absorbed as excess, and the prompt the upstream counted within the bound.
fn assert_covered(turn: &Turn) {
    let l = &turn.line;
    assert!(turn.n("price_micros") <= turn.n("hold_micros"), "{l}");
    assert_eq!((l["billing_status"].as_str(), turn.n("excess_micros")), (Some("billed"), 0), "{l}");
    assert!(turn.n("prompt_tokens") <= turn.prompt_bound(), "the upstream counted more than the bound: {l}");
}

#[test]
fn a_cli_loop_on_five_cents_runs_on_counted_prefixes_and_never_overspends() {
    let s = stack();
    let u = s.new_user("0.05");
    let m = marker("cli5");
    // The first turn has never been counted: the byte bound refuses it, as before.
    let first = dexto_cli_turn(&m, 0);
    assert!((90_000..100_000).contains(&first.to_string().len()), "≈ 96 KB: {}", first.to_string().len());
    let (status, error) = run_turn(s, &u.key, &first).err().expect("refused");
    assert_eq!(status, 402, "{error}");
    let needed = error["error"]["needed"].as_f64().unwrap();
    assert!(needed > 0.10, "the byte bound alone is ~$0.10: {needed}");
    assert_eq!(s.upstream_calls(&m), 0);

    // A top-up to $0.12 lets the first turn through (clamped); after it the
    // balance is below what the byte bound needs, but each turn extends a
    // counted prompt.
    s.credit(&u.id, "0.07");
    let mut below_five_cents = 0;
    let mut settled = 0;
    for t in 0..12 {
        let body = dexto_cli_turn(&m, t);
        let before = s.user(&u.id)["balance_micros"].as_i64().unwrap();
        let today_least = byte_bound(&body) * PROMPT_MICROS + OUTPUT_FLOOR * OUTPUT_MICROS;
        match run_turn(s, &u.key, &body) {
            Ok(turn) => {
                settled += 1;
                assert_covered(&turn);
                if t > 0 {
                    s.log_line(&["chat.completion", "\"prompt_bound\":{\"byte_bound\":", &turn.request_id]);
                    assert!(turn.prompt_bound() * 3 < byte_bound(&body), "counted {} vs bytes {}", turn.prompt_bound(), byte_bound(&body));
                    assert!(today_least > before, "the byte bound would have refused turn {t} at {before} µ$");
                }
                below_five_cents += (before <= 50_000) as u32;
                eprintln!(
                    "turn {t}: balance {before} µ$, byte bound {} → hold bound {}, counted {} tokens, hold {} (max_tokens {}), charged {}",
                    byte_bound(&body), turn.prompt_bound(), turn.n("prompt_tokens"), turn.n("hold_micros"), turn.n("max_tokens"), turn.n("price_micros")
                );
            }
            Err((status, error)) => {
                // The wallet ran down: refused with what the tight bound needs.
                assert_eq!(status, 402, "{error}");
                let needed = (error["error"]["needed"].as_f64().unwrap() * 1e6).round() as i64;
                assert!(t >= 4 && needed > before && needed < today_least, "turn {t}: needed {needed}, balance {before}");
                break;
            }
        }
    }
    assert!(below_five_cents >= 1, "a turn was admitted with $0.05 or less");
    s.books_balanced(&u.id, settled);
}

#[test]
fn the_hold_stays_a_bound_turn_after_turn_and_under_worse_tokenization() {
    let s = stack();
    // Realistic (4 bytes a token, 4 template tokens a message), then a worse
    // ratio with four times the template, then every byte a token.
    for (name, faults, turns) in [("real", "message_tokens=4", 8), ("dense", "bytes_per_token=2,message_tokens=16", 4), ("worst", "bytes_per_token=1,message_tokens=16", 3)] {
        let u = s.new_user("2");
        let m = format!("{} [[mock:{faults}]]", marker(name));
        for t in 0..turns {
            let body = dexto_cli_turn(&m, t);
            let turn = run_turn(s, &u.key, &body).unwrap_or_else(|e| panic!("{name} turn {t}: {e:?}"));
            assert_covered(&turn);
            let (counted, bytes) = (turn.prompt_bound(), byte_bound(&body));
            eprintln!("{name} turn {t}: byte bound {bytes}, hold's prompt bound {counted}, upstream counted {}", turn.n("prompt_tokens"));
            match (name, t) {
                (_, 0) => assert_eq!(counted, bytes, "nothing counted yet"),
                // Every byte a token: a count proves at most the JSON syntax
                // less than the bytes (here the tool preamble outweighs that).
                ("worst", _) => assert!(counted <= bytes, "{counted} vs {bytes}"),
                ("dense", _) => assert!(counted < bytes * 3 / 5, "{counted} vs {bytes}"),
                _ => assert!(counted * 3 < bytes, "{counted} vs {bytes}"),
            }
        }
        let mut requests = turns as u64;
        if name == "real" {
            // A new session of the same agent: the same system message and
            // tools, a new question. Its first turn is bounded by the counts too.
            let fresh = dexto_cli_turn(&format!("{} [[mock:{faults}]]", marker("real-again")), 0);
            let turn = run_turn(s, &u.key, &fresh).expect("a new session's first turn");
            assert_covered(&turn);
            assert!(turn.prompt_bound() * 3 < byte_bound(&fresh), "{} vs {}", turn.prompt_bound(), byte_bound(&fresh));
            requests += 1;
        }
        s.books_balanced(&u.id, requests);
    }
}
