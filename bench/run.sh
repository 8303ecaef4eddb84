#!/usr/bin/env bash
# All benchmarks, as Markdown on stdout: bench/run.sh >> docs/benchmarks.md
#   REPS=N (default 10) repetitions per level.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
reps=${REPS:-10}
model=$("$B"/lltrace mkmodel small Q4_K_M --cache)

# 1. tracing overhead per level (issue 2, 3, 4 targets), 32-token prompt + 64 generated tokens
"$B"/lltrace bench -m "$model" -p 32 -n 64 -r "$reps" --levels off,graph,timing,profile,values,parity 2>/dev/null

# the same in one process, untraced and traced runs in pairs
"$B/bench/bench-levels" "$model" "$reps"

# the floor: what llama.cpp's callback costs with nothing behind it
"$B/bench/bench-floor" "$model" "$reps"

# 2. a 1,000-token run at level graph: size on disk
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$B"/lltrace run -m "$model" -n 1000 -c 1280 --level graph -o "$tmp/t.db" >/dev/null 2>&1
size=$(stat -c %s "$tmp/t.db")
steps=$(sqlite3 "$tmp/t.db" "SELECT count(*) FROM steps")
graphs=$(sqlite3 "$tmp/t.db" "SELECT count(*) FROM graphs")
echo "- 1,000 generated tokens at level graph: trace of $(awk -v s="$size" 'BEGIN {printf "%.2f", s/1048576}') MiB ($steps steps, $graphs distinct graphs)"
"$B"/lltrace run -m "$model" -n 1000 -c 1280 --level timing -o "$tmp/timing.db" >/dev/null 2>&1
echo "- the same at level timing: $(awk -v s="$(stat -c %s "$tmp/timing.db")" 'BEGIN {printf "%.2f", s/1048576}') MiB"
echo

# 3. tensor diff throughput against memcpy
if [ -x "$B/bench/bench-diff" ]; then "$B/bench/bench-diff"; echo; fi

# 4. against llama.cpp's llama-eval-callback
bench/peers.sh "$model"
