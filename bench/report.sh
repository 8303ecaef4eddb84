#!/usr/bin/env bash
# The report of a 1,000-step timing trace of the built-in small model (issue 13: generated in
# under 3 s, under 5 MB): one real run of 1,000 steps (a prompt step and 999 generated
# tokens), then `lltrace report` REPS times; prints one Markdown section with the median
# time and the page's size, for docs/benchmarks.md. Exit 1 if a limit is exceeded.
#   bench/report.sh [LLTRACE] [REPS]      (default build/lltrace, 5)
# Run it on a quiet machine: the run takes a few minutes on 2 cores.
set -euo pipefail
bin=${1:-build/lltrace}
reps=${2:-5}
dir=$(mktemp -d /tmp/lltrace-bench-report-XXXXXX)
trap 'rm -rf "$dir"' EXIT

model=$("$bin" mkmodel small Q4_K_M --cache)
"$bin" run -m "$model" -p "Once upon a time" -n 1000 --level timing -o "$dir/t.db" >/dev/null 2>"$dir/run.err" \
    || { cat "$dir/run.err"; exit 2; }
steps=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM steps').fetchone()[0])" "$dir/t.db")
times=()
for _ in $(seq "$reps"); do
    t0=$(date +%s%N)
    "$bin" report "$dir/t.db" -o "$dir/r.html" 2>/dev/null
    times+=($(( ($(date +%s%N) - t0) / 1000000 )))
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
size=$(stat -c %s "$dir/r.html")
cat <<MD
## lltrace report of a ${steps}-step timing trace of small, $(date -u +%Y-%m-%dT%H:%M:%SZ)
$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); lltrace $("$bin" --version | head -1)

| figure | value | limit |
|---|---|---|
| generation time, median of $reps (ms) | $median (all: ${times[*]}) | 3000 |
| page size (bytes) | $size | 5000000 |
MD
[ "$median" -lt 3000 ] && [ "$size" -lt 5000000 ]
