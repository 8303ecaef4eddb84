#!/usr/bin/env bash
# Build everything (scripts/build.sh) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir "${LLTRACE_BUILD_DIR:-build}" --output-on-failure "$@"
