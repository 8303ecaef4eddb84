#!/usr/bin/env bash
# lltrace causal (docs/debugging.md, "Causal tracing"): its two invariants on tiny F32 (patching
# nothing gives the corrupted run's logits exactly: the last layer's positions without a row,
# and the check over every logit; patching the last layer's l_out whole gives the clean run's);
# its answer is what run generates; the JSON keys scripts rely on; the demo model's picture.
# With -o: the result in the trace (tables causal, causal_cells) equal to the JSON printed, two
# cells equal to an independent run patched the same way (run --patch --from, the logits
# dumped and put through a softmax here), the two plain runs traced; the report's heatmap in
# headless Chromium drawn from the stored cells, its strongest cell the last position of
# attention's output (a screenshot into SHOTS_DIR, the README's figure).
#   cli-causal.sh LLTRACE_BINARY [SHOTS_DIR]
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" cli-causal "$1"
shots=${2:-$dir/shots}

"$bin" causal -m "$model" --clean "Hello world" --corrupt "Hello there" --format json >"$dir/c.json" 2>"$dir/err" ||
    fail "causal on tiny: exit $?: $(tail -1 "$dir/err")"
got=$(python3 - "$dir/c.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cells = {(c['layer'], c['pos']): c for c in d['cells']}
L, P = d['n_layer'], d['n_pos']
last = L - 1
print(sorted(cells) == [(l, p) for l in range(L) for p in range(P)])
print(d['none_is_corrupt'], d['last_is_clean'])
# the last layer keeps the output row only: its other positions patch nothing
print(all(cells[(last, p)]['n_changed'] == 0 and cells[(last, p)]['p'] == d['corrupt_p'] for p in range(P - 1)))
print(cells[(last, P - 1)]['p'] == d['clean_p'], cells[(last, P - 1)]['n_changed'] > 0)
# every layer below has a row at every position, and the clean answer comes back from some
print(all(cells[(l, p)]['n_changed'] > 0 for l in range(last) for p in range(P)), d['clean_p'] != d['corrupt_p'])
print(d['answer'])
PY
) || fail "reading causal's JSON: $got"
answer=$("$bin" run -m "$model" -p "Hello world" -n 1 -o "$dir/r.db" 2>/dev/null)
want=$(printf 'True\nTrue True\nTrue\nTrue True\nTrue True\n%s' "${answer#Hello world}")
expect "causal's invariants and answer" "$got" "$want"

# the demo model: the answer letter is read from its position through attention's values
"$bin" causal --clean "sort: d a c b =" --corrupt "sort: d e c b =" --node Vcur --format json >"$dir/v.json" 2>"$dir/err" ||
    fail "causal --node Vcur on the sorter: exit $?: $(tail -1 "$dir/err")"
expect "sorter: the clean answer, and none of one V row brings it back" "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["answer"], d["corrupt_top"], d["last_is_clean"], max(c["p"] for c in d["cells"]) < 0.5)' "$dir/v.json")" " a  b None True"
# ---- -o: stored in the trace ---------------------------------------------------------------
clean="sort: d a c b =" corrupt="sort: d e c b ="
"$bin" causal --clean "$clean" --corrupt "$corrupt" --node attn_out -o "$dir/c.db" --format json >"$dir/s.json" 2>"$dir/err" ||
    fail "causal -o: exit $?: $(tail -1 "$dir/err")"
grep -q "causal result 1 written to $dir/c.db (clean run 1, corrupted run 2)" "$dir/err" || fail "causal -o does not say where: $(cat "$dir/err")"
# the independent computation: the clean run's attn_out-0 dumped, patched into the corrupted
# run at one position by run --patch, its logits dumped
"$bin" run -p "$clean" -n 1 --dump 'attn_out-0' --dump-file "$dir/clean.gguf" -o "$dir/r.db" >/dev/null 2>&1 || fail "run: the clean dump"
for pos in 3 6; do
    "$bin" run -p "$corrupt" -n 1 --from "$dir/clean.gguf" --patch "attn_out-0:pos=$pos" --dump result_output \
        --dump-file "$dir/patched$pos.gguf" -o "$dir/r.db" >/dev/null 2>&1 || fail "run --patch attn_out-0:pos=$pos"
