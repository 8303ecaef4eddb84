#!/usr/bin/env bash
# lltrace exec's cost on llama.cpp's own programs, as Markdown on stdout:
#   bench/exec.sh >> docs/benchmarks.md
# 1. llama-completion, the small Q4_K_M model, 32-token prompt + 64 tokens, untraced and under
#    exec at each level, runs interleaved; the figure is llama.cpp's own decode time per token
#    (its "eval time" line), median over REPS runs.
# 2. llama-server --parallel 2, two clients of 64 tokens each at once, untraced and at level
#    graph: generated tokens per second over both, median over REPS rounds.
# Run it on a quiet machine: with 2 cores any other busy process slows llama.cpp's barriers.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${LLTRACE_BUILD_DIR:-build}
reps=${REPS:-7}
prefix=$(scripts/bootstrap-llama.sh --programs | tail -n 1)
bin=$prefix/bin
model=$("$B"/lltrace mkmodel small Q4_K_M --cache)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prompt="The history of the city begins in the first century, when a small settlement of traders grew on the banks"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# ms per generated token from llama-completion's timings (stderr)
per_token() { sed -n 's/.*eval time = .* ms \/ *\([0-9]*\) runs.*( *\([0-9.]*\) ms per token.*/\2/p' "$1" | tail -n 1; }

echo "### lltrace exec: llama-completion and llama-server ($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo
echo "llama-completion -m small-Q4_K_M -n 64 -t 2 --temp 0 (prompt of 32 tokens), ms per generated token"
echo "(llama.cpp's own eval timing), median of $reps runs, untraced and traced runs interleaved:"
echo
levels="off graph timing profile values"
for l in $levels; do : >"$tmp/$l"; done
for r in $(seq "$reps"); do
    for l in $levels; do
        cmd=("$bin/llama-completion" -m "$model" -p "$prompt" -n 64 -t 2 --temp 0 -no-cnv --no-warmup)
        if [ "$l" = off ]; then "${cmd[@]}" >/dev/null 2>"$tmp/err" </dev/null
        else "$B"/lltrace exec -q --level "$l" -o "$tmp/$l-$r.db" -- "${cmd[@]}" >/dev/null 2>"$tmp/err" </dev/null; fi
        per_token "$tmp/err" >>"$tmp/$l"
        rm -f "$tmp/$l-$r.db"*
    done
done
base=$(median <"$tmp/off")
echo "| level | ms/token | vs untraced |"
echo "|---|---|---|"
for l in $levels; do
    m=$(median <"$tmp/$l")
    echo "| $l | $m | $(awk -v a="$m" -v b="$base" 'BEGIN { printf "%+.1f%%", (a / b - 1) * 100 }') |"
done
echo

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
round() { # prints generated tokens per second of two clients at once
    python3 - "$port" <<'PY'
import json, sys, threading, time, urllib.request
base = "http://127.0.0.1:%s" % sys.argv[1]
deadline = time.time() + 120
while True:
    try:
        if urllib.request.urlopen(base + "/health", timeout=2).status == 200: break
    except Exception: pass
    if time.time() > deadline: sys.exit("no server")
    time.sleep(0.1)
n = [0, 0]
def ask(i):
    body = json.dumps({"prompt": "Once upon a time %d" % i, "n_predict": 64, "temperature": 0, "cache_prompt": False}).encode()
    r = json.load(urllib.request.urlopen(urllib.request.Request(base + "/completion", body, {"Content-Type": "application/json"}), timeout=300))
    n[i] = r["tokens_predicted"]
t0 = time.time()
ts = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("%.2f" % (sum(n) / (time.time() - t0)))
PY
}
server=("$bin/llama-server" -m "$model" --host 127.0.0.1 --port "$port" --parallel 2 -c 1024 -t 2 --no-warmup)
for l in off graph; do
    if [ "$l" = off ]; then "${server[@]}" >/dev/null 2>&1 & spid=$!; epid=$spid
    else "$B"/lltrace exec -q -o "$tmp/server.db" -- "${server[@]}" >/dev/null 2>&1 & epid=$!; sleep 1; spid=$(pgrep -P "$epid"); fi
    : >"$tmp/srv-$l"
    for r in $(seq "$reps"); do round >>"$tmp/srv-$l"; done
    kill -TERM "$spid"; wait "$epid" || true
done
a=$(median <"$tmp/srv-off"); b=$(median <"$tmp/srv-graph")
echo "llama-server --parallel 2, two clients of 64 tokens at once, generated tokens/s, median of $reps rounds:"
echo "untraced $a, exec --level graph $b ($(awk -v a="$b" -v b="$a" 'BEGIN { printf "%+.1f%%", (b / a - 1) * 100 }') time per token)."
echo
