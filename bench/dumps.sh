#!/usr/bin/env bash
# How reading a checkpoint dump grows with its size, as Markdown on stdout (issue 21 §3):
#   bench/dumps.sh >> docs/benchmarks.md
# For each STEPS (default "50 100 200 400"): `lltrace run --checkpoints` of the small Q4_K_M
# model for that many steps, then the wall time of `inspect --no-metadata`, of `diff` of the
# dump against itself for one tensor, and of `report --data`. Linear reading doubles each time
# with the steps; a reader that scans every key for every tensor quadruples. Wall time: run it
# on a quiet machine (a doubling is far above the noise, the figures are not).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
STEPS=${STEPS:-50 100 200 400}
model=$("$B"/lltrace mkmodel small Q4_K_M --cache)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || echo "bench/dumps.sh: $* failed" >&2; t1=$(date +%s.%N)
         awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'; }

echo "### Opening checkpoint dumps ($(date -u +%Y-%m-%d), $(nproc) cores, wall time)"
echo
echo "| steps | tensors | file | inspect --no-metadata s | diff (one tensor) s | report --data s |"
echo "|---|---|---|---|---|---|"
for n in $STEPS; do
    t=$tmp/d$n.db
    "$B"/lltrace run -m "$model" -p "Hello" -n "$n" -c $((n + 64)) --checkpoints -o "$t" >/dev/null 2>&1
    dump=$t.run1.gguf
    tensors=$("$B"/lltrace inspect "$dump" --no-metadata --format csv 2>/dev/null | tail -n +2 | wc -l)
    size=$(awk -v s="$(stat -c %s "$dump")" 'BEGIN { printf "%.0f MiB", s / 1048576 }')
    a=$(secs "$B"/lltrace inspect "$dump" --no-metadata)
    b=$(secs "$B"/lltrace diff "$dump" "$dump" --name 'l_out-0#0')
    c=$(secs "$B"/lltrace report "$t" --data -o "$tmp/r.json")
    echo "| $n | $tensors | $size | $a | $b | $c |"
    rm -f "$t" "$t"-* "$dump"
done
echo
