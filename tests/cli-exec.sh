#!/usr/bin/env bash
# lltrace exec on unmodified programs: llama.cpp's own (llama-simple, llama-completion,
# llama-server, llama-eval-callback, built from the pinned source by the bootstrap into
# LLTRACE_LLAMA_BIN) and exec-contexts (ours, linked with libllama as any program is). Each
# program's output is compared with its untraced output; the trace with what the program
# printed, with llama-eval-callback's printout of every node, and with counts from shapes.
#   cli-exec.sh LLTRACE EXEC_CONTEXTS FAKE_GGML_VERSION_SO EXEC_OWN_DECODE
. "$(dirname "$0")/lib.sh" cli-exec "$@"
usage="usage: cli-exec.sh LLTRACE EXEC_CONTEXTS FAKE_GGML_VERSION_SO EXEC_OWN_DECODE"
ctxprog=${2:?$usage} fake_ggml=${3:?$usage} own_decode=${4:?$usage}
llbin=${LLTRACE_LLAMA_BIN:?set LLTRACE_LLAMA_BIN to the folder of llama.cpp programs}
for p in llama-simple llama-completion llama-server llama-eval-callback; do
    [ -x "$llbin/$p" ] || { echo "FAIL no $llbin/$p (scripts/bootstrap-llama.sh builds it)"; exit 1; }
done

# q DB SQL: rows as "a|b" lines (Python's sqlite3, not lltrace, reads the trace)
q() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(c) for c in r) for r in db.execute(sys.argv[2])))' "$@"; }

# steps of run $2 whose graph reads fewer weights than the run's registry holds
weights_unread() {
    q "$1" "SELECT count(*) FROM steps s WHERE run_id = $2 AND (SELECT count(DISTINCT weight_id) FROM node_srcs n
            WHERE n.graph_id = s.graph_id AND kind = 'weight') != (SELECT count(*) FROM weights WHERE run_id = $2)"
}

# ---- our program: contexts freed and made again, at the same address ---------------------

strip() { sed 's/ at 0x[0-9a-f]*//'; }
# (8 of them: whether the allocator hands a freed context's memory to the next depends on what
# else was allocated between, so more chances make the case this tests sure to come)
plain=$("$ctxprog" "$model" 8 3) || fail "exec-contexts untraced"
traced=$("$bin" exec -q -o "$dir/a.db" -- "$ctxprog" "$model" 8 3) || fail "exec of exec-contexts exited with $?"
expect "exec-contexts: its output traced" "$(strip <<<"$traced")" "$(strip <<<"$plain")"
addrs=$(grep -o '0x[0-9a-f]*' <<<"$traced")
# (each is freed before the next is made: a repeated address is a context made where a freed one was)
[ -n "$(sort <<<"$addrs" | uniq -d)" ] || fail "no context came at the address of a freed one: $addrs"
want=$(strip <<<"$plain" | while read -r _ c toks; do echo "$(( ${c%:} + 1 )):ok:3:$toks"; done | paste -sd '#' | sed 's|#| / |g')
got=$(q "$dir/a.db" "SELECT group_concat(x, ' / ') FROM (SELECT id || ':' || status || ':' || n_gen || ':' ||
      (SELECT group_concat(token, ' ') FROM (SELECT token FROM tokens t WHERE t.run_id = r.id AND role = 'gen' ORDER BY seq)) AS x
      FROM runs r ORDER BY id)")
expect "exec-contexts: one run per context, each with its own tokens" "$got" "$want"
expect "exec-contexts: run names" "$(q "$dir/a.db" "SELECT group_concat(name, ', ') FROM runs")" \
    "$(seq 1 8 | sed 's/^/exec-contexts context /' | paste -sd ',' | sed 's/,/, /g')"

# contexts generating at once, each on its own thread
plain=$("$ctxprog" "$model" 3 4 --threads) || fail "exec-contexts --threads untraced"
traced=$("$bin" exec -q -o "$dir/th.db" -- "$ctxprog" "$model" 3 4 --threads) || fail "exec of exec-contexts --threads exited with $?"
expect "exec-contexts --threads: its output traced" "$(strip <<<"$traced")" "$(strip <<<"$plain")"
expect "exec-contexts --threads: the runs" "$(q "$dir/th.db" "SELECT group_concat(status || ':' || n_gen || ':' || (SELECT count(*) FROM steps s WHERE s.run_id = r.id), ' ') FROM runs r")" \
    "ok:4:4 ok:4:4 ok:4:4"

