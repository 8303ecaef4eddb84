#!/usr/bin/env bash
# A traced run's memory does not grow with its tokens: node times and statistics are committed
# as they come, not held for the run's end. Not under the sanitizers: their allocator's own
# memory says nothing of lltrace's.
#   cli-memory.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-memory "$@"

# peak_kb CMD...: the peak resident memory of CMD in KiB (its output discarded)
peak_kb() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)
PY
}

# ---- memory: flat whatever the run's length ----------------------------------------------------
# Peak RSS of 300 against 3,000 generated tokens, the same context. The KV cache's pages are
# touched as positions fill, so level graph's growth is the baseline. Node times (timing) and
# statistics (values) once waited in memory for the run's end, 2.4 KB and 10 KB a token: 6.5 MB
# and 27 MB over the 2,700 more tokens. Now each level grows as graph does, but for SQLite's
# page cache (at most 2 MiB a connection) filling with more pages: within 4 MiB.
declare -A grew
for level in graph timing values; do
    short=$(peak_kb "$bin" run -m "$model" -p "Once upon a time" -n 300 -t 1 -c 4096 --level $level -o "$dir/m$level.db")
    long=$(peak_kb "$bin" run -m "$model" -p "Once upon a time" -n 3000 -t 1 -c 4096 --level $level -o "$dir/m$level.db")
    { [ "$short" -gt 0 ] && [ "$long" -gt 0 ]; } || { fail "level $level: a run failed"; grew[$level]=0; continue; }
    grew[$level]=$((long - short))
    echo "level $level: peak RSS $short KiB for 300 tokens, $long KiB for 3000"
done
for level in timing values; do
    [ $((grew[$level] - grew[graph])) -le 4096 ] ||
        fail "level $level: memory grew by ${grew[$level]} KiB over 2700 tokens, level graph by ${grew[graph]}: want at most 4 MiB more"
done

finish
