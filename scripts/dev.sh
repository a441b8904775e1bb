#!/usr/bin/env bash
# npm run dev: build, start the mock OpenRouter (unless OPENROUTER_BASE_URL is
# set), start the whole gateway in one `wrangler dev` on $PORT (default 8787)
# with local D1/KV/DO and migrations applied, seed a dev user whose wallet
# holds $10, print the base URL and a ready-to-use DEXTO_API_KEY, and write the
# same to .dev/session.json. A local Ethereum chain (scripts/chain.sh: anvil
# with our USDC-like token and funded dev accounts) runs beside it unless
# EVM_RPC_URL names another node, with an x402 facilitator for it (Workers'
# X402_FACILITATOR_URL). Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
DEV_DIR="${DEV_DIR:-$ROOT/.dev}"
PORT="${PORT:-8787}"
mkdir -p "$DEV_DIR"

bash "$ROOT/scripts/build-workers.sh"
pids=()
# Every child runs in its own process group (setsid): kill the groups, or
# workerd processes outlive us.
cleanup() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Reads a process's output file until a line matches; prints the match.
wait_for_line() { # FILE PATTERN PID
    for _ in $(seq 1 600); do
        if line=$(grep -m1 -oE "$2" "$1" 2>/dev/null); then echo "$line"; return 0; fi
        kill -0 "$3" 2>/dev/null || { cat "$1" >&2; return 1; }
        sleep 0.2
    done
    echo "timed out waiting for '$2' in $1" >&2; return 1
}

# Started first: the chain is up while the mock builds.
if [ -z "${EVM_RPC_URL:-}" ]; then
    rm -f "$DEV_DIR/chain.json"
    setsid bash "$ROOT/scripts/chain.sh" --out "$DEV_DIR/chain.json" --log "$DEV_DIR/anvil.log" > "$DEV_DIR/chain.log" 2>&1 &
    pids+=($!)
    CHAIN_PID=$!
fi

if [ -z "${OPENROUTER_BASE_URL:-}" ]; then
    cargo build -q -p mock-openrouter
    # Its upstream keys outlive a restart, as OpenRouter's do: the wallets
    # in $DEV_DIR's state minted them and keep using them.
    MOCK_OPENROUTER_KEYS_FILE="$DEV_DIR/mock-keys.json" \
        setsid "$ROOT/target/debug/mock-openrouter" --port 0 > "$DEV_DIR/mock.log" 2>&1 &
    pids+=($!)
    OPENROUTER_BASE_URL=$(wait_for_line "$DEV_DIR/mock.log" 'http://127\.0\.0\.1:[0-9]+' "${pids[-1]}")
    echo "mock OpenRouter on $OPENROUTER_BASE_URL" >&2
    # The mock also serves the management API (per-user keys) and a Supabase JWKS.
    export OPENROUTER_PROVISIONING_KEY="${OPENROUTER_PROVISIONING_KEY:-sk-or-v1-mgmt-dev-0000}"
    export SUPABASE_URL="${SUPABASE_URL:-$OPENROUTER_BASE_URL}"
    # ...and Stripe's Checkout API.
    export STRIPE_API_BASE="${STRIPE_API_BASE:-$OPENROUTER_BASE_URL}"
    export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_mock}"
    # ...and the hosted pages: Supabase sign-in and Stripe Checkout.
    export CHECKOUT_ORIGIN="${CHECKOUT_ORIGIN:-$OPENROUTER_BASE_URL}"
    export SUPABASE_AUTH_PROVIDERS="${SUPABASE_AUTH_PROVIDERS:-github}"
    export DEV_SIGN_IN_NOTE="  (sign in: \"Continue with GitHub\" → the mock's page → Continue, as dev@example.com)"
    MOCK_UPSTREAM=1
fi
export OPENROUTER_BASE_URL
# Local Supabase sessions: HS256 tokens signed with a dev secret kept in .dev/.
export SUPABASE_URL="${SUPABASE_URL:-http://127.0.0.1:54321}"
if [ -z "${SUPABASE_JWT_SECRET:-}" ]; then
    [ -s "$DEV_DIR/jwt_secret" ] || (umask 077; node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))' > "$DEV_DIR/jwt_secret")
    export SUPABASE_JWT_SECRET="$(cat "$DEV_DIR/jwt_secret")"
fi
# Real upstream: put OPENROUTER_API_KEY in .dev/secrets.env (git-ignored).
[ -f "$DEV_DIR/secrets.env" ] && { set -a; source "$DEV_DIR/secrets.env"; set +a; }
# A dev webhook signing secret, so events can be signed locally (stripe_webhook_secret).
if [ -z "${STRIPE_WEBHOOK_SECRET:-}" ]; then
    [ -s "$DEV_DIR/stripe_webhook_secret" ] || (umask 077; node -e 'process.stdout.write("whsec_dev"+require("crypto").randomBytes(24).toString("hex"))' > "$DEV_DIR/stripe_webhook_secret")
    export STRIPE_WEBHOOK_SECRET="$(cat "$DEV_DIR/stripe_webhook_secret")"
