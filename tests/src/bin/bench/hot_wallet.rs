//! One hot wallet: C concurrent streams of one user, repeated R rounds per
//! target, the targets' rounds alternating. Every stream of a user is owned
//! (read, split, metered, settled) by that user's wallet object, so this
//! measures what one object's single thread sustains: time to first byte
//! under contention and stream throughput. Each stream slot keeps its
//! keep-alive connection across rounds; after each round the bench waits,
//! untimed, until the round is settled, so no target's settling spills into
//! the other's round.

use crate::targets::Target;
use crate::{ms, percentile};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

pub struct HotWallet {
    pub streams_per_s: f64,
    pub ttfb_p50: f64,
    pub ttfb_p99: f64,
}

/// One round: `agents.len()` streams at once; each one's TTFB and data frames.
fn round(target: &Target, agents: &[ureq::Agent], body: &str) -> Vec<(Duration, usize)> {
    let barrier = Arc::new(Barrier::new(agents.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = agents
            .iter()
            .map(|agent| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    let t = Instant::now();
                    let resp = agent.post(&target.url).header("Authorization", &target.auth).send(body).expect("hot wallet stream");
                    assert_eq!(resp.status().as_u16(), 200, "hot wallet stream via {}", target.name);
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
    })
}

pub fn run(targets: &[&Target], concurrency: usize, rounds: usize) -> Vec<HotWallet> {
    // 50 content frames 20 ms apart per stream (~1 s), each metered by the object.
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hot wallet [[mock:tokens=50,chunk_delay_ms=20]]"}]})
    .to_string();
    let agents: Vec<Vec<ureq::Agent>> = targets.iter().map(|_| (0..concurrency).map(|_| integration_tests::client::agent()).collect()).collect();
    let mut ttfb = vec![Vec::new(); targets.len()];
    let mut events = vec![0usize; targets.len()];
    let mut elapsed = vec![Duration::ZERO; targets.len()];
    let mut expected: Vec<u64> = targets.iter().map(|t| t.settled()).collect();
    let mut settled = expected.clone();
    for _ in 0..rounds {
        for (i, target) in targets.iter().enumerate() {
            let started = Instant::now();
            for (first, n) in round(target, &agents[i], &body) {
                ttfb[i].push(first);
                events[i] += n;
            }
            elapsed[i] += started.elapsed();
            expected[i] += concurrency as u64;
            settled[i] = target.await_settled(expected[i]);
        }
    }
    targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let secs = elapsed[i].as_secs_f64();
            let figures = HotWallet {
                streams_per_s: (concurrency * rounds) as f64 / secs,
                ttfb_p50: ms(percentile(&mut ttfb[i], 0.5)),
                ttfb_p99: ms(percentile(&mut ttfb[i], 0.99)),
            };
            println!(
                "{:<28} {:<8} {concurrency} concurrent × {rounds} rounds: {:.1} streams/s, {:.0} events/s; TTFB p50 {:.2} ms  p99 {:.2} ms; {} unsettled",
                "hot wallet (one user)",
                target.name,
                figures.streams_per_s,
                events[i] as f64 / secs,
                figures.ttfb_p50,
                figures.ttfb_p99,
                expected[i].saturating_sub(settled[i])
            );
            figures
        })
        .collect()
}
