#!/usr/bin/env bash
# lltrace show and export on real traces of the tiny model: every view checked against what
# sqlite3 itself says, every export line valid JSON, bad input refused with one line on stderr.
#
# usage: tests/cli-show-export.sh LLTRACE
. "$(dirname "$0")/lib.sh" cli-show-export "$@"
LLTRACE=$bin
WORK=$dir

# ---- traces ------------------------------------------------------------------------------

trace=$WORK/t.db
graph_trace=$WORK/g.db
# new_trace FILE LEVEL
new_trace() {
    rm -f "$1" "$1-wal" "$1-shm"
    if ! "$LLTRACE" run -m "$model" -p "Hello world" -n 4 --level "$2" -o "$1" >"$WORK/run.log" 2>&1; then
        cat "$WORK/run.log" >&2
        echo "FAIL: lltrace run --level $2" >&2
        exit 1
    fi
}
new_trace "$trace" timing
new_trace "$graph_trace" graph

q() { sqlite3 "$trace" "$1"; }
run=$(q "SELECT max(id) FROM runs")
n_layer=$(q "SELECT n_layer FROM runs WHERE id = $run")
n_steps=$(q "SELECT count(*) FROM steps WHERE run_id = $run")
expect "level of the trace" "$(q "SELECT level FROM runs WHERE id = $run")" timing

# ---- show: the node table ----------------------------------------------------------------

table=$("$LLTRACE" show "$trace") || fail "show exited with $?"
for name in attn_norm-0 Qcur-0 ffn_out-0 l_out-0; do
    grep -qF " $name " <<<"$table" || fail "show: node '$name' missing from the table:
$table"
done
grep -q 'time_us' <<<"$table" || fail "show: no time column in a timed run"

# csv_rows ARGS...: data rows of show's csv output
csv_rows() { "$LLTRACE" show "$trace" --format csv "$@" | tail -n +2 | wc -l; }
nodes_where() { q "SELECT count(*) FROM step_nodes WHERE run_id = $run AND $1"; }
expect "csv rows of step 0" "$(csv_rows)" "$(nodes_where "step = 0")"
expect "csv rows of step 1" "$(csv_rows --step 1)" "$(nodes_where "step = 1")"
expect "csv rows of --layer 0" "$(csv_rows --layer 0)" "$(nodes_where "step = 0 AND layer = 0")"
expect "csv rows of --op mul_mat" "$(csv_rows --op mul_mat)" "$(nodes_where "step = 0 AND op = 'MUL_MAT'")"
expect "csv rows of --name 'Qcur-*'" "$(csv_rows --name 'Qcur-*')" "$(nodes_where "step = 0 AND name GLOB 'Qcur-*'")"
expect "csv rows of --limit 5" "$(csv_rows --limit 5)" 5
expect "csv rows of --weights" "$(csv_rows --weights)" "$(q "SELECT count(*) FROM weights WHERE run_id = $run")"
expect "csv header of a run without timing" \
    "$("$LLTRACE" show "$graph_trace" --format csv | head -1 | grep -c time_us)" 0

# json ARGS...: show's json output, checked to parse
json() {
    "$LLTRACE" show "$trace" --format json "$@" >"$WORK/show.json" || fail "show --format json $* exited with $?"
    python3 -m json.tool "$WORK/show.json" >/dev/null || fail "show --format json $*: not valid JSON"
}
json
expect "json nodes of step 0" \
    "$(python3 -c 'import json, sys; print(len(json.load(sys.stdin)["nodes"]))' <"$WORK/show.json")" \
    "$(nodes_where "step = 0")"
json --weights

# ---- show --stats ------------------------------------------------------------------------

stats=$("$LLTRACE" show "$trace" --stats) || fail "show --stats exited with $?"
grep -q '100.0%' <<<"$stats" || fail "show --stats: no 100.0% coverage:
$stats"
# stats_json STEP_SQL ARGS...: the ops and coverage of show --stats --format json against sqlite3
stats_json() {
    local where=$1
    shift
    json --stats "$@"
    python3 - "$WORK/show.json" >"$WORK/ops.got" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
for step in doc["steps"]:
    if step["coverage"] != 100:
        print(f"step {step['step']} coverage {step['coverage']}")
for op in sorted(doc["ops"], key=lambda o: o["op"]):
    print(f"{op['op']}|{op['nodes']}")
EOF
    # computing nodes: views and no-ops move nothing
    q "SELECT op || '|' || count(*) FROM step_nodes WHERE run_id = $run AND is_noop = 0 AND $where GROUP BY op ORDER BY op" >"$WORK/ops.want"
    cmp -s "$WORK/ops.got" "$WORK/ops.want" ||
        fail "show --stats${*:+ $*}: ops and coverage, got:
$(cat "$WORK/ops.got")
wanted:
$(cat "$WORK/ops.want")"
}
stats_json "1"
stats_json "step = 2" --step 2

