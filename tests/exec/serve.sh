# llama-server for the exec tests: started untraced or under lltrace exec, asked for the
# completions of several prompts at once (serve.py), then stopped by its pid. Sourced after
# lib.sh (uses $bin, $dir, fail).
#   serve TRACE|- N_PREDICT PROMPT... -- LLAMA_SERVER [ARG...]
# prints "slot content" per prompt, in order; the server's output goes to $dir/server.log;
# lltrace exec gets the options in the array serve_exec_opts, if set
serve() {
    local trace=$1 n_predict=$2 prompts=() epid= spid=
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do prompts+=("$1"); shift; done
    shift
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "$trace" = - ]; then "$@" --host 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1 & spid=$!
    else "$bin" exec -q ${serve_exec_opts[@]+"${serve_exec_opts[@]}"} -o "$trace" -- "$@" --host 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1 & epid=$!; fi
    python3 "$(dirname "${BASH_SOURCE[0]}")/serve.py" "$port" "$n_predict" "${prompts[@]}"
    local rc=$?
    [ -n "$epid" ] && spid=$(pgrep -P "$epid")
    [ -n "$spid" ] && kill -TERM "$spid"
    timeout 30 tail --pid="${epid:-$spid}" -f /dev/null || fail "the server did not stop in 30 s"
    return $rc
}
