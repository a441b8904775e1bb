#!/usr/bin/env bash
# Builds every Worker crate to functions/<name>/build/ (release, wasm) with
# worker-build, using the pinned wasm-bindgen and the local esbuild: no downloads.
# Usage: build-workers.sh [name…]   (default: all)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ROOT/scripts/bootstrap.sh"
for name in ${*:-$WORKERS}; do
    echo "build: $name" >&2
    (cd "$ROOT/functions/$name" && "$WORKER_BUILD_BIN" --release >&2)
done
