#!/usr/bin/env bash
# Tracing overhead on every architecture's built-in tiny model, as Markdown on stdout:
#   bench/archs.sh >> docs/benchmarks.md        REPS=N (default 5) repetitions per level
# One `lltrace bench` receipt per model (32-token prompt, 64 generated tokens), at the levels
# that differ by architecture: graph (node count), timing, values (tensor sizes, the big
# vocabularies' logits). The models are made in the cache first (once).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
reps=${REPS:-5}
for case in tiny:Q4_K_M tiny-gpt2:Q8_0 tiny-qwen3:Q4_0 tiny-gemma3:Q8_0 tiny-qwen3moe:Q8_0 tiny-bitnet:TQ2_0; do
    preset=${case%:*} type=${case#*:}
    model=$("$B"/lltrace mkmodel "$preset" "$type" --cache 2>/dev/null)
    echo "### $preset $type"
    echo
    "$B"/lltrace bench -m "$model" -p 32 -n 64 -r "$reps" --levels off,graph,timing,values 2>/dev/null
    echo
done