fi
if [ ! -s "$DEV_DIR/admin_token" ]; then
    (umask 077; node -e 'process.stdout.write("dev-admin-"+require("crypto").randomBytes(24).toString("hex"))' > "$DEV_DIR/admin_token")
fi
export ADMIN_TOKEN="$(cat "$DEV_DIR/admin_token")"

if [ -n "${CHAIN_PID:-}" ]; then
    wait_for_line "$DEV_DIR/chain.log" '"rpc_url"' "$CHAIN_PID" > /dev/null
    eval "$(node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`EVM_RPC_URL=${c.rpc_url} EVM_CHAIN_ID=${c.chain_id} USDC_CONTRACT=${c.token} TREASURY_ADDRESS=${c.treasury}`)' "$DEV_DIR/chain.json")"
    export DEV_CHAIN_JSON="$DEV_DIR/chain.json"
    # A fresh local chain: the chain scan reads it from its first block.
    EVM_SCAN_FROM_BLOCK="${EVM_SCAN_FROM_BLOCK:-0}"
    # Our token's EIP-712 name (contracts/DextoUSD.sol): x402 exact payments sign over it.
    X402_ASSET_NAME="${X402_ASSET_NAME:-USD Coin (Dexto local)}"
    echo "local chain (anvil) on $EVM_RPC_URL, chain id $EVM_CHAIN_ID" >&2
    # Its x402 facilitator (tools/x402/facilitator.mjs), unless you named one;
    # the chain's facilitator account pays the settlements' gas.
    if [ -z "${X402_FACILITATOR_URL:-}" ]; then
        setsid bash "$ROOT/scripts/x402.sh" facilitator --rpc-url "$EVM_RPC_URL" --chain-id "$EVM_CHAIN_ID" \
            --key "$(node -p 'require(process.argv[1]).facilitator.private_key' "$DEV_DIR/chain.json")" > "$DEV_DIR/x402-facilitator.log" 2>&1 &
        pids+=($!)
        X402_FACILITATOR_URL=$(wait_for_line "$DEV_DIR/x402-facilitator.log" 'http://127\.0\.0\.1:[0-9]+' "${pids[-1]}")
        echo "x402 facilitator on $X402_FACILITATOR_URL (pay with: bash scripts/x402.sh pay URL)" >&2
    fi
fi
# The chain the Workers read (the local one, or the node and token you named),
# and the x402 facilitator that verifies and settles payments on it.
for name in EVM_RPC_URL EVM_CHAIN_ID USDC_CONTRACT TREASURY_ADDRESS EVM_SCAN_FROM_BLOCK X402_FACILITATOR_URL X402_ASSET_NAME; do
    if [ -n "${!name:-}" ]; then STACK_VARS="${STACK_VARS:+$STACK_VARS
}$name=${!name}"; fi
done

# Device login: an empty DEVICE_VERIFICATION_URL sends CLIs to this stack's own
# /device page (the request's origin), not production's.
export STACK_VARS="${STACK_VARS:+$STACK_VARS
}DEVICE_VERIFICATION_URL="

: > "$DEV_DIR/wrangler.log"
setsid bash "$ROOT/scripts/stack.sh" "$DEV_DIR/stack" "$PORT" >> "$DEV_DIR/wrangler.log" 2>&1 &
STACK_PID=$!
pids+=("$STACK_PID")
BASE_URL=$(wait_for_line "$DEV_DIR/wrangler.log" 'Ready on http://127\.0\.0\.1:[0-9]+' "$STACK_PID")
BASE_URL="${BASE_URL#Ready on }"

if [ -n "${MOCK_UPSTREAM:-}" ]; then
    # Paying on the mock's Checkout page sends a signed webhook to this stack.
    node -e 'fetch(process.argv[1] + "/__mock/stripe/webhook", {method: "PUT", body: JSON.stringify({url: process.argv[2] + "/api/stripe/webhook", secret: process.env.STRIPE_WEBHOOK_SECRET})}).then(r => { if (!r.ok) process.exit(1); })' \
        "$OPENROUTER_BASE_URL" "$BASE_URL"
fi
node "$ROOT/scripts/dev-seed.mjs" "$BASE_URL" "$DEV_DIR/session.json"
echo "(logs: $DEV_DIR/wrangler.log — Ctrl-C to stop)" >&2
tail -n 0 -f "$DEV_DIR/wrangler.log" &
pids+=($!)
wait "$STACK_PID"
