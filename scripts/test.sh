#!/usr/bin/env bash
# Build everything (scripts/build.sh) and run the test suite three ways:
#   1. the normal build (build/), every CTest test (among them `guides`, every command of the
#      guides in docs/guides/, and `reference`, the command reference against each --help);
#   2. the same suite built with AddressSanitizer + UBSan (build-asan/; llama.cpp's libraries
#      stay unsanitized): any sanitizer report fails the test that triggered it;
#   3. every fuzz harness for a short bounded time (scripts/fuzz.sh, LLTRACE_FUZZ_SECONDS,
#      default 4 s each), on top of the seed and regression inputs the suite replays.
# scripts/test.sh --quick runs only 1. Extra arguments go to ctest (e.g. -R cli-).
# Each part prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
part() { echo "test: $1 took $(( $(date +%s) - $2 )) s" >&2; }

t=$(date +%s)
[ -n "${LLAMA_PREFIX:-}" ] || scripts/bootstrap-llama.sh --programs >/dev/null # llama.cpp and the programs the tests run (once, into the cache)
scripts/bootstrap-llama.sh --valgrind >/dev/null # the libraries for valgrind (cli-instructions; once, about 3 minutes)
LLT_WERROR=ON scripts/build.sh # a warning fails the tests
scripts/node-llama-cpp.sh >/dev/null # for lltrace exec's test (once, into the cache)
ctest --test-dir "${LLTRACE_BUILD_DIR:-build}" --output-on-failure "$@"
part "the build and the suite" "$t"
[ $quick = 1 ] && exit 0

t=$(date +%s)
prefix=${LLAMA_PREFIX:-$(scripts/bootstrap-llama.sh | tail -n 1)}
. scripts/ccache.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLAMA_PREFIX="$prefix" -DLLT_SANITIZE=ON -DLLT_WERROR=ON >/dev/null
cmake --build build-asan -j "$(nproc)" >/dev/null || cmake --build build-asan -j 1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure "$@"
part "the sanitizer build and suite" "$t"

t=$(date +%s)
scripts/fuzz.sh "${LLTRACE_FUZZ_SECONDS:-4}"
part "the fuzz harnesses" "$t"
