#!/usr/bin/env bash
# lltrace report in headless Chromium: a checkpointed, timed run with parity records, its page
# loaded from disk with no console error and no network request, every section there, the
# attention heatmaps of the last layer at the prompt step equal to the dump's values (read by a
# GGUF reader written here in Python), the token strip equal to the trace's tokens (Python's
# sqlite3), the logit lens' last layer equal to the tokens the run chose, the comparison with a
# Q8_0 run equal to Python's (first divergence, top-1 agreement, a layer output's NMSE); a
# screenshot of each section into the test's output folder; bad input.
#   cli-report.sh LLTRACE_BINARY [SHOTS_DIR]
# The model is LLTRACE_REPORT_MODEL (a GGUF path, with LLTRACE_REPORT_PROMPT), else the trained
# demo model, sorter, whose attention and logit lens mean something.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" cli-report "$@"
shots=${2:-$dir/shots}
. "$here/browser.sh"

m=${LLTRACE_REPORT_MODEL:-$("$bin" mkmodel sorter --cache)} || { fail "cannot make the sorter"; finish; }
# B, for the comparison: the same model quantized (LLTRACE_REPORT_MODEL_B), else the sorter in Q8_0
mb=${LLTRACE_REPORT_MODEL_B:-$("$bin" mkmodel sorter Q8_0 --cache)} || { fail "cannot make the sorter in Q8_0"; finish; }
prompt=${LLTRACE_REPORT_PROMPT:-"sort: h b f a c g ="}
"$bin" run -m "$m" -p "$prompt" -n 6 --checkpoints --level timing \
    --parity "$dir/p.jsonl" -o "$dir/t.db" >"$dir/run.out" 2>&1 || { cat "$dir/run.out"; fail "run: exit $?"; finish; }
grep -q "'lltrace report $dir/t.db'" "$dir/run.out" || fail "run does not name lltrace report: $(tail -1 "$dir/run.out")"
"$bin" run -m "$mb" -p "$prompt" -n 6 --checkpoints --parity "$dir/pb.jsonl" -o "$dir/b.db" >"$dir/run.out" 2>&1 \
    || { cat "$dir/run.out"; fail "run B: exit $?"; finish; }
"$bin" report "$dir/t.db" --vs "$dir/b.db" -o "$dir/r.html" 2>"$dir/err" || fail "report: exit $?: $(cat "$dir/err")"
grep -q "open file://$dir/r.html" "$dir/err" || fail "report does not say how to open the page: $(cat "$dir/err")"

# ---- what the page must show, computed here ---------------------------------------------------
python3 - "$dir" "$here" <<'PY' || fail "cannot compute the expected values"
import json, sqlite3, struct, sys
d = sys.argv[1]

sys.path.insert(0, sys.argv[2])
import gguf  # tests/gguf.py

def dump_of(db):
    return sqlite3.connect(db).execute('SELECT dump_path FROM runs WHERE id = 1').fetchone()[0]
db = sqlite3.connect(d + '/t.db')
toks = [{'token': t, 'piece': p} for t, p in db.execute("SELECT token, piece FROM tokens WHERE run_id = 1 ORDER BY seq")]
# a generated token at step s came from the logits of step s's last position
gen = [{'token': t, 'pos': p0 + n - 1} for t, p0, n in db.execute(
    "SELECT t.token, s.pos0, s.n_tokens FROM tokens t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step "
    "WHERE t.run_id = 1 AND t.role = 'gen' ORDER BY t.seq")]
ga = dump_of(d + '/t.db')
meta = gguf.read(ga)[1]
arch = meta['general.architecture']
n_layer, n_head = meta[arch + '.block_count'], meta[arch + '.attention.head_count']
ne, vals = gguf.f32(ga, 'kq_soft_max-%d#0' % (n_layer - 1))
n_pos, n_q, heads = ne[0], ne[1], ne[2]
per = n_pos * n_q
assert heads == n_head

# the comparison: parity by the rules of docs/trace-format.md, NMSE of a layer output
def parity(path):
    out = []
    for line in open(path):
        r = json.loads(line)
        top = sorted(r['top_k'], key=lambda x: -x[1])
        out.append((r['token'], top[0][0]))
    return out
