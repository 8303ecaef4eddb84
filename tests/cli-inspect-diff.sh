#!/usr/bin/env bash
# lltrace inspect and diff on the built-in models, checked against a GGUF reader written here
# in Python (no numpy): tensor counts, offsets and Q8_0 blocks; diffs of a model against itself,
# against its Q8_0 and Q4_K_M versions and against a Hugging Face-style safetensors written
# here; and bad input, each a one-line error and exit 2.
#   cli-inspect-diff.sh LLTRACE_BINARY
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
map="$here/../docs/maps/llama-hf.map"
dir=$(mktemp -d /tmp/lltrace-cli-inspect-diff-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# expect WANT_EXIT NAME PHRASE -- command...: the exit status; for 2, one stderr line holding PHRASE
expect() {
    local want=$1 name=$2 phrase=$3; shift 4
    "$@" >"$dir/out" 2>"$dir/err"
    local got=$?
    if [ "$got" != "$want" ]; then fail "$name: exit $got, want $want; stderr: $(cat "$dir/err")"; return; fi
    [ "$want" != 2 ] && return
    [ "$(wc -l <"$dir/err")" = 1 ] || { fail "$name: want one line on stderr:"; cat "$dir/err"; return; }
    grep -q '^lltrace: ' "$dir/err" || fail "$name: no 'lltrace: ' prefix: $(cat "$dir/err")"
    grep -qF -- "$phrase" "$dir/err" || fail "$name: message lacks '$phrase': $(cat "$dir/err")"
}

f32=$("$bin" mkmodel tiny F32 --cache) || { echo "FAIL cannot make tiny F32"; exit 1; }
q8=$("$bin" mkmodel tiny Q8_0 --cache) || { echo "FAIL cannot make tiny Q8_0"; exit 1; }
q4=$("$bin" mkmodel tiny Q4_K_M --cache) || { echo "FAIL cannot make tiny Q4_K_M"; exit 1; }

# ---- a GGUF reader of our own ---------------------------------------------------------------
cp "$here/gguf.py" "$dir/gguf.py"

# ---- inspect ----------------------------------------------------------------------------------
for model in "$f32" "$q4"; do
    "$bin" inspect "$model" --format json >"$dir/inspect.json" || { fail "inspect $model: exit $?"; continue; }
    python3 - "$dir" "$model" <<'EOF' || fail "inspect $model: tensor table differs from the file"
import json, sys
sys.path.insert(0, sys.argv[1])
import gguf
n_kv, meta, tensors = gguf.read(sys.argv[2])
d = json.load(open(sys.argv[1] + '/inspect.json'))
ok = True
def check(cond, what):
    global ok
    if not cond:
        print('  ' + what); ok = False
check(d['file']['n_tensors'] == len(tensors), 'n_tensors %d, the file has %d' % (d['file']['n_tensors'], len(tensors)))
check(d['file']['metadata_keys'] == n_kv, 'metadata_keys %d, the file has %d' % (d['file']['metadata_keys'], n_kv))
check(len(d['metadata']) == n_kv, '%d metadata keys, the file has %d' % (len(d['metadata']), n_kv))
check([m['key'] for m in d['metadata']] == list(meta.keys()), 'metadata keys differ')
for t, (name, typ, ne, off) in zip(d['tensors'], tensors):
    check(t['name'] == name and t['ne'] == ne and t['offset'] == off,
          '%s: ne %s offset %d, the file says %s %s %d' % (t['name'], t['ne'], t['offset'], name, ne, off))
    if typ in gguf.TYPE_NAMES:
        check(t['type'] == gguf.TYPE_NAMES[typ], '%s: type %s, the file says %d' % (name, t['type'], typ))
arch = meta['general.architecture']
check(any(m['key'] == arch + '.block_count' and m['value'] == meta[arch + '.block_count'] for m in d['metadata']),
      'block_count value')
sys.exit(0 if ok else 1)
EOF
done

# csv: the tensor table exactly (bytes in bytes, offsets of the file); a table gives bytes in
# binary units and shapes innermost first
"$bin" inspect "$q8" --no-metadata --format csv >"$dir/inspect.csv" || fail "inspect --format csv: exit $?"
"$bin" inspect "$q8" --no-metadata >"$dir/inspect.txt" || fail "inspect table: exit $?"
python3 - "$dir" "$q8" <<'EOF' || fail "inspect csv and table differ from the file"
import csv, sys
sys.path.insert(0, sys.argv[1])
import gguf
_, _, tensors = gguf.read(sys.argv[2])
rows = list(csv.DictReader(open(sys.argv[1] + '/inspect.csv', encoding='utf-8')))
assert [r['name'] for r in rows] == [t[0] for t in tensors], [r['name'] for r in rows]
for r, (name, typ, ne, off) in zip(rows, tensors):
    n = 1
    for x in ne: n *= x
    size = n * 4 if typ == 0 else n // 32 * 34  # f32, or q8_0: 34 bytes per 32 elements
    assert int(r['offset']) == off and int(r['bytes']) == size and int(r['elements']) == n, (r, off, size, n)
    assert r['ne'] == '[' + ', '.join(map(str, ne)) + ']', (r['ne'], ne)
line = [l for l in open(sys.argv[1] + '/inspect.txt', encoding='utf-8') if ' blk.0.attn_q.weight ' in l][0]
# 256 x 256 q8_0: 2048 blocks of 34 bytes = 68.0 KiB
assert '[256, 256]' in line and '68.0 KiB' in line, line
EOF

# --blocks of a Q8_0 tensor: d and the int8 quants of each block, read here from the file
"$bin" inspect "$q8" --blocks blk.0.attn_q.weight --n-blocks 3 --format json >"$dir/blocks.json" || fail "inspect --blocks: exit $?"
python3 - "$dir" "$q8" <<'EOF' || fail "inspect --blocks: Q8_0 blocks differ from the file"
import json, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
_, _, tensors = gguf.read(sys.argv[2])
off = [o for n, t, ne, o in tensors if n == 'blk.0.attn_q.weight'][0]
doc = json.load(open(sys.argv[1] + '/blocks.json'))
d = doc['blocks']
assert d['type'] == 'q8_0' and d['block_size'] == 32 and d['block_bytes'] == 34 and d['decoded'] is True, d
assert len(doc['shown']) == 3 and len(doc['sub_blocks']) == 3, (len(doc['shown']), len(doc['sub_blocks']))
assert 'tensors' not in doc, 'a tensor table with --blocks alone'
raw = open(sys.argv[2], 'rb').read()
for k, (b, sb) in enumerate(zip(doc['shown'], doc['sub_blocks'])):
    blk = raw[off + 34 * k: off + 34 * (k + 1)]
    scale = struct.unpack('<e', blk[:2])[0]
    qs = list(struct.unpack('<32b', blk[2:]))
    assert b['block'] == k and b['first'] == 32 * k and b['dmin'] is None and b['decode_error'] == 0, b
    assert abs(b['d'] - scale) <= 1e-9 * abs(scale), (k, b['d'], scale)
    assert sb['block'] == k and sb['sub'] == 0 and sb['scale_q'] is None and sb['q'] == qs, (k, sb, qs)
    assert all(abs(v - scale * q) <= 1e-6 * abs(scale * q) for v, q in zip(b['values'], qs)), k
EOF
"$bin" inspect "$q4" --tensor blk.0.attn_q.weight --stats --show-data 4 --format json >"$dir/one.json" || fail "inspect --tensor: exit $?"
python3 -c "
import json, sys
d = json.load(open('$dir/one.json'))
t = d['tensors']
assert len(t) == 1 and t[0]['name'] == 'blk.0.attn_q.weight' and len(t[0]['data']) == 4, t
s = t[0]
assert s['elements'] == 65536 and s['nan'] == 0 and s['min'] <= s['mean'] <= s['max'] and s['std'] > 0, s
" || fail "inspect --tensor --stats --show-data"

# --tensor is a case-sensitive glob; one that matches nothing is a warning, not an error;
# --no-metadata leaves the keys out
"$bin" inspect "$q4" --tensor 'blk.1.attn_*' --no-metadata --format json >"$dir/glob.json" 2>"$dir/err" || fail "inspect --tensor glob: exit $?"
python3 - "$dir/glob.json" "$q4" "$dir" <<'EOF' || fail "inspect --tensor glob --no-metadata"
import json, sys
sys.path.insert(0, sys.argv[3])
import gguf
d = json.load(open(sys.argv[1]))
_, _, tensors = gguf.read(sys.argv[2])
want = [n for n, t, ne, o in tensors if n.startswith('blk.1.attn_')]
got = [t['name'] for t in d['tensors']]
assert 'metadata' not in d, 'metadata shown with --no-metadata'
assert got == want and len(want) == 5, (got, want)
EOF
"$bin" inspect "$f32" --tensor 'BLK.*' >"$dir/out" 2>"$dir/err"
rc=$?
[ "$rc" = 0 ] || fail "inspect --tensor matching nothing: exit $rc, want 0"
grep -q "warning: --tensor 'BLK.\*' matched no tensor" "$dir/err" || fail "inspect --tensor matching nothing: no warning: $(cat "$dir/err")"
grep -q "tensors (0 of 21)" "$dir/out" || fail "inspect --tensor matching nothing: $(cat "$dir/out")"

# ---- diff: a model against itself and against its quantized versions --------------------------
expect 0 "diff model itself" "" -- "$bin" diff "$f32" "$f32" --format json
python3 -c "
import json
s = json.load(open('$dir/out'))['summary']
assert s['compared'] == 21 and s['within'] == 21 and s['max_abs'] == 0 and s['mean_cosine'] == 1, s
" || fail "diff model itself: not all zero"

"$bin" diff "$f32" "$q8" --weights --format json >"$dir/q8.json"; rc8=$?
"$bin" diff "$f32" "$q4" --weights --format json >"$dir/q4.json"; rc4=$?
[ "$rc8" = 1 ] && [ "$rc4" = 1 ] || fail "diff --weights of quantized models: exit $rc8 and $rc4, want 1 (exceeds)"
python3 - "$dir" <<'EOF' || fail "diff --weights: quantization error not monotone in precision"
import json, sys
q8 = {t['name']: t for t in json.load(open(sys.argv[1] + '/q8.json'))['tensors']}
q4 = {t['name']: t for t in json.load(open(sys.argv[1] + '/q4.json'))['tensors']}
ok, n = True, 0
for name, t8 in q8.items():
    t4 = q4[name]
    if t4['type_b'] == 'f32':
        if t8['max_abs'] != 0 or t4['max_abs'] != 0:
            print('  %s: f32 in both, yet differs' % name); ok = False
        continue
    e8, e4 = t8['rmse'], t4['rmse']
    n += 1
    if not (0 < e8 < e4):
        print('  %s: rmse q8_0 %g, q4_K_M (%s) %g' % (name, e8, t4['type_b'], e4)); ok = False
kinds8 = {k['kind'].split()[0]: k for k in json.load(open(sys.argv[1] + '/q8.json'))['kinds']}
for k in json.load(open(sys.argv[1] + '/q4.json'))['kinds']:
    base = k['kind'].split()[0]
    if k['kind'].endswith('f32->f32'): continue
    if not kinds8[base]['mean_nmse'] < k['mean_nmse']:
        print('  kind %s: nmse q8_0 %g >= q4_K_M %g' % (base, kinds8[base]['mean_nmse'], k['mean_nmse'])); ok = False
if n < 14: print('  only %d quantized tensors' % n); ok = False
layers = json.load(open(sys.argv[1] + '/q4.json'))['layers']
if sorted(l['layer'] for l in layers) != [-1, 0, 1]: print('  layers', layers); ok = False
sys.exit(0 if ok else 1)
EOF

# ---- the shipped Llama map: the F32 model against Hugging Face-style weights written here ------
python3 - "$dir" "$f32" <<'EOF' || fail "cannot write the Hugging Face-style safetensors"
import json, re, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
_, meta, tensors = gguf.read(sys.argv[2])
hd = meta['llama.embedding_length'] // meta['llama.attention.head_count']
raw = open(sys.argv[2], 'rb')
names = {'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight',
         'output.weight': 'lm_head.weight'}
per_layer = {'attn_norm': 'input_layernorm', 'attn_q': 'self_attn.q_proj', 'attn_k': 'self_attn.k_proj',
             'attn_v': 'self_attn.v_proj', 'attn_output': 'self_attn.o_proj', 'ffn_norm': 'post_attention_layernorm',
             'ffn_gate': 'mlp.gate_proj', 'ffn_up': 'mlp.up_proj', 'ffn_down': 'mlp.down_proj'}
header, blobs, off = {}, [], 0
for name, typ, ne, o in tensors:
    assert typ == 0
    raw.seek(o)
    data = raw.read(4 * eval('*'.join(map(str, ne))))
    m = re.fullmatch(r'blk\.(\d+)\.(\w+)\.weight', name)
    hf = names.get(name) or 'model.layers.%s.%s.weight' % (m.group(1), per_layer[m.group(2)])
    if m and m.group(2) in ('attn_q', 'attn_k'):
        # convert_hf_to_gguf.py moved HF row h*hd + j*hd/2 + i to h*hd + 2*i + j: move it back
        row = 4 * ne[0]
        rows = [data[r * row:(r + 1) * row] for r in range(ne[1])]
        hf_rows = [None] * ne[1]
        for r in range(ne[1]):
            h, w = divmod(r, hd)
            hf_rows[h * hd + (w % 2) * (hd // 2) + w // 2] = rows[r]
        data = b''.join(hf_rows)
    header[hf] = {'dtype': 'F32', 'shape': list(reversed(ne)), 'data_offsets': [off, off + len(data)]}
    blobs.append(data)
    off += len(data)
h = json.dumps(header).encode()
h += b' ' * (-len(h) % 8)
with open(sys.argv[1] + '/hf.safetensors', 'wb') as f:
    f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
EOF
expect 0 "diff with the llama-hf map" "" -- "$bin" diff "$f32" "$dir/hf.safetensors" --map "$map" --format json
python3 -c "
import json
s = json.load(open('$dir/out'))['summary']
assert s['compared'] == 21 and s['within'] == 21 and s['max_abs'] == 0 and s['unmapped'] == 0, s
" || fail "diff with the llama-hf map: not all zero"
# without the map nothing matches: every tensor is on one side only
expect 1 "diff without the map" "" -- "$bin" diff "$f32" "$dir/hf.safetensors"

# ---- diff: .npy directory against safetensors, both written here, with known metrics ----------
mkdir "$dir/npy"
python3 - "$dir" <<'EOF' || fail "cannot write the .npy files"
import json, struct, sys
d = sys.argv[1]
def npy(path, shape, values):
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ''.join('%d, ' % s for s in shape)
    head += ' ' * (-(10 + len(head) + 1) % 64) + '\n'
    open(path, 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(head)) + head.encode() +
                           struct.pack('<%df' % len(values), *values))
a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
b = [1.0, 2.0, 3.5, 4.0, 5.0, 6.0]
npy(d + '/npy/x.npy', (2, 3), a)
npy(d + '/npy/same.npy', (3,), [0.5, 0.25, 0.125])
blob = struct.pack('<6f', *b) + struct.pack('<3f', 0.5, 0.25, 0.125)
h = json.dumps({'x': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]},
                'same': {'dtype': 'F32', 'shape': [3], 'data_offsets': [24, 36]}}).encode()