# a decode call llama.cpp computes in ubatches of 4 tokens: a step per graph, each its tokens
plain=$("$ctxprog" "$model" 1 3 --ubatch 4) || fail "exec-contexts --ubatch untraced"
traced=$("$bin" exec -q -o "$dir/ub.db" -- "$ctxprog" "$model" 1 3 --ubatch 4) || fail "exec of exec-contexts --ubatch exited with $?"
expect "exec-contexts --ubatch 4: its output traced" "$(strip <<<"$traced")" "$(strip <<<"$plain")"
n_prompt=$(q "$dir/ub.db" "SELECT count(*) FROM tokens WHERE role = 'prompt'")
want=$(python3 -c "import sys; n = int(sys.argv[1]); print(' '.join('0:%d' % min(4, n - i) for i in range(0, n, 4)) + ' 1:1 2:1')" "$n_prompt")
expect "exec-contexts --ubatch 4: steps (decode:tokens) of the $n_prompt-token prompt and 2 tokens" \
    "$(q "$dir/ub.db" "SELECT group_concat(decode || ':' || n_tokens, ' ') FROM (SELECT * FROM steps ORDER BY step)")" "$want"

# a program that exits without freeing its context: the run ends at exit, whole
"$bin" exec -q -o "$dir/b.db" -- "$ctxprog" "$model" 1 3 --no-free >/dev/null || fail "exec --no-free exited with $?"
expect "a context never freed: its run" "$(q "$dir/b.db" "SELECT status, n_gen, (SELECT count(*) FROM steps) FROM runs")" "ok|3|3"

# killed mid-generation: every step it completed is in the trace
"$bin" exec -q -o "$dir/k.db" -- "$ctxprog" "$model" 1 500 --sleep-ms 50 >"$dir/k.out" 2>/dev/null &
epid=$!
for _ in $(seq 600); do [ "$(wc -l <"$dir/k.out")" -ge 8 ] && break; sleep 0.05; done
cpid=$(pgrep -P "$epid")
[ -n "$cpid" ] && kill -9 "$cpid"
wait "$epid"
expect "exec's status when its program was killed" "$?" 137
# a line per token: "context 0 at 0x...:" and the tokens so far, each from a completed step
printed=$(( $(grep -c '' "$dir/k.out") ))
got=$(q "$dir/k.db" "SELECT status, (SELECT count(*) FROM steps) >= $printed, (SELECT count(*) FROM steps) > 0 FROM runs")
expect "killed after $printed tokens: the run" "$got" "killed|1|1"

# ---- llama-simple at every level: its output unchanged; every node, weight and token --------

prompt="Hello, my name is"
"$llbin/llama-simple" -m "$model" -n 8 "$prompt" >"$dir/simple.plain" 2>/dev/null || fail "llama-simple untraced exited with $?"
for level in graph timing profile values; do
    t=$dir/simple-$level.db
    "$bin" exec -q --level "$level" -o "$t" -- "$llbin/llama-simple" -m "$model" -n 8 "$prompt" >"$dir/simple.out" 2>"$dir/err" ||
        fail "$level: exec llama-simple exited with $?: $(tail -3 "$dir/err")"
    cmp -s "$dir/simple.out" "$dir/simple.plain" || fail "$level: llama-simple's output differs traced: $(cat "$dir/simple.out")"
    # the run: one, ok, 8 steps (the prompt, then 7 tokens fed back), 8 tokens chosen
    expect "$level: llama-simple's run" "$(q "$t" "SELECT count(*), status, n_gen, (SELECT count(*) FROM steps) FROM runs")" "1|ok|8|8"
    expect "$level: steps reading fewer weights than the model has" "$(weights_unread "$t" 1)" 0
    # the tokens, prompt then generated, are the text it printed (pieces as llama.cpp made them)
    got=$(python3 - "$t" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sys.stdout.buffer.write(b"".join(r[0] for r in db.execute("SELECT piece_bytes FROM tokens WHERE run_id = 1 ORDER BY seq")) + b"\n")
PY
)
    expect "$level: the trace's tokens against llama-simple's text" "$got" "$(cat "$dir/simple.plain")"