pa, pb = parity(d + '/p.jsonl'), parity(d + '/pb.jsonl')
first = next((i for i, (x, y) in enumerate(zip(pa, pb)) if x[0] != y[0]), -1)
compared = (first + 1) if first >= 0 else min(len(pa), len(pb))
top1 = sum(1 for i in range(compared) if pa[i][1] == pb[i][1])
_, a = gguf.f32(ga, 'l_out-0#0')
_, b = gguf.f32(dump_of(d + '/b.db'), 'l_out-0#0')
nmse = sum((x - y) ** 2 for x, y in zip(a, b)) / sum(x * x for x in a)

want = {'tokens': toks, 'generated': gen[:-1], 'n_layer': n_layer,
        'sections_with_data': ['run', 'graph', 'time', 'attention', 'residual', 'lens', 'memory', 'comparison'],
        'attention': {'step': 0, 'layer': n_layer - 1, 'n_head': n_head, 'rows': n_q, 'cols': n_pos,
                      'values': [list(vals[h * per:(h + 1) * per]) for h in range(heads)]},
        'comparison': {'first_diff': first, 'compared': compared, 'top1': top1, 'tensor': 'l_out-0#0', 'nmse': nmse},
        # a timing run with checkpoints: its node times were taken while values were read
        'values_read': db.execute("SELECT level = 'timing' AND dump_path IS NOT NULL FROM runs WHERE id = 1").fetchone()[0] == 1}
json.dump(want, open(d + '/expected.json', 'w'))
PY
# the last generated token is never decoded: the lens has no row for it (generated[:-1])

node "$here/report-page.js" check "$dir/r.html" "$dir/expected.json" "$shots" \
    || fail "the page in Chromium (above)"
for s in run graph time attention residual lens memory comparison; do
    [ -s "$shots/report-$s.png" ] || fail "no screenshot of section $s"
done

# ---- a run compared live with a reference dump: its node_diffs are the comparison ---------------
bdump=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT dump_path FROM runs').fetchone()[0])" "$dir/b.db")
# (exit 1: the Q8_0 reference differs beyond the default tolerance, as it should)
"$bin" run -m "$m" -p "$prompt" -n 3 --reference "$bdump" -o "$dir/ref.db" >"$dir/run.out" 2>&1
rc=$?; [ $rc -le 1 ] || fail "run --reference: exit $rc: $(tail -2 "$dir/run.out")"
"$bin" report "$dir/ref.db" --data -o "$dir/ref.json" 2>/dev/null || fail "report of a --reference run: exit $?"
python3 - "$dir" <<'PY' || fail "the live comparison in the report differs from node_diffs"
import json, sqlite3, sys
d = sys.argv[1]
c = json.load(open(d + '/ref.json'))['comparison']
rows = sqlite3.connect(d + '/ref.db').execute('SELECT name, nmse, cosine FROM node_diffs WHERE run_id = 1 ORDER BY step, idx').fetchall()
assert c and c['live'], c
got = c['tensors']['rows']
assert len(got) == len(rows) > 0, (len(got), len(rows))
for g, (name, nmse, cos) in zip(got, rows):
    assert g[0] == name and abs(g[3] - nmse) <= 1e-6 * abs(nmse) and abs(g[4] - cos) <= 1e-6, (g, name, nmse, cos)
PY

# ---- self-contained, small; without its dump it says why --------------------------------------
size=$(stat -c %s "$dir/r.html")
[ "$size" -lt 5000000 ] || fail "the page is $size bytes"
grep -qE '<script[^>]+src=|<link[^>]+href=|@import|url\(http' "$dir/r.html" && fail "the page refers to an outside resource"
dump=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT dump_path FROM runs').fetchone()[0])" "$dir/t.db")
mv "$dump" "$dir/moved.gguf"
"$bin" report "$dir/t.db" --data -o "$dir/nodump.json" 2>/dev/null || fail "report without its dump: exit $?"
python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['attention'] is None and d['lens'] is None, 'values without the dump'
assert 'moved' not in d['missing']['values'] and d['missing']['values'], d['missing']
" "$dir/nodump.json" || fail "a report without its dump does not say why"

