#!/usr/bin/env bash
# The tiny model split across two llama.cpp RPC servers on 127.0.0.1 (ggml-rpc-server, started
# and stopped here by pid, every wait bounded), traced at every level: every node, every weight,
# the tokens of the CPU run, the checkpoint dump of the CPU run, the scheduler's input copies
# (per link, checked against what the scheduler itself prints with GGML_SCHED_DEBUG=2), split
# times, and a server killed mid-run.
#   cli-rpc.sh LLTRACE_BINARY LLAMA_PREFIX     (exit 77: skipped, llama.cpp has no RPC server)
. "$(dirname "$0")/lib.sh" cli-rpc "$1"
prefix=${2:?usage: cli-rpc.sh LLTRACE_BINARY LLAMA_PREFIX}
server=$prefix/bin/ggml-rpc-server
[ -x "$server" ] || { echo "cli-rpc: skipped: no $server (llama.cpp built without -DGGML_RPC=ON)"; exit 77; }

# ---- the servers ---------------------------------------------------------------------------

pids=()
stop_servers() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    pids=()
}
trap 'stop_servers; rm -rf "$dir"' EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server PORT: a server, waited for until it accepts connections (at most 10 s)
start_server() {
    "$server" -H 127.0.0.1 -p "$1" -t 1 >"$dir/server-$1.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        grep -q "listening\|Starting RPC server\|endpoint" "$dir/server-$1.log" 2>/dev/null &&
            python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.5).close()" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "FAIL the RPC server on port $1 did not start: $(cat "$dir/server-$1.log")"
    exit 1
}

p1=$(free_port); start_server "$p1"
p2=$(free_port); start_server "$p2"
rpc="127.0.0.1:$p1,127.0.0.1:$p2"

q() { sqlite3 "$1" "$2"; }
n=6

# ---- the reference: the CPU alone --------------------------------------------------------

timeout 120 "$bin" run -m "$model" -n $n --checkpoints --dump-file "$dir/cpu.gguf" -o "$dir/cpu.db" >/dev/null 2>"$dir/cpu.err" ||
    fail "CPU run: $(cat "$dir/cpu.err")"
cpu_tokens=$(q "$dir/cpu.db" "SELECT group_concat(token) FROM (SELECT token FROM tokens ORDER BY seq)")
cpu_nodes=$(q "$dir/cpu.db" "SELECT group_concat(n_nodes) FROM (SELECT g.n_nodes FROM steps s JOIN graphs g ON g.id = s.graph_id ORDER BY s.step)")
n_weights=$("$bin" inspect "$model" --format json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["tensors"]))')

# ---- every level over RPC ----------------------------------------------------------------

for level in graph timing profile values; do
    t=$dir/$level.db
    GGML_SCHED_DEBUG=2 timeout 120 "$bin" run -m "$model" -n $n --rpc "$rpc" --level $level --checkpoints \
        --dump-file "$dir/$level.gguf" -o "$t" -v >/dev/null 2>"$dir/$level.err" ||
        { fail "$level: run over RPC exited with $?: $(tail -3 "$dir/$level.err")"; continue; }
    expect "$level: tokens" "$(q "$t" "SELECT group_concat(token) FROM (SELECT token FROM tokens ORDER BY seq)")" "$cpu_tokens"
    expect "$level: nodes per step" \
        "$(q "$t" "SELECT group_concat(n_nodes) FROM (SELECT g.n_nodes FROM steps s JOIN graphs g ON g.id = s.graph_id ORDER BY s.step)")" \
        "$cpu_nodes"
    expect "$level: weights read" "$(q "$t" "SELECT count(DISTINCT weight_id) FROM node_srcs WHERE kind = 'weight'")" "$n_weights"
    expect "$level: devices of the computing nodes" \
        "$(q "$t" "SELECT group_concat(device) FROM (SELECT DISTINCT device FROM nodes WHERE is_noop = 0 ORDER BY device)")" "CPU,RPC0,RPC1"
    "$bin" diff "$dir/cpu.gguf" "$dir/$level.gguf" >"$dir/$level.diff" 2>&1 ||
        fail "$level: the checkpoint dump differs from the CPU's: $(tail -3 "$dir/$level.diff")"
    # the scheduler's own account of its last graph's splits: "## SPLIT #k: BACKEND # n inputs: [name (size)] ..."
    # against the split_inputs of the last step, each input's size taken from the CPU run's trace
    got=$(python3 - "$t" "$dir/cpu.db" "$dir/$level.err" "$p1" "$p2" <<'EOF'
import re, sqlite3, sys
trace, cpu, err, p1, p2 = sys.argv[1:]
device = {"CPU": "CPU", f"RPC0[127.0.0.1:{p1}]": "RPC0", f"RPC0[127.0.0.1:{p2}]": "RPC1"}  # the backend names (RPC0 for each server)
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
got = dict(db.execute("SELECT i.to_device, sum(i.bytes) FROM steps s JOIN split_inputs i ON i.graph_id = s.graph_id"
                      " WHERE s.step = ? GROUP BY i.to_device", (last,)).fetchall())
want = {k: v for k, v in want.items() if v}
same_device = db.execute("SELECT count(*) FROM split_inputs WHERE from_device = to_device").fetchone()[0]
print("ok" if got == want and want and same_device == 0 else f"got {sorted(got.items())}, scheduler {sorted(want.items())}, {same_device} copies within a device")
EOF
)
    expect "$level: bytes copied into each device (last step)" "$got" ok