done
# by hand: the preload library and the variables, without lltrace exec
LD_PRELOAD="$(dirname "$bin")/liblltrace-preload.so" LLTRACE_OUTPUT="$dir/hand.db" LLTRACE_LEVEL=timing \
    "$llbin/llama-simple" -m "$model" -n 8 "$prompt" >"$dir/simple.out" 2>/dev/null || fail "LD_PRELOAD llama-simple exited with $?"
cmp -s "$dir/simple.out" "$dir/simple.plain" || fail "LD_PRELOAD: llama-simple's output differs"
expect "LD_PRELOAD by hand: the run" "$(q "$dir/hand.db" "SELECT status, level, n_gen, (SELECT count(*) FROM steps) FROM runs")" "ok|timing|8|8"

# every node of every step: timing has node times for each computing node
expect "timing: steps without node times" "$(q "$dir/simple-timing.db" "SELECT count(*) FROM steps WHERE n_timed = 0")" 0
expect "values: steps without statistics" "$(q "$dir/simple-values.db" \
    "SELECT count(*) FROM steps s WHERE NOT EXISTS (SELECT 1 FROM node_stats n WHERE n.run_id = 1 AND n.step = s.step)")" 0

# ---- llama-eval-callback: its own callback chained; its printout of every node is ours ------

ecb=("$llbin/llama-eval-callback" -m "$model" -p "$prompt" -n 1 -t 2)
"${ecb[@]}" >"$dir/ecb.plain" 2>/dev/null || fail "llama-eval-callback untraced exited with $?"
"$bin" exec -q -o "$dir/ecb.db" -- "${ecb[@]}" >"$dir/ecb.out" 2>/dev/null || fail "exec llama-eval-callback exited with $?"
# its printout of every node, names, shapes and values (on stdout; its log is on stderr)
cmp -s "$dir/ecb.out" "$dir/ecb.plain" || fail "llama-eval-callback's printout differs traced: $(diff "$dir/ecb.out" "$dir/ecb.plain" | head -5)"
printed=$(grep -c '^common_debug_cb_eval: ' "$dir/ecb.plain")
[ "$printed" -gt 0 ] || fail "llama-eval-callback printed no node"
expect "nodes llama-eval-callback printed, in the trace" \
    "$(q "$dir/ecb.db" "SELECT sum(g.n_nodes) FROM steps s JOIN graphs g ON g.id = s.graph_id")" "$printed"
expect "names of the nodes it printed, in the trace" \
    "$(q "$dir/ecb.db" "SELECT group_concat(name, ' ') FROM (SELECT n.name FROM steps s JOIN nodes n ON n.graph_id = s.graph_id ORDER BY s.step, n.idx)")" \
    "$(sed -n 's/^common_debug_cb_eval: *\(.*\) = (.*/\1/p' "$dir/ecb.plain" | paste -sd ' ')"

# ---- llama-completion: a memory probe context that never decodes leaves no run -------------

cpl=("$llbin/llama-completion" -m "$model" -p "$prompt" -n 8 -no-cnv --temp 0 -t 2 -s 1)
"${cpl[@]}" >"$dir/cpl.plain" 2>/dev/null </dev/null || fail "llama-completion untraced exited with $?"
"$bin" exec -q -o "$dir/cpl.db" -- "${cpl[@]}" >"$dir/cpl.out" 2>/dev/null </dev/null || fail "exec llama-completion exited with $?"
cmp -s "$dir/cpl.out" "$dir/cpl.plain" || fail "llama-completion's output differs traced: $(cat "$dir/cpl.out")"
expect "llama-completion: runs with steps, runs without" \
    "$(q "$dir/cpl.db" "SELECT count(*), sum((SELECT count(*) FROM steps s WHERE s.run_id = r.id) = 0) FROM runs r")" "1|0"
run=$(q "$dir/cpl.db" "SELECT id FROM runs")
expect "llama-completion: steps reading fewer weights than the model has" "$(weights_unread "$dir/cpl.db" "$run")" 0

# ---- llama-server --parallel 2: two requests at once, mixed batches ------------------------

