#!/usr/bin/env bash
# lltrace serve against the clients a browser's machine can send, on the trace of a long run
# (3,000 tokens of tiny, 64 candidates each):
# - a request whose Host is not 127.0.0.1:PORT, localhost:PORT or [::1]:PORT gets 403 (DNS
#   rebinding), the right Host 200;
# - a client that sends half a request, never reads a large answer, or waits for the data to be
#   computed does not keep another waiting: the other is answered while the first is still
#   open and unanswered (serve-clients.py);
# - the data holds the last 2,000 tokens and candidates only, says what it left out, and the
#   page (headless Chromium) shows that note.
#   cli-serve-clients.sh LLTRACE_BINARY
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" cli-serve-clients "$@"
. "$here/browser.sh"

"$bin" run -m "$model" -n 3000 --top-k 64 --parity "$dir/long.jsonl" -o "$dir/long.db" >"$dir/run.out" 2>&1 ||
    { fail "run -n 3000: exit $?: $(tail -3 "$dir/run.out")"; finish; }

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$dir"' EXIT
# serve NAME ARGS...: starts a server on a free port, its port in $port
serve() {
    local name=$1
    shift
    "$bin" serve "$dir/long.db" --port 0 "$@" 2>"$dir/$name.err" &
    pids+=($!)
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$dir/$name.err")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    fail "serve $* printed no port: $(cat "$dir/$name.err")"
    finish
}
serve window
win=$port
# the whole run in the data, some 6 MB: more than the socket buffers of a client that never reads
serve whole --max-tokens 1000000
whole=$port

python3 "$here/serve-clients.py" "$whole" compute || fail "a client while the data is computed (above)"
python3 "$here/serve-clients.py" "$win" host || fail "the Host header (above)"
python3 "$here/serve-clients.py" "$win" slow || fail "a client sending half a request (above)"
python3 "$here/serve-clients.py" "$whole" noread /data.json || fail "a client that never reads (above)"

# the window: the run's last 2,000 tokens and candidates, and how many there are
python3 - "$win" "$dir/long.db" "$dir/long.jsonl" "$dir/expected.json" <<'PY' || fail "the data of a long run (above)"
import json, socket, sqlite3, sys
port, db, parity, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(('127.0.0.1', port), timeout=60)
s.sendall(b'GET /data.json HTTP/1.1\r\nHost: localhost:%d\r\n\r\n' % port)
raw = b''
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    raw += b
d = json.loads(raw.partition(b'\r\n\r\n')[2])
c = sqlite3.connect(db)
ids = [r[0] for r in c.execute('SELECT token FROM tokens WHERE run_id = 1 ORDER BY seq')]
steps = [json.loads(l)['step'] for l in open(parity) if l.strip() and 'step' in json.loads(l)]
fails = 0
def check(what, got, want):
    global fails
    if got != want:
        print('FAIL %s: %s, wanted %s' % (what, str(got)[:200], str(want)[:200]))
        fails += 1
check('tokens in the run', len(ids) > 3000, True)
check('tokens in the data', len(d['tokens']), 2000)
check('tokens_total', d['tokens_total'], len(ids))
check('tokens_first', d['tokens_first'], len(ids) - 2000)
check('the tokens of the data', [t[4] for t in d['tokens']], ids[-2000:])
check('generated steps with candidates', len(steps), 3000)
check('candidates in the data', len(d['candidates']), 2000)
check('candidates_total', d['candidates_total'], len(steps))
check('candidates_first', d['candidates_first'], len(steps) - 2000)
check('the candidates\' steps', [x[0] for x in d['candidates']], steps[-2000:])
n_steps = c.execute('SELECT count(*) FROM steps WHERE run_id = 1').fetchone()[0]
check('steps_first', d['steps_first'], n_steps - 2000)
check('steps in the data', d['steps']['n'], 2000)
json.dump({'tokens_note': 'showing the last 2,000 of {:,} tokens'.format(len(ids)),
           'candidates_note': 'showing the last 2,000 of {:,} generated tokens'.format(len(steps)),
           'steps_note': 'Steps, times, the graph and the experts: those of the steps from {:,} on (the run\'s last 2,000).'.format(n_steps - 2000),
           'tokens': ids[-2000:]}, open(out, 'w'))
sys.exit(1 if fails else 0)
PY
node "$here/report-page.js" window "http://127.0.0.1:$win/" "$dir/expected.json" || fail "the page of a long run in Chromium (above)"

for p in "${pids[@]}"; do kill -INT "$p"; done
for p in "${pids[@]}"; do wait "$p"; expect "serve exit after SIGINT" "$?" 130; done
pids=()
finish
