#!/usr/bin/env bash
# lltrace exec on unmodified programs: llama.cpp's own (llama-simple, llama-completion,
# llama-server, llama-eval-callback, built from the pinned source by the bootstrap into
# LLTRACE_LLAMA_BIN) and exec-contexts (ours, linked with libllama as any program is). Each
# program's output is compared with its untraced output; the trace with what the program
# printed, with llama-eval-callback's printout of every node, and with counts from shapes.
#   cli-exec.sh LLTRACE EXEC_CONTEXTS
. "$(dirname "$0")/lib.sh" cli-exec "$@"
ctxprog=${2:?usage: cli-exec.sh LLTRACE EXEC_CONTEXTS}
llbin=${LLTRACE_LLAMA_BIN:?set LLTRACE_LLAMA_BIN to the folder of llama.cpp programs}
for p in llama-simple llama-completion llama-server llama-eval-callback; do
    [ -x "$llbin/$p" ] || { echo "FAIL no $llbin/$p (scripts/bootstrap-llama.sh builds it)"; exit 1; }
done

# q DB SQL: rows as "a|b" lines (Python's sqlite3, not lltrace, reads the trace)
q() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("\n".join("|".join(str(c) for c in r) for r in db.execute(sys.argv[2])))' "$@"; }

# steps of run $2 whose graph reads fewer weights than the run's registry holds
weights_unread() {
    q "$1" "SELECT count(*) FROM steps s WHERE run_id = $2 AND (SELECT count(DISTINCT weight_id) FROM node_srcs n
            WHERE n.graph_id = s.graph_id AND kind = 'weight') != (SELECT count(*) FROM weights WHERE run_id = $2)"
}

# ---- our program: contexts freed and made again, at the same address ---------------------

strip() { sed 's/ at 0x[0-9a-f]*//'; }
plain=$("$ctxprog" "$model" 4 3) || fail "exec-contexts untraced"
traced=$("$bin" exec -q -o "$dir/a.db" -- "$ctxprog" "$model" 4 3) || fail "exec of exec-contexts exited with $?"
expect "exec-contexts: its output traced" "$(strip <<<"$traced")" "$(strip <<<"$plain")"
addrs=$(grep -o '0x[0-9a-f]*' <<<"$traced")
[ "$(uniq <<<"$addrs" | wc -l)" -lt 4 ] || fail "no context came at the address of the one freed before it: $addrs"
want=$(strip <<<"$plain" | while read -r _ c toks; do echo "$(( ${c%:} + 1 )):ok:3:$toks"; done | paste -sd '#' | sed 's|#| / |g')
got=$(q "$dir/a.db" "SELECT group_concat(x, ' / ') FROM (SELECT id || ':' || status || ':' || n_gen || ':' ||
      (SELECT group_concat(token, ' ') FROM (SELECT token FROM tokens t WHERE t.run_id = r.id AND role = 'gen' ORDER BY seq)) AS x
      FROM runs r ORDER BY id)")
expect "exec-contexts: one run per context, each with its own tokens" "$got" "$want"
expect "exec-contexts: run names" "$(q "$dir/a.db" "SELECT group_concat(name, ', ') FROM runs")" \
    "exec-contexts context 1, exec-contexts context 2, exec-contexts context 3, exec-contexts context 4"

# a program that exits without freeing its context: the run ends at exit, whole
"$bin" exec -q -o "$dir/b.db" -- "$ctxprog" "$model" 1 3 --no-free >/dev/null || fail "exec --no-free exited with $?"
expect "a context never freed: its run" "$(q "$dir/b.db" "SELECT status, n_gen, (SELECT count(*) FROM steps) FROM runs")" "ok|3|3"

# killed mid-generation: every step it completed is in the trace
"$bin" exec -q -o "$dir/k.db" -- "$ctxprog" "$model" 1 500 --sleep-ms 50 >"$dir/k.out" 2>/dev/null &
epid=$!
for _ in $(seq 600); do [ "$(wc -w <"$dir/k.out")" -ge 12 ] && break; sleep 0.05; done
cpid=$(pgrep -P "$epid")
[ -n "$cpid" ] && kill -9 "$cpid"
wait "$epid"
expect "exec's status when its program was killed" "$?" 137
printed=$(( $(wc -w <"$dir/k.out") - 4 )) # "context 0 at 0x...:" then a token per completed step
got=$(q "$dir/k.db" "SELECT status, (SELECT count(*) FROM steps) >= $printed, (SELECT count(*) FROM steps) > 0 FROM runs")
expect "killed after $printed tokens: the run" "$got" "killed|1|1"

finish