open(d + '/b.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + blob)
EOF
expect 1 "diff npy vs safetensors" "" -- "$bin" diff "$dir/npy" "$dir/b.safetensors" --format json
python3 -c "
import json, math
d = json.load(open('$dir/out'))
x = [t for t in d['tensors'] if t['name'] == 'x'][0]
m = x
a = [1, 2, 3, 4, 5, 6]; b = [1, 2, 3.5, 4, 5, 6]
cos = sum(p * q for p, q in zip(a, b)) / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b))
assert x['status'] == 'exceeds' and x['ne_a'] == [3, 2] and m['max_abs'] == 0.5 and m['max_abs_index'] == 2, x
assert abs(m['max_rel'] - 0.5 / 3) < 1e-7 and abs(m['rmse'] - math.sqrt(0.25 / 6)) < 1e-9, m
assert abs(m['cosine'] - cos) < 1e-12 and abs(m['nmse'] - 0.25 / 91) < 1e-12 and m['n_exceed'] == 1, m
s = d['summary']
assert s['compared'] == 2 and s['within'] == 1 and s['first_exceed'] == 'x' and s['first_exceed_order'] == 'file', s
" || fail "diff npy vs safetensors: metrics differ from the ones computed here"
# csv: the same figures, exact, tensors first (a list; lists apart by an empty line)
"$bin" diff "$dir/npy" "$dir/b.safetensors" --format csv >"$dir/diff.csv"
python3 - "$dir/diff.csv" <<'EOF' || fail "diff --format csv"
import csv, io, math, sys
blocks = open(sys.argv[1], encoding='utf-8').read().split('\n\n')
rows = {r['name']: r for r in csv.DictReader(io.StringIO(blocks[0]))}
x, same = rows['x'], rows['same']
assert x['status'] == 'exceeds' and float(x['max_abs']) == 0.5 and int(x['max_abs_index']) == 2, x
assert abs(float(x['rmse']) - math.sqrt(0.25 / 6)) < 1e-12 and x['ne_a'] == '[3, 2]', x
assert same['status'] == 'within' and float(same['max_abs']) == 0 and float(same['cosine']) == 1, same
assert 'result' not in x, 'the table-only column result is in csv'
layers = list(csv.DictReader(io.StringIO(blocks[1])))
assert [(l['layer'], l['compared'], l['within']) for l in layers] == [('-1', '2', '1')], layers
EOF
# numbers that are not finite: null in json, nan/inf/-inf in a table and csv
mkdir "$dir/nonfinite"
python3 - "$dir" <<'EOF' || fail "cannot write the non-finite .npy"
import struct, sys
head = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"
head += ' ' * (-(10 + len(head) + 1) % 64) + '\n'
open(sys.argv[1] + '/nonfinite/v.npy', 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(head)) + head.encode() +
    struct.pack('<4f', float('nan'), float('inf'), float('-inf'), 1.5))
