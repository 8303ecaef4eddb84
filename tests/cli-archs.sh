#!/usr/bin/env bash
# The commands on the built-in model of one architecture, F32 and a quantized type: run at the
# values level (statistics in every layer), profile, show --dispatch, dumps and diff of two
# dumps; for gpt2, qwen3 and qwen3moe the shipped name map against Hugging Face-style weights
# written here from the F32 file in the other layout (GPT-2's Conv1D transposed, the MoE
# experts' gate and up fused), read with a GGUF reader of the tests' own.
#   cli-archs.sh LLTRACE_BINARY ARCH QUANT_TYPE
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" "cli-archs-$2" "$@"
arch=$2
qtype=$3
f32=$("$bin" mkmodel "tiny-$arch" F32 --cache) || { echo "FAIL cannot make tiny-$arch F32"; exit 1; }
quant=$("$bin" mkmodel "tiny-$arch" "$qtype" --cache) || { echo "FAIL cannot make tiny-$arch $qtype"; exit 1; }
cp "$here/gguf.py" "$dir/gguf.py"
prompt="The capital of France is"
q() { sqlite3 "$1" "$2"; }

# the tensors and layers of the file, counted by our own reader
read -r n_weights n_layer < <(python3 -c "
import sys; sys.path.insert(0, '$dir'); import gguf
_, meta, tensors = gguf.read('$f32')
print(len(tensors), meta['$arch.block_count'])")

# mkmodel says what it wrote, read back from the file (llama.cpp counts 0 parameters on a model
# it built in memory): the parameters are the elements of the file's tensors
"$bin" mkmodel "tiny-$arch" -o "$dir/again.gguf" >/dev/null 2>"$dir/err" || fail "mkmodel -o: $(tail -1 "$dir/err")"
cmp -s "$dir/again.gguf" "$f32" || fail "mkmodel tiny-$arch: not the same bytes as the cached model"
want_params=$(python3 -c "
import sys; sys.path.insert(0, '$dir'); import gguf
n = 0
for _, _, ne, _ in gguf.read('$f32')[2]:
    p = 1
    for d in ne: p *= d
    n += p
print(n)")
expect "mkmodel's report" "$(grep -o "$arch, $n_weights tensors, [0-9]* parameters" "$dir/err")" "$arch, $n_weights tensors, $want_params parameters"
rm -f "$dir/again.gguf"

for type in F32 "$qtype"; do
    model=$f32; [ "$type" = F32 ] || model=$quant
    t=$dir/$type.db
    # ---- the values level: statistics of the computing nodes of every layer; with a dump of
    # every node of the prompt step
    "$bin" run -m "$model" -p "$prompt" -n 2 --level values --dump '*' --dump-step 0 --dump-file "$dir/dump-$type.gguf" \
        -o "$t" >/dev/null 2>"$dir/err" || { fail "$type: run --level values: $(tail -1 "$dir/err")"; continue; }
    expect "$type: layers with node statistics" \
        "$(q "$t" "SELECT count(DISTINCT n.layer) FROM node_stats s JOIN steps st ON st.run_id=s.run_id AND st.step=s.step
                   JOIN nodes n ON n.graph_id=st.graph_id AND n.idx=s.idx WHERE s.run_id=1 AND n.layer >= 0")" "$n_layer"
    # (the cache writes, SET_ROWS into a view of the cache, are not summarised)
    expect "$type: computing nodes of step 1 without statistics" \
        "$(q "$t" "SELECT count(*) FROM steps st JOIN nodes n ON n.graph_id=st.graph_id WHERE st.run_id=1 AND st.step=1
                   AND n.is_noop=0 AND n.op != 'SET_ROWS' AND NOT EXISTS (SELECT 1 FROM node_stats s WHERE s.run_id=1 AND s.step=1 AND s.idx=n.idx)")" 0
    expect "$type: non-finite values" "$(q "$t" "SELECT count(*) FROM node_stats WHERE run_id=1 AND n_nan + n_pinf + n_ninf > 0")" 0
    # the same statistics, bit for bit, whether read at stamps, derived (norms) or at post calls
    # (--break-on-nan reads every node at its post call): this architecture's norms and in-place
    # operations planned right
    s=$dir/stamps-$type.db
    "$bin" run -m "$model" -p "$prompt" -n 4 --level values -o "$s" >/dev/null 2>"$dir/err" &&
    "$bin" run -m "$model" -p "$prompt" -n 4 --level values --break-on-nan -o "$s" >/dev/null 2>"$dir/err" ||
        fail "$type: run --level values (stamps, posts): $(tail -1 "$dir/err")"
    cols="step, idx, n, n_nan, n_pinf, n_ninf, n_zero, min, max, mean, std, absmax"
    expect "$type: statistics rows, read at stamps and at posts" \
        "$(q "$s" "SELECT (SELECT count(*) FROM node_stats WHERE run_id=1) = (SELECT count(*) FROM node_stats WHERE run_id=2)
                    AND (SELECT count(*) FROM node_stats WHERE run_id=1) > 0")" 1
    expect "$type: statistics that differ between stamps and posts" \
        "$(q "$s" "SELECT count(*) FROM (SELECT $cols FROM node_stats WHERE run_id=1 EXCEPT SELECT $cols FROM node_stats WHERE run_id=2)")" 0

    # ---- profile: every op of the graph gets time, every layer a row
    "$bin" run -m "$model" -p "$prompt" -n 3 --level profile -o "$t" >/dev/null 2>"$dir/err" ||
        fail "$type: run --level profile: $(tail -1 "$dir/err")"
    if "$bin" profile "$t" --format json >"$dir/profile.json" 2>"$dir/err"; then
        python3 - "$dir/profile.json" "$n_layer" "$arch" <<'EOF' || fail "$type: profile"
import json, sys
p = json.load(open(sys.argv[1]))
text = json.dumps(p)
want = ['MUL_MAT'] + (['MUL_MAT_ID'] if sys.argv[3] == 'qwen3moe' else [])
missing = [op for op in want if '"%s"' % op not in text]
if missing: print('  ops missing from the profile:', missing); sys.exit(1)
EOF
    else
        fail "$type: profile: $(tail -1 "$dir/err")"
    fi

    # ---- show --dispatch: every weight with its type and the buffer it was read from
    "$bin" show "$t" --run 2 --dispatch --format csv >"$dir/dispatch.csv" 2>"$dir/err" || fail "$type: show --dispatch: $(tail -1 "$dir/err")"
    expect "$type: weights in show --dispatch" "$(grep -cE '^[0-9]+,[a-z0-9_.]+\.(weight|bias),' "$dir/dispatch.csv")" "$n_weights"

done

# ---- diff: a dump against itself is exact; F32 against the quantized model compares every node
d32=$dir/dump-F32.gguf dq=$dir/dump-$qtype.gguf
"$bin" diff "$d32" "$d32" --format json >"$dir/self.json" 2>"$dir/err"
expect "diff of a dump with itself: exit" "$?" 0
"$bin" diff "$d32" "$dq" --format json >"$dir/fq.json" 2>"$dir/err"
rc=$?
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "diff F32 vs $qtype: exit $rc: $(tail -1 "$dir/err")"
python3 - "$dir/self.json" "$dir/fq.json" <<'EOF' || fail "diff of the dumps"
import json, sys
s = json.load(open(sys.argv[1]))['summary']
q = json.load(open(sys.argv[2]))['summary']
ok = True
if not (s['compared'] > 20 and s['within'] == s['compared'] and s['max_abs'] == 0):
    print('  self:', s); ok = False
if q['compared'] != s['compared']:
    print('  F32 vs quantized compared %s of %s nodes' % (q['compared'], s['compared'])); ok = False
if not q['max_abs'] > 0:
    print('  F32 vs quantized: no difference at all:', q); ok = False
sys.exit(0 if ok else 1)
EOF

# ---- the name map: Hugging Face-style weights in their own layout, written from the F32 file
map=$here/../docs/maps/$arch-hf.map
if [ -f "$map" ]; then
    python3 - "$dir" "$f32" "$arch" <<'EOF' || fail "cannot write the Hugging Face-style safetensors"
import json, re, struct, sys
sys.path.insert(0, sys.argv[1])
import gguf
_, meta, tensors = gguf.read(sys.argv[2])
arch = sys.argv[3]
raw = open(sys.argv[2], 'rb')
def data_of(ne, o):
    raw.seek(o)
    n = 1
    for d in ne: n *= d
    return [raw.read(4 * ne[0]) for _ in range(n // ne[0])]   # rows of ne[0] floats
if arch == 'gpt2':
    top = {'token_embd.weight': 'transformer.wte.weight', 'position_embd.weight': 'transformer.wpe.weight',
           'output_norm.weight': 'transformer.ln_f.weight', 'output_norm.bias': 'transformer.ln_f.bias',
           'output.weight': 'lm_head.weight'}
    layer = {'attn_norm': 'ln_1', 'attn_qkv': 'attn.c_attn', 'attn_output': 'attn.c_proj', 'ffn_norm': 'ln_2',
             'ffn_up': 'mlp.c_fc', 'ffn_down': 'mlp.c_proj'}
    prefix = 'transformer.h.%s.'
else:
    top = {'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight',
           'output.weight': 'lm_head.weight'}
    layer = {'attn_norm': 'input_layernorm', 'attn_q': 'self_attn.q_proj', 'attn_k': 'self_attn.k_proj',
             'attn_v': 'self_attn.v_proj', 'attn_output': 'self_attn.o_proj', 'attn_q_norm': 'self_attn.q_norm',
             'attn_k_norm': 'self_attn.k_norm', 'ffn_norm': 'post_attention_layernorm', 'ffn_gate': 'mlp.gate_proj',
             'ffn_up': 'mlp.up_proj', 'ffn_down': 'mlp.down_proj', 'ffn_gate_inp': 'mlp.gate'}
    prefix = 'model.layers.%s.'
out = {}          # HF name -> (torch shape, bytes)
gate_up = {}      # layer -> {'gate': rows, 'up': rows}
for name, typ, ne, o in tensors:
    assert typ == 0, name
    rows = data_of(ne, o)
    m = re.fullmatch(r'blk\.(\d+)\.(\w+)\.(weight|bias)', name)
    if not m:
        out[top[name]] = (list(reversed(ne)), b''.join(rows))
        continue
    L, kind, what = m.groups()
    if kind in ('ffn_gate_exps', 'ffn_up_exps'):
        gate_up.setdefault(L, {})[kind] = (ne, rows)
        continue
    if kind == 'ffn_down_exps':      # experts.down_proj [n_expert, n_embd, n_ff]: the GGUF's layout
        out[prefix % L + 'mlp.experts.down_proj'] = (list(reversed(ne)), b''.join(rows))
        continue
    hf = prefix % L + layer[kind] + '.' + what
    if arch == 'gpt2' and what == 'weight' and kind in ('attn_qkv', 'attn_output', 'ffn_up', 'ffn_down'):
        # Conv1D keeps [in, out]: torch shape [ne0, ne1], element (i, j) = GGUF row j, column i
        floats = [struct.unpack('<%df' % ne[0], r) for r in rows]
        t = b''.join(struct.pack('<%df' % ne[1], *[floats[j][i] for j in range(ne[1])]) for i in range(ne[0]))
        out[hf] = ([ne[0], ne[1]], t)
    else:
        out[hf] = (list(reversed(ne)), b''.join(rows))
for L, parts in gate_up.items():
    # experts.gate_up_proj [n_expert, 2*n_ff, n_embd]: per expert the gate's rows, then the up's
    (ne, g), (_, u) = parts['ffn_gate_exps'], parts['ffn_up_exps']
    n_ff = ne[1]
    t = b''.join(b''.join(g[e * n_ff:(e + 1) * n_ff]) + b''.join(u[e * n_ff:(e + 1) * n_ff]) for e in range(ne[2]))
    out[prefix % L + 'mlp.experts.gate_up_proj'] = ([ne[2], 2 * n_ff, ne[0]], t)
header, blobs, off = {}, [], 0
for hf, (shape, data) in out.items():
    header[hf] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [off, off + len(data)]}
    blobs.append(data)
    off += len(data)
h = json.dumps(header).encode()
h += b' ' * (-len(h) % 8)
with open(sys.argv[1] + '/hf.safetensors', 'wb') as f:
    f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
print(len(tensors))
EOF
    "$bin" diff "$f32" "$dir/hf.safetensors" --map "$map" --format json >"$dir/map.json" 2>"$dir/err"
    expect "diff with the $arch-hf map: exit" "$?" 0
    python3 - "$dir/map.json" "$n_weights" <<'EOF' || fail "diff with the $arch-hf map"
import json, sys
s = json.load(open(sys.argv[1]))['summary']
n = int(sys.argv[2])
if not (s['compared'] == n and s['within'] == n and s['max_abs'] == 0 and s['unmapped'] == 0):
    print('  want %d tensors compared, all exact:' % n, s); sys.exit(1)
EOF
    # without the map nothing matches: every tensor is on one side only
    "$bin" diff "$f32" "$dir/hf.safetensors" >/dev/null 2>&1
    expect "diff without the map: exit" "$?" 1
fi
finish
