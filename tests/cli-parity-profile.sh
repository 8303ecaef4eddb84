#!/usr/bin/env bash
# lltrace parity, profile and show --dispatch on the tiny built-in models: parity of a run
# with itself and of F32 against Q4_K_M, bad parity input; the profile's node times against
# the steps' compute spans and the l_out-to-l_out gaps, also when sampled; dispatch facts.
#
# usage: tests/cli-parity-profile.sh LLTRACE
. "$(dirname "$0")/lib.sh" cli-parity-profile "$@"
LLTRACE=$bin
WORK=$dir

# code ARGS...: the exit status of lltrace ARGS, output in $WORK/out and $WORK/err
code() {
    "$LLTRACE" "$@" >"$WORK/out" 2>"$WORK/err"
    echo $?
}

f32=$model
q4=$("$LLTRACE" mkmodel tiny Q4_K_M --cache) || { echo "FAIL: mkmodel tiny Q4_K_M" >&2; exit 1; }

# ---- parity ------------------------------------------------------------------------------

rm -rf "$WORK/self"
expect "exit of parity --model F32 (itself)" "$(code parity --model "$f32" -n 12 -o "$WORK/self")" 0
grep -q "^verdict: identical" "$WORK/out" || fail "parity of a model with itself is not identical:
$(cat "$WORK/out")"
a=$WORK/self/a.jsonl
expect "lines of the parity file" "$(wc -l <"$a")" 12
expect "exit of parity FILE FILE" "$(code parity "$a" "$a")" 0
grep -q "^verdict: identical" "$WORK/out" || fail "a parity file compared with itself is not identical"

# F32 against Q4_K_M: logits differ; exit 0 (same tokens) or 1 (diverged), not an error
rc=$(code parity --model "$f32" --model "$q4" -n 12 --format json)
[ "$rc" == 0 ] || [ "$rc" == 1 ] || fail "parity F32 vs Q4_K_M exited with $rc: $(cat "$WORK/err")"
python3 - "$WORK/out" "$rc" <<'EOF' || fail "parity F32 vs Q4_K_M, json"
import json, sys
doc = json.load(open(sys.argv[1]))
rc = int(sys.argv[2])
s = doc["summary"]
assert s["max_logit_diff"] is not None and s["max_logit_diff"] > 0, f"max_logit_diff {s['max_logit_diff']}"
assert s["mean_kl"] > 0, f"mean_kl {s['mean_kl']}"
assert (s["verdict"] == "diverged") == (rc == 1), f"verdict {s['verdict']} with exit {rc}"
compared = [st for st in doc["steps"] if st["compared"]]
assert len(compared) == s["compared"], "compared steps"
# a missing step index is null, as every missing value in json
assert (s["first_diff"] is None) == (rc == 0), f"first_diff {s['first_diff']} with exit {rc}"
if s["first_diff"] is not None:
    assert len(compared) == s["first_diff"] + 1, "steps compared past the first difference"
EOF

# a known divergence: B chooses another token at step 3
python3 - "$a" "$WORK/div.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[2], "w")
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["step"] == 3:
        o["token"] = o["top_k"][1][0]
        o["top_k"][0], o["top_k"][1] = o["top_k"][1], o["top_k"][0]
        o["top_k"][0][1] += 1.0
    out.write(json.dumps(o) + "\n")
EOF
expect "exit of a divergence at step 3" "$(code parity "$a" "$WORK/div.jsonl")" 1
grep -q "^verdict: diverged at step 3" "$WORK/out" || fail "divergence at step 3 not reported:
$(cat "$WORK/out")"
expect "steps not compared after step 3" "$(grep -c 'not compared' "$WORK/out")" 8
# csv: the steps as rows, the tokens those of the files (read here), the divergence at step 3
"$LLTRACE" parity "$a" "$WORK/div.jsonl" --format csv >"$WORK/div.csv"
python3 - "$WORK/div.csv" "$a" "$WORK/div.jsonl" <<'EOF' || fail "parity --format csv"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
a = [json.loads(l) for l in open(sys.argv[2])]
b = [json.loads(l) for l in open(sys.argv[3])]
assert len(rows) == 12, f"{len(rows)} rows, want 12"
for r, x, y in zip(rows, a, b):
    assert int(r["token_a"]) == x["token"] and int(r["token_b"]) == y["token"], (r, x["token"], y["token"])
    assert r["compared"] == ("true" if x["step"] <= 3 else "false"), (r["step"], r["compared"])
