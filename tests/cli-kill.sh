#!/usr/bin/env bash
# A run killed with SIGKILL leaves a readable trace holding every step it committed; SIGINT
# ends the run after the current step and marks it interrupted.
#   cli-kill.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-kill "$@"


# steps TRACE: committed steps of run 1 (0 while the run has not started)
steps() { sqlite3 "$1" "SELECT count(*) FROM steps WHERE run_id=1" 2>/dev/null || echo 0; }

# wait_steps TRACE N PID: until the trace holds N steps (or the process ended)
wait_steps() {
    for _ in $(seq 1 600); do
        [ "$(steps "$1")" -ge "$2" ] && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# complete TRACE: steps of run 1 whose graph, or node times at level timing, are incomplete (want 0)
incomplete() {
    sqlite3 "$1" "SELECT count(*) FROM steps s JOIN graphs g ON g.id=s.graph_id JOIN runs r ON r.id=s.run_id
      WHERE s.run_id=1 AND ((SELECT count(*) FROM nodes n WHERE n.graph_id=g.id) != g.n_nodes
         OR (r.level = 'timing' AND (SELECT count(*) FROM node_times t WHERE t.run_id=s.run_id AND t.step=s.step)
             != (SELECT count(*) FROM nodes n WHERE n.graph_id=g.id AND n.is_noop=0)))"
}

# check_recovered TRACE MIN_STEPS: after a kill, lltrace replays the step log on open
check_recovered() {
    local t=$1 min=$2
    "$bin" show "$t" --stats >/dev/null 2>"$dir/show.err" || fail "show after kill -9: $(cat "$dir/show.err")"
    ls "$t"-log-* >/dev/null 2>&1 && fail "the step log of $t is still there after recovery"
    [ "$(sqlite3 "$t" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check of $t"
    local n
    n=$(steps "$t")
    [ "$n" -ge "$min" ] || fail "$t holds $n steps after recovery, want at least $min"
    [ "$(sqlite3 "$t" "SELECT status FROM runs WHERE id=1")" = killed ] || fail "$t: killed run is not 'killed'"
    [ "$(incomplete "$t")" = 0 ] || fail "$t: $(incomplete "$t") steps are incomplete after recovery"
    local counted
    counted=$(sqlite3 "$t" "SELECT count(*) FROM steps s WHERE run_id=1 AND n_timed !=
      (SELECT count(*) FROM node_times t WHERE t.run_id=1 AND t.step=s.step)")
    [ "$counted" = 0 ] || fail "$t: $counted recovered steps whose n_timed is not their node_times rows"
    local gen
    gen=$(sqlite3 "$t" "SELECT count(*) FROM tokens WHERE run_id=1 AND role='gen'")
    [ "$gen" -ge $((n - 1)) ] || fail "$t: $gen generated tokens for $n steps"
    [ "$(sqlite3 "$t" "SELECT n_gen FROM runs WHERE id=1")" = "$gen" ] || fail "$t: runs.n_gen is not the token count"
}

# ---- SIGKILL --------------------------------------------------------------------------------
"$bin" run -m "$model" -p "Once upon a time" -n 20000 --level timing -o "$dir/k.db" >/dev/null 2>&1 &
pid=$!
wait_steps "$dir/k.db" 30 "$pid" || fail "the run never reached 30 steps"
seen=$(steps "$dir/k.db")
# a run being written reads as running, its committed steps whole: their graph and their
# node times are committed with them
[ "$(sqlite3 "$dir/k.db" "SELECT status FROM runs WHERE id=1")" = running ] || fail "a live run is not 'running'"
untimed=$(sqlite3 "$dir/k.db" "SELECT count(*) FROM steps WHERE run_id=1 AND n_timed = 0")
[ "$untimed" = 0 ] || fail "$untimed committed steps of a live timing run have n_timed 0"
[ "$(incomplete "$dir/k.db")" = 0 ] || fail "$(incomplete "$dir/k.db") committed steps of a live run lack their graph or node times"
kill -9 "$pid"
wait "$pid" 2>/dev/null
[ "$(sqlite3 "$dir/k.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check right after kill -9"
[ "$(steps "$dir/k.db")" -ge "$seen" ] || fail "committed steps were lost"
check_recovered "$dir/k.db" "$seen"
# the trace takes more runs after the kill
"$bin" run -m "$model" -n 3 -o "$dir/k.db" >/dev/null 2>&1 || fail "cannot append to the killed trace"
[ "$(sqlite3 "$dir/k.db" "SELECT status FROM runs WHERE id=2")" = ok ] || fail "run after kill -9"

# ---- SIGKILL at 8 random moments (LLTRACE_TEST_KILLS: fewer under the sanitizers) ---------------
# Each a timing run killed at a moment drawn in [0, 1.2) s after its run's row appeared (prompt,
# generation, a commit, the step log growing, ...): the trace passes integrity_check before and
# after the replay, the run reads killed, and every token the run printed is in the trace, in
# order (greedy decoding prints exactly the pieces the trace keeps). About 25 s in all.
prompt="Once upon a time"
for i in $(seq 1 "${LLTRACE_TEST_KILLS:-8}"); do
    t=$dir/m$i.db
    "$bin" run -m "$model" -p "$prompt" -n 20000 -t 1 --level timing -o "$t" >"$dir/m.out" 2>"$dir/m.err" &
    pid=$!
    for _ in $(seq 1 300); do
        [ "$(sqlite3 "$t" 'SELECT count(*) FROM runs' 2>/dev/null)" = 1 ] && break
        sleep 0.01
    done
    ms=$((RANDOM % 1200))
    delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || fail "kill $i: the run ended before ${delay} s: $(cat "$dir/m.err")"
    wait "$pid" 2>/dev/null
    [ "$(sqlite3 "$t" 'PRAGMA integrity_check')" = ok ] || fail "kill $i at ${delay} s: integrity_check before the replay"
    check_recovered "$t" 0
    lost=$(python3 - "$dir/m.out" "$t" "$prompt" <<'PY'
import sqlite3, sys
out = open(sys.argv[1], 'rb').read()
prompt = sys.argv[3].encode()
printed = out[len(prompt):] if out.startswith(prompt) else b''
rows = sqlite3.connect(sys.argv[2]).execute(
    "SELECT piece_bytes FROM tokens WHERE run_id=1 AND role='gen' ORDER BY seq").fetchall()
traced = b''.join(r[0] for r in rows)
print(0 if traced.startswith(printed) else len(printed) - len(traced))
PY
)
    [ "$lost" = 0 ] || fail "kill $i at ${delay} s: the trace lacks printed text ($lost bytes short)"
    echo "kill $i at ${delay} s: $(steps "$t") steps, $(($(wc -c <"$dir/m.out") - ${#prompt})) bytes printed, all in the trace"
    rm -f "$t"*
done

# ---- SIGKILL before any commit: everything comes back from the step log ---------------------
LLTRACE_COMMIT_MS=600000 "$bin" run -m "$model" -p "Once upon a time" -n 20000 --level values \
    -o "$dir/l.db" >"$dir/l.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ "$(wc -c <"$dir/l.out")" -gt 200 ] && break; sleep 0.05; done
sleep 0.2
kill -9 "$pid"
wait "$pid" 2>/dev/null
# the logs' own bound (steplog.h) may have made the writer commit early: what the logs hold is
# what was not committed, and it all comes back
committed=$(steps "$dir/l.db")
logged=$(python3 - "$dir"/l.db-log-1 "$dir"/l.db-log-1.1 <<'PY'
import struct, sys
n = 0
for p in sys.argv[1:]:
    try: b = open(p, 'rb').read()
    except OSError: continue
    off = 24
    while off + 8 <= len(b):
        kind, size = struct.unpack_from('<II', b, off)
        if kind == 0: break
        n += kind == 4  # LOG_END: a whole batch
        off += 8 + size + (8 - size % 8) % 8
print(n)
PY
)
[ "$logged" -gt 0 ] || fail "no batch in the step logs after kill -9"
check_recovered "$dir/l.db" 20
[ "$(steps "$dir/l.db")" -gt "$committed" ] || fail "the step logs' $logged batches added no step to the $committed committed"
# the statistics of every computing node of every step came back too
bad=$(sqlite3 "$dir/l.db" "SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id
      WHERE s.run_id=1 AND n.is_noop=0 AND n.is_view=0 AND NOT EXISTS
      (SELECT 1 FROM node_stats x WHERE x.run_id=1 AND x.step=s.step AND x.idx=n.idx)")
[ "$bad" = 0 ] || fail "$bad nodes of recovered steps have no statistics"

# ---- SIGINT ---------------------------------------------------------------------------------
"$bin" run -m "$model" -p "Once upon a time" -n 20000 -o "$dir/i.db" >/dev/null 2>"$dir/i.err" &
pid=$!
wait_steps "$dir/i.db" 10 "$pid" || fail "the run never reached 10 steps"
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" = 130 ] || fail "SIGINT: exit $rc, want 130: $(cat "$dir/i.err")"
[ "$(sqlite3 "$dir/i.db" "SELECT status FROM runs WHERE id=1")" = interrupted ] || fail "SIGINT: run not marked interrupted"
n=$(sqlite3 "$dir/i.db" "SELECT n_gen FROM runs WHERE id=1")
[ "$n" -lt 20000 ] && [ "$n" -ge 10 ] || fail "SIGINT: n_gen $n"
grep -q interrupted "$dir/i.err" || fail "SIGINT: the summary does not say interrupted"

# ---- two runs traced into one file at once ---------------------------------------------------
"$bin" run -m "$model" -n 40 -o "$dir/c.db" >/dev/null 2>&1 &
p1=$!
"$bin" run -m "$model" -n 40 -fa off -o "$dir/c.db" >/dev/null 2>&1 &
p2=$!
wait "$p1" || fail "concurrent run 1 failed"
wait "$p2" || fail "concurrent run 2 failed"
[ "$(sqlite3 "$dir/c.db" "SELECT count(*) FROM runs WHERE status='ok'")" = 2 ] || fail "concurrent runs did not both finish"
# every step's graph belongs to its own run and is whole
bad=$(sqlite3 "$dir/c.db" "SELECT count(*) FROM steps s JOIN graphs g ON g.id=s.graph_id
      WHERE g.run_id != s.run_id OR (SELECT count(*) FROM nodes n WHERE n.graph_id=g.id) != g.n_nodes")
[ "$bad" = 0 ] || fail "$bad steps of concurrent runs point at another run's or an incomplete graph"
[ "$(sqlite3 "$dir/c.db" "SELECT count(DISTINCT run_id) FROM steps")" = 2 ] || fail "steps of both runs"

finish
