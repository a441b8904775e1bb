//! One wallet's throughput: C keep-alive clients of one user send the same
//! non-stream call back to back. The targets take turns in slices of a few
//! seconds (so machine noise hits both alike); after each slice the bench
//! waits, untimed, until every answered call is settled, so no target's
//! settling spills into the other's slice. Settled req/s = answered calls ÷
//! time in slices; errors = failed calls + calls never settled.

use crate::targets::Target;
use std::io::Read;
use std::time::{Duration, Instant};

const SLICE: Duration = Duration::from_secs(2);
const WARM_UP: Duration = Duration::from_secs(1);

pub struct Throughput {
    pub per_s: f64,
    pub errors: u64,
}

/// One slice: every client calls until `length` has passed; (answered, failed, time).
fn slice(target: &Target, clients: &[ureq::Agent], body: &str, length: Duration) -> (u64, u64, Duration) {
    let started = Instant::now();
    let counts: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .map(|agent| {
                scope.spawn(move || {
                    let (mut ok, mut failed) = (0, 0);
                    while started.elapsed() < length {
                        let answered = agent
                            .post(&target.url)
                            .header("Authorization", &target.auth)
                            .header("Content-Type", "application/json")
                            .send(body)
                            .is_ok_and(|mut resp| resp.status().as_u16() == 200 && resp.body_mut().as_reader().read_to_end(&mut Vec::new()).is_ok());
                        if answered {
                            ok += 1
                        } else {
                            failed += 1
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    (counts.iter().map(|c| c.0).sum(), counts.iter().map(|c| c.1).sum(), elapsed)
}

/// Load before anything is measured: V8 compiles a Worker's wasm with its
/// baseline compiler first and tiers hot functions up on background threads
/// as they run, which goes on for thousands of requests of a Rust Worker (a
/// JS Worker's code is small and warms sooner); profiles of a stack after a
/// few hundred requests still show baseline frames and the optimizing
/// compiler at work. Each target gets `seconds` of each body from `clients`
/// clients, then its calls are awaited settled. Returns the calls sent per target.
pub fn warm_up(targets: &[&Target], bodies: &[String], clients: usize, seconds: u64) -> Vec<u64> {
    let agents: Vec<ureq::Agent> = (0..clients).map(|_| integration_tests::client::agent()).collect();
    targets
        .iter()
        .map(|target| {
            let before = target.settled();
            let sent: u64 = bodies.iter().map(|body| slice(target, &agents, body, Duration::from_secs(seconds)).0).sum();
            target.await_settled(before + sent);
            sent
        })
        .collect()
}

pub fn run(targets: &[&Target], body: &str, clients: usize, seconds: u64) -> Vec<Throughput> {
    let agents: Vec<Vec<ureq::Agent>> = targets.iter().map(|_| (0..clients).map(|_| integration_tests::client::agent()).collect()).collect();
    let mut expected: Vec<u64> = targets.iter().map(|t| t.settled()).collect();
    let mut settled = expected.clone();
    let (mut ok, mut failed, mut elapsed) = (vec![0; targets.len()], vec![0; targets.len()], vec![Duration::ZERO; targets.len()]);
    let slices = seconds.div_ceil(SLICE.as_secs()).max(1);
    for s in 0..=slices {
        for (i, target) in targets.iter().enumerate() {
            // Slice 0 warms each target's connections and object; it is not counted.
            let length = if s == 0 { WARM_UP } else { SLICE };
            let (answered, errors, took) = slice(target, &agents[i], body, length);
            expected[i] += answered;
            settled[i] = target.await_settled(expected[i]);
            if s > 0 {
                (ok[i], failed[i], elapsed[i]) = (ok[i] + answered, failed[i] + errors, elapsed[i] + took);
            }
        }
    }
    targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let figures = Throughput { per_s: ok[i] as f64 / elapsed[i].as_secs_f64(), errors: failed[i] + expected[i].saturating_sub(settled[i]) };
            println!(
                "{:<28} {:<8} {clients} clients × {:.1} s: {:.1} settled req/s, {} failed, {} unsettled",
                "one wallet, non-stream",
                target.name,
                elapsed[i].as_secs_f64(),
                figures.per_s,
                failed[i],
                expected[i].saturating_sub(settled[i])
            );
            figures
        })
        .collect()
}
