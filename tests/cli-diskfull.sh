#!/usr/bin/env bash
# A disk that fills during a run (issue 9, defect 4): inference finishes, the run exits 1 and
# says why and from which step its trace lacks rows; the trace reads while the disk is full,
# without writing a byte; what was committed or logged is not lost: once there is room, the
# next open replays the step log and the trace holds every step.
#   cli-diskfull.sh LLTRACE_BINARY
# The full disk is a small tmpfs where this machine lets the test mount one (root); elsewhere
# it is a file size limit (ulimit -f, SIGXFSZ ignored, so a write fails with EFBIG; the readers
# then run under a limit of the files' sizes). LLTRACE_TEST_DISK=ulimit picks the limit.
. "$(dirname "$0")/lib.sh" cli-diskfull "$@"

n=200
full=$dir/full
mkdir "$full"
if [ "${LLTRACE_TEST_DISK:-}" != ulimit ] && [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1400k lltrace-test "$full" 2>/dev/null; then
    mode=tmpfs
    trap 'umount "$full" 2>/dev/null; rm -rf "$dir"' EXIT
else
    mode=ulimit
    n=3000
fi
t=$full/t.db
echo "cli-diskfull: the disk fills by $mode"

# ---- the run ----------------------------------------------------------------------------------
# what the run prints when its trace has room: the full disk must not change it
"$bin" run -m "$model" -n $n -t 1 -o "$dir/room.db" >"$dir/room.out" 2>/dev/null || fail "the run with room failed"
if [ $mode = tmpfs ]; then
    # the step log takes 1 MiB at once; the trace's writes fill the rest, during the run (a
    # commit per step, LLTRACE_COMMIT_MS=1, grows the WAL however fast the machine) or as the
    # last rows go in; where depends on the machine, and so does whether the run's end could
    # be written: both ways are checked
    LLTRACE_COMMIT_MS=1 "$bin" run -m "$model" -n $n -t 1 --level timing -o "$t" >"$dir/out" 2>"$dir/err"
else
    (trap '' XFSZ; ulimit -f 1100; exec "$bin" run -m "$model" -n $n -t 1 --level timing -o "$t" >"$dir/out" 2>"$dir/err")
fi
rc=$?
expect "exit status of a run whose trace filled the disk" "$rc" 1
# (a failed run's output ends with one more newline)
cmp -s <(head -c "$(wc -c <"$dir/room.out")" "$dir/out") "$dir/room.out" || fail "inference did not finish: the output differs from the run with room: $(cat "$dir/err")"
grep -q "trace written" "$dir/err" && fail "an incomplete trace is reported as written"
line=$(grep "is incomplete: tracing stopped at step" "$dir/err")
[ -n "$line" ] || fail "no message saying the trace is incomplete: $(cat "$dir/err")"
# the first step not traced: every step before it comes back from the log
stopped=$(sed -n 's/.*tracing stopped at step \([0-9]*\).*/\1/p' <<<"$line")
stopped=${stopped:-0}
# the run's end could be written (status error) or not (running, then killed by the replay)
ended=$(sqlite3 "file:$t?mode=ro" 'SELECT status FROM runs WHERE id=1' 2>/dev/null)
# the step from which rows are missing: every step before it must be in the trace in the end
from=$(sed -n 's/.*rows from step \([0-9]*\) on not written.*/\1/p' <<<"$line")
[ -n "$from" ] || { fail "the message does not say from which step rows are missing: $line"; from=0; }
grep -q "step log $t-log-1 keeps the rows not written" "$dir/err" || fail "the message does not name the step log: $(cat "$dir/err")"
[ -f "$t-log-1" ] || fail "the step log of the failed run is gone"

# ---- reading while the disk is full -------------------------------------------------------------
# lltrace ARGS...: the command as it runs on the full disk
full_lltrace() {
    if [ $mode = tmpfs ]; then "$bin" "$@"; return; fi
    local biggest
    biggest=$(stat -c %s "$full"/* | sort -n | tail -n 1)
    (trap '' XFSZ; ulimit -f $((biggest / 1024)); exec "$bin" "$@")
}

# read_full WHAT: every reading command on the full disk succeeds. Each tries to replay the
# step log first: where SQLite finds room inside the files it has (a WAL restarted over its
# old frames) the replay goes in; where not, the log stays and the trace file is left byte
# for byte (the WAL may take frames of the replay that never commit)
read_full() {
    local before args
    before=$(cd "$full" && md5sum t.db)
    for args in "" "--stats" "--step 1"; do
        # shellcheck disable=SC2086
        full_lltrace show "$t" $args >"$dir/show.out" 2>"$dir/show.err" || fail "$1: show $args: $(cat "$dir/show.err")"
    done
    full_lltrace export "$t" >"$dir/export.out" 2>"$dir/export.err" || fail "$1: export: $(cat "$dir/export.err")"
    if [ -f "$t-log-1" ]; then
        expect "$1: the trace after reading" "$(cd "$full" && md5sum t.db)" "$before"
        echo "cli-diskfull: $1: read without the replay"
    else
        echo "cli-diskfull: $1: the replay found room"
    fi
}

if [ $mode = tmpfs ]; then
    # the run's end may have freed room (its WAL checkpointed and removed): none is left
    dd if=/dev/zero of="$full/filler" bs=4k >/dev/null 2>&1
    expect "free blocks on the full disk" "$(df --output=avail "$full" | tail -n 1 | tr -d ' ')" 0
fi
read_full "full disk"
if [ $mode = tmpfs ]; then
    # without its -shm file a reader of a WAL trace must make one: no room for it either
    rm -f "$t-shm"
    read_full "full disk, no -shm"
fi

# ---- room again: the next open replays the log ----------------------------------------------------
if [ $mode = tmpfs ]; then
    rm -f "$full/filler"
    mount -o remount,size=16m "$full" || fail "cannot grow the tmpfs"
fi
"$bin" show "$t" --stats >/dev/null 2>"$dir/show.err" || fail "show with room again: $(cat "$dir/show.err")"
[ -f "$t-log-1" ] && fail "the step log is still there after a replay with room to write"
expect "integrity_check" "$(sqlite3 "$t" 'PRAGMA integrity_check')" ok
if [ "$ended" = error ]; then
    expect "status after the replay (the run failed, it was not killed)" "$(sqlite3 "$t" 'SELECT status FROM runs WHERE id=1')" error
    sqlite3 "$t" 'SELECT error FROM runs WHERE id=1' | grep -q "rows from step $from on not written" ||
        fail "runs.error: $(sqlite3 "$t" 'SELECT error FROM runs WHERE id=1')"
else
    expect "status after the replay of a run whose end could not be written" "$(sqlite3 "$t" 'SELECT status FROM runs WHERE id=1')" killed
fi
# every step before the one the message named, whole: its row, its graph, its node times
missing=$(sqlite3 "$t" "WITH RECURSIVE k(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM k WHERE s + 1 < $from)
  SELECT count(*) FROM k WHERE NOT EXISTS (SELECT 1 FROM steps WHERE run_id=1 AND step=k.s)")
expect "steps before step $from missing after the replay" "$missing" 0
untimed=$(sqlite3 "$t" "SELECT count(*) FROM steps s WHERE run_id=1 AND step < $from AND n_timed !=
  (SELECT count(*) FROM node_times t WHERE t.run_id=1 AND t.step=s.step)")
expect "steps before step $from without all their node times" "$untimed" 0
nodeless=$(sqlite3 "$t" "SELECT count(*) FROM steps s WHERE run_id=1 AND step < $from AND
  (SELECT count(*) FROM nodes n WHERE n.graph_id=s.graph_id) != (SELECT n_nodes FROM graphs g WHERE g.id=s.graph_id)")
expect "steps before step $from with an incomplete graph" "$nodeless" 0
if [ $mode = tmpfs ]; then
    # the step log was big enough from the start: the failures were the trace's, and the log
    # held every batch up to the one tracing stopped at, so every step before it is there (at
    # the end of the run: the prompt's and one per generated token but the last, not fed back)
    expect "steps after the replay" "$(sqlite3 "$t" 'SELECT count(*) FROM steps WHERE run_id=1')" "$stopped"
    gen=$(sqlite3 "$t" "SELECT count(*) FROM tokens WHERE run_id=1 AND role='gen'")
    [ "$gen" -ge "$stopped" ] || fail "generated tokens after the replay: $gen for $stopped steps"
    echo "cli-diskfull: tracing stopped at step $stopped of $n, the run's end ${ended:-not written}"
fi
"$bin" profile "$t" >/dev/null 2>"$dir/profile.err" || fail "profile after the replay: $(cat "$dir/profile.err")"

finish