assert rows[3]["same_top1"] == "false" and rows[2]["same_top1"] == "true", (rows[2], rows[3])
assert rows[5]["max_logit_diff"] == "" and rows[5]["kl"] == "", rows[5]  # not compared: no value
EOF

# refused WHAT CODE TEXT ARGS...: lltrace ARGS exits with CODE and one line on stderr that says TEXT
refused() {
    local what=$1 want_code=$2 want_text=$3
    shift 3
    expect "exit of $what" "$(code "$@")" "$want_code"
    expect "stderr lines of $what" "$(wc -l <"$WORK/err")" 1
    grep -q -- "$want_text" "$WORK/err" || fail "$what: stderr '$(cat "$WORK/err")' does not say '$want_text'"
}
{ head -n 1 "$a"; echo '{"step":1,"token":5,"top_k":[[5,1.0],]}'; } >"$WORK/bad.jsonl"
refused "a malformed line" 2 "line 2" parity "$a" "$WORK/bad.jsonl"
head -n 8 "$a" >"$WORK/short.jsonl"
refused "files of different length" 2 "12 steps and B 8" parity "$a" "$WORK/short.jsonl"
grep -q "^verdict: length mismatch" "$WORK/out" || fail "length mismatch: no verdict"
refused "a missing file" 2 "missing.jsonl" parity "$a" "$WORK/missing.jsonl"
refused "one side" 2 "two files" parity "$a"
refused "--top-k 0" 2 "top-k" parity "$a" "$a" --top-k 0
refused "-fa with files" 2 "--model" parity "$a" "$a" -fa on
"$LLTRACE" run -m "$f32" -n 2 -o "$WORK/noparity.db" >/dev/null 2>&1 || fail "run without --parity"
refused "a trace without parity records" 2 "run 1 has no parity records (record them with 'lltrace run --parity')" \
    parity "$WORK/noparity.db" "$a"

# ---- profile -----------------------------------------------------------------------------

new_trace() { # FILE LEVEL MODEL
    rm -f "$1" "$1-wal" "$1-shm"
    "$LLTRACE" run -m "$3" -p "Hello world" -n 16 --level "$2" -o "$1" >"$WORK/run.log" 2>&1 ||
        { cat "$WORK/run.log" >&2; echo "FAIL: lltrace run --level $2" >&2; exit 1; }
}
timed=$WORK/timed.db
new_trace "$timed" timing "$f32"
new_trace "$WORK/graph.db" graph "$f32"

# the CPU backend computes an RMS_NORM and the MUL after it in one pass: one stamp for both, the
# MUL timed at zero length; no other node is; without fusion (GGML_CPU_DISABLE_FUSION=1) none is
zero_len="SELECT count(*) FROM node_times t JOIN steps s USING(run_id, step)
    JOIN nodes n ON n.graph_id=s.graph_id AND n.idx=t.idx WHERE t.t_end_ns = t.t_begin_ns"
pairs="SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id
    JOIN nodes p ON p.graph_id=n.graph_id AND p.idx=n.idx-1 WHERE n.op='MUL' AND p.op='RMS_NORM'"
expect "fused pairs in the timed trace (2 per layer and the output norm, 16 steps)" "$(sqlite3 "$timed" "$pairs")" 80
expect "zero-length nodes are the fused MULs" \
    "$(sqlite3 "$timed" "$zero_len AND n.op='MUL' AND (SELECT op FROM nodes p WHERE p.graph_id=n.graph_id AND p.idx=n.idx-1)='RMS_NORM'")" 80
expect "zero-length nodes" "$(sqlite3 "$timed" "$zero_len")" 80
expect "profile names the fused pairs (2 per layer and the output norm)" \
    "$("$LLTRACE" profile "$timed" | grep -c '^fused: 5 MUL node(s) per step')" 1
rm -f "$WORK/nofuse.db"
GGML_CPU_DISABLE_FUSION=1 "$LLTRACE" run -m "$f32" -p "Hello world" -n 16 --level timing -o "$WORK/nofuse.db" \
    >"$WORK/run.log" 2>&1 || fail "run with GGML_CPU_DISABLE_FUSION=1"