done
got=$(python3 - "$dir" "$here" <<'PY'
import json, math, sqlite3, sys
d = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import gguf  # tests/gguf.py
js = json.load(open(d + '/s.json'))
db = sqlite3.connect(d + '/c.db')
db.row_factory = sqlite3.Row
head = db.execute('SELECT * FROM causal').fetchall()
print(len(head), js['causal_id'], js['clean_run'], js['corrupt_run'])
h = head[0]
print(all(h[k] == js[k] for k in ('node', 'clean_p', 'corrupt_p', 'clean_logit_diff', 'corrupt_logit_diff', 'n_layer', 'n_pos')),
      h['answer'] == js['answer_token'] and h['answer_piece'] == js['answer'] and h['corrupt_top_piece'] == js['corrupt_top'],
      h['none_is_corrupt'], h['last_is_clean'])
cells = [dict(r) for r in db.execute('SELECT * FROM causal_cells WHERE causal_id = ? ORDER BY layer, pos', (h['id'],))]
print(len(cells) == h['n_layer'] * h['n_pos'] == len(js['cells']),
      all(all(c[k] == j[k] for k in ('layer', 'pos', 'token', 'p', 'logit_diff', 'n_changed')) for c, j in zip(cells, js['cells'])),
      [c['clean_token'] for c in cells if c['clean_token'] != c['token']])
# the two plain runs: traced at level graph, their prompts, their tokens the cells' columns, their top-1 the answer and the corrupted top
runs = [dict(r) for r in db.execute('SELECT id, name, level, status, prompt, output FROM runs ORDER BY id')]
print([(r['id'], r['name'], r['level'], r['status'], r['prompt'], r['output']) for r in runs] ==
      [(h['clean_run'], 'causal: clean', 'graph', 'ok', 'sort: d a c b =', h['answer_piece']),
       (h['corrupt_run'], 'causal: corrupt', 'graph', 'ok', 'sort: d e c b =', h['corrupt_top_piece'])])
toks = [r[0] for r in db.execute("SELECT piece FROM tokens WHERE run_id = ? AND role = 'prompt' ORDER BY seq", (h['corrupt_run'],))]
print(toks == [c['token'] for c in cells])
# each cell against the run patched the same way, by its own logits
for pos in (3, 6):
    ne, v = gguf.f32('%s/patched%d.gguf' % (d, pos), 'result_output#0')
    row = v[-ne[0]:]
    m = max(row)
    p = math.exp(row[h['answer']] - m) / sum(math.exp(x - m) for x in row)
    c = cells[pos]
    print(pos, abs(c['p'] - p) <= 1e-6 * max(p, 1e-30), round(p, 3))
PY
) || fail "reading causal's trace: $got"
expect "causal -o: the trace's rows, the JSON, the runs, two cells recomputed" "$got" "1 1 1 2
True True 1 None
True True [' a']
True
True
3 True 0.0
6 True 1.0"
# page_expect ID FILE: what the page must draw of result ID, from the trace's rows (the
# strongest cell among them)
page_expect() {
    python3 - "$dir/c.db" "$1" "$2" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.row_factory = sqlite3.Row
h = db.execute('SELECT * FROM causal WHERE id = ?', (int(sys.argv[2]),)).fetchone()
cells = [dict(r) for r in db.execute('SELECT * FROM causal_cells WHERE causal_id = ? ORDER BY layer, pos', (h['id'],))]
strongest = max(cells, key=lambda c: c['p'])
json.dump({'n_layer': h['n_layer'], 'n_pos': h['n_pos'], 'p': [c['p'] for c in cells], 'n_changed': [c['n_changed'] for c in cells],
           'strongest': [strongest['layer'], strongest['pos']], 'facts': [json.dumps(h['answer_piece']), '%d / %d' % (h['clean_run'], h['corrupt_run'])],
           'tip': ['p(%s)' % json.dumps(h['answer_piece']), 'logit diff']}, open(sys.argv[3], 'w'))
print(strongest['layer'], strongest['pos'])
PY
}
# the demo's picture: the answer comes back where attention's output reads it, the last position
expect "causal -o attn_out: the strongest cell (layer, position)" "$(page_expect 1 "$dir/out.json")" "0 6"
# a second result appended; the report of its corrupted run draws it, of the first run's the first
"$bin" causal --clean "$clean" --corrupt "$corrupt" --node attn_norm -o "$dir/c.db" >/dev/null 2>"$dir/err" || fail "causal -o onto a trace: exit $?: $(tail -1 "$dir/err")"
for run in 1 3 4; do
    "$bin" report "$dir/c.db" --run $run --data -o "$dir/d$run.json" 2>/dev/null || fail "report --run $run --data: exit $?"
