#!/usr/bin/env bash
# Makes a big timing trace for the scaling benchmark (docs/benchmarks.md, "Scaling"): copies
# SOURCE to OUT and grows OUT's last run to STEPS steps by repeating its generation steps
# (their rows of steps, node times and tokens, times shifted so that they follow each other),
# doubling the copied steps each round. The graphs stay those of the source, so every command
# reads the same nodes per step as in a real run of that length.
#
#   bench/make-trace.sh SOURCE.db OUT.db STEPS
#   e.g.  lltrace run -n 16 --level timing -o src.db
#         bench/make-trace.sh src.db big.db 100000
#         time lltrace export big.db >/dev/null
#
# Works on schema version 1 (node times as JSON in step_times), 2-4 (a node_times table) and 5
# (a JSON text per step in step_node_times, its times after the row's base_ns).
set -euo pipefail
src=${1:?usage: make-trace.sh SOURCE.db OUT.db STEPS}
out=${2:?usage: make-trace.sh SOURCE.db OUT.db STEPS}
want=${3:?usage: make-trace.sh SOURCE.db OUT.db STEPS}
command -v sqlite3 >/dev/null || { echo "make-trace.sh: needs the sqlite3 command" >&2; exit 2; }

rm -f "$out" "$out-wal" "$out-shm"
sqlite3 "$src" ".backup '$out'"
q() { sqlite3 "$out" "$1"; }
run=$(q "SELECT max(id) FROM runs")
first=$(q "SELECT min(step) FROM steps WHERE run_id = $run AND phase = 'gen'")
[ -n "$first" ] || { echo "make-trace.sh: run $run of '$src' has no generation step" >&2; exit 2; }
times_table=$(q "SELECT count(*) FROM sqlite_master WHERE name = 'node_times' AND type = 'table'")
packed=$(q "SELECT count(*) FROM sqlite_master WHERE name = 'step_node_times' AND type = 'table'")

# a SELECT list of the columns of TABLE, with some shifted: shifted TABLE COL=EXPR...
shifted() {
    local table=$1 col expr list=""
    shift
    for col in $(q "SELECT name FROM pragma_table_info('$table') ORDER BY cid"); do
        expr=$col
        for kv in "$@"; do
            [ "${kv%%=*}" = "$col" ] && expr=${kv#*=}
        done
        list+="${list:+, }$expr"
    done
    echo "$list"
}

while :; do
    last=$(q "SELECT max(step) FROM steps WHERE run_id = $run")
    have=$((last + 1))
    [ "$have" -ge "$want" ] && break
    off=$((last + 1 - first))                   # steps: first..last become last+1..
    dt=$(q "SELECT e.t_end_ns - b.t_begin_ns + coalesce(e.t_sample_ns, 0) FROM steps b, steps e
            WHERE b.run_id = $run AND b.step = $first AND e.run_id = $run AND e.step = $last")
    seq_off=$(q "SELECT max(seq) + 1 - min(seq) FROM tokens WHERE run_id = $run AND step BETWEEN $first AND $last")
    sel="run_id = $run AND step BETWEEN $first AND $last"
    sql="BEGIN;
INSERT INTO steps SELECT $(shifted steps "step=step+$off" "decode=decode+$off" "pos0=pos0+$off" \
        "t_begin_ns=t_begin_ns+$dt" "t_end_ns=t_end_ns+$dt" "compute_begin_ns=compute_begin_ns+$dt" \
        "compute_end_ns=compute_end_ns+$dt") FROM steps WHERE $sel;
INSERT INTO tokens SELECT $(shifted tokens "seq=seq+$seq_off" "step=step+$off" "pos=pos+$off") FROM tokens WHERE $sel;"
    if [ "$packed" = 1 ]; then
        sql+="
INSERT INTO step_node_times SELECT $(shifted step_node_times "step=step+$off" "base_ns=base_ns+$dt") FROM step_node_times WHERE $sel;"
    elif [ "$times_table" = 1 ]; then
        sql+="
INSERT INTO node_times SELECT $(shifted node_times "step=step+$off" "t_begin_ns=t_begin_ns+$dt" \
        "t_end_ns=t_end_ns+$dt") FROM node_times WHERE $sel;"
    else
        sql+="
INSERT INTO step_times SELECT run_id, step + $off, (SELECT json_group_array(json_array(j.value->>0,
    (j.value->>1) + $dt, (j.value->>2) + $dt)) FROM json_each(st.times) j) FROM step_times st WHERE $sel;"
    fi
    q "$sql
DELETE FROM steps WHERE run_id = $run AND step >= $want;
DELETE FROM tokens WHERE run_id = $run AND step >= $want;
COMMIT;"
done
if [ "$packed" = 1 ]; then
    q "DELETE FROM step_node_times WHERE run_id = $run AND step >= $want"
elif [ "$times_table" = 1 ]; then
    q "DELETE FROM node_times WHERE run_id = $run AND step >= $want"
else
    q "DELETE FROM step_times WHERE run_id = $run AND step >= $want"
fi
q "UPDATE runs SET n_gen = (SELECT count(*) FROM tokens WHERE run_id = $run AND role = 'gen') WHERE id = $run"
echo "make-trace.sh: run $run of $out has $(q "SELECT count(*) FROM steps WHERE run_id = $run") steps" >&2
