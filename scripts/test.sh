#!/usr/bin/env bash
# npm test: bootstrap, build the Workers, then every test in one cargo run:
# shared unit tests, mock unit tests, and the integration tests (each test file
# starts its own real `wrangler dev` + mock on free ports).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/build-workers.sh"
cd "$ROOT"
cargo test --no-fail-fast "$@"
