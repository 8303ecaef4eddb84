#!/usr/bin/env bash
# A traced llama-server that runs long (bench/soak.py does the work), as Markdown on stdout:
#   bench/soak.sh >> docs/reliability.md
# llama-server --parallel 2 under lltrace exec at each level of LEVELS (default "graph timing"),
# two concurrent clients until TOKENS tokens (default 100000) are generated, sampled every
# INTERVAL seconds (default 10): the server's RSS, the step logs, the trace, tokens/s; then kill -9
# at a random moment and the trace checked. MODEL: a built-in model name (default tiny, F32: about
# 1,000 tokens/s on 2 cores, so the 100,000 tokens take two minutes a level).
# Exits 1 when a check fails. Run it on a quiet machine: the tokens/s column is wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
tokens=${TOKENS:-100000}
interval=${INTERVAL:-10}
levels=${LEVELS:-off graph timing} # off: the server untraced, the baseline of its memory
prefix=${LLAMA_PREFIX:-$(scripts/bootstrap-llama.sh --programs | tail -n 1)}
model=$("$B"/lltrace mkmodel "${MODEL:-tiny}" F32 --cache)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "### A traced llama-server for $tokens tokens ($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo
echo "\`lltrace exec --level L -- llama-server -m $(basename "$model") --parallel 2 -c 2048 -t 2\`, two clients asking"
echo "for 128 tokens at a time (temperature 0.8), then \`kill -9\` of the server at a random moment."
echo
rc=0
for level in $levels; do
    python3 bench/soak.py "$B/lltrace" "$prefix/bin/llama-server" "$model" "$level" "$tokens" "$interval" "$tmp" || rc=1
done
exit $rc
