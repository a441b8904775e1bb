//! "What a request costs" (docs/ARCHITECTURE.md), counted by the code itself:
//! the chat Worker's and wallet objects' own counters of billable platform
//! operations (`GET /__ops`, shared/src/workers/ops.rs), read around single
//! warm requests of each kind, priced with `platform_ops::WORKERS_PAID`. The
//! table it prints is the one in ARCHITECTURE; the assertions pin what each
//! kind of request may do, so an added storage write or hop shows up here.

use dexto_shared::platform_ops::Ops;
use integration_tests::{client::send, marker, stack, Stack, TestUser};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Requests measured per kind (the median of each counter is taken, so a rare
/// background pass — an alarm, a key-use projection — does not count).
const SAMPLES: usize = 5;

fn ops(s: &Stack) -> (Ops, i64) {
    let r = send("GET", &format!("{}/__ops", s.base), &[("Authorization", &format!("Bearer {}", s.admin_token))], None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    (serde_json::from_value(v["ops"].clone()).expect("ops"), v["busy"].as_i64().expect("busy"))
}

/// The counters once nothing runs in the background any more (exchanges
/// settled, projections to D1 done).
fn quiet_ops(s: &Stack) -> Ops {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ops, busy) = ops(s);
        if busy == 0 {
            return ops;
        }
        assert!(Instant::now() < deadline, "background work still running after 30 s: {busy}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Per-field median of the operations each of `SAMPLES` calls of `request` made.
fn measure(s: &Stack, request: impl Fn()) -> Ops {
    let samples: Vec<Ops> = (0..SAMPLES)
        .map(|_| {
            let before = quiet_ops(s);
            request();
            quiet_ops(s).since(&before)
        })
        .collect();
    // Field by field, through the counters' JSON form (every field a count).
    let as_map = |o: &Ops| serde_json::to_value(o).expect("ops").as_object().expect("object").clone();
    let maps: Vec<_> = samples.iter().map(as_map).collect();
    let median: serde_json::Map<String, Value> = maps[0]
        .keys()
        .map(|k| {
            let mut v: Vec<u64> = maps.iter().map(|m| m[k].as_u64().expect("count")).collect();
            v.sort_unstable();
            (k.clone(), v[v.len() / 2].into())
        })
        .collect();
    serde_json::from_value(Value::Object(median)).expect("ops")
}

fn body(stream: bool) -> Value {
    json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": format!("hello {}", marker("cost"))}], "max_tokens": 16, "stream": stream})
}

fn non_stream(s: &Stack, u: &TestUser) {
    let r = s.chat(&u.key, &body(false));
    assert_eq!(r.status, 200, "{}", r.body);
}

fn stream(s: &Stack, u: &TestUser) {
    let events = s.stream(&u.key, &body(true)).collect();
    assert!(events.iter().any(|(e, _)| e.contains("[DONE]")), "{events:?}");
}

fn refused(s: &Stack, u: &TestUser) {
    let r = s.chat(&u.key, &body(false));
    assert_eq!(r.status, 402, "{}", r.body);
}

fn row(kind: &str, o: &Ops) -> String {
    format!(
        "| {kind} | {} | {} | {} | {} | {} / {} | {} | {} / {} / {} | {} | {} | {} | ${:.4} |",
        o.worker_requests,
        o.service_calls,
        o.do_requests,
        o.do_statements,
        o.do_rows_read,
        o.do_rows_written,
        o.do_alarm_sets,
        o.d1_queries,
        o.d1_rows_read,
        o.d1_rows_written,
        o.kv_reads,
        o.analytics_points,
        o.subrequests,
        o.micro_usd_per_million(1) as f64 / 1e6,
    )
}

#[test]
fn each_kind_of_chat_request_makes_only_the_operations_it_needs() {
    let s = stack();
    let paying = s.new_user("5");
    let broke = s.new_user("0");
    // Warm: keys, allow-list, catalogue and upstream key cached in the
    // isolate, both wallet objects created, first key-use projected.
    non_stream(s, &paying);
    stream(s, &paying);
    refused(s, &broke);

    let measured = [
        ("non-stream", measure(s, || non_stream(s, &paying))),
        ("stream", measure(s, || stream(s, &paying))),
        ("refused (402)", measure(s, || refused(s, &broke))),
    ];
    println!("| request | Worker requests | service calls | DO requests | DO statements | DO rows read / written | alarm sets | D1 queries / rows read / written | KV reads | AE points | subrequests | platform $ per million |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (kind, o) in &measured {
        println!("{}", row(kind, o));
    }

    for (kind, o) in &measured {
        // One Worker invocation and one wallet-object request: no edge hop, no
        // other Worker, no KV or D1 read on a warm path.
        assert_eq!((o.worker_requests, o.service_calls, o.do_requests), (1, 0, 1), "{kind}: {o:?}");
        assert_eq!((o.kv_reads, o.kv_writes, o.analytics_points), (0, 0, 1), "{kind}: {o:?}");
    }
    let [(_, plain), (_, streamed), (_, refusal)] = &measured;
    // A refusal writes nothing anywhere and calls nobody.
    assert_eq!((refusal.do_rows_written, refusal.do_alarm_sets, refusal.d1_queries, refusal.subrequests), (0, 0, 0, 0), "{refusal:?}");
    for o in [plain, streamed] {
        assert_eq!(o.subrequests, 1, "one upstream call: {o:?}");
        // The settlement's projection: one D1 batch (ledger row, usage row, balance).
        assert_eq!(o.d1_queries, 3, "{o:?}");
        assert!(o.do_rows_written <= DO_ROWS_WRITTEN_MAX, "DO rows written per request: {o:?}");
    }

    // A non-stream reply still being read 100 ms after its headers gets its
    // generation id recorded for the sweep (a key-value write, removed with
    // the hold: two rows), once, by a deadline on the object's one timer
    // (functions/chat/src/deadlines.rs); one read at once costs neither.
    // (In this test, not one of its own: the counters are the isolate's.)
    let slow = measure(s, || {
        let content = format!("slow {} [[mock:body_delay_ms=400]]", marker("cost"));
        let r = s.chat(&paying.key, &json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": content}], "max_tokens": 16}));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.json()["usage"]["completion_tokens"].as_u64().is_some(), "{}", r.body);
    });
    assert_eq!((slow.do_statements, slow.do_rows_written), (plain.do_statements + 2, plain.do_rows_written + 2), "fast {plain:?}\nslow {slow:?}");
}

/// What the wallet object writes per settled request at most (see
/// ARCHITECTURE, "What a request costs", for what each row buys).
const DO_ROWS_WRITTEN_MAX: u64 = 64;

