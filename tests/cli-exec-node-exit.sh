#!/usr/bin/env bash
# node-llama-cpp's process.exit() in the middle of a generation, under lltrace exec: the main
# thread runs the exit handlers while the addon's thread is inside llama_decode. The program
# exits as it does untraced (status 0, the same text), lltrace does not crash or hang, and the
# trace reads: its run ended (ok, or killed by the next open) with the steps it committed.
#   cli-exec-node-exit.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-exec-node-exit "$@"
nm=${LLTRACE_NODE_MODULES:?set LLTRACE_NODE_MODULES (scripts/node-llama-cpp.sh installs node-llama-cpp)}
[ -d "$nm/node-llama-cpp" ] || { echo "FAIL no node-llama-cpp in $nm (scripts/node-llama-cpp.sh installs it)"; exit 1; }
cp "$(dirname "$0")/exec/exit-mid.mjs" "$dir/" && ln -s "$nm" "$dir/node_modules"
prompt="Once upon a time"

plain=$(timeout 300 node "$dir/exit-mid.mjs" "$model" "$prompt" 2>/dev/null)
expect "exit status of node's process.exit(0) untraced" "$?" 0
for i in 1 2 3; do
    t=$dir/exit$i.db
    traced=$(timeout 300 "$bin" exec -q -o "$t" -- node "$dir/exit-mid.mjs" "$model" "$prompt" 2>"$dir/err")
    rc=$?
    expect "exit status of node's process.exit(0) traced ($i)" "$rc" 0
    expect "its text traced ($i)" "$traced" "$plain"
    grep -qiE "AddressSanitizer|runtime error|Segmentation|core dumped" "$dir/err" && fail "exit $i: $(head -3 "$dir/err")"
    "$bin" show "$t" --runs >/dev/null 2>"$dir/show.err" || fail "show --runs after the exit ($i): $(cat "$dir/show.err")"
    [ "$(sqlite3 "$t" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after the exit ($i)"
    run=$(sqlite3 "$t" "SELECT id FROM runs WHERE (SELECT count(*) FROM steps s WHERE s.run_id = runs.id) > 0")
    status=$(sqlite3 "$t" "SELECT status FROM runs WHERE id = ${run:-0}")
    case $status in ok|killed) ;; *) fail "the run decoding at the exit ($i) is '$status', want ok or killed";; esac
    steps=$(sqlite3 "$t" "SELECT count(*) FROM steps WHERE run_id = ${run:-0}")
    [ "${steps:-0}" -ge 10 ] || fail "the run decoding at the exit ($i) holds $steps steps, want at least 10"
    ls "$t"-log-* >/dev/null 2>&1 && fail "step logs left after the next open ($i)"
    echo "exit $i: run $run $status with $steps steps"
done
finish
