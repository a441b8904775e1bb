//! `npm run bench`: latency the gateway adds over calling the mock directly.
//! Starts the real local stack, then alternates identical requests between the
//! gateway and the mock (keep-alive connections on both sides) and prints
//! percentiles of each and of the difference, plus each Worker's wasm size.
//! Then one hot wallet with 50 concurrent streams (bench/hot_wallet.rs), and
//! the usage endpoints on a seeded ≥100k-row ledger (bench/usage.rs).
//! Figures are printed, never asserted.

#[path = "bench/hot_wallet.rs"]
mod hot_wallet;
#[path = "bench/usage.rs"]
mod usage;

use integration_tests::client::agent;
use integration_tests::start;
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Total time for a non-stream call, or time to the first `data:` line for a
/// stream; plus the gateway's own `Server-Timing: hold;dur=` (ms) when present.
fn timed(agent: &ureq::Agent, url: &str, auth: &str, body: &str, stream: bool) -> (Duration, Option<f64>) {
    let started = Instant::now();
    let resp = agent.post(url).header("Authorization", auth).header("Content-Type", "application/json").send(body).expect("request");
    assert_eq!(resp.status().as_u16(), 200, "bench request failed");
    let hold = resp
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|m| m.trim().strip_prefix("hold;dur=")).and_then(|d| d.parse().ok()));
    let mut reader = BufReader::new(resp.into_body().into_reader());
    if stream {
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && !line.starts_with("data:") {
            line.clear();
        }
        let first = started.elapsed();
        std::io::copy(&mut reader, &mut std::io::sink()).ok();
        (first, hold)
    } else {
        let mut sink = Vec::new();
        reader.read_to_end(&mut sink).ok();
        (started.elapsed(), hold)
    }
}

fn report(label: &str, gateway: &mut [Duration], direct: &mut [Duration]) {
    let (g50, g99, d50, d99) = (percentile(gateway, 0.5), percentile(gateway, 0.99), percentile(direct, 0.5), percentile(direct, 0.99));
    println!(
        "{label:<28} gateway p50 {:>7.2} ms  p99 {:>7.2} ms | mock p50 {:>6.2} ms  p99 {:>6.2} ms | added p50 {:>6.2} ms  p99 {:>6.2} ms",
        ms(g50), ms(g99), ms(d50), ms(d99), ms(g50) - ms(d50), ms(g99) - ms(d99)
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    // Limits off: the bench measures the gateway, not its throttles.
    let stack = start(&[("RATE_LIMIT_PER_MINUTE", "0"), ("MAX_CONCURRENT_REQUESTS", "0")]);
    let user = stack.new_user("100");
    let gateway_auth = format!("Bearer {}", user.key);
    let gateway_url = format!("{}/v1/chat/completions", stack.base);
    let mock_url = format!("{}/chat/completions", stack.mock);
    let mock_auth = "Bearer sk-or-v1-bench";
    let agent = agent();

    // The floor: what local `wrangler dev` itself costs (its proxy + the edge
    // Worker answering /health with no storage), to read the figures below against.
    let health = format!("{}/health", stack.base);
    let mut floor: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let mut resp = agent.get(&health).call().expect("health");
            resp.body_mut().read_to_string().ok();
            started.elapsed()
        })
        .collect();
    println!("{:<28} p50 {:>7.2} ms  p99 {:>7.2} ms  (local wrangler dev floor: edge Worker, no storage)", "GET /health", ms(percentile(&mut floor, 0.5)), ms(percentile(&mut floor, 0.99)));

    for (label, stream) in [("non-stream total", false), ("stream time-to-first-byte", true)] {
        let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 8, "stream": stream,
            "messages": [{"role": "user", "content": "benchmark prompt of ordinary length"}]})
        .to_string();
        for _ in 0..20 {
            timed(&agent, &gateway_url, &gateway_auth, &body, stream);
            timed(&agent, &mock_url, mock_auth, &body, stream);
        }
        let (mut gateway, mut direct, mut holds) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let (g, hold) = timed(&agent, &gateway_url, &gateway_auth, &body, stream);
            gateway.push(g);
            holds.push(Duration::from_secs_f64(hold.unwrap_or(0.0) / 1000.0));
            direct.push(timed(&agent, &mock_url, mock_auth, &body, stream).0);
        }
        report(label, &mut gateway, &mut direct);
        println!("{:<28} auth+validate+hold (Server-Timing) p50 {:>6.2} ms  p99 {:>6.2} ms", "", ms(percentile(&mut holds, 0.5)), ms(percentile(&mut holds, 0.99)));
    }

    hot_wallet::run(&stack, 50, 4, percentile);

    // BENCH_USAGE=0 skips the usage figures (seeding 150k ledger rows takes minutes).
    if std::env::var("BENCH_USAGE").as_deref() != Ok("0") {
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
    println!("(n = {n} per series, sequential, one keep-alive connection per side, 2-core local workerd)");
}
