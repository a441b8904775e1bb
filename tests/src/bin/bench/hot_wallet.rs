//! One hot wallet: C concurrent streams of one user, repeated R rounds. Every
//! stream of a user is owned (read, split, metered, settled) by that user's
//! wallet object, so this measures what one object's single thread sustains:
//! time to first byte under contention and stream throughput.

use integration_tests::Stack;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

pub fn run(stack: &Stack, concurrency: usize, rounds: usize, percentile: fn(&mut [Duration], f64) -> Duration) {
    let user = stack.new_user("100");
    let url = format!("{}/v1/chat/completions", stack.base);
    let auth = format!("Bearer {}", user.key);
    // 50 content frames 20 ms apart per stream (~1 s), each metered by the object.
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hot wallet [[mock:tokens=50,chunk_delay_ms=20]]"}]})
    .to_string();
    let mut ttfb = Vec::new();
    let mut events = 0usize;
    let started = Instant::now();
    for _ in 0..rounds {
        let barrier = Arc::new(Barrier::new(concurrency));
        let results: Vec<(Duration, usize)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (barrier, url, auth, body) = (barrier.clone(), url.clone(), auth.clone(), body.clone());
                    scope.spawn(move || {
                        let agent = integration_tests::client::agent();
                        barrier.wait();
                        let t = Instant::now();
                        let resp = agent.post(&url).header("Authorization", &auth).send(&body).expect("hot wallet stream");
                        assert_eq!(resp.status().as_u16(), 200);
                        let mut reader = BufReader::new(resp.into_body().into_reader());
                        let (mut first, mut n, mut line) = (None, 0, String::new());
                        while reader.read_line(&mut line).unwrap_or(0) > 0 {
                            if line.starts_with("data:") {
                                first.get_or_insert(t.elapsed());
                                n += 1;
                            }
                            line.clear();
                        }
                        (first.expect("a data frame"), n)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (first, n) in results {
            ttfb.push(first);
            events += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let streams = concurrency * rounds;
    let (p50, p99) = (percentile(&mut ttfb, 0.5), percentile(&mut ttfb, 0.99));
    println!(
        "{:<28} {concurrency} concurrent × {rounds} rounds: {:.1} streams/s, {:.0} events/s; TTFB p50 {:.2} ms  p99 {:.2} ms",
        "hot wallet (one user)",
        streams as f64 / elapsed,
        events as f64 / elapsed,
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
}
