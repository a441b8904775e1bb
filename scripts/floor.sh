#!/usr/bin/env bash
# Runs the bench's floor (tools/bench-floor: a bare Worker + per-user Durable
# Object proxy) in its own `wrangler dev`, the way stack.sh runs the gateway:
# config copied into RUN_DIR with its paths made absolute, local state under
# RUN_DIR/state, the same flags. Started by the bench beside the gateway.
#
# Usage: floor.sh RUN_DIR PORT
# Env:   UPSTREAM_BASE  where chat requests go (the mock)
#        UPSTREAM_KEY   the upstream key the floor sends
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# Two of wrangler's local dev tools cost CPU per request that the deployed
# platform does not charge to a Worker, so they are off unless asked for, for
# the stack and the bench's floor alike (docs/ARCHITECTURE.md, "Benchmark"):
# - the trace collector (its dev UI's traces) runs inside the same workerd
#   process as our Workers and takes every tail event of every invocation,
#   log line and binding call: about a third of the gateway's local CPU;
# - the debug log file: wrangler copies every log line there with a mkdir,
#   an open and a close each. Log lines still reach wrangler's output.
export X_LOCAL_OBSERVABILITY="${X_LOCAL_OBSERVABILITY:-false}"
export WRANGLER_WRITE_LOGS="${WRANGLER_WRITE_LOGS:-false}"
RUN_DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
PORT="$2"
SRC="$ROOT/tools/bench-floor"
sed -E "s#^main = \"([^\"]+)\"#main = \"$SRC/\\1\"#" "$SRC/wrangler.toml" > "$RUN_DIR/floor.toml"

exec "$WRANGLER" dev -c "$RUN_DIR/floor.toml" \
    --var "UPSTREAM_BASE:${UPSTREAM_BASE:?UPSTREAM_BASE is required}" --var "UPSTREAM_KEY:${UPSTREAM_KEY:?UPSTREAM_KEY is required}" \
    --ip 127.0.0.1 --port "$PORT" --inspector-port 0 --show-interactive-dev-session=false \
    --persist-to "$RUN_DIR/state" --log-level "${WRANGLER_LOG_LEVEL:-log}"
