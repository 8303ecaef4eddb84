#!/usr/bin/env bash
# node-llama-cpp@3.22.1 (the npm package whose llama.cpp is the pinned one) with its prebuilt
# Linux x64 CPU binaries, installed once into the cache for lltrace exec's test. Prints its
# node_modules folder on the last line.
# Env: LLTRACE_CACHE (default ~/.cache/lltrace).
set -euo pipefail
CACHE="${LLTRACE_CACHE:-$HOME/.cache/lltrace}"
dir="$CACHE/node-llama-cpp-3.22.1"
if [ ! -f "$dir/.complete" ]; then
    command -v npm >/dev/null || { echo "node-llama-cpp: npm is missing (apt-get install npm)" >&2; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    echo '{"name":"lltrace-node-llama-cpp","private":true}' >"$dir/package.json"
    echo "node-llama-cpp: installing node-llama-cpp@3.22.1 into $dir (once)" >&2
    # no install scripts (they would build llama.cpp), no optional GPU packages: the CPU binaries only
    (cd "$dir" && npm install --save-exact --no-audit --no-fund --ignore-scripts --omit=optional \
        node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 >&2)
    touch "$dir/.complete"
fi
echo "$dir/node_modules"
