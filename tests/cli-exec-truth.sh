#!/usr/bin/env bash
# lltrace exec tells the truth about real programs: signals reach the program, its messages
# name the flags, every token it prints is in the trace (the last one too), warm-up decodes
# and cleared memory leave the true positions, a decode split into ubatches gets a step each
# with its own tokens and time; exec and run of the same model and prompt agree (parity 0).
#   cli-exec-truth.sh LLTRACE EXEC_CONTEXTS
. "$(dirname "$0")/lib.sh" cli-exec-truth "$@"
ctxprog=${2:?usage: cli-exec-truth.sh LLTRACE EXEC_CONTEXTS}
llbin=${LLTRACE_LLAMA_BIN:?set LLTRACE_LLAMA_BIN to the folder of llama.cpp programs}
for p in llama-completion llama-server; do
    [ -x "$llbin/$p" ] || { echo "FAIL no $llbin/$p (scripts/bootstrap-llama.sh builds it)"; exit 1; }
done
prompt="Hello, my name is"

# q DB SQL: rows as "a|b" lines (Python's sqlite3, not lltrace, reads the trace)
q() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(c) for c in r) for r in db.execute(sys.argv[2])))' "$@"; }

. "$(dirname "$0")/exec/serve.sh" # free_port, wait_health, serve

# ---- signals sent to lltrace exec reach the program ----------------------------------------

