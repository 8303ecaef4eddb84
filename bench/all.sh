#!/usr/bin/env bash
# Every benchmark, then today's figures: each benchmark's receipt is kept in
# bench/results/<UTC date>/<name>.md, and the opening table of docs/benchmarks.md is rewritten
# from them (bench/table.py: each row a receipt measured gets its value, this machine and the
# date; the rows of benchmarks not run stay as they were).
#
#   bench/all.sh [--dry-run] [NAME...]
#
# NAME: run (lltrace bench at every level, in-process pairs, trace sizes, diff throughput,
# llama-eval-callback), instructions (callgrind; valgrind and llama.cpp's valgrind build),
# debug (the debugger and interventions, callgrind too), exec, rpc, scaling, report, dumps, archs, training (the demo model's, timed here); default
# all of them. COLD=1 adds setup: the first run on a new machine (`scripts/build.sh &&
# build/lltrace run` with an empty cache and build folder in a temporary folder: the pinned
# llama.cpp is built again there, a few minutes). REPS is passed on (bench/run.sh, exec.sh,
# rpc.sh). --dry-run prints what it would run and runs nothing.
# Run it on a quiet machine (no build, test or fuzzer beside it): about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
dry=0
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
all=(run instructions debug exec rpc scaling report dumps archs training)
[ "${COLD:-0}" = 1 ] && all+=(setup)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=("${all[@]}")
date=$(date -u +%Y-%m-%d)
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
out=bench/results/$date

# the command that makes each receipt (Markdown on stdout)
command_of() {
    case $1 in
        run)          echo "bench/run.sh" ;;
        instructions) echo "scripts/bootstrap-llama.sh --valgrind >/dev/null && bench/instructions.sh" ;;
        debug)        echo "scripts/bootstrap-llama.sh --valgrind >/dev/null && bench/debug-cost.sh" ;;
        exec)         echo "bench/exec.sh" ;;
        rpc)          echo "bench/rpc.sh" ;;
        scaling)      echo "bench/scaling.sh" ;;
        report)       echo "bench/report.sh $B/lltrace" ;;
        dumps)        echo "bench/dumps.sh" ;;
        archs)        echo "bench/archs.sh" ;;
        training)     echo "timed 'the demo model'\\''s training' $B/lltrace mkmodel sorter -o \"\$tmp/sorter.gguf\"" ;;
        setup)        echo "timed 'first run' env LLTRACE_CACHE=\"\$tmp/cache\" LLTRACE_BUILD_DIR=\"\$tmp/build\" bash -c 'scripts/build.sh && \"\$LLTRACE_BUILD_DIR\"/lltrace run'" ;;
        *)            echo "bench/all.sh: unknown benchmark '$1' (${all[*]} setup)" >&2; return 2 ;;
    esac
}

# timed LABEL CMD...: "- LABEL: 47.0 s, one thread" (training) or "- LABEL: 2 min 9 s", as
# bench/table.py reads them
timed() {
    local label=$1 t0 t1 s
    shift
    t0=$(date +%s.%N)
    "$@" >"$tmp/timed.log" 2>&1 || { tail -5 "$tmp/timed.log" >&2; return 1; }
    t1=$(date +%s.%N)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ "$label" = "first run" ]; then
        echo "- $label: $(awk -v s="$s" 'BEGIN { printf "%d min %d s", s / 60, s % 60 }')"
    else
        echo "- $label: $s s, one thread"
    fi
}

for n in "${names[@]}"; do command_of "$n" >/dev/null; done
if [ $dry = 1 ]; then
    echo "bench/all.sh would write bench/results/$date/NAME.md for: ${names[*]}"
    for n in "${names[@]}"; do echo "  $n: $(command_of "$n")"; done
    echo "then: python3 bench/table.py docs/benchmarks.md $out '$machine' $date"
    exit 0
fi

[ -x "$B/lltrace" ] || { echo "bench/all.sh: no $B/lltrace: run scripts/build.sh first" >&2; exit 2; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for n in "${names[@]}"; do
    echo "bench/all.sh: $n ..." >&2
    t0=$(date +%s)
    if eval "$(command_of "$n")" >"$tmp/$n.md"; then
        mv "$tmp/$n.md" "$out/$n.md"
        echo "bench/all.sh: $n took $(( $(date +%s) - t0 )) s -> $out/$n.md" >&2
    else
        echo "bench/all.sh: $n failed (its receipt is not kept)" >&2
        status=1
    fi
done
python3 bench/table.py docs/benchmarks.md "$out" "$machine" "$date"
exit $status
