#!/usr/bin/env bash
# Tensor values from the command line: a dump converted for PyTorch (npy, safetensors) equals
# the dump; flags and bad input of the values options.
#   cli-values.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-values "$@"


"$bin" run -m "$model" -n 3 -o "$dir/t.db" --dump 'l_out-*' --dump 're:^ffn_(gate|up)-1$' --dump-step 1-2 \
    --dump-type f16 >/dev/null 2>"$dir/err" || fail "run with --dump: $(cat "$dir/err")"
dump=$(sqlite3 "$dir/t.db" "SELECT dump_path FROM runs WHERE id=1")
[ -f "$dump" ] || fail "no dump at '$dump'"
# what the dump holds follows the filters: steps 1 and 2, l_out of 2 layers, ffn_gate-1, ffn_up-1
names=$("$bin" inspect "$dump" --format json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(sorted(t["name"] for t in d["tensors"])))')
want="ffn_gate-1#1 ffn_gate-1#2 ffn_up-1#1 ffn_up-1#2 l_out-0#1 l_out-0#2 l_out-1#1 l_out-1#2"
[ "$names" = "$want" ] || fail "dump holds '$names', want '$want'"
types=$("$bin" inspect "$dump" --format json | python3 -c '
import json, sys
print(" ".join(sorted(set(t["type"] for t in json.load(sys.stdin)["tensors"]))))')
[ "$types" = f16 ] || fail "--dump-type f16 gave types '$types'"

# a dump named relative to the current folder is recorded by its absolute path
(cd "$dir" && "$bin" run -m "$model" -n 1 -o rel.db --dump 'l_out-0' --dump-file rel.gguf >/dev/null 2>&1) || fail "run with a relative dump"
expect "runs.dump_path of a relative dump" "$(sqlite3 "$dir/rel.db" "SELECT dump_path FROM runs WHERE id=1")" "$(cd "$dir" && pwd -P)/rel.gguf"

# llama.cpp's refusal says why, without -v; a trace made for the refused run is removed, an
# existing one is left as it was
"$bin" run -m "$model" -n 1 -fa off -ctv q8_0 -o "$dir/refused.db" >/dev/null 2>"$dir/err"
expect "exit of a refused context" "$?" 2
grep -q "requires flash_attn" "$dir/err" || fail "refused context: llama.cpp's reason missing: $(cat "$dir/err")"
[ ! -e "$dir/refused.db" ] || fail "a refused run left $dir/refused.db behind"
cp "$dir/rel.db" "$dir/kept.db"
"$bin" run -m "$model" -n 1 -fa off -ctv q8_0 -o "$dir/kept.db" >/dev/null 2>&1
cmp -s "$dir/rel.db" "$dir/kept.db" || fail "a refused run changed an existing trace"

# a dump pattern that matches no node is a warning (names are case-sensitive); the run succeeds
"$bin" run -m "$model" -n 1 -o "$dir/w.db" --dump 'L_OUT-*' --dump 'l_out-0' >/dev/null 2>"$dir/err"
expect "exit of a run with an unmatched --dump" "$?" 0
grep -q "warning: --dump 'L_OUT-\*' matched no node" "$dir/err" || fail "no warning for an unmatched --dump: $(cat "$dir/err")"
grep -q "warning: --dump.*'l_out-0'" "$dir/err" && fail "a matching --dump pattern was warned about"

# --reference ends with a summary: what was compared (as many as node_diffs holds), the first
# node beyond tolerance, and why reference nodes were not compared (flash attention, off in the
# checkpoint run that made the reference, is on here); beyond tolerance exits 1
"$bin" run -m "$model" -n 2 -o "$dir/ref.db" --checkpoints --dump-file "$dir/ref.gguf" >/dev/null 2>&1 || fail "run --checkpoints for a reference"
# a dump's metadata keys do not grow with its tensors: an array per fact (dump version 2); a
# key per tensor and fact (version 1) made ggml's reader, and so every opening, quadratic
"$bin" run -m "$model" -n 6 -o "$dir/long.db" --checkpoints --dump-file "$dir/long.gguf" >/dev/null 2>&1 || fail "run --checkpoints -n 6"
expect "metadata keys of a 2-step and a 6-step dump: the same; tensors: more" \
    "$(python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import gguf; a, b = gguf.read(sys.argv[2]), gguf.read(sys.argv[3]);
print(a[0] == b[0], len(a[2]) < len(b[2]))" "$(dirname "$0")" "$dir/ref.gguf" "$dir/long.gguf")" "True True"
"$bin" run -m "$model" -n 2 -o "$dir/ref.db" -fa on --reference "$dir/ref.gguf" >/dev/null 2>"$dir/err"
expect "exit of a run beyond its reference's tolerance" "$?" 1
read -r n_cmp n_within <<<"$(sqlite3 -separator ' ' "$dir/ref.db" "SELECT count(*), sum(n_exceed = 0) FROM node_diffs WHERE run_id=2 AND shape_ok=1")"
grep -q "reference: $n_cmp compared, $n_within within tolerance, first beyond: " "$dir/err" \
    || fail "reference summary: want $n_cmp compared, $n_within within: $(cat "$dir/err")"
grep -q "flash attention is on here and was off in the reference" "$dir/err" || fail "reference summary: no word of flash attention: $(cat "$dir/err")"
grep -q "K/V cache is f16/f16 in A and f16/f16 in B" "$dir/err" || fail "reference summary: no K/V cache note: $(cat "$dir/err")"
# with flash attention off too, the same run compares all it can (attention probabilities cut to
# the positions in use, as dumped) and all of it within tolerance
"$bin" run -m "$model" -n 2 -o "$dir/ref.db" -fa off --reference "$dir/ref.gguf" >/dev/null 2>"$dir/err"
expect "exit of a run equal to its reference" "$?" 0
# the tiny model's 2 layers at 2 steps
expect "attention probabilities compared" "$(sqlite3 "$dir/ref.db" "SELECT count(*) FROM node_diffs WHERE run_id=3 AND name LIKE 'kq_soft_max-%' AND shape_ok=1 AND n_exceed=0")" 4
grep -q "shapes differ\|never computed here" "$dir/err" && fail "the same run skipped reference nodes: $(cat "$dir/err")"
# diff says the same of two dumps whose caches differ, and nothing when both are f32
"$bin" run -m "$model" -n 2 -o "$dir/ref.db" --checkpoints -ctk f32 -ctv f32 --dump-file "$dir/f32kv.gguf" >/dev/null 2>&1 || fail "run -ctk f32"
"$bin" run -m "$model" -n 2 -o "$dir/ref.db" --checkpoints -ctk f32 -ctv f32 --dump-file "$dir/f32kv2.gguf" >/dev/null 2>&1 || fail "run -ctk f32"
"$bin" diff "$dir/ref.gguf" "$dir/f32kv.gguf" --format json >"$dir/kv.json"
expect "exit of diff f16 against f32 caches" "$?" 1
python3 - "$dir/kv.json" <<'PY' || fail "diff of f16 and f32 caches: no K/V cache note"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert 0 < s["max_abs"] <= 1e-2 and "f16/f16 in A and f32/f32 in B" in (s["kv_cache_note"] or ""), s
PY
"$bin" diff "$dir/f32kv.gguf" "$dir/f32kv2.gguf" --format json >"$dir/kv2.json"
python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; assert s['kv_cache_note'] is None, s" "$dir/kv2.json" \
    || fail "diff of two f32-cache dumps carries a K/V cache note"

# a dump against itself through the command: every tensor compared, zero difference, exit 0
"$bin" diff "$dump" "$dump" --format json >"$dir/self.json" || fail "diff of a dump with itself: exit $?"
python3 - "$dir/self.json" <<'PY' || fail "diff of a dump with itself is not zero"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert s["compared"] == 8 and s["within"] == 8 and s["max_abs"] == 0 and s["first_exceed"] is None, s
PY
# the same checkpoints of the prompt step from F32 and Q8_0 models: non-zero, reported per layer,
# and the first node in graph order past the tolerance is named
q8=$("$bin" mkmodel tiny Q8_0 --cache) || fail "mkmodel tiny Q8_0"
"$bin" run -m "$q8" -n 3 -o "$dir/q8.db" --dump 'l_out-*' --dump 're:^ffn_(gate|up)-1$' --dump-step 1-2 \
    --dump-type f16 >/dev/null 2>&1 || fail "run Q8_0 with --dump"
"$bin" diff "$dump" "$(sqlite3 "$dir/q8.db" "SELECT dump_path FROM runs WHERE id=1")" --format json >"$dir/q8.json"
[ $? = 1 ] || fail "diff F32 against Q8_0 dumps: want exit 1 (beyond the default tolerance)"
python3 - "$dir/q8.json" <<'PY' || fail "diff F32 against Q8_0 dumps"
import json, sys
d = json.load(open(sys.argv[1]))
assert 0 < d["summary"]["max_abs"] and d["summary"]["first_exceed"] is not None, d["summary"]
assert sorted(l["layer"] for l in d["layers"]) == [0, 1], d["layers"]
PY

# converted for PyTorch: the same values
"$bin" export "$dir/t.db" --dump-format npy -o "$dir/npy" 2>/dev/null || fail "export npy"
[ "$(ls "$dir/npy" | wc -l)" = 8 ] || fail "npy export holds $(ls "$dir/npy" | wc -l) files, want 8"
"$bin" export "$dir/t.db" --dump-format safetensors -o "$dir/t.safetensors" 2>/dev/null || fail "export safetensors"
"$bin" diff "$dump" "$dir/npy" >/dev/null || fail "dump and npy export differ"
"$bin" diff "$dump" "$dir/t.safetensors" >/dev/null || fail "dump and safetensors export differ"
# the .npy header is numpy's: magic, version, a dict with descr '<f4' and the shape reversed
python3 - "$dir/npy/l_out-0#1.npy" <<'PY' || fail "npy header"
import ast, struct, sys
d = open(sys.argv[1], 'rb').read()
assert d[:6] == b'\x93NUMPY', d[:6]
n = struct.unpack('<H', d[8:10])[0] if d[6] == 1 else struct.unpack('<I', d[8:12])[0]
h = ast.literal_eval(d[10:10 + n].decode() if d[6] == 1 else d[12:12 + n].decode())
assert h['descr'] == '<f4' and h['shape'] == (256,), h
PY

# bad input: one line, non-zero, nothing destroyed
expect() {
    local want=$1 name=$2; shift 2
    "$@" >/dev/null 2>"$dir/err"
    local got=$?
    [ "$got" = "$want" ] || fail "$name: exit $got, want $want: $(cat "$dir/err")"
    [ "$(wc -l <"$dir/err")" = 1 ] || fail "$name: $(wc -l <"$dir/err") lines on stderr"
}
expect 2 "dump-format without -o" "$bin" export "$dir/t.db" --dump-format npy
expect 2 "unknown dump format"    "$bin" export "$dir/t.db" --dump-format pickle -o "$dir/x"
expect 2 "bad dump step"          "$bin" run -m "$model" --dump-step 5-2
expect 2 "bad dump type"          "$bin" run -m "$model" --dump-type f64
expect 2 "bad regex"              "$bin" run -m "$model" -o "$dir/t.db" -n 1 --dump 're:(' 
"$bin" run -m "$model" -n 1 -o "$dir/t.db" >/dev/null 2>&1
expect 1 "export of a run without a dump" "$bin" export "$dir/t.db" --dump-format npy -o "$dir/none"
expect 2 "missing reference"      "$bin" run -m "$model" -n 1 -o "$dir/t.db" --reference "$dir/absent.gguf"

# a failure inside the hook (the dump outgrows the file size limit): tracing stops, the error is
# recorded, generation finishes, and the run exits 1 (its output could not be written)
(
    trap '' XFSZ
    ulimit -f 2048
    exec "$bin" run -m "$model" -n 40 -o "$dir/f.db" --dump result_output >"$dir/f.out" 2>"$dir/f.err"
)
rc=$?
[ "$rc" = 1 ] || fail "a run whose trace could not be written: exit $rc, wanted 1: $(cat "$dir/f.err")"
grep -q "40 generated" "$dir/f.err" || fail "generation did not finish after the tracing failure: $(cat "$dir/f.err")"
grep -q "is incomplete: tracing stopped at step" "$dir/f.err" || fail "no message about the tracing failure: $(cat "$dir/f.err")"
grep -q "trace written" "$dir/f.err" && fail "an incomplete trace reported as written"
[ "$(sqlite3 "$dir/f.db" "SELECT status FROM runs WHERE id=1")" = error ] || fail "the run is not marked error"
sqlite3 "$dir/f.db" "SELECT error FROM runs WHERE id=1" | grep -q "cannot write dump data" || fail "runs.error: $(sqlite3 "$dir/f.db" "SELECT error FROM runs")"
steps=$(sqlite3 "$dir/f.db" "SELECT count(*) FROM steps WHERE run_id=1")
[ "$steps" -gt 0 ] && [ "$steps" -lt 40 ] || fail "$steps steps recorded around the failure"

# the run's parameters say what ran: --checkpoints turns flash attention off, even when asked on
"$bin" run -m "$model" -n 2 -fa on --checkpoints -o "$dir/fa.db" --dump-file "$dir/fa.gguf" >/dev/null 2>&1 || fail "run -fa on --checkpoints"
"$bin" run -m "$model" -n 2 -fa on -o "$dir/fa.db" >/dev/null 2>&1 || fail "run -fa on"
got=$(sqlite3 "$dir/fa.db" "SELECT group_concat(json_extract(params, '$.flash_attn'), ' ') FROM runs ORDER BY id")
[ "$got" = "off on" ] || fail "flash_attn recorded for -fa on with and without --checkpoints: '$got', want 'off on'"
got=$(sqlite3 "$dir/fa.db" "SELECT group_concat(n, ' ') FROM (SELECT count(DISTINCT n.graph_id) AS n FROM runs r
    LEFT JOIN graphs g ON g.run_id = r.id LEFT JOIN nodes n ON n.graph_id = g.id AND n.op = 'FLASH_ATTN_EXT' GROUP BY r.id ORDER BY r.id)")
[ "$got" = "0 2" ] || fail "graphs with FLASH_ATTN_EXT in the two runs: '$got', want '0 2'"

finish
