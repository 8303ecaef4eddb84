#!/usr/bin/env bash
# lltrace exec under real process lives: exit() while other threads decode (and --stop-on-nan
# so), llama-server stopped by two Ctrl-C mid-generation, fork() without exec, children that
# exec tracing into one file at once, a decode call llama.cpp refuses, a program that changes
# its working directory, a model in several files, a program that aborts, the run's parameters
# as JSON, a run whose tracing cannot begin. Every case checks the program ends, the trace
# opens, and no run is left running.
#   cli-exec-lives.sh LLTRACE EXEC_LIVES
. "$(dirname "$0")/lib.sh" cli-exec-lives "$@"
lives=${2:?usage: cli-exec-lives.sh LLTRACE EXEC_LIVES}
llbin=${LLTRACE_LLAMA_BIN:?set LLTRACE_LLAMA_BIN to the folder of llama.cpp programs}
for p in llama-simple llama-completion llama-server; do
    [ -x "$llbin/$p" ] || { echo "FAIL no $llbin/$p (scripts/bootstrap-llama.sh builds it)"; exit 1; }
done

# q DB SQL: rows as "a|b" lines (Python's sqlite3, not lltrace, reads the trace)
q() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(c) for c in r) for r in db.execute(sys.argv[2])))' "$@"; }
# a sanitized lltrace reports in the program's stderr
no_asan() { ! grep -q "AddressSanitizer\|LeakSanitizer\|runtime error:" "$2" || fail "$1: a sanitizer spoke: $(grep -m3 -A5 Sanitizer "$2")"; }
steps() { q "$1" "SELECT group_concat(status || ':' || (SELECT count(*) FROM steps s WHERE s.run_id = r.id), ' ') FROM runs r"; }
prompt="Hello, my name is"

# ---- exit() from the main thread while two threads decode ----------------------------------

timeout 120 "$bin" exec -q -o "$dir/exit.db" -- "$lives" "$model" exit 2 >"$dir/exit.out" 2>"$dir/exit.err"
expect "exit() mid-generation: exit status" "$?" 0
no_asan "exit() mid-generation" "$dir/exit.err"
# its own exit handler runs after lltrace's while the threads go on decoding, untraced
expect "exit() mid-generation: the program's last lines" "$(tail -2 "$dir/exit.out" | paste -sd ' ')" "exiting after exit: more tokens"
# both runs ended ok at exit, each with the steps of the 4 tokens or more it had chosen
expect "exit() mid-generation: runs ok, with 5 steps or more" \
    "$(q "$dir/exit.db" "SELECT group_concat(status || ':' || ((SELECT count(*) FROM steps s WHERE s.run_id = r.id) >= 5), ' ') FROM runs r")" "ok:1 ok:1"
"$bin" show "$dir/exit.db" --runs >/dev/null || fail "exit() mid-generation: the trace does not open"

# ---- --stop-on-nan with two threads decoding -----------------------------------------------

cp "$model" "$dir/nan.gguf"
python3 "$(dirname "$0")/gguf.py" set-f32 "$dir/nan.gguf" blk.1.ffn_up.weight 5 nan || fail "cannot make the NaN model"
timeout 120 "$bin" exec -q --stop-on-nan -o "$dir/nan.db" -- "$lives" "$dir/nan.gguf" exit 2 >/dev/null 2>"$dir/nan.err"
expect "--stop-on-nan, two threads: exit status" "$?" 1
no_asan "--stop-on-nan, two threads" "$dir/nan.err"
expect "--stop-on-nan, two threads: the runs" "$(q "$dir/nan.db" "SELECT group_concat(status, ' ') FROM runs")" "interrupted interrupted"

# ---- fork() without exec: the child decodes and exits, the parent goes on ------------------

timeout 120 "$bin" exec -q -o "$dir/fork.db" -- "$lives" "$model" fork >"$dir/fork.out" 2>"$dir/fork.err"
expect "fork: exit status" "$?" 0
no_asan "fork" "$dir/fork.err"
grep -q "exec-lives (pid [0-9]*) is a fork of a traced process: not traced" "$dir/fork.err" || fail "fork: the child is not said: $(cat "$dir/fork.err")"
# the parent's run alone, whole: its prompt and 7 tokens, its step log gone
expect "fork: the runs (status:steps)" "$(steps "$dir/fork.db")" "ok:7"
expect "fork: the parent's generated tokens" "$(q "$dir/fork.db" "SELECT group_concat(token, ' ') FROM (SELECT token FROM tokens WHERE role = 'gen' ORDER BY seq)")" \
    "$(grep '^parent:' "$dir/fork.out" | cut -d: -f2 | paste -sd ' ' | tr -s ' ' | sed 's/^ //')"
