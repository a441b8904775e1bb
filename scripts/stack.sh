#!/usr/bin/env bash
# Runs the whole gateway locally in one `wrangler dev`: every Worker in $WORKERS
# (chat first), local D1/KV/Durable Objects under RUN_DIR/state, migrations applied.
# Used by `npm run dev`, the integration tests and the bench, so all three run
# exactly the same stack. `--test-scheduled` lets `GET /__scheduled` fire the
# crons (relayed by the chat Worker: functions/chat/src/cron_relay.rs).
#
# Usage: stack.sh RUN_DIR PORT
# Env:   OPENROUTER_BASE_URL  upstream (the mock, or the real OpenRouter)
#        OPENROUTER_API_KEY   upstream key (secret)
#        ADMIN_TOKEN          admin API token (secret, ≥ 16 chars)
#        OPENROUTER_PROVISIONING_KEY, SUPABASE_URL, SUPABASE_JWT_SECRET, …  optional
#        STACK_VARS           extra KEY=VALUE lines (e.g. PRICE_MARKUP=1.2)
#
# wrangler applies --var/--env-file to the first config only, so per-run values
# go into RUN_DIR/.dev.vars, which wrangler reads for every config in RUN_DIR:
# the committed configs are copied there with their relative paths made absolute.
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

render() { # render SRC DEST: copy a wrangler config, making its paths absolute
    local src="$1" dir
    dir="$(cd "$(dirname "$src")" && pwd)"
    sed -E \
        -e "s#^main = \"([^\"]+)\"#main = \"$dir/\\1\"#" \
        -e "s#^migrations_dir = \"([^\"]+)\"#migrations_dir = \"$dir/\\1\"#" \
        "$src" > "$2"
}
# The first config owns the port: the data plane, as the zone's routes send
# /v1/* straight to it in production. Locally it gets two bindings production
# does not have: EDGE, to which it hands every other path (the stand-in for the
# zone's routes), and CRON_RELAY_BILLING (the first config alone gets
# `GET /__scheduled`; functions/chat/src/cron_relay.rs).
render "$ROOT/functions/chat/wrangler.toml" "$RUN_DIR/chat.toml"
printf '\n[[services]]\nbinding = "EDGE"\nservice = "dexto-edge"\n\n[[services]]\nbinding = "CRON_RELAY_BILLING"\nservice = "dexto-billing"\n' >> "$RUN_DIR/chat.toml"
render "$ROOT/wrangler.toml" "$RUN_DIR/edge.toml"
configs=(-c "$RUN_DIR/chat.toml" -c "$RUN_DIR/edge.toml")
for name in $WORKERS; do
    case "$name" in chat | edge) continue ;; esac
    render "$ROOT/functions/$name/wrangler.toml" "$RUN_DIR/$name.toml"
    configs+=(-c "$RUN_DIR/$name.toml")
done

umask 077
# The key that seals upstream keys must outlive restarts of the same state dir.
[ -s "$RUN_DIR/encryption_key" ] || node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))' > "$RUN_DIR/encryption_key"
{
    echo "OPENROUTER_BASE_URL=${OPENROUTER_BASE_URL:?OPENROUTER_BASE_URL is required}"
    echo "OPENROUTER_API_KEY=${OPENROUTER_API_KEY:-sk-or-v1-local-placeholder}"
    echo "ADMIN_TOKEN=${ADMIN_TOKEN:?ADMIN_TOKEN is required}"
    echo "ENCRYPTION_KEY=${ENCRYPTION_KEY:-$(cat "$RUN_DIR/encryption_key")}"
    # Optional: set only when given (the Workers' [vars] defaults apply otherwise).
    for name in OPENROUTER_PROVISIONING_KEY SUPABASE_URL SUPABASE_JWT_ISSUER SUPABASE_JWT_SECRET SUPABASE_JWKS_URL SUPABASE_JWKS_MIN_REFETCH_SECONDS CORS_ALLOWED_ORIGINS STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET STRIPE_API_BASE CHECKOUT_ORIGIN SUPABASE_AUTH_PROVIDERS; do
        [ -n "${!name:-}" ] && echo "$name=${!name}"
    done
    [ -n "${STACK_VARS:-}" ] && printf '%s\n' "$STACK_VARS"
} > "$RUN_DIR/.dev.vars"

"$WRANGLER" d1 migrations apply DB --local -c "$RUN_DIR/chat.toml" --persist-to "$RUN_DIR/state" >"$RUN_DIR/migrations.log" 2>&1 \
    || { cat "$RUN_DIR/migrations.log" >&2; exit 1; }

exec "$WRANGLER" dev "${configs[@]}" \
    --ip 127.0.0.1 --port "$PORT" --inspector-port "${INSPECTOR_PORT:-0}" --show-interactive-dev-session=false \
    --persist-to "$RUN_DIR/state" --log-level "${WRANGLER_LOG_LEVEL:-log}" --test-scheduled
