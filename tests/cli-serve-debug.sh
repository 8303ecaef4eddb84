#!/usr/bin/env bash
# lltrace serve --debug: the live page drives llama-server paused under lltrace exec --debug.
# (1) In headless Chromium the page shows the pause at the breakpoint given by --break: the
#     node marked in the graph is the breakpoint's, at its place in the trace's graph; "next
#     node" moves the mark to the next node that computes in the trace's graph order; with
#     "continue" the request finishes, its answer the untraced server's.
# (2) The POSTs that drive the program obey the Host check and refuse another site's page
#     (Origin): refused, they change nothing (the program stays paused, no breakpoint added).
#   cli-serve-debug.sh LLTRACE (LLTRACE_LLAMA_BIN: the folder of llama.cpp's programs)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" cli-serve-debug "$@"
llbin=${LLTRACE_LLAMA_BIN:?set LLTRACE_LLAMA_BIN to the folder of llama.cpp programs}
[ -x "$llbin/llama-server" ] || { echo "FAIL no $llbin/llama-server (scripts/bootstrap-llama.sh builds it)"; exit 1; }
. "$here/browser.sh"
. "$here/exec/serve.sh" # free_port, wait_health
cd "$dir"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$dir"' EXIT

# python3 complete.py PORT OUT: a greedy completion's text into OUT (a process of its own: the
# one in the background is killed when the test ends early)
cat >complete.py <<'PY'
import json, sys, urllib.request
body = json.dumps({"prompt": "Hello, my name is", "n_predict": 6, "temperature": 0, "cache_prompt": False}).encode()
r = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%s/completion" % sys.argv[1], body,
                                                  {"Content-Type": "application/json"}), timeout=600)
open(sys.argv[2], "w").write(json.load(r)["content"])
PY
# debug_json: serve's /debug.json; debug_brief: its state, pauses, paused node and breakpoints
debug_json() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1] + "debug.json", timeout=10).read().decode())' "$url"; }
debug_brief() { debug_json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["state"], d["stops"], d["stopped"] and d["stopped"]["node"], d["breakpoints"] and d["breakpoints"]["breakpoints"], d["error"])'; }
# wait_debug PYTHON_CONDITION: until /debug.json (as d) meets it
wait_debug() {
    python3 - "$url" "$1" <<'PY'
import json, sys, time, urllib.request
for _ in range(1200):
    d = json.loads(urllib.request.urlopen(sys.argv[1] + "debug.json", timeout=10).read())
    if eval(sys.argv[2]): sys.exit(0)
    time.sleep(0.1)
print(json.dumps(d)); sys.exit(1)
PY
}
# post PATH [CURL OPTIONS]: the HTTP status of a POST to serve
post() { local p=$1; shift; curl -s -o post.out -w '%{http_code}' -X POST "$@" "$url$p"; }
# request FILE: a completion in the background (its pid in rpid), its answer into FILE
request() { python3 complete.py "$port" "$1" & rpid=$!; pids+=("$rpid"); }
server=(-m "$model" -c 512 -t 2 --host 127.0.0.1 -fa off)
bp='l_out-1 step:4' # the second generated token's last layer

# usage: --break without --debug, a socket nobody listens at (exit 2, one line each)
"$bin" serve x.db --break l_out-0 >out.txt 2>err.txt
expect "serve --break without --debug: exit status" "$?" 2
grep -q "^lltrace: serve: --break needs --debug" err.txt || fail "serve --break without --debug says: $(cat err.txt)"
"$bin" serve x.db --debug "$dir/nobody.sock" >out.txt 2>err.txt
expect "serve --debug at a socket nobody listens at: exit status" "$?" 2
grep -q "^lltrace: serve: cannot reach the debugger at '$dir/nobody.sock'" err.txt || fail "serve --debug nobody.sock says: $(cat err.txt)"

# the untraced server's answer
port=$(free_port)
"$llbin/llama-server" "${server[@]}" --port "$port" >plain.log 2>&1 &
spid=$!
wait_health "$port" || fail "llama-server did not come up: $(tail -3 plain.log)"
python3 complete.py "$port" plain.txt || fail "untraced completion"
kill -TERM "$spid"; wait "$spid"

# the server under exec --debug, and serve driving it
port=$(free_port)
"$bin" exec -o x.db --debug -- "$llbin/llama-server" "${server[@]}" --port "$port" >server.log 2>&1 &
epid=$!
pids+=("$epid")
wait_health "$port" || { fail "llama-server under exec --debug did not come up: $(tail -3 server.log)"; finish; }
sock="$dir/x.db-debug.sock"
sport=$(free_port)
url=http://127.0.0.1:$sport/
"$bin" serve x.db --port "$sport" --debug "$sock" --break "$bp" 2>serve.err &
pids+=($!)
wait_health_url() { for _ in $(seq 100); do curl -sf -o /dev/null "$url" && return 0; sleep 0.1; done; return 1; }
wait_health_url || { fail "serve did not come up: $(cat serve.err)"; finish; }
wait_debug 'd["breakpoints"] and len(d["breakpoints"]["breakpoints"]) == 1' || fail "--break did not take: $(debug_brief)"

