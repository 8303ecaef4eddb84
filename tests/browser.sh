# Sourced by the page tests: headless Chromium (Debian's chromium, installed here when missing
# and the test runs as root) and playwright-core from report/node_modules (npm ci, which the
# build runs). Exports LLTRACE_CHROMIUM and LLTRACE_NODE_MODULES.
LLTRACE_CHROMIUM=${LLTRACE_CHROMIUM:-$(command -v chromium || true)}
if [ -z "$LLTRACE_CHROMIUM" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "$test_name: installing Debian's chromium"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }
    LLTRACE_CHROMIUM=$(command -v chromium || true)
fi
[ -n "$LLTRACE_CHROMIUM" ] || { echo "FAIL no chromium (apt-get install chromium)"; exit 1; }
LLTRACE_NODE_MODULES=${LLTRACE_NODE_MODULES:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../report" && pwd)/node_modules}
[ -d "$LLTRACE_NODE_MODULES/playwright-core" ] || { echo "FAIL no playwright-core in $LLTRACE_NODE_MODULES (npm ci --prefix report)"; exit 1; }
export LLTRACE_CHROMIUM LLTRACE_NODE_MODULES