done
expect "report: the causal result of runs 1, 3 and 4 (id, node)" "$(python3 -c '
import json, sys
for f in sys.argv[1:]:
    c = json.load(open(f))["causal"]
    print(c["id"], c["node"], c["n_pos"] == len(c["p"]) == len(c["tokens"]))' "$dir/d1.json" "$dir/d3.json" "$dir/d4.json")" "1 attn_out True
2 attn_norm True
2 attn_norm True"
"$bin" report "$dir/r.db" --data -o "$dir/none.json" 2>/dev/null || fail "report of a run without causal: exit $?"
# ... and where the changed letter is, at the layer's input (Q, K and V are computed from it)
expect "causal -o attn_norm: the strongest cell (layer, position)" "$(page_expect 2 "$dir/norm.json")" "0 3"
expect "report of a run without a causal result" "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["causal"], "lltrace causal" in d["missing"]["causal"])' "$dir/none.json")" "None True"
# the page: the attn_out result (run 2's) and the attn_norm one (the last run's)
. "$here/browser.sh"
"$bin" report "$dir/c.db" --run 2 -o "$dir/out.html" 2>/dev/null || fail "report --run 2: exit $?"
"$bin" report "$dir/c.db" -o "$dir/norm.html" 2>/dev/null || fail "report: exit $?"
node "$here/report-page.js" causal "$dir/out.html" "$dir/out.json" "$shots" causal-attn-out || fail "the attn_out section in Chromium (above)"
node "$here/report-page.js" causal "$dir/norm.html" "$dir/norm.json" "$shots" causal-attn-norm || fail "the attn_norm section in Chromium (above)"
[ -s "$shots/causal-attn-out.png" ] && [ -s "$shots/causal-attn-norm.png" ] || fail "no screenshot of the causal sections"
# refused: a trace that is not one; the file is left alone
echo "not a trace" >"$dir/not.db"
"$bin" causal --clean "$clean" --corrupt "$corrupt" -o "$dir/not.db" >/dev/null 2>"$dir/err"
expect "causal -o onto a file that is not a trace: exit" "$?" 2
expect "causal -o onto a file that is not a trace: the file" "$(cat "$dir/not.db")" "not a trace"
# prompts of different lengths with -o: no trace is left
"$bin" causal --clean "$clean" --corrupt "sort: d e c =" -o "$dir/new.db" >/dev/null 2>&1
[ -e "$dir/new.db" ] && fail "causal -o with refused prompts left a trace"

# refused: prompts of different lengths, no such node
"$bin" causal -m "$model" --clean "Hello world" --corrupt "Hello" >/dev/null 2>"$dir/err"
expect "prompts of different lengths: exit" "$?" 2
grep -q "same number of tokens (3 and 2)" "$dir/err" || fail "prompts of different lengths: $(cat "$dir/err")"
"$bin" causal -m "$model" --clean "Hello world" --corrupt "Hello there" --node nosuch >/dev/null 2>"$dir/err"
expect "no such node: exit" "$?" 2
finish
