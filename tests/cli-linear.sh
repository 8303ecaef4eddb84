#!/usr/bin/env bash
# Reading a run costs a fixed number of queries, whatever its number of steps: the analysis
# (show --stats, profile) and both exports run the same statements on a 4-step and a 12-step
# timing trace of the tiny model. Not timed: bench/make-trace.sh makes big traces to time.
#
# usage: tests/cli-linear.sh LLTRACE TEST-QUERIES
. "$(dirname "$0")/lib.sh" cli-linear "$1"
queries=${2:?usage: cli-linear.sh LLTRACE TEST-QUERIES}

for n in 4 12; do
    "$bin" run -m "$model" -p "Hello world" -n $n --level timing -o "$dir/t$n.db" >"$dir/run.log" 2>&1 ||
        { cat "$dir/run.log"; echo "FAIL: lltrace run -n $n"; exit 1; }
    "$queries" "$dir/t$n.db" >"$dir/q$n.txt" || fail "test-queries on the $n-step trace"
done
expect "steps of the traces" "$(sqlite3 "$dir/t4.db" "SELECT count(*) FROM steps") $(sqlite3 "$dir/t12.db" "SELECT count(*) FROM steps")" "4 12"
expect "statements run by each reader on 12 steps against 4 steps" "$(cat "$dir/q12.txt")" "$(cat "$dir/q4.txt")"
for reader in analysis ndjson chrome tables; do
    grep -q "^$reader [0-9]" "$dir/q4.txt" || fail "test-queries printed no count for $reader"
done
finish
