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
if [ $mode = tmpfs ]; then
    # the step log takes 1 MiB at once; the trace's writes fill the rest
    "$bin" run -m "$model" -n $n -t 1 --level timing -o "$t" >"$dir/out" 2>"$dir/err"
else
    (trap '' XFSZ; ulimit -f 1100; exec "$bin" run -m "$model" -n $n -t 1 --level timing -o "$t" >"$dir/out" 2>"$dir/err")
fi
rc=$?
expect "exit status of a run whose trace filled the disk" "$rc" 1
grep -q "$n generated" "$dir/err" || fail "inference did not finish: $(cat "$dir/err")"
grep -q "trace written" "$dir/err" && fail "an incomplete trace is reported as written"
line=$(grep "is incomplete: tracing stopped at step" "$dir/err")
[ -n "$line" ] || fail "no message saying the trace is incomplete: $(cat "$dir/err")"
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

# read_full WHAT: every reading command on the full disk. Each tries to replay the step log
# first and cannot: the trace file and the log stay byte for byte (the WAL may take frames of
# the replay that never commit), and every reader reads the same committed rows
read_full() {
    local before args
    before=$(cd "$full" && md5sum t.db t.db-log-1)
    for args in "" "--stats" "--step 1"; do
        # shellcheck disable=SC2086
        full_lltrace show "$t" $args >"$dir/show.out" 2>"$dir/show.err" || fail "$1: show $args: $(cat "$dir/show.err")"
    done
    full_lltrace export "$t" >"$dir/export.out" 2>"$dir/export.err" || fail "$1: export: $(cat "$dir/export.err")"
    expect "$1: export" "$(md5sum <"$dir/export.out")" "$(md5sum <"$dir/export.first")"
    full_lltrace show "$t" >"$dir/show.out" 2>&1
    grep -q "status error" "$dir/show.out" || fail "$1: the run does not read as error: $(head -n 1 "$dir/show.out")"
    expect "$1: trace and step log after reading" "$(cd "$full" && md5sum t.db t.db-log-1)" "$before"
    [ -f "$t-log-1" ] || fail "$1: a reader removed the step log it could not replay"
}

# what a reader sees of the committed rows, read before anything else touched the trace
full_lltrace export "$t" >"$dir/export.first" 2>"$dir/export.err" || fail "export on the full disk: $(cat "$dir/export.err")"

read_full "full disk"
if [ $mode = tmpfs ]; then
    # without its -shm file a reader of a WAL trace must make one: no room for it either
    rm -f "$t-shm"
    dd if=/dev/zero of="$full/filler" bs=4k >/dev/null 2>&1
    expect "free blocks on the full disk" "$(df --output=avail "$full" | tail -n 1 | tr -d ' ')" 0
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
expect "status after the replay (the run failed, it was not killed)" "$(sqlite3 "$t" 'SELECT status FROM runs WHERE id=1')" error
sqlite3 "$t" 'SELECT error FROM runs WHERE id=1' | grep -q "rows from step $from on not written" ||
    fail "runs.error: $(sqlite3 "$t" 'SELECT error FROM runs WHERE id=1')"
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
    # held every batch not committed, so every step (the prompt's and one per generated token
    # but the last, which is not fed back) and every token printed is there
    expect "steps after the replay" "$(sqlite3 "$t" 'SELECT count(*) FROM steps WHERE run_id=1')" $n
    expect "generated tokens after the replay" "$(sqlite3 "$t" "SELECT count(*) FROM tokens WHERE run_id=1 AND role='gen'")" $n
fi
"$bin" profile "$t" >/dev/null 2>"$dir/profile.err" || fail "profile after the replay: $(cat "$dir/profile.err")"

finish