EOF
"$bin" inspect "$dir/nonfinite" --show-data 4 --stats --format json >"$dir/nf.json" || fail "inspect non-finite json: exit $?"
"$bin" inspect "$dir/nonfinite" --show-data 4 --format csv >"$dir/nf.csv" || fail "inspect non-finite csv: exit $?"
"$bin" inspect "$dir/nonfinite" --show-data 4 >"$dir/nf.txt" || fail "inspect non-finite table: exit $?"
python3 - "$dir" <<'EOF' || fail "inspect: non-finite values"
import csv, json, sys
d = sys.argv[1]
t = json.load(open(d + '/nf.json'))['tensors'][0]
assert t['data'] == [None, None, None, 1.5], t['data']
assert t['nan'] == 1 and t['pinf'] == 1 and t['ninf'] == 1 and t['min'] == 1.5 and t['max'] == 1.5, t
row = list(csv.DictReader(open(d + '/nf.csv')))[0]
assert row['data'] == 'nan inf -inf 1.5', row['data']
assert any(l.rstrip().endswith('nan inf -inf 1.5') for l in open(d + '/nf.txt')), open(d + '/nf.txt').read()
EOF

expect 0 "diff within loose tolerance" "" -- "$bin" diff "$dir/npy" "$dir/b.safetensors" --tolerance-abs 0.5
expect 0 "diff --name" "" -- "$bin" diff "$dir/npy" "$dir/b.safetensors" --name 'sa*'
# a --name that matches nothing is a warning, exit 0, with empty lists (as show's unmatched --name)
expect 0 "diff --name matching nothing" "" -- "$bin" diff "$f32" "$f32" --name 'BLK.*' --format json
grep -q "warning: --name 'BLK.\*' matched no tensor" "$dir/err" || fail "diff --name matching nothing: no warning: $(cat "$dir/err")"
python3 -c "
import json
d = json.load(open('$dir/out'))
assert d['tensors'] == [] and d['layers'] == [] and d['summary']['compared'] == 0, d
" || fail "diff --name matching nothing: lists not empty"