. "$(dirname "$0")/exec/serve.sh"
server=("$llbin/llama-server" -m "$model" --parallel 2 -c 512 -t 2 --no-warmup)
prompts=("Hello, my name is" "The capital of France is a city where")
plain=$(serve - 24 "${prompts[@]}" -- "${server[@]}") || fail "llama-server untraced: $(tail -3 "$dir/server.log")"
serve_exec_opts=(--parity "$dir/spar")
traced=$(serve "$dir/server.db" 24 "${prompts[@]}" -- "${server[@]}") || fail "llama-server traced: $(tail -3 "$dir/server.log")"
serve_exec_opts=()
[ -n "$plain" ] && expect "llama-server's responses traced" "$(cut -d' ' -f2- <<<"$traced")" "$(cut -d' ' -f2- <<<"$plain")"
t=$dir/server.db
run=$(q "$t" "SELECT id FROM runs WHERE (SELECT count(*) FROM steps s WHERE s.run_id = runs.id) > 0")
expect "llama-server: runs that decoded" "$(wc -l <<<"$run")" 1
expect "llama-server: the sequences of its tokens" "$(q "$t" "SELECT group_concat(DISTINCT seq_id) FROM (SELECT seq_id FROM tokens WHERE run_id = $run ORDER BY seq_id)")" "0,1"
[ "$(q "$t" "SELECT count(*) FROM steps WHERE run_id = $run AND seq_mask = 3")" -gt 0 ] || fail "llama-server: no batch holds both sequences"
expect "llama-server: steps reading fewer weights than the model has" "$(weights_unread "$t" "$run")" 0
# each slot's generated tokens are its response's text (the slot is the sequence), the last
# token too (it samples through common_sampler: the token its chain selects)
while read -r slot content; do
    got=$(python3 - "$t" "$run" "$slot" "$content" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
b = b"".join(r[0] for r in db.execute("SELECT piece_bytes FROM tokens WHERE run_id = ? AND seq_id = ? AND role = 'gen' ORDER BY seq",
                                      (int(sys.argv[2]), int(sys.argv[3]))))
n = db.execute("SELECT count(*) FROM tokens WHERE run_id = ? AND seq_id = ? AND role = 'gen'", (int(sys.argv[2]), int(sys.argv[3]))).fetchone()[0]
text = json.loads(sys.argv[4])
g = b.decode("utf-8", "replace")
print(n, text == g)
PY
)
    expect "llama-server: slot $slot's generated tokens against its response" "$got" "24 True"
    # its parity file: the slot's own, its tokens those of the trace's parity rows and generated tokens
    got=$(python3 - "$dir/spar-run$run-seq$slot.jsonl" "$t" "$run" "$slot" <<'PY' 2>&1
import json, sqlite3, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
db = sqlite3.connect(sys.argv[2])
run, seq = int(sys.argv[3]), int(sys.argv[4])
rows = [r[0] for r in db.execute("SELECT token FROM parity WHERE run_id = ? AND seq_id = ? ORDER BY step", (run, seq))]
gen = [r[0] for r in db.execute("SELECT token FROM tokens WHERE run_id = ? AND seq_id = ? AND role = 'gen' ORDER BY seq", (run, seq))]
print(len(lines), [l["token"] for l in lines] == rows == gen, all(l["top_k"][0][0] == l["token"] for l in lines))
PY
)
    expect "llama-server: slot $slot's parity file" "$got" "24 True True"
done <<<"$traced"
# filtering by sequence: show, export and profile keep the steps of one
n1=$(q "$t" "SELECT count(*) FROM steps WHERE run_id = $run AND (seq_mask >> 1) & 1")
expect "export --seq 1: step events" "$("$bin" export "$t" --run "$run" --seq 1 | grep -c '"event":"step_begin","kind":"decode"')" "$n1"
expect "export --seq 1: token events of another sequence" "$("$bin" export "$t" --run "$run" --seq 1 | grep '"event":"token"' | grep -vc '"seq_id":1')" 0

# ---- values under exec: checkpoints, dumps, the live comparison, parity --------------------