# ---- show --runs, the tokens of a step, unmatched patterns -----------------------------------

expect "show --runs: one csv row per run" "$("$LLTRACE" show "$trace" --runs --format csv | tail -n +2 | cut -d, -f1,5,6,7)" \
    "$(q "SELECT id || ',' || level || ',' || status || ',' || (SELECT count(*) FROM steps WHERE run_id = r.id) FROM runs r ORDER BY id")"
# step 1 fed the token chosen after step 0, and its own chosen token came out
tokens_of() { "$LLTRACE" show "$trace" --step "$1" --limit 1 --format json | python3 -c 'import json, sys; t = json.load(sys.stdin)["tokens"]; print(t["in"], "|", t["out"])'; }
piece() { q "SELECT '\"' || piece || '\"' FROM tokens WHERE run_id = $run AND role = 'gen' AND step = $1"; }
expect "tokens in and out of step 1" "$(tokens_of 1)" "$(piece 0) | $(piece 1)"
"$LLTRACE" show "$trace" --name 'no-such-node*' >"$WORK/out" 2>"$WORK/err" || fail "show of an unmatched --name exited with $?"
expect "warning lines of an unmatched --name" "$(grep -c "warning: no node" "$WORK/err")" 1

# ---- a run still being written -----------------------------------------------------------

running=$WORK/running.db
cp "$trace" "$running"
sqlite3 "$running" "UPDATE runs SET status = 'running', ended_at = NULL, n_prompt = NULL, n_gen = NULL, output = NULL;
    DELETE FROM steps WHERE step >= 2; DELETE FROM tokens WHERE step >= 2; DELETE FROM node_times WHERE step >= 2"
"$LLTRACE" profile "$running" >"$WORK/out" 2>"$WORK/err" || fail "profile of a running run exited with $?"
grep -q "status running: 2 steps so far" "$WORK/out" || fail "profile of a running run does not say so: $(head -1 "$WORK/out")"
"$LLTRACE" show "$running" --stats >"$WORK/out" 2>&1 || fail "show --stats of a running run exited with $?"
grep -q "status running: the figures are those of the 2 steps" "$WORK/out" || fail "show --stats of a running run does not say so"
expect "coverage of the steps of a running run" \
    "$("$LLTRACE" show "$running" --stats --format json | python3 -c 'import json, sys; print(*[float(s["coverage"]) for s in json.load(sys.stdin)["steps"]])')" \
    "100.0 100.0"
expect "export of a running run: session_end" \
    "$("$LLTRACE" export "$running" | tail -1 | python3 -c 'import json, sys; e = json.loads(sys.stdin.read()); print(e["status"], e["n_steps"])')" \
    "running 2"
sqlite3 "$running" "DELETE FROM node_times; UPDATE steps SET n_timed = 0"
"$LLTRACE" profile "$running" >"$WORK/out" 2>"$WORK/err" || fail "profile of a running run without times exited with $?"
grep -q "re-run" "$WORK/err" && fail "profile tells to re-run a run still being written"
grep -q "no step has node times yet" "$WORK/out" || fail "profile of a running run without times: $(cat "$WORK/out")"

# ---- show --diffs: the live comparison of run --reference --------------------------------

"$LLTRACE" run -m "$model" -p "Hello world" -n 2 --dump 'l_out-*' -o "$WORK/d1.db" >"$WORK/run.log" 2>&1 || fail "run --dump"
"$LLTRACE" run -m "$model" -p "Hello world" -n 2 --reference "$WORK/d1.db.run1.gguf" -o "$WORK/d2.db" >"$WORK/run.log" 2>&1 ||
    fail "run --reference"
expect "show --diffs --step 1: one csv row per compared node" \
    "$("$LLTRACE" show "$WORK/d2.db" --diffs --step 1 --format csv | tail -n +2 | cut -d, -f1,2,16)" \
    "$(sqlite3 "$WORK/d2.db" "SELECT idx || ',' || name || ',' || iif(within, 'true', 'false') FROM node_diffs WHERE step = 1 ORDER BY idx")"