# (2) refused before any pause: a breakpoint from another Host or another site's page
expect "POST /debug/break with Host evil.example" "$(post 'debug/break?spec=l_out-0' -H "Host: evil.example:$sport")" 403
expect "POST /debug/break with Origin http://evil.example" "$(post 'debug/break?spec=l_out-0' -H 'Origin: http://evil.example')" 403
expect "POST /debug/break with Origin null" "$(post 'debug/break?spec=l_out-0' -H 'Origin: null')" 403
expect "POST /debug/break with Sec-Fetch-Site cross-site" "$(post 'debug/break?spec=l_out-0' -H 'Sec-Fetch-Site: cross-site')" 403
expect "GET /debug/break" "$(curl -s -o /dev/null -w '%{http_code}' "${url}debug/break?spec=l_out-0")" 405
expect "POST /debug/break with a newline in it" "$(post 'debug/break?spec=l_out-0%0Aquit')" 409
debug_json >bps.json
python3 -c 'import json,sys; b = json.load(open("bps.json"))["breakpoints"]["breakpoints"]; assert [x["spec"] for x in b] == [sys.argv[1]], b' "$bp" ||
    fail "refused POSTs changed the breakpoints: $(debug_brief)"

request traced.txt
wait_debug 'd["state"] == "paused"' || fail "no pause at $bp: $(debug_brief)"
# (2) refused while paused: continue from another Host or another site's page leaves it paused
expect "POST /debug/continue with Host evil.example" "$(post debug/continue -H "Host: evil.example:$sport")" 403
expect "POST /debug/continue with Origin http://evil.example" "$(post debug/continue -H 'Origin: http://evil.example')" 403
expect "POST /debug/continue with Origin http://localhost:1" "$(post debug/continue -H 'Origin: http://localhost:1')" 403
# (serve counts a continue it takes as running at once: no waiting needed to see one)
debug_json >still.json
python3 -c 'import json; d = json.load(open("still.json")); assert d["state"] == "paused" and d["stops"] == 1, d' ||
    fail "a refused continue resumed the program: $(debug_brief)"
kill -0 "$rpid" 2>/dev/null || fail "the request was answered while the server was paused"
[ "$fails" -eq 0 ] || finish # (a program driven by a refused request would not come here as the page expects)

# without --debug the page gets no debugger: /debug.json says none, /debug/* is not there
oport=$(free_port)
"$bin" serve x.db --port "$oport" 2>other.err &
opid=$!
pids+=("$opid")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$oport/" && break; sleep 0.1; done
expect "GET /debug.json of serve without --debug" "$(curl -s "http://127.0.0.1:$oport/debug.json")" '{"state":"none"}'
expect "POST /debug/continue to serve without --debug" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$oport/debug/continue")" 405
kill -INT "$opid"; wait "$opid"

# (1) the page drives it: its own page's POSTs (Origin: this server) are taken
node "$here/serve-debug-page.js" drive "$url" page.json || {
    fail "the page (above)"
    post 'debug/delete' >/dev/null; post debug/continue >/dev/null # the request goes on without it
}
wait "$rpid" || fail "traced completion"
expect "the answer driven by the page" "$(cat traced.txt)" "$(cat plain.txt)"
# the breakpoint deleted and the program let go, a breakpoint set from then on holds: one on a
# node of more values than serve sends (the logits) shows the first ones and says so
expect "POST /debug/break?spec=result_output" "$(post 'debug/break?spec=result_output')" 200
wait_debug 'd["breakpoints"] and [b["spec"] for b in d["breakpoints"]["breakpoints"]] == ["result_output"]' || fail "no breakpoint on result_output: $(debug_brief)"
request traced2.txt
wait_debug 'd["state"] == "paused" and d["values"]' || fail "no pause at result_output: $(debug_brief)"
debug_json >cut.json
expect "POST /debug/delete" "$(post 'debug/delete')" 200
node "$here/serve-debug-page.js" values "$url" page2.json || { fail "the page (above)"; post debug/continue >/dev/null; }
wait "$rpid" || fail "second traced completion"
expect "the second answer" "$(cat traced2.txt)" "$(cat plain.txt)"
python3 - "$model" <<'PY' || fail "the values of result_output: $(python3 -c 'import json; d = json.load(open("cut.json")); print(d["slice"], d["stats"], len(d["values"].get("values", [])))')"
import json, struct, sys
d = json.load(open("cut.json"))
page = json.load(open("page2.json"))["first"]
# the model's vocabulary, read from its GGUF header (tokenizer.ggml.tokens' count), not from lltrace
with open(sys.argv[1], "rb") as f:
    data = f.read(1 << 22)
key = b"tokenizer.ggml.tokens"
at = data.index(key) + len(key) + 4 + 4  # the key, the value type (array), the array's element type
n_vocab = struct.unpack_from("<Q", data, at)[0]
m = d["max_values"]
assert n_vocab > m, ("the test needs more logits than serve sends", n_vocab, m)
assert d["stopped"]["node"] == "result_output" and d["stats"]["stats"]["n"] == n_vocab, (d["stopped"], d["stats"])
assert d["slice"] == "[0:%d,0:1,0:1,0:1]" % m and d["values"]["ne"] == [m] and len(d["values"]["values"]) == m, d["slice"]
want = "The first %s of %s values" % (format(m, ","), format(n_vocab, ","))
assert page["values_note"].startswith(want), (page["values_note"], want)
PY

