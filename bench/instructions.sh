#!/usr/bin/env bash
# The cost of observing in instructions, not seconds, as Markdown on stdout:
#   bench/instructions.sh >> docs/benchmarks.md
#
# Wall time on a shared 2-core machine spreads by 10-50% between untraced runs; an instruction
# count under callgrind does not move. Each level's own work per generated token is
#   (instructions of an N2-token run - of an N1-token run) / the same untraced - 1
# which cancels the model's loading, the prompt and every fixed cost. Measured for `lltrace
# run` (the `lltrace bench` child: the model, nothing else) and for `lltrace exec` around
# llama.cpp's llama-completion, 1 thread, greedy, on a llama.cpp built for valgrind
# (scripts/bootstrap-llama.sh --valgrind: AVX2, no AVX-512, which valgrind cannot run).
# Then, per level, the functions whose instructions per token change against the untraced run.
#
# Env: MODEL (a built-in name, default small), QUANT (default Q4_K_M), LEVELS (default
#      "graph timing profile values"), EXEC=0 skips exec, N1/N2 (default 4/20 generated tokens),
#      PROMPT (prompt tokens, default 8), TOP (functions listed per level, default 12),
#      FLOOR=1: also the floor under every level, measured the same way: llama.cpp with an eval
#      callback that declines every node and no tracer (bench-floor --once, against the same
#      program with no callback);
#      CHECK=F: no breakdown; exit 1 when a level's own work (run or exec) exceeds F times its target;
#      TARGETS="graph=0.5 timing=1 ..." other targets (%) than small's.
#      LLTRACE_BUILD_DIR (default build), LLTRACE_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
MODEL=${MODEL:-small} QUANT=${QUANT:-Q4_K_M}
LEVELS=${LEVELS:-graph timing profile values}
EXEC=${EXEC:-1} FLOOR=${FLOOR:-0} N1=${N1:-4} N2=${N2:-20} PROMPT=${PROMPT:-8} TOP=${TOP:-12} CHECK=${CHECK:-}
# the targets of issue 21 on small, % own work per generated token; TARGETS="level=% ..." sets
# others (a smaller model has fewer instructions per node, so the same work weighs more)
declare -A target=([graph]=0.10 [timing]=0.50 [profile]=0.25 [values]=3)
for kv in ${TARGETS:-}; do target[${kv%%=*}]=${kv#*=}; done

command -v valgrind >/dev/null || { echo "instructions: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
vg=$(scripts/bootstrap-llama.sh --valgrind | tail -n 1)
[ "$EXEC" = 0 ] || bin=$(scripts/bootstrap-llama.sh --programs | tail -n 1)/bin
export LD_LIBRARY_PATH="$vg/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" # lltrace's RUNPATH yields to it
model=$("$B"/lltrace mkmodel "$MODEL" "$QUANT" --cache)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

callgrind() { # OUT-PREFIX COMMAND...: one callgrind file per process, OUT-PREFIX.<pid>
    local out=$1; shift
    valgrind -q --tool=callgrind --callgrind-out-file="$out.%p" "$@"
}

# ---- lltrace run: the bench child of one level, at both lengths -------------------------------
# the child (the process that loads the model and generates) is the biggest callgrind file
run_level() { # LEVEL N -> $tmp/run-LEVEL-N.cg
    local l=$1 n=$2 d=$tmp/run-$1-$2
    mkdir -p "$d"
    callgrind "$d/cg" "$B"/lltrace bench -m "$model" -t 1 -r 1 -p "$PROMPT" -n "$n" --levels "$l" \
        --save-samples "$d/samples" >/dev/null 2>"$d/err" || { cat "$d/err" >&2; exit 1; }
    local got
    got=$(awk -F'\t' '!/^#/ { print $6 }' "$d/samples")
    [ "$got" = "$n" ] || { echo "instructions: $l generated $got tokens, not $n" >&2; exit 1; }
    mv "$(python3 bench/callgrind.py largest "$d"/cg.*)" "$tmp/run-$l-$n.cg"
}

# ---- lltrace exec around llama-completion -----------------------------------------------------
exec_level() { # LEVEL N -> $tmp/exec-LEVEL-N.cg
    local l=$1 n=$2 d=$tmp/exec-$1-$2
    mkdir -p "$d"
    local cmd=(valgrind -q --tool=callgrind --callgrind-out-file="$d/cg.%p"
               "$bin/llama-completion" -m "$model" -p "Hello, my name is" -n "$n" -t 1 --temp 0
               --ignore-eos -no-cnv --no-warmup)
    if [ "$l" = off ]; then "${cmd[@]}" >/dev/null 2>"$d/err" </dev/null || { cat "$d/err" >&2; exit 1; }
    else "$B"/lltrace exec -q --level "$l" -o "$d/t.db" -- "${cmd[@]}" >/dev/null 2>"$d/err" </dev/null \
        || { cat "$d/err" >&2; exit 1; }; fi
    mv "$(python3 bench/callgrind.py largest "$d"/cg.*)" "$tmp/exec-$l-$n.cg"
}

# ---- the floor: an eval callback that declines every node, no tracer ---------------------------
floor_mode() { # MODE N -> $tmp/floor-MODE-N.cg
    local d=$tmp/floor-$1-$2
    mkdir -p "$d"
    callgrind "$d/cg" "$B"/bench/bench-floor "$model" --once "$1" "$2" >/dev/null 2>"$d/err" || { cat "$d/err" >&2; exit 1; }
    mv "$(python3 bench/callgrind.py largest "$d"/cg.*)" "$tmp/floor-$1-$2.cg"
}
if [ "$FLOOR" = 1 ]; then for m in none decline; do for n in "$N1" "$N2"; do floor_mode "$m" "$n"; done; done; fi

kinds=(run)
[ "$EXEC" = 0 ] || kinds+=(exec)
# the runs side by side, a core each (JOBS, default all): a count does not depend on the load
jobs=${JOBS:-$(nproc)}
for k in "${kinds[@]}"; do
    for l in off $LEVELS; do
        for n in "$N1" "$N2"; do
            while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
            { "${k}_level" "$l" "$n" && touch "$tmp/ok-$k-$l-$n"; } &
        done
    done
done
wait
for k in "${kinds[@]}"; do for l in off $LEVELS; do for n in "$N1" "$N2"; do
    [ -e "$tmp/ok-$k-$l-$n" ] || { echo "instructions: the $k run of level $l, $n tokens, failed" >&2; exit 1; }
done; done; done

# ---- the table --------------------------------------------------------------------------------
echo "### Own work per generated token, in instructions ($(date -u +%Y-%m-%d), callgrind)"
echo
echo "Model $MODEL $QUANT, 1 thread, $PROMPT-token prompt (run), own work = (instructions of a $N2-token"
echo "run - of a $N1-token run) / the same untraced - 1; llama.cpp built for valgrind (AVX2, no AVX-512)."
echo
status=0
for k in "${kinds[@]}"; do
    base=$(python3 bench/callgrind.py per-token "$tmp/$k-off-$N1.cg" "$tmp/$k-off-$N2.cg" $((N2 - N1)))
    echo "$k: untraced $(awk -v b="$base" 'BEGIN { printf "%.2f", b / 1e6 }') M instructions per generated token"
    echo
done
header="| level |"; rule="|---|"
for k in "${kinds[@]}"; do header+=" $k |"; rule+="---|"; done
echo "$header target |"; echo "$rule---|"
for l in $LEVELS; do
    row="| $l |"
    for k in "${kinds[@]}"; do
        base=$(python3 bench/callgrind.py per-token "$tmp/$k-off-$N1.cg" "$tmp/$k-off-$N2.cg" $((N2 - N1)))
        own=$(python3 bench/callgrind.py per-token "$tmp/$k-$l-$N1.cg" "$tmp/$k-$l-$N2.cg" $((N2 - N1)))
        pct=$(awk -v a="$own" -v b="$base" 'BEGIN { printf "%+.2f", (a / b - 1) * 100 }')
        row+=" $pct% |"
        if [ -n "$CHECK" ] && awk -v p="$pct" -v t="${target[$l]}" -v f="$CHECK" 'BEGIN { exit !(p > t * f) }'; then
            echo "instructions: $l costs $pct% per generated token, over $CHECK x its target ${target[$l]}%" >&2
            status=1
        fi
    done
    echo "$row ≤ ${target[$l]}% |"
done
echo
if [ "$FLOOR" = 1 ]; then
    base=$(python3 bench/callgrind.py per-token "$tmp/floor-none-$N1.cg" "$tmp/floor-none-$N2.cg" $((N2 - N1)))
    own=$(python3 bench/callgrind.py per-token "$tmp/floor-decline-$N1.cg" "$tmp/floor-decline-$N2.cg" $((N2 - N1)))
    echo "Floor: llama.cpp with an eval callback that declines every node (no tracer), against no callback:"
    echo "$(awk -v a="$own" -v b="$base" 'BEGIN { printf "%+.3f%% (%+.0f instructions per generated token)", (a / b - 1) * 100, a - b }')."
    echo
fi
[ -z "$CHECK" ] || exit $status

# ---- where it goes ----------------------------------------------------------------------------
for k in "${kinds[@]}"; do
    for l in $LEVELS; do
        echo "$k, level $l: instructions per generated token against the untraced run, by function"
        echo "(the $TOP largest changes; lltrace, SQLite, libc and ggml's own)"
        echo
        python3 bench/callgrind.py breakdown "$TOP" $((N2 - N1)) \
            "$tmp/$k-off-$N1.cg" "$tmp/$k-off-$N2.cg" "$tmp/$k-$l-$N1.cg" "$tmp/$k-$l-$N2.cg"
        echo
    done
done