# ---- a plain run: each empty section names the option that fills it ---------------------------
"$bin" run -m "$m" -p "$prompt" -n 2 -o "$dir/plain.db" >/dev/null 2>&1 || fail "plain run: exit $?"
"$bin" report "$dir/plain.db" --data -o "$dir/plain.json" 2>/dev/null || fail "report of a plain run: exit $?"
python3 - "$dir/plain.json" <<'PY' || fail "a plain run's report does not say which options give its sections"
import json, sys
d = json.load(open(sys.argv[1]))
m = d['missing']
for section, option in [('candidates', '--parity'), ('time', '--level timing'), ('values', '--checkpoints'), ('comparison', '--vs')]:
    assert option in m[section], (section, m[section])
assert d['time'] is None and d['attention'] is None and d['lens'] is None and d['candidates'] is None
assert d['graph'] and d['tokens'] and d['weights']['rows'], 'the graph, tokens and weights of every run'
PY

# ---- a Mixture of Experts: the experts each layer read, from the routing table -------------------
moe=$("$bin" mkmodel tiny-qwen3moe F32 --cache) || fail "cannot make tiny-qwen3moe"
"$bin" run -m "$moe" -p "The capital of France is" -n 3 -o "$dir/moe.db" >/dev/null 2>&1 || fail "run of tiny-qwen3moe: exit $?"
"$bin" report "$dir/moe.db" -o "$dir/moe.html" 2>/dev/null || fail "report of a MoE run: exit $?"
python3 - "$dir" <<'PY' || fail "cannot compute the experts table"
import json, sqlite3, sys
d = sys.argv[1]
db = sqlite3.connect(d + '/moe.db')
n_exp = 1 + db.execute("SELECT max(expert) FROM expert_routing").fetchone()[0]
# the page draws the first generated step's graph; it reads the experts its tokens chose
gstep = db.execute("SELECT min(step) FROM steps WHERE phase = 'gen'").fetchone()[0]
rows = [['layer'] + ['expert %d' % e for e in range(n_exp)] + ['read by step %d' % gstep]]
for (layer,) in db.execute("SELECT DISTINCT layer FROM expert_routing ORDER BY layer").fetchall():
    count = dict(db.execute("SELECT expert, count(*) FROM expert_routing WHERE layer = ? GROUP BY expert", (layer,)).fetchall())
    read = [str(e) for (e,) in db.execute("SELECT DISTINCT expert FROM expert_routing WHERE layer = ? AND step = ? ORDER BY expert", (layer, gstep))]
    rows.append([str(layer)] + [str(count.get(e, 0)) for e in range(n_exp)] + [' '.join(read)])
json.dump(rows, open(d + '/experts.json', 'w'))
PY
node "$here/report-page.js" experts "$dir/moe.html" "$dir/experts.json" || fail "the experts table in Chromium (above)"

# ---- bad input: one line, exit 2, nothing written ----------------------------------------------
"$bin" report "$dir/none.db" -o "$dir/x.html" 2>"$dir/err"; expect "missing trace exit" "$?" 2
[ -e "$dir/x.html" ] && fail "a failed report wrote its output"
expect "missing trace message lines" "$(wc -l <"$dir/err")" 1
"$bin" report "$dir/t.db" --run 9 -o "$dir/x.html" 2>"$dir/err"; expect "missing run exit" "$?" 2
"$bin" report "$dir/t.db" --lens-k 99 2>"$dir/err"; expect "bad --lens-k exit" "$?" 2
"$bin" report "$dir/t.db" -o "$dir/t.db" 2>"$dir/err"; expect "output is the trace exit" "$?" 2
"$bin" report "$dir/t.db" --vs "$dir/none.db" -o "$dir/x.html" 2>"$dir/err"; expect "missing --vs trace exit" "$?" 2
[ -e "$dir/x.html" ] && fail "a failed report wrote its output"
finish