done

# ---- timing off the CPU: per split ---------------------------------------------------------

t=$dir/timing.db
# every generated step after the first (whose splits are guessed from the step before) has a
# time for each split, in order
expect "timing: steps without every split timed" "$(q "$t" "SELECT count(*) FROM steps s WHERE s.phase = 'gen' AND s.step > 1 AND
    (SELECT count(*) FROM split_times x WHERE x.run_id = s.run_id AND x.step = s.step) <>
    (SELECT count(*) FROM splits p WHERE p.graph_id = s.graph_id)")" 0
expect "timing: split times out of order" "$(q "$t" "SELECT count(*) FROM split_times WHERE NOT (t_begin_ns <= t_compute_ns AND t_compute_ns <= t_end_ns)")" 0
[ "$(q "$t" "SELECT count(*) FROM split_times")" -gt 0 ] || fail "timing: no split times"
"$bin" profile "$t" --by device --format csv >"$dir/prof.csv" 2>"$dir/prof.err" || fail "profile --by device: $(cat "$dir/prof.err")"
grep -q "^RPC1,.*splits" "$dir/prof.csv" || fail "profile --by device: no timed RPC1 row: $(cat "$dir/prof.csv")"
"$bin" show "$t" --stats --format json >"$dir/stats.json" || fail "show --stats exited with $?"
got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(sorted(r["device"] for r in d["devices"]), len(d["links"]) > 0, len(d["splits"]) > 0)' "$dir/stats.json" 2>&1)
expect "show --stats: devices, links, splits" "$got" "['CPU', 'RPC0', 'RPC1'] True True"
"$bin" export "$t" --format chrome -o "$dir/t.json" || fail "export --format chrome exited with $?"
got=$(python3 -c '
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
tracks = {e["tid"]: e["args"]["name"] for e in ev if e["name"] == "thread_name"}
splits = {tracks.get(e["tid"]) for e in ev if e.get("cat") == "split"}
print(sorted(tracks.values()), sorted(splits))' "$dir/t.json" 2>&1)
expect "chrome export: a track per device, splits on them" "$got" "['RPC0', 'RPC1', 'llama_decode'] ['RPC0', 'RPC1', 'llama_decode']"

# per node when asked: the nodes on the servers have times
timeout 120 "$bin" run -m "$model" -n 3 --rpc "$rpc" --level timing --time-nodes -o "$dir/nodes.db" >/dev/null 2>"$dir/nodes.err" ||
    fail "--time-nodes: $(cat "$dir/nodes.err")"
[ "$(q "$dir/nodes.db" "SELECT count(*) FROM node_times_named t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step
    JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = t.idx WHERE n.device = 'RPC1'")" -gt 0 ] || fail "--time-nodes: no RPC1 node timed"

# the live comparison reads the servers' buffers
timeout 120 "$bin" run -m "$model" -n $n --rpc "$rpc" -fa off --reference "$dir/cpu.gguf" -o "$dir/ref.db" >/dev/null 2>"$dir/ref.err" ||
    fail "--reference over RPC exited with $?: $(cat "$dir/ref.err")"
grep -q "reference: [1-9][0-9]* compared, \([0-9]*\) within" "$dir/ref.err" || fail "--reference: no comparison: $(cat "$dir/ref.err")"

# ---- a server killed mid-run ---------------------------------------------------------------

t=$dir/kill.db
timeout 120 "$bin" run -m "$model" -n 5000 --rpc "$rpc" -o "$t" >/dev/null 2>"$dir/kill.err" &
run=$!
for _ in $(seq 300); do
    [ "$(q "$t" "SELECT count(*) FROM steps" 2>/dev/null)" -ge 3 ] 2>/dev/null && break
    kill -0 $run 2>/dev/null || break
    sleep 0.1
done
kill -9 "${pids[1]}"
wait $run
expect "exit of a run whose server was killed" "$?" 1
grep -q "llama.cpp stopped the run" "$dir/kill.err" || fail "the killed server is not reported: $(tail -3 "$dir/kill.err")"
"$bin" show "$t" --runs --format csv >"$dir/runs.csv" 2>"$dir/runs.err" || fail "the trace is not readable: $(cat "$dir/runs.err")"
grep -q ",killed," "$dir/runs.csv" || fail "the run is not marked killed: $(cat "$dir/runs.csv")"
[ "$(q "$t" "SELECT count(*) FROM steps")" -ge 3 ] || fail "the killed run's steps are gone"

finish
