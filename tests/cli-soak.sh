#!/usr/bin/env bash
# The soak benchmark's short version: llama-server under lltrace exec at levels graph and timing,
# two clients, a few thousand tokens, sampled every half second, then kill -9 at a random
# moment; bench/soak.py checks the step logs' bound, the server's memory after warm-up and the
# trace the next reader sees (integrity, the run killed, every committed step there, no gap).
#   cli-soak.sh LLTRACE_BINARY
. "$(dirname "$0")/lib.sh" cli-soak "$@"
llbin=${LLTRACE_LLAMA_BIN:?set LLTRACE_LLAMA_BIN to the folder of llama.cpp programs}
[ -x "$llbin/llama-server" ] || { echo "FAIL no $llbin/llama-server (scripts/bootstrap-llama.sh --programs builds it)"; exit 1; }
for level in graph timing; do
    python3 "$(dirname "$0")/../bench/soak.py" "$bin" "$llbin/llama-server" "$model" "$level" 3000 0.5 "$dir" ||
        fail "soak at level $level"
done
finish