grep -q "observing" "$WORK/run.log" && fail "without fusion, the stamps did not match the nodes"
expect "zero-length nodes without fusion" "$(sqlite3 "$WORK/nofuse.db" "$zero_len")" 0
expect "untimed computing nodes without fusion" "$(sqlite3 "$WORK/nofuse.db" "SELECT count(*) FROM steps s
    JOIN nodes n ON n.graph_id=s.graph_id WHERE n.is_noop=0 AND NOT EXISTS
    (SELECT 1 FROM node_times t WHERE t.run_id=s.run_id AND t.step=s.step AND t.idx=n.idx)")" 0

# per step, the node times sum to within 10% of the compute span. The span also holds
# lltrace's own work in the ask calls before the first node runs; a sanitizer build
# (LLTRACE_TEST_SPAN_TOL, set by CMake with LLT_SANITIZE) runs that work several times slower.
"$LLTRACE" profile "$timed" --by step --format csv >"$WORK/steps.csv" || fail "profile --by step exited with $?"
python3 - "$WORK/steps.csv" "${LLTRACE_TEST_SPAN_TOL:-0.10}" <<'EOF' || fail "profile --by step: node times against compute spans"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
tol = float(sys.argv[2])
assert len(rows) == 16, f"{len(rows)} steps"
for r in rows:
    compute, nodes = float(r["compute_us"]), float(r["nodes_us"])
    assert abs(nodes - compute) <= tol * compute, f"step {r['step']}: nodes {nodes} us, compute {compute} us (tolerance {tol})"
EOF

# per layer, the node times of a layer lie inside its l_out-to-l_out gap and fill it
"$LLTRACE" profile "$timed" --by layer --format json >"$WORK/layers.json" || fail "profile --by layer exited with $?"
python3 - "$WORK/layers.json" <<'EOF' || fail "profile --by layer: layer times against l_out gaps"
import json, sys
layers = [r for r in json.load(open(sys.argv[1]))["rows"] if r["layer"].isdigit()]
assert len(layers) == 4, f"{len(layers)} layer rows, want 2 layers in 2 phases"
for r in layers:
    t, gap = r["time_us"], r["l_out_gap_us"]
    assert t is not None and gap is not None, f"{r['phase']} layer {r['layer']}: time {t}, gap {gap}"
    assert t <= gap * 1.0001 + 0.01, f"{r['phase']} layer {r['layer']}: nodes {t} us exceed the gap {gap} us"
    assert t >= 0.95 * gap, f"{r['phase']} layer {r['layer']}: nodes {t} us fill less than 95% of the gap {gap} us"
EOF
# gaps JSON: phase:layer:gap of the layers after layer 0 (layer 0 starts at the embed node)
gaps() {
    python3 - "$1" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
print(" ".join(f"{r['phase']}:{r['layer']}:{r['l_out_gap_us']}" for r in rows if r["layer"].isdigit() and r["layer"] != "0"))
EOF
}

"$LLTRACE" profile "$timed" --format json >"$WORK/ops.json" || fail "profile exited with $?"
python3 - "$WORK/ops.json" <<'EOF' || fail "profile --by op"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
for phase in ("prompt", "gen"):
    ops = {r["op"]: r for r in rows if r["phase"] == phase}
    share = sum(r["share"] for r in ops.values())
    assert abs(share - 100) < 0.01, f"{phase}: shares sum to {share}"
    mm = ops["MUL_MAT"]
    assert mm["flops"] > 0 and mm["bytes"] > 0 and mm["GB/s"] > 0, f"{phase} MUL_MAT: {mm}"
    assert all(r["samples"] == r["nodes"] for r in ops.values()), f"{phase}: timing level with untimed nodes"
EOF
# median and p90 per op and phase against sqlite3: the nearest rank of the node times
python3 - "$WORK/ops.json" "$timed" <<'EOF' || fail "profile --by op: median and p90"
import json, math, sqlite3, sys
rows = json.load(open(sys.argv[1]))["rows"]
db = sqlite3.connect(sys.argv[2])
times = {}
for phase, op, ns in db.execute("""SELECT s.phase, n.op, t.t_end_ns - t.t_begin_ns FROM node_times t
        JOIN steps s ON s.run_id = t.run_id AND s.step = t.step
        JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = t.idx WHERE n.is_noop = 0"""):
    times.setdefault((phase, op), []).append(ns)