# ---- bad input: one line, exit 2 ---------------------------------------------------------------
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\377junk' >"$dir/corrupt.gguf"
head -c 2000000 "$f32" >"$dir/truncated.gguf"
printf '\377\377\000\000\000\000\000\000{"x":1}' >"$dir/bad.safetensors"
mkdir "$dir/badnpy"
python3 -c "
import struct
head = \"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\"
head += ' ' * (-(10 + len(head) + 1) % 64) + '\n'
open('$dir/badnpy/z.npy', 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(head)) + head.encode() + bytes(16))
"
expect 2 "inspect corrupt GGUF"   "corrupt or truncated GGUF header" -- "$bin" inspect "$dir/corrupt.gguf"
expect 2 "inspect truncated GGUF" "truncated"                        -- "$bin" inspect "$dir/truncated.gguf"
expect 2 "diff truncated GGUF"    "truncated"                        -- "$bin" diff "$f32" "$dir/truncated.gguf"
expect 2 "diff bad safetensors"   "bad safetensors header"           -- "$bin" diff "$dir/bad.safetensors" "$f32"
expect 2 "diff bad npy"           "unsupported dtype '<c8' (complex)" -- "$bin" diff "$dir/badnpy" "$dir/npy"
expect 2 "diff missing file"      "No such file"                     -- "$bin" diff "$dir/absent.gguf" "$f32"
expect 2 "diff one argument"      "needs two tensor sets"            -- "$bin" diff "$f32"
python3 -c "
import struct
open('$dir/empty.gguf', 'wb').write(b'GGUF' + struct.pack('<IQQ', 3, 0, 0))  # version 3, no tensor, no key
"
expect 2 "diff of two empty sets" "hold none"                        -- "$bin" diff "$dir/empty.gguf" "$dir/empty.gguf"
expect 2 "diff weights npy"       "--weights compares two GGUF"      -- "$bin" diff "$dir/npy" "$f32" --weights
expect 2 "diff bad tolerance"     "--tolerance-abs"                  -- "$bin" diff "$f32" "$f32" --tolerance-abs x
expect 2 "diff bad map"           "lltrace-map 1"                    -- "$bin" diff "$f32" "$f32" --map "$dir/bad.safetensors"
expect 2 "inspect no block tensor" "no tensor 'nope'"                -- "$bin" inspect "$f32" --blocks nope
expect 2 "inspect blocks of f32"  "not a block-quantized type"       -- "$bin" inspect "$f32" --blocks output_norm.weight
expect 2 "inspect bad format"     "unknown value"                   -- "$bin" inspect "$f32" --format xml

expect 2 "mkmodel unreadable vocab" "cannot read vocabulary"           -- "$bin" mkmodel tiny F32 --vocab "$dir/absent.gguf" -o "$dir/m.gguf"

# a write error on the output is a failure (1), not a usage error
if [ -w /dev/full ]; then
    "$bin" inspect "$f32" >/dev/full 2>/dev/null; rc=$?
    [ "$rc" = 1 ] || fail "inspect into a full device: exit $rc, want 1"
    "$bin" diff "$f32" "$f32" >/dev/full 2>/dev/null; rc=$?
    [ "$rc" = 1 ] || fail "diff into a full device: exit $rc, want 1"
fi

if [ "$fails" != 0 ]; then echo "cli-inspect-diff: $fails failure(s)"; exit 1; fi
echo "cli-inspect-diff: ok"
