#!/usr/bin/env bash
# lltrace report in headless Chromium: a checkpointed, timed run with parity records, its page
# loaded from disk with no console error and no network request, every section there, the
# attention heatmaps of the last layer at the prompt step equal to the dump's values (read by a
# GGUF reader written here in Python), the token strip equal to the trace's tokens (Python's
# sqlite3), the logit lens' last layer equal to the tokens the run chose; a screenshot of each
# section into the test's output folder; bad input.
#   cli-report.sh LLTRACE_BINARY [SHOTS_DIR]
# The model is LLTRACE_REPORT_MODEL (a GGUF path), else the built-in tiny F32 model.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" cli-report "$@"
shots=${2:-$dir/shots}
. "$here/browser.sh"

m=${LLTRACE_REPORT_MODEL:-$model}
"$bin" run -m "$m" -p "The quick brown fox jumps over the lazy dog" -n 6 --checkpoints --level timing \
    --parity "$dir/p.jsonl" -o "$dir/t.db" >"$dir/run.out" 2>&1 || { cat "$dir/run.out"; fail "run: exit $?"; finish; }
"$bin" report "$dir/t.db" -o "$dir/r.html" 2>"$dir/err" || fail "report: exit $?: $(cat "$dir/err")"
grep -q "open file://$dir/r.html" "$dir/err" || fail "report does not say how to open the page: $(cat "$dir/err")"

# ---- what the page must show, computed here ---------------------------------------------------
python3 - "$dir" <<'PY' || fail "cannot compute the expected values"
import json, sqlite3, struct, sys
d = sys.argv[1]
db = sqlite3.connect(d + '/t.db')
dump, = db.execute('SELECT dump_path FROM runs WHERE id = 1').fetchone()
toks = [{'token': t, 'piece': p} for t, p in db.execute("SELECT token, piece FROM tokens WHERE run_id = 1 ORDER BY seq")]
# a generated token at step s came from the logits of step s's last position
gen = [{'token': t, 'pos': p0 + n - 1} for t, p0, n in db.execute(
    "SELECT t.token, s.pos0, s.n_tokens FROM tokens t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step "
    "WHERE t.run_id = 1 AND t.role = 'gen' ORDER BY t.seq")]
f = open(dump, 'rb')
def take(fmt):
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
SC = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}
def value(t):
    if t == 8: return f.read(take('<Q')).decode('utf-8', 'replace')
    if t == 9:
        at, n = take('<I'), take('<Q')
        return [value(at) for _ in range(n)]
    return take(SC[t])
assert f.read(4) == b'GGUF'
_, n_t, n_kv = take('<I'), take('<Q'), take('<Q')
meta = {}
for _ in range(n_kv):
    k = f.read(take('<Q')).decode()
    meta[k] = value(take('<I'))
infos = {}
for _ in range(n_t):
    name = f.read(take('<Q')).decode()
    ne = [take('<Q') for _ in range(take('<I'))]
    infos[name] = (ne, take('<I'), take('<Q'))
align = meta.get('general.alignment', 32)
start = (f.tell() + align - 1) // align * align
arch = meta['general.architecture']
n_layer, n_head = meta[arch + '.block_count'], meta[arch + '.attention.head_count']
ne, typ, off = infos['kq_soft_max-%d#0' % (n_layer - 1)]
assert typ == 0, 'attention probabilities are f32 in the dump'
f.seek(start + off)
n_pos, n_q, heads = ne[0], ne[1], ne[2]
vals = struct.unpack('<%df' % (n_pos * n_q * heads), f.read(4 * n_pos * n_q * heads))
per = n_pos * n_q
want = {'tokens': toks, 'generated': gen[:-1], 'n_layer': n_layer,
        'sections_with_data': ['run', 'graph', 'time', 'attention', 'residual', 'lens', 'memory'],
        'attention': {'step': 0, 'layer': n_layer - 1, 'n_head': n_head, 'rows': n_q, 'cols': n_pos,
                      'values': [list(vals[h * per:(h + 1) * per]) for h in range(heads)]}}
assert heads == n_head
json.dump(want, open(d + '/expected.json', 'w'))
PY
# the last generated token is never decoded: the lens has no row for it (generated[:-1])

node "$here/report-page.js" check "$dir/r.html" "$dir/expected.json" "$shots" \
    || fail "the page in Chromium (above)"
for s in run graph time attention residual lens memory comparison; do
    [ -s "$shots/report-$s.png" ] || fail "no screenshot of section $s"
done

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

# ---- bad input: one line, exit 2, nothing written ----------------------------------------------
"$bin" report "$dir/none.db" -o "$dir/x.html" 2>"$dir/err"; expect "missing trace exit" "$?" 2
[ -e "$dir/x.html" ] && fail "a failed report wrote its output"
expect "missing trace message lines" "$(wc -l <"$dir/err")" 1
"$bin" report "$dir/t.db" --run 9 -o "$dir/x.html" 2>"$dir/err"; expect "missing run exit" "$?" 2
"$bin" report "$dir/t.db" --lens-k 99 2>"$dir/err"; expect "bad --lens-k exit" "$?" 2
"$bin" report "$dir/t.db" -o "$dir/t.db" 2>"$dir/err"; expect "output is the trace exit" "$?" 2
finish