for sig in INT TERM HUP; do
    port=$(free_port)
    "$bin" exec -q -o "$dir/sig-$sig.db" -- "$llbin/llama-server" -m "$model" -c 512 -t 2 --host 127.0.0.1 --port "$port" \
        >"$dir/sig.log" 2>&1 &
    epid=$!
    wait_health "$port" || fail "$sig: llama-server did not come up: $(tail -3 "$dir/sig.log")"
    spid=$(pgrep -P "$epid")
    kill -"$sig" "$epid"
    timeout 60 tail --pid="$epid" -f /dev/null || { fail "SIG$sig to lltrace exec: still running after 60 s"; kill -9 "$spid" "$epid"; }
    wait "$epid"
    status=$?
    want=$(( 128 + $(kill -l "$sig") ))
    expect "SIG$sig to lltrace exec: its exit status" "$status" "$want"
    [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null && { fail "SIG$sig to lltrace exec: llama-server $spid left running"; kill -9 "$spid"; }
    # (llama-server stops cleanly on INT and TERM, because it was asked to; HUP kills it)
    want=interrupted; [ "$sig" = HUP ] && want=killed
    expect "SIG$sig: the runs' status" "$(q "$dir/sig-$sig.db" "SELECT group_concat(DISTINCT status) FROM runs")" "$want"
done

# ---- what exec says, in the words of its options ---------------------------------------------

"$bin" exec --level bogus -- true 2>"$dir/lvl.err"
expect "--level bogus: exit status" "$?" 2
grep -q -- "--level 'bogus'" "$dir/lvl.err" || fail "--level bogus: the flag is not named: $(cat "$dir/lvl.err")"
grep -q LLTRACE_LEVEL "$dir/lvl.err" && fail "--level bogus names the variable: $(cat "$dir/lvl.err")"
"$bin" exec -o "$dir/ls.db" -- ls "$dir" >/dev/null 2>"$dir/ls.err"
expect "exec -- ls: exit status" "$?" 1
grep -q "no llama.cpp context was created" "$dir/ls.err" || fail "exec -- ls: $(cat "$dir/ls.err")"
grep -q "statically" "$dir/ls.err" && fail "exec -- ls speaks of static linking: $(cat "$dir/ls.err")"

# ---- llama-completion against lltrace run: the same tokens, positions and logits ------------

# (llama-completion warms up first, decoding [BOS, EOS], then clears its memory: the prompt
# starts at position 0 again, and the warm-up's tokens are no prompt of the run)
"$bin" run -m "$model" -p "$prompt" -n 16 --temp 0 -t 2 --parity "$dir/run.jsonl" -o "$dir/run.db" >/dev/null 2>"$dir/err" ||
    fail "lltrace run exited with $?: $(tail -2 "$dir/err")"
cpl=("$llbin/llama-completion" -m "$model" -p "$prompt" -n 16 --temp 0 -no-cnv -t 2)
"${cpl[@]}" >"$dir/cpl.plain" 2>/dev/null </dev/null || fail "llama-completion untraced exited with $?"
"$bin" exec -q --parity "$dir/xpar" -o "$dir/x.db" -- "${cpl[@]}" >"$dir/cpl.out" 2>"$dir/err" </dev/null ||
    fail "exec llama-completion exited with $?: $(tail -2 "$dir/err")"
cmp -s "$dir/cpl.out" "$dir/cpl.plain" || fail "llama-completion's output differs traced"
# (the text it prints: the prompt, then the 16 generated tokens' pieces)
got=$(python3 - "$dir/x.db" "$dir/cpl.plain" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
gen = b"".join(r[0] for r in db.execute("SELECT piece_bytes FROM tokens WHERE role = 'gen' ORDER BY seq"))
out = open(sys.argv[2], "rb").read()
print(db.execute("SELECT n_gen FROM runs").fetchone()[0], out.rstrip(b"\n").endswith(gen))
PY
)
expect "llama-completion -n 16: generated tokens in the trace, the end of its text" "$got" "16 True"
# with a grammar, common_sampler resamples when the grammar rejects its first pick: the token
# that continues is the one in the trace (and in its parity records), as many as it printed
gr=("$llbin/llama-completion" -m "$model" -p "$prompt" -n 12 --temp 0 -no-cnv -t 2 --grammar 'root ::= [a-z ]+')
"$bin" exec -q --parity "$dir/gpar" -o "$dir/gr.db" -- "${gr[@]}" >"$dir/gr.out" 2>"$dir/err" </dev/null ||
    fail "exec llama-completion --grammar exited with $?: $(tail -2 "$dir/err")"
got=$(python3 - "$dir/gr.db" "$dir/gr.out" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
gen = [r[0] for r in db.execute("SELECT piece_bytes FROM tokens WHERE role = 'gen' ORDER BY seq")]
par = [r[0] for r in db.execute("SELECT piece_bytes FROM parity ORDER BY step")]
out = open(sys.argv[2], "rb").read()
print(len(gen), out.rstrip(b"\n").endswith(b"".join(gen)), par == gen)
PY
)
expect "llama-completion --grammar -n 12: generated tokens, the end of its text, parity's the same" "$got" "12 True True"
tokens() { q "$1" "SELECT group_concat(role || ':' || pos || ':' || token, ' ') FROM (SELECT * FROM tokens ORDER BY seq)"; }
expect "llama-completion: its tokens (role:pos:token) against lltrace run's" "$(tokens "$dir/x.db")" "$(tokens "$dir/run.db")"
expect "llama-completion: the warm-up's steps (step:phase:n_tokens), and its tokens none of the run's" \
    "$(q "$dir/x.db" "SELECT group_concat(step || ':' || phase || ':' || n_tokens, ' ') FROM steps WHERE phase = 'warmup' OR step = 0")
$(q "$dir/x.db" "SELECT count(*) FROM tokens WHERE step = 0")" "0:warmup:2
0"
"$bin" exec -q --level timing -o "$dir/xt.db" -- "${cpl[@]}" >/dev/null 2>"$dir/err" </dev/null ||
    fail "exec --level timing llama-completion exited with $?: $(tail -2 "$dir/err")"
expect "llama-completion --level timing: profile --by phase (phase:steps of its total), tokenizing in no warm-up" \
    "$("$bin" profile "$dir/xt.db" --by phase --format csv | awk -F, '$2 == "total" { printf "%s:%s ", $1, $6 } $1 == "warmup" && $2 == "tokenize" && $3 != "" { printf "tokenize in warmup " }')" \
    "prompt:1 gen:15 warmup:1 "
expect "llama-completion: the prompt's step starts at" "$(q "$dir/x.db" "SELECT pos0 FROM steps WHERE step = (SELECT min(step) FROM tokens WHERE role = 'prompt')")" 0
"$bin" parity "$dir/run.db" "$dir/x.db" >"$dir/parity.out" 2>&1
expect "parity of lltrace run against exec llama-completion: exit status" "$?" 0
grep -qi "differ\|mismatch" "$dir/parity.out" && fail "parity of run against exec: $(grep -i "differ\|mismatch" "$dir/parity.out")"
"$bin" parity "$dir/run.jsonl" "$dir/xpar-run1-seq0.jsonl" >/dev/null 2>&1
expect "parity of run's file against exec's: exit status" "$?" 0

# a decode nobody read, then the memory cleared, is a warm-up; one whose output was read is not
# (an embedding program reads each batch, then clears): its tokens stay
roles() { q "$1" "SELECT group_concat(role || ':' || pos, ' ') FROM (SELECT * FROM tokens ORDER BY seq)"; }
"$bin" exec -q -o "$dir/plain.db" -- "$ctxprog" "$model" 1 2 >/dev/null || fail "exec-contexts exited with $?"
"$bin" exec -q -o "$dir/warm.db" -- "$ctxprog" "$model" 1 2 --warmup >/dev/null || fail "exec-contexts --warmup exited with $?"
expect "exec-contexts --warmup: its tokens as without the warm-up" "$(roles "$dir/warm.db")" "$(roles "$dir/plain.db")"
"$bin" exec -q -o "$dir/read.db" -- "$ctxprog" "$model" 1 2 --read-clear >/dev/null || fail "exec-contexts --read-clear exited with $?"
n=$(q "$dir/plain.db" "SELECT count(*) FROM tokens WHERE role = 'prompt'")
expect "exec-contexts --read-clear: the prompt twice, from 0 each time, then the tokens" "$(roles "$dir/read.db")" \
    "$(python3 -c "import sys; n = int(sys.argv[1]); print(' '.join(['prompt:%d' % i for i in range(n)] * 2 + ['gen:%d' % n, 'gen:%d' % (n + 1)]))" "$n")"

# ---- a decode call computed in ubatches: a step each, with its own tokens and time ------------

ub=("$llbin/llama-completion" -m "$model" -p "$prompt" -n 3 --temp 0 -no-cnv -t 2 -ub 4)
"$bin" exec -q -o "$dir/ub.db" -- "${ub[@]}" >/dev/null 2>"$dir/err" </dev/null || fail "exec llama-completion -ub 4 exited with $?: $(tail -2 "$dir/err")"
n_prompt=$(q "$dir/ub.db" "SELECT count(*) FROM tokens WHERE role = 'prompt'")
expect "-ub 4: the prompt's tokens" "$n_prompt" "$(q "$dir/run.db" "SELECT count(*) FROM tokens WHERE role = 'prompt'")"
want=$(python3 -c "import sys; n = int(sys.argv[1]); print(' '.join('%d:%d:prompt:%d' % (i, min(4, n - i), min(4, n - i)) for i in range(0, n, 4)))" "$n_prompt")
# pos0:n_tokens:phase:prompt tokens recorded in the step, for the steps of the prompt's decode call
got=$(q "$dir/ub.db" "SELECT group_concat(pos0 || ':' || n_tokens || ':' || phase || ':' ||
      (SELECT count(*) FROM tokens t WHERE t.step = s.step AND role = 'prompt' AND t.pos >= s.pos0 AND t.pos < s.pos0 + s.n_tokens), ' ')
      FROM (SELECT * FROM steps WHERE decode = (SELECT decode FROM steps WHERE step = (SELECT min(step) FROM tokens WHERE role = 'prompt')) ORDER BY step) s")
expect "-ub 4: the prompt's steps (pos0:n_tokens:phase:its tokens)" "$got" "$want"
# each step its own span: one after the other, none shared
expect "-ub 4: steps of a decode call sharing a time span, or not one after the other" \
    "$(q "$dir/ub.db" "SELECT count(*) FROM steps a JOIN steps b ON b.decode = a.decode AND b.step = a.step + 1
                       WHERE b.t_begin_ns != a.t_end_ns OR a.t_end_ns <= a.t_begin_ns")" 0

# llama-server, two requests at once in ubatches of 4: each step's tokens are its own
serve "$dir/srv.db" 6 "Hello, my name is" "The capital of France is a city where" -- \
    "$llbin/llama-server" -m "$model" --parallel 2 -c 512 -t 2 -ub 4 >/dev/null || fail "llama-server -ub 4: $(tail -3 "$dir/server.log")"
run=$(q "$dir/srv.db" "SELECT id FROM runs WHERE (SELECT count(*) FROM steps s WHERE s.run_id = runs.id) > 0")
# (it warms up too: each sequence's prompt from position 0, once)
expect "llama-server: sequences whose prompt positions are not 0, 1, ... once each" \
    "$(q "$dir/srv.db" "SELECT count(*) FROM (SELECT seq_id FROM tokens WHERE run_id = $run AND role = 'prompt' GROUP BY seq_id
                        HAVING min(pos) != 0 OR count(*) != max(pos) + 1 OR count(DISTINCT pos) != count(*))")" 0
expect "llama-server -ub 4: prompt tokens outside their step's positions" \
    "$(q "$dir/srv.db" "SELECT count(*) FROM tokens t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step
                        WHERE t.run_id = $run AND role = 'prompt' AND (t.pos < s.pos0 OR t.pos >= s.pos0 + s.n_tokens)")" 0
expect "llama-server -ub 4: steps with more prompt tokens than they computed" \
    "$(q "$dir/srv.db" "SELECT count(*) FROM steps s WHERE run_id = $run AND n_tokens <
                        (SELECT count(*) FROM tokens t WHERE t.run_id = s.run_id AND t.step = s.step AND role = 'prompt')")" 0
expect "llama-server -ub 4: steps of a decode call sharing a time span" \
    "$(q "$dir/srv.db" "SELECT count(*) FROM steps a JOIN steps b ON b.run_id = a.run_id AND b.decode = a.decode AND b.step = a.step + 1
                        WHERE a.run_id = $run AND (b.t_begin_ns != a.t_end_ns OR a.t_end_ns <= a.t_begin_ns)")" 0
# show --step lists the tokens each step took: its prompt tokens and the generated ones it fed
# back (of each sequence, the one chosen after that sequence's step before), n_tokens in all
got=$(python3 - "$bin" "$dir/srv.db" "$run" <<'PY'
import json, re, sqlite3, subprocess, sys
bin, db, run = sys.argv[1:]
wrong = []
for step, n in sqlite3.connect(db).execute(
        "SELECT step, n_tokens FROM steps WHERE run_id = ? AND phase != 'warmup' ORDER BY step", (run,)):
    out = subprocess.run([bin, "show", db, "--run", run, "--step", str(step), "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    fed = json.loads(out)["tokens"]["in"] or ""
    k = len(re.findall(r'"(?:[^"\\]|\\.)*"', fed))
    if k != n: wrong.append("%d: %d of %d" % (step, k, n))
print(" ".join(wrong) or "none")
PY
)
expect "llama-server -ub 4: steps whose show --step lists another count of tokens fed than n_tokens" "$got" none

finish
