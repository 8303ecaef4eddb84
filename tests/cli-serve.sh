#!/usr/bin/env bash
# lltrace serve: started on a free loopback port before the trace exists, it answers the page
# and a "waiting" data.json; a run started into the trace then shows in headless Chromium with
# its step count growing to the run's; the server listens on 127.0.0.1 only, its memory does
# not grow with requests, and it exits on SIGINT (130).
#   cli-serve.sh LLTRACE_BINARY EXEC_CONTEXTS
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" cli-serve "$@"
ctxprog=${2:?usage: cli-serve.sh LLTRACE_BINARY EXEC_CONTEXTS}
. "$here/browser.sh"
m=${LLTRACE_REPORT_MODEL:-$model}

# (a sanitizer build keeps freed memory in quarantine, which would read as growth)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0 "$bin" serve "$dir/t.db" --port 0 2>"$dir/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
port=
for _ in $(seq 50); do
    port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$dir/serve.err")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { fail "serve printed no port: $(cat "$dir/serve.err")"; finish; }
url=http://127.0.0.1:$port/

# loopback only: the listening socket's address in /proc/net/tcp is 127.0.0.1
hexport=$(printf '%04X' "$port")
grep -qE "^ *[0-9]+: 0100007F:$hexport [0-9A-F:]+ 0A" /proc/net/tcp || fail "not listening on 127.0.0.1:$port only: $(grep ":$hexport " /proc/net/tcp)"

python3 - "$url" <<'PY' || fail "the page or data.json before the trace exists"
import json, sys, urllib.request, urllib.error
page = urllib.request.urlopen(sys.argv[1]).read().decode()
assert '<script id="llt-data" type="application/json"></script>' in page, 'the served page has data inline'
waiting = json.loads(urllib.request.urlopen(sys.argv[1] + 'data.json').read())
assert 'waiting' in waiting and 'run' not in waiting, waiting
try:
    urllib.request.urlopen(sys.argv[1] + 'nothing')
    raise SystemExit('an unknown path answered 200')
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
PY

# the page first, then the run: the page must see its steps arrive. The run must last longer
# than a few polls on any machine, so it is a program that sleeps 50 ms after every token
# (exec-contexts, traced by lltrace exec), its rows committed every 100 ms
node "$here/report-page.js" serve "${url}?poll=300" "$dir/steps" >"$dir/page.out" 2>&1 &
page=$!
sleep 2
LLTRACE_COMMIT_MS=100 "$bin" exec -q --level timing -o "$dir/t.db" -- "$ctxprog" "$m" 1 40 --sleep-ms 50 >"$dir/run.out" 2>&1 ||
    fail "exec of exec-contexts: exit $?: $(tail -3 "$dir/run.out")"
python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM steps').fetchone()[0])" "$dir/t.db" >"$dir/steps"
wait $page || fail "the live page (above)"
cat "$dir/page.out"

# memory stays bounded: 200 requests of the data do not grow the server
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
python3 -c "
import sys, urllib.request
for _ in range(5): urllib.request.urlopen(sys.argv[1] + 'data.json').read()
" "$url"
before=$(rss)
python3 -c "
import sys, urllib.request
for i in range(200): urllib.request.urlopen(sys.argv[1] + ('data.json' if i % 2 else '')).read()
" "$url" || fail "200 requests"
after=$(rss)
[ $((after - before)) -lt 4096 ] || fail "the server grew from $before KiB to $after KiB over 200 requests"

kill -INT $pid
for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then fail "serve still runs 5 s after SIGINT"; else wait $pid; expect "serve exit after SIGINT" "$?" 130; fi
finish