expect "fork: step logs left" "$(ls "$dir" | grep -c 'fork.db-log')" 0

# ---- a decode call llama.cpp refuses (no room in the KV cache), retried in halves ----------

"$bin" exec -q -o "$dir/refuse.db" -- "$lives" "$model" refuse >"$dir/refuse.out" 2>"$dir/refuse.err" || fail "refuse: exit status $?"
read -r _ done _ _ _ refused _ <"$dir/refuse.out"
[ "${refused:-0}" -gt 0 ] || fail "refuse: llama.cpp refused no call: $(cat "$dir/refuse.out")"
expect "refuse: tokens in the trace, distinct positions (the $done decoded)" \
    "$(q "$dir/refuse.db" "SELECT count(*), count(DISTINCT pos) FROM tokens")" "$done|$done"

# ---- children that exec: two programs tracing into one file at once ------------------------

cpl="$llbin/llama-completion -m $model -p '$prompt' -n 16 -no-cnv --temp 0 -t 1 -s 1"
"$bin" exec -q -o "$dir/one.db" -- sh -c "$cpl </dev/null" >/dev/null 2>&1 || fail "one llama-completion: exit status $?"
one=$(steps "$dir/one.db")
"$bin" exec -q -o "$dir/two.db" -- sh -c "$cpl </dev/null & $cpl </dev/null; wait" >/dev/null 2>"$dir/two.err" ||
    fail "two llama-completion at once: exit status $?: $(tail -3 "$dir/two.err")"
expect "two programs into one trace: each run whole" "$(steps "$dir/two.db")" "$one $one"
expect "two programs into one trace: two processes" "$(q "$dir/two.db" "SELECT count(DISTINCT json_extract(params, '\$.pid')) FROM runs")" 2

# another process holds the trace's write lock for 8 s (a long commit): tracing waits for it
python3 - "$dir/two.db" >"$dir/lock.out" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(8)
db.execute("COMMIT")
PY
lpid=$!
for _ in $(seq 300); do grep -q locked "$dir/lock.out" && break; sleep 0.1; done
"$bin" exec -q -o "$dir/two.db" -- sh -c "$cpl </dev/null" >/dev/null 2>"$dir/lock.err" || fail "a trace locked for 8 s: exit status $?: $(tail -3 "$dir/lock.err")"
wait "$lpid"
expect "a trace locked for 8 s: the new run whole" "$(q "$dir/two.db" "SELECT status || ':' || (SELECT count(*) FROM steps s WHERE s.run_id = r.id) FROM runs r WHERE id = 3")" "$one"

# ---- paths: the program changes its working directory --------------------------------------

mkdir "$dir/sub"
(cd "$dir" && "$bin" exec -o rel.db -- sh -c "cd sub && exec $llbin/llama-simple -m $model -n 4 'Hello'" >/dev/null 2>"$dir/rel.err") ||
    fail "-o rel.db, the program in sub/: exit status $?: $(cat "$dir/rel.err")"
[ -f "$dir/sub/rel.db" ] && fail "-o rel.db was written in the program's working directory"
expect "-o rel.db: the run, in the working directory of lltrace" "$(steps "$dir/rel.db")" "ok:4"
grep -q "holds no new run" "$dir/rel.err" && fail "-o rel.db: said no run: $(cat "$dir/rel.err")"
# what it says when no run comes: what the program did
"$bin" exec -o "$dir/none.db" -- true 2>"$dir/none.err"
expect "a program that never calls llama.cpp: exit status" "$?" 1
grep -q "no llama.cpp context was created (true never called a shared libllama)" "$dir/none.err" || fail "true: $(cat "$dir/none.err")"
"$bin" exec -o "$dir/none.db" -- "$lives" "$model" no-such-mode 2>"$dir/none.err"
grep -q "exec-lives called llama.cpp but made no context" "$dir/none.err" || fail "a model, no context: $(cat "$dir/none.err")"
"$bin" exec -o "$dir/none.db" -- "$llbin/llama-completion" -m "$model" -p "$prompt" -n 0 -no-cnv --no-warmup </dev/null >/dev/null 2>"$dir/none.err"
grep -q "llama-completion made a llama.cpp context but decoded with none" "$dir/none.err" || fail "a context, no decode: $(grep lltrace: "$dir/none.err")"

