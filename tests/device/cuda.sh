#!/usr/bin/env bash
# Issue 14 on a GPU: builds the pinned llama.cpp with CUDA, lltrace against it, and runs the
# checks of tests/cli-rpc.sh (tests/lib-offload.sh) with the tiny model offloaded to CUDA0:
# at every level every node, every weight, the tokens and the checkpoint dump of the CPU run
# (within a GPU's rounding), the scheduler's input copies per device, split times and their
# views. Made to finish in under 8 minutes on a 16-core machine with one GPU (CUDA built for
# that GPU's architecture only).
#
#   tests/device/cuda.sh OUTDIR          a machine with an NVIDIA GPU and nvcc
#   tests/device/cuda.sh OUTDIR --cpu    no GPU: the same checks with the model on a
#                                        ggml-rpc-server on this machine, so the script's logic
#                                        runs; nothing of llama.cpp is built
#
# OUTDIR (made if missing) gets the build logs, every trace, dump and log of the checks, and
# summary.txt: the machine, the GPU, the time of each part, each check's verdict. Exit 0: all
# checks passed; 1: some failed (summary.txt says which); 2: bad usage or no GPU/nvcc.
# Env: LLAMA_PREFIX (--cpu: a llama.cpp install with bin/ggml-rpc-server; default the
# bootstrap's), LLTRACE_BUILD_DIR (a build of lltrace to use instead of building one),
# CUDA_ARCH (default native), LLTRACE_JOBS (default nproc).
set -u
out=${1:-}
mode=${2:-gpu}
if [ -z "$out" ] || { [ "$mode" != gpu ] && [ "$mode" != --cpu ]; }; then
    echo "usage: tests/device/cuda.sh OUTDIR [--cpu]" >&2
    exit 2
fi
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
repo=$(cd "$(dirname "$0")/../.." && pwd)
jobs=${LLTRACE_JOBS:-$(nproc)}
summary=$out/summary.txt
t_start=$(date +%s)
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
part() { note "[$(( $(date +%s) - t_start )) s] $*"; }
die() { note "cuda.sh: $*"; exit "${2:-1}"; }

note "lltrace tests/device/cuda.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), mode ${mode#--}"
note "machine: $(uname -m), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"

# ---- llama.cpp -----------------------------------------------------------------------------

if [ "$mode" = gpu ]; then
    command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || die "no NVIDIA GPU here (nvidia-smi -L); --cpu runs the checks on an RPC server" 2
    export PATH=$PATH:/usr/local/cuda/bin
    command -v nvcc >/dev/null || die "no nvcc (the CUDA toolkit) on PATH or in /usr/local/cuda/bin" 2
    note "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1); $(nvcc --version | tail -1)"
    part "the pinned llama.cpp source (scripts/bootstrap-llama.sh)"
    rpc_prefix=$("$repo/scripts/bootstrap-llama.sh" --programs 2>"$out/bootstrap.log" | tail -n 1) || die "bootstrap failed: $(tail -3 "$out/bootstrap.log")"
    root=$(dirname "$rpc_prefix")
    prefix=$root/install-cuda
    if [ ! -f "$prefix/.complete" ]; then
        part "llama.cpp with CUDA (arch ${CUDA_ARCH:-native}) into $prefix"
        cmake -S "$root/src" -B "$root/build-cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
            -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-native}" -DGGML_NATIVE=ON \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
            -DLLAMA_CURL=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >"$out/llama-configure.log" 2>&1 ||
            die "llama.cpp configure failed: $(tail -5 "$out/llama-configure.log")"
        cmake --build "$root/build-cuda" --target llama -j "$jobs" >"$out/llama-build.log" 2>&1 ||
            die "llama.cpp build failed: $(tail -5 "$out/llama-build.log")"
        cmake --install "$root/build-cuda" >"$out/llama-install.log" 2>&1 || die "llama.cpp install failed"
        mkdir -p "$prefix/share" && cp "$root/src/models/ggml-vocab-llama-spm.gguf" "$prefix/share/" && touch "$prefix/.complete"
    fi
else
    prefix=${LLAMA_PREFIX:-$("$repo/scripts/bootstrap-llama.sh" 2>"$out/bootstrap.log" | tail -n 1)}
    [ -x "$prefix/bin/ggml-rpc-server" ] || die "--cpu: no $prefix/bin/ggml-rpc-server (LLAMA_PREFIX)" 2
    note "gpu: none (--cpu): the model on a ggml-rpc-server on 127.0.0.1 instead of CUDA0"
fi

# ---- lltrace -------------------------------------------------------------------------------

if [ -n "${LLTRACE_BUILD_DIR:-}" ]; then
    build=$(cd "$LLTRACE_BUILD_DIR" && pwd)
    part "lltrace: the build in $build"
else
    build=$out/build
    part "lltrace against $prefix"
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_PREFIX="$prefix" >"$out/lltrace-configure.log" 2>&1 &&
        cmake --build "$build" --target lltrace-cli -j "$jobs" >"$out/lltrace-build.log" 2>&1 ||
        die "lltrace build failed: $(grep -m3 -i error "$out/lltrace-build.log" "$out/lltrace-configure.log")"
fi

# ---- the checks ----------------------------------------------------------------------------

dir=$out/checks
rm -rf "$dir" && mkdir -p "$dir"
bin=$build/lltrace
fails=0
fail() { note "FAIL $*"; fails=$((fails + 1)); }
expect() { if [ "$2" == "$3" ]; then note "ok   $1"; else fail "$1: got '$2', wanted '$3'"; fi; }
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" # lltrace's RUNPATH yields to it
model=$("$bin" mkmodel tiny F32 --cache 2>"$dir/mkmodel.err") || die "cannot make the tiny model: $(cat "$dir/mkmodel.err")"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null' EXIT
if [ "$mode" = gpu ]; then
    offload_backends='{"CPU": "CPU", "CUDA0": "CUDA0"}'
    # a GPU rounds otherwise than the CPU: the dumps agree to its rounding, not bit for bit
    offload_diff="--tolerance-abs 1e-4 --tolerance-rel 1e-3"
    where=(-ngl all --device CUDA0)
    devices=CPU,CUDA0
else
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$prefix/bin/ggml-rpc-server" -H 127.0.0.1 -p "$port" -t 1 >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.5).close()" 2>/dev/null && break
        sleep 0.1
    done
    offload_backends="{\"CPU\": \"CPU\", \"RPC0[127.0.0.1:$port]\": \"RPC0\"}"
    offload_diff=
    where=(--rpc "127.0.0.1:$port")
    devices=CPU,RPC0
fi
# shellcheck source=../lib-offload.sh
. "$repo/tests/lib-offload.sh"

part "the CPU run (--device none), then every level offloaded (${where[*]})"
offload_reference 6 --device none
for level in graph timing profile values; do offload_level $level "$devices" "${where[@]}"; done
part "split times and their views"
offload_timing
part "done: $fails failure(s)"
[ "$fails" -eq 0 ]
