# Sourced by every script: pinned tool locations and the variables that keep
# wrangler and worker-build from reaching the network (see
# ../shared/reference/workers-toolchain.md). Tools live in a per-user cache so a
# fresh clone installs them once and re-runs are fast.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export WASM_BINDGEN_VERSION=0.2.130   # must equal wasm-bindgen in Cargo.lock
export WORKER_BUILD_VERSION=0.8.7
export DEXTO_TOOLS="${DEXTO_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/dexto-tools}"
export WASM_BINDGEN_BIN="$DEXTO_TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION/bin/wasm-bindgen"
export WORKER_BUILD_BIN="$DEXTO_TOOLS/worker-build-$WORKER_BUILD_VERSION/bin/worker-build"
# wrangler needs Node >= 22.12; the machines have Node 20. bootstrap.sh installs
# this exact Node from the npm registry's `node` package; its bin dir goes first
# on PATH so wrangler, npm ci and every script here run on it.
export DEXTO_NODE_VERSION=22.23.3
export DEXTO_NODE_DIR="$DEXTO_TOOLS/node-$DEXTO_NODE_VERSION"
export DEXTO_NODE_BIN="$DEXTO_NODE_DIR/node_modules/.bin"
case ":$PATH:" in *":$DEXTO_NODE_BIN:"*) ;; *) export PATH="$DEXTO_NODE_BIN:$PATH" ;; esac
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WRANGLER="$ROOT/node_modules/.bin/wrangler"
export WRANGLER_SEND_METRICS=false
export WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_HIDE_BANNER=true
export WRANGLER_LOG_PATH="${WRANGLER_LOG_PATH:-$ROOT/.wrangler/logs}"
# The coding agents and SDKs the agent-client tests drive (tools/agents/): one
# cached install per lock file, so a changed pin installs beside the old one.
export DEXTO_AGENTS_DIR="$DEXTO_TOOLS/agents-$(sha256sum "$ROOT/tools/agents/package-lock.json" | cut -c1-16)"
export DEXTO_CLAUDE_BIN="$DEXTO_AGENTS_DIR/node_modules/.bin/claude"
export DEXTO_CODEX_BIN="$DEXTO_AGENTS_DIR/node_modules/.bin/codex"
# The local Ethereum chain (tools/chain/: anvil, solc-js, viem), likewise one
# cached install per lock file; start it with scripts/chain.sh.
export DEXTO_CHAIN_DIR="$DEXTO_TOOLS/chain-$(sha256sum "$ROOT/tools/chain/package-lock.json" | cut -c1-16)"
# x402 on that chain (tools/x402/: the @x402 packages and viem): a local
# facilitator, a paying client and a stand-in paid resource; likewise per lock file.
export DEXTO_X402_DIR="$DEXTO_TOOLS/x402-$(sha256sum "$ROOT/tools/x402/package-lock.json" | cut -c1-16)"
# Every Worker crate under functions/. Adding a Worker: list it here, in
# Cargo.toml members, as a service in wrangler.toml and in the edge's ROUTES.
export WORKERS="chat edge admin identity billing usage dashboard"
