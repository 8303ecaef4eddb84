#!/usr/bin/env bash
# Runs every command of the guides (docs/guides/*.md) in order, each guide in a temporary
# folder with the built lltrace on PATH and the built-in models, and checks the outputs the
# guides show; fails when any block fails (scripts/guides.py says how blocks are marked).
#   scripts/guides.sh [--keep] [docs/guides/N-name.md ...]
# Env: LLTRACE_BUILD_DIR (default ./build), LLAMA_PREFIX (default: the pinned llama.cpp).
# CTest runs it as the test 'guides' (ctest -R guides), so scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LLTRACE_BUILD_DIR:-build}
[ -x "$build/lltrace" ] || { echo "guides: no $build/lltrace: run scripts/build.sh first" >&2; exit 2; }
prefix=${LLAMA_PREFIX:-$(scripts/bootstrap-llama.sh | tail -n 1)}
exec python3 scripts/guides.py --lltrace "$build/lltrace" --prefix "$prefix" "$@"
