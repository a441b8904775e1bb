#!/usr/bin/env bash
# Starts the local Ethereum chain (tools/chain/start.mjs: anvil + DextoUSD,
# funded dev accounts) on the pinned node, and prints its JSON line once ready.
# Used by `npm run dev` and the integration tests. Stops with its process group.
# Usage: chain.sh [--chain-id N] [--out FILE] [--log FILE]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec node "$ROOT/tools/chain/start.mjs" "$@"