rank = lambda v, q: sorted(v)[max(1, math.ceil(q * len(v))) - 1]
assert len(rows) == len(times), f"{len(rows)} rows, {len(times)} (phase, op) pairs timed"
for r in rows:
    v = times[(r["phase"], r["op"])]
    got = (r["samples"], round(r["median_us"] * 1000), round(r["p90_us"] * 1000))
    want = (len(v), rank(v, 0.5), rank(v, 0.9))
    assert got == want, f"{r['phase']} {r['op']}: samples, median, p90 {got}, wanted {want}"
EOF
for view in op layer phase step node; do
    for format in table csv json; do
        "$LLTRACE" profile "$timed" --by "$view" --format "$format" >"$WORK/p.out" ||
            fail "profile --by $view --format $format exited with $?"
    done
    python3 -m json.tool "$WORK/p.out" >/dev/null || fail "profile --by $view --format json: not JSON"
done
expect "rows of --by node --top 3 (both phases)" \
    "$("$LLTRACE" profile "$timed" --by node --top 3 --format csv | tail -n +2 | wc -l)" 6

# sampled: the node times of one layer per step (and every l_out) kept, as --level profile does
sampled=$WORK/sampled.db
cp "$timed" "$sampled"
sqlite3 "$sampled" "DELETE FROM node_times WHERE NOT EXISTS (SELECT 1 FROM steps s
    JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = node_times.idx
    WHERE s.run_id = node_times.run_id AND s.step = node_times.step
      AND (n.name LIKE 'l_out-%' OR n.layer = node_times.step % 2));
    UPDATE steps SET n_timed = (SELECT count(*) FROM node_times t WHERE t.run_id = steps.run_id AND t.step = steps.step)" ||
    fail "sqlite3: sampling the trace"
"$LLTRACE" profile "$sampled" >"$WORK/sampled.txt" || fail "profile of a sampled trace exited with $?"
grep -q "^sampled:" "$WORK/sampled.txt" || fail "profile of a sampled trace does not say it is sampled"
"$LLTRACE" profile "$sampled" --by layer --format json >"$WORK/slayers.json" || fail "profile --by layer (sampled)"
expect "l_out gaps of the sampled trace" "$(gaps "$WORK/slayers.json")" "$(gaps "$WORK/layers.json")"

refused "profile of a graph-level trace" 1 "--level timing" profile "$WORK/graph.db"
refused "profile --by x" 2 "--by" profile "$timed" --by x
refused "profile without a trace" 2 "missing TRACE" profile
refused "profile --run 99" 2 "no run 99" profile "$timed" --run 99

# ---- parity records in a trace ----------------------------------------------------------

# the parity file's steps as the records of the timed run, as 'lltrace run --parity' keeps them
python3 - "$a" "$timed" <<'EOF' || fail "writing parity records into a trace"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2])
run = db.execute("SELECT max(id) FROM runs").fetchone()[0]
for line in open(sys.argv[1]):
    o = json.loads(line)
    db.execute("INSERT INTO parity(run_id, step, pos, token, piece, top_k) VALUES (?, ?, ?, ?, ?, ?)",
               (run, o["step"], o["pos"], o["token"], o["piece"], json.dumps(o["top_k"])))
db.commit()
EOF
expect "exit of parity TRACE FILE" "$(code parity "$timed" "$a")" 0
grep -q "^A: .*timed.db, run 1 (12 steps)" "$WORK/out" || fail "parity of a trace: side A is not the trace's run 1:
$(head -2 "$WORK/out")"
grep -q "^verdict: identical" "$WORK/out" || fail "parity records of a trace differ from their file"
refused "parity of a trace without records" 2 "--parity" parity "$WORK/graph.db" "$a"
refused "parity --run-a 9" 2 "run 9" parity "$timed" "$a" --run-a 9

# ---- show --dispatch ---------------------------------------------------------------------

