#!/usr/bin/env bash
# Runs every libFuzzer harness of tests/fuzz for SECONDS each (default 60).
#   scripts/fuzz.sh [SECONDS] [HARNESS...]
# Builds them with clang into build-fuzz (needs clang and libclang-rt-14-dev; as root it
# installs them). Seeds: tests/fuzz/corpus/<harness>/ (read only: new inputs go to a scratch
# corpus). A crash, leak, timeout or out-of-memory stops that harness and leaves its input in
# build-fuzz/artifacts/<harness>/: copy it into tests/fuzz/regress/<harness>/ once fixed, so
# the test `fuzz-regress` replays it. Prints one line per harness: executions, and the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}; shift || true

if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
    else
        echo "fuzz: needs clang and libclang-rt-14-dev (sudo apt-get install clang libclang-rt-14-dev)" >&2; exit 2
    fi
fi
prefix=${LLAMA_PREFIX:-$(scripts/bootstrap-llama.sh | tail -n 1)}
. scripts/ccache.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLLAMA_PREFIX="$prefix" -DLLT_FUZZ=ON >/dev/null
harnesses=("$@")
if [ ${#harnesses[@]} = 0 ]; then
    for f in tests/fuzz/fuzz-*.c; do harnesses+=("$(basename "$f" .c)"); done
fi
cmake --build build-fuzz -j "$(nproc)" --target "${harnesses[@]}" >/dev/null

status=0
for h in "${harnesses[@]}"; do
    work=build-fuzz/corpus/$h art=build-fuzz/artifacts/$h
    mkdir -p "$work" "$art"
    log=build-fuzz/$h.log
    set +e
    # scratch files (the input as a file, the traces it makes) in memory: SQLite's syncs on
    # a disk would take most of each execution
    TMPDIR=${TMPDIR:-/dev/shm} ASAN_OPTIONS=detect_leaks=1 build-fuzz/tests/fuzz/$h -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$art/" -print_final_stats=1 \
        "$work" "tests/fuzz/corpus/$h" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    if [ $rc = 0 ]; then
        echo "fuzz: $h: $execs executions in ${seconds} s, no crash"
    else
        echo "fuzz: $h: FAILED after $execs executions (exit $rc): $(grep -m1 -E 'ERROR|SUMMARY' "$log" || true); input in $art/, log $log"
        status=1
    fi
done
exit $status
