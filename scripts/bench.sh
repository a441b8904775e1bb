#!/usr/bin/env bash
# npm run bench: the gateway's figures beside its floor's (tools/bench-floor) and
# their ratio, usage queries on a seeded ledger, wasm sizes. Printed, never
# asserted. Knobs (README, "Benchmark"): BENCH_N, BENCH_SECONDS, BENCH_USAGE=0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/build-workers.sh"
cd "$ROOT"
cargo run -q --release -p integration-tests --bin bench
