#!/usr/bin/env bash
# How reading a checkpoint dump grows with its size, as Markdown on stdout (issue 21 §3):
#   bench/dumps.sh >> docs/benchmarks.md
# For each STEPS (default "50 100 200 400"): `lltrace run --checkpoints` of the small Q4_K_M
# model for that many steps, then the cost of `inspect --no-metadata` of the dump and of `diff`
# of the dump against itself for one tensor. Linear reading doubles each time with the steps; a
# reader that compares every name or key with every other quadruples.
#
# MEASURE=instructions (the default): instructions under callgrind (valgrind), which do not
#   move with the machine's load; millions, the whole process (its loading included).
# MEASURE=wall: seconds of wall time, and `report --data` too (it reads every K/V checkpoint,
#   whose bytes grow with steps²: too slow under callgrind). Run it on a quiet machine.
# BASE=<build dir>: the same figures for another build on the same dumps (e.g. the commit
#   before a change), in columns of their own; BASE_MAX=N only up to N steps (a reader that
#   grows with the square takes minutes under callgrind on the largest).
# Env: LLTRACE_BUILD_DIR (default build), STEPS.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
STEPS=${STEPS:-50 100 200 400}
MEASURE=${MEASURE:-instructions}
BASE=${BASE:-} BASE_MAX=${BASE_MAX:-1000000}
case "$MEASURE" in instructions|wall) ;; *) echo "dumps: MEASURE is instructions or wall" >&2; exit 2 ;; esac
[ "$MEASURE" = wall ] || command -v valgrind >/dev/null || { echo "dumps: valgrind is missing" >&2; exit 2; }
model=$("$B"/lltrace mkmodel small Q4_K_M --cache)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || echo "bench/dumps.sh: $* failed" >&2; t1=$(date +%s.%N)
         awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'; }
minstr() { # COMMAND...: millions of instructions of the whole process
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>"$tmp/vg" >/dev/null || echo "bench/dumps.sh: $* failed" >&2
    awk '/Collected :/ { printf "%.1f", $NF / 1e6 }' "$tmp/vg"; }
cost() { if [ "$MEASURE" = wall ]; then secs "$@"; else minstr "$@"; fi; }
# the figures of one build on one dump: inspect, diff (and report in wall time)
figures() { # BUILD DUMP TRACE
    local a b c
    a=$(cost "$1"/lltrace inspect "$2" --no-metadata)
    b=$(cost "$1"/lltrace diff "$2" "$2" --name 'l_out-0#0')
    if [ "$MEASURE" = wall ]; then c=$(secs "$1"/lltrace report "$3" --data -o "$tmp/r.json"); echo "$a | $b | $c"
    else echo "$a | $b"; fi; }

unit=$([ "$MEASURE" = wall ] && echo "s" || echo "M instr")
names=("inspect --no-metadata $unit" "diff (one tensor) $unit")
[ "$MEASURE" = wall ] && names+=("report --data s")
head="| steps | tensors | file |" sep="|---|---|---|"
for c in "${names[@]}"; do head="$head $c |"; sep="$sep---|"; done
if [ -n "$BASE" ]; then for c in "${names[@]}"; do head="$head base: $c |"; sep="$sep---|"; done; fi
echo "### Opening checkpoint dumps ($(date -u +%Y-%m-%d), $(nproc) cores, $MEASURE)"
echo
echo "$head"
echo "$sep"
for n in $STEPS; do
    t=$tmp/d$n.db
    "$B"/lltrace run -m "$model" -p "Hello" -n "$n" -c $((n + 64)) --checkpoints -o "$t" >/dev/null 2>&1
    dump=$t.run1.gguf
    tensors=$("$B"/lltrace inspect "$dump" --no-metadata --format csv 2>/dev/null | tail -n +2 | wc -l)
    size=$(awk -v s="$(stat -c %s "$dump")" 'BEGIN { printf "%.0f MiB", s / 1048576 }')
    row="| $n | $tensors | $size | $(figures "$B" "$dump" "$t") |"
    if [ -n "$BASE" ] && [ "$n" -le "$BASE_MAX" ]; then row="$row $(figures "$BASE" "$dump" "$t") |"
    elif [ -n "$BASE" ]; then for c in "${names[@]}"; do row="$row – |"; done; fi
    echo "$row"
    rm -f "$t" "$t"-* "$dump"
done
echo
