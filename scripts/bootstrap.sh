#!/usr/bin/env bash
# Installs what the build and tests need, once: the wasm target, the pinned
# wasm-bindgen CLI and worker-build (cached under $DEXTO_TOOLS), npm packages.
# Idempotent and quiet when everything is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

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