qtrace=$WORK/q4.db
new_trace "$qtrace" graph "$q4"
"$LLTRACE" show "$qtrace" --dispatch --format json >"$WORK/dispatch.json" || fail "show --dispatch exited with $?"
python3 - "$WORK/dispatch.json" <<'EOF' || fail "show --dispatch on Q4_K_M"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["cpu"]["cpu_features"].startswith("CPU"), doc["cpu"]
assert doc["cpu"]["vec_dot_types"].startswith("looked up here"), doc["cpu"]
w = {x["name"]: x for x in doc["weights"]}
q = w["blk.0.attn_q.weight"]
assert (q["type"], q["block"], q["bpw"], q["vec_dot_type"]) == ("q4_K", 256, 4.5, "q8_K"), q
assert w["blk.0.attn_norm.weight"]["vec_dot_type"] is None, "a norm weight has no dot product"
k = [x for x in doc["kernels"] if x["op"] == "MUL_MAT" and x["weight_type"] == "q4_K"]
assert k and k[0]["vec_dot_type"] == "q8_K" and k[0]["ran_on"], doc["kernels"]
assert doc["placement"] and doc["placement"][0]["calls"] > 0, doc["placement"]
EOF
"$LLTRACE" show "$qtrace" --dispatch >"$WORK/dispatch.txt" || fail "show --dispatch (table) exited with $?"
grep -q "q8_K" "$WORK/dispatch.txt" || fail "show --dispatch: no q8_K in the table"
refused "show --dispatch --stats" 2 "separate views" show "$qtrace" --dispatch --stats

# ---- run --parity and LLTRACE_PARITY: a file and the trace's records agree -----------------

rm -f "$WORK/rp.db" "$WORK/rp.jsonl" "$WORK/env.jsonl"
expect "run --parity" "$(code run -m "$f32" -n 6 --parity "$WORK/rp.jsonl" -o "$WORK/rp.db")" 0
expect "parity lines" "$(wc -l <"$WORK/rp.jsonl")" 6
expect "parity rows in the trace" "$(sqlite3 "$WORK/rp.db" "SELECT count(*) FROM parity WHERE run_id=1")" 6
python3 - "$WORK/rp.jsonl" "$WORK/rp.db" <<'EOF' || fail "run --parity: file and trace differ"
import json, sqlite3, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
db = sqlite3.connect(sys.argv[2])
rows = db.execute("SELECT step, token, pos, top_k FROM parity WHERE run_id=1 ORDER BY step").fetchall()
gen = db.execute("SELECT token FROM tokens WHERE run_id=1 AND role='gen' ORDER BY seq").fetchall()
assert len(lines) == len(rows) == len(gen) == 6
for l, (step, token, pos, top_k), (g,) in zip(lines, rows, gen):
    assert (l["step"], l["token"], l["pos"]) == (step, token, pos) and token == g, (l, step, token, g)
    assert len(l["top_k"]) == 10 and l["top_k"] == json.loads(top_k), l
    assert l["top_k"][0][0] == token, "greedy: the chosen token has the largest logit"
EOF
expect "parity of the file against the trace" "$(code parity "$WORK/rp.jsonl" "$WORK/rp.db")" 0
LLTRACE_PARITY="$WORK/env.jsonl" "$LLTRACE" run -m "$f32" -n 3 --top-k 5 -o "$WORK/rp.db" >/dev/null 2>&1 ||
    fail "run with LLTRACE_PARITY"
expect "LLTRACE_PARITY lines" "$(wc -l <"$WORK/env.jsonl" 2>/dev/null)" 3
expect "LLTRACE_PARITY top-k" "$(head -1 "$WORK/env.jsonl" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["top_k"]))')" 5
expect "sampling times" "$(sqlite3 "$WORK/rp.db" "SELECT count(*) FROM steps WHERE run_id=2 AND t_sample_ns > 0")" 3

# ---- --level profile: every step, its l_out nodes, the nodes outside the layers and one ----
# ---- layer's nodes, rotating (tiny has 2 layers) -----------------------------------------

