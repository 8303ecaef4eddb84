#!/usr/bin/env bash
# Expert routing on the built-in Mixture of Experts (tiny-qwen3moe): the experts recorded in
# expert_routing against a dump of the router's own tensors, read by the tests' GGUF reader;
# `show --experts` against counts made from the dump; the topk view dumped by --dump and
# --checkpoints; MUL_MAT_ID bytes worked out by hand from the experts chosen; profile's split
# of MUL_MAT_ID time by expert redone here.
. "$(dirname "$0")/lib.sh" cli-experts "$@"

moe=$("$bin" mkmodel tiny-qwen3moe F32 --cache) || { echo "FAIL cannot make tiny-qwen3moe"; exit 1; }
cp "$(dirname "$0")/gguf.py" "$dir/gguf.py"

# a prompt step of 5 tokens, then 3 generated: the last layer computes its FFN for the last token only
"$bin" run -m "$moe" -p "Hello, my name is" -n 3 -t 2 -o "$dir/t.db" --level timing \
    --dump 'ffn_moe_argsort-*' --dump 'ffn_moe_topk-*' --dump 'ffn_moe_weights_norm-*' --dump-file "$dir/d.gguf" \
    >"$dir/run.out" 2>&1 || fail "run with dumps: exit $? ($(tail -1 "$dir/run.out"))"

# ---- the recorded experts are the argsort's first expert_used_count columns -----------------
python3 - "$dir" "$moe" <<'EOF' || fail "expert_routing differs from the dumped router tensors"
import sqlite3, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
d = sys.argv[1]
_, meta, _ = gguf.read(sys.argv[2])
n_used, n_expert = meta['qwen3moe.expert_used_count'], meta['qwen3moe.expert_count']
_, _, tensors = gguf.read(d + '/d.gguf')
f = open(d + '/d.gguf', 'rb')
def values(name, fmt):
    for n, typ, ne, off in tensors:
        if n == name:
            f.seek(off)
            count = 1
            for x in ne: count *= x
            return ne, list(struct.unpack('<%d%s' % (count, fmt), f.read(4 * count)))
    return None, None
