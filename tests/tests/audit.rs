//! A short run of the randomized billing auditor (tests/src/audit.rs) on a
//! fixed seed. Longer runs: `npm run audit -- --seed N --ops M`.

#[test]
fn a_seeded_random_workload_keeps_every_books_invariant() {
    let seed: u64 = std::env::var("AUDIT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261130);
    let s = integration_tests::start(&[]);
    match integration_tests::audit::run(&s, seed, 60) {
        Ok(report) => {
            eprintln!("audit seed {seed}: {report:?}");
            assert!(report.x402_calls > 0 || std::env::var("AUDIT_SEED").is_ok(), "the fixed seed draws keyless calls: {report:?}");
        }
        Err(violations) => panic!("audit seed {seed} (rerun: AUDIT_SEED={seed}):\n{violations}"),
    }
}
