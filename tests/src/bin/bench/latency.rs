//! Added latency: the same request sent in turn to each target and directly to
//! the mock, one keep-alive connection per endpoint, the order rotated every
//! round so that machine noise and position hit every endpoint alike. "Added"
//! is a target's percentile minus the mock's.

use crate::{ms, percentile};
use crate::targets::Target;
use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

/// Added p50 and p99, in milliseconds.
pub struct Added {
    pub p50: f64,
    pub p99: f64,
}

/// A response's `Server-Timing` phases (name, ms), in order.
type Phases = Vec<(String, f64)>;

fn phases(header: &str) -> Phases {
    header
        .split(',')
        .filter_map(|m| {
            let (name, dur) = m.trim().split_once(";dur=")?;
            Some((name.to_string(), dur.parse().ok()?))
        })
        .collect()
}

/// Total time for a non-stream call, or time to the first `data:` line for a
/// stream; plus the gateway's own `Server-Timing` phases (ms) when present.
fn timed(agent: &ureq::Agent, url: &str, auth: &str, body: &str, stream: bool) -> (Duration, Phases) {
    let started = Instant::now();
    let resp = agent.post(url).header("Authorization", auth).header("Content-Type", "application/json").send(body).expect("request");
    assert_eq!(resp.status().as_u16(), 200, "bench request to {url} failed");
    let hold = resp.headers().get("server-timing").and_then(|v| v.to_str().ok()).map(phases).unwrap_or_default();
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

/// Unmeasured rounds first: V8 compiles a Worker's wasm with its baseline
/// compiler and tiers hot functions up while it runs, so the first few
/// hundred requests of a Rust Worker are slower than its steady state (a JS
/// Worker warms sooner). Both targets get the same rounds.
const WARM_UP: usize = 200;

/// `n` rounds (after `WARM_UP` unmeasured) of `body` to every target and to the mock
/// (`mock_url`, `mock_auth`); prints each target's figures and returns its added latency.
pub fn run(agent: &ureq::Agent, label: &str, targets: &[&Target], (mock_url, mock_auth): (&str, &str), body: &str, n: usize, stream: bool) -> Vec<Added> {
    let endpoints: Vec<(&str, &str)> = targets.iter().map(|t| (t.url.as_str(), t.auth.as_str())).chain([(mock_url, mock_auth)]).collect();
    let mut samples = vec![Vec::with_capacity(n); endpoints.len()];
    let mut timings: Vec<Vec<Phases>> = vec![Vec::new(); endpoints.len()];
    for round in 0..WARM_UP + n {
        for k in 0..endpoints.len() {
            let i = (round + k) % endpoints.len();
            let (url, auth) = endpoints[i];
            let (took, hold) = timed(agent, url, auth, body, stream);
            if round >= WARM_UP {
                samples[i].push(took);
                if !hold.is_empty() {
                    timings[i].push(hold);
                }
            }
        }
    }
    let mut direct = samples.pop().expect("the mock's samples");
    let (d50, d99) = (ms(percentile(&mut direct, 0.5)), ms(percentile(&mut direct, 0.99)));
    let mut added = Vec::new();
    for ((target, times), timings) in targets.iter().zip(&mut samples).zip(&timings) {
        let (p50, p99) = (ms(percentile(times, 0.5)), ms(percentile(times, 0.99)));
        println!(
            "{label:<28} {:<8} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms | mock p50 {d50:>6.2} ms  p99 {d99:>6.2} ms | added p50 {:>6.2} ms  p99 {:>6.2} ms",
            target.name,
            p50 - d50,
            p99 - d99
        );
        print_phases(target.name, timings);
        added.push(Added { p50: p50 - d50, p99: p99 - d99 });
    }
    added
}

/// Each `Server-Timing` phase's mean and p50 over the samples, in the order
/// the gateway reports them: where the added time goes.
fn print_phases(name: &str, timings: &[Phases]) {
    let Some(first) = timings.first() else { return };
    let line: Vec<String> = first
        .iter()
        .map(|(phase, _)| {
            let mut values: Vec<Duration> = timings.iter().filter_map(|t| t.iter().find(|(p, _)| p == phase)).map(|(_, v)| Duration::from_secs_f64(v.max(0.0) / 1000.0)).collect();
            let mean = values.iter().map(|d| ms(*d)).sum::<f64>() / values.len().max(1) as f64;
            format!("{phase} {mean:.2}/{:.2}", ms(percentile(&mut values, 0.5)))
        })
        .collect();
    println!("{:<28} {name:<8} phases, mean/p50 ms (Server-Timing): {}", "", line.join("  "));
}