# yes/no columns are JSON booleans
"$LLTRACE" show "$WORK/d2.db" --diffs --step 1 --format json | python3 -c "
import json, sys
rows = next(v for v in json.load(sys.stdin).values() if isinstance(v, list) and v and 'shape_ok' in v[0])
assert all(r['shape_ok'] is True and isinstance(r['within'], bool) for r in rows), rows[0]
" || fail "show --diffs --format json: shape_ok and within are not JSON booleans"

# ---- export ------------------------------------------------------------------------------

# check_export FILE TIMED: prints a summary of the event log, or why it is not valid
check_export() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
events = []
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        e = json.loads(line)
    except ValueError as err:
        sys.exit(f"line {n} is not JSON ({err}): {line[:200]}")
    if not isinstance(e, dict) or "event" not in e:
        sys.exit(f"line {n} has no event: {line[:200]}")
    events.append(e)
timed = sys.argv[2] == "1"
steps = [e for e in events if e["event"] == "step_begin" and "layer_id" not in e]
layer_ends = [e for e in events if e["event"] == "step_end" and "layer_id" in e]
layers = sorted({e["layer_id"] for e in layer_ends})
untimed_steps = [e for e in events if e["event"] in ("step_begin", "step_end") and "t_ns" not in e
                 and ("layer_id" not in e or timed)]
timed_tensors = sum(1 for e in events if e["event"] == "tensor" and "t_ns" in e)
print(events[0]["event"] if events else "-", events[-1]["event"] if events else "-", len(steps),
      ",".join(map(str, layers)), sum(1 for e in events if e["event"] == "tensor"),
      len(untimed_steps), "timed" if timed_tensors else "untimed")
EOF
}

"$LLTRACE" export "$trace" >"$WORK/stdout.ndjson" || fail "export exited with $?"
"$LLTRACE" export "$trace" -o "$WORK/t.ndjson" || fail "export -o exited with $?"
cmp -s "$WORK/stdout.ndjson" "$WORK/t.ndjson" || fail "export -o FILE differs from export to stdout"
expect "export of the timed run (first last steps layers tensors untimed-steps tensor-times)" \
    "$(check_export "$WORK/t.ndjson" 1)" \
    "session_start session_end $n_steps $(seq -s, 0 $((n_layer - 1))) $(nodes_where 1) 0 timed"
"$LLTRACE" export "$graph_trace" -o "$WORK/g.ndjson" || fail "export of the graph run exited with $?"
expect "export of the untimed run (first last steps layers tensors untimed-steps tensor-times)" \
    "$(check_export "$WORK/g.ndjson" 0)" \
    "session_start session_end $n_steps $(seq -s, 0 $((n_layer - 1))) $(nodes_where 1) 0 untimed"

# chrome: the Trace Event Format, checked against the trace: one complete event per step
# (decode call) and per timed node, each node inside its step's computation and layer,
# each computation inside its decode call; one instant event per token
check_chrome() { # FILE TRACE
    python3 - "$1" "$2" <<'EOF'
import json, sqlite3, sys
events = json.load(open(sys.argv[1], encoding="utf-8"))["traceEvents"]
db = sqlite3.connect(sys.argv[2])
run = db.execute("SELECT max(id) FROM runs").fetchone()[0]
by_cat = lambda cat: [e for e in events if e.get("cat") == cat]
frame = ("decode", "compute", "sample", "layer", "token")
nodes = [e for e in events if e.get("ph") == "X" and e.get("cat") not in frame]
decode = {e["args"]["step"]: e for e in by_cat("decode")}
compute = {e["args"]["step"]: e for e in by_cat("compute")}
inside = lambda a, b: b["ts"] - 1e-6 <= a["ts"] and a["ts"] + a["dur"] <= b["ts"] + b["dur"] + 1e-6
assert all(e["pid"] == 1 and e["tid"] == 1 for e in events if e["ph"] != "M")
assert len(decode) == db.execute("SELECT count(*) FROM steps WHERE run_id=?", (run,)).fetchone()[0]
assert len(by_cat("token")) == db.execute("SELECT count(*) FROM tokens WHERE run_id=?", (run,)).fetchone()[0]
times = {(s, i): (b, e) for s, i, b, e in db.execute(
    "SELECT step, idx, t_begin_ns, t_end_ns FROM node_times WHERE run_id=?", (run,))}
assert len(nodes) == len(times), (len(nodes), len(times))
for n in nodes:
    b, e = times[(n["args"]["step"], n["args"]["idx"])]
    assert abs(n["ts"] - b / 1000) < 1e-6 and abs(n["dur"] - (e - b) / 1000) < 1e-6, n
    assert inside(n, compute[n["args"]["step"]]), n
for c in compute.values():
    assert inside(c, decode[c["args"]["step"]]), c
layers = by_cat("layer")
for n in nodes:
    if n["args"]["layer"] >= 0:
        assert any(l["args"]["step"] == n["args"]["step"] and l["args"]["layer"] == n["args"]["layer"]
                   and inside(n, l) for l in layers), n
print(len(decode), len(compute), len(layers), len(nodes), len(by_cat("token")))
EOF
}
"$LLTRACE" export "$trace" --format chrome -o "$WORK/t.json" || fail "export --format chrome exited with $?"
n_tokens=$(sqlite3 "$trace" "SELECT count(*) FROM tokens WHERE run_id=(SELECT max(id) FROM runs)")
n_times=$(sqlite3 "$trace" "SELECT count(*) FROM node_times WHERE run_id=(SELECT max(id) FROM runs)")
expect "chrome export of the timed run (decode compute layers nodes tokens)" \
    "$(check_chrome "$WORK/t.json" "$trace" 2>&1)" "$n_steps $n_steps $((n_steps * n_layer)) $n_times $n_tokens"
