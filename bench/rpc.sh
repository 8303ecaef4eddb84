#!/usr/bin/env bash
# What tracing costs on a model split across two llama.cpp RPC servers (issue 14's targets:
# level graph <= 1%, level timing, which times each split off the CPU, <= 3% over untraced
# generation), as a Markdown receipt on stdout: bench/rpc.sh >> docs/benchmarks.md
#   REPS=N (default 10) repetitions per level; LLAMA_PREFIX: a llama.cpp install with
#   bin/ggml-rpc-server (default: the bootstrap's install-rpc); MODEL (default small Q4_K_M).
# The servers run on this machine (127.0.0.1): the figures are the tracer's own cost and the
# round trips it adds, not a network's.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
reps=${REPS:-10}
prefix=${LLAMA_PREFIX:-${LLTRACE_CACHE:-$HOME/.cache/lltrace}/llama.cpp-v0.5.0/install-rpc}
server=$prefix/bin/ggml-rpc-server
[ -x "$server" ] || { echo "bench/rpc.sh: no $server (LLAMA_PREFIX: a llama.cpp built with -DGGML_RPC=ON)" >&2; exit 2; }
model=${MODEL:-$("$B"/lltrace mkmodel small Q4_K_M --cache)}

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# each server gets one thread, the client the rest
threads=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
servers=()
for _ in 1 2; do
    port=$(free_port)
    "$server" -H 127.0.0.1 -p "$port" -t 1 >"$tmp/server-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.5).close()" 2>/dev/null && break
        sleep 0.1
    done
    servers+=("127.0.0.1:$port")
done
rpc=$(IFS=,; echo "${servers[*]}")

echo "### Tracing over RPC (two ggml-rpc-server processes on 127.0.0.1)"
echo
# the servers' libraries first: lltrace's RUNPATH yields to LD_LIBRARY_PATH
LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$B"/lltrace bench -m "$model" -p 32 -n 64 -r "$reps" -t "$threads" --rpc "$rpc" --levels off,graph,timing 2>/dev/null
