# llama-server for the exec tests: started untraced or under lltrace exec, asked for the
# completions of several prompts at once (serve.py), then stopped by its pid. Sourced after
# lib.sh (uses $bin, $dir, fail).
#   serve TRACE|- N_PREDICT PROMPT... -- LLAMA_SERVER [ARG...]
# prints "slot content" per prompt, in order; the server's output goes to $dir/server.log;
# lltrace exec gets the options in the array serve_exec_opts, if set
# free_port: a TCP port nobody listens on; wait_health PORT: until llama-server answers /health (60 s)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_health() {
    python3 - "$1" <<'PY'
import sys, time, urllib.request
for _ in range(600):
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=1); sys.exit(0)
    except Exception: time.sleep(0.1)
sys.exit(1)
PY
}

serve() {
    local trace=$1 n_predict=$2 prompts=() epid= spid=
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do prompts+=("$1"); shift; done
    shift
    local port
    port=$(free_port)
    if [ "$trace" = - ]; then "$@" --host 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1 & spid=$!
    else "$bin" exec -q ${serve_exec_opts[@]+"${serve_exec_opts[@]}"} -o "$trace" -- "$@" --host 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1 & epid=$!; fi
    python3 "$(dirname "${BASH_SOURCE[0]}")/serve.py" "$port" "$n_predict" "${prompts[@]}"
    local rc=$?
    [ -n "$epid" ] && spid=$(pgrep -P "$epid")
    [ -n "$spid" ] && kill -TERM "$spid"
    timeout 30 tail --pid="${epid:-$spid}" -f /dev/null || fail "the server did not stop in 30 s"
    return $rc
}