# a breakpoint set while the program runs with others in force (serve says `wait off`: the
# program's debugger reads commands between pauses too, not only at the next pause): paused at
# the logits with one that never stops beside, the program let go, then one set while the
# server idles holds for the next request
bps() { python3 -c 'import json,sys; print(" ".join(b["spec"].replace(" ", "_") for b in json.load(sys.stdin)["breakpoints"]["breakpoints"]))'; }
expect "POST /debug/break?spec=result_output" "$(post 'debug/break?spec=result_output')" 200
expect "POST /debug/break (never stops)" "$(post 'debug/break?spec=l_out-0%20step:100000')" 200
wait_debug 'd["breakpoints"] and len(d["breakpoints"]["breakpoints"]) == 2' || fail "two breakpoints: $(debug_brief)"
request traced3.txt
wait_debug 'd["state"] == "paused" and d["stopped"]["node"] == "result_output"' || fail "no pause at result_output: $(debug_brief)"
id=$(debug_json | python3 -c 'import json,sys; print([b["id"] for b in json.load(sys.stdin)["breakpoints"]["breakpoints"] if b["spec"] == "result_output"][0])')
expect "POST /debug/delete?ids=$id" "$(post "debug/delete?ids=$id")" 200
expect "POST /debug/continue" "$(post debug/continue)" 200
wait "$rpid" || fail "third traced completion"
expect "the third answer" "$(cat traced3.txt)" "$(cat plain.txt)"
expect "POST /debug/break while running" "$(post 'debug/break?spec=l_out-1')" 200
wait_debug 'd["breakpoints"] and len(d["breakpoints"]["breakpoints"]) == 2' || fail "a breakpoint set while running: $(debug_brief)"
expect "the breakpoints" "$(debug_json | bps)" "l_out-0_step:100000 l_out-1"
request traced4.txt
wait_debug 'd["state"] == "paused" and d["stopped"]["node"] == "l_out-1"' || fail "no pause at a breakpoint set while running: $(debug_brief)"
expect "POST /debug/delete" "$(post debug/delete)" 200
expect "POST /debug/continue" "$(post debug/continue)" 200
wait "$rpid" || fail "fourth traced completion"
expect "the fourth answer" "$(cat traced4.txt)" "$(cat plain.txt)"

# the server ends (SIGTERM, as a person's Ctrl-C), its trace complete
kill -TERM "$epid"
timeout 60 tail --pid="$epid" -f /dev/null || fail "llama-server still runs 60 s after SIGTERM"
wait "$epid"
wait_debug 'd["state"] == "gone"' || fail "the page is not told the program ended: $(debug_brief)"

# what the page showed, against the breakpoint and the trace's graph of that step
python3 - x.db "$bp" <<'PY' || fail "the page's paused view: $(cat page.json)"
import json, sqlite3, sys
rec = json.load(open("page.json"))
db = sqlite3.connect(sys.argv[1])
name, step = sys.argv[2].split()[0], int(sys.argv[2].split("step:")[1])
gid = db.execute("SELECT graph_id FROM steps WHERE step = ? ORDER BY run_id DESC", (step,)).fetchone()[0]
nodes = db.execute("SELECT idx, name, is_noop FROM nodes WHERE graph_id = ? ORDER BY idx", (gid,)).fetchall()
first = [i for i, n, _ in nodes if n == name]
assert len(first) == 1, ("the breakpoint's node in the trace", first)
after = [(i, n) for i, n, noop in nodes if i > first[0] and not noop][0] # the next node that computes
for view, (idx, nm) in (("first", (first[0], name)), ("second", after)):
    v = rec[view]
    assert v["graph"]["id"] == "n%d" % idx and nm in v["graph"]["lines"], (view, "marked in the graph", v["graph"], "wanted", idx, nm)
    assert v["selected"] == v["graph"]["id"] and v["info"] == nm, (view, "the node shown", v["selected"], v["info"])
    assert v["marked"].startswith("Marked in the graph section"), (view, v["marked"])
    assert v["where"]["node"] == nm and v["where"]["step"] == str(step) and v["where"]["index in the graph"] == str(idx), (view, v["where"])
    assert v["heatmap"] and v["heatmap"]["width"] > 0 and v["histogram"] and v["values_note"], (view, "values", v)
    assert all(not b["disabled"] for b in v["buttons"]) and len(v["buttons"]) == 4, (view, v["buttons"])
    assert v["breakpoints"][0][2] == sys.argv[2], (view, v["breakpoints"])
assert rec["second"]["stops"] == rec["first"]["stops"] + 1, rec["second"]["stops"]
assert rec["after"]["state"] == "running" and all(b["disabled"] for b in rec["after"]["buttons"]), rec["after"]
PY

finish