rm -f "$WORK/prof.db"
expect "run --level profile" "$(code run -m "$f32" -n 8 --level profile -o "$WORK/prof.db")" 0
sample="(n.layer = s.step % 2 OR n.layer < 0 OR n.name LIKE 'l_out-%')"
bad=$(sqlite3 "$WORK/prof.db" "SELECT count(*) FROM node_times t JOIN steps s USING(run_id, step)
      JOIN nodes n ON n.graph_id=s.graph_id AND n.idx=t.idx WHERE NOT $sample")
expect "profile: timed nodes outside the sample" "$bad" 0
missing=$(sqlite3 "$WORK/prof.db" "SELECT count(*) FROM steps s JOIN nodes n ON n.graph_id=s.graph_id
      WHERE n.is_noop=0 AND $sample AND NOT EXISTS
      (SELECT 1 FROM node_times t WHERE t.run_id=s.run_id AND t.step=s.step AND t.idx=n.idx)")
expect "profile: untimed nodes of the sample" "$missing" 0
expect "profile: steps" "$(sqlite3 "$WORK/prof.db" "SELECT count(*) FROM steps")" 8
expect "profile of a sampled trace" "$(code profile "$WORK/prof.db" --by layer)" 0

# node times taken while values were read are said to be inflated, wherever they are shown
"$bin" run -m "$model" -n 4 -t 1 --level timing --checkpoints -o "$WORK/vr.db" >/dev/null 2>&1 || fail "run --checkpoints at timing"
"$bin" run -m "$model" -n 4 -t 1 --level timing -o "$WORK/novr.db" >/dev/null 2>&1 || fail "run at timing"
for cmd in profile "show --stats"; do
    # shellcheck disable=SC2086
    "$bin" $cmd "$WORK/vr.db" 2>/dev/null | grep -q "^note: node times were taken while values were read" ||
        fail "$cmd of a timing run with checkpoints does not say its node times are inflated"
    # shellcheck disable=SC2086
    "$bin" $cmd "$WORK/novr.db" 2>/dev/null | grep -q "values were read" && fail "$cmd of a plain timing run says values were read"
done

# one generation speed a run, printed the same by run, profile and the report's data
# (docs/trace-format.md, "Speed": decode calls and the sampling of every generated token)
"$bin" run -m "$model" -n 40 -t 1 --level timing -o "$WORK/speed.db" >/dev/null 2>"$WORK/speed.err" || fail "run for the speed"
run_tps=$(sed -n 's/.* generated in .* s (\([0-9.]*\) tok\/s).*/\1/p' "$WORK/speed.err")
prof_tps=$("$bin" profile "$WORK/speed.db" 2>/dev/null | sed -n 's/^speed: .*generation \([0-9.]*\) tok\/s.*/\1/p')
"$bin" report "$WORK/speed.db" -o "$WORK/speed.html" 2>/dev/null || fail "report for the speed"
page_tps=$(python3 - "$WORK/speed.html" <<'PY'
import re, sys
html = open(sys.argv[1]).read()
n = int(re.search(r'"n_gen":(\d+)', html).group(1))
t = int(re.search(r'"t_gen_ns":(\d+)', html).group(1))
print("%.1f" % (n / (t / 1e9)))
PY
)
[ -n "$run_tps" ] || fail "run printed no generation speed: $(cat "$WORK/speed.err")"
expect "profile's generation speed against run's" "$prof_tps" "$run_tps"
expect "the report's generation speed against run's" "$page_tps" "$run_tps"

# one time a layer at level profile: profile --by layer and show --stats say the same, and no
# layer takes more than its measured l_out-to-l_out time
"$bin" run -m "$model" -n 30 -t 1 --level profile -o "$WORK/layers.db" >/dev/null 2>&1 || fail "run --level profile"
"$bin" profile "$WORK/layers.db" --by layer --format json >"$WORK/prof-layers.json" || fail "profile --by layer"
"$bin" show "$WORK/layers.db" --stats --format json >"$WORK/show-layers.json" || fail "show --stats"
python3 - "$WORK/prof-layers.json" "$WORK/show-layers.json" <<'PY' || fail "layer times of profile and show --stats differ"
import json, sys
prof = json.load(open(sys.argv[1]))['rows']
show = {r['layer']: r['time_us'] for r in json.load(open(sys.argv[2]))['layers']}
total = {}
for r in prof:
    assert r['time_us'] <= r['l_out_gap_us'] * (1 + 1e-9), ('above its measured time', r)
    total[r['layer']] = total.get(r['layer'], 0) + r['time_us']
assert set(total) == set(show), (total, show)
for k in total:
    assert abs(total[k] - show[k]) <= 1e-3 * max(1, show[k]), (k, total[k], show[k])
PY

finish
