#!/usr/bin/env bash
# A traced run stays bounded whatever its length: the step log holds only what is not yet
# committed (two files, at most 8 MiB together), and a live reader sees each committed step
# whole (its graph, its node times). A step log that cannot be replayed is kept beside the
# trace with a one-line warning, never deleted. (Memory: cli-memory.)
#   cli-bounded.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-bounded "$@"

# ---- the step log: bounded, and emptied as the writer commits --------------------------------
# The writer is told to commit only every 10 minutes: the logs' own bound must keep them small.
# Sampled every 20 ms; a log file never shrinks while its run lives, so the last samples hold
# the largest sizes. At level values a step of tiny logs about 7 KB: 3,000 steps would be 20 MB.
t=$dir/b.db
LLTRACE_COMMIT_MS=600000 "$bin" run -m "$model" -p "Once upon a time" -n 3000 -t 1 -c 4096 --level values \
    -o "$t" >/dev/null 2>"$dir/b.err" &
pid=$!
max=0 live_checked=0
while kill -0 "$pid" 2>/dev/null; do
    total=0
    for f in "$t"-log-1 "$t"-log-1.1; do
        [ -f "$f" ] && total=$((total + $(stat -c %s "$f" 2>/dev/null || echo 0)))
    done
    [ "$total" -gt "$max" ] && max=$total
    # a live reader sees committed steps whole: their graph's nodes and their statistics
    if [ $live_checked = 0 ] && [ "$(sqlite3 "$t" "SELECT count(*) FROM steps WHERE run_id=1" 2>/dev/null || echo 0)" -gt 200 ]; then
        live_checked=1
        bad=$(sqlite3 "$t" "SELECT count(*) FROM steps s WHERE s.run_id=1 AND (
              (SELECT count(*) FROM nodes n WHERE n.graph_id=s.graph_id) = 0 OR NOT EXISTS
              (SELECT 1 FROM node_stats x WHERE x.run_id=1 AND x.step=s.step))")
        [ "$bad" = 0 ] || fail "a live reader sees $bad committed steps without their nodes or statistics"
    fi
    sleep 0.02
done
wait "$pid" || fail "the long run failed: $(cat "$dir/b.err")"
[ $live_checked = 1 ] || fail "never saw 200 committed steps while the run lived (the writer waited for the run's end)"
[ "$max" -gt 0 ] || fail "never saw the step logs"
[ "$max" -le $((8 << 20)) ] || fail "the step logs reached $max bytes, want at most 8 MiB"
echo "step logs at most $max bytes over 3000 steps at level values"
ls "$t"-log-* >/dev/null 2>&1 && fail "step logs left after the run ended"
expect "steps of the long run" "$(sqlite3 "$t" "SELECT count(*) FROM steps WHERE run_id=1")" 3000
expect "steps without statistics" "$(sqlite3 "$t" "SELECT count(*) FROM steps s WHERE run_id=1 AND NOT EXISTS
    (SELECT 1 FROM node_stats x WHERE x.run_id=1 AND x.step=s.step)")" 0

# a live run: its graph structures are in the trace while it runs, and lltrace's readers see
# its committed steps with their nodes and times (show --stats, show --step, profile)
for level in graph timing; do
    g=$dir/g-$level.db
    "$bin" run -m "$model" -p "Once upon a time" -n 20000 -t 1 --level $level -o "$g" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 400); do
        [ "$(sqlite3 "$g" "SELECT count(*) FROM steps WHERE run_id=1" 2>/dev/null || echo 0)" -gt 20 ] && break
        sleep 0.05
    done
    whole=$(sqlite3 "$g" "SELECT count(*) FROM graphs g WHERE g.run_id=1 AND g.n_nodes =
            (SELECT count(*) FROM nodes n WHERE n.graph_id=g.id)")
    [ "$whole" -ge 1 ] || fail "a live run at level $level has no graph structure in the trace"
    "$bin" show "$g" --stats >"$dir/live.out" 2>&1 || fail "show --stats of a live run: $(cat "$dir/live.out")"
    grep -q "those of the 0 steps written so far" "$dir/live.out" && fail "show --stats of a live run at level $level: $(grep 'so far' "$dir/live.out")"
    "$bin" show "$g" --step 5 >"$dir/live.out" 2>&1 || fail "show --step 5 of a live run: $(cat "$dir/live.out")"
    grep -q "l_out-1" "$dir/live.out" || fail "show --step 5 of a live run at level $level lists no nodes: $(tail -3 "$dir/live.out")"
    if [ $level = timing ]; then
        "$bin" profile "$g" >"$dir/live.out" 2>&1 || fail "profile of a live run: $(cat "$dir/live.out")"
        grep -q "MUL_MAT" "$dir/live.out" || fail "profile of a live timing run shows no op: $(head -5 "$dir/live.out")"
    fi
    kill -INT "$pid"; wait "$pid" 2>/dev/null
done

# ---- a damaged step log: replayed up to the damage, kept, one warning ---------------------------
t=$dir/d.db
LLTRACE_COMMIT_MS=600000 "$bin" run -m "$model" -p "Once upon a time" -n 20000 -t 1 -o "$t" >"$dir/d.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ "$(wc -c <"$dir/d.out")" -gt 100 ] && break; sleep 0.05; done
kill -9 "$pid"; wait "$pid" 2>/dev/null
# in the log holding the batches (both files have their room taken ahead), the first record of
# its 6th batch made unknown: whole batches before it, none after
log=$(python3 - "$t"-log-1 "$t"-log-1.1 <<'PY'
import struct, sys
for p in sys.argv[1:]:
    b = bytearray(open(p, 'rb').read())
    if len(b) < 32 or struct.unpack_from('<I', b, 24)[0] == 0: continue
    break
else:
    sys.exit('no step log holds a batch')
off, n, target = 24, 0, None
while off + 8 <= len(b):
    kind, size = struct.unpack_from('<II', b, off)
    if kind == 0: break
    if kind == 4:  # LOG_END: the next record starts a batch
        n += 1
        if n == 5: target = off + 8
    off += 8 + size + (8 - size % 8) % 8
assert target is not None, 'fewer than 6 batches'
b[target:target + 4] = struct.pack('<I', 99)
open(p, 'r+b').write(b)
print(p)
PY
) || fail "cannot damage the step log"
cp "$log" "$dir/damaged.copy"
"$bin" show "$t" --runs >/dev/null 2>"$dir/d.err" || fail "show --runs of a trace with a damaged log: $(cat "$dir/d.err")"
expect "warning lines" "$(wc -l <"$dir/d.err")" 1
grep -q "^lltrace: warning: the step log of run 1 is damaged at byte [0-9]* (a record of kind 99 that does not read): 5 whole batches before it replayed, the file kept as '$log.damaged'$" "$dir/d.err" ||
    fail "the warning: $(cat "$dir/d.err")"
cmp -s "$log.damaged" "$dir/damaged.copy" || fail "the damaged log was not kept byte for byte as $log.damaged"
expect "the run" "$(sqlite3 "$t" "SELECT status || ' ' || (error LIKE '%damaged at byte%') FROM runs WHERE id=1")" "killed 1"
[ "$(sqlite3 "$t" "SELECT count(*) FROM steps WHERE run_id=1")" -ge 5 ] || fail "the batches before the damage were not replayed"
"$bin" show "$t" --runs >/dev/null 2>"$dir/d2.err"
expect "a second open's warnings" "$(cat "$dir/d2.err")" ""
[ -f "$log.damaged" ] || fail "the kept log went away on the next open"

finish