"$LLTRACE" export "$graph_trace" --format chrome -o "$WORK/g.json" || fail "export --format chrome (graph) exited with $?"
expect "chrome export of the untimed run (decode compute layers nodes tokens)" \
    "$(check_chrome "$WORK/g.json" "$graph_trace" 2>&1)" "$n_steps 0 0 0 $n_tokens"

# a failed export leaves an existing output file as it was
echo "keep me" >"$WORK/keep.ndjson"
"$LLTRACE" export "$trace" --run 999 -o "$WORK/keep.ndjson" 2>/dev/null && fail "export --run 999 succeeded"
expect "output file after a failed export" "$(cat "$WORK/keep.ndjson")" "keep me"
[ -e "$WORK/keep.ndjson.tmp" ] && fail "a failed export left keep.ndjson.tmp behind"

# Ctrl-C during an export to a file: exit 130, no temporary file left, an existing file kept
"$(dirname "$0")/../bench/make-trace.sh" "$trace" "$WORK/big.db" 20000 2>/dev/null || fail "make-trace.sh"
echo "keep me" >"$WORK/big.ndjson"
"$LLTRACE" export "$WORK/big.db" -o "$WORK/big.ndjson" 2>/dev/null &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid"
expect "exit status of an export stopped by Ctrl-C" "$?" 130
expect "output file after an export stopped by Ctrl-C" "$(cat "$WORK/big.ndjson")" "keep me"
[ -e "$WORK/big.ndjson.tmp" ] && fail "an export stopped by Ctrl-C left big.ndjson.tmp behind"

# ---- bad input ---------------------------------------------------------------------------

# refused CODE ARGS...: lltrace ARGS exits with CODE, prints nothing on stdout, one line on stderr
refused() {
    local want=$1
    shift
    "$LLTRACE" "$@" >"$WORK/out" 2>"$WORK/err"
    local code=$?
    expect "exit code of '$*'" "$code" "$want"
    expect "stderr lines of '$*'" "$(wc -l <"$WORK/err")" 1
    expect "stdout bytes of '$*'" "$(wc -c <"$WORK/out")" 0
}
not_trace=$WORK/not-a-trace.txt
echo "not a trace" >"$not_trace"
sum_before=$(sha256sum <"$not_trace")
for cmd in show export; do
    refused 2 "$cmd" "$WORK/missing.db"
    refused 2 "$cmd" "$not_trace"
    refused 2 "$cmd" "$trace" --bogus
    refused 2 "$cmd"
    refused 2 "$cmd" "$trace" --run 999
done
expect "sha256 of a non-trace after show and export" "$(sha256sum <"$not_trace")" "$sum_before"
refused 2 show "$trace" --step x
refused 2 show "$trace" --step -1
refused 2 show "$trace" --limit 0
refused 2 show "$trace" --format xml
refused 2 show "$trace" --step 999
refused 2 export "$trace" --format xml

finish
