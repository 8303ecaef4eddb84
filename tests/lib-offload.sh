# Shared by the tests of a model run off the CPU (sourced after lib.sh): cli-rpc.sh (RPC
# servers) and device/cuda.sh (a GPU). The CPU run is the reference; each offloaded run must
# have its tokens, nodes, weights and checkpoint dump, and the scheduler's input copies
# (checked against what the scheduler itself prints with GGML_SCHED_DEBUG=2).
#   offload_reference N [RUN FLAGS...]         the CPU run: $dir/cpu.db, $dir/cpu.gguf
#   offload_level LEVEL DEVICES [RUN FLAGS...] a run at LEVEL, its nodes on DEVICES ("CPU,RPC0,RPC1")
#   offload_timing                             the split times of $dir/timing.db and their views
# Settings: offload_backends, a JSON object of the scheduler's backend names to device names;
# offload_diff, extra flags of 'lltrace diff' (tolerances, for a GPU's rounding).
offload_backends=${offload_backends:-'{"CPU": "CPU"}'}
offload_diff=${offload_diff:-}

q() { sqlite3 "$1" "$2"; }
tokens_of() { q "$1" "SELECT group_concat(token) FROM (SELECT token FROM tokens ORDER BY seq)"; }
nodes_of() { q "$1" "SELECT group_concat(n_nodes) FROM (SELECT g.n_nodes FROM steps s JOIN graphs g ON g.id = s.graph_id ORDER BY s.step)"; }
devices_of() { # TRACE [CONDITION]: the devices of its computing nodes
    q "$1" "SELECT group_concat(device) FROM (SELECT DISTINCT device FROM nodes WHERE is_noop = 0 ${2:-} ORDER BY device)"
}

offload_reference() {
    n=$1
    shift
    timeout 300 "$bin" run -m "$model" -n "$n" --checkpoints --dump-file "$dir/cpu.gguf" -o "$dir/cpu.db" "$@" \
        >/dev/null 2>"$dir/cpu.err" || fail "CPU run: $(tail -3 "$dir/cpu.err")"
    cpu_tokens=$(tokens_of "$dir/cpu.db")
    cpu_nodes=$(nodes_of "$dir/cpu.db")
    n_weights=$("$bin" inspect "$model" --format json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["tensors"]))')
}

# the scheduler's own account of its last graph's splits ("## SPLIT #k: BACKEND # n inputs:
# [name (size)] ...") against the split_inputs of the trace's last step, each input's size
# taken from the CPU run's trace: "ok" or what differs
sched_bytes_check() { # TRACE LOG
    python3 - "$1" "$dir/cpu.db" "$2" "$offload_backends" <<'EOF'
import json, re, sqlite3, sys
trace, cpu, err, backends = sys.argv[1:]
device = json.loads(backends)
blocks, cur = [], None
for line in open(err, errors="replace"):
    m = re.match(r"## SPLIT #(\d+): (\S+) # (\d+) inputs", line)
    if m:
        if m.group(1) == "0": cur = []; blocks.append(cur)
        cur.append((device.get(m.group(2), m.group(2)), re.findall(r"\[(\S+) \(", line[m.end():])))
if not blocks: sys.exit("no GGML_SCHED_DEBUG output")
db, ref = sqlite3.connect(trace), sqlite3.connect(cpu)
last = db.execute("SELECT max(step) FROM steps").fetchone()[0]
g_ref = ref.execute("SELECT graph_id FROM steps WHERE step = ?", (last,)).fetchone()[0]
def size(name):  # a node of the CPU run's graph (the latest of that name), else an input it read
    r = ref.execute("SELECT bytes FROM nodes WHERE graph_id = ? AND name = ? ORDER BY idx DESC", (g_ref, name)).fetchone()
    r = r or ref.execute("SELECT bytes FROM node_srcs WHERE graph_id = ? AND name = ? AND kind = 'input'", (g_ref, name)).fetchone()
    if not r: sys.exit(f"no '{name}' in the CPU run's graph {g_ref}")
    return r[0]
want = {}
for dev, names in blocks[-1]:
    want[dev] = want.get(dev, 0) + sum(size(n) for n in names)
want = {k: v for k, v in want.items() if v}
got = dict(db.execute("SELECT i.to_device, sum(i.bytes) FROM steps s JOIN split_inputs i ON i.graph_id = s.graph_id"
                      " WHERE s.step = ? GROUP BY i.to_device", (last,)).fetchall())
same_device = db.execute("SELECT count(*) FROM split_inputs WHERE from_device = to_device").fetchone()[0]
print("ok" if got == want and want and same_device == 0
      else f"got {sorted(got.items())}, scheduler {sorted(want.items())}, {same_device} copies within a device")
EOF
}