simple=("$llbin/llama-simple" -m "$model" -n 6 "$prompt")
"${simple[@]}" >"$dir/simple6.plain" 2>/dev/null || fail "llama-simple -n 6 untraced exited with $?"
"$bin" exec -q --checkpoints -o "$dir/cp.db" -- "${simple[@]}" >"$dir/cp.out" 2>"$dir/err" || fail "exec --checkpoints: $(tail -2 "$dir/err")"
# flash attention off for the probabilities: the text is the same (the tiny model in F32)
cmp -s "$dir/cp.out" "$dir/simple6.plain" || fail "exec --checkpoints: llama-simple's output differs"
dump=$dir/cp.db.run1.gguf
[ -f "$dump" ] || fail "exec --checkpoints made no dump $dump"
# two layers, six steps: each layer's output and attention probabilities in every step
expect "checkpoints: l_out and kq_soft_max tensors in the dump" \
    "$("$bin" inspect "$dump" --no-metadata --format csv | grep -c -e ',l_out-[01]#' -e ',kq_soft_max-[01]#')" 24
# the live comparison with a dump of the same program (flash attention as it chose: no checkpoints)
"$bin" exec -q --dump 'l_out-*' --dump 'ffn_*' -o "$dir/d.db" -- "${simple[@]}" >/dev/null 2>"$dir/err" || fail "exec --dump: $(tail -2 "$dir/err")"
expect "--dump: l_out tensors in the dump" "$("$bin" inspect "$dir/d.db.run1.gguf" --no-metadata --format csv | grep -c ',l_out-[01]#')" 12
"$bin" exec -q --reference "$dir/d.db.run1.gguf" -o "$dir/ref.db" -- "${simple[@]}" >/dev/null 2>"$dir/err" || fail "exec --reference: $(tail -2 "$dir/err")"
n_dumped=$(( $("$bin" inspect "$dir/d.db.run1.gguf" --no-metadata --format csv | wc -l) - 1 ))
expect "--reference: nodes compared (every tensor of the dump), beyond tolerance" \
    "$(q "$dir/ref.db" "SELECT count(*), sum(within = 0) FROM node_diffs")" "$n_dumped|0"

# parity from the program's own logits: one file per sequence, the chosen token its top 1
"$bin" exec -q --parity "$dir/par" -o "$dir/par.db" -- "${simple[@]}" >/dev/null 2>"$dir/err" || fail "exec --parity: $(tail -2 "$dir/err")"
[ -f "$dir/par-run1-seq0.jsonl" ] || fail "exec --parity wrote no $dir/par-run1-seq0.jsonl"
got=$(python3 - "$dir/par-run1-seq0.jsonl" "$dir/par.db" <<'PY'
import json, sqlite3, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
gen = [r[0] for r in sqlite3.connect(sys.argv[2]).execute("SELECT token FROM tokens WHERE role = 'gen' ORDER BY seq")]
print(len(lines), [l["token"] for l in lines] == gen, all(l["top_k"][0][0] == l["token"] for l in lines),
      [l["step"] for l in lines] == list(range(len(lines))))
PY
)
expect "parity file: steps, tokens as traced, greedy top 1, steps from 0" "$got" "6 True True True"
"$bin" parity "$dir/par-run1-seq0.jsonl" "$dir/par.db" >/dev/null || fail "lltrace parity of the file against its trace exited with $?"

# ---- a NaN: recorded, and the program stopped only when asked ------------------------------

cp "$model" "$dir/nan.gguf"
python3 "$(dirname "$0")/gguf.py" set-f32 "$dir/nan.gguf" blk.1.ffn_up.weight 5 nan || fail "cannot make the NaN model"
nanrun=("$llbin/llama-simple" -m "$dir/nan.gguf" -n 4 "$prompt")
"${nanrun[@]}" >"$dir/nan.plain" 2>/dev/null
want=$?
"$bin" exec -q --break-on-nan -o "$dir/nan1.db" -- "${nanrun[@]}" >"$dir/nan1.out" 2>"$dir/nan1.err"
expect "--break-on-nan: the program's exit status" "$?" "$want"
cmp -s "$dir/nan1.out" "$dir/nan.plain" || fail "--break-on-nan: the program's output differs traced"
grep -q "^lltrace: run 1: .*ffn_up-1" "$dir/nan1.err" || fail "--break-on-nan: no report on stderr: $(cat "$dir/nan1.err")"
expect "--break-on-nan: the run (status, report names the node, all steps)" \
    "$(q "$dir/nan1.db" "SELECT status, nan_report LIKE '%ffn_up-1%', (SELECT count(*) FROM steps) FROM runs")" "ok|1|4"