# ---- a model in several files (llama-gguf-split's layout) ----------------------------------

python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import gguf; gguf.split(sys.argv[2], sys.argv[3], 3)' \
    "$(dirname "$0")" "$model" "$dir/split" || fail "cannot split the model"
"$bin" exec -q -o "$dir/whole.db" -- "$llbin/llama-simple" -m "$model" -n 4 "$prompt" >"$dir/whole.out" 2>/dev/null || fail "whole model: $?"
"$bin" exec -q -o "$dir/split.db" -- "$llbin/llama-simple" -m "$dir/split-00001-of-00003.gguf" -n 4 "$prompt" >"$dir/split.out" 2>/dev/null ||
    fail "split model: $?"
cmp -s "$dir/whole.out" "$dir/split.out" || fail "the split model generates otherwise"
reg="SELECT count(*), sum(bytes) FROM weights"
expect "split model: weights, their bytes" "$(q "$dir/split.db" "$reg")" "$(q "$dir/whole.db" "$reg")"
expect "split model: the model's bytes, its files'" "$(q "$dir/split.db" "SELECT model_bytes FROM runs")" "$(cat "$dir"/split-0000?-of-00003.gguf | wc -c)"
# every weight a node reads is a weight, none an input
read_w="SELECT count(DISTINCT weight_id) FROM node_srcs WHERE kind = 'weight'"
expect "split model: weights read" "$(q "$dir/split.db" "$read_w")" "$(q "$dir/whole.db" "$read_w")"

# ---- a program that aborts: the demo model's 17-token vocab cannot encode the text ---------

sorter=$("$bin" mkmodel sorter --cache 2>/dev/null) || fail "cannot make the sorter"
"$bin" exec -q -o "$dir/abort.db" -- "$llbin/llama-completion" -m "$sorter" -p "Hello world" -n 4 -no-cnv -t 1 \
    </dev/null >/dev/null 2>"$dir/abort.err"
expect "an aborting program: exit status" "$?" 134
expect "an aborting program: what lltrace says (-q)" "$(grep '^lltrace: ' "$dir/abort.err")" \
    "lltrace: $llbin/llama-completion failed: ended by signal 6 (Aborted)"
expect "an aborting program: runs still running" "$(q "$dir/abort.db" "SELECT count(*) FROM runs WHERE status = 'running'")" 0
expect "an aborting program: step logs left" "$(ls "$dir" | grep -c 'abort.db-log')" 0

# ---- the run's parameters: JSON whatever the program's name --------------------------------

ln -s "$llbin/llama-simple" "$dir/say\"hi\\"
"$bin" exec -q -o "$dir/name.db" -- "$dir/say\"hi\\" -m "$model" -n 2 "$prompt" >/dev/null 2>&1 || fail "a program named say\"hi\\: $?"
expect "the program's name in the run's parameters" "$(q "$dir/name.db" "SELECT json_extract(params, '\$.program') FROM runs")" 'say"hi\'

# ---- a run whose tracing cannot begin once its row is in: it ends, saying why --------------

mkdir "$dir/begin.db.run1.gguf" # where the run's dump goes
"$bin" exec -q --dump 'l_out-*' -o "$dir/begin.db" -- "$llbin/llama-simple" -m "$model" -n 2 "$prompt" >/dev/null 2>"$dir/begin.err"
expect "a run that cannot begin: exit status" "$?" 1
expect "a run that cannot begin: its status, a reason" "$(q "$dir/begin.db" "SELECT status, error != '' FROM runs")" "error|1"

# ---- llama-server stopped by two Ctrl-C while a request is generating ----------------------

