#!/usr/bin/env bash
# lltrace exec --debug on llama-server: the debugger's socket is made 0600 beside the trace;
# `lltrace debug --attach` sets a breakpoint; a request's decode pauses there while the server
# still answers /health and the request waits; it resumes on command, and the answer is the
# untraced server's; quit ends the server cleanly, its runs complete.
#   cli-exec-debug.sh LLTRACE (LLTRACE_LLAMA_BIN: the folder of llama.cpp's programs)
. "$(dirname "$0")/lib.sh" cli-exec-debug "$@"
llbin=${LLTRACE_LLAMA_BIN:?set LLTRACE_LLAMA_BIN to the folder of llama.cpp programs}
[ -x "$llbin/llama-server" ] || { echo "FAIL no $llbin/llama-server (scripts/bootstrap-llama.sh builds it)"; exit 1; }
cd "$dir"

. "$(dirname "$0")/exec/serve.sh" # free_port, wait_health, serve
# complete PORT OUT: a greedy completion's text into OUT
complete() {
    python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
body = json.dumps({"prompt": "Hello, my name is", "n_predict": 6, "temperature": 0, "cache_prompt": False}).encode()
r = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%s/completion" % sys.argv[1], body,
                                                  {"Content-Type": "application/json"}), timeout=120)
open(sys.argv[2], "w").write(json.load(r)["content"])
PY
}
# wait_reply KIND N: until the attached session has replied KIND N times (the replies file)
wait_reply() {
    python3 - "$1" "$2" <<'PY'
import json, sys, time
for _ in range(1200):
    try: n = sum(1 for l in open("replies") if json.loads(l)["reply"] == sys.argv[1])
    except (OSError, ValueError): n = 0
    if n >= int(sys.argv[2]): sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
PY
}
server=(-m "$model" -c 512 -t 2 --host 127.0.0.1 -fa off)

# the untraced server's answer
port=$(free_port)
"$llbin/llama-server" "${server[@]}" --port "$port" >plain.log 2>&1 &
spid=$!
wait_health "$port" || fail "llama-server did not come up: $(tail -3 plain.log)"
complete "$port" plain.txt || fail "untraced completion"
kill -TERM "$spid"; wait "$spid"

# the same under exec --debug
port=$(free_port)
"$bin" exec -o x.db --debug -- "$llbin/llama-server" "${server[@]}" --port "$port" >server.log 2>&1 &
epid=$!
wait_health "$port" || fail "llama-server under exec --debug did not come up: $(tail -3 server.log)"
sock="$dir/x.db-debug.sock"
[ -S "$sock" ] || fail "no socket $sock: $(cat server.log)"
expect "the socket's mode" "$(stat -c %a "$sock")" 600
grep -q "lltrace debug --attach $sock" server.log || fail "exec does not say where to attach: $(cat server.log)"

mkfifo cmds
"$bin" debug --attach "$sock" --format json <cmds >replies 2>attach.err &
apid=$!
exec 3>cmds
# the program runs while attached: a breakpoint holds from its reply on
printf 'break l_out-1\n' >&3
wait_reply break 1 || fail "no reply to break: $(cat replies attach.err)"
complete "$port" traced.txt &
rpid=$!
wait_reply stopped 1 || fail "no pause at l_out-1: $(cat replies attach.err)"
# paused: the server answers, the request waits
python3 -c 'import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=10).status == 200 else 1)' "$port" ||
    fail "/health does not answer while paused"
kill -0 "$rpid" 2>/dev/null || fail "the request was answered while the server was paused"
printf 'where\ndelete\ncontinue\n' >&3
wait "$rpid" || fail "traced completion"
expect "the answer under exec --debug" "$(cat traced.txt)" "$(cat plain.txt)"
wait_reply where 1 || fail "no where reply"
python3 - <<'PY' || fail "replies: $(cat replies)"
import json
r = [json.loads(l) for l in open("replies")]
stop = [x for x in r if x["reply"] == "stopped"][0]
assert stop["node"] == "l_out-1" and stop["breakpoint"] == 1, stop
where = [x for x in r if x["reply"] == "where"][0]
assert where["node"] == "l_out-1" and where["step"] == stop["step"], where
PY
printf 'quit\n' >&3
exec 3>&-
timeout 60 tail --pid="$epid" -f /dev/null || { fail "quit: llama-server still running after 60 s"; kill -9 "$epid"; }
wait "$epid"
expect "exec's exit status after quit" "$?" 0
wait "$apid"
expect "attach's exit status" "$?" 0
[ -e "$sock" ] && fail "the socket is left after the program ended"
python3 - x.db <<'PY' || fail "runs of the debugged server"
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT status, n_gen FROM runs").fetchall()
assert rows and all(s == "ok" for s, _ in rows) and max(n for _, n in rows) >= 5, rows
PY
finish
