#!/usr/bin/env bash
# Runs one of the x402 tools (tools/x402/NAME.mjs) on the pinned node with the
# pinned @x402 packages ($DEXTO_X402_DIR, installed by bootstrap.sh):
#   x402.sh facilitator --rpc-url URL --chain-id N --key 0x…   (the local facilitator; prints {"url", …})
#   x402.sh pay URL [--scheme exact|upto] [--key 0x…] …          (pays a 402; prints {status, body, payment_response})
#   x402.sh demo-resource --facilitator URL …                     (a stand-in paid resource for tests)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
case "${1:-}" in
    facilitator|pay|demo-resource) tool="$1"; shift ;;
    *) echo "usage: x402.sh facilitator|pay|demo-resource ARGS…" >&2; exit 2 ;;
esac
exec node "$ROOT/tools/x402/$tool.mjs" "$@"
