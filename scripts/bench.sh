#!/usr/bin/env bash
# npm run bench: added latency vs the mock, and wasm sizes. BENCH_N sets the sample count.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/build-workers.sh"
cd "$ROOT"
cargo run -q --release -p integration-tests --bin bench