"$bin" exec -q --stop-on-nan -o "$dir/nan2.db" -- "${nanrun[@]}" >/dev/null 2>"$dir/nan2.err"
expect "--stop-on-nan: exit status" "$?" 1
expect "--stop-on-nan: the run (status, report, steps)" \
    "$(q "$dir/nan2.db" "SELECT status, nan_report LIKE '%ffn_up-1%', (SELECT count(*) FROM steps) FROM runs")" "interrupted|1|1"

# ---- node-llama-cpp: its addon opens its own libllama RTLD_LOCAL ---------------------------

nm=${LLTRACE_NODE_MODULES:?set LLTRACE_NODE_MODULES (scripts/node-llama-cpp.sh installs node-llama-cpp)}
[ -d "$nm/node-llama-cpp" ] || { echo "FAIL no node-llama-cpp in $nm (scripts/node-llama-cpp.sh installs it)"; exit 1; }
cp "$(dirname "$0")/exec/complete.mjs" "$dir/" && ln -s "$nm" "$dir/node_modules"
plain=$(timeout 300 node "$dir/complete.mjs" "$model" "$prompt" 8 2>/dev/null) || fail "node complete.mjs untraced exited with $?"
traced=$(timeout 300 "$bin" exec -q -o "$dir/node.db" -- node "$dir/complete.mjs" "$model" "$prompt" 8 2>"$dir/err") ||
    fail "exec node complete.mjs exited with $?: $(tail -2 "$dir/err")"
expect "node-llama-cpp: its text traced" "$traced" "$plain"
run=$(q "$dir/node.db" "SELECT id FROM runs WHERE (SELECT count(*) FROM steps s WHERE s.run_id = runs.id) > 0")
expect "node-llama-cpp: runs that decoded" "$(wc -l <<<"$run")" 1
expect "node-llama-cpp: steps reading fewer weights than the model has" "$(weights_unread "$dir/node.db" "$run")" 0
# it samples without llama_sampler_sample, applying its own sampler chain: the token the chain
# selects is recorded, so the 8 tokens, the last too, are the text it printed
got=$(python3 - "$dir/node.db" "$run" "$plain" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
gen = b"".join(r[0] for r in db.execute("SELECT piece_bytes FROM tokens WHERE run_id = ? AND role = 'gen' ORDER BY seq",
                                        (int(sys.argv[2]),))).decode("utf-8", "replace")
text = json.loads(sys.argv[3])
# (node-llama-cpp leaves out the first piece's leading space)
print(db.execute("SELECT n_gen FROM runs WHERE id = ?", (int(sys.argv[2]),)).fetchone()[0], text == gen.lstrip())
PY
)
expect "node-llama-cpp: generated tokens in the trace, its text" "$got" "8 True"

# ---- what cannot be traced: said, the program left to run as it does alone -------------------

# a llama.cpp whose ggml says another version (a library in the program's LD_PRELOAD, after
# lltrace's, answers ggml_version() before libggml-base; lltrace itself gets it too, which a
# sanitized lltrace allows only when told)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 LD_PRELOAD=$fake_ggml "$bin" exec -o "$dir/version.db" -- "$llbin/llama-simple" -m "$model" -n 8 "$prompt" \
    >"$dir/version.out" 2>"$dir/version.err"
expect "another ggml version: exit status (nothing traced)" "$?" 1
expect "another ggml version: llama-simple's output" "$(cat "$dir/version.out")" "$(cat "$dir/simple.plain")"
grep -q "uses ggml 0.0.0-lltrace-test; lltrace was built for ggml .*: not tracing" "$dir/version.err" ||
    fail "another ggml version is not said: $(cat "$dir/version.err")"
[ "$(q "$dir/version.db" "SELECT count(*) FROM steps" 2>/dev/null || echo 0)" = 0 ] || fail "another ggml version: steps were traced"

# a program with its own llama_decode (llama.cpp linked in statically)
"$bin" exec -o "$dir/own.db" -- "$own_decode" >"$dir/own.out" 2>"$dir/own.err"
expect "own llama_decode: exit status (nothing traced)" "$?" 1
expect "own llama_decode: its output" "$(cat "$dir/own.out")" "own llama_decode: 0"
grep -q "exec-own-decode has llama.cpp linked in statically (its own llama_decode, in .*exec-own-decode): it cannot be traced" \
    "$dir/own.err" || fail "a program with its own llama_decode is not said: $(cat "$dir/own.err")"

finish
