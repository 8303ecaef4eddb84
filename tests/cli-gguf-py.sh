#!/usr/bin/env bash
# lltrace's own GGUF reader (src/tensors/gguf_reader.c) against an independent one: llama.cpp's
# gguf-py (GGUFReader, numpy), from the pinned source. For two models (F32, Q4_K_M) and a
# checkpoint dump of tiny, `inspect --format json --show-data 4 --stats` must say what gguf-py
# reads: the header's figures, every key with its type and value (arrays: type, length and
# head), every tensor's name, type, shape, absolute offset and bytes, a dump's order and layer
# from its arrays, each F32 tensor's first values and its min, max and mean over all elements.
# Fails where gguf-py or numpy is missing (scripts/build.sh installs python3-numpy).
#   cli-gguf-py.sh LLTRACE_BINARY LLAMA_SOURCE_DIR
set -u
bin=$1
gguf_py=$2/gguf-py
dir=$(mktemp -d /tmp/lltrace-cli-gguf-py-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# a python with numpy: pyenv's may lack it where Debian's has it
py=
for p in python3 /usr/bin/python3; do
    if PYTHONPATH="$gguf_py" "$p" -c 'import numpy, gguf' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "FAIL no python3 with numpy and gguf-py ($gguf_py): scripts/build.sh installs python3-numpy"; exit 1; }

f32=$("$bin" mkmodel tiny F32 --cache) || { echo "FAIL cannot make tiny F32"; exit 1; }
q4=$("$bin" mkmodel tiny Q4_K_M --cache) || { echo "FAIL cannot make tiny Q4_K_M"; exit 1; }
"$bin" run -m "$f32" -p "Hello" -n 3 --checkpoints -o "$dir/t.db" >/dev/null 2>"$dir/err" || fail "run --checkpoints: $(cat "$dir/err")"
dump=$dir/t.db.run1.gguf

for file in "$f32" "$q4" "$dump"; do
    "$bin" inspect "$file" --format json --show-data 4 --stats >"$dir/inspect.json" 2>"$dir/err" || { fail "inspect $file: $(cat "$dir/err")"; continue; }
    PYTHONPATH="$gguf_py" "$py" - "$file" "$dir/inspect.json" <<'EOF' || fail "inspect $file differs from gguf-py"
import json, math, sys
import numpy as np
from gguf import GGUFReader, GGUFValueType as VT

path, got = sys.argv[1], json.load(open(sys.argv[2]))
r = GGUFReader(path)
bad = []
def check(what, a, b):
    if a != b: bad.append(f"{what}: lltrace {a!r}, gguf-py {b!r}")

names = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32", VT.INT32: "i32",
         VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "str", VT.ARRAY: "arr", VT.UINT64: "u64",
         VT.INT64: "i64", VT.FLOAT64: "f64"}
def scalar(t, v):  # as inspect's JSON writes it (an f32 as 9 digits, which read back exactly)
    if t == VT.BOOL: return bool(v)
    if t == VT.FLOAT32: return float(np.float32(v)) if math.isfinite(v) else None
    if t == VT.FLOAT64: return float(v) if math.isfinite(v) else None
    return int(v)
def f32(v):  # a JSON number read back as the f32 it was written from
    return v if v is None else float(np.float32(v))

# the header: gguf-py skips its own GGUF.* pseudo-keys when counting
keys = [f for f in r.fields.values() if not f.name.startswith("GGUF.")]
f = got["file"]
check("version", f["gguf_version"], int(r.fields["GGUF.version"].parts[0][0]))
check("keys", f["metadata_keys"], len(keys))
check("tensors", f["n_tensors"], len(r.tensors))
check("alignment", f["alignment"], r.alignment)
check("data offset", f["data_offset"], r.data_offset)

meta = got.get("metadata", [])
check("metadata rows", len(meta), len(keys))
for row, k in zip(meta, keys):
    check("key", row["key"], k.name)
    t = k.types[0]
    check(k.name + " type", row["type"], names[t])
    if t == VT.STRING:
        check(k.name, row["value"], k.contents())
    elif t == VT.ARRAY:
        et = k.types[1] if len(k.types) > 1 else None
        v = row["value"]
        check(k.name + " n", v["n"], len(k.data))
        if et is not None: check(k.name + " element type", v["type"], names[et])
        full = k.contents()
        head = full[:len(v["head"])]
        got_head = v["head"]
        if et != VT.STRING: head = [scalar(et, x) for x in head]
        if et == VT.FLOAT32: got_head = [f32(x) for x in got_head]
        check(k.name + " head", got_head, head)
    else:
        check(k.name, f32(row["value"]) if t == VT.FLOAT32 else row["value"], scalar(t, k.contents()))

# a dump's per-tensor facts, from its arrays
def arr(name):
    k = r.fields.get("lltrace.tensors." + name)
    return k.contents() if k else None
order, layer = arr("order"), arr("layer")

rows = got["tensors"]
check("tensor rows", len(rows), len(r.tensors))
for i, (row, t) in enumerate(zip(rows, r.tensors)):
    check("name", row["name"], t.name)
    check(t.name + " type", row["type"], t.tensor_type.name.lower().replace("_k", "_K"))  # ggml: "q4_K"
    check(t.name + " ne", row["ne"][:len(t.shape)], [int(x) for x in t.shape])
    check(t.name + " offset", row["offset"], int(t.data_offset))
    check(t.name + " bytes", row["bytes"], int(t.n_bytes))
    if order is not None: check(t.name + " order", row["order"], int(order[i]))
    if layer is not None: check(t.name + " layer", row["layer"], int(layer[i]))
    if t.tensor_type.name == "F32":
        data = np.asarray(t.data, dtype=np.float32).ravel()
        check(t.name + " data", [f32(x) for x in row["data"]], [float(x) for x in data[:4]])
        if data.size and np.all(np.isfinite(data)):
            check(t.name + " min", np.float32(row["min"]), data.min())
            check(t.name + " max", np.float32(row["max"]), data.max())
            if not math.isclose(row["mean"], float(np.mean(data, dtype=np.float64)), rel_tol=1e-9, abs_tol=1e-12):
                bad.append(f"{t.name} mean: lltrace {row['mean']!r}, numpy {float(np.mean(data, dtype=np.float64))!r}")
for b in bad[:20]: print(b)
sys.exit(1 if bad else 0)
EOF
done

[ "$fails" = 0 ] && echo "cli-gguf-py: ok"
exit "$fails"
