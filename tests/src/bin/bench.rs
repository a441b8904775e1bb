//! `npm run bench`: what the gateway adds, read against its floor. Starts the
//! real local stack and the floor (tools/bench-floor: a bare Worker + per-user
//! Durable Object proxy writing one hold row and one settlement row, in its
//! own `wrangler dev` on the same mock), then, interleaving gateway and floor:
//! added latency over calling the mock directly (bench/latency.rs), 50
//! concurrent streams of one user (bench/hot_wallet.rs), one wallet's
//! non-stream throughput with 32 clients (bench/throughput.rs), and prints
//! them as gateway | floor | ratio (bench/table.rs). Then the usage endpoints
//! on a seeded ≥100k-row ledger (bench/usage.rs) and each Worker's wasm size.
//! Figures are printed, never asserted.

#[path = "bench/hot_wallet.rs"]
mod hot_wallet;
#[path = "bench/latency.rs"]
mod latency;
#[path = "bench/table.rs"]
mod table;
#[path = "bench/targets.rs"]
mod targets;
#[path = "bench/throughput.rs"]
mod throughput;
#[path = "bench/usage.rs"]
mod usage;

use integration_tests::client::agent;
use integration_tests::start;
use serde_json::json;
use std::time::{Duration, Instant};
use targets::{Floor, Target, MOCK_AUTH};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `BENCH_PARTS` (comma-separated: latency, dialects, throughput, hot, usage)
/// runs only those parts, for iterating on one figure; unset runs all.
fn part(name: &str) -> bool {
    std::env::var("BENCH_PARTS").map_or(true, |parts| parts.split(',').any(|p| p.trim() == name))
}

fn chat_body(stream: bool) -> String {
    json!({"model": "openai/gpt-4o-mini", "max_tokens": 8, "stream": stream,
        "messages": [{"role": "user", "content": "benchmark prompt of ordinary length"}]})
    .to_string()
}

/// Chat's body is also a valid Messages body (`max_tokens`, `messages`).
fn responses_body(stream: bool) -> String {
    json!({"model": "openai/gpt-4o-mini", "max_output_tokens": 8, "stream": stream, "input": "benchmark prompt of ordinary length"}).to_string()
}

fn main() {
    let n = env_number("BENCH_N", 300) as usize;
    let seconds = env_number("BENCH_SECONDS", 10);
    // Limits off: the bench measures the gateway, not its throttles.
    let stack = start(&[("RATE_LIMIT_PER_MINUTE", "0"), ("MAX_CONCURRENT_REQUESTS", "0")]);
    let floor = Floor::start(&stack);
    let mock = (format!("{}/chat/completions", stack.mock), MOCK_AUTH);
    let agent = agent();

    // What local `wrangler dev` itself costs (its proxy, the chat Worker
    // handing /health to the edge Worker, no storage), to read the figures below against.
    let health = format!("{}/health", stack.base);
    let mut baseline: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let mut resp = agent.get(&health).call().expect("health");
            resp.body_mut().read_to_string().ok();
            started.elapsed()
        })
        .collect();
    println!("{:<28} p50 {:>7.2} ms  p99 {:>7.2} ms  (local wrangler dev: chat → edge Worker, no storage)", "GET /health", ms(percentile(&mut baseline, 0.5)), ms(percentile(&mut baseline, 0.99)));

    let mut table = table::Table::default();
    let (gateway, bare) = (Target::gateway(&stack), Target::floor(&floor, "latency"));
    let warm_seconds = env_number("BENCH_WARM_UP_SECONDS", 8);
    let warmed = throughput::warm_up(&[&gateway, &bare], &[chat_body(false), chat_body(true)], 8, warm_seconds);
    println!("{:<28} gateway {} calls, floor {} calls ({warm_seconds} s of each of non-stream and stream, 8 clients; V8 tiers wasm up as it runs)", "warm-up, unmeasured", warmed[0], warmed[1]);
    let mut chat_added = Vec::new();
    let latency_series = if part("latency") || part("dialects") { vec![("non-stream total", "non-stream added", false), ("stream time-to-first-byte", "stream TTFB added", true)] } else { vec![] };
    for (label, figure, stream) in latency_series {
        let added = latency::run(&agent, label, &[&gateway, &bare], (&mock.0, mock.1), &chat_body(stream), n, stream);
        table.add(&format!("{figure} p50"), "ms", added[0].p50, added[1].p50);
        table.add(&format!("{figure} p99"), "ms", added[0].p99, added[1].p99);
        chat_added.push((figure, added[0].p50, added[0].p99));
    }
    // The other APIs, each against the mock's own endpoint for it, beside chat's figures above.
    let mut dialects = table::Table::titled(["figure", "dialect", "chat", "dialect ÷ chat"]);
    let dialect_series = if part("dialects") { vec![("messages", "/messages", chat_body as fn(bool) -> String), ("responses", "/responses", responses_body)] } else { vec![] };
    for (name, path, body) in dialect_series {
        let target = Target::gateway_at(&stack, &format!("/v1{path}"));
        for (stream, (figure, chat_p50, chat_p99)) in [false, true].into_iter().zip(&chat_added) {
            let label = format!("/v1{path} {}", if stream { "TTFB" } else { "total" });
            let added = latency::run(&agent, &label, &[&target], (&format!("{}{path}", stack.mock), MOCK_AUTH), &body(stream), n, stream);
            dialects.add(&format!("{name} {figure} p50"), "ms", added[0].p50, *chat_p50);
            dialects.add(&format!("{name} {figure} p99"), "ms", added[0].p99, *chat_p99);
        }
    }

    let clients = 32;
    if part("throughput") {
        let tp = throughput::run(&[&Target::gateway(&stack), &Target::floor(&floor, "throughput")], &chat_body(false), clients, seconds);
        table.add(&format!("one wallet, {clients} clients, settled"), "req/s", tp[0].per_s, tp[1].per_s);
        table.count("  … errors (failed + unsettled)", tp[0].errors, tp[1].errors);
    }
    if part("hot") {
        let hot = hot_wallet::run(&[&Target::gateway(&stack), &Target::floor(&floor, "hot")], 50, 4);
        table.add("50 streams, one wallet: TTFB p50", "ms", hot[0].ttfb_p50, hot[1].ttfb_p50);
        table.add("50 streams, one wallet: TTFB p99", "ms", hot[0].ttfb_p99, hot[1].ttfb_p99);
        table.add("50 streams, one wallet", "streams/s", hot[0].streams_per_s, hot[1].streams_per_s);
    }

    println!();
    table.print();
    println!("(n = {n} per latency series, interleaved with the mock; {clients} clients × {seconds} s per target; 50 streams × 4 rounds per target; 2-core local workerd)");
    println!();
    dialects.print();
    println!("(each API's own series against the mock's endpoint for it; chat's from the series above)");
    println!();

    // BENCH_USAGE=0 skips the usage figures (seeding 150k ledger rows takes minutes).
    if std::env::var("BENCH_USAGE").as_deref() != Ok("0") && part("usage") {
        usage::run(&stack, (n / 3).max(20), percentile);
    }

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut workers: Vec<String> = std::fs::read_dir(root.join("functions")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    workers.sort();
    for worker in workers {
        let path = root.join(format!("functions/{worker}/build/index_bg.wasm"));
        let raw = std::fs::read(&path).expect("built wasm");
        let gz = std::process::Command::new("gzip").arg("-9c").arg(&path).output().expect("gzip").stdout.len();
        println!("wasm dexto-{worker:<6} {:>8} bytes raw  {:>8} bytes gzip", raw.len(), gz);
    }
}
