//! `npm run audit -- --seed N --ops M`: the randomized billing auditor
//! (tests/src/audit.rs) against a fresh local stack. Prints the seed, what ran
//! and every violated invariant; exits 1 on a violation.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse::<u64>().ok());
    let seed = flag("--seed").unwrap_or_else(|| integration_tests::now_ms() as u64);
    let ops = flag("--ops").unwrap_or(500) as usize;
    println!("audit: seed {seed}, {ops} operations");
    let stack = integration_tests::start(&[]);
    match integration_tests::audit::run(&stack, seed, ops) {
        Ok(report) => println!("audit: seed {seed}: all invariants hold ({report:?})"),
        Err(violations) => {
            println!("audit: seed {seed}: VIOLATIONS\n{violations}");
            std::process::exit(1);
        }
    }
}