db = sqlite3.connect(d + '/t.db')
steps = db.execute('SELECT step FROM steps ORDER BY step').fetchall()
n_layer = db.execute('SELECT n_layer FROM runs').fetchone()[0]
ok, compared = True, 0
for (step,) in steps:
    for layer in range(n_layer):
        ne, ids = values('ffn_moe_argsort-%d#%d' % (layer, step), 'i')
        tne, topk = values('ffn_moe_topk-%d#%d' % (layer, step), 'i')
        _, w = values('ffn_moe_weights_norm-%d#%d' % (layer, step), 'f')
        if ids is None or topk is None or w is None:
            print('  step %d layer %d: a router tensor is missing from the dump' % (step, layer)); ok = False; continue
        rows = ne[1] if len(ne) > 1 else 1
        want = [ids[r * ne[0]:r * ne[0] + n_used] for r in range(rows)]
        if ne[0] != n_expert:
            print('  argsort width %d, the model has %d experts' % (ne[0], n_expert)); ok = False
        if [topk[r * n_used:(r + 1) * n_used] for r in range(rows)] != want:
            print('  step %d layer %d: dumped topk view %s, argsort columns %s' % (step, layer, topk, want)); ok = False
        got = db.execute('SELECT pos, rank, expert, weight FROM expert_routing WHERE step = ? AND layer = ? ORDER BY pos, rank',
                         (step, layer)).fetchall()
        got_ids = [[e for p, r, e, _ in got[i * n_used:(i + 1) * n_used]] for i in range(len(got) // n_used)]
        if got_ids != want or len(got) != rows * n_used:
            print('  step %d layer %d: recorded %s, wanted %s' % (step, layer, got_ids, want)); ok = False
        for (p, r, e, gw), ww in zip(got, w):
            if abs(gw - ww) > 1e-6:
                print('  step %d layer %d pos %d: weight %g, dumped %g' % (step, layer, p, gw, ww)); ok = False
        compared += 1
# the positions: every token of a step in the first layer, the last token only in the last
for (step,) in steps:
    pos0, n = db.execute('SELECT pos0, n_tokens FROM steps WHERE step = ?', (step,)).fetchone()
    for layer, want in ((0, list(range(pos0, pos0 + n))), (n_layer - 1, [pos0 + n - 1])):
        got = [p for (p,) in db.execute('SELECT DISTINCT pos FROM expert_routing WHERE step = ? AND layer = ? ORDER BY pos',
                                        (step, layer))]
        if got != want:
            print('  step %d layer %d: positions %s, wanted %s' % (step, layer, got, want)); ok = False
if compared != len(steps) * n_layer:
    print('  compared %d layer steps, wanted %d' % (compared, len(steps) * n_layer)); ok = False
sys.exit(0 if ok else 1)
EOF

# ---- show --experts: histograms from the dump, tokens × expert_used_count -------------------
"$bin" show "$dir/t.db" --experts --format json >"$dir/experts.json" || fail "show --experts: exit $?"
python3 - "$dir" "$moe" <<'EOF' || fail "show --experts differs from the counts made here"
import json, sqlite3, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
d = sys.argv[1]
_, meta, _ = gguf.read(sys.argv[2])
n_used, n_expert = meta['qwen3moe.expert_used_count'], meta['qwen3moe.expert_count']
_, _, tensors = gguf.read(d + '/d.gguf')
f = open(d + '/d.gguf', 'rb')
counts = {}
for name, typ, ne, off in tensors:
    if not name.startswith('ffn_moe_argsort-'): continue
    layer = int(name.split('-')[1].split('#')[0])
    f.seek(off)
    rows = ne[1] if len(ne) > 1 else 1
    ids = struct.unpack('<%di' % (ne[0] * rows), f.read(4 * ne[0] * rows))
    c = counts.setdefault(layer, [0] * n_expert)
    for r in range(rows):
        for e in ids[r * ne[0]:r * ne[0] + n_used]: c[e] += 1
db = sqlite3.connect(d + '/t.db')
n_layer = db.execute('SELECT n_layer FROM runs').fetchone()[0]
n_steps, all_tokens = db.execute('SELECT count(*), sum(n_tokens) FROM steps').fetchone()
tokens = {0: all_tokens, n_layer - 1: n_steps}  # the last layer: one output row per step
s = json.load(open(d + '/experts.json'))
ok = True
for l in s['layers']:
    layer = l['layer']
    want = counts.get(layer)
    if l['counts'] != want:
        print('  layer %d: counts %s, from the dump %s' % (layer, l['counts'], want)); ok = False
    if sum(l['counts']) != tokens[layer] * n_used or l['tokens'] != tokens[layer]:
        print('  layer %d: %d choices of %d tokens, wanted %d x %d' % (layer, sum(l['counts']), l['tokens'], tokens[layer], n_used)); ok = False
    mean = sum(want) / n_expert
    if abs(l['imbalance'] - max(want) / mean) > 1e-9 or l['idle'] != want.count(0) or l['experts'] != n_expert or l['used'] != n_used:
        print('  layer %d: imbalance %s idle %s experts %s used %s' % (layer, l['imbalance'], l['idle'], l['experts'], l['used'])); ok = False
if sorted(l['layer'] for l in s['layers']) != list(range(n_layer)):
    print('  layers %s' % [l['layer'] for l in s['layers']]); ok = False
if len(s['tokens']) != all_tokens + n_steps:
    print('  %d token rows, wanted %d' % (len(s['tokens']), all_tokens + n_steps)); ok = False
for t in s['tokens']:
    if len(t['experts']) != n_used or abs(sum(t['weights']) - 1) > 1e-5:  # qwen3moe normalises the weights
        print('  token row %s' % t); ok = False
sys.exit(0 if ok else 1)
EOF

# ---- MUL_MAT_ID reads the chosen experts only: weight bytes per step by hand ---------------
"$bin" show "$dir/t.db" --stats --format json >"$dir/stats.json" || fail "show --stats: exit $?"
python3 - "$dir" <<'EOF' || fail "bytes of weights read per step differ from those worked out by hand"
import json, sqlite3, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
d = sys.argv[1]
_, _, tensors = gguf.read(d + '/d.gguf')
f = open(d + '/d.gguf', 'rb')
chosen = {}  # (step, layer): distinct experts, from the dumped topk view
for name, typ, ne, off in tensors:
    if not name.startswith('ffn_moe_topk-'): continue
    layer, step = map(int, name[len('ffn_moe_topk-'):].split('#'))
    n = ne[0] * (ne[1] if len(ne) > 1 else 1)
    f.seek(off)
    chosen[(step, layer)] = len(set(struct.unpack('<%di' % n, f.read(4 * n))))
db = sqlite3.connect(d + '/t.db')
stats = {s['step']: s for s in json.load(open(d + '/stats.json'))['steps']}
ok = True
for step, graph in db.execute('SELECT step, graph_id FROM steps ORDER BY step').fetchall():
    want = 0
    for op, layer, ne1, ne2, ne3, w_bytes, w_ne1, w_ne2, w_ne3 in db.execute(
            "SELECT n.op, n.layer, n.ne1, n.ne2, n.ne3, w.bytes, w.ne1, w.ne2, w.ne3 FROM nodes n"
            " JOIN node_srcs s ON s.graph_id = n.graph_id AND s.idx = n.idx AND s.kind = 'weight'"
            " JOIN weights w ON w.id = s.weight_id WHERE n.graph_id = ?", (graph,)):
        if op == 'MUL_MAT_ID':
            want += w_bytes // w_ne2 * chosen[(step, layer)]   # [K, M, n_expert]: whole experts
        elif op == 'GET_ROWS':
            want += w_bytes // (w_ne1 * w_ne2 * w_ne3) * ne1 * ne2 * ne3  # the rows asked for
        else:
            want += w_bytes
    if stats[step]['read_weights'] != want:
        print('  step %d: read_weights %d, by hand %d' % (step, stats[step]['read_weights'], want)); ok = False
# the prompt step's first layer: 10 choices could reach all 8 experts, fewer were chosen
if chosen[(0, 0)] >= 8:
    print('  step 0 layer 0 chose every expert: the test needs a prompt that leaves one idle'); ok = False
sys.exit(0 if ok else 1)
EOF

# ---- profile --by expert: each MUL_MAT_ID run's time split by the tokens each expert took ----
"$bin" profile "$dir/t.db" --by expert --format json >"$dir/prof.json" || fail "profile --by expert: exit $?"
python3 - "$dir" <<'EOF' || fail "profile --by expert differs from the split worked out here"
import json, sqlite3, sys
d = sys.argv[1]
db = sqlite3.connect(d + '/t.db')
want = {}  # (layer, expert): [tokens, steps, time_ns, samples]
uses = {}
for step, layer, expert, n in db.execute('SELECT step, layer, expert, count(*) FROM expert_routing GROUP BY 1, 2, 3'):
    uses.setdefault((step, layer), []).append((expert, n))
    w = want.setdefault((layer, expert), [0, 0, 0.0, 0])
    w[0] += n; w[1] += 1
for step, layer, dur in db.execute("SELECT step, layer, dur_ns FROM node_times_named WHERE op = 'MUL_MAT_ID'"):
    total = sum(n for _, n in uses[(step, layer)])
    for expert, n in uses[(step, layer)]:
        w = want[(layer, expert)]
        w[2] += dur * n / total; w[3] += 1
rows = json.load(open(d + '/prof.json'))['rows']
ok = len(rows) == 16  # 2 layers x 8 experts, the idle ones too
for r in rows:
    w = want.get((r['layer'], r['expert']), [0, 0, 0.0, 0])
    if [r['tokens'], r['steps'], r['samples']] != [w[0], w[1], w[3]] or abs(r['time_us'] * 1000 - w[2]) > 1:
        print('  layer %d expert %d: %s, wanted tokens, steps, time_ns, samples %s' % (r['layer'], r['expert'], r, w)); ok = False
if not ok: print('  %d rows' % len(rows))
sys.exit(0 if ok else 1)
EOF

# ---- --checkpoints: the experts chosen (the topk view) are a checkpoint of every MoE layer ---
"$bin" run -m "$moe" -p "Hello, my name is" -n 1 -t 2 -o "$dir/cp.db" --checkpoints --dump-file "$dir/cp.gguf" \
    >"$dir/cp.out" 2>&1 || fail "run --checkpoints: exit $? ($(tail -1 "$dir/cp.out"))"
python3 - "$dir" <<'EOF' || fail "--checkpoints: the moe_topk checkpoints differ from expert_routing"
import sqlite3, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
d = sys.argv[1]
_, meta, tensors = gguf.read(d + '/cp.gguf')
facts = gguf.tensor_facts(meta, tensors)
f = open(d + '/cp.gguf', 'rb')
db = sqlite3.connect(d + '/cp.db')
n_layer = db.execute('SELECT n_layer FROM runs').fetchone()[0]
ok = True
for layer in range(n_layer):
    name = 'ffn_moe_topk-%d#0' % layer
    found = [(ne, off) for n, t, ne, off in tensors if n == name]
    if not found or facts[name].get('checkpoint') != 'moe_topk':
        print('  %s: missing, or not checkpoint moe_topk' % name); ok = False; continue
    ne, off = found[0]
    n = ne[0] * (ne[1] if len(ne) > 1 else 1)
    f.seek(off)
    got = list(struct.unpack('<%di' % n, f.read(4 * n)))
    want = [e for (e,) in db.execute('SELECT expert FROM expert_routing WHERE step = 0 AND layer = ? ORDER BY pos, rank', (layer,))]
    if got != want:
        print('  %s: %s, expert_routing %s' % (name, got, want)); ok = False
sys.exit(0 if ok else 1)
EOF

# one step, one layer; usage errors
# csv: the layers, a blank line, the tokens (step, pos, piece, layer, ...)
"$bin" show "$dir/t.db" --experts --step 0 --layer 0 --format csv >"$dir/e.csv" || fail "show --experts --format csv: exit $?"
expect "show --experts --step 0 --layer 0: layers" "$(grep -c '^0,8,2,5,' "$dir/e.csv")" 1
expect "show --experts --step 0 --layer 0: token rows" "$(grep -c '^0,[0-4],.*,0,[0-7] [0-7],' "$dir/e.csv")" 5
"$bin" show "$dir/t.db" --experts --op MUL_MAT >/dev/null 2>&1; expect "show --experts --op: exit" "$?" 2
"$bin" show "$dir/t.db" --experts --stats >/dev/null 2>&1; expect "show --experts --stats: exit" "$?" 2

# a model without experts: no layers, a note, exit 0
"$bin" run -n 1 -t 2 -o "$dir/llama.db" >/dev/null 2>&1 || fail "run tiny: exit $?"
out=$("$bin" show "$dir/llama.db" --experts 2>&1); rc=$?
expect "show --experts on llama: exit" "$rc" 0
[[ "$out" == *"no expert routing"* ]] || fail "show --experts on llama: no note ($out)"
expect "llama: routing rows" "$(sqlite3 "$dir/llama.db" 'SELECT count(*) FROM expert_routing')" 0

# ---- every level records the same experts -----------------------------------------------------
for level in graph values; do
    "$bin" run -m "$moe" -p "Hello, my name is" -n 3 -t 2 -o "$dir/$level.db" --level $level >/dev/null 2>&1 ||
        fail "run --level $level: exit $?"
    q='SELECT group_concat(step || ":" || layer || ":" || pos || ":" || expert, " ") FROM expert_routing'
    expect "level $level: the experts of level timing" "$(sqlite3 "$dir/$level.db" "$q")" "$(sqlite3 "$dir/t.db" "$q")"
done

finish
