#!/usr/bin/env bash
# The tiny model split across two llama.cpp RPC servers on 127.0.0.1 (ggml-rpc-server, started
# and stopped here by pid, every wait bounded), traced at every level: every node, every weight,
# the tokens of the CPU run, the checkpoint dump of the CPU run, the scheduler's input copies
# (per link, checked against what the scheduler itself prints with GGML_SCHED_DEBUG=2), split
# times, and a server killed mid-run.
#   cli-rpc.sh LLTRACE_BINARY LLAMA_PREFIX     (the prefix must have bin/ggml-rpc-server: scripts/bootstrap-llama.sh builds it)
. "$(dirname "$0")/lib.sh" cli-rpc "$1"
prefix=${2:?usage: cli-rpc.sh LLTRACE_BINARY LLAMA_PREFIX}
server=$prefix/bin/ggml-rpc-server
[ -x "$server" ] || { echo "FAIL no $server (llama.cpp built without -DGGML_RPC=ON; scripts/bootstrap-llama.sh builds it)"; exit 1; }

# llama.cpp's RPC backend keeps its registries and events for the process's life: not ours to
# report in a sanitized build (scripts/test.sh); everything else still is
printf 'leak:libggml-rpc.so\n' >"$dir/lsan.supp"
export LSAN_OPTIONS="suppressions=$dir/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

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
    # (its output may sit in a buffer: ready is when it accepts a connection)
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.5).close()" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "FAIL the RPC server on port $1 did not start: $(cat "$dir/server-$1.log")"
    exit 1
}

p1=$(free_port); start_server "$p1"
p2=$(free_port); start_server "$p2"
rpc="127.0.0.1:$p1,127.0.0.1:$p2"

n=6
# the scheduler names each server's backend RPC0[HOST:PORT]; the devices are RPC0, RPC1
offload_backends="{\"CPU\": \"CPU\", \"RPC0[127.0.0.1:$p1]\": \"RPC0\", \"RPC0[127.0.0.1:$p2]\": \"RPC1\"}"
. "$(dirname "$0")/lib-offload.sh"

# ---- every level over RPC, against the CPU alone ------------------------------------------

offload_reference $n
for level in graph timing profile values; do offload_level $level CPU,RPC0,RPC1 --rpc "$rpc"; done
offload_timing

# per node when asked: the nodes on the servers have times
timeout 120 "$bin" run -m "$model" -n 3 --rpc "$rpc" --level timing --time-nodes -o "$dir/nodes.db" >/dev/null 2>"$dir/nodes.err" ||
    fail "--time-nodes: $(cat "$dir/nodes.err")"
[ "$(q "$dir/nodes.db" "SELECT count(*) FROM node_times_named t JOIN steps s ON s.run_id = t.run_id AND s.step = t.step
    JOIN nodes n ON n.graph_id = s.graph_id AND n.idx = t.idx WHERE n.device = 'RPC1'")" -gt 0 ] || fail "--time-nodes: no RPC1 node timed"

# the live comparison reads the servers' buffers
timeout 120 "$bin" run -m "$model" -n $n --rpc "$rpc" -fa off --reference "$dir/cpu.gguf" -o "$dir/ref.db" >/dev/null 2>"$dir/ref.err" ||
    fail "--reference over RPC exited with $?: $(cat "$dir/ref.err")"
grep -q "reference: [1-9][0-9]* compared, \([0-9]*\) within" "$dir/ref.err" || fail "--reference: no comparison: $(cat "$dir/ref.err")"

# ---- llama.cpp's options for where the model runs ------------------------------------------

# -ngl 1 offloads the output layer alone (llama-model.cpp: layers from n_layer + 1 - ngl on), to
# the first device; -sm none puts everything on the main device (the first)
for case in "-ngl 0|CPU" "--device RPC1|CPU,RPC1" "-ngl all -sm none|CPU,RPC0" "-ngl 1|CPU,RPC0"; do
    flags=${case%|*}
    # shellcheck disable=SC2086
    timeout 120 "$bin" run -m "$model" -n 2 --rpc "$rpc" $flags -o "$dir/where.db" >/dev/null 2>"$dir/where.err" ||
        fail "$flags: exited with $?: $(tail -2 "$dir/where.err")"
    expect "$flags: devices" "$(devices_of "$dir/where.db")" "${case#*|}"
    rm -f "$dir/where.db"
done
# refused before anything is loaded: exit 2, one line, no trace left behind
for case in "--rpc 127.0.0.1:1|cannot connect to 127.0.0.1:1" "--rpc nohost|is not HOST:PORT" "--device NOPE|no device 'NOPE'" "-sm diagonal|unknown value 'diagonal'" "-ngl many|-ngl"; do
    flags=${case%|*}
    # shellcheck disable=SC2086
    timeout 60 "$bin" run -m "$model" -n 2 $flags -o "$dir/bad.db" >/dev/null 2>"$dir/bad.err"
    expect "$flags: exit" "$?" 2
    grep -q -- "${case#*|}" "$dir/bad.err" || fail "$flags: no '${case#*|}' in: $(cat "$dir/bad.err")"
    [ ! -e "$dir/bad.db" ] || fail "$flags: left $dir/bad.db behind"
done

# ---- lltrace exec: llama.cpp's own program started with --rpc ------------------------------

cpl=("$prefix/bin/llama-completion" -m "$model" -p "Hello, my name is" -n 4 -no-cnv --temp 0 -t 2 --rpc "$rpc" -ngl 99)
timeout 120 "${cpl[@]}" >"$dir/cpl.plain" 2>/dev/null </dev/null || fail "llama-completion --rpc untraced exited with $?"
timeout 120 "$bin" exec -q -o "$dir/exec.db" -- "${cpl[@]}" >"$dir/cpl.out" 2>"$dir/exec.err" </dev/null ||
    fail "exec llama-completion --rpc exited with $?: $(tail -2 "$dir/exec.err")"
cmp -s "$dir/cpl.out" "$dir/cpl.plain" || fail "exec llama-completion --rpc: its output differs traced"
expect "exec llama-completion --rpc: devices" "$(devices_of "$dir/exec.db")" "CPU,RPC0,RPC1"
expect "exec llama-completion --rpc: steps reading fewer weights than the model has" "$(q "$dir/exec.db" \
    "SELECT count(*) FROM steps s WHERE (SELECT count(DISTINCT weight_id) FROM node_srcs n WHERE n.graph_id = s.graph_id
     AND kind = 'weight') != (SELECT count(*) FROM weights w WHERE w.run_id = s.run_id)")" 0

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
wait "${pids[1]}" 2>/dev/null # reaped here, quietly
wait $run
expect "exit of a run whose server was killed" "$?" 1
grep -q "llama.cpp stopped the run" "$dir/kill.err" || fail "the killed server is not reported: $(tail -3 "$dir/kill.err")"
"$bin" show "$t" --runs --format csv >"$dir/runs.csv" 2>"$dir/runs.err" || fail "the trace is not readable: $(cat "$dir/runs.err")"
grep -q ",killed," "$dir/runs.csv" || fail "the run is not marked killed: $(cat "$dir/runs.csv")"
[ "$(q "$t" "SELECT count(*) FROM steps")" -ge 3 ] || fail "the killed run's steps are gone"

finish