. "$(dirname "$0")/exec/serve.sh" # free_port
port=$(free_port)
"$bin" exec -q -o "$dir/server.db" -- "$llbin/llama-server" -m "$model" -c 2048 -t 2 --no-warmup --host 127.0.0.1 --port "$port" \
    >"$dir/server.log" 2>&1 &
epid=$!
python3 - "$port" <<'PY' &
import json, sys, time, urllib.request
port = sys.argv[1]
for _ in range(600):
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/health" % port, timeout=1); break
    except Exception: time.sleep(0.1)
req = urllib.request.Request("http://127.0.0.1:%s/completion" % port, method="POST",
                             data=json.dumps({"prompt": "Hello, my name is", "n_predict": 1500, "ignore_eos": True}).encode())
try: urllib.request.urlopen(req, timeout=600).read()
except Exception: pass
PY
cpid=$!
# generating: the trace holds steps (the writer commits every second)
for _ in $(seq 600); do [ "$(q "$dir/server.db" "SELECT count(*) FROM steps" 2>/dev/null || echo 0)" -gt 20 ] && break; sleep 0.1; done
spid=$(pgrep -P "$epid")
# the second once the first is handled (two at once would be one pending signal)
kill -INT "$spid"
for _ in $(seq 300); do grep -q "cleaning up before exit" "$dir/server.log" && break; sleep 0.1; done
kill -INT "$spid"
timeout 60 tail --pid="$epid" -f /dev/null || fail "llama-server did not end in 60 s after two Ctrl-C"
wait "$epid"
status=$?
kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
# llama-server's second Ctrl-C calls exit(1) from its signal handler while its threads still
# decode: its static destructors then race them and may abort (seen once in the sanitized
# suite once; status 134), its own undefined behaviour, traced or not. That end is accepted
# once the server said so; what lltrace owes is checked below all the same: no run left
# running, the steps kept, the trace readable
if [ "$status" = 134 ] && grep -q "terminating immediately" "$dir/server.log"; then
    status=1
fi
[ "$status" -ne 124 ] && [ "$status" -lt 128 ] || [ "$status" = 130 ] ||
    fail "llama-server after two Ctrl-C: exit status $status: $(tail -3 "$dir/server.log" | tr '\n' ' ')"
no_asan "llama-server after two Ctrl-C" "$dir/server.log"
expect "llama-server after two Ctrl-C: runs still running" "$(q "$dir/server.db" "SELECT count(*) FROM runs WHERE status = 'running'")" 0
[ "$(q "$dir/server.db" "SELECT count(*) FROM steps")" -gt 20 ] || fail "llama-server after two Ctrl-C: the steps are lost"
"$bin" show "$dir/server.db" --runs >/dev/null || fail "llama-server after two Ctrl-C: the trace does not open"

# ---- a parent killed while its forked child lives: its run is recovered, not kept alive -------
# the child shares the parent's open step log files (fork): it lets go of them, so the lock that
# says the run lives is the parent's alone
"$bin" exec -q -o "$dir/fk.db" -- "$lives" "$model" forkwait >"$dir/fk.out" 2>"$dir/fk.err" &
epid=$!
for _ in $(seq 1 600); do grep -q '^forked' "$dir/fk.out" 2>/dev/null && break; sleep 0.1; done
child=$(sed -n 's/^forked \([0-9]*\)/\1/p' "$dir/fk.out")
parent=$(pgrep -P "$epid" | head -1)
if [ -z "$child" ] || [ -z "$parent" ]; then
    fail "forkwait: no fork ($(cat "$dir/fk.err"))"
else
    sleep 1.5 # a commit of the writer, so the run's rows and its step logs are there
    kill -9 "$parent"
    wait "$epid" 2>/dev/null
    kill -0 "$child" 2>/dev/null || fail "forkwait: the child is gone before the check"
    "$bin" show "$dir/fk.db" --runs >/dev/null 2>"$dir/fk-show.err" || fail "forkwait: show: $(cat "$dir/fk-show.err")"
    expect "forkwait: the killed parent's run, while its child lives" "$(q "$dir/fk.db" "SELECT group_concat(status) FROM runs WHERE (SELECT count(*) FROM steps s WHERE s.run_id = runs.id) > 0")" "killed"
    expect "forkwait: step logs left" "$(ls "$dir" | grep -c 'fk.db-log')" 0
    kill "$child" 2>/dev/null
fi

finish
