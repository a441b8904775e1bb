#!/usr/bin/env bash
# npm run audit -- --seed N --ops M: the randomized billing auditor on a fresh stack.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/build-workers.sh"
cd "$ROOT"
cargo run -q --release -p integration-tests --bin audit -- "$@"
