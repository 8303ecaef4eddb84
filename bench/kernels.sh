#!/usr/bin/env bash
# Instructions per element of the two array kernels, under callgrind, as Markdown on stdout:
#   bench/kernels.sh >> docs/benchmarks.md
# - diff: llt_diff_compute() in bench-diff on 2 x MIB MiB of F32 (its 3 kernel runs and its 3
#   set diffs: 6 passes over the pair), instructions / (6 x elements per side);
# - statistics: llt_stats_compute() in `lltrace inspect --stats` of the tiny F32 model (every
#   tensor F32), instructions / the model's elements.
# Counts do not move with the machine's load (bench-diff's GB/s do: run it on a quiet machine).
# BASE=<build dir> adds the same figures for another build. Env: LLTRACE_BUILD_DIR, MIB (16).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
BASE=${BASE:-}
MIB=${MIB:-16}
command -v valgrind >/dev/null || { echo "kernels: valgrind is missing" >&2; exit 2; }
model=$("$B"/lltrace mkmodel tiny F32 --cache)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

collected() { # FUNCTION COMMAND...: instructions inside FUNCTION (inclusive), all calls
    local fn=$1; shift
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect="$fn" "$@" >/dev/null 2>"$tmp/vg" ||
        { echo "kernels: $* failed" >&2; exit 1; }
    awk '/Collected :/ { print $NF }' "$tmp/vg"
}
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

elements=$("$B"/lltrace inspect "$model" --no-metadata --format json |
          python3 -c 'import json, sys; print(sum(t["elements"] for t in json.load(sys.stdin)["tensors"]))')
per_side=$((MIB * 1024 * 1024 / 4 / 8 * 8)) # bench-diff's floats per side with 8 tensors
figures() { # BUILD: diff and statistics instructions per element
    local d s
    d=$(collected llt_diff_compute "$1"/bench/bench-diff "$MIB" 8)
    s=$(collected llt_stats_compute "$1"/lltrace inspect "$model" --stats --no-metadata)
    echo "$(per "$d" $((6 * per_side))) | $(per "$s" "$elements")"
}

echo "### Array kernels in instructions per element ($(date -u +%Y-%m-%d), callgrind)"
echo
if [ -n "$BASE" ]; then
    echo "| build | diff (F32 pair) | statistics (F32) |"
    echo "|---|---|---|"
    echo "| base ($BASE) | $(figures "$BASE") |"
    echo "| this ($B) | $(figures "$B") |"
else
    echo "| diff (F32 pair) | statistics (F32) |"
    echo "|---|---|"
    echo "| $(figures "$B") |"
fi
echo
