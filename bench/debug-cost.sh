#!/usr/bin/env bash
# What the debugger and interventions cost, in instructions (issue 22), as Markdown on stdout:
#   bench/debug-cost.sh >> docs/benchmarks.md
#
# Measured as bench/instructions.sh measures a level (callgrind, 1 thread, greedy, llama.cpp's
# valgrind build): own work per generated token = (instructions of an N2-token run - of an
# N1-token run) / (N2 - N1), which cancels loading, the prompt and every fixed cost; each
# against `lltrace run` at the same level with flash attention off (debug turns it off):
#   debug        `lltrace debug` with no breakpoint (its batch: `run`): an idle debugger
#   ablate       `--ablate 'kqv_out-0:head=1'`: one node asked for and written, every step
#   scale-all    `--scale 'l_out-*=1'`: every layer's output asked for and multiplied by 1
#   break-late   `lltrace debug`, a breakpoint on l_out-0 at a step the run never reaches: the
#                node it could stop at is asked for in every step
#
# Env: MODEL (default small), QUANT (default Q4_K_M), LEVEL (default graph), N1/N2 (default
#      4/20), LLTRACE_BUILD_DIR (default build), JOBS (runs side by side, default all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
MODEL=${MODEL:-small} QUANT=${QUANT:-Q4_K_M} LEVEL=${LEVEL:-graph} N1=${N1:-4} N2=${N2:-20}
command -v valgrind >/dev/null || { echo "debug-cost: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
vg=$(scripts/bootstrap-llama.sh --valgrind | tail -n 1)
export LD_LIBRARY_PATH="$vg/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" # lltrace's RUNPATH yields to it
model=$("$B"/lltrace mkmodel "$MODEL" "$QUANT" --cache)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'run\n' >"$tmp/idle"
printf 'break l_out-0 step:100000\nrun\n' >"$tmp/late"

measure() { # CONFIG N -> $tmp/CONFIG-N.cg
    local c=$1 n=$2 d=$tmp/$1-$2
    mkdir -p "$d"
    local common=(-m "$model" -p "Hello, my name is" -n "$n" -t 1 -fa off --level "$LEVEL" -o "$d/t.db")
    local cmd
    case $c in
        run)        cmd=(run "${common[@]}") ;;
        debug)      cmd=(debug "${common[@]}" --batch "$tmp/idle") ;;
        ablate)     cmd=(run "${common[@]}" --ablate 'kqv_out-0:head=1') ;;
        scale-all)  cmd=(run "${common[@]}" --scale 'l_out-*=1') ;;
        break-late) cmd=(debug "${common[@]}" --batch "$tmp/late") ;;
    esac
    valgrind -q --tool=callgrind --callgrind-out-file="$d/cg.%p" "$B"/lltrace "${cmd[@]}" >/dev/null 2>"$d/err" </dev/null \
        || { cat "$d/err" >&2; exit 1; }
    local got
    got=$(sqlite3 "$d/t.db" "SELECT n_gen FROM runs")
    [ "$got" = "$n" ] || { echo "debug-cost: $c generated $got tokens, not $n" >&2; exit 1; }
    mv "$(python3 bench/callgrind.py largest "$d"/cg.*)" "$tmp/$c-$n.cg"
}

configs=(run debug ablate scale-all break-late)
jobs=${JOBS:-$(nproc)}
for c in "${configs[@]}"; do
    for n in "$N1" "$N2"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
        { measure "$c" "$n" && touch "$tmp/ok-$c-$n"; } &
    done
done
wait
for c in "${configs[@]}"; do for n in "$N1" "$N2"; do
    [ -e "$tmp/ok-$c-$n" ] || { echo "debug-cost: the $c run of $n tokens failed" >&2; exit 1; }
done; done

per_token() { python3 bench/callgrind.py per-token "$tmp/$1-$N1.cg" "$tmp/$1-$N2.cg" $((N2 - N1)); }
base=$(per_token run)
echo "### The debugger and interventions, in instructions ($(date -u +%Y-%m-%d), callgrind)"
echo
echo "Model $MODEL $QUANT, 1 thread, -fa off, level $LEVEL; per generated token = (instructions of a"
echo "$N2-token run - of a $N1-token run) / $((N2 - N1)); against \`lltrace run\` at the same level:"
echo "$(awk -v b="$base" 'BEGIN { printf "%.2f", b / 1e6 }') M instructions per generated token."
echo
echo "| configuration | instructions per generated token | against run |"
echo "|---|---|---|"
for c in "${configs[@]}"; do
    own=$(per_token "$c")
    awk -v c="$c" -v a="$own" -v b="$base" 'BEGIN { printf "| %s | %.0f | %+.0f (%+.3f%%) |\n", c, a, a - b, (a / b - 1) * 100 }'
done
echo