offload_level() {
    local level=$1 devices=$2 t=$dir/$1.db
    shift 2
    GGML_SCHED_DEBUG=2 timeout 300 "$bin" run -m "$model" -n "$n" --level "$level" --checkpoints \
        --dump-file "$dir/$level.gguf" -o "$t" -v "$@" >/dev/null 2>"$dir/$level.err" ||
        { fail "$level: the run exited with $?: $(tail -3 "$dir/$level.err")"; return; }
    expect "$level: tokens" "$(tokens_of "$t")" "$cpu_tokens"
    expect "$level: nodes per step" "$(nodes_of "$t")" "$cpu_nodes"
    expect "$level: weights read" "$(q "$t" "SELECT count(DISTINCT weight_id) FROM node_srcs WHERE kind = 'weight'")" "$n_weights"
    expect "$level: devices of the computing nodes" "$(devices_of "$t")" "$devices"
    # shellcheck disable=SC2086
    "$bin" diff "$dir/cpu.gguf" "$dir/$level.gguf" $offload_diff >"$dir/$level.diff" 2>&1
    expect "$level: checkpoint dump against the CPU's (lltrace diff: exit)" "$?" 0
    expect "$level: bytes copied into each device (last step)" "$(sched_bytes_check "$t" "$dir/$level.err" 2>&1)" ok
}

offload_timing() {
    local t=$dir/timing.db got off_cpu
    off_cpu=$(devices_of "$t" "AND device <> 'CPU'")
    # every generated step after the first (whose splits are guessed from the step before) has
    # a time for each split, in order
    expect "timing: steps without every split timed" "$(q "$t" "SELECT count(*) FROM steps s WHERE s.phase = 'gen' AND s.step > 1 AND
        (SELECT count(*) FROM split_times x WHERE x.run_id = s.run_id AND x.step = s.step) <>
        (SELECT count(*) FROM splits p WHERE p.graph_id = s.graph_id)")" 0
    expect "timing: split times out of order" \
        "$(q "$t" "SELECT count(*) FROM split_times WHERE NOT (t_begin_ns <= t_compute_ns AND t_compute_ns <= t_end_ns)")" 0
    [ "$(q "$t" "SELECT count(*) FROM split_times")" -gt 0 ] || fail "timing: no split times"
    "$bin" profile "$t" --by device --format csv >"$dir/prof.csv" 2>"$dir/prof.err" || fail "profile --by device: $(cat "$dir/prof.err")"
    got=$(tail -n +2 "$dir/prof.csv" | grep -c ",splits[: ]")
    expect "profile --by device: devices with split times" "$got" "$(devices_of "$t" | tr ',' '\n' | wc -l)"
    "$bin" show "$t" --stats --format json >"$dir/stats.json" || fail "show --stats exited with $?"
    got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(",".join(sorted(r["device"] for r in d["devices"])), len(d["links"]) > 0, len(d["splits"]) > 0)' "$dir/stats.json" 2>&1)
    expect "show --stats: devices, links, splits" "$got" "$(devices_of "$t") True True"
    "$bin" export "$t" --format chrome -o "$dir/t.json" || fail "export --format chrome exited with $?"
    got=$(python3 -c '
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
tracks = {e["tid"]: e["args"]["name"] for e in ev if e["name"] == "thread_name"}
splits = {tracks.get(e["tid"]) for e in ev if e.get("cat") == "split"}
print(",".join(sorted(set(tracks.values()) - {"llama_decode"})), ",".join(sorted(splits - {"llama_decode"})))' "$dir/t.json" 2>&1)
    expect "chrome export: a track per device, splits on them" "$got" "$off_cpu $off_cpu"
    # NDJSON: each tensor event names the device its node has in the trace
    "$bin" export "$t" -o "$dir/t.ndjson" || fail "export (NDJSON) exited with $?"
    got=$(python3 - "$dir/t.ndjson" "$t" <<'PY' 2>&1
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2])
run = db.execute("SELECT max(id) FROM runs").fetchone()[0]
want = {(s, i): d for s, i, d in db.execute(
    "SELECT s.step, n.idx, n.device FROM steps s JOIN nodes n ON n.graph_id = s.graph_id WHERE s.run_id = ?", (run,))}
got = {(e["step"], e["idx"]): e.get("device") for e in map(json.loads, open(sys.argv[1])) if e.get("event") == "tensor"}
print(len(got) == len(want) and got == want, ",".join(sorted({d for d in got.values() if d and d != "CPU"})))
PY
)
    expect "NDJSON export: every tensor's device" "$got" "True $off_cpu"
}
