#!/usr/bin/env bash
# Bytes read and written per step: `show --stats` and `profile --by step` against figures
# computed here by hand from the tiny model's shapes, its types (f32 weights and activations,
# f16 K/V cache, i32 token ids and positions, i64 cache row indices) and the positions each
# step attends to (n_kv: the step's positions rounded up to llama.cpp's 256-cell padding, not
# the 512 cells of the cache). Flash attention on: one FLASH_ATTN_EXT node per layer.
#
# usage: tests/cli-bytes.sh LLTRACE
. "$(dirname "$0")/lib.sh" cli-bytes "$@"

trace=$dir/t.db
"$bin" run -m "$model" -p "Hello world" -n 3 -c 512 -fa on --level timing -o "$trace" >"$dir/run.log" 2>&1 ||
    { cat "$dir/run.log"; echo "FAIL: lltrace run"; exit 1; }
"$bin" show "$trace" --stats --format json >"$dir/stats.json" || fail "show --stats exited with $?"
"$bin" profile "$trace" --by step --format json >"$dir/steps.json" || fail "profile --by step exited with $?"

python3 - "$trace" "$dir/stats.json" "$dir/steps.json" <<'EOF' || fail "bytes per step"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run = db.execute("SELECT max(id) FROM runs").fetchone()[0]
E, L, H, Hkv, V = db.execute("SELECT n_embd, n_layer, n_head, n_head_kv, n_vocab FROM runs WHERE id=?", (run,)).fetchone()
F = db.execute("SELECT ne1 FROM weights WHERE run_id=? AND name='blk.0.ffn_up.weight'", (run,)).fetchone()[0]
n_ctx = json.loads(db.execute("SELECT params FROM runs WHERE id=?", (run,)).fetchone()[0])["n_ctx"]
D = E // H
Ekv = D * Hkv
f32, f16, i32, i64 = 4, 2, 4, 8

def expected(pos0, T):
    n_kv = min(n_ctx, max(256, -(-(pos0 + T) // 256) * 256))
    To = 1  # the logits of the last token only: the last layer's FFN runs on one row
    # weights: the step's token rows of token_embd; every other weight whole
    w = T * E * f32 + E * f32 + V * E * f32
    w += L * (2 * E * f32 + 2 * E * E * f32 + 2 * E * Ekv * f32 + 3 * E * F * f32)
    # activations, inputs and the K/V cache positions attended to
    a = T * i32                                                  # token ids of GET_ROWS
    out = T * E * f32                                            # embd
    for l in range(L):
        Tf = To if l == L - 1 else T
        a += 2 * E * T * f32                                     # RMS_NORM, MUL attn_norm
        out += 2 * E * T * f32
        a += 3 * E * T * f32                                     # Q, K, V projections
        out += E * T * f32 + 2 * Ekv * T * f32
        a += E * T * f32 + T * i32 + Ekv * T * f32 + T * i32     # ROPE of Q and K, positions
        out += E * T * f32 + Ekv * T * f32
        a += 2 * (Ekv * T * f32 + T * i64)                       # SET_ROWS of K and V: rows, indices
        out += 2 * Ekv * T * f16                                 # T rows of the f16 cache each
        a += E * T * f32 + 2 * n_kv * Ekv * f16 + n_kv * T * f16 # FLASH_ATTN_EXT: Q, K and V of n_kv, mask
        out += E * T * f32
        a += E * T * f32                                         # attn_output projection
        out += E * T * f32
        if l == L - 1:                                           # GET_ROWS of the output rows, twice
            a += 2 * (E * Tf * f32 + Tf * i32)
            out += 2 * E * Tf * f32
        a += 2 * E * Tf * f32 + 2 * E * Tf * f32                 # ADD ffn_inp; RMS_NORM, MUL ffn_norm
        out += 3 * E * Tf * f32
        a += 2 * E * Tf * f32 + 2 * F * Tf * f32 + F * Tf * f32  # gate, up; SWIGLU; down
        out += 2 * F * Tf * f32 + F * Tf * f32 + E * Tf * f32
        a += 2 * E * Tf * f32                                    # ADD l_out
        out += E * Tf * f32
    a += 3 * E * To * f32                                        # RMS_NORM, MUL result_norm, output
    out += 2 * E * To * f32 + V * To * f32
    return w, a, out

steps = {s["step"]: s for s in json.load(open(sys.argv[2]))["steps"]}
prof = {s["step"]: s for s in json.load(open(sys.argv[3]))["rows"]}
rows = db.execute("SELECT step, pos0, n_tokens FROM steps WHERE run_id=? ORDER BY step", (run,)).fetchall()
assert len(rows) == 3 and len(steps) == 3, f"{len(rows)} steps in the trace, {len(steps)} in show --stats"
bad = []
for step, pos0, T in rows:
    w, a, out = expected(pos0, T)
    got = steps[step]
    for name, want in (("read_weights", w), ("read_acts", a), ("written", out)):
        if got[name] != want:
            bad.append(f"step {step} (pos0 {pos0}, {T} tokens): {name} {got[name]}, wanted {want}")
    p = prof[step]
    if p["bytes_read"] != w + a or p["bytes_written"] != out or p["read_per_token"] != got["read_per_token"]:
        bad.append(f"step {step}: profile reads {p['bytes_read']} ({p['read_per_token']} a token) and writes "
                   f"{p['bytes_written']}, show --stats {w + a} ({got['read_per_token']}) and {out}")
    if got["read_per_token"] != round((w + a) / T):  # whole bytes
        bad.append(f"step {step}: read_per_token {got['read_per_token']}, wanted {round((w + a) / T)}")
if bad:
    sys.exit("\n".join(bad))
EOF

finish
